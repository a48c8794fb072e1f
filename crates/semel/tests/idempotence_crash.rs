//! librdkafka with enable.idempotence=true produces while the broker is killed -9 and
//! restarted twice: every acknowledged message is then in the log exactly once and in
//! per-partition order.
//!
//! SEMEL_IDEMPOTENCE_MESSAGES sets the message count (default 1,000,000).

mod common;

use common::{kill_9, start_semel};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

/// Counts deliveries; remembers (partition, offset, value) of each acknowledged message.
#[derive(Default)]
struct Deliveries {
    acked: std::sync::Mutex<Vec<(i32, i64, u32)>>,
    acked_count: AtomicUsize,
    failed: AtomicUsize,
}

#[derive(Clone, Default)]
struct Context(Arc<Deliveries>);

impl ClientContext for Context {}

impl ProducerContext for Context {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let value: u32 = std::str::from_utf8(m.payload().expect("payload")).expect("utf8").parse().expect("number");
                self.0.acked.lock().expect("lock").push((m.partition(), m.offset(), value));
                self.0.acked_count.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[test]
fn idempotent_producer_survives_two_kill_9() {
    let total: usize = std::env::var("SEMEL_IDEMPOTENCE_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let partitions = 6;
    let tmp = tempfile::tempdir().expect("tmp");
    let port = common::free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut semel = start_semel(port, tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("idempotent", partitions as i32, rdkafka::admin::TopicReplication::Fixed(1));
    for result in runtime.block_on(admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new())).expect("create") {
        result.expect("topic created");
    }

    let context = Context::default();
    let producer: ThreadedProducer<Context> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "300000")
        .set("queue.buffering.max.messages", "200000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create_with_context(context.clone())
        .expect("producer");

    let deliveries = Arc::clone(&context.0);
    let mut kills = 0;
    let kill_points = [total / 3, 2 * total / 3];
    let started = Instant::now();
    for i in 0..total {
        let value = format!("{i}");
        let partition = (i % partitions) as i32;
        let mut record = BaseRecord::<(), String, ()>::to("idempotent").partition(partition).payload(&value);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, returned)) => {
                    record = returned;
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        if kills < kill_points.len() && deliveries.acked_count.load(Ordering::Relaxed) >= kill_points[kills] {
            eprintln!("kill -9 #{} after {} acknowledged, {} sent", kills + 1, deliveries.acked_count.load(Ordering::Relaxed), i + 1);
            kill_9(&mut semel);
            std::thread::sleep(Duration::from_millis(300));
            semel = start_semel(port, tmp.path());
            kills += 1;
        }
    }
    // Kill points not reached while sending: do them while the rest is delivered.
    while kills < kill_points.len() {
        while deliveries.acked_count.load(Ordering::Relaxed) < kill_points[kills] {
            std::thread::sleep(Duration::from_millis(5));
            assert!(started.elapsed() < Duration::from_secs(900), "deliveries stalled");
        }
        eprintln!("kill -9 #{} after {} acknowledged (all sent)", kills + 1, deliveries.acked_count.load(Ordering::Relaxed));
        kill_9(&mut semel);
        std::thread::sleep(Duration::from_millis(300));
        semel = start_semel(port, tmp.path());
        kills += 1;
    }
    eprintln!("all sent; flushing with {} acknowledged", deliveries.acked_count.load(Ordering::Relaxed));
    producer.flush(Duration::from_secs(300)).expect("flush");
    let acked_count = deliveries.acked_count.load(Ordering::Relaxed);
    let failed = deliveries.failed.load(Ordering::Relaxed);
    assert_eq!(acked_count + failed, total, "every message got a delivery report");

    // Read everything back.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "verify")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("idempotent", p as i32, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut log_size = 0i64;
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks("idempotent", p as i32, Duration::from_secs(60)).expect("watermarks");
        log_size += high - low;
    }
    let mut read: BTreeMap<i32, Vec<(i64, u32)>> = BTreeMap::new();
    let mut count = 0i64;
    let deadline = Instant::now() + Duration::from_secs(300);
    while count < log_size && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            let value: u32 = std::str::from_utf8(m.payload().expect("payload")).expect("utf8").parse().expect("number");
            read.entry(m.partition()).or_default().push((m.offset(), value));
            count += 1;
        }
    }
    assert_eq!(count, log_size, "read the whole log");

    let mut duplicates = 0usize;
    for (partition, records) in &read {
        let mut seen = std::collections::HashSet::new();
        for (_, value) in records {
            if !seen.insert(*value) {
                duplicates += 1;
            }
        }
        assert!(records.windows(2).all(|w| w[0].1 < w[1].1), "partition {partition}: values in send order");
    }
    assert_eq!(duplicates, 0, "no message is in the log twice");
    let acked = deliveries.acked.lock().expect("lock");
    let index: std::collections::HashMap<(i32, i64), u32> =
        read.iter().flat_map(|(p, rs)| rs.iter().map(move |(o, v)| ((*p, *o), *v))).collect();
    for (partition, offset, value) in acked.iter() {
        assert_eq!(index.get(&(*partition, *offset)), Some(value), "acknowledged message {value} at {partition}/{offset}");
    }
    println!(
        "idempotence under kill -9 x2: sent {total}, acknowledged {acked_count}, failed {failed}, in the log {log_size}, duplicates {duplicates}, elapsed {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop(semel);
}
