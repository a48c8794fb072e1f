//! Idempotent produce over the raw protocol: a retried batch is written once and answered
//! with its original offset, across a clean restart and across a crash; sequence and epoch
//! errors are the ones Kafka sends.

mod common;

use bytes::Bytes;
use common::raw::RawClient;
use common::{config_for, TestBroker};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One batch of `count` records from producer `pid`/`epoch` starting at `sequence`.
fn batch(pid: i64, epoch: i16, sequence: i32, count: usize) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: sequence.wrapping_add(i as i32),
            timestamp: 1_800_000_000_000,
            key: None,
            value: Some(Bytes::from(format!("seq-{}", sequence.wrapping_add(i as i32)))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("encode");
    buf.freeze()
}

async fn produce(client: &mut RawClient, records: Bytes) -> (i16, i64) {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name("idem"))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    let p = &response.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn init_producer_id(client: &mut RawClient) -> i64 {
    let response: InitProducerIdResponse = client
        .call(ApiKey::InitProducerId, 4, &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000))
        .await;
    assert_eq!((response.error_code, response.producer_epoch), (0, 0));
    response.producer_id.0
}

async fn setup() -> (TestBroker, RawClient, i64) {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("idem")).with_num_partitions(1).with_replication_factor(1);
    let response: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic])).await;
    assert_eq!(response.topics[0].error_code, 0);
    let pid = init_producer_id(&mut client).await;
    (broker, client, pid)
}

fn high_watermark(broker: &TestBroker) -> i64 {
    let state = broker.broker.as_ref().expect("running").state();
    state.metadata.topic("idem").expect("topic").partitions[0].high_watermark()
}

#[tokio::test]
async fn producer_ids_are_unique_and_survive_restart() {
    let (mut broker, mut client, first) = setup().await;
    let second = init_producer_id(&mut client).await;
    assert_ne!(first, second);
    broker.restart().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let third = init_producer_id(&mut client).await;
    assert!(third > second, "after a restart ids continue past every id handed out ({third} > {second})");
    // A transactional id gets its producer id from the same allocator.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("t"))))
        .with_transaction_timeout_ms(60_000);
    let response: InitProducerIdResponse = client.call(ApiKey::InitProducerId, 4, &request).await;
    assert_eq!(response.error_code, 0);
    assert!(response.producer_id.0 > third);
}

#[tokio::test]
async fn a_retried_batch_is_written_once_and_gets_its_original_offset() {
    let (broker, mut client, pid) = setup().await;
    assert_eq!(produce(&mut client, batch(pid, 0, 0, 3)).await, (0, 0));
    assert_eq!(produce(&mut client, batch(pid, 0, 3, 2)).await, (0, 3));
    assert_eq!(produce(&mut client, batch(pid, 0, 0, 3)).await, (0, 0), "duplicate of the first batch");
    assert_eq!(produce(&mut client, batch(pid, 0, 3, 2)).await, (0, 3), "duplicate of the second batch");
    assert_eq!(high_watermark(&broker), 5, "the log holds one copy");
    assert_eq!(produce(&mut client, batch(pid, 0, 5, 1)).await, (0, 5));
}

#[tokio::test]
async fn sequence_and_epoch_errors_match_kafka() {
    let (broker, mut client, pid) = setup().await;
    assert_eq!(produce(&mut client, batch(pid, 0, 0, 2)).await, (0, 0));
    assert_eq!(produce(&mut client, batch(pid, 0, 5, 1)).await.0, 45, "a gap: OUT_OF_ORDER_SEQUENCE_NUMBER");
    assert_eq!(produce(&mut client, batch(pid, 0, 1, 2)).await.0, 45, "an overlap that is not a duplicate");
    assert_eq!(produce(&mut client, batch(pid, 1, 3, 1)).await.0, 45, "a new epoch must start at 0");
    assert_eq!(produce(&mut client, batch(pid, 1, 0, 1)).await, (0, 2), "the new epoch from 0");
    assert_eq!(produce(&mut client, batch(pid, 0, 2, 1)).await.0, 47, "the old epoch: INVALID_PRODUCER_EPOCH");
    assert_eq!(high_watermark(&broker), 3, "refused batches were not written");

    // Sequence wrap-around: a producer (new to this partition) near i32::MAX.
    let other = init_producer_id(&mut client).await;
    assert_eq!(produce(&mut client, batch(other, 0, i32::MAX - 1, 2)).await, (0, 3));
    assert_eq!(produce(&mut client, batch(other, 0, 0, 2)).await, (0, 5), "MAX is followed by 0");
    assert_eq!(produce(&mut client, batch(other, 0, i32::MAX - 1, 2)).await, (0, 3), "the pre-wrap batch is still a duplicate");
}

#[tokio::test]
async fn duplicates_are_recognised_after_a_clean_restart() {
    let (mut broker, mut client, pid) = setup().await;
    for i in 0..4 {
        assert_eq!(produce(&mut client, batch(pid, 0, i * 10, 10)).await, (0, i64::from(i) * 10));
    }
    broker.restart().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut client, batch(pid, 0, 30, 10)).await, (0, 30));
    assert_eq!(produce(&mut client, batch(pid, 0, 10, 10)).await, (0, 10));
    assert_eq!(produce(&mut client, batch(pid, 0, 50, 1)).await.0, 45);
    assert_eq!(produce(&mut client, batch(pid, 0, 40, 1)).await, (0, 40));
    assert_eq!(high_watermark(&broker), 41);
}

#[tokio::test]
async fn duplicates_are_recognised_after_a_crash() {
    let (mut broker, mut client, pid) = setup().await;
    assert_eq!(produce(&mut client, batch(pid, 0, 0, 5)).await, (0, 0));
    assert_eq!(produce(&mut client, batch(pid, 0, 5, 5)).await, (0, 5));
    // No shutdown: tasks are aborted, nothing is flushed or snapshotted; the files are what a
    // kill -9 leaves (crates/semel/tests/idempotence_crash.rs does it with a real kill -9).
    drop(broker.broker.take());
    broker.broker = Some(semel_broker::Broker::start(config_for(&broker.dir)).await.expect("restart"));
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut client, batch(pid, 0, 5, 5)).await, (0, 5));
    assert_eq!(produce(&mut client, batch(pid, 0, 10, 1)).await, (0, 10));
    assert_eq!(high_watermark(&broker), 11);
}

#[tokio::test]
async fn retention_does_not_forget_a_live_producer() {
    let (mut broker, mut client, pid) = setup().await;
    // Small segments, so that DeleteRecords removes whole segments holding the batches.
    let alter =
        IncrementalAlterConfigsRequest::default().with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("idem"))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_static_str("internal.segment.bytes"))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_static_str("100")))])]);
    let response: IncrementalAlterConfigsResponse = client.call(ApiKey::IncrementalAlterConfigs, 1, &alter).await;
    assert_eq!(response.responses[0].error_code, 0);
    for i in 0..5 {
        assert_eq!(produce(&mut client, batch(pid, 0, i * 2, 2)).await.0, 0);
    }
    let delete = DeleteRecordsRequest::default().with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
        .with_name(name("idem"))
        .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default().with_partition_index(0).with_offset(-1)])]);
    let response: DeleteRecordsResponse = client.call(ApiKey::DeleteRecords, 2, &delete).await;
    assert_eq!(response.topics[0].partitions[0].low_watermark, 10);
    assert_eq!(produce(&mut client, batch(pid, 0, 8, 2)).await, (0, 8), "a retry after the segments went is still a duplicate");
    broker.restart().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(produce(&mut client, batch(pid, 0, 8, 2)).await, (0, 8), "and after a restart");
    assert_eq!(produce(&mut client, batch(pid, 0, 10, 1)).await, (0, 10));
}
