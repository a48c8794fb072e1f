//! TransactionalSession against an in-process semel broker: commits carry records and input
//! offsets together, aborts leave nothing visible, and a fenced producer's transaction is
//! rolled back and never becomes visible.

mod common;

use std::time::Duration;

use common::{wait_until, Cluster, CALL};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};
use semel_eos::session::Rollback;
use semel_eos::{ClientSettings, CommitOutcome, TransactionalSession};

const TXN_TIMEOUT: Duration = Duration::from_secs(60);

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
    // Kafka answers EndTxn once the commit is decided and writes the markers after: the
    // committed offset may take a moment to be readable (reads wait for a stable end).
    assert_eq!(cluster.read("out", "read_committed"), ["a", "b", "c"]);
    wait_until("offset 3 committed", CALL, || cluster.committed("copy", "in") == Some(3));

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

    wait_until("offset 4 committed", CALL, || cluster.committed("copy", "in") == Some(4));
    assert_eq!(cluster.read("out", "read_committed"), ["a", "b", "c", "d"], "the aborted records are not visible");
    assert_eq!(cluster.read("out", "read_uncommitted"), ["a", "b", "c", "x", "y", "d"]);
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

    // The zombie may or may not have learned of the fence yet (its first record's produce may
    // already have been refused): if it has, librdkafka refuses the send as fatal at once.
    if let Err((e, _)) = zombie.producer().send(BaseRecord::<str, str>::to("out").key("zombie-2").payload("zombie-2")) {
        assert!(
            matches!(e.rdkafka_error_code(), Some(rdkafka::types::RDKafkaErrorCode::Fatal)),
            "a send of a fenced producer fails only as fatal: {e}"
        );
    }
    let outcome = zombie.commit(None).expect("zombie commit");
    assert!(matches!(outcome, CommitOutcome::RolledBack(Rollback::Reinitialised(_))), "the fenced commit is rolled back: {outcome:?}");
    assert_eq!(zombie.reinitialisations(), 1);

    assert_eq!(cluster.read("out", "read_committed"), ["live-1"], "nothing of the fenced producer is visible");
}
