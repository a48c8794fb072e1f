//! Transactions with librdkafka: commit and abort, read_committed and read_uncommitted,
//! fencing, consume-transform-produce with send_offsets_to_transaction, timeouts.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Timeout of client operations: generous, so that a loaded machine does not trip it.
const T: Duration = Duration::from_secs(60);

fn txn_producer(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> FutureProducer {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("transactional.id", id).set("linger.ms", "5");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("transactional producer")
}

async fn send_values(producer: &FutureProducer, topic: &str, partitions: i32, prefix: &str, per_partition: usize) {
    let mut futures = Vec::new();
    for p in 0..partitions {
        for i in 0..per_partition {
            let value = format!("{prefix}-{p}-{i}");
            futures.push(
                producer
                    .send_result(FutureRecord::<str, str>::to(topic).partition(p).payload(&value))
                    .map_err(|(e, _)| e)
                    .expect("enqueue"),
            );
        }
    }
    for f in futures {
        f.await.expect("future").expect("delivered");
    }
}

/// Every value readable with the isolation level, per partition, in order.
fn read_all(bootstrap: &str, topic: &str, partitions: i32, isolation: &str, expected: usize) -> BTreeMap<i32, Vec<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("reader-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut got: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut quiet_until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline && (got.values().map(Vec::len).sum::<usize>() < expected || Instant::now() < quiet_until) {
        if let Some(m) = consumer.poll(Duration::from_millis(100)) {
            let m = m.expect("message");
            got.entry(m.partition()).or_default().push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            quiet_until = Instant::now() + Duration::from_millis(500);
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_sees_exactly_the_committed_records() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "txn", 3, &[]).await;
    let producer = txn_producer(&bootstrap, "writer", &[]);
    producer.init_transactions(T).expect("init");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "txn", 3, "c1", 10).await;
    producer.commit_transaction(T).expect("commit");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "txn", 3, "a1", 10).await;
    producer.abort_transaction(T).expect("abort");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "txn", 3, "c2", 5).await;
    producer.commit_transaction(T).expect("commit");

    let b = bootstrap.clone();
    let (committed, uncommitted) =
        tokio::task::spawn_blocking(move || (read_all(&b, "txn", 3, "read_committed", 45), read_all(&b, "txn", 3, "read_uncommitted", 75)))
            .await
            .expect("readers");
    for p in 0..3 {
        let expected: Vec<String> = (0..10).map(|i| format!("c1-{p}-{i}")).chain((0..5).map(|i| format!("c2-{p}-{i}"))).collect();
        assert_eq!(committed[&p], expected, "partition {p}: read_committed sees the committed records only");
        assert_eq!(uncommitted[&p].len(), 25, "partition {p}: read_uncommitted sees aborted records too");
        assert!(uncommitted[&p].iter().any(|v| v.starts_with("a1-")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_fences_the_first() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "fence", 1, &[]).await;
    let first = txn_producer(&bootstrap, "same-id", &[]);
    first.init_transactions(T).expect("init first");
    first.begin_transaction().expect("begin");
    send_values(&first, "fence", 1, "zombie", 3).await;
    let second = txn_producer(&bootstrap, "same-id", &[]);
    second.init_transactions(T).expect("init second: aborts the first's transaction");
    let error = first.commit_transaction(T).expect_err("the first producer is fenced");
    assert!(error.rdkafka_error_code().is_some(), "{error:?}");
    let fatal = matches!(&error, rdkafka::error::KafkaError::Transaction(e) if e.is_fatal());
    assert!(fatal, "fencing is fatal: {error:?}");
    second.begin_transaction().expect("begin");
    send_values(&second, "fence", 1, "live", 2).await;
    second.commit_transaction(T).expect("commit");
    let b = bootstrap.clone();
    let committed = tokio::task::spawn_blocking(move || read_all(&b, "fence", 1, "read_committed", 2)).await.expect("reader");
    assert_eq!(committed[&0], ["live-0-0", "live-0-1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_transform_produce_moves_offsets_and_output_atomically() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "input", 2, &[]).await;
    create_topic(&bootstrap, "output", 2, &[]).await;
    let input = producer(&bootstrap, &[]);
    produce_sequence(&input, "input", 2, 100, 3).await;
    let b = bootstrap.clone();
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", "copier")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .create()
            .expect("consumer");
        consumer.subscribe(&["input"]).expect("subscribe");
        let producer = txn_producer(&b, "copier-txn", &[]);
        producer.init_transactions(T).expect("init");
        let mut copied = 0;
        let mut aborted_once = false;
        let deadline = Instant::now() + Duration::from_secs(120);
        while copied < 100 {
            assert!(Instant::now() < deadline, "copied {copied}");
            let mut batch = Vec::new();
            while batch.len() < 20 {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(m) => {
                        let m = m.expect("message");
                        batch.push((m.partition(), String::from_utf8_lossy(m.payload().unwrap_or_default()).to_uppercase()));
                    }
                    None => break,
                }
            }
            if batch.is_empty() {
                continue;
            }
            producer.begin_transaction().expect("begin");
            for (p, v) in &batch {
                rt.block_on(producer.send(FutureRecord::<str, str>::to("output").partition(*p).payload(v), T)).expect("send");
            }
            let positions = consumer.position().expect("position");
            producer.send_offsets_to_transaction(&positions, &consumer.group_metadata().expect("group metadata"), T).expect("send offsets");
            if !aborted_once {
                // The first batch is aborted: its output disappears and the input is re-read.
                aborted_once = true;
                producer.abort_transaction(T).expect("abort");
                let committed = consumer.committed(T).expect("committed");
                for e in committed.elements() {
                    let offset = match e.offset() {
                        Offset::Offset(o) => Offset::Offset(o),
                        _ => Offset::Beginning,
                    };
                    consumer.seek(e.topic(), e.partition(), offset, T).expect("rewind");
                }
                continue;
            }
            producer.commit_transaction(T).expect("commit");
            copied += batch.len();
        }
        assert_eq!(copied, 100);
        let committed = consumer.committed(T).expect("committed");
        let total: i64 = committed.elements().iter().map(|e| if let Offset::Offset(o) = e.offset() { o } else { 0 }).sum();
        assert_eq!(total, 100, "the group's committed offsets moved with the output");
        let output = read_all(&b, "output", 2, "read_committed", 100);
        assert_eq!(output.values().map(Vec::len).sum::<usize>(), 100, "each input record copied once: {output:?}");
    })
    .await
    .expect("copier");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_past_its_timeout_is_aborted_and_the_producer_fenced() {
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "slow", 1, &[]).await;
    let timeout = Duration::from_millis(2000);
    let producer = txn_producer(&bootstrap, "slowpoke", &[("transaction.timeout.ms", "2000")]);
    producer.init_transactions(T).expect("init");
    let state = broker.broker.as_ref().expect("running").state().clone();
    let partition = state.metadata.topic("slow").expect("topic").partitions[0].clone();
    // The broker times the transaction from its first AddPartitionsToTxn, after `opened`: until
    // `timeout` has passed here it is certainly open. Only a machine that took longer than that
    // for the sends may see them refused or the abort already done.
    let opened = Instant::now();
    producer.begin_transaction().expect("begin");
    let mut delivered = 0;
    for i in 0..3 {
        let value = format!("stuck-0-{i}");
        delivered += usize::from(producer.send(FutureRecord::<str, str>::to("slow").partition(0).payload(&value), T).await.is_ok());
    }
    let held = partition.last_stable_offset() == 0;
    if opened.elapsed() < timeout {
        assert_eq!(delivered, 3, "the sends of the open transaction are delivered");
        assert!(held, "the open transaction holds the LSO");
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while partition.last_stable_offset() == 0 {
        assert!(Instant::now() < deadline, "the transaction was never aborted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(partition.last_stable_offset(), partition.high_watermark(), "the abort marker let the LSO advance");
    let error = producer.commit_transaction(T).expect_err("the timed-out producer cannot commit");
    assert!(error.rdkafka_error_code().is_some(), "{error:?}");
    let b = bootstrap.clone();
    let committed = tokio::task::spawn_blocking(move || read_all(&b, "slow", 1, "read_committed", 0)).await.expect("reader");
    assert!(committed.get(&0).is_none_or(Vec::is_empty), "nothing of the aborted transaction is visible");
}

/// KIP-664: an open transaction is listed, described, its producer shown on the partition,
/// and an ABORT written with WriteTxnMarkers (`kafka-transactions abort`) releases the LSO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_transactions_can_be_listed_described_and_aborted_by_hand() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let broker = TestBroker::start().await;
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ops", 1, &[]).await;
    let producer = txn_producer(&bootstrap, "hanging", &[]);
    producer.init_transactions(T).expect("init");
    producer.begin_transaction().expect("begin");
    send_values(&producer, "ops", 1, "open", 2).await;

    let mut client = common::raw::RawClient::connect(&bootstrap).await;
    let listed: ListTransactionsResponse = client
        .call(
            ApiKey::ListTransactions,
            1,
            &ListTransactionsRequest::default()
                .with_state_filters(vec![StrBytes::from_static_str("Ongoing"), StrBytes::from_static_str("Nonsense")])
                .with_duration_filter(-1),
        )
        .await;
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.transaction_states[0].transactional_id.0.as_str(), "hanging");
    assert_eq!(listed.unknown_state_filters.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["Nonsense"]);
    let described: DescribeTransactionsResponse = client
        .call(
            ApiKey::DescribeTransactions,
            0,
            &DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_static_str("hanging")),
                TransactionalId(StrBytes::from_static_str("nobody")),
            ]),
        )
        .await;
    let open = &described.transaction_states[0];
    assert_eq!((open.error_code, open.transaction_state.as_str()), (0, "Ongoing"));
    assert_eq!(open.topics[0].topic.0.as_str(), "ops");
    assert_eq!(described.transaction_states[1].error_code, 105, "TRANSACTIONAL_ID_NOT_FOUND");
    let producers: DescribeProducersResponse = client
        .call(
            ApiKey::DescribeProducers,
            0,
            &DescribeProducersRequest::default().with_topics(vec![describe_producers_request::TopicRequest::default()
                .with_name(TopicName(StrBytes::from_static_str("ops")))
                .with_partition_indexes(vec![0])]),
        )
        .await;
    let active = &producers.topics[0].partitions[0].active_producers[0];
    assert_eq!((active.producer_id.0, active.current_txn_start_offset, active.last_sequence), (open.producer_id.0, 0, 1));

    let partition = broker.broker.as_ref().expect("running").state().metadata.topic("ops").expect("topic").partitions[0].clone();
    assert_eq!(partition.last_stable_offset(), 0);
    let marker = write_txn_markers_request::WritableTxnMarker::default()
        .with_producer_id(open.producer_id)
        .with_producer_epoch(open.producer_epoch)
        .with_transaction_result(false)
        .with_coordinator_epoch(0)
        .with_topics(vec![write_txn_markers_request::WritableTxnMarkerTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("ops")))
            .with_partition_indexes(vec![0])]);
    let written: WriteTxnMarkersResponse =
        client.call(ApiKey::WriteTxnMarkers, 1, &WriteTxnMarkersRequest::default().with_markers(vec![marker.clone()])).await;
    assert_eq!(written.markers[0].topics[0].partitions[0].error_code, 0);
    assert_eq!(partition.last_stable_offset(), partition.high_watermark(), "the hanging transaction no longer holds the LSO");
    let stale = marker.with_producer_epoch(open.producer_epoch - 1);
    let written: WriteTxnMarkersResponse =
        client.call(ApiKey::WriteTxnMarkers, 1, &WriteTxnMarkersRequest::default().with_markers(vec![stale])).await;
    assert_eq!(written.markers[0].topics[0].partitions[0].error_code, 47, "an older epoch is refused");
}

/// KIP-447 over the raw protocol: offsets committed in a transaction are pending
/// (OffsetFetch with require_stable answers UNSTABLE_OFFSET_COMMIT) until the COMMIT reaches
/// the group; an abort leaves nothing pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_offsets_are_unstable_until_the_marker() {
    use kafka_protocol::messages::*;
    use kafka_protocol::protocol::StrBytes;
    let s = |v: &str| StrBytes::from_string(v.to_string());
    let broker = TestBroker::start().await;
    create_topic(&broker.bootstrap(), "in", 1, &[]).await;
    let mut c = common::raw::RawClient::connect(&broker.bootstrap()).await;
    let init: InitProducerIdResponse = c
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default().with_transactional_id(Some(TransactionalId(s("kip447")))).with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(init.error_code, 0);
    let (pid, epoch) = (init.producer_id, init.producer_epoch);
    let fetch = |require_stable: bool| {
        OffsetFetchRequest::default()
            .with_group_id(GroupId(s("g447")))
            .with_topics(Some(vec![offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partition_indexes(vec![0])]))
            .with_require_stable(require_stable)
    };
    for (commit, offset) in [(false, 11), (true, 22)] {
        // CONCURRENT_TRANSACTIONS while the previous transaction completes: retry, as clients do.
        let add_request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("kip447")))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_group_id(GroupId(s("g447")));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let add: AddOffsetsToTxnResponse = c.call(ApiKey::AddOffsetsToTxn, 3, &add_request).await;
            if add.error_code == 0 {
                break;
            }
            assert_eq!(add.error_code, 51, "only CONCURRENT_TRANSACTIONS is retried");
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let commit_request = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("kip447")))
            .with_group_id(GroupId(s("g447")))
            .with_producer_id(pid)
            .with_producer_epoch(epoch)
            .with_generation_id(-1)
            .with_topics(vec![txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(s("in")))
                .with_partitions(vec![txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)])]);
        let committed: TxnOffsetCommitResponse = c.call(ApiKey::TxnOffsetCommit, 3, &commit_request).await;
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);
        let pending: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &fetch(true)).await;
        assert_eq!(pending.topics[0].partitions[0].error_code, 88, "UNSTABLE_OFFSET_COMMIT while pending");
        let end: EndTxnResponse = c
            .call(
                ApiKey::EndTxn,
                3,
                &EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(s("kip447")))
                    .with_producer_id(pid)
                    .with_producer_epoch(epoch)
                    .with_committed(commit),
            )
            .await;
        assert_eq!(end.error_code, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let after: OffsetFetchResponse = c.call(ApiKey::OffsetFetch, 7, &fetch(true)).await;
            let p = &after.topics[0].partitions[0];
            if p.error_code == 0 {
                assert_eq!(p.committed_offset, if commit { 22 } else { -1 }, "commit applies the offsets, abort drops them");
                break;
            }
            assert_eq!(p.error_code, 88);
            assert!(Instant::now() < deadline, "offsets stayed pending after EndTxn");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
