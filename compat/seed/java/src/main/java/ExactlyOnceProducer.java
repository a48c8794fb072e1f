import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringSerializer;

import java.util.Properties;

public class ExactlyOnceProducer {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv().getOrDefault("BOOTSTRAP_SERVERS", "localhost:9092")); // compat/seed: was "localhost:9092"
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true); // Enable idempotence
        props.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "transactional-producer-1"); // Set transactional ID

        KafkaProducer<String, String> producer = new KafkaProducer<>(props);
        producer.initTransactions(); // Initialize transactions

        try {
            producer.beginTransaction(); // Begin transaction
            producer.send(new ProducerRecord<>("my-topic", "key", "value"));
            producer.commitTransaction(); // Commit transaction
        } catch (Exception e) {
            producer.abortTransaction(); // Abort transaction on error
        } finally {
            producer.close();
        }
    }
}
