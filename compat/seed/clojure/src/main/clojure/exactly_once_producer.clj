(ns exactly-once-producer
  (:import [org.apache.kafka.clients.producer KafkaProducer ProducerConfig ProducerRecord]
           [org.apache.kafka.common.serialization StringSerializer]))

(defn create-producer []
  (let [props (doto (java.util.Properties.)
                (.put ProducerConfig/BOOTSTRAP_SERVERS_CONFIG (or (System/getenv "BOOTSTRAP_SERVERS") "localhost:9092")) ; compat/seed: was "localhost:9092"
                (.put ProducerConfig/KEY_SERIALIZER_CLASS_CONFIG StringSerializer)
                (.put ProducerConfig/VALUE_SERIALIZER_CLASS_CONFIG StringSerializer)
                (.put ProducerConfig/ENABLE_IDEMPOTENCE_CONFIG true)
                (.put ProducerConfig/TRANSACTIONAL_ID_CONFIG "transactional-producer-1"))]
    (KafkaProducer. props)))

(defn -main []
  (let [producer (create-producer)]
    (.initTransactions producer)
    (try
      (.beginTransaction producer)
      (.send producer (ProducerRecord. "my-topic" "key" "value"))
      (.commitTransaction producer)
      (catch Exception e
        (.abortTransaction producer))
      (finally
        (.close producer)))))
