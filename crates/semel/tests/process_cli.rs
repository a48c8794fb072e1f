//! `semel process count` and `semel process sum --field F` as child processes against
//! `semel serve`: the running results of each key are exact (1, 2, ..., n; the true sums),
//! and both stop cleanly on SIGTERM. A missing --input is a clear error.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::kafka::{committed, create_topic, ends, produce, read_all};
use common::{free_port, start_semel};

const BOUND: Duration = Duration::from_secs(180);

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
    create_topic(&bootstrap, "orders", 2);
    create_topic(&bootstrap, "order-counts", 1);
    create_topic(&bootstrap, "order-sums", 1);

    let mut truth: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut orders = Vec::new();
    for i in 0..400u64 {
        let key = format!("customer-{}", i % 7);
        let value = format!("{{\"amount\": {}.5, \"id\": {i}}}", i % 13);
        let entry = truth.entry(key.clone()).or_default();
        entry.0 += 1;
        entry.1 += (i % 13) as f64 + 0.5;
        orders.push((key, value));
    }
    produce(&bootstrap, "orders", orders);

    let counter = process(&bootstrap, &["count", "--input", "orders", "--output", "order-counts", "--application-id", "counts"]);
    let summer =
        process(&bootstrap, &["sum", "--field", "amount", "--input", "orders", "--output", "order-sums", "--application-id", "sums"]);
    let ends = ends(&bootstrap, "orders", 2);
    let deadline = Instant::now() + BOUND;
    while committed(&bootstrap, "counts", "orders", 2) != ends || committed(&bootstrap, "sums", "orders", 2) != ends {
        assert!(Instant::now() < deadline, "the processors did not commit every input record within {BOUND:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let progress = sigterm_and_wait(counter);
    assert!(progress.contains("semel process: 400 records in, 400 out"), "last progress line: {progress}");
    sigterm_and_wait(summer);

    let mut counts: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (k, v) in read_all(&bootstrap, "order-counts", 1).into_iter().map(|(_, k, v)| (k, v)) {
        counts.entry(k).or_default().push(v.parse().expect("a count"));
    }
    let mut sums: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (k, v) in read_all(&bootstrap, "order-sums", 1).into_iter().map(|(_, k, v)| (k, v)) {
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
