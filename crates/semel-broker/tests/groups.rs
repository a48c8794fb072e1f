//! Consumer groups with librdkafka: assignments, rebalance on leave, committed offsets that
//! survive a restart.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn group_consumer(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Generous: a loaded machine may delay heartbeats; members leave with LeaveGroup.
        .set("session.timeout.ms", "30000")
        .set("heartbeat.interval.ms", "300");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("consumer")
}

/// A consumer polling on its own thread; records its current assignment.
struct Member {
    assignment: Arc<Mutex<BTreeSet<i32>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, extra: &[(&str, &str)]) -> Self {
        let consumer = group_consumer(bootstrap, group, extra);
        consumer.subscribe(&[topic]).expect("subscribe");
        let assignment = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (Arc::clone(&assignment), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _ = consumer.poll(Duration::from_millis(100));
                if let Ok(tpl) = consumer.assignment() {
                    *a.lock().expect("lock") = tpl.elements().iter().map(|e| e.partition()).collect();
                }
            }
            // Dropping the consumer closes it: LeaveGroup.
        });
        Self { assignment, stop, thread: Some(thread) }
    }

    fn partitions(&self) -> BTreeSet<i32> {
        self.assignment.lock().expect("lock").clone()
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("join");
        }
    }
}

/// Waits until the members' assignments are disjoint, non-empty and cover 0..partitions.
fn wait_for_balanced(members: &[&Member], partitions: i32, within: Duration) -> Vec<BTreeSet<i32>> {
    let deadline = Instant::now() + within;
    loop {
        let sets: Vec<BTreeSet<i32>> = members.iter().map(|m| m.partitions()).collect();
        let total: usize = sets.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
        if sets.iter().all(|s| !s.is_empty()) && total == partitions as usize && union == (0..partitions).collect() {
            return sets;
        }
        assert!(Instant::now() < deadline, "assignments did not balance: {sets:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_consumers_share_twelve_partitions_and_take_over_on_leave() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "shared", 12, &[]).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let members: Vec<Member> = (0..3).map(|_| Member::start(&b, "g1", "shared", &[])).collect();
        let sets = wait_for_balanced(&members.iter().collect::<Vec<_>>(), 12, Duration::from_secs(60));
        assert_eq!(sets.len(), 3);
        let mut members = members;
        let leaver = members.remove(0);
        leaver.stop();
        wait_for_balanced(&members.iter().collect::<Vec<_>>(), 12, Duration::from_secs(60));
        for m in members {
            m.stop();
        }
    })
    .await
    .expect("members");
    broker.broker.expect("running").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_rebalances_incrementally() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "coop", 6, &[]).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let extra = [("partition.assignment.strategy", "cooperative-sticky")];
        let first = Member::start(&b, "g-coop", "coop", &extra);
        wait_for_balanced(&[&first], 6, Duration::from_secs(60));
        let second = Member::start(&b, "g-coop", "coop", &extra);
        wait_for_balanced(&[&first, &second], 6, Duration::from_secs(60));
        first.stop();
        second.stop();
    })
    .await
    .expect("members");
    broker.broker.expect("running").shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_survive_a_restart_and_consumers_resume_there() {
    let mut broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "resume", 2, &[]).await;
    let producer = producer(&bootstrap, &[]);
    let sent = produce_sequence(&producer, "resume", 2, 200, 4).await;
    drop(producer);
    let b = bootstrap.clone();
    // Read 30 messages and commit what was read.
    let committed = tokio::task::spawn_blocking(move || {
        let consumer = group_consumer(&b, "g-resume", &[]);
        consumer.subscribe(&["resume"]).expect("subscribe");
        let mut read = 0;
        let deadline = Instant::now() + Duration::from_secs(60);
        while read < 30 {
            assert!(Instant::now() < deadline, "consumed {read}");
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                m.expect("message");
                read += 1;
            }
        }
        consumer.commit_consumer_state(CommitMode::Sync).expect("commit");
        let committed = consumer.committed(Duration::from_secs(60)).expect("committed");
        committed.elements().iter().map(|e| (e.partition(), e.offset())).collect::<Vec<_>>()
    })
    .await
    .expect("first consumer");
    let total: i64 = committed.iter().map(|(_, o)| if let Offset::Offset(o) = o { *o } else { 0 }).sum();
    assert_eq!(total, 30, "committed positions {committed:?}");

    broker.restart().await;
    let b = broker.bootstrap();
    let sent2 = sent.clone();
    tokio::task::spawn_blocking(move || {
        let consumer = group_consumer(&b, "g-resume", &[]);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition("resume", 0);
        tpl.add_partition("resume", 1);
        let after = consumer.committed_offsets(tpl, Duration::from_secs(60)).expect("committed after restart");
        let again: Vec<(i32, Offset)> = after.elements().iter().map(|e| (e.partition(), e.offset())).collect();
        let mut expected = committed.clone();
        expected.sort_by_key(|(p, _)| *p);
        assert_eq!(again, expected, "offsets survived the restart");
        consumer.subscribe(&["resume"]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first_seen = std::collections::BTreeMap::new();
        while first_seen.len() < 2 {
            assert!(Instant::now() < deadline);
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.expect("message");
                first_seen
                    .entry(m.partition())
                    .or_insert((m.offset(), String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()));
            }
        }
        for (p, o) in &expected {
            // No commit for a partition: auto.offset.reset=earliest starts it at 0.
            let o = if let Offset::Offset(o) = o { o } else { &0 };
            let (offset, value) = &first_seen[p];
            assert_eq!(offset, o, "partition {p} resumes at its committed offset");
            assert_eq!(value, &sent2[p][*o as usize]);
        }
    })
    .await
    .expect("second consumer");
    broker.stop().await;
}
