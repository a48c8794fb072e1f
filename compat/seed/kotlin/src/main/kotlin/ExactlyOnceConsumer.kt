import org.apache.kafka.clients.consumer.ConsumerConfig
import org.apache.kafka.clients.consumer.ConsumerRecords
import org.apache.kafka.clients.consumer.KafkaConsumer
import org.apache.kafka.common.serialization.StringDeserializer
import java.time.Duration
import java.util.*

fun main() {
    val props = Properties().apply {
        put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv("BOOTSTRAP_SERVERS") ?: "localhost:9092") // compat/seed: was "localhost:9092"
        put(ConsumerConfig.GROUP_ID_CONFIG, "transactional-consumer-group")
        put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer::class.java.name)
        put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer::class.java.name)
        put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false)
    }

    val consumer = KafkaConsumer<String, String>(props)
    consumer.subscribe(listOf("my-topic"))

    // compat/seed: the seed loops forever (while (true)); this loop stops after
    // SEED_MAX_RECORDS records (default 1) or SEED_MAX_SECONDS seconds (default 30).
    val maxRecords = (System.getenv("SEED_MAX_RECORDS") ?: "1").toInt()
    val deadline = System.currentTimeMillis() + 1000L * (System.getenv("SEED_MAX_SECONDS") ?: "30").toLong()
    var consumed = 0
    while (consumed < maxRecords && System.currentTimeMillis() < deadline) {
        val records: ConsumerRecords<String, String> = consumer.poll(Duration.ofMillis(100))
        consumed += records.count() // compat/seed
        for (record in records) {
            println("Consumed record with key ${record.key()} and value ${record.value()}")
        }
        consumer.commitSync()
    }
    consumer.close() // compat/seed: leave the group (the seed never gets here)
}
