//! Topic configs within Kafka 4's bounds, topic creation that leaves nothing behind when it
//! fails, metadata that survives an upgrade from the single-file layout, and creation whose
//! cost does not depend on the number of topics (issue #13).

mod common;

use common::raw::RawClient;
use common::TestBroker;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn topic_with(n: &str, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default().with_name(name(n)).with_num_partitions(1).with_replication_factor(1).with_configs(
        configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string((*k).into()))
                    .with_value(Some(StrBytes::from_string((*v).into())))
            })
            .collect(),
    )
}

async fn create(client: &mut RawClient, topic: CreatableTopic) -> (i16, Option<String>) {
    let response: CreateTopicsResponse =
        client.call(ApiKey::CreateTopics, 7, &CreateTopicsRequest::default().with_topics(vec![topic]).with_timeout_ms(60_000)).await;
    (response.topics[0].error_code, response.topics[0].error_message.as_ref().map(ToString::to_string))
}

async fn alter(client: &mut RawClient, topic: &str, key: &str, value: &str) -> (i16, Option<String>) {
    let request = AlterConfigsRequest::default().with_resources(vec![alter_configs_request::AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_string(topic.into()))
        .with_configs(vec![alter_configs_request::AlterableConfig::default()
            .with_name(StrBytes::from_string(key.into()))
            .with_value(Some(StrBytes::from_string(value.into())))])]);
    let response: AlterConfigsResponse = client.call(ApiKey::AlterConfigs, 2, &request).await;
    (response.responses[0].error_code, response.responses[0].error_message.as_ref().map(ToString::to_string))
}

async fn incremental_alter(client: &mut RawClient, topic: &str, key: &str, value: &str) -> (i16, Option<String>) {
    let request =
        IncrementalAlterConfigsRequest::default().with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.into()))
            .with_configs(vec![incremental_alter_configs_request::AlterableConfig::default()
                .with_name(StrBytes::from_string(key.into()))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value.into())))])]);
    let response: IncrementalAlterConfigsResponse = client.call(ApiKey::IncrementalAlterConfigs, 1, &request).await;
    (response.responses[0].error_code, response.responses[0].error_message.as_ref().map(ToString::to_string))
}

const INVALID_CONFIG: i16 = 40;

/// Values outside Kafka 4's `LogConfig` bounds, each refused with INVALID_CONFIG.
const OUT_OF_BOUNDS: &[(&str, &str)] = &[
    ("segment.bytes", "1048575"),
    ("segment.bytes", "10000"),
    ("segment.ms", "0"),
    ("segment.index.bytes", "3"),
    ("index.interval.bytes", "-1"),
    ("max.message.bytes", "-1"),
    ("min.cleanable.dirty.ratio", "1.01"),
    ("retention.ms", "-2"),
    ("delete.retention.ms", "-1"),
    ("min.compaction.lag.ms", "-1"),
    ("max.compaction.lag.ms", "0"),
    ("flush.messages", "0"),
    ("min.insync.replicas", "0"),
    ("internal.segment.bytes", "0"),
];

#[tokio::test]
async fn configs_outside_kafka_4_bounds_are_invalid_config() {
    let broker = TestBroker::start().await;
    let mut client = RawClient::connect(&broker.bootstrap()).await;
    for (key, value) in OUT_OF_BOUNDS {
        let (code, message) = create(&mut client, topic_with("bounded", &[(key, value)])).await;
        assert_eq!(code, INVALID_CONFIG, "CreateTopics {key}={value}: {message:?}");
        let message = message.unwrap_or_default();
        assert!(message.contains(key), "the message names the config: {message}");
    }
    let (_, message) = create(&mut client, topic_with("bounded", &[("segment.bytes", "10000")])).await;
    assert!(message.unwrap_or_default().contains("1048576"), "the message names the minimum");
    assert!(!broker.dir.join("bounded-0").exists(), "a refused topic leaves no folder");

    // At the bounds, and the test-only escape below them.
    assert_eq!(create(&mut client, topic_with("bounded", &[("segment.bytes", "1048576"), ("segment.ms", "1")])).await.0, 0);
    assert_eq!(create(&mut client, topic_with("small", &[("internal.segment.bytes", "1000")])).await.0, 0);

    for (key, value) in OUT_OF_BOUNDS {
        let (code, message) = alter(&mut client, "bounded", key, value).await;
        assert_eq!(code, INVALID_CONFIG, "AlterConfigs {key}={value}: {message:?}");
        let (code, message) = incremental_alter(&mut client, "bounded", key, value).await;
        assert_eq!(code, INVALID_CONFIG, "IncrementalAlterConfigs {key}={value}: {message:?}");
    }
    assert_eq!(incremental_alter(&mut client, "bounded", "segment.bytes", "2097152").await.0, 0);
    assert_eq!(incremental_alter(&mut client, "bounded", "internal.segment.bytes", "500").await.0, 0);
    assert_eq!(alter(&mut client, "bounded", "retention.bytes", "-5").await.0, 0, "retention.bytes has no bound in Kafka");

    // internal.segment.bytes is not described (Kafka's internal configs are not).
    let describe = DescribeConfigsRequest::default().with_resources(vec![describe_configs_request::DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(StrBytes::from_static_str("small"))]);
    let response: DescribeConfigsResponse = client.call(ApiKey::DescribeConfigs, 4, &describe).await;
    assert_eq!(response.results[0].error_code, 0);
    assert!(response.results[0].configs.iter().all(|c| c.name.as_str() != "internal.segment.bytes"));
    assert!(response.results[0].configs.iter().any(|c| c.name.as_str() == "segment.bytes"));
}
