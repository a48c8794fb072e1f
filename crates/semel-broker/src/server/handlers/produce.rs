//! Produce (0): validate and append each partition's batches in request order, then answer
//! according to acks: 0 never, 1 after the write, -1 after an fsync covers the write.

use std::sync::Arc;

use bytes::Bytes;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::{append_error_code, code, text, NONE};
use crate::broker::BrokerState;
use crate::coordinator::txn::Verification;
use crate::producer_state::ProducerStateError;
use crate::server::dispatch::{RequestContext, Response};
use crate::storage::batch::BatchError;
use crate::storage::partition::{AppendSettings, CheckedBatches};
use crate::storage::{AppendError, Partition};

/// A partition's answer, with what is still needed to complete it.
struct Pending {
    response: PartitionProduceResponse,
    /// Partition and end offset to make durable before answering acks=-1.
    flush: Option<(Arc<Partition>, i64)>,
}

fn partition_error(index: i32, error: i16, message: Option<String>) -> Pending {
    Pending {
        response: PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error)
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(-1)
            .with_error_message(message.map(text)),
        flush: None,
    }
}

/// The stateless checks of a partition's batches ([`CheckedBatches`]). Compressed batches are
/// checked on the decompression threads ([`crate::server::decompression`]), so that
/// decompressing (up to `max_decompressed_batch_bytes` per batch) never stalls the async
/// workers that serve every other client.
async fn check(state: &BrokerState, records: Bytes, settings: &AppendSettings) -> Result<CheckedBatches, AppendError> {
    let limit = state.config.max_decompressed_batch_bytes;
    if !CheckedBatches::any_compressed(&records) {
        return CheckedBatches::check(&records, settings, limit);
    }
    let settings = *settings;
    state
        .decompression
        .run(move || CheckedBatches::check(&records, &settings, limit))
        .await
        .unwrap_or_else(|| Err(AppendError::Batch(BatchError::Invalid("the batch check failed (a bug)".into()))))
}

/// A partition's answer to batches that were refused.
fn refused(index: i32, name: &str, error: AppendError) -> Pending {
    match error {
        AppendError::Batch(BatchError::MissingKey { records }) => {
            // Kafka's LogValidator.validateKey: every keyless record is named in
            // record_errors (v8+), so that clients fail only those records.
            let message = format!("Compacted topic cannot accept message without key in topic partition {name}-{index}.");
            let mut pending = partition_error(index, code(ResponseError::InvalidRecord), Some(message.clone()));
            pending.response.record_errors = records
                .into_iter()
                .map(|i| {
                    BatchIndexAndErrorMessage::default().with_batch_index(i).with_batch_index_error_message(Some(text(message.clone())))
                })
                .collect();
            pending
        }
        error => {
            tracing::debug!(topic = %name, partition = index, %error, "produce refused");
            partition_error(index, append_error_code(&error), Some(error.to_string()))
        }
    }
}

pub(crate) async fn handle(ctx: &RequestContext, request: ProduceRequest) -> Response<ProduceResponse> {
    let state = &ctx.state;
    let acks = request.acks;
    let valid_acks = matches!(acks, -1..=1);
    let now = crate::now_ms();
    let mut topics: Vec<(kafka_protocol::messages::TopicName, Vec<Pending>)> = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let name = topic_data.name.0.to_string();
        let topic = state.metadata.topic(&name);
        let settings = topic.as_ref().map(|t| t.settings(state.metadata.defaults()));
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for data in topic_data.partition_data {
            let index = data.index;
            if !valid_acks {
                partitions.push(partition_error(index, code(ResponseError::InvalidRequiredAcks), None));
                continue;
            }
            if crate::metadata::is_internal_topic(&name) {
                // Kafka's ReplicaManager: only the coordinators append to internal topics.
                let message = format!("Cannot append to internal topic {name}");
                partitions.push(partition_error(index, code(ResponseError::InvalidTopicException), Some(message)));
                continue;
            }
            let (Some(topic), Some(settings)) = (&topic, &settings) else {
                partitions.push(partition_error(index, code(ResponseError::UnknownTopicOrPartition), None));
                continue;
            };
            let Some(partition) = topic.partition(index) else {
                partitions.push(partition_error(index, code(ResponseError::UnknownTopicOrPartition), None));
                continue;
            };
            let Some(records) = data.records else {
                partitions.push(partition_error(index, code(ResponseError::InvalidRecord), Some("no records".into())));
                continue;
            };
            let checked = match check(state, records.clone(), settings).await {
                Ok(checked) => checked,
                Err(error) => {
                    partitions.push(refused(index, &name, error));
                    continue;
                }
            };
            let first = crate::storage::batch::BatchHeader::parse(&records).ok();
            let appended = match first {
                Some(h) if h.is_transactional() && h.has_producer_id() => {
                    state.txns.with_verified(h.producer_id, h.producer_epoch, &name, index, |verification| match verification {
                        Verification::Added => partition.append_checked(checked, settings, now, true),
                        Verification::StaleEpoch => Err(AppendError::ProducerState(ProducerStateError::InvalidProducerEpoch {
                            producer_id: h.producer_id,
                            epoch: h.producer_epoch,
                            current: h.producer_epoch.saturating_add(1),
                        })),
                        Verification::NotAdded => partition.append_checked(checked, settings, now, false),
                    })
                }
                _ => partition.append_checked(checked, settings, now, false),
            };
            match appended {
                Ok(info) => {
                    let needs_flush = partition.needs_flush_after_append();
                    let response = PartitionProduceResponse::default()
                        .with_index(index)
                        .with_error_code(NONE)
                        .with_base_offset(info.base_offset)
                        .with_log_append_time_ms(info.log_append_time_ms)
                        .with_log_start_offset(partition.log_start_offset());
                    let flush = needs_flush.then(|| (Arc::clone(partition), info.next_offset));
                    partitions.push(Pending { response, flush });
                }
                Err(AppendError::NotInTransaction) => {
                    // KIP-890 part 1: TRANSACTION_ABORTABLE from Produce v11, INVALID_TXN_STATE below.
                    let error =
                        if ctx.version >= 11 { code(ResponseError::TransactionAbortable) } else { code(ResponseError::InvalidTxnState) };
                    partitions.push(partition_error(index, error, Some(AppendError::NotInTransaction.to_string())));
                }
                Err(error) => partitions.push(refused(index, &name, error)),
            }
        }
        topics.push((topic_data.name, partitions));
    }

    if acks != -1 {
        // Start the flushes in the background: they advance the high watermark in the default
        // durable mode, so consumers see acks=0/1 data once it is on disk.
        for (_, partitions) in &topics {
            for pending in partitions {
                if let Some((partition, end)) = &pending.flush {
                    let (partition, end) = (Arc::clone(partition), *end);
                    tokio::spawn(async move {
                        let _ = partition.flush_to(end).await;
                    });
                }
            }
        }
        if acks == 0 {
            return Response::None;
        }
        return Response::Now(assemble(topics));
    }
    if topics.iter().all(|(_, ps)| ps.iter().all(|p| p.flush.is_none())) {
        return Response::Now(assemble(topics));
    }
    Response::Later(Box::pin(async move {
        // Partitions flush concurrently: start every fsync, then collect the outcomes.
        let mut flushes = Vec::new();
        for (t, (_, partitions)) in topics.iter_mut().enumerate() {
            for (p, pending) in partitions.iter_mut().enumerate() {
                if let Some((partition, end)) = pending.flush.take() {
                    flushes.push((t, p, tokio::spawn(async move { partition.flush_to(end).await })));
                }
            }
        }
        for (t, p, flush) in flushes {
            let outcome = flush.await.unwrap_or_else(|e| Err(AppendError::Io(std::io::Error::other(e))));
            if let Err(error) = outcome {
                let pending = &mut topics[t].1[p];
                *pending = partition_error(pending.response.index, append_error_code(&error), Some(error.to_string()));
            }
        }
        assemble(topics)
    }))
}

fn assemble(topics: Vec<(kafka_protocol::messages::TopicName, Vec<Pending>)>) -> ProduceResponse {
    let responses = topics
        .into_iter()
        .map(|(name, partitions)| {
            TopicProduceResponse::default().with_name(name).with_partition_responses(partitions.into_iter().map(|p| p.response).collect())
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}
