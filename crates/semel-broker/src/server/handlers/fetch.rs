//! Fetch (1): whole batches from below the high watermark, straight from the segment files,
//! with long polling (max_wait_ms / min_bytes) woken by appends.
//!
//! Fetch sessions (KIP-227) are declined: every answer has session id 0, which tells clients
//! to send full fetch requests; that is allowed by the protocol and costs only request size.
//!
//! Bounds, as Kafka's: the record bytes of one response are at most the smaller of the
//! request's max_bytes and the broker's `fetch_max_bytes` (a first batch larger than that is
//! still returned whole, so a consumer can always make progress), and a partition listed more
//! than once is read once, as Kafka's `FetchRequest.fetchData` map does it: at the place of its
//! first mention, with the values of its last. Before each read the response's bytes are
//! reserved in the broker's memory pool (twice: the records read and the frame they are
//! encoded into); the reservation is held until the response has been written to the client.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId, TopicName};
use uuid::Uuid;

use super::{code, NONE};
use crate::metadata::Topic;
use crate::server::dispatch::RequestContext;
use crate::server::memory::Reservation;
use crate::storage::log::ReadOutcome;

/// One requested partition, resolved once.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    current_leader_epoch: i32,
}

struct WantedTopic {
    name: TopicName,
    id: Uuid,
    topic: Option<Arc<Topic>>,
    unknown_error: i16,
    partitions: Vec<Wanted>,
}

/// The request's partitions without repeats, grouped as Kafka groups its response: each
/// partition once, where it was first listed, with the values it was last listed with;
/// consecutive partitions of one topic share a topic entry. Topics are named by id from v13.
fn unique_partitions(topics: Vec<FetchTopic>, by_id: bool) -> Vec<(FetchTopic, Vec<Wanted>)> {
    let key_of = |t: &FetchTopic| if by_id { t.topic_id.to_string() } else { t.topic.to_string() };
    let mut order: Vec<(String, i32)> = Vec::new();
    let mut latest: HashMap<(String, i32), (usize, Wanted)> = HashMap::new();
    let mut topic_of: HashMap<String, FetchTopic> = HashMap::new();
    for mut t in topics {
        let key = key_of(&t);
        for p in std::mem::take(&mut t.partitions) {
            let wanted = Wanted {
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
            };
            let slot = (key.clone(), p.partition);
            match latest.get_mut(&slot) {
                Some((_, w)) => *w = wanted,
                None => {
                    latest.insert(slot.clone(), (order.len(), wanted));
                    order.push(slot);
                }
            }
        }
        topic_of.entry(key).or_insert(t);
    }
    let mut grouped: Vec<(FetchTopic, Vec<Wanted>)> = Vec::new();
    for slot in order {
        let wanted = latest[&slot].1;
        match grouped.last_mut() {
            Some((t, partitions)) if key_of(t) == slot.0 => partitions.push(wanted),
            _ => grouped.push((topic_of[&slot.0].clone(), vec![wanted])),
        }
    }
    grouped
}

/// The response and the memory it holds until written.
pub(crate) fn handle(
    ctx: &RequestContext,
    request: FetchRequest,
) -> impl Future<Output = (FetchResponse, Option<Reservation>)> + Send + 'static {
    let state = Arc::clone(&ctx.state);
    let version = ctx.version;
    let session_refused = version >= 7 && request.session_id != 0;
    let by_id = version >= 13;
    let topics: Vec<WantedTopic> = unique_partitions(if session_refused { Vec::new() } else { request.topics }, by_id)
        .into_iter()
        .map(|(t, partitions)| {
            let (topic, unknown_error) = if by_id {
                (state.metadata.topic_by_id(&t.topic_id), code(ResponseError::UnknownTopicId))
            } else {
                (state.metadata.topic(&t.topic), code(ResponseError::UnknownTopicOrPartition))
            };
            WantedTopic { name: t.topic, id: t.topic_id, topic, unknown_error, partitions }
        })
        .collect();
    let read_committed = request.isolation_level == 1;
    let max_bytes = (request.max_bytes.max(0) as usize).min(state.config.fetch_max_bytes);
    let min_bytes = request.min_bytes.max(0) as usize;
    let max_wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0).min(state.config.fetch_max_wait_ms));

    async move {
        if session_refused {
            let response = FetchResponse::default().with_error_code(code(ResponseError::FetchSessionIdNotFound)).with_session_id(0);
            return (response, None);
        }
        let deadline = tokio::time::Instant::now() + max_wait;
        let mut arrivals = state.data_arrived.subscribe();
        let mut shutdown = state.shutdown.clone();
        loop {
            // Mark the current version seen before reading, so an append after the read wakes us.
            arrivals.borrow_and_update();
            // Twice the records: the bytes read and the frame they are encoded into are alive
            // at once; the larger figure is kept until the frame is written.
            let mut memory = state.memory.reserve(max_bytes.saturating_mul(2)).await;
            let (response, bytes, has_error) = read_once(&topics, by_id, read_committed, max_bytes);
            memory.resize(bytes.saturating_mul(2));
            let stopping = *shutdown.borrow();
            if bytes >= min_bytes || has_error || stopping || tokio::time::Instant::now() >= deadline {
                return (response, Some(memory));
            }
            tokio::select! {
                changed = arrivals.changed() => if changed.is_err() { return (response, Some(memory)) },
                _ = tokio::time::sleep_until(deadline) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}

fn read_once(topics: &[WantedTopic], by_id: bool, read_committed: bool, max_bytes: usize) -> (FetchResponse, usize, bool) {
    let mut total = 0usize;
    let mut has_error = false;
    let mut responses = Vec::with_capacity(topics.len());
    for wanted in topics {
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for p in &wanted.partitions {
            let mut data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                .with_records(Some(Bytes::new()))
                .with_aborted_transactions(None);
            let Some(partition) = wanted.topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                has_error = true;
                partitions.push(data.with_error_code(if wanted.topic.is_some() {
                    code(ResponseError::UnknownTopicOrPartition)
                } else {
                    wanted.unknown_error
                }));
                continue;
            };
            // semel's only leader epoch is 0.
            if p.current_leader_epoch > 0 {
                has_error = true;
                partitions.push(data.with_error_code(code(ResponseError::UnknownLeaderEpoch)));
                continue;
            }
            let high_watermark = partition.high_watermark();
            let log_start = partition.log_start_offset();
            data = data
                .with_high_watermark(high_watermark)
                .with_last_stable_offset(partition.last_stable_offset())
                .with_log_start_offset(log_start);
            let budget = (p.partition_max_bytes.max(0) as usize).min(max_bytes.saturating_sub(total));
            let min_one_batch = total == 0;
            if budget == 0 && !min_one_batch {
                partitions.push(data.with_error_code(NONE).with_aborted_transactions(read_committed.then(Vec::new)));
                continue;
            }
            let read = partition.read(p.fetch_offset, budget, min_one_batch, read_committed).map(|(outcome, aborted)| {
                // Only read_committed answers carry the aborted list (franz-go#758).
                let list = read_committed.then(|| {
                    aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default().with_producer_id(ProducerId(a.producer_id)).with_first_offset(a.first_offset)
                        })
                        .collect()
                });
                (outcome, list)
            });
            let (read, aborted) = match read {
                Ok((outcome, aborted)) => (Ok(outcome), aborted),
                Err(e) => (Err(e), None),
            };
            data = data.with_aborted_transactions(aborted);
            match read {
                Ok(ReadOutcome::Data(slice)) => match slice.read() {
                    Ok(bytes) => {
                        total += bytes.len();
                        partitions.push(data.with_error_code(NONE).with_records(Some(Bytes::from(bytes))));
                    }
                    Err(e) => {
                        partition.health().fail("read", &e);
                        has_error = true;
                        partitions.push(data.with_error_code(code(ResponseError::KafkaStorageError)));
                    }
                },
                Ok(ReadOutcome::Empty) => partitions.push(data.with_error_code(NONE)),
                Ok(ReadOutcome::OutOfRange) => {
                    has_error = true;
                    partitions.push(data.with_error_code(code(ResponseError::OffsetOutOfRange)));
                }
                Err(e) => {
                    tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "fetch read failed");
                    has_error = true;
                    partitions.push(data.with_error_code(code(ResponseError::KafkaStorageError)));
                }
            }
        }
        let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
        topic = if by_id { topic.with_topic_id(wanted.id) } else { topic.with_topic(wanted.name.clone()) };
        responses.push(topic);
    }
    (FetchResponse::default().with_error_code(NONE).with_session_id(0).with_responses(responses), total, has_error)
}
