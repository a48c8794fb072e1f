//! `semel process copy` instances stopped with SIGSTOP, with real binaries:
//! - a zombie: an instance stopped longer than its session timeout, with a transaction open,
//!   while another takes its partitions; after SIGCONT its transaction is fenced and nothing
//!   it wrote before or after the fence becomes visible;
//! - a transaction left open longer than `transaction.timeout.ms`: the coordinator aborts it,
//!   and the instance, resumed, re-initialises and carries on.
//!
//! In both, every input record is copied exactly once. Each step waits for a condition it can
//! see (progress lines, committed offsets, the last stable offset), not for a time.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;

use common::kafka::{committed, consumer, create_topic, ends, logs, produce, read_all, Instance};
use common::TestBroker;

/// Generous for waits that normally end in seconds.
const BOUND: Duration = Duration::from_secs(240);

/// The figure before `label` in an instance's last progress line ("N records in", "N commits").
fn progress(instance: &Instance, label: &str) -> u64 {
    instance
        .tail(20)
        .iter()
        .rev()
        .find_map(|l| {
            let rest = l.strip_prefix("semel process: ")?;
            rest.split(", ").find_map(|part| part.strip_suffix(label)?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn records_in(instance: &Instance) -> u64 {
    progress(instance, "records in")
}

fn wait_for(what: &str, instances: &[&Instance], mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        let all: Vec<String> = instances.iter().map(|i| format!("{}: {:?}", i.log.display(), i.tail(3))).collect();
        assert!(Instant::now() < deadline, "timed out waiting for {what}; {all:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn numbered(from: u64, count: u64) -> Vec<(String, String)> {
    (from..from + count).map(|i| (format!("k{}", i % 10), i.to_string())).collect()
}

/// Every number below `total` exactly once in `copies`.
fn check_copied_once(bootstrap: &str, total: u64) {
    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (_, _, v) in read_all(bootstrap, "copies", 1) {
        *seen.entry(v.parse().expect("a number")).or_default() += 1;
    }
    let twice: Vec<u64> = seen.iter().filter(|(_, n)| **n > 1).map(|(v, _)| *v).collect();
    let missing: Vec<u64> = (0..total).filter(|v| !seen.contains_key(v)).collect();
    assert!(twice.is_empty() && missing.is_empty(), "duplicated {twice:?}, missing {missing:?}");
    assert_eq!(seen.len() as u64, total);
}

fn copier(bootstrap: &str, instance: &str, log: std::path::PathBuf, extra: &[&str]) -> Instance {
    let mut args = vec![
        "copy",
        "--bootstrap",
        bootstrap,
        "--application-id",
        "copier",
        "--instance-id",
        instance,
        "--input",
        "input",
        "--output",
        "copies",
        "--progress-seconds",
        "1",
    ];
    args.extend_from_slice(extra);
    Instance::new(&args, log)
}

#[test]
fn a_zombie_instance_is_fenced_and_nothing_it_wrote_becomes_visible() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = TestBroker::start(&tmp.path().join("data"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "input", 2);
    create_topic(&bootstrap, "copies", 1);
    // The zombie commits only after 1,000 records: its first 100 stay in an open transaction.
    let slow_commits = ["--commit-records", "1000", "--commit-interval-ms", "600000"];
    let session = ["--property", "session.timeout.ms=6000", "--transaction-timeout-ms", "15000"];
    let zombie_args: Vec<&str> = slow_commits.iter().chain(session.iter()).copied().collect();
    let zombie = copier(&bootstrap, "zombie", tmp.path().join("zombie.log"), &zombie_args);
    produce(&bootstrap, "input", numbered(0, 100));
    wait_for("the zombie-to-be to process the first 100 records", &[&zombie], || records_in(&zombie) >= 100);
    zombie.signal("-STOP");

    // Another instance takes over once the stopped one's session has expired, and copies
    // everything (its commits come every 100 ms).
    let live = copier(&bootstrap, "live", tmp.path().join("live.log"), &session);
    produce(&bootstrap, "input", numbered(100, 100));
    let input_ends = ends(&bootstrap, "input", 2);
    wait_for("the live instance to commit all 200", &[&zombie, &live], || committed(&bootstrap, "copier", "input", 2) == input_ends);

    // The zombie wakes with its transaction open: it is fenced and rolls back. Then it leaves
    // (a last commit, of whatever it owns now) and the live instance copies the rest.
    zombie.signal("-CONT");
    wait_for("the zombie to be fenced and roll back", &[&zombie, &live], || progress(&zombie, "rollbacks") >= 1);
    let mut zombie = zombie;
    assert!(zombie.sigterm(), "the zombie did not stop cleanly: {:?}", zombie.tail(5));
    produce(&bootstrap, "input", numbered(200, 200));
    let input_ends = ends(&bootstrap, "input", 2);
    wait_for("all 400 committed", &[&live], || committed(&bootstrap, "copier", "input", 2) == input_ends);
    let mut live = live;
    assert!(live.sigterm(), "the live instance did not stop cleanly; {}", logs(std::slice::from_ref(&live)));
    // The copies' end must be stable (no transaction left open), and hold each record once.
    let c = consumer(&bootstrap, "lso-check");
    let (_, stable) = c.fetch_watermarks("copies", 0, Duration::from_secs(60)).expect("watermarks");
    assert!(stable > 0);
    check_copied_once(&bootstrap, 400);
}

#[test]
fn a_transaction_left_open_past_its_timeout_is_aborted_and_the_instance_recovers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let broker = TestBroker::start(&tmp.path().join("data"));
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "input", 2);
    create_topic(&bootstrap, "copies", 1);
    let args = ["--commit-records", "300", "--commit-interval-ms", "600000", "--transaction-timeout-ms", "8000"];
    let mut instance = copier(&bootstrap, "only", tmp.path().join("only.log"), &args);
    produce(&bootstrap, "input", numbered(0, 100));
    wait_for("the instance to process 100 records in an open transaction", &[&instance], || records_in(&instance) >= 100);
    instance.signal("-STOP");

    // The coordinator aborts it: the copies' last stable offset reaches their high watermark,
    // and nothing of it is readable.
    let committed_reader = consumer(&bootstrap, "lso");
    let uncommitted: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("isolation.level", "read_uncommitted")
        .create()
        .expect("consumer");
    wait_for("the coordinator to abort the open transaction", &[&instance], || {
        let (_, stable) = committed_reader.fetch_watermarks("copies", 0, Duration::from_secs(60)).expect("watermarks");
        let (_, high) = uncommitted.fetch_watermarks("copies", 0, Duration::from_secs(60)).expect("watermarks");
        high >= 100 && stable == high
    });
    assert!(read_all(&bootstrap, "copies", 1).is_empty(), "the aborted copies are not visible");

    instance.signal("-CONT");
    produce(&bootstrap, "input", numbered(100, 300));
    // Fenced (its epoch was bumped by the abort): it re-initialises, rewinds to offset 0 and
    // processes all 400 again; the last ones are committed by the stop.
    wait_for("the instance to roll back and process all 400 again", &[&instance], || {
        progress(&instance, "rollbacks") >= 1 && records_in(&instance) >= 500
    });
    assert!(instance.sigterm(), "the instance did not stop cleanly: {:?}", instance.tail(5));
    assert_eq!(committed(&bootstrap, "copier", "input", 2), ends(&bootstrap, "input", 2), "every input record committed");
    check_copied_once(&bootstrap, 400);
}
