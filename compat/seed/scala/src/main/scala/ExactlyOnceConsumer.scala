import org.apache.kafka.clients.consumer.{ConsumerConfig, ConsumerRecords, KafkaConsumer}
import org.apache.kafka.common.serialization.StringDeserializer

import java.time.Duration
import java.util.{Collections, Properties}

object ExactlyOnceConsumer {
  def main(args: Array[String]): Unit = {
    val props = new Properties()
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, sys.env.getOrElse("BOOTSTRAP_SERVERS", "localhost:9092")) // compat/seed: was "localhost:9092"
    props.put(ConsumerConfig.GROUP_ID_CONFIG, "transactional-consumer-group")
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, classOf[StringDeserializer].getName)
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, classOf[StringDeserializer].getName)
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false")

    val consumer = new KafkaConsumer[String, String](props)
    consumer.subscribe(Collections.singletonList("my-topic"))

    // compat/seed: the seed loops forever (while (true)); this loop stops after
    // SEED_MAX_RECORDS records (default 1) or SEED_MAX_SECONDS seconds (default 30).
    val maxRecords = sys.env.getOrElse("SEED_MAX_RECORDS", "1").toInt
    val deadline = System.currentTimeMillis() + 1000L * sys.env.getOrElse("SEED_MAX_SECONDS", "30").toLong
    var consumed = 0
    while (consumed < maxRecords && System.currentTimeMillis() < deadline) {
      val records: ConsumerRecords[String, String] = consumer.poll(Duration.ofMillis(100))
      consumed += records.count() // compat/seed
      records.forEach { record =>
        println(s"Consumed record with key ${record.key()} and value ${record.value()}")
      }
      consumer.commitSync()
    }
    consumer.close() // compat/seed: leave the group (the seed never gets here)
  }
}
