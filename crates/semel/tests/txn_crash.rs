//! Transactions under kill -9: a transactional writer commits (and sometimes aborts) small
//! transactions over three partitions while the broker is killed -9 and restarted at random
//! points, including between EndTxn and the last marker. Afterwards a read_committed consumer
//! sees every acknowledged commit whole, nothing of any aborted transaction, no transaction
//! in part, and no duplicate.
//!
//! SEMEL_TXN_CRASH_TRANSACTIONS sets the number of transactions (default 300; more if the broker
//! has not been killed twice by then).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use common::{free_port, kill_9, start_semel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const PARTITIONS: i32 = 3;
const T: Duration = Duration::from_secs(30);

fn new_producer(bootstrap: &str) -> ThreadedProducer<DefaultProducerContext> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", "crash-writer")
        .set("transaction.timeout.ms", "10000")
        .set("message.timeout.ms", "10000")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.init_transactions(T) {
            Ok(()) => return producer,
            Err(e) if Instant::now() < deadline => {
                eprintln!("init_transactions: {e}; retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => panic!("init_transactions never succeeded: {e}"),
        }
    }
}

/// What the writer knows of a transaction's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Committed,
    Aborted,
    /// The writer lost track (fatal error, timeout): whole or absent, never partial.
    Unknown,
}

fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.is_retriable())
}
fn requires_abort(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(t) if t.txn_requires_abort())
}

#[test]
fn transactions_stay_atomic_across_kill_9() {
    let transactions: usize = std::env::var("SEMEL_TXN_CRASH_TRANSACTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    let tmp = tempfile::tempdir().expect("tmp");
    let port = free_port();
    let bootstrap = format!("127.0.0.1:{port}");
    let semel = start_semel(port, tmp.path());
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &bootstrap).create().expect("admin");
    let topic = rdkafka::admin::NewTopic::new("atomic", PARTITIONS, rdkafka::admin::TopicReplication::Fixed(1));
    for r in runtime.block_on(admin.create_topics(&[topic], &rdkafka::admin::AdminOptions::new())).expect("create") {
        r.expect("created");
    }
    drop(admin);

    // The killer: kill -9 and restart at pseudo-random moments while the writer runs. Before
    // each kill the writer has finished a transaction since the last restart, so that the kills
    // cannot keep it from making progress, however slow the machine.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let kills = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let killer = {
        let (stop, kills, progress, dir) = (stop.clone(), kills.clone(), progress.clone(), tmp.path().to_path_buf());
        std::thread::spawn(move || {
            let mut semel = semel;
            let mut seed: u64 = 0x5eed_1234;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let since_restart = progress.load(std::sync::atomic::Ordering::Relaxed);
                while progress.load(std::sync::atomic::Ordering::Relaxed) == since_restart {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return semel;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let wait = 300 + (seed >> 33) % 1200;
                std::thread::sleep(Duration::from_millis(wait));
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                kill_9(&mut semel);
                kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
                semel = start_semel(port, &dir);
            }
            semel
        })
    };

    let mut producer = new_producer(&bootstrap);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(transactions);
    // At least `transactions`, and on until the broker has been killed twice.
    let started = Instant::now();
    while outcomes.len() < transactions || kills.load(std::sync::atomic::Ordering::Relaxed) < 2 {
        assert!(started.elapsed() < Duration::from_secs(900), "the writer stalled after {} transactions", outcomes.len());
        let txn = outcomes.len();
        // One transaction in seven is aborted on purpose.
        let abort = txn % 7 == 3;
        let mut outcome = Outcome::Unknown;
        'attempt: for _ in 0..3 {
            if let Err(e) = producer.begin_transaction() {
                eprintln!("txn {txn}: begin: {e}");
                producer = new_producer(&bootstrap);
                continue 'attempt;
            }
            for p in 0..PARTITIONS {
                let value = format!("t{txn}-p{p}");
                let mut record = BaseRecord::<(), str, ()>::to("atomic").partition(p).payload(&value);
                while let Err((e, r)) = producer.send(record) {
                    eprintln!("txn {txn}: send: {e}");
                    record = r;
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let result = if abort { producer.abort_transaction(T) } else { producer.commit_transaction(T) };
            match result {
                Ok(()) => {
                    outcome = if abort { Outcome::Aborted } else { Outcome::Committed };
                    break 'attempt;
                }
                Err(e) => {
                    eprintln!("txn {txn}: end: {e}");
                    if !abort && is_retriable(&e) {
                        // Retrying commit_transaction is allowed after a retriable error.
                        let mut retried = producer.commit_transaction(T);
                        while let Err(e) = &retried {
                            if !is_retriable(e) {
                                break;
                            }
                            retried = producer.commit_transaction(T);
                        }
                        if retried.is_ok() {
                            outcome = Outcome::Committed;
                            break 'attempt;
                        }
                    }
                    if requires_abort(&e) && producer.abort_transaction(T).is_ok() {
                        outcome = Outcome::Aborted;
                        break 'attempt;
                    }
                    // Lost track: a new producer fences this one and aborts anything open.
                    producer = new_producer(&bootstrap);
                    outcome = Outcome::Unknown;
                    break 'attempt;
                }
            }
        }
        outcomes.push(outcome);
        progress.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _semel = killer.join().expect("killer");
    drop(producer);

    // Read everything committed.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "atomic-check")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset("atomic", p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen: HashMap<usize, BTreeSet<i32>> = HashMap::new();
    let mut duplicates = 0;
    // Until every acknowledged commit is read whole (however long the reader takes to get
    // going), then until nothing more comes for a while.
    let committed: Vec<usize> = (0..outcomes.len()).filter(|t| outcomes[*t] == Outcome::Committed).collect();
    let all_committed_read =
        |seen: &HashMap<usize, BTreeSet<i32>>| committed.iter().all(|t| seen.get(t).map_or(0, BTreeSet::len) == PARTITIONS as usize);
    let mut quiet_until = Instant::now() + Duration::from_secs(5);
    let deadline = Instant::now() + Duration::from_secs(120);
    while (Instant::now() < quiet_until || !all_committed_read(&seen)) && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            let (t, p) = value.trim_start_matches('t').split_once("-p").expect("value shape");
            let (t, p): (usize, i32) = (t.parse().expect("txn"), p.parse().expect("partition"));
            assert_eq!(p, m.partition(), "{value} in the wrong partition");
            if !seen.entry(t).or_default().insert(p) {
                duplicates += 1;
            }
            quiet_until = Instant::now() + Duration::from_secs(2);
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (txn, outcome) in outcomes.iter().enumerate() {
        let parts = seen.get(&txn).map_or(0, BTreeSet::len);
        match outcome {
            Outcome::Committed => assert_eq!(parts, PARTITIONS as usize, "committed transaction {txn} is visible whole"),
            Outcome::Aborted => assert_eq!(parts, 0, "aborted transaction {txn} is invisible"),
            Outcome::Unknown => assert!(parts == 0 || parts == PARTITIONS as usize, "transaction {txn} is all or nothing, saw {parts}"),
        }
        *counts
            .entry(match outcome {
                Outcome::Committed => "committed",
                Outcome::Aborted => "aborted",
                Outcome::Unknown => "unknown",
            })
            .or_default() += 1;
    }
    assert_eq!(duplicates, 0, "no record twice");
    assert!(seen.keys().all(|t| *t < outcomes.len()));
    let kills = kills.load(std::sync::atomic::Ordering::Relaxed);
    println!("transactions under kill -9: {kills} kills, outcomes {counts:?}, visible transactions {}", seen.len());
    assert!(kills >= 2, "the broker was killed during the run ({kills})");
}
