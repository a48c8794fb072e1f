import org.apache.kafka.clients.producer.KafkaProducer
import org.apache.kafka.clients.producer.ProducerConfig
import org.apache.kafka.clients.producer.ProducerRecord
import org.apache.kafka.common.serialization.StringSerializer
import java.util.Properties // compat/seed: missing in the seed, which does not compile without it

fun main() {
    val props = Properties().apply {
        put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv("BOOTSTRAP_SERVERS") ?: "localhost:9092") // compat/seed: was "localhost:9092"
        put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer::class.java.name)
        put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer::class.java.name)
        put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true)
        put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "transactional-producer-1")
    }

    val producer = KafkaProducer<String, String>(props)
    producer.initTransactions()

    try {
        producer.beginTransaction()
        producer.send(ProducerRecord("my-topic", "key", "value"))
        producer.commitTransaction()
    } catch (e: Exception) {
        producer.abortTransaction()
    } finally {
        producer.close()
    }
}
