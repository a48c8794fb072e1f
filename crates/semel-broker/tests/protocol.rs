//! Exact requests and answers over the raw protocol: version negotiation, malformed input,
//! and the error codes Kafka sends.

mod common;

use bytes::Bytes;
use common::raw::{api_versions_error, RawClient};
use common::TestBroker;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(values: &[&str], timestamp: i64) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: timestamp + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None }).expect("encode");
    buf.freeze()
}

async fn create(client: &mut RawClient, topic: CreatableTopic) -> i16 {
    let response: CreateTopicsResponse = client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(5000)).await;
    response.topics[0].error_code
}

async fn produce(client: &mut RawClient, topic: &str, records: Bytes) -> produce_response::PartitionProduceResponse {
    let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name(topic))
        .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(records))])]);
    let mut response: ProduceResponse = client.call(ApiKey::Produce, 9, &request).await;
    response.responses.remove(0).partition_responses.remove(0)
}

#[tokio::test]
async fn api_versions_advertises_produce_from_zero_and_answers_unknown_versions_with_v0() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let response: ApiVersionsResponse = client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default().with_client_software_name(StrBytes::from_static_str("t")).with_client_software_version(StrBytes::from_static_str("1"))).await;
    assert_eq!(response.error_code, 0);
    let produce = response.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16).expect("produce listed");
    assert_eq!((produce.min_version, produce.max_version), (0, 11));
    assert!(response.api_keys.iter().all(|k| k.api_key != ApiKey::InitProducerId as i16), "not advertised until implemented");

    // A version from the future: UNSUPPORTED_VERSION (35) in a v0 body.
    client.send_claiming_version(ApiKey::ApiVersions, 99, 3, &ApiVersionsRequest::default()).await;
    let body = client.read_frame().await.expect("answer");
    assert_eq!(api_versions_error(body), 35);
}

#[tokio::test]
async fn malformed_input_closes_only_that_connection() {
    let broker = TestBroker::start().await;
    let addr = broker.bootstrap();
    let mut good = RawClient::connect(&addr).await;

    let mut garbage = RawClient::connect(&addr).await;
    garbage.send_frame(&[0, 3, 0]).await; // shorter than a request header
    assert!(garbage.is_closed_by_broker().await);

    let mut unknown_key = RawClient::connect(&addr).await;
    unknown_key.send_frame(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]).await; // API key 999
    assert!(unknown_key.is_closed_by_broker().await);

    let mut huge = RawClient::connect(&addr).await;
    use tokio::io::AsyncWriteExt;
    huge.stream.write_all(&(200 * 1024 * 1024i32).to_be_bytes()).await.expect("write");
    assert!(huge.is_closed_by_broker().await);

    let mut truncated_body = RawClient::connect(&addr).await;
    // A Metadata v9 header followed by a body that ends in the middle of a field.
    truncated_body.send_frame(&[0, 3, 0, 9, 0, 0, 0, 7, 0, 0, 0, 5]).await;
    assert!(truncated_body.is_closed_by_broker().await);

    let mut old_produce = RawClient::connect(&addr).await;
    old_produce.send_frame(&[0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0, 1]).await;
    assert!(old_produce.is_closed_by_broker().await, "Produce v0-2 are refused");

    // The first connection still works.
    let response: MetadataResponse = good.call(ApiKey::Metadata, 9, &MetadataRequest::default().with_topics(Some(vec![]))).await;
    assert_eq!(response.brokers.len(), 1);
}

#[tokio::test]
async fn create_topics_errors_match_kafka() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = |n: &str, partitions: i32, rf: i16| CreatableTopic::default().with_name(name(n)).with_num_partitions(partitions).with_replication_factor(rf);
    assert_eq!(create(&mut client, topic("a", 2, 1)).await, 0);
    assert_eq!(create(&mut client, topic("a", 2, 1)).await, 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(create(&mut client, topic("b", 0, 1)).await, 37, "INVALID_PARTITIONS");
    assert_eq!(create(&mut client, topic("c", 1, 3)).await, 38, "INVALID_REPLICATION_FACTOR");
    assert_eq!(create(&mut client, topic("bad name!", 1, 1)).await, 17, "INVALID_TOPIC_EXCEPTION");
    let with_config = |k: &str, v: &str| topic("d", 1, 1).with_configs(vec![CreatableTopicConfig::default().with_name(StrBytes::from_string(k.into())).with_value(Some(StrBytes::from_string(v.into())))]);
    assert_eq!(create(&mut client, with_config("no.such.config", "1")).await, 40, "INVALID_CONFIG");
    assert_eq!(create(&mut client, with_config("retention.ms", "soon")).await, 40, "INVALID_CONFIG");
    assert_eq!(create(&mut client, with_config("retention.ms", "1000")).await, 0);
}

#[tokio::test]
async fn produce_refuses_corrupt_and_oversized_batches() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("p")).with_num_partitions(1).with_replication_factor(1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("max.message.bytes"))
        .with_value(Some(StrBytes::from_static_str("2000")))]);
    assert_eq!(create(&mut client, topic).await, 0);

    let good = batch(&["one", "two"], 1_000);
    let first = produce(&mut client, "p", good.clone()).await;
    assert_eq!((first.error_code, first.base_offset), (0, 0));

    let mut flipped = good.to_vec();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert_eq!(produce(&mut client, "p", Bytes::from(flipped)).await.error_code, 2, "CORRUPT_MESSAGE");

    let mut old_magic = good.to_vec();
    old_magic[16] = 1;
    assert_eq!(produce(&mut client, "p", Bytes::from(old_magic)).await.error_code, 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT");

    let truncated = good.slice(..good.len() - 3);
    assert_eq!(produce(&mut client, "p", truncated).await.error_code, 2, "CORRUPT_MESSAGE");

    let big = "x".repeat(3000);
    assert_eq!(produce(&mut client, "p", batch(&[&big], 1_000)).await.error_code, 10, "MESSAGE_TOO_LARGE");

    let unknown = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
        .with_name(name("p"))
        .with_partition_data(vec![PartitionProduceData::default().with_index(7).with_records(Some(good.clone()))])]);
    let response: ProduceResponse = client.call(ApiKey::Produce, 9, &unknown).await;
    assert_eq!(response.responses[0].partition_responses[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION");

    // Nothing refused was written: the next batch lands right after the first.
    let second = produce(&mut client, "p", good).await;
    assert_eq!((second.error_code, second.base_offset), (0, 2));
}

#[tokio::test]
async fn log_append_time_topics_stamp_batches() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("lat")).with_num_partitions(1).with_replication_factor(1).with_configs(vec![CreatableTopicConfig::default()
        .with_name(StrBytes::from_static_str("message.timestamp.type"))
        .with_value(Some(StrBytes::from_static_str("LogAppendTime")))]);
    assert_eq!(create(&mut client, topic).await, 0);
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let response = produce(&mut client, "lat", batch(&["a"], 5)).await;
    assert_eq!(response.error_code, 0);
    assert!(response.log_append_time_ms >= before, "log append time {} is set", response.log_append_time_ms);
}

#[tokio::test]
async fn fetch_and_list_offsets_answer_at_the_boundaries() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(create(&mut client, CreatableTopic::default().with_name(name("f")).with_num_partitions(1).with_replication_factor(1)).await, 0);
    assert_eq!(produce(&mut client, "f", batch(&["a", "b", "c"], 1_000)).await.error_code, 0);
    assert_eq!(produce(&mut client, "f", batch(&["d", "e"], 2_000)).await.base_offset, 3);

    let fetch = |offset: i64| {
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_isolation_level(0).with_topics(vec![FetchTopic::default()
            .with_topic(name("f"))
            .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(offset).with_partition_max_bytes(1 << 20).with_current_leader_epoch(-1)])])
    };
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark, p.log_start_offset), (0, 5, 0));
    assert!(p.aborted_transactions.is_none(), "read_uncommitted gets no aborted list");
    let records = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut p.records.clone().expect("records")).expect("decode");
    let values: Vec<String> = records.iter().flat_map(|s| s.records.iter()).map(|r| String::from_utf8(r.value.clone().expect("v").to_vec()).expect("utf8")).collect();
    assert_eq!(values, ["a", "b", "c", "d", "e"]);

    // Offset 4 is inside the second batch: the whole batch comes back (clients skip ahead).
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(4)).await;
    assert_eq!(response.responses[0].partitions[0].records.as_ref().expect("records")[..8], 3i64.to_be_bytes());
    // At the high watermark: nothing, no error.
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(5)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 0);
    assert!(response.responses[0].partitions[0].records.as_ref().is_none_or(|r| r.is_empty()));
    // Past it: OFFSET_OUT_OF_RANGE.
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(6)).await;
    assert_eq!(response.responses[0].partitions[0].error_code, 1);

    let list = |timestamp: i64| {
        ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
            .with_name(name("f"))
            .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp).with_current_leader_epoch(-1)])])
    };
    let mut offsets = Vec::new();
    for ts in [-2, -1, -3, 1_001, 1_500, 2_001, 9_999] {
        let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &list(ts)).await;
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        offsets.push((p.offset, p.timestamp));
    }
    assert_eq!(offsets, [(0, -1), (5, -1), (4, 2_001), (1, 1_001), (3, 2_000), (4, 2_001), (-1, -1)]);

    // Read_committed answers carry an (empty) aborted-transactions list.
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0).with_isolation_level(1)).await;
    assert_eq!(response.responses[0].partitions[0].aborted_transactions.as_ref().map(Vec::len), Some(0));
    assert_eq!(response.responses[0].partitions[0].last_stable_offset, 5);
}

#[tokio::test]
async fn long_poll_fetch_wakes_on_produce() {
    let broker = TestBroker::start().await;
    let addr = broker.bootstrap();
    let mut client = RawClient::connect(&addr).await;
    assert_eq!(create(&mut client, CreatableTopic::default().with_name(name("w")).with_num_partitions(1).with_replication_factor(1)).await, 0);
    let request = FetchRequest::default().with_max_wait_ms(20_000).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![FetchTopic::default()
        .with_topic(name("w"))
        .with_partitions(vec![FetchPartition::default().with_partition(0).with_fetch_offset(0).with_partition_max_bytes(1 << 20).with_current_leader_epoch(-1)])]);
    let started = std::time::Instant::now();
    let waiter = tokio::spawn(async move {
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).await;
        response
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let mut producer = RawClient::connect(&addr).await;
    assert_eq!(produce(&mut producer, "w", batch(&["wake"], 1)).await.error_code, 0);
    let response = waiter.await.expect("fetch task");
    assert!(response.responses[0].partitions[0].records.as_ref().is_some_and(|r| !r.is_empty()));
    assert!(started.elapsed() < std::time::Duration::from_secs(15), "woken by the produce, not by max_wait_ms");
}
