//! Shared harness: an in-process broker on an ephemeral port with a temporary data dir, and
//! rdkafka helpers.
#![allow(dead_code, unreachable_pub)]

pub mod raw;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use semel_broker::{Broker, BrokerConfig};

pub struct TestBroker {
    pub broker: Option<Broker>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

pub fn config_for(dir: &Path) -> BrokerConfig {
    BrokerConfig { listen: "127.0.0.1:0".parse().expect("addr"), data_dir: dir.to_path_buf(), ..BrokerConfig::default() }
}

/// Logs to the test's output when SEMEL_LOG is set (e.g. SEMEL_LOG=debug).
pub fn init_logging() {
    if let Ok(filter) = std::env::var("SEMEL_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::new(filter)).with_test_writer().try_init();
    }
}

/// Waits until `done` holds, checking every 100 ms; panics naming `what` after `timeout`. For
/// conditions that are normally met quickly: give a generous `timeout` (60 s or more), so that a
/// loaded machine does not fail the test.
pub async fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A field of /proc/self/status in bytes (VmRSS, VmHWM): in-process brokers' memory.
pub fn process_status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).and_then(|kb| kb.parse::<u64>().ok()).expect("a number of kB") * 1024
}

/// Resets the process's peak RSS, so that VmHWM afterwards is the peak since this call.
pub fn reset_peak_rss() {
    std::fs::write("/proc/self/clear_refs", "5").expect("clear_refs");
}

impl TestBroker {
    pub async fn start() -> Self {
        init_logging();
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let broker = Broker::start(config_for(&dir)).await.expect("start broker");
        Self { broker: Some(broker), dir, _tmp: Some(tmp) }
    }

    pub async fn start_with(config: BrokerConfig, tmp: tempfile::TempDir) -> Self {
        let dir = config.data_dir.clone();
        let broker = Broker::start(config).await.expect("start broker");
        Self { broker: Some(broker), dir, _tmp: Some(tmp) }
    }

    pub fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("running").bootstrap()
    }

    /// Clean shutdown, then a new broker on the same data dir (new port).
    pub async fn restart(&mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
        self.broker = Some(Broker::start(config_for(&self.dir)).await.expect("restart broker"));
    }

    pub async fn stop(&mut self) {
        if let Some(b) = self.broker.take() {
            b.shutdown().await;
        }
    }

    pub async fn start_again(&mut self) {
        self.broker = Some(Broker::start(config_for(&self.dir)).await.expect("restart broker"));
    }
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin client")
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = admin(bootstrap);
    let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        topic = topic.set(k, v);
    }
    let results = admin.create_topics(&[topic], &AdminOptions::new()).await.expect("create_topics");
    for r in results {
        r.expect("topic created");
    }
}

pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("acks", "all").set("linger.ms", "5").set("message.timeout.ms", "60000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("producer")
}

/// Produces `count` messages round-robin over `partitions`, key = value = "p{partition}-{seq}".
/// Returns, per partition, the values in the order sent.
pub async fn produce_sequence(
    producer: &FutureProducer,
    topic: &str,
    partitions: i32,
    count: usize,
    payload_len: usize,
) -> BTreeMap<i32, Vec<String>> {
    let mut sent: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let pad = "x".repeat(payload_len);
    let mut futures = Vec::with_capacity(count);
    for i in 0..count {
        let partition = (i % partitions as usize) as i32;
        let seq = sent.entry(partition).or_default().len();
        let value = format!("p{partition}-{seq}-{pad}");
        sent.get_mut(&partition).expect("entry").push(value.clone());
        let record = FutureRecord::to(topic).partition(partition).key(&value).payload(&value);
        let future = producer.send_result(record).map_err(|(e, _)| e).expect("enqueue");
        futures.push(future);
        if futures.len() >= 10_000 {
            for f in futures.drain(..) {
                f.await.expect("delivery future").expect("delivered");
            }
        }
    }
    for f in futures {
        f.await.expect("delivery future").expect("delivered");
    }
    sent
}

/// Reads every partition from the beginning until `expected` messages arrived (or a timeout),
/// returning per-partition (offset, key, value) in order.
pub fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    extra: &[(&str, &str)],
) -> BTreeMap<i32, Vec<(i64, String, String)>> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "semel-test-reader")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let consumer: BaseConsumer = config.create().expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<(i64, String, String)>> = BTreeMap::new();
    let mut total = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while total < expected && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).expect("utf8 key");
                let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8 value");
                got.entry(m.partition()).or_default().push((m.offset(), key, value));
                total += 1;
            }
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    // Anything extra (duplicates) shows up in a short grace period.
    let grace = Instant::now() + Duration::from_millis(500);
    while Instant::now() < grace {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).expect("utf8 key");
            let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8 value");
            got.entry(m.partition()).or_default().push((m.offset(), key, value));
        }
    }
    got
}
