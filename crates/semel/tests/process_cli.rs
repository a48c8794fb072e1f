//! `semel process count` and `semel process sum --field F` as child processes against
//! `semel serve`: the running results of each key are exact (1, 2, ..., n; the true sums),
//! and both stop cleanly on SIGTERM. A missing --input is a clear error.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, start_semel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const BOUND: Duration = Duration::from_secs(180);

fn create(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("admin");
    let new = rdkafka::admin::NewTopic::new(topic, partitions, rdkafka::admin::TopicReplication::Fixed(1));
    let results = futures_block_on(admin.create_topics(&[new], &rdkafka::admin::AdminOptions::new())).expect("create");
    for r in results {
        r.expect("created");
    }
}

fn futures_block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime").block_on(f)
}

/// (key, value) of every record of `topic`, read_committed, partition after partition.
fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<(String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cli-reader")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut out = Vec::new();
    for p in 0..partitions {
        let (_, end) = consumer.fetch_watermarks(topic, p, Duration::from_secs(60)).expect("watermarks");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
        consumer.assign(&tpl).expect("assign");
        let deadline = Instant::now() + BOUND;
        while consumer.position().expect("position").find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(0) < end {
            assert!(Instant::now() < deadline, "{topic}-{p} not read to {end}");
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.expect("message");
                let text = |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).expect("utf8");
                out.push((text(m.key()), text(m.payload())));
            }
        }
    }
    out
}

fn committed(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let c = consumer.committed_offsets(tpl, Duration::from_secs(60)).expect("committed");
    (0..partitions).map(|p| c.find_partition(topic, p).and_then(|e| e.offset().to_raw()).unwrap_or(-1)).collect()
}

fn process(bootstrap: &str, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_semel"))
        .arg("process")
        .args(args)
        .args(["--bootstrap", bootstrap, "--progress-seconds", "1"])
        .env("SEMEL_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn semel process")
}

fn sigterm_and_wait(child: std::process::Child) -> String {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "semel process did not stop cleanly: {:?}\n{stderr}", output.status);
    stderr
}

#[test]
fn count_and_sum_are_exact_and_stop_cleanly() {
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let _semel = start_semel(port, tmp.path());
    create(&bootstrap, "orders", 2);
    create(&bootstrap, "order-counts", 1);
    create(&bootstrap, "order-sums", 1);

    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("enable.idempotence", "true").create().expect("producer");
    let mut truth: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    for i in 0..400u64 {
        let key = format!("customer-{}", i % 7);
        let value = format!("{{\"amount\": {}.5, \"id\": {i}}}", i % 13);
        let entry = truth.entry(key.clone()).or_default();
        entry.0 += 1;
        entry.1 += (i % 13) as f64 + 0.5;
        producer.send(BaseRecord::to("orders").key(&key).payload(&value)).map_err(|(e, _)| e).expect("enqueue");
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");

    let counter = process(&bootstrap, &["count", "--input", "orders", "--output", "order-counts", "--application-id", "counts"]);
    let summer =
        process(&bootstrap, &["sum", "--field", "amount", "--input", "orders", "--output", "order-sums", "--application-id", "sums"]);
    let consumer: BaseConsumer = ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("consumer");
    let ends: Vec<i64> = (0..2).map(|p| consumer.fetch_watermarks("orders", p, Duration::from_secs(60)).expect("watermarks").1).collect();
    let deadline = Instant::now() + BOUND;
    while committed(&bootstrap, "counts", "orders", 2) != ends || committed(&bootstrap, "sums", "orders", 2) != ends {
        assert!(Instant::now() < deadline, "the processors did not commit every input record within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let progress = sigterm_and_wait(counter);
    assert!(progress.contains("semel process: 400 records in, 400 out"), "last progress line: {progress}");
    sigterm_and_wait(summer);

    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, v) in read_all(&bootstrap, "order-counts", 1) {
        counts.entry(k).or_default().push(v.parse().expect("a count"));
    }
    let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (k, v) in read_all(&bootstrap, "order-sums", 1) {
        sums.entry(k).or_default().push(v.parse().expect("a sum"));
    }
    for (key, (n, total)) in &truth {
        assert_eq!(counts[key], (1..=*n).collect::<Vec<_>>(), "{key}: counts 1..={n} exactly once each");
        assert_eq!(sums[key].len() as u64, *n, "{key}: one running sum per record");
        assert_eq!(*sums[key].last().expect("a sum"), *total, "{key}: the last sum is the true total");
    }
}

#[test]
fn a_missing_input_topic_argument_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_semel")).args(["process", "count", "--output", "x"]).output().expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--input and --output"), "{stderr}");
}
