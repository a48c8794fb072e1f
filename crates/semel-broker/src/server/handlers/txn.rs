//! Transaction APIs: AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26),
//! TxnOffsetCommit (28). InitProducerId with a transactional id is in `init_producer_id`.
//! The decisions are the coordinators'; this module translates requests and answers.

use kafka_protocol::messages::add_partitions_to_txn_response::{AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult};
use kafka_protocol::messages::txn_offset_commit_response::{TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic};
use kafka_protocol::messages::*;

use crate::coordinator::group::GroupCoordinator;
use crate::coordinator::txn::{errors, EndOutcome};
use crate::server::dispatch::{RequestContext, Response};

/// How long EndTxn waits for the markers before answering (the outcome is durable already).
const COMPLETION_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// AddPartitionsToTxn v0-v3 (one transaction per request).
pub(crate) async fn add_partitions(ctx: &RequestContext, request: AddPartitionsToTxnRequest) -> Response<AddPartitionsToTxnResponse> {
    let state = ctx.state.clone();
    let id = request.v3_and_below_transactional_id.0.to_string();
    let partitions: Vec<(String, i32)> =
        request.v3_and_below_topics.iter().flat_map(|t| t.partitions.iter().map(move |p| (t.name.0.to_string(), *p))).collect();
    let metadata = &state.metadata;
    let (codes, durable) = state.txns.add_partitions(
        &id,
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
        ctx.version >= 2,
        &partitions,
        |t, p| metadata.topic(t).is_some_and(|topic| topic.partition(p).is_some()),
    );
    Response::Later(Box::pin(async move {
        let mut codes = codes;
        if let Some(durable) = durable {
            if state.txns.wait_durable(&id, durable).await.is_err() {
                codes.iter_mut().for_each(|c| *c = errors::KAFKA_STORAGE_ERROR);
            }
        }
        let mut codes = codes.into_iter();
        let results = request
            .v3_and_below_topics
            .iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(codes.next().unwrap_or(errors::NONE))
                        })
                        .collect(),
                )
            })
            .collect();
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
    }))
}

pub(crate) async fn add_offsets(ctx: &RequestContext, request: AddOffsetsToTxnRequest) -> Response<AddOffsetsToTxnResponse> {
    let state = ctx.state.clone();
    let id = request.transactional_id.0.to_string();
    match state.txns.add_offsets(&id, request.producer_id.0, request.producer_epoch, ctx.version >= 2, &request.group_id.0) {
        Err(error) => Response::Now(AddOffsetsToTxnResponse::default().with_error_code(error)),
        Ok(None) => Response::Now(AddOffsetsToTxnResponse::default().with_error_code(errors::NONE)),
        Ok(Some(durable)) => Response::Later(Box::pin(async move {
            let error = if state.txns.wait_durable(&id, durable).await.is_ok() { errors::NONE } else { errors::KAFKA_STORAGE_ERROR };
            AddOffsetsToTxnResponse::default().with_error_code(error)
        })),
    }
}

pub(crate) async fn end_txn(ctx: &RequestContext, request: EndTxnRequest) -> Response<EndTxnResponse> {
    let state = ctx.state.clone();
    let id = request.transactional_id.0.to_string();
    match state.txns.end_txn(&id, request.producer_id.0, request.producer_epoch, ctx.version >= 2, request.committed) {
        EndOutcome::Now(error) => Response::Now(EndTxnResponse::default().with_error_code(error)),
        EndOutcome::Prepared(durable, completion) => Response::Later(Box::pin(async move {
            if state.txns.wait_durable(&id, durable).await.is_err() {
                return EndTxnResponse::default().with_error_code(errors::KAFKA_STORAGE_ERROR);
            }
            // The outcome is decided and durable. Kafka answers here and writes the markers
            // afterwards; semel answers once the markers are written too (up to a bound), so
            // the producer's next transaction does not run into CONCURRENT_TRANSACTIONS and its
            // retry back-off, and a read_committed consumer sees the transaction as soon as the
            // commit returns. The completion runs on its own task: it finishes whatever happens
            // to this connection.
            let completing = tokio::spawn(crate::coordinator::markers::complete(state.clone(), completion));
            let _ = tokio::time::timeout(COMPLETION_WAIT, completing).await;
            EndTxnResponse::default().with_error_code(errors::NONE)
        })),
    }
}

pub(crate) async fn txn_offset_commit(ctx: &RequestContext, request: TxnOffsetCommitRequest) -> Response<TxnOffsetCommitResponse> {
    let state = ctx.state.clone();
    let now = crate::now_ms();
    let shape: Vec<(TopicName, Vec<i32>)> =
        request.topics.iter().map(|t| (t.name.clone(), t.partitions.iter().map(|p| p.partition_index).collect())).collect();
    let count: usize = shape.iter().map(|(_, ps)| ps.len()).sum();
    // The producer must be the transactional id's current one, and the group must be in its
    // ongoing transaction (AddOffsetsToTxn); checked and written under the transaction
    // coordinator's lock, so the transaction cannot end between the two.
    let metadata = &state.metadata;
    // v3+ carries member and generation; below, generation -1 and no member.
    let (generation, member, instance) = if ctx.version >= 3 {
        (request.generation_id, request.member_id.to_string(), request.group_instance_id.as_ref().map(ToString::to_string))
    } else {
        (-1, String::new(), None)
    };
    // Built before the coordinator's lock is taken; only the check and the write run under it.
    let offsets = super::groups::requested_offsets!(request.topics, now);
    let (codes, durable) = state.txns.with_offsets_verified(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        ctx.version >= 2,
        &request.group_id.0,
        |txn_error| match txn_error {
            Some(error) => (vec![error; count], None),
            None => state.groups.commit_offsets(
                Some((request.producer_id.0, request.producer_epoch)),
                &request.group_id.0,
                generation,
                &member,
                instance.as_deref(),
                offsets,
                |topic, partition| metadata.topic(topic).is_some_and(|t| t.partition(partition).is_some()),
            ),
        },
    );
    Response::Later(Box::pin(async move {
        let mut codes = codes;
        if let Some(durable) = durable {
            if state.groups.wait_durable(durable).await.is_err() {
                codes.iter_mut().for_each(|c| *c = GroupCoordinator::storage_error());
            }
        }
        let mut codes = codes.into_iter();
        let topics = shape
            .into_iter()
            .map(|(name, partitions)| {
                TxnOffsetCommitResponseTopic::default().with_name(name).with_partitions(
                    partitions
                        .into_iter()
                        .map(|p| {
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(codes.next().unwrap_or(errors::NONE))
                        })
                        .collect(),
                )
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    }))
}
