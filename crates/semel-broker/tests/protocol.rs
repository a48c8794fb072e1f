//! Exact requests and answers over the raw protocol: version negotiation, malformed input,
//! and the error codes Kafka sends.

mod common;

use bytes::Bytes;
use common::raw::{api_versions_error, keyless_batch as batch, RawClient};
use common::{config_for, wait_until, TestBroker};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

async fn create(client: &mut RawClient, topic: CreatableTopic) -> i16 {
    let response: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(5000)).await;
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
    let response: ApiVersionsResponse = client
        .call(
            ApiKey::ApiVersions,
            3,
            &ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("t"))
                .with_client_software_version(StrBytes::from_static_str("1")),
        )
        .await;
    assert_eq!(response.error_code, 0);
    let produce = response.api_keys.iter().find(|k| k.api_key == ApiKey::Produce as i16).expect("produce listed");
    assert_eq!((produce.min_version, produce.max_version), (0, 11));
    let init = response.api_keys.iter().find(|k| k.api_key == ApiKey::InitProducerId as i16).expect("InitProducerId listed");
    assert_eq!((init.min_version, init.max_version), (0, 4));
    for unimplemented in [ApiKey::ConsumerGroupHeartbeat, ApiKey::ShareFetch, ApiKey::SaslHandshake, ApiKey::DescribeAcls] {
        assert!(
            response.api_keys.iter().all(|k| k.api_key != unimplemented as i16),
            "{unimplemented:?} is not advertised until implemented"
        );
    }
    assert!(response.finalized_features.is_empty(), "no transaction.version feature");

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
    let topic = |n: &str, partitions: i32, rf: i16| {
        CreatableTopic::default().with_name(name(n)).with_num_partitions(partitions).with_replication_factor(rf)
    };
    assert_eq!(create(&mut client, topic("a", 2, 1)).await, 0);
    assert_eq!(create(&mut client, topic("a", 2, 1)).await, 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(create(&mut client, topic("b", 0, 1)).await, 37, "INVALID_PARTITIONS");
    assert_eq!(create(&mut client, topic("c", 1, 3)).await, 38, "INVALID_REPLICATION_FACTOR");
    assert_eq!(create(&mut client, topic("bad name!", 1, 1)).await, 17, "INVALID_TOPIC_EXCEPTION");
    let with_config = |k: &str, v: &str| {
        topic("d", 1, 1).with_configs(vec![CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(k.into()))
            .with_value(Some(StrBytes::from_string(v.into())))])
    };
    assert_eq!(create(&mut client, with_config("no.such.config", "1")).await, 40, "INVALID_CONFIG");
    assert_eq!(create(&mut client, with_config("retention.ms", "soon")).await, 40, "INVALID_CONFIG");
    assert_eq!(create(&mut client, with_config("retention.ms", "1000")).await, 0);
}

#[tokio::test]
async fn create_partitions_checks_the_manual_assignments_like_kafka() {
    use kafka_protocol::messages::create_partitions_request::{CreatePartitionsAssignment, CreatePartitionsTopic};
    use kafka_protocol::messages::{BrokerId, CreatePartitionsRequest, CreatePartitionsResponse};
    let broker = TestBroker::start().await;
    let node = broker.broker.as_ref().expect("running").state().config.node_id;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("grow")).with_num_partitions(1).with_replication_factor(1);
    assert_eq!(create(&mut client, topic).await, 0);
    let grow = |count: i32, assignments: usize| {
        let assignment = CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(node)]);
        CreatePartitionsRequest::default().with_timeout_ms(5_000).with_topics(vec![CreatePartitionsTopic::default()
            .with_name(name("grow"))
            .with_count(count)
            .with_assignments(Some(vec![assignment; assignments]))])
    };
    // Two assignments for one new partition: Kafka answers INVALID_REPLICA_ASSIGNMENT (39).
    let request = grow(2, 2);
    let response: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, 0, &request).await;
    assert_eq!(response.results[0].error_code, 39);
    assert_eq!(
        response.results[0].error_message.as_deref(),
        Some("Attempted to add 1 additional partition(s), but only 2 assignment(s) were specified.")
    );
    let request = grow(3, 2);
    let response: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, 0, &request).await;
    assert_eq!(response.results[0].error_code, 0, "two assignments for two new partitions");
    let request = grow(3, 0);
    let response: CreatePartitionsResponse = client.call(ApiKey::CreatePartitions, 0, &request).await;
    assert_eq!(response.results[0].error_code, 37, "no increase: INVALID_PARTITIONS first");
}

#[tokio::test]
async fn a_compacted_topic_names_the_keyless_records_it_refuses() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("table")).with_num_partitions(1).with_replication_factor(1).with_configs(vec![
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("cleanup.policy"))
            .with_value(Some(StrBytes::from_static_str("compact"))),
    ]);
    assert_eq!(create(&mut client, topic).await, 0);
    let refused = produce(&mut client, "table", batch(&["no key", "none either"], 1_000)).await;
    assert_eq!(refused.error_code, 87, "INVALID_RECORD");
    assert_eq!(refused.record_errors.iter().map(|e| e.batch_index).collect::<Vec<_>>(), vec![0, 1], "every keyless record is named");
    let message = refused.error_message.as_deref().unwrap_or_default().to_string();
    assert!(message.contains("without key") && message.contains("table-0"), "{message}");
}

#[tokio::test]
async fn produce_refuses_corrupt_and_oversized_batches() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let topic = CreatableTopic::default().with_name(name("p")).with_num_partitions(1).with_replication_factor(1).with_configs(vec![
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("max.message.bytes"))
            .with_value(Some(StrBytes::from_static_str("2000"))),
    ]);
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
    let topic = CreatableTopic::default().with_name(name("lat")).with_num_partitions(1).with_replication_factor(1).with_configs(vec![
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_static_str("message.timestamp.type"))
            .with_value(Some(StrBytes::from_static_str("LogAppendTime"))),
    ]);
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
    assert_eq!(
        create(&mut client, CreatableTopic::default().with_name(name("f")).with_num_partitions(1).with_replication_factor(1)).await,
        0
    );
    assert_eq!(produce(&mut client, "f", batch(&["a", "b", "c"], 1_000)).await.error_code, 0);
    assert_eq!(produce(&mut client, "f", batch(&["d", "e"], 2_000)).await.base_offset, 3);

    let fetch = |offset: i64| {
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_isolation_level(0).with_topics(vec![
            FetchTopic::default().with_topic(name("f")).with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
                .with_current_leader_epoch(-1)]),
        ])
    };
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &fetch(0)).await;
    let p = &response.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark, p.log_start_offset), (0, 5, 0));
    assert!(p.aborted_transactions.is_none(), "read_uncommitted gets no aborted list");
    let records = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut p.records.clone().expect("records")).expect("decode");
    let values: Vec<String> = records
        .iter()
        .flat_map(|s| s.records.iter())
        .map(|r| String::from_utf8(r.value.clone().expect("v").to_vec()).expect("utf8"))
        .collect();
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
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(timestamp)
                .with_current_leader_epoch(-1)])])
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
    // A max wait far longer than the test could take: an answer before it is the wake-up (the
    // raw client gives up after 60 s).
    let max_wait = std::time::Duration::from_secs(600);
    let tmp = tempfile::tempdir().expect("tmp");
    let mut config = config_for(tmp.path());
    config.fetch_max_wait_ms = max_wait.as_millis() as u64;
    let broker = TestBroker::start_with(config, tmp).await;
    let addr = broker.bootstrap();
    let mut client = RawClient::connect(&addr).await;
    assert_eq!(
        create(&mut client, CreatableTopic::default().with_name(name("w")).with_num_partitions(1).with_replication_factor(1)).await,
        0
    );
    let request =
        FetchRequest::default().with_max_wait_ms(max_wait.as_millis() as i32).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(vec![
            FetchTopic::default().with_topic(name("w")).with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)
                .with_current_leader_epoch(-1)]),
        ]);
    let state = std::sync::Arc::clone(broker.broker.as_ref().expect("running").state());
    let waiting_before = state.data_arrived.receiver_count();
    let started = std::time::Instant::now();
    let waiter = tokio::spawn(async move {
        let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).await;
        response
    });
    // Produce once the fetch waits for data (it subscribes to arrivals, reads nothing and waits,
    // all in one poll), not after a guessed delay.
    wait_until("the fetch to wait for data", std::time::Duration::from_secs(60), || state.data_arrived.receiver_count() > waiting_before)
        .await;
    let mut producer = RawClient::connect(&addr).await;
    assert_eq!(produce(&mut producer, "w", batch(&["wake"], 1)).await.error_code, 0);
    let response = waiter.await.expect("fetch task");
    assert!(response.responses[0].partitions[0].records.as_ref().is_some_and(|r| !r.is_empty()));
    assert!(started.elapsed() < max_wait, "woken by the produce, not by max_wait_ms");
}

/// Every advertised version of the main APIs gets an answer that decodes (the codecs refuse
/// to encode a field a version lacks, so this catches version-specific fields set by mistake).
#[tokio::test]
async fn every_advertised_version_answers() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        create(&mut client, CreatableTopic::default().with_name(name("v")).with_num_partitions(1).with_replication_factor(1)).await,
        0
    );
    let metadata: MetadataResponse = client
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("v")))])),
        )
        .await;
    let topic_id = metadata.topics[0].topic_id;
    assert!(!topic_id.is_nil());

    for version in 3..=11 {
        let request = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![TopicProduceData::default()
            .with_name(name("v"))
            .with_partition_data(vec![PartitionProduceData::default().with_index(0).with_records(Some(batch(&["x"], 1_000)))])]);
        let response: ProduceResponse = client.call(ApiKey::Produce, version, &request).await;
        assert_eq!(response.responses[0].partition_responses[0].error_code, 0, "Produce v{version}");
    }
    for version in 4..=16 {
        let mut topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)
            .with_current_leader_epoch(-1)]);
        topic = if version >= 13 { topic.with_topic_id(topic_id) } else { topic.with_topic(name("v")) };
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_replica_id(BrokerId(-1))
            .with_session_epoch(-1)
            .with_topics(vec![topic]);
        let response: FetchResponse = client.call(ApiKey::Fetch, version, &request).await;
        let p = &response.responses[0].partitions[0];
        assert_eq!((p.error_code, p.high_watermark), (0, 9), "Fetch v{version}");
    }
    for version in 1..=7 {
        for timestamp in [-1, -2, 1_000] {
            let request = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![ListOffsetsTopic::default()
                .with_name(name("v"))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(timestamp)
                    .with_current_leader_epoch(-1)])]);
            let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, version, &request).await;
            assert_eq!(response.topics[0].partitions[0].error_code, 0, "ListOffsets v{version} ts {timestamp}");
        }
    }
    for version in 0..=12 {
        let topics = if version == 0 { vec![] } else { vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("v")))] };
        let response: MetadataResponse =
            client.call(ApiKey::Metadata, version, &MetadataRequest::default().with_topics(Some(topics))).await;
        assert!(response.topics.iter().any(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "v")), "Metadata v{version}");
    }
    for version in 2..=7 {
        let topic =
            CreatableTopic::default().with_name(name(&format!("created-v{version}"))).with_num_partitions(1).with_replication_factor(1);
        let response: CreateTopicsResponse = client
            .call(ApiKey::CreateTopics, version, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(5000))
            .await;
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{version}");
    }
    for version in 1..=4 {
        let request = DescribeConfigsRequest::default().with_resources(vec![describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_static_str("v"))]);
        let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, version, &request).await;
        assert_eq!(response.results[0].error_code, 0, "DescribeConfigs v{version}");
        assert!(response.results[0].configs.iter().any(|c| c.name.as_str() == "retention.ms"));
    }
    for version in 2..=4 {
        let request = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default().with_topic(name("v")).with_partitions(vec![
                offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_leader_epoch(0)
                    .with_current_leader_epoch(-1),
            ]),
        ]);
        let response: OffsetForLeaderEpochResponse = client.call(ApiKey::OffsetForLeaderEpoch, version, &request).await;
        assert_eq!(response.topics[0].partitions[0].end_offset, 9, "OffsetForLeaderEpoch v{version}");
    }
    for version in 0..=1 {
        let response: DescribeClusterResponse = client.call(ApiKey::DescribeCluster, version, &DescribeClusterRequest::default()).await;
        assert_eq!(response.brokers.len(), 1, "DescribeCluster v{version}");
    }
}

#[tokio::test]
async fn find_coordinator_names_this_broker_in_every_version() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    let port = broker.broker.as_ref().expect("running").local_addr().port() as i32;
    for version in 0..=3 {
        let request = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g")).with_key_type(0);
        let response: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, version, &request).await;
        assert_eq!((response.error_code, response.node_id.0, response.port), (0, 1, port), "v{version}");
    }
    for version in 4..=5 {
        let request = FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![StrBytes::from_static_str("txn-a"), StrBytes::from_static_str("")]);
        let response: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, version, &request).await;
        assert_eq!(response.coordinators.len(), 2);
        assert_eq!((response.coordinators[0].error_code, response.coordinators[0].port), (0, port));
        assert_eq!(response.coordinators[1].error_code, 42, "INVALID_REQUEST for an empty transactional id");
    }
    let bad = FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("x")).with_key_type(7);
    let response: FindCoordinatorResponse = client.call(ApiKey::FindCoordinator, 2, &bad).await;
    assert_eq!(response.error_code, 42);
}

/// Metadata v10+ by topic id: the Java client sends the id with an empty (not null) name.
#[tokio::test]
async fn metadata_finds_topics_by_id() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    assert_eq!(
        create(&mut client, CreatableTopic::default().with_name(name("by-id")).with_num_partitions(2).with_replication_factor(1)).await,
        0
    );
    let by_name: MetadataResponse = client
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default().with_name(Some(name("by-id")))])),
        )
        .await;
    let id = by_name.topics[0].topic_id;
    let wanted = metadata_request::MetadataRequestTopic::default().with_topic_id(id).with_name(Some(name("")));
    let by_id: MetadataResponse = client.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![wanted]))).await;
    let topic = &by_id.topics[0];
    assert_eq!((topic.error_code, topic.topic_id, topic.partitions.len()), (0, id, 2));
    assert_eq!(topic.name.as_ref().map(|n| n.0.to_string()), Some("by-id".to_string()));
    let unknown = metadata_request::MetadataRequestTopic::default().with_topic_id(uuid::Uuid::new_v4()).with_name(Some(name("")));
    let response: MetadataResponse = client.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(Some(vec![unknown]))).await;
    assert_eq!(response.topics[0].error_code, 100, "UNKNOWN_TOPIC_ID");
}
