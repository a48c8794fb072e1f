//! Metadata (3) and DescribeCluster (60).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::metadata_response::{MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic};
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse, MetadataRequest, MetadataResponse};

use super::{code, metadata_error_code, text, topic_name, NONE};
use crate::metadata::{MetadataError, NewTopic, Topic};
use crate::server::dispatch::{RequestContext, Response};

/// Kafka's "authorized operations not requested" marker.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

fn topic_entry(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn error_entry(name: Option<&str>, id: uuid::Uuid, error: i16) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(error)
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

pub(crate) async fn handle(ctx: &RequestContext, request: MetadataRequest) -> Response<MetadataResponse> {
    let state = &ctx.state;
    let node_id = state.config.node_id;
    // v0: an empty list means every topic; v1+: null means every topic, empty means none.
    let requested = match request.topics {
        None => None,
        Some(list) if list.is_empty() && ctx.version == 0 => None,
        Some(list) => Some(list),
    };
    // Auto-creation: always allowed by the request below v4, then by its flag.
    let allow_auto_create = state.config.auto_create_topics_enable && (ctx.version < 4 || request.allow_auto_topic_creation);
    let topics = match requested {
        None => state.metadata.topics().iter().map(|t| topic_entry(t, node_id)).collect(),
        Some(list) => {
            let mut seen = BTreeMap::new();
            let mut out = Vec::with_capacity(list.len());
            // Kafka looks topics up by id whenever the request carries a non-zero id (the Java
            // client then sends the name as an empty string, not null).
            for wanted in list {
                let by_name = if wanted.topic_id.is_nil() { wanted.name } else { None };
                let entry = match by_name {
                    Some(name) => {
                        let name = name.0.to_string();
                        if seen.insert(name.clone(), ()).is_some() {
                            continue;
                        }
                        match lookup_or_create(ctx, &name, allow_auto_create) {
                            Ok(topic) => topic_entry(&topic, node_id),
                            Err(error) => error_entry(Some(&name), uuid::Uuid::nil(), error),
                        }
                    }
                    None => match state.metadata.topic_by_id(&wanted.topic_id) {
                        Some(topic) => topic_entry(&topic, node_id),
                        None => error_entry(None, wanted.topic_id, code(ResponseError::UnknownTopicId)),
                    },
                };
                out.push(entry);
            }
            out
        }
    };
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(node_id))
        .with_host(text(&state.advertised_host))
        .with_port(state.advertised_port);
    Response::Now(
        MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_cluster_id(Some(text(&state.metadata.cluster_id)))
            .with_controller_id(BrokerId(node_id))
            .with_topics(topics)
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
    )
}

fn lookup_or_create(ctx: &RequestContext, name: &str, allow_auto_create: bool) -> Result<Arc<Topic>, i16> {
    let metadata = &ctx.state.metadata;
    if let Some(topic) = metadata.topic(name) {
        return Ok(topic);
    }
    if let Err(e) = crate::metadata::validate_topic_name(name) {
        return Err(metadata_error_code(&e));
    }
    if !allow_auto_create || crate::metadata::is_internal_topic(name) {
        return Err(code(ResponseError::UnknownTopicOrPartition));
    }
    let spec = NewTopic { name: name.to_string(), partitions: ctx.state.config.num_partitions, configs: BTreeMap::new() };
    match metadata.create_topic(spec) {
        Ok(topic) => Ok(topic),
        // Created by a concurrent request in the meantime.
        Err(MetadataError::TopicAlreadyExists(_)) => metadata.topic(name).ok_or(code(ResponseError::UnknownTopicOrPartition)),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creation failed");
            Err(metadata_error_code(&e))
        }
    }
}

pub(crate) async fn describe_cluster(ctx: &RequestContext, request: DescribeClusterRequest) -> Response<DescribeClusterResponse> {
    let state = &ctx.state;
    let node_id = state.config.node_id;
    // Endpoint type 1 is brokers; semel has no separate controller endpoints.
    if ctx.version >= 1 && request.endpoint_type != 1 {
        return Response::Now(
            DescribeClusterResponse::default()
                .with_error_code(code(ResponseError::MismatchedEndpointType))
                .with_error_message(Some(text("semel serves broker endpoints only")))
                .with_endpoint_type(request.endpoint_type),
        );
    }
    let broker = DescribeClusterBroker::default()
        .with_broker_id(BrokerId(node_id))
        .with_host(text(&state.advertised_host))
        .with_port(state.advertised_port);
    Response::Now(
        DescribeClusterResponse::default()
            .with_error_code(NONE)
            .with_endpoint_type(1)
            .with_cluster_id(text(&state.metadata.cluster_id))
            .with_controller_id(BrokerId(node_id))
            .with_brokers(vec![broker])
            .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
    )
}
