(ns exactly-once-consumer
  (:import [org.apache.kafka.clients.consumer KafkaConsumer ConsumerConfig ConsumerRecords]
           [org.apache.kafka.common.serialization StringDeserializer]))

(defn create-consumer []
  (let [props (doto (java.util.Properties.)
                (.put ConsumerConfig/BOOTSTRAP_SERVERS_CONFIG (or (System/getenv "BOOTSTRAP_SERVERS") "localhost:9092")) ; compat/seed: was "localhost:9092"
                (.put ConsumerConfig/GROUP_ID_CONFIG "transactional-consumer-group")
                (.put ConsumerConfig/KEY_DESERIALIZER_CLASS_CONFIG StringDeserializer)
                (.put ConsumerConfig/VALUE_DESERIALIZER_CLASS_CONFIG StringDeserializer)
                (.put ConsumerConfig/ENABLE_AUTO_COMMIT_CONFIG false))]
    (KafkaConsumer. props)))

(defn -main []
  (let [consumer (create-consumer)
        ;; compat/seed: the seed loops forever (while true); this loop stops after
        ;; SEED_MAX_RECORDS records (default 1) or SEED_MAX_SECONDS seconds (default 30).
        max-records (Long/parseLong (or (System/getenv "SEED_MAX_RECORDS") "1"))
        deadline (+ (System/currentTimeMillis) (* 1000 (Long/parseLong (or (System/getenv "SEED_MAX_SECONDS") "30"))))
        consumed (atom 0)]
    (.subscribe consumer (java.util.Collections/singletonList "my-topic"))
    (while (and (< @consumed max-records) (< (System/currentTimeMillis) deadline))
      (let [records (.poll consumer (java.time.Duration/ofMillis 100))]
        (swap! consumed + (.count records)) ; compat/seed
        (doseq [record records]
          (println (format "Consumed record with key %s and value %s" (.key record) (.value record))))
        (.commitSync consumer)))
    (.close consumer))) ; compat/seed: leave the group (the seed never gets here)
