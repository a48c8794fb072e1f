//! TransactionalSession against an in-process semel broker: commits carry records and input
//! offsets together, aborts leave nothing visible, and a fenced producer's transaction is
//! rolled back and never becomes visible.

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::BaseRecord;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use semel_broker::{Broker, BrokerConfig};
use semel_eos::session::Rollback;
use semel_eos::{ClientSettings, CommitOutcome, TransactionalSession};

/// Generous: a busy machine can be slow; nothing here waits this long when things work.
const CALL: Duration = Duration::from_secs(60);
const TXN_TIMEOUT: Duration = Duration::from_secs(60);

struct Cluster {
    runtime: tokio::runtime::Runtime,
    broker: Option<Broker>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let config =
            BrokerConfig { listen: "127.0.0.1:0".parse().expect("addr"), data_dir: dir.path().to_path_buf(), ..BrokerConfig::default() };
        let broker = runtime.block_on(Broker::start(config)).expect("broker");
        Self { runtime, broker: Some(broker), _dir: dir }
    }

    fn bootstrap(&self) -> String {
        self.broker.as_ref().expect("running").bootstrap()
    }

    fn create_topic(&self, name: &str) {
        let admin: AdminClient<DefaultClientContext> =
            ClientConfig::new().set("bootstrap.servers", self.bootstrap()).create().expect("admin");
        let topic = NewTopic::new(name, 1, TopicReplication::Fixed(1));
        let results = self.runtime.block_on(admin.create_topics(&[topic], &AdminOptions::new())).expect("create");
        for r in results {
            r.expect("created");
        }
    }

    /// Values of `topic`, read from the beginning up to its end with `isolation`.
    fn read(&self, topic: &str, isolation: &str) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", "session-test-reader")
            .set("isolation.level", isolation)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, 0, Offset::Beginning).expect("tpl");
        consumer.assign(&tpl).expect("assign");
        // The end for this isolation: the last stable offset for read_committed.
        let (_, high) = consumer.fetch_watermarks(topic, 0, CALL).expect("watermarks");
        let mut values = Vec::new();
        let deadline = Instant::now() + CALL;
        loop {
            let position = consumer.position().expect("position").find_partition(topic, 0).and_then(|p| p.offset().to_raw()).unwrap_or(0);
            if position >= high {
                return values;
            }
            assert!(Instant::now() < deadline, "{topic} not read to {high} ({isolation}) within {CALL:?}");
            if let Some(message) = consumer.poll(Duration::from_millis(200)) {
                let message = message.expect("message");
                values.push(String::from_utf8(message.payload().unwrap_or_default().to_vec()).expect("utf8"));
            }
        }
    }

    fn committed(&self, group: &str, topic: &str) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(topic, 0);
        let committed = consumer.committed_offsets(tpl, CALL).expect("committed");
        committed.find_partition(topic, 0).and_then(|p| p.offset().to_raw()).filter(|o| *o >= 0)
    }
}

fn send(session: &TransactionalSession, topic: &str, values: &[&str]) {
    for v in values {
        session.producer().send(BaseRecord::<str, str>::to(topic).key(*v).payload(*v)).map_err(|(e, _)| e).expect("enqueue");
    }
}

/// The group metadata of a consumer of `group` (not a member: generation -1, as a simple
/// consumer's transactional offset commit carries).
fn group_metadata(bootstrap: &str, group: &str) -> rdkafka::consumer::ConsumerGroupMetadata {
    let consumer: BaseConsumer = ClientSettings::new(bootstrap).read_committed_consumer(group).create().expect("consumer");
    consumer.group_metadata().expect("group metadata")
}

#[test]
fn a_commit_makes_records_and_input_offsets_visible_together_and_an_abort_neither() {
    let cluster = Cluster::start();
    cluster.create_topic("in");
    cluster.create_topic("out");
    let settings = ClientSettings::new(cluster.bootstrap());
    let mut session = TransactionalSession::open(&settings, "copy-1", TXN_TIMEOUT, CALL).expect("open");
    let group = group_metadata(&cluster.bootstrap(), "copy");

    session.begin().expect("begin");
    send(&session, "out", &["a", "b", "c"]);
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset("in", 0, Offset::Offset(3)).expect("offsets");
    assert_eq!(session.commit(Some((&offsets, &group))).expect("commit"), CommitOutcome::Committed);
    assert_eq!(cluster.read("out", "read_committed"), ["a", "b", "c"]);
    assert_eq!(cluster.committed("copy", "in"), Some(3));

    session.begin().expect("begin");
    send(&session, "out", &["x", "y"]);
    // Written to the log before the abort (an abort purges what was not sent yet).
    rdkafka::producer::Producer::flush(session.producer(), CALL).expect("flush");
    assert!(matches!(session.abort().expect("abort"), Rollback::Aborted(_)));

    session.begin().expect("begin");
    send(&session, "out", &["d"]);
    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset("in", 0, Offset::Offset(4)).expect("offsets");
    assert_eq!(session.commit(Some((&offsets, &group))).expect("commit"), CommitOutcome::Committed);

    assert_eq!(cluster.read("out", "read_committed"), ["a", "b", "c", "d"], "the aborted records are not visible");
    assert_eq!(cluster.read("out", "read_uncommitted"), ["a", "b", "c", "x", "y", "d"]);
    assert_eq!(cluster.committed("copy", "in"), Some(4));
    assert_eq!(session.reinitialisations(), 0);
    assert!(matches!(session.commit(None), Err(semel_eos::SessionError::NotOpen)));
}

#[test]
fn a_fenced_producer_rolls_back_and_its_transaction_never_becomes_visible() {
    let cluster = Cluster::start();
    cluster.create_topic("out");
    let settings = ClientSettings::new(cluster.bootstrap());
    let mut zombie = TransactionalSession::open(&settings, "shared-id", TXN_TIMEOUT, CALL).expect("open zombie");
    zombie.begin().expect("begin");
    send(&zombie, "out", &["zombie-1"]);

    // A new producer with the same transactional.id fences the first and aborts its
    // transaction at the coordinator.
    let mut live = TransactionalSession::open(&settings, "shared-id", TXN_TIMEOUT, CALL).expect("open live");
    live.begin().expect("begin");
    send(&live, "out", &["live-1"]);
    assert_eq!(live.commit(None).expect("commit"), CommitOutcome::Committed);

    send(&zombie, "out", &["zombie-2"]);
    let outcome = zombie.commit(None).expect("zombie commit");
    assert!(matches!(outcome, CommitOutcome::RolledBack(Rollback::Reinitialised(_))), "the fenced commit is rolled back: {outcome:?}");
    assert_eq!(zombie.reinitialisations(), 1);

    assert_eq!(cluster.read("out", "read_committed"), ["live-1"], "nothing of the fenced producer is visible");
}
