//! The processor against an in-process semel broker: copy and count exactly once through
//! failures of the transform (an error and a panic, each rolled back), state restored from the
//! changelog by a new instance, and two instances sharing the input through rebalances (eager
//! and cooperative-sticky).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Cluster};
use semel_eos::processor::{Assignment, InputRecord, KeyState, OutputRecord, Processor, ProcessorConfig, Stats, TransformError};
use semel_eos::ClientSettings;

const PARTITIONS: i32 = 3;
/// Long enough for a loaded machine; each wait ends as soon as its condition holds.
const BOUND: Duration = Duration::from_secs(180);

/// `count` records over 20 keys, values numbered from `from`.
fn records(from: usize, count: usize) -> Vec<(String, String)> {
    (from..from + count).map(|i| (format!("k{}", i % 20), format!("v{i}"))).collect()
}

/// Copies every record to "copy" and writes the running count of its key to "counts".
fn copy_and_count(record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let count = state.get().map_or(0, |c| std::str::from_utf8(c).expect("utf8").parse::<u64>().expect("a count")) + 1;
    state.put(count.to_string().into_bytes())?;
    let key = record.key.map(<[u8]>::to_vec);
    out.push(OutputRecord { topic: Some("copy".into()), key: key.clone(), value: record.value.map(<[u8]>::to_vec), headers: vec![] });
    out.push(OutputRecord { topic: None, key, value: Some(count.to_string().into_bytes()), headers: vec![] });
    Ok(())
}

fn config(cluster: &Cluster, instance: &str) -> ProcessorConfig {
    let mut config = ProcessorConfig::new(ClientSettings::new(cluster.bootstrap()), "counter", "input", "counts");
    config.instance_id = instance.to_string();
    config.store = Some("counts".into());
    config
}

struct Running {
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    thread: std::thread::JoinHandle<Result<(), semel_eos::processor::ProcessorError>>,
}

fn start<T: semel_eos::processor::Transform + 'static>(config: ProcessorConfig, transform: T) -> Running {
    let processor = Processor::new(config, transform);
    let stats = processor.stats();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || processor.run(&flag));
    Running { stop, stats, thread }
}

impl Running {
    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("processor thread").expect("processor ended cleanly");
    }
}

/// Waits until the group has committed every input record.
fn wait_all_committed(cluster: &Cluster) {
    let ends = cluster.ends("input", PARTITIONS);
    wait_until("every input record committed", BOUND, || cluster.committed_all("counter", "input", PARTITIONS) == ends);
}

/// Checks the outputs against `input`: every record copied exactly once, in order per key;
/// each key's counts are 1, 2, ..., n with no repeat or gap.
fn check_exactly_once(cluster: &Cluster, input: &[(String, String)]) {
    let mut want: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in input {
        want.entry(k.clone()).or_default().push(v.clone());
    }
    let mut copied: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (_, k, v) in cluster.read_all("copy", 1) {
        copied.entry(k).or_default().push(v);
    }
    // Input partitions are processed independently: compare each key's values as sets of the
    // same size (no loss, no duplicate), and order within a key by input partition order.
    for (key, values) in &want {
        let mut got = copied.get(key).cloned().unwrap_or_default();
        let mut expected = values.clone();
        assert_eq!(got.len(), expected.len(), "key {key}: {} copies of {} records", got.len(), expected.len());
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "key {key}: the copies are not the input");
    }
    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (_, k, v) in cluster.read_all("counts", 1) {
        counts.entry(k).or_default().push(v.parse().expect("a count"));
    }
    for (key, values) in &want {
        let got = counts.get(key).cloned().unwrap_or_default();
        let expected: Vec<u64> = (1..=values.len() as u64).collect();
        assert_eq!(got, expected, "key {key}: the running counts must be 1..={} exactly once each", values.len());
    }
}

fn setup() -> Cluster {
    let cluster = Cluster::start();
    cluster.create_topic_with("input", PARTITIONS);
    cluster.create_topic("copy");
    cluster.create_topic("counts");
    cluster
}

#[test]
fn copy_and_count_exactly_once_through_an_error_and_a_panic_of_the_transform() {
    let cluster = setup();
    let input = records(0, 3_000);
    cluster.produce("input", &input);

    // The transform fails once with an error at v700 and panics once at v1900: each time the
    // transaction is aborted, the partitions rewound and the state reloaded.
    let failed = Arc::new(AtomicBool::new(false));
    let panicked = Arc::new(AtomicBool::new(false));
    let (f, p) = (Arc::clone(&failed), Arc::clone(&panicked));
    let transform = move |r: &InputRecord<'_>, s: &mut KeyState<'_>, out: &mut Vec<OutputRecord>| -> Result<(), TransformError> {
        if r.value == Some(b"v700") && !f.swap(true, Ordering::SeqCst) {
            return Err("injected failure".into());
        }
        if r.value == Some(b"v1900") && !p.swap(true, Ordering::SeqCst) {
            panic!("injected panic");
        }
        copy_and_count(r, s, out)
    };
    let running = start(config(&cluster, "a"), transform);
    wait_all_committed(&cluster);
    let rollbacks = Stats::get(&running.stats.rollbacks);
    running.stop();
    assert!(failed.load(Ordering::SeqCst) && panicked.load(Ordering::SeqCst), "both failures were injected");
    assert!(rollbacks >= 2, "{rollbacks} rollbacks");
    check_exactly_once(&cluster, &input);
}

#[test]
fn a_new_instance_restores_the_state_from_the_changelog() {
    let cluster = setup();
    let first = records(0, 1_500);
    cluster.produce("input", &first);
    let running = start(config(&cluster, "a"), copy_and_count);
    wait_all_committed(&cluster);
    running.stop();

    let second = records(1_500, 1_500);
    cluster.produce("input", &second);
    let running = start(config(&cluster, "b"), copy_and_count);
    wait_all_committed(&cluster);
    let restored = Stats::get(&running.stats.restored_keys);
    running.stop();
    assert_eq!(restored, 20, "the 20 keys' counts came back from the changelog");
    let all: Vec<(String, String)> = first.into_iter().chain(second).collect();
    check_exactly_once(&cluster, &all);
}

#[test]
fn two_instances_share_the_input_through_cooperative_rebalances() {
    two_instances_share_the_input(Assignment::CooperativeSticky);
}

#[test]
fn two_instances_share_the_input_through_eager_rebalances() {
    two_instances_share_the_input(Assignment::Eager);
}

fn two_instances_share_the_input(assignment: Assignment) {
    let cluster = setup();
    let config = |instance: &str| {
        let mut c = config(&cluster, instance);
        c.assignment = assignment;
        c
    };
    let first = records(0, 2_000);
    cluster.produce("input", &first);
    let a = start(config("a"), copy_and_count);
    wait_until("instance a to process", BOUND, || Stats::get(&a.stats.records_in) > 0);
    // b joins while a is processing: partitions move (all of them revoked first when eager,
    // only those that move when cooperative-sticky). Records produced
    // once b owns some partitions are b's to process (a may well have finished the first ones).
    let b = start(config("b"), copy_and_count);
    wait_until("b to get partitions", BOUND, || Stats::get(&b.stats.assigned_partitions) > 0);
    let second = records(2_000, 2_000);
    cluster.produce("input", &second);
    wait_until("b to process", BOUND, || Stats::get(&b.stats.records_in) > 0);
    // a leaves: b takes everything over.
    a.stop();
    let third = records(4_000, 1_000);
    cluster.produce("input", &third);
    wait_all_committed(&cluster);
    b.stop();
    let all: Vec<(String, String)> = first.into_iter().chain(second).chain(third).collect();
    check_exactly_once(&cluster, &all);
}
