//! `semel process` under kill -9, with real binaries: three `count` and three `copy` instances
//! of two applications share a 6-partition input while a producer writes to it; one instance
//! at a time is killed -9 and restarted, and the broker is killed -9 once and restarted on the
//! same data. Then: every input record is in the copy output exactly once (read_committed), in
//! order per key; every key's running counts are 1, 2, ..., n; and a read_committed consumer
//! that ran throughout saw no duplicate.
//!
//! Bounded in CI: `SEMEL_PROCESSOR_CRASH_RECORDS` records (default 30,000; the full form is
//! 1,000,000) and `SEMEL_PROCESSOR_CRASH_KILLS` kills (default 6; full form 20 or more). The
//! input is written in rounds; after each, once both applications have committed more than
//! before, one instance is killed -9 and restarted (halfway, the broker instead), so every
//! kill lands on a pipeline at work whatever the machine's speed. Where in a transaction a kill
//! lands is not asserted.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::{committed_sum, consumer, create_topic, logs, read_all, Instance, BOUND};
use common::TestBroker;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 6;
const KEYS: u64 = 500;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn committed_total(bootstrap: &str, group: &str) -> i64 {
    committed_sum(bootstrap, group, "input", PARTITIONS)
}

#[test]
fn processors_lose_and_duplicate_nothing_through_kill_9_of_instances_and_the_broker() {
    let records = env_or("SEMEL_PROCESSOR_CRASH_RECORDS", 30_000);
    let kills = env_or("SEMEL_PROCESSOR_CRASH_KILLS", 6);
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let mut broker = TestBroker::start(&data);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "input", PARTITIONS);
    create_topic(&bootstrap, "copies", PARTITIONS);
    create_topic(&bootstrap, "counts", PARTITIONS);

    let mut instances: Vec<Instance> = Vec::new();
    for (kind, app, output) in [("copy", "crash-copy", "copies"), ("count", "crash-count", "counts")] {
        for i in 0..3 {
            let instance_id = i.to_string();
            let args = [
                kind,
                "--bootstrap",
                &bootstrap,
                "--application-id",
                app,
                "--instance-id",
                &instance_id,
                "--input",
                "input",
                "--output",
                output,
                "--progress-seconds",
                "0",
                "--transaction-timeout-ms",
                "20000",
            ];
            let instance = Instance::new(&args, tmp.path().join(format!("{app}-{i}.log")));
            instances.push(instance);
        }
    }

    // A read_committed consumer of the copies for the whole run: it must see no duplicate.
    let stop_watch = Arc::new(AtomicBool::new(false));
    let seen_twice = Arc::new(Mutex::new(Vec::<String>::new()));
    let watcher = {
        let (bootstrap, stop, seen_twice) = (bootstrap.clone(), Arc::clone(&stop_watch), Arc::clone(&seen_twice));
        std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &bootstrap)
                .set("group.id", "crash-watcher")
                .set("isolation.level", "read_committed")
                .set("enable.auto.commit", "false")
                .create()
                .expect("watcher");
            // Assigned, not subscribed: no rebalance can send it back to an earlier offset.
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition_offset("copies", p, Offset::Beginning).expect("tpl");
            }
            c.assign(&tpl).expect("assign");
            let mut seen = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
                    let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf8");
                    if !seen.insert(value.clone()) {
                        seen_twice.lock().expect("lock").push(value);
                    }
                }
            }
            seen.len()
        })
    };

    // Rounds: write a slice of the input (acknowledged), wait until both applications have
    // committed part of it, then kill -9 one instance (or, halfway, the broker) and restart it.
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "600000")
        .create()
        .expect("producer");
    let rounds = kills + 1;
    let mut rng_state = 0x2545_f491_4f6c_dd1d_u64;
    let mut last = (0, 0);
    let (mut instance_kills, mut broker_killed, mut revived) = (0, false, 0);
    let deadline = Instant::now() + BOUND;
    for round in 0..=rounds {
        let slice = (records * round / (rounds + 1))..(records * (round + 1) / (rounds + 1));
        for i in slice {
            let key = format!("k{}", i % KEYS);
            let value = i.to_string();
            let mut record = BaseRecord::to("input").key(&key).payload(&value);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
            producer.poll(Duration::ZERO);
        }
        producer.flush(Duration::from_secs(600)).expect("every input record acknowledged");
        if round == rounds {
            break;
        }
        loop {
            assert!(Instant::now() < deadline, "no progress in round {round} within {BOUND:?}; {}", logs(&instances));
            revived += instances.iter_mut().map(Instance::revive).filter(|r| *r).count();
            let now = (committed_total(&bootstrap, "crash-copy"), committed_total(&bootstrap, "crash-count"));
            if now.0 > last.0 && now.1 > last.1 {
                last = now;
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if round == rounds / 2 {
            broker.kill_9_and_restart();
            broker_killed = true;
        } else {
            rng_state ^= rng_state << 13;
            rng_state ^= rng_state >> 7;
            rng_state ^= rng_state << 17;
            let victim = (rng_state % instances.len() as u64) as usize;
            instances[victim].kill_9();
            instances[victim].start();
            instance_kills += 1;
        }
    }

    // Everything committed by both applications, then a clean stop.
    let consumer_for_ends = consumer(&bootstrap, "crash-ends");
    let ends: i64 =
        (0..PARTITIONS).map(|p| consumer_for_ends.fetch_watermarks("input", p, Duration::from_secs(60)).expect("watermarks").1).sum();
    assert_eq!(ends as u64, records);
    while committed_total(&bootstrap, "crash-copy") < ends || committed_total(&bootstrap, "crash-count") < ends {
        assert!(Instant::now() < deadline + BOUND, "the processors did not commit every input record; {}", logs(&instances));
        revived += instances.iter_mut().map(Instance::revive).filter(|r| *r).count();
        std::thread::sleep(Duration::from_millis(500));
    }
    for instance in &mut instances {
        instance.sigterm();
    }
    stop_watch.store(true, Ordering::Relaxed);
    let watched = watcher.join().expect("watcher");

    // Every input record copied exactly once, in order per key.
    let mut copies: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, k, v) in read_all(&bootstrap, "copies", PARTITIONS) {
        copies.entry(k).or_default().push(v.parse().expect("a number"));
    }
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, k, v) in read_all(&bootstrap, "counts", PARTITIONS) {
        counts.entry(k).or_default().push(v.parse().expect("a count"));
    }
    for k in 0..KEYS {
        let key = format!("k{k}");
        let want: Vec<u64> = (0..records).filter(|i| i % KEYS == k).collect();
        assert_eq!(copies.get(&key), Some(&want), "{key}: the copies are not the input, once each, in order");
        let n = want.len() as u64;
        assert_eq!(counts.get(&key).cloned().unwrap_or_default(), (1..=n).collect::<Vec<_>>(), "{key}: counts 1..={n}");
    }
    let duplicates = seen_twice.lock().expect("lock").clone();
    assert!(
        duplicates.is_empty(),
        "the concurrent read_committed consumer saw {} duplicates, e.g. {:?}",
        duplicates.len(),
        &duplicates[..duplicates.len().min(5)]
    );
    eprintln!(
        "{records} records, {instance_kills} instance kills, broker killed {}, {revived} instances restarted after exiting, the watcher saw {watched} distinct copies",
        u8::from(broker_killed)
    );
    assert!(broker_killed, "the broker kill happened");
}
