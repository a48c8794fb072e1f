//! Log compaction through a real client (rdkafka): a compacted topic keeps the latest value of
//! every key and shrinks to about its live size; records without a key are refused with
//! INVALID_RECORD; the offsets log is compacted too, and commits survive a restart.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{admin, config_for, create_topic, init_logging, producer, wait_until, TestBroker};
use rdkafka::admin::{AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).filter_map(|e| e.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn log_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn broker_config(dir: &Path) -> semel_broker::BrokerConfig {
    let mut config = config_for(dir);
    config.cleaner.backoff_ms = 100;
    config.groups.offsets_segment_bytes = 16 * 1024;
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_compacted_topic_keeps_the_latest_value_of_every_key() {
    init_logging();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = broker_config(tmp.path());
    let mut broker = TestBroker::start_with(config, tmp).await;
    let bootstrap = broker.bootstrap();
    let topic = "table";
    let configs = [
        ("cleanup.policy", "compact"),
        ("internal.segment.bytes", "65536"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "100"),
    ];
    // Nothing is cleanable (a compaction lag of an hour) until everything is written and
    // measured below: the cleaner would otherwise clean as the records come in, as far as the
    // machine's speed lets it, and `written` would not be the size before cleaning.
    create_topic(&bootstrap, topic, 2, &[&configs[..], &[("min.compaction.lag.ms", "3600000")]].concat()).await;

    const KEYS: usize = 200;
    const WRITES: usize = 20_000;
    let p = producer(&bootstrap, &[("compression.type", "lz4"), ("enable.idempotence", "true")]);
    let mut latest: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut futures = Vec::new();
    let pad = "x".repeat(100);
    for i in 0..WRITES {
        let key = format!("key-{}", i % KEYS);
        let value = format!("{i}-{pad}");
        latest.insert(key.clone(), Some(value.clone()));
        futures.push(p.send_result(FutureRecord::to(topic).key(&key).payload(&value)).map_err(|(e, _)| e).expect("enqueue"));
    }
    // Delete every tenth key.
    for k in (0..KEYS).step_by(10) {
        let key = format!("key-{k}");
        latest.insert(key.clone(), None);
        futures.push(p.send_result(FutureRecord::<String, String>::to(topic).key(&key)).map_err(|(e, _)| e).expect("enqueue"));
    }
    for f in futures {
        f.await.expect("delivery").expect("delivered");
    }

    // A record without a key is refused, as Kafka refuses it.
    let refused = p.send(FutureRecord::<(), str>::to(topic).payload("no key"), Duration::from_secs(10)).await;
    match refused {
        Err((KafkaError::MessageProduction(code), _)) => assert_eq!(code, RDKafkaErrorCode::InvalidRecord),
        other => panic!("a keyless record was not refused with INVALID_RECORD: {other:?}"),
    }

    let dirs: Vec<_> = (0..2).map(|p| broker.dir.join(format!("{topic}-{p}"))).collect();
    let written: u64 = dirs.iter().map(|d| log_bytes(d)).sum();
    // AlterConfigs replaces the topic's overrides: without the lag, the log is cleanable.
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
    for (k, v) in configs {
        alter = alter.set(k, v);
    }
    for result in admin(&bootstrap).alter_configs([&alter], &AdminOptions::new()).await.expect("alter_configs") {
        result.expect("lag removed");
    }
    // The cleaner never touches the active segment (up to 64 KiB per partition here).
    wait_until("the cleaner to compact the topic", Duration::from_secs(60), || {
        dirs.iter().map(|d| log_bytes(d)).sum::<u64>() < written / 4
    })
    .await;
    let cleaned: u64 = dirs.iter().map(|d| log_bytes(d)).sum();
    eprintln!("compacted {written} bytes of log to {cleaned}");

    let expected: BTreeMap<String, String> = latest.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect();
    let check = |bootstrap: &str| {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "table-reader")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        let mut ends = BTreeMap::new();
        for partition in 0..2 {
            tpl.add_partition_offset(topic, partition, Offset::Beginning).expect("tpl");
            let (_, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(60)).expect("watermarks");
            ends.insert(partition, high);
        }
        consumer.assign(&tpl).expect("assign");
        let mut state: BTreeMap<String, String> = BTreeMap::new();
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        let mut total = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while ends.iter().any(|(p, high)| last.get(p).copied().unwrap_or(-1) + 1 < *high) {
            assert!(Instant::now() < deadline, "timed out reading the topic back");
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(m)) => {
                    let previous = last.insert(m.partition(), m.offset()).unwrap_or(-1);
                    assert!(m.offset() > previous, "offsets increase");
                    total += 1;
                    let key = String::from_utf8(m.key().expect("keyed").to_vec()).expect("utf8");
                    match m.payload() {
                        Some(value) => state.insert(key, String::from_utf8(value.to_vec()).expect("utf8")),
                        None => state.remove(&key),
                    };
                }
                Some(Err(e)) => panic!("consume error: {e}"),
                None => {}
            }
        }
        assert_eq!(state, expected, "the latest value of every key");
        total
    };
    let total = check(&bootstrap);
    assert!(total < WRITES / 4, "{total} records read back of {WRITES} written");
    broker.restart().await;
    check(&broker.bootstrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_offsets_log_is_compacted_and_commits_survive_a_restart() {
    init_logging();
    let tmp = tempfile::tempdir().expect("tempdir");
    let config = broker_config(tmp.path());
    let mut broker = TestBroker::start_with(config.clone(), tmp).await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "in", 2, &[]).await;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "committer")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    const COMMITS: i64 = 1_500;
    for i in 1..=COMMITS {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("in", (i % 2) as i32, Offset::Offset(i)).expect("tpl");
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    let offsets_dir = broker.dir.join("internal").join("__consumer_offsets-0");
    // Each commit writes a record of over 100 bytes: 150 KB of history uncompacted. The
    // cleaner works while the commits go on; what stays is about the active segment (16 KiB)
    // plus the two live keys.
    let bound = 2 * config.groups.offsets_segment_bytes + 4096;
    wait_until("the cleaner to compact the offsets log", Duration::from_secs(60), || log_bytes(&offsets_dir) < bound).await;
    eprintln!("offsets log after {COMMITS} commits: {} bytes", log_bytes(&offsets_dir));
    drop(consumer);
    broker.restart().await;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "committer")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("in", 0);
    tpl.add_partition("in", 1);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(60)).expect("committed offsets");
    let got: Vec<Offset> = committed.elements().iter().map(|e| e.offset()).collect();
    assert_eq!(got, vec![Offset::Offset(COMMITS), Offset::Offset(COMMITS - 1)], "the last commit of each partition");
    assert!(dir_bytes(&offsets_dir) > 0);
}
