import org.apache.kafka.clients.producer.{KafkaProducer, ProducerConfig, ProducerRecord}
import org.apache.kafka.common.serialization.StringSerializer

import java.util.Properties

object ExactlyOnceProducer {
  def main(args: Array[String]): Unit = {
    val props = new Properties()
    props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, sys.env.getOrElse("BOOTSTRAP_SERVERS", "localhost:9092")) // compat/seed: was "localhost:9092"
    props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, classOf[StringSerializer].getName)
    props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, classOf[StringSerializer].getName)
    props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true")
    props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "transactional-producer-1")

    val producer = new KafkaProducer[String, String](props)
    producer.initTransactions()

    try {
      producer.beginTransaction()
      producer.send(new ProducerRecord[String, String]("my-topic", "key", "value"))
      producer.commitTransaction()
    } catch {
      case e: Exception =>
        producer.abortTransaction()
    } finally {
      producer.close()
    }
  }
}
