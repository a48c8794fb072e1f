//! Operating transactions (KIP-664): DescribeProducers (61), DescribeTransactions (65),
//! ListTransactions (66), and WriteTxnMarkers (27), which `kafka-transactions abort` uses to
//! end a hanging transaction.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_producers_response::{PartitionResponse, ProducerState, TopicResponse};
use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState as DescribedTxn};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedTxn;
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::*;

use super::{append_error_code, code, text, topic_name, NONE};
use crate::coordinator::txn::TxnState;
use crate::server::dispatch::{RequestContext, Response};
use crate::storage::batch::Marker;
use crate::storage::partition::ExternalMarkerError;

pub(crate) async fn describe_producers(ctx: &RequestContext, request: DescribeProducersRequest) -> Response<DescribeProducersResponse> {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = ctx.state.metadata.topic(&t.name.0);
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let base = PartitionResponse::default().with_partition_index(index);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(index)) else {
                        return base.with_error_code(code(ResponseError::UnknownTopicOrPartition));
                    };
                    let producers = partition
                        .describe_producers()
                        .into_iter()
                        .map(|(id, epoch, last_sequence, last_timestamp, coordinator_epoch, txn_start)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(i32::from(epoch))
                                .with_last_sequence(last_sequence)
                                .with_last_timestamp(last_timestamp)
                                .with_coordinator_epoch(coordinator_epoch)
                                .with_current_txn_start_offset(txn_start)
                        })
                        .collect();
                    base.with_error_code(NONE).with_active_producers(producers)
                })
                .collect();
            TopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    Response::Now(DescribeProducersResponse::default().with_topics(topics))
}

pub(crate) async fn describe_transactions(
    ctx: &RequestContext,
    request: DescribeTransactionsRequest,
) -> Response<DescribeTransactionsResponse> {
    let states = request
        .transactional_ids
        .into_iter()
        .map(|id| match ctx.state.txns.describe(&id.0) {
            None => DescribedTxn::default()
                .with_transactional_id(id)
                .with_error_code(code(ResponseError::TransactionalIdNotFound))
                .with_transaction_state(text("")),
            Some(m) => {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in &m.partitions {
                    by_topic.entry(topic.clone()).or_default().push(*partition);
                }
                DescribedTxn::default()
                    .with_error_code(NONE)
                    .with_transactional_id(id)
                    .with_transaction_state(text(m.state.name()))
                    .with_transaction_timeout_ms(m.timeout_ms)
                    .with_transaction_start_time_ms(m.txn_start_ms)
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_topics(
                        by_topic.into_iter().map(|(t, ps)| TopicData::default().with_topic(topic_name(&t)).with_partitions(ps)).collect(),
                    )
            }
        })
        .collect();
    Response::Now(DescribeTransactionsResponse::default().with_transaction_states(states))
}

const STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub(crate) async fn list_transactions(ctx: &RequestContext, request: ListTransactionsRequest) -> Response<ListTransactionsResponse> {
    let now = crate::now_ms();
    let wanted_states: Vec<String> = request.state_filters.iter().map(ToString::to_string).collect();
    let unknown: Vec<_> =
        wanted_states.iter().filter(|s| !STATES.iter().any(|k| k.name() == s.as_str())).map(|s| text(s.clone())).collect();
    let wanted_ids: Vec<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    // v1: only transactions running longer than the duration (-1: no filter).
    let min_duration = if ctx.version >= 1 { request.duration_filter } else { -1 };
    let listed = ctx
        .state
        .txns
        .list()
        .into_iter()
        .filter(|m| wanted_states.is_empty() || wanted_states.iter().any(|s| s == m.state.name()))
        .filter(|m| wanted_ids.is_empty() || wanted_ids.contains(&m.producer_id))
        .filter(|m| min_duration < 0 || (m.state == TxnState::Ongoing && now - m.txn_start_ms > min_duration))
        .map(|m| {
            ListedTxn::default()
                .with_transactional_id(TransactionalId(text(m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(text(m.state.name()))
        })
        .collect();
    Response::Now(
        ListTransactionsResponse::default().with_error_code(NONE).with_unknown_state_filters(unknown).with_transaction_states(listed),
    )
}

pub(crate) async fn write_txn_markers(ctx: &RequestContext, request: WriteTxnMarkersRequest) -> Response<WriteTxnMarkersResponse> {
    let state = Arc::clone(&ctx.state);
    Response::Later(Box::pin(async move {
        let mut results = Vec::with_capacity(request.markers.len());
        for marker in request.markers {
            let mut topics = Vec::new();
            for t in &marker.topics {
                let topic = state.metadata.topic(&t.name.0);
                let mut partitions = Vec::new();
                for &index in &t.partition_indexes {
                    let error = match topic.as_ref().and_then(|topic| topic.partition(index).map(|p| (topic, p))) {
                        None => code(ResponseError::UnknownTopicOrPartition),
                        Some((topic, partition)) => {
                            match partition.check_external_marker(marker.producer_id.0, marker.producer_epoch, marker.coordinator_epoch) {
                                Err(ExternalMarkerError::InvalidProducerEpoch) => code(ResponseError::InvalidProducerEpoch),
                                Err(ExternalMarkerError::CoordinatorFenced) => code(ResponseError::TransactionCoordinatorFenced),
                                Ok(()) => {
                                    let settings = topic.settings(state.metadata.defaults());
                                    let m = Marker { commit: marker.transaction_result, coordinator_epoch: marker.coordinator_epoch };
                                    match partition.write_marker(marker.producer_id.0, marker.producer_epoch, m, &settings) {
                                        Ok(end) => match partition.flush_to(end).await {
                                            Ok(()) => NONE,
                                            Err(e) => append_error_code(&e),
                                        },
                                        Err(e) => append_error_code(&e),
                                    }
                                }
                            }
                        }
                    };
                    partitions.push(WritableTxnMarkerPartitionResult::default().with_partition_index(index).with_error_code(error));
                }
                topics.push(WritableTxnMarkerTopicResult::default().with_name(t.name.clone()).with_partitions(partitions));
            }
            results.push(WritableTxnMarkerResult::default().with_producer_id(marker.producer_id).with_topics(topics));
        }
        WriteTxnMarkersResponse::default().with_markers(results)
    }))
}
