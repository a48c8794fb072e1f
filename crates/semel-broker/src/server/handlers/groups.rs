//! Consumer group APIs: JoinGroup (11), SyncGroup (14), Heartbeat (12), LeaveGroup (13),
//! OffsetCommit (8), OffsetFetch (9), DescribeGroups (15), ListGroups (16), DeleteGroups (42),
//! OffsetDelete (47). The decisions are the coordinator's (`coordinator::group`); this module
//! only translates requests and answers.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
use kafka_protocol::messages::offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions, OffsetFetchResponseTopic,
    OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::{text, topic_name};

/// KIP-447: a transaction is still committing this partition's offset.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;
use crate::coordinator::group::{errors, CommittedOffset, GroupCoordinator, JoinRequest, SyncRequest};

/// Per topic, per partition: the committed offset, if any.
type TopicOffsets = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;
use crate::server::dispatch::{RequestContext, Response};
use crate::server::wire::Embedded;

fn opt_text(s: Option<String>) -> Option<StrBytes> {
    s.map(text)
}

pub(crate) async fn join_group(ctx: &RequestContext, request: JoinGroupRequest) -> Response<JoinGroupResponse> {
    let version = ctx.version;
    let groups = &ctx.state.groups;
    let join = JoinRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        group_instance_id: request.group_instance_id.map(|s| s.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
        session_timeout_ms: request.session_timeout_ms,
        // v0 has no rebalance timeout: it equals the session timeout.
        rebalance_timeout_ms: if version >= 1 { request.rebalance_timeout_ms } else { request.session_timeout_ms },
        protocol_type: request.protocol_type.to_string(),
        protocols: request.protocols.iter().map(|p| (p.name.to_string(), p.metadata.to_vec())).collect(),
        require_known_member_id: version >= 4,
    };
    let to_response = move |r: crate::coordinator::group::JoinResult| {
        let mut response = JoinGroupResponse::default()
            .with_error_code(r.error)
            .with_generation_id(r.generation_id)
            .with_protocol_name(Some(text(r.protocol_name.unwrap_or_default())))
            .with_leader(text(r.leader))
            .with_member_id(text(r.member_id))
            .with_members(
                r.members
                    .into_iter()
                    .map(|(id, instance, metadata)| {
                        let m = JoinGroupResponseMember::default().with_member_id(text(id)).with_metadata(Bytes::from(metadata));
                        if version >= 5 {
                            m.with_group_instance_id(opt_text(instance))
                        } else {
                            m
                        }
                    })
                    .collect(),
            );
        if version >= 7 {
            response = response.with_protocol_type(opt_text(r.protocol_type));
        }
        response
    };
    match groups.join(join) {
        Err(immediate) => Response::Now(to_response(*immediate)),
        Ok(waiter) => Response::Later(Box::pin(async move {
            let result = waiter.await.unwrap_or_else(|_| crate::coordinator::group::JoinResult {
                error: errors::UNKNOWN_MEMBER_ID,
                generation_id: -1,
                ..Default::default()
            });
            to_response(result)
        })),
    }
}

pub(crate) async fn sync_group(ctx: &RequestContext, request: SyncGroupRequest) -> Response<SyncGroupResponse> {
    let version = ctx.version;
    let state = ctx.state.clone();
    let (waiter, durable) = state.groups.sync(SyncRequest {
        group_id: &request.group_id.0,
        generation_id: request.generation_id,
        member_id: &request.member_id,
        instance: request.group_instance_id.as_deref(),
        protocol_type: request.protocol_type.as_deref().filter(|_| version >= 5),
        protocol_name: request.protocol_name.as_deref().filter(|_| version >= 5),
        assignments: request.assignments.iter().map(|a| (a.member_id.to_string(), a.assignment.to_vec())).collect(),
    });
    Response::Later(Box::pin(async move {
        let mut result = waiter
            .await
            .unwrap_or_else(|_| crate::coordinator::group::SyncResult { error: errors::UNKNOWN_MEMBER_ID, ..Default::default() });
        if let Some(durable) = durable {
            if let Err(e) = state.groups.wait_durable(durable).await {
                tracing::error!(error = %e, "group assignment write failed");
                result = crate::coordinator::group::SyncResult { error: GroupCoordinator::storage_error(), ..Default::default() };
            }
        }
        let mut response = SyncGroupResponse::default().with_error_code(result.error).with_assignment(Bytes::from(result.assignment));
        if version >= 5 {
            response = response.with_protocol_type(opt_text(result.protocol_type)).with_protocol_name(opt_text(result.protocol_name));
        }
        response
    }))
}

pub(crate) async fn heartbeat(ctx: &RequestContext, request: HeartbeatRequest) -> Response<HeartbeatResponse> {
    let error =
        ctx.state.groups.heartbeat(&request.group_id.0, request.generation_id, &request.member_id, request.group_instance_id.as_deref());
    Response::Now(HeartbeatResponse::default().with_error_code(error))
}

pub(crate) async fn leave_group(ctx: &RequestContext, request: LeaveGroupRequest) -> Response<LeaveGroupResponse> {
    let groups = &ctx.state.groups;
    let group_id = request.group_id.0.to_string();
    if ctx.version < 3 {
        let error = groups.leave(&group_id, &request.member_id, None);
        return Response::Now(LeaveGroupResponse::default().with_error_code(error));
    }
    let members = request
        .members
        .iter()
        .map(|m| {
            let error = groups.leave(&group_id, &m.member_id, m.group_instance_id.as_deref());
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
                .with_error_code(error)
        })
        .collect();
    Response::Now(LeaveGroupResponse::default().with_error_code(errors::NONE).with_members(members))
}

/// The offsets an OffsetCommit or TxnOffsetCommit request carries, as `(topic, partition,
/// offset)` for the group coordinator, stamped `now_ms` (null metadata is ""). The two requests'
/// topic and partition types are distinct but have the same fields, hence a macro.
macro_rules! requested_offsets {
    ($topics:expr, $now_ms:expr) => {
        $topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let offset = $crate::coordinator::group::CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(ToString::to_string).unwrap_or_default(),
                        commit_timestamp_ms: $now_ms,
                    };
                    (t.name.0.to_string(), p.partition_index, offset)
                })
            })
            .collect::<Vec<(String, i32, $crate::coordinator::group::CommittedOffset)>>()
    };
}
pub(crate) use requested_offsets;

pub(crate) async fn offset_commit(ctx: &RequestContext, request: OffsetCommitRequest) -> Response<OffsetCommitResponse> {
    let state = ctx.state.clone();
    let now = crate::now_ms();
    let offsets = requested_offsets!(request.topics, now);
    let metadata = &state.metadata;
    let (errors, durable) = state.groups.commit_offsets(
        None,
        &request.group_id.0,
        request.generation_id_or_member_epoch,
        &request.member_id,
        request.group_instance_id.as_deref(),
        offsets,
        |topic, partition| metadata.topic(topic).is_some_and(|t| t.partition(partition).is_some()),
    );
    let shape: Vec<(TopicName, Vec<i32>)> =
        request.topics.iter().map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect())).collect();
    Response::Later(Box::pin(async move {
        let mut errors = errors;
        if let Some(durable) = durable {
            if let Err(e) = state.groups.wait_durable(durable).await {
                tracing::error!(error = %e, "offset commit write failed");
                for error in &mut errors {
                    if *error == errors::NONE {
                        *error = GroupCoordinator::storage_error();
                    }
                }
            }
        }
        let mut errors = errors.into_iter();
        let topics = shape
            .into_iter()
            .map(|(name, partitions)| {
                OffsetCommitResponseTopic::default().with_name(name).with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(errors.next().unwrap_or(errors::NONE))
                        })
                        .collect(),
                )
            })
            .collect();
        OffsetCommitResponse::default().with_topics(topics)
    }))
}

/// The committed offsets of one group, for the requested topics (None: all committed).
fn group_offsets(groups: &GroupCoordinator, group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> TopicOffsets {
    let committed = groups.fetch_offsets(group_id);
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, ps)| (t.clone(), ps.into_iter().map(|p| (p, committed.get(&(t.clone(), p)).cloned())).collect()))
            .collect(),
        None => {
            let mut by_topic: BTreeMap<String, Vec<(i32, Option<CommittedOffset>)>> = BTreeMap::new();
            for ((t, p), o) in committed {
                by_topic.entry(t).or_default().push((p, Some(o)));
            }
            by_topic
                .into_iter()
                .map(|(t, mut ps)| {
                    ps.sort_by_key(|(p, _)| *p);
                    (t, ps)
                })
                .collect()
        }
    }
}

/// One partition of an OffsetFetch answer: index, offset, leader epoch, metadata, error.
type FetchedPartition = (i32, i64, i32, String, i16);

pub(crate) async fn offset_fetch(ctx: &RequestContext, request: OffsetFetchRequest) -> Response<OffsetFetchResponse> {
    let groups = &ctx.state.groups;
    let version = ctx.version;
    // KIP-447: with require_stable, a partition whose offset a transaction is still committing
    // answers UNSTABLE_OFFSET_COMMIT (the client retries).
    let require_stable = version >= 7 && request.require_stable;
    // The answer for one group, the same before and after v8 (which batches groups).
    let fetch = |group_id: &str, topics: Option<Vec<(String, Vec<i32>)>>| -> Vec<(String, Vec<FetchedPartition>)> {
        group_offsets(groups, group_id, topics)
            .into_iter()
            .map(|(t, ps)| {
                let partitions = ps
                    .into_iter()
                    .map(|(p, o)| {
                        let error =
                            if require_stable && groups.has_pending(group_id, &t, p) { UNSTABLE_OFFSET_COMMIT } else { errors::NONE };
                        match o.filter(|_| error == errors::NONE) {
                            Some(o) => (p, o.offset, if version >= 5 { o.leader_epoch } else { -1 }, o.metadata, error),
                            None => (p, -1, -1, String::new(), error),
                        }
                    })
                    .collect();
                (t, partitions)
            })
            .collect()
    };
    if version < 8 {
        let topics = request.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
        let topics = fetch(&request.group_id.0, topics)
            .into_iter()
            .map(|(t, ps)| {
                OffsetFetchResponseTopic::default().with_name(topic_name(&t)).with_partitions(
                    ps.into_iter()
                        .map(|(p, offset, epoch, metadata, error)| {
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(p)
                                .with_committed_offset(offset)
                                .with_committed_leader_epoch(epoch)
                                .with_metadata(Some(text(metadata)))
                                .with_error_code(error)
                        })
                        .collect(),
                )
            })
            .collect();
        return Response::Now(OffsetFetchResponse::default().with_topics(topics).with_error_code(errors::NONE));
    }
    let response_groups = request
        .groups
        .into_iter()
        .map(|g| {
            let topics = g.topics.map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
            let topics = fetch(&g.group_id.0, topics)
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopics::default().with_name(topic_name(&t)).with_partitions(
                        ps.into_iter()
                            .map(|(p, offset, epoch, metadata, error)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(text(metadata)))
                                    .with_error_code(error)
                            })
                            .collect(),
                    )
                })
                .collect();
            OffsetFetchResponseGroup::default().with_group_id(g.group_id).with_topics(topics).with_error_code(errors::NONE)
        })
        .collect();
    Response::Now(OffsetFetchResponse::default().with_groups(response_groups))
}

pub(crate) async fn describe_groups(ctx: &RequestContext, request: DescribeGroupsRequest) -> Response<DescribeGroupsResponse> {
    let groups = request
        .groups
        .into_iter()
        .map(|id| match ctx.state.groups.describe(&id.0) {
            Some(d) => DescribedGroup::default()
                .with_error_code(errors::NONE)
                .with_group_id(id)
                .with_group_state(text(d.state))
                .with_protocol_type(text(d.protocol_type))
                .with_protocol_data(text(d.protocol))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            let member = DescribedGroupMember::default()
                                .with_member_id(text(m.member_id))
                                .with_client_id(text(m.client_id))
                                .with_client_host(text(m.client_host))
                                .with_member_metadata(Bytes::from(m.metadata))
                                .with_member_assignment(Bytes::from(m.assignment));
                            if ctx.version >= 4 {
                                member.with_group_instance_id(opt_text(m.group_instance_id))
                            } else {
                                member
                            }
                        })
                        .collect(),
                ),
            // Kafka describes an unknown group as Dead with no error.
            None => DescribedGroup::default().with_error_code(errors::NONE).with_group_id(id).with_group_state(text("Dead")),
        })
        .collect();
    Response::Now(DescribeGroupsResponse::default().with_groups(groups))
}

pub(crate) async fn list_groups(ctx: &RequestContext, request: ListGroupsRequest) -> Response<ListGroupsResponse> {
    let states: Vec<String> = request.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = request.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let groups = ctx
        .state
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| states.is_empty() || states.contains(&state.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, protocol_type, state)| {
            let g = ListedGroup::default().with_group_id(GroupId(text(id))).with_protocol_type(text(protocol_type));
            let g = if ctx.version >= 4 { g.with_group_state(text(state)) } else { g };
            if ctx.version >= 5 {
                g.with_group_type(text("classic"))
            } else {
                g
            }
        })
        .collect();
    Response::Now(ListGroupsResponse::default().with_error_code(errors::NONE).with_groups(groups))
}

pub(crate) async fn delete_groups(ctx: &RequestContext, request: DeleteGroupsRequest) -> Response<DeleteGroupsResponse> {
    let state = ctx.state.clone();
    let outcomes: Vec<(GroupId, i16, Option<_>)> = request
        .groups_names
        .into_iter()
        .map(|id| {
            let (error, durable) = state.groups.delete_group(&id.0);
            (id, error, durable)
        })
        .collect();
    Response::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(outcomes.len());
        for (id, mut error, durable) in outcomes {
            if let Some(durable) = durable {
                if state.groups.wait_durable(durable).await.is_err() {
                    error = GroupCoordinator::storage_error();
                }
            }
            results.push(delete_groups_response::DeletableGroupResult::default().with_group_id(id).with_error_code(error));
        }
        DeleteGroupsResponse::default().with_results(results)
    }))
}

/// Whether a consumer subscription (ConsumerProtocolSubscription, version-prefixed) names `topic`.
fn subscribes_to(metadata: &[u8], topic: &str) -> bool {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return false;
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    if crate::server::wire::check_embedded(Embedded::ConsumerProtocolSubscription, version.clamp(0, 3), &buf).is_err() {
        return false;
    }
    ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3)).is_ok_and(|s| s.topics.iter().any(|t| t.as_str() == topic))
}

pub(crate) async fn offset_delete(ctx: &RequestContext, request: OffsetDeleteRequest) -> Response<OffsetDeleteResponse> {
    let state = ctx.state.clone();
    let partitions: Vec<(String, i32)> =
        request.topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index))).collect();
    let (group_error, errors, durable) = state.groups.delete_offsets(&request.group_id.0, &partitions, subscribes_to);
    Response::Later(Box::pin(async move {
        let mut group_error = group_error;
        if let Some(durable) = durable {
            if state.groups.wait_durable(durable).await.is_err() {
                group_error = GroupCoordinator::storage_error();
            }
        }
        if group_error != errors::NONE {
            return OffsetDeleteResponse::default().with_error_code(group_error);
        }
        let mut by_topic: Vec<(String, Vec<(i32, i16)>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for ((topic, partition), error) in partitions.into_iter().zip(errors) {
            let i = *index.entry(topic.clone()).or_insert_with(|| {
                by_topic.push((topic.clone(), Vec::new()));
                by_topic.len() - 1
            });
            by_topic[i].1.push((partition, error));
        }
        let topics = by_topic
            .into_iter()
            .map(|(t, ps)| {
                OffsetDeleteResponseTopic::default().with_name(topic_name(&t)).with_partitions(
                    ps.into_iter()
                        .map(|(p, e)| OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(e))
                        .collect(),
                )
            })
            .collect();
        OffsetDeleteResponse::default().with_error_code(errors::NONE).with_topics(topics)
    }))
}
