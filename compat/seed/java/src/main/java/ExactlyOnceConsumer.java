import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.StringDeserializer;

import java.time.Duration;
import java.util.Collections;
import java.util.Properties;

public class ExactlyOnceConsumer {
    public static void main(String[] args) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, System.getenv().getOrDefault("BOOTSTRAP_SERVERS", "localhost:9092")); // compat/seed: was "localhost:9092"
        props.put(ConsumerConfig.GROUP_ID_CONFIG, "transactional-consumer-group");
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false); // Disable auto commit

        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(Collections.singletonList("my-topic"));

        // compat/seed: the seed loops forever (while (true)); this loop stops after
        // SEED_MAX_RECORDS records (default 1) or SEED_MAX_SECONDS seconds (default 30).
        int maxRecords = Integer.parseInt(System.getenv().getOrDefault("SEED_MAX_RECORDS", "1"));
        long deadline = System.currentTimeMillis() + 1000L * Long.parseLong(System.getenv().getOrDefault("SEED_MAX_SECONDS", "30"));
        int consumed = 0;
        while (consumed < maxRecords && System.currentTimeMillis() < deadline) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
            consumed += records.count(); // compat/seed
            for (ConsumerRecord<String, String> record : records) {
                // Process record
                System.out.printf("Consumed record with key %s and value %s%n", record.key(), record.value());
            }
            consumer.commitSync(); // Commit offsets
        }
        consumer.close(); // compat/seed: leave the group (the seed never gets here)
    }
}
