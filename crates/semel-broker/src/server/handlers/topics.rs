//! CreateTopics (19), DeleteTopics (20), CreatePartitions (37), DeleteRecords (21).

use std::collections::{BTreeMap, HashSet};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{CreatableTopicConfigs, CreatableTopicResult};
use kafka_protocol::messages::delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse, DeleteRecordsRequest,
    DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
};

use super::{code, metadata_error_code, text, topic_name, NONE};
use crate::metadata::{config, MetadataError, NewTopic};
use crate::server::dispatch::{RequestContext, Response};
use crate::storage::partition::DeleteRecordsError;

/// Config source codes of DescribeConfigs and CreateTopics v5+.
pub(crate) const SOURCE_TOPIC: i8 = 1;
pub(crate) const SOURCE_DEFAULT: i8 = 5;

fn spec_of(ctx: &RequestContext, topic: &CreatableTopic) -> Result<NewTopic, MetadataError> {
    let node_id = ctx.state.config.node_id;
    let name = topic.name.0.to_string();
    if topic.replication_factor > 1 {
        return Err(MetadataError::InvalidReplicationFactor(format!(
            "replication factor {} is larger than the 1 available broker",
            topic.replication_factor
        )));
    }
    if topic.replication_factor == 0 || topic.replication_factor < -1 {
        return Err(MetadataError::InvalidReplicationFactor(format!("replication factor {} must be positive", topic.replication_factor)));
    }
    let partitions = if topic.assignments.is_empty() {
        if topic.num_partitions == -1 {
            ctx.state.config.num_partitions
        } else {
            topic.num_partitions
        }
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(MetadataError::InvalidPartitions(
                "both a replica assignment and a partition count or replication factor were given".into(),
            ));
        }
        let mut indexes: Vec<i32> = topic.assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err(MetadataError::InvalidPartitions("assigned partitions must be 0..n without gaps".into()));
        }
        if topic.assignments.iter().any(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != vec![node_id]) {
            return Err(MetadataError::InvalidReplicationFactor(format!("replicas must be exactly [{node_id}], the only broker")));
        }
        indexes.len() as i32
    };
    let mut configs = BTreeMap::new();
    for c in &topic.configs {
        let Some(value) = &c.value else {
            return Err(config::ConfigError(format!("null value for {}", c.name.as_str())).into());
        };
        configs.insert(c.name.to_string(), value.to_string());
    }
    Ok(NewTopic { name, partitions, configs })
}

pub(crate) async fn create_topics(ctx: &RequestContext, request: CreateTopicsRequest) -> Response<CreateTopicsResponse> {
    let state = &ctx.state;
    let mut seen = HashSet::new();
    let duplicates: HashSet<String> =
        request.topics.iter().filter(|t| !seen.insert(t.name.0.to_string())).map(|t| t.name.0.to_string()).collect();
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.to_string();
        let base = CreatableTopicResult::default().with_name(topic.name.clone()).with_num_partitions(-1).with_replication_factor(-1);
        if duplicates.contains(&name) {
            results.push(
                base.with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(Some(text(format!("topic '{name}' appears more than once in the request")))),
            );
            continue;
        }
        let outcome = spec_of(ctx, topic).and_then(|spec| {
            if request.validate_only {
                state.metadata.validate_new_topic(&spec).map(|()| (spec, None))
            } else {
                let created = state.metadata.create_topic(spec.clone())?;
                Ok((spec, Some(created)))
            }
        });
        match outcome {
            Ok((spec, created)) => {
                let defaults = state.metadata.defaults();
                let configs = config::TOPIC_CONFIGS
                    .iter()
                    .map(|def| {
                        let (value, source) = match spec.configs.get(def.name) {
                            Some(v) => (v.clone(), SOURCE_TOPIC),
                            None => (config::default_value(def.name, defaults), SOURCE_DEFAULT),
                        };
                        CreatableTopicConfigs::default().with_name(text(def.name)).with_value(Some(text(value))).with_config_source(source)
                    })
                    .collect();
                let mut result =
                    base.with_error_code(NONE).with_num_partitions(spec.partitions).with_replication_factor(1).with_configs(Some(configs));
                if let Some(created) = created {
                    result = result.with_topic_id(created.id);
                }
                results.push(result);
            }
            Err(e) => results.push(base.with_error_code(metadata_error_code(&e)).with_error_message(Some(text(e.to_string())))),
        }
    }
    Response::Now(CreateTopicsResponse::default().with_topics(results))
}

pub(crate) async fn delete_topics(ctx: &RequestContext, request: DeleteTopicsRequest) -> Response<DeleteTopicsResponse> {
    let metadata = &ctx.state.metadata;
    // v6 names topics by name or id; earlier versions by name only.
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if ctx.version >= 6 {
        request.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)).collect()
    } else {
        request.topic_names.iter().map(|n| (Some(n.0.to_string()), uuid::Uuid::nil())).collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(name) => Ok(name.clone()),
                None => metadata.topic_by_id(&id).map(|t| t.name.clone()).ok_or(code(ResponseError::UnknownTopicId)),
            };
            let result = DeletableTopicResult::default().with_name(name.as_deref().map(topic_name)).with_topic_id(id);
            match resolved.map(|n| (metadata.delete_topic(&n), n)) {
                Ok((Ok(topic), n)) => result.with_name(Some(topic_name(&n))).with_topic_id(topic.id).with_error_code(NONE),
                Ok((Err(e), _)) => result.with_error_code(metadata_error_code(&e)).with_error_message(Some(text(e.to_string()))),
                Err(error) => result.with_error_code(error),
            }
        })
        .collect();
    Response::Now(DeleteTopicsResponse::default().with_responses(responses))
}

pub(crate) async fn create_partitions(ctx: &RequestContext, request: CreatePartitionsRequest) -> Response<CreatePartitionsResponse> {
    let metadata = &ctx.state.metadata;
    let node_id = ctx.state.config.node_id;
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.to_string();
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Some(assignments) = &t.assignments {
                // Kafka's `ReplicationControlManager.createPartitions`: one assignment per new
                // partition (checked once the topic and the increase are known to be valid).
                let current = metadata.topic(&name).map(|topic| topic.partitions.len() as i32);
                if let Some(current) = current.filter(|current| t.count > *current) {
                    let additional = t.count - current;
                    if assignments.len() as i32 != additional {
                        return result.with_error_code(code(ResponseError::InvalidReplicaAssignment)).with_error_message(Some(text(
                            format!(
                                "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                                assignments.len()
                            ),
                        )));
                    }
                }
                if assignments.iter().any(|a| a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>() != vec![node_id]) {
                    return result
                        .with_error_code(code(ResponseError::InvalidReplicaAssignment))
                        .with_error_message(Some(text(format!("replicas must be exactly [{node_id}]"))));
                }
            }
            match metadata.create_partitions(&name, t.count, request.validate_only) {
                Ok(()) => result.with_error_code(NONE),
                Err(e) => result.with_error_code(metadata_error_code(&e)).with_error_message(Some(text(e.to_string()))),
            }
        })
        .collect();
    Response::Now(CreatePartitionsResponse::default().with_results(results))
}

pub(crate) async fn delete_records(ctx: &RequestContext, request: DeleteRecordsRequest) -> Response<DeleteRecordsResponse> {
    let state = &ctx.state;
    let mut changed = false;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.metadata.topic(&t.name.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let base = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index).with_low_watermark(-1);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                        return base.with_error_code(code(ResponseError::UnknownTopicOrPartition));
                    };
                    match partition.delete_records(p.offset) {
                        Ok(low_watermark) => {
                            changed = true;
                            base.with_error_code(NONE).with_low_watermark(low_watermark)
                        }
                        Err(DeleteRecordsError::OffsetOutOfRange) => base.with_error_code(code(ResponseError::OffsetOutOfRange)),
                        Err(DeleteRecordsError::Io(_)) => base.with_error_code(code(ResponseError::KafkaStorageError)),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    if changed {
        // The new log start offsets are durable before the answer.
        if let Err(e) = state.metadata.write_log_start_checkpoint() {
            state.health.fail("write log start checkpoint", &e);
        }
    }
    Response::Now(DeleteRecordsResponse::default().with_topics(topics))
}
