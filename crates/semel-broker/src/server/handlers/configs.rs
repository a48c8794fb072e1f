//! DescribeConfigs (32), AlterConfigs (33), IncrementalAlterConfigs (44).

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym};
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest,
    DescribeConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};

use super::topics::{SOURCE_DEFAULT, SOURCE_TOPIC};
use super::{code, metadata_error_code, text, NONE};
use crate::metadata::config::{self, ConfigError, ConfigType};
use crate::metadata::MetadataError;
use crate::server::dispatch::{RequestContext, Response};

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_STATIC_BROKER: i8 = 4;

/// Broker configs reported by DescribeConfigs for the broker resource (read-only: semel's
/// broker settings come from its config file and flags).
fn broker_configs(ctx: &RequestContext) -> Vec<(&'static str, String, ConfigType)> {
    let c = &ctx.state.config;
    let l = &c.log;
    vec![
        ("auto.create.topics.enable", c.auto_create_topics_enable.to_string(), ConfigType::Boolean),
        ("broker.id", c.node_id.to_string(), ConfigType::Int),
        ("log.cleanup.policy", l.cleanup_policy.clone(), ConfigType::List),
        ("log.dirs", c.data_dir.display().to_string(), ConfigType::String),
        ("log.flush.interval.messages", l.flush_interval_messages.to_string(), ConfigType::Long),
        ("log.retention.bytes", l.retention_bytes.to_string(), ConfigType::Long),
        ("log.retention.ms", l.retention_ms.to_string(), ConfigType::Long),
        ("log.roll.ms", l.segment_ms.to_string(), ConfigType::Long),
        ("log.segment.bytes", l.segment_bytes.to_string(), ConfigType::Int),
        ("message.max.bytes", l.max_message_bytes.to_string(), ConfigType::Int),
        ("node.id", c.node_id.to_string(), ConfigType::Int),
        ("num.partitions", c.num_partitions.to_string(), ConfigType::Int),
        ("socket.request.max.bytes", c.max_request_bytes.to_string(), ConfigType::Int),
    ]
}

pub(crate) async fn describe_configs(ctx: &RequestContext, request: DescribeConfigsRequest) -> Response<DescribeConfigsResponse> {
    let state = &ctx.state;
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            // Null or empty: every config (as Kafka's ConfigHelper treats both).
            let keys: Option<Vec<String>> =
                resource.configuration_keys.filter(|k| !k.is_empty()).map(|k| k.iter().map(ToString::to_string).collect());
            let wanted = |key: &str| keys.as_ref().is_none_or(|k| k.iter().any(|w| w == key));
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let entry = |key: &str, value: String, source: i8, kind: ConfigType, read_only: bool| {
                let mut e = DescribeConfigsResourceResult::default()
                    .with_name(text(key))
                    .with_value(Some(text(value.clone())))
                    .with_read_only(read_only)
                    .with_config_source(source)
                    .with_config_type(kind as i8);
                if ctx.version == 0 {
                    e = e.with_config_source(-1);
                }
                if request.include_synonyms {
                    e = e.with_synonyms(vec![DescribeConfigsSynonym::default()
                        .with_name(text(key))
                        .with_value(Some(text(value)))
                        .with_source(source)]);
                }
                e
            };
            match resource.resource_type {
                RESOURCE_TOPIC => match state.metadata.topic(&name) {
                    Some(topic) => {
                        let overrides = topic.config_overrides();
                        let configs = config::TOPIC_CONFIGS
                            .iter()
                            .filter(|d| wanted(d.name))
                            .map(|d| match overrides.get(d.name) {
                                Some(v) => entry(d.name, v.clone(), SOURCE_TOPIC, d.kind, false),
                                None => {
                                    entry(d.name, config::default_value(d.name, state.metadata.defaults()), SOURCE_DEFAULT, d.kind, false)
                                }
                            })
                            .collect();
                        result.with_error_code(NONE).with_configs(configs)
                    }
                    None => result
                        .with_error_code(code(ResponseError::UnknownTopicOrPartition))
                        .with_error_message(Some(text(format!("topic '{name}' does not exist")))),
                },
                RESOURCE_BROKER if name.is_empty() || name == state.config.node_id.to_string() => {
                    let configs = broker_configs(ctx)
                        .into_iter()
                        .filter(|(k, _, _)| wanted(k))
                        .map(|(k, v, t)| entry(k, v, SOURCE_STATIC_BROKER, t, true))
                        .collect();
                    result.with_error_code(NONE).with_configs(configs)
                }
                RESOURCE_BROKER => result
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(Some(text(format!("unknown broker '{name}'")))),
                other => result
                    .with_error_code(code(ResponseError::InvalidRequest))
                    .with_error_message(Some(text(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    Response::Now(DescribeConfigsResponse::default().with_results(results))
}

/// A topic resource's outcome, or why a non-topic resource is refused.
fn check_resource(ctx: &RequestContext, resource_type: i8, name: &str) -> Result<(), (i16, String)> {
    match resource_type {
        RESOURCE_TOPIC => Ok(()),
        RESOURCE_BROKER if name.is_empty() || name == ctx.state.config.node_id.to_string() => {
            Err((code(ResponseError::InvalidRequest), "broker configs are read-only at run time: set them in semel's config file".into()))
        }
        _ => Err((code(ResponseError::InvalidRequest), format!("resource type {resource_type} '{name}' is not supported"))),
    }
}

fn error_of(e: &MetadataError) -> (i16, String) {
    (metadata_error_code(e), e.to_string())
}

pub(crate) async fn alter_configs(ctx: &RequestContext, request: AlterConfigsRequest) -> Response<AlterConfigsResponse> {
    let metadata = &ctx.state.metadata;
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            // AlterConfigs replaces the whole set of overrides.
            let outcome = check_resource(ctx, resource.resource_type, &name).and_then(|()| {
                let mut configs = BTreeMap::new();
                for c in &resource.configs {
                    match &c.value {
                        Some(v) => {
                            configs.insert(c.name.to_string(), v.to_string());
                        }
                        None => return Err(error_of(&ConfigError(format!("null value for {}", c.name.as_str())).into())),
                    }
                }
                metadata.set_topic_configs(&name, configs, request.validate_only).map_err(|e| error_of(&e))
            });
            let (error, message) = outcome.map_or_else(|(c, m)| (c, Some(text(m))), |()| (NONE, None));
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    Response::Now(AlterConfigsResponse::default().with_responses(responses))
}

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub(crate) async fn incremental_alter_configs(
    ctx: &RequestContext,
    request: IncrementalAlterConfigsRequest,
) -> Response<IncrementalAlterConfigsResponse> {
    let metadata = &ctx.state.metadata;
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let outcome = check_resource(ctx, resource.resource_type, &name).and_then(|()| {
                let topic = metadata.topic(&name).ok_or_else(|| error_of(&MetadataError::UnknownTopic(name.clone())))?;
                let mut configs = topic.config_overrides();
                for c in &resource.configs {
                    let key = c.name.to_string();
                    let def = config::find(&key).ok_or_else(|| error_of(&ConfigError(format!("unknown topic config '{key}'")).into()))?;
                    let value = c.value.as_ref().map(ToString::to_string);
                    match c.config_operation {
                        OP_SET => {
                            let v = value.ok_or_else(|| error_of(&ConfigError(format!("null value for {key}")).into()))?;
                            configs.insert(key, v);
                        }
                        OP_DELETE => {
                            configs.remove(&key);
                        }
                        OP_APPEND | OP_SUBTRACT if def.kind == ConfigType::List => {
                            let current = configs.get(&key).cloned().unwrap_or_else(|| config::default_value(&key, metadata.defaults()));
                            let mut items: Vec<String> =
                                current.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                            for item in value.unwrap_or_default().split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
                                if c.config_operation == OP_APPEND {
                                    if !items.contains(&item) {
                                        items.push(item);
                                    }
                                } else {
                                    items.retain(|i| *i != item);
                                }
                            }
                            configs.insert(key, items.join(","));
                        }
                        OP_APPEND | OP_SUBTRACT => {
                            return Err(error_of(&ConfigError(format!("{key} is not a list: APPEND and SUBTRACT do not apply")).into()))
                        }
                        other => return Err((code(ResponseError::InvalidRequest), format!("unknown config operation {other}"))),
                    }
                }
                metadata.set_topic_configs(&name, configs, request.validate_only).map_err(|e| error_of(&e))
            });
            let (error, message) = outcome.map_or_else(|(c, m)| (c, Some(text(m))), |()| (NONE, None));
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(error)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
        })
        .collect();
    Response::Now(IncrementalAlterConfigsResponse::default().with_responses(responses))
}
