//! Shared harness: the broker under test (an in-process semel, or Apache Kafka with
//! `SEMEL_TEST_BROKER=kafka`) and readers of what the tests wrote.
#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use semel_broker::{Broker, BrokerConfig};
use semel_testkit::{broker_under_test, ApacheKafka, BrokerUnderTest};

/// Generous: a busy machine can be slow; nothing here waits this long when things work.
pub const CALL: Duration = Duration::from_secs(60);

enum Server {
    Semel(Broker),
    Kafka(ApacheKafka),
}

pub struct Cluster {
    pub runtime: tokio::runtime::Runtime,
    server: Server,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub fn start() -> Self {
        init_logging();
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let server = match broker_under_test() {
            BrokerUnderTest::Semel => {
                let mut config = BrokerConfig {
                    listen: "127.0.0.1:0".parse().expect("addr"),
                    data_dir: dir.path().to_path_buf(),
                    ..BrokerConfig::default()
                };
                // Groups form at once (Kafka's tests do the same, and so does scripts/kafka.sh).
                config.groups.initial_rebalance_delay_ms = 0;
                Server::Semel(runtime.block_on(Broker::start(config)).expect("broker"))
            }
            BrokerUnderTest::ApacheKafka => Server::Kafka(ApacheKafka::start(dir.path())),
        };
        Self { runtime, server, _dir: dir }
    }

    pub fn bootstrap(&self) -> String {
        match &self.server {
            Server::Semel(broker) => broker.bootstrap(),
            Server::Kafka(kafka) => kafka.bootstrap(),
        }
    }

    pub fn create_topic(&self, name: &str) {
        self.create_topic_with(name, 1);
    }

    pub fn create_topic_with(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().expect("admin");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = self.runtime.block_on(admin.create_topics(&[topic], &AdminOptions::new())).expect("create");
        for r in results {
            r.expect("created");
        }
    }

    /// Values of `topic`, read from the beginning up to its end with `isolation`.
    pub fn read(&self, topic: &str, isolation: &str) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "session-test-reader")
            .set("isolation.level", isolation)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
        consumer.assign(&tpl).expect("assign");
        // Once no transaction is open, both isolations read to the same end.
        let high = semel_testkit::stable_end(&self.bootstrap(), topic, 0, CALL);
        let mut values = Vec::new();
        let deadline = Instant::now() + CALL;
        loop {
            let position = consumer.position().expect("position").find_partition(topic, 0).and_then(|p| p.offset().to_raw()).unwrap_or(0);
            if position >= high {
                return values;
            }
            assert!(Instant::now() < deadline, "{topic} not read to {high} ({isolation}) within {CALL:?}");
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("message");
                values.push(String::from_utf8(message.payload().unwrap_or_default().to_vec()).expect("utf8"));
            }
        }
    }

    pub fn committed(&self, group: &str, topic: &str) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        // An error (such as UNSTABLE_OFFSET_COMMIT while a commit's markers are being written)
        // reads as None: callers wait for the offset they expect.
        let Ok(committed) = consumer.committed_offsets(tpl, CALL) else { return None };
        committed.find_partition(topic, 0).and_then(|p| p.offset().to_raw()).filter(|o| *o >= 0)
    }

    /// (partition, key, value) of every record of `topic`, read_committed, in each partition's
    /// order (partitions one after another).
    pub fn read_all(&self, topic: &str, partitions: i32) -> Vec<(i32, String, String)> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "eos-test-reader")
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut out = Vec::new();
        for partition in 0..partitions {
            let end = semel_testkit::stable_end(&self.bootstrap(), topic, partition, CALL);
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Beginning).expect("tpl");
            consumer.assign(&tpl).expect("assign");
            let deadline = Instant::now() + CALL;
            loop {
                let position =
                    consumer.position().expect("position").find_partition(topic, partition).and_then(|p| p.offset().to_raw()).unwrap_or(0);
                if position >= end {
                    break;
                }
                assert!(Instant::now() < deadline, "{topic}-{partition} not read to {end} within {CALL:?}");
                if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                    let m = m.expect("message");
                    let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).expect("utf8");
                    out.push((partition, text(m.key()), text(m.payload())));
                }
            }
        }
        out
    }

    /// The group's committed offsets of `topic` (-1 where none, and all -1 if the lookup
    /// failed: callers wait for a condition on them, with a bound of their own).
    pub fn committed_all(&self, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let Ok(committed) = consumer.committed_offsets(tpl, CALL) else { return vec![-1; partitions as usize] };
        (0..partitions).map(|p| committed.find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(-1)).collect()
    }

    /// The end offsets of `topic`.
    pub fn ends(&self, topic: &str, partitions: i32) -> Vec<i64> {
        let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().expect("consumer");
        (0..partitions).map(|p| consumer.fetch_watermarks(topic, p, CALL).expect("watermarks").1).collect()
    }

    /// Writes `records` (key, value) with an idempotent producer and waits for every ack.
    pub fn produce(&self, topic: &str, records: &[(String, String)]) {
        let producer: rdkafka::producer::BaseProducer =
            ClientConfig::new().set("bootstrap.servers", self.bootstrap()).set("enable.idempotence", "true").create().expect("producer");
        for (k, v) in records {
            let mut record = rdkafka::producer::BaseRecord::<str, str>::to(topic).key(k.as_str()).payload(v.as_str());
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
        rdkafka::producer::Producer::flush(&producer, CALL).expect("flush");
    }
}

/// Waits until `done` holds, checking every 100 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Logs of the test (the processor's, the broker's, librdkafka's) to stderr when `RUST_LOG`
/// is set, e.g. `RUST_LOG=semel_eos=debug,librdkafka=debug`.
pub fn init_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_test_writer().try_init();
    }
}
