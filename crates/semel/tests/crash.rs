//! kill -9 of the `semel` process in the middle of an acks=all produce stream: after a
//! restart every acknowledged message is there exactly once and in order, and new writes are
//! accepted.

mod common;

use common::{free_port, kill_9, start_semel};

use std::collections::{BTreeMap, HashMap};

type Acked = Arc<Mutex<BTreeMap<i32, Vec<(i64, String)>>>>;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer, PurgeConfig};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut semel = start_semel(port, tmp.path());
    let partitions = 3;
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("crash", partitions as i32, rdkafka::admin::TopicReplication::Fixed(1));
    for result in admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new()).await.expect("create") {
        result.expect("topic created");
    }

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("linger.ms", "2")
        // Long enough that nothing sent before the kill times out on a loaded machine; what is
        // unacknowledged at the kill is purged below.
        .set("message.timeout.ms", "60000")
        .set("retries", "0")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("producer");

    // Acknowledged (partition -> [(offset, value)]) and refused values.
    let acked: Acked = Arc::default();
    let total = 60_000usize;
    let kill_after_acks = 20_000usize;
    let mut killed = false;
    let mut pending = Vec::new();
    let acked_count = || acked.lock().expect("lock").values().map(Vec::len).sum::<usize>();
    for i in 0..total {
        if !killed && i == kill_after_acks * 2 {
            // Sent twice as many as the kill waits for: the acknowledgements lag (a slow
            // machine). Wait for them, then kill with the stream still going.
            let deadline = Instant::now() + Duration::from_secs(120);
            while acked_count() < kill_after_acks {
                assert!(Instant::now() < deadline, "only {} of {i} sent messages acknowledged", acked_count());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        let partition = (i % partitions) as i32;
        let value = format!("m{i:06}");
        let record = FutureRecord::<str, str>::to("crash").partition(partition).payload(&value);
        match producer.send_result(record) {
            Ok(delivery) => {
                let acked = Arc::clone(&acked);
                pending.push(tokio::spawn(async move {
                    if let Ok(Ok(d)) = delivery.await {
                        acked.lock().expect("lock").entry(d.partition).or_default().push((d.offset, value));
                    }
                }));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
        if i % 1000 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !killed && acked_count() >= kill_after_acks {
            kill_9(&mut semel);
            killed = true;
        }
        if killed && i > kill_after_acks * 2 {
            break;
        }
    }
    assert!(killed, "the broker was killed mid-stream");
    // Fail every send not acknowledged by now (the broker is dead: none can be any more) and
    // let it resolve before the broker comes back, so that no unacknowledged message is sent
    // to the restarted broker.
    producer.purge(PurgeConfig::default().queue().inflight());
    for p in pending {
        let _ = p.await;
    }
    drop(producer);
    let acked = std::mem::take(&mut *acked.lock().expect("lock"));
    let acked_count: usize = acked.values().map(Vec::len).sum();
    assert!(acked_count >= kill_after_acks, "acknowledged {acked_count}");

    let mut semel = start_semel(port, tmp.path());
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "crash-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset("crash", p as i32, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let low_high: HashMap<i32, (i64, i64)> = (0..partitions)
        .map(|p| (p as i32, consumer.fetch_watermarks("crash", p as i32, Duration::from_secs(60)).expect("watermarks")))
        .collect();
    let expected_total: i64 = low_high.values().map(|(lo, hi)| hi - lo).sum();
    let mut read: BTreeMap<i32, Vec<(i64, String)>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut count = 0i64;
    while count < expected_total && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            read.entry(m.partition())
                .or_default()
                .push((m.offset(), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()));
            count += 1;
        }
    }
    assert_eq!(count, expected_total, "read the whole log back");
    for (partition, messages) in &acked {
        let log: HashMap<i64, &String> = read[partition].iter().map(|(o, v)| (*o, v)).collect();
        let mut seen = HashMap::new();
        for (_, v) in &read[partition] {
            *seen.entry(v.clone()).or_insert(0) += 1;
        }
        for (offset, value) in messages {
            assert_eq!(log.get(offset), Some(&value), "partition {partition}: acknowledged offset {offset} holds its value");
            assert_eq!(seen[value], 1, "partition {partition}: {value} appears once");
        }
        // Order: values in a partition were sent in increasing order.
        let values: Vec<&String> = read[partition].iter().map(|(_, v)| v).collect();
        assert!(values.windows(2).all(|w| w[0] < w[1]), "partition {partition} is in send order");
    }
    println!("acknowledged before kill -9: {acked_count}; in the log after restart: {expected_total}");

    // New writes are accepted after the restart.
    let producer: FutureProducer = ClientConfig::new().set("bootstrap.servers", &bootstrap).set("acks", "all").create().expect("producer");
    let delivery = producer
        .send(FutureRecord::<str, str>::to("crash").partition(0).payload("after-restart"), Duration::from_secs(10))
        .await
        .expect("accepted after restart");
    assert_eq!(delivery.offset, low_high[&0].1);
    kill_9(&mut semel);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let mut semel = start_semel(port, tmp.path());
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("offsets", 3, rdkafka::admin::TopicReplication::Fixed(1));
    for result in admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new()).await.expect("create") {
        result.expect("topic created");
    }
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "survivor")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for (p, o) in [(0, 11), (1, 22), (2, 33)] {
        tpl.add_partition_offset("offsets", p, Offset::Offset(o)).expect("tpl");
    }
    consumer.commit(&tpl, rdkafka::consumer::CommitMode::Sync).expect("commit acknowledged");
    drop(consumer);
    kill_9(&mut semel);
    let _semel = start_semel(port, tmp.path());
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).set("group.id", "survivor").create().expect("consumer");
    let mut wanted = TopicPartitionList::new();
    for p in 0..3 {
        wanted.add_partition("offsets", p);
    }
    let committed = consumer.committed_offsets(wanted, Duration::from_secs(60)).expect("committed");
    let offsets: Vec<(i32, Offset)> = committed.elements().iter().map(|e| (e.partition(), e.offset())).collect();
    assert_eq!(offsets, [(0, Offset::Offset(11)), (1, Offset::Offset(22)), (2, Offset::Offset(33))]);
}
