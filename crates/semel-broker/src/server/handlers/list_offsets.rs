//! ListOffsets (2) and OffsetForLeaderEpoch (23).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
use kafka_protocol::messages::offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{code, NONE};
use crate::server::dispatch::{RequestContext, Response};
use crate::storage::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;

fn lookup(partition: &Partition, timestamp: i64, read_committed: bool) -> Result<(i64, i64), i16> {
    let high_watermark = partition.high_watermark();
    let storage_error = |e: std::io::Error| {
        tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "ListOffsets read failed");
        code(ResponseError::KafkaStorageError)
    };
    match timestamp {
        // read_committed consumers start from the last stable offset.
        LATEST if read_committed => Ok((-1, partition.last_stable_offset())),
        LATEST => Ok((-1, high_watermark)),
        EARLIEST => Ok((-1, partition.log_start_offset())),
        MAX_TIMESTAMP => {
            let found = partition.lock_log().offset_of_max_timestamp().map_err(storage_error)?;
            Ok(match found {
                Some((offset, ts)) if offset < high_watermark => (ts, offset),
                _ => (-1, -1),
            })
        }
        t if t >= 0 => {
            let found = partition.lock_log().offset_for_timestamp(t).map_err(storage_error)?;
            Ok(match found {
                Some((offset, ts)) if offset < high_watermark => (ts, offset),
                _ => (-1, -1),
            })
        }
        _ => Err(code(ResponseError::InvalidRequest)),
    }
}

pub(crate) async fn handle(ctx: &RequestContext, request: ListOffsetsRequest) -> Response<ListOffsetsResponse> {
    let state = &ctx.state;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.metadata.topic(&t.name.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition_index)) else {
                        return base.with_error_code(code(ResponseError::UnknownTopicOrPartition));
                    };
                    if p.current_leader_epoch > 0 {
                        return base.with_error_code(code(ResponseError::UnknownLeaderEpoch));
                    }
                    if p.timestamp == MAX_TIMESTAMP && ctx.version < 7 {
                        return base.with_error_code(code(ResponseError::UnsupportedVersion));
                    }
                    match lookup(partition, p.timestamp, request.isolation_level == 1) {
                        Ok((timestamp, offset)) => {
                            // The leader epoch field exists from v4 on.
                            let epoch = if ctx.version >= 4 { 0 } else { -1 };
                            base.with_error_code(NONE).with_timestamp(timestamp).with_offset(offset).with_leader_epoch(epoch)
                        }
                        Err(error) => base.with_error_code(error),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name).with_partitions(partitions)
        })
        .collect();
    Response::Now(ListOffsetsResponse::default().with_topics(topics))
}

pub(crate) async fn offset_for_leader_epoch(
    ctx: &RequestContext,
    request: OffsetForLeaderEpochRequest,
) -> Response<OffsetForLeaderEpochResponse> {
    let state = &ctx.state;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.metadata.topic(&t.topic.0);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let base = EpochEndOffset::default().with_partition(p.partition).with_leader_epoch(-1).with_end_offset(-1);
                    let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                        return base.with_error_code(code(ResponseError::UnknownTopicOrPartition));
                    };
                    if p.current_leader_epoch > 0 {
                        return base.with_error_code(code(ResponseError::UnknownLeaderEpoch));
                    }
                    // One leader epoch (0) covers the whole log: its end is the log end offset.
                    // A later or unknown epoch gets the undefined answer, as Kafka's
                    // LeaderEpochFileCache gives.
                    if p.leader_epoch == 0 {
                        base.with_error_code(NONE).with_leader_epoch(0).with_end_offset(partition.log_end_offset())
                    } else {
                        base.with_error_code(NONE)
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic).with_partitions(partitions)
        })
        .collect();
    Response::Now(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
