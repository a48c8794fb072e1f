//! The API versions semel implements. ApiVersions advertises exactly this table and dispatch
//! refuses anything outside it, so the two cannot disagree.

use kafka_protocol::messages::ApiKey;

/// One API and the inclusive version range semel implements.
#[derive(Debug, Clone, Copy)]
pub struct Supported {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

const fn api(key: ApiKey, min: i16, max: i16) -> Supported {
    Supported { key, min, max }
}

/// Produce is listed from version 0 although versions 0-2 are refused: released librdkafka
/// stops compressing unless the minimum is 0 (KAFKA-18659; Kafka 4 does the same). Produce
/// stops at 11: version 12 is for transaction version 2 (KIP-890 part 2) and 13 for topic ids.
pub const PRODUCE_MIN_DECODABLE: i16 = 3;

pub static SUPPORTED: &[Supported] = &[
    api(ApiKey::Produce, 0, 11),
    api(ApiKey::Fetch, 4, 16),
    api(ApiKey::ListOffsets, 1, 7),
    api(ApiKey::Metadata, 0, 12),
    api(ApiKey::ApiVersions, 0, 4),
    api(ApiKey::CreateTopics, 2, 7),
    api(ApiKey::DeleteTopics, 1, 6),
    api(ApiKey::DeleteRecords, 0, 2),
    api(ApiKey::OffsetForLeaderEpoch, 2, 4),
    api(ApiKey::DescribeConfigs, 1, 4),
    api(ApiKey::AlterConfigs, 0, 2),
    api(ApiKey::CreatePartitions, 0, 3),
    api(ApiKey::IncrementalAlterConfigs, 0, 1),
    api(ApiKey::DescribeCluster, 0, 1),
    // v6 adds share groups (KIP-932), which semel does not have.
    api(ApiKey::FindCoordinator, 0, 5),
    // v5 belongs to transaction version 2 (KIP-890 part 2).
    api(ApiKey::InitProducerId, 0, 4),
    // The classic group protocol. KIP-848 (ConsumerGroupHeartbeat) is not advertised.
    api(ApiKey::JoinGroup, 0, 9),
    api(ApiKey::SyncGroup, 0, 5),
    api(ApiKey::Heartbeat, 0, 4),
    api(ApiKey::LeaveGroup, 0, 5),
    // OffsetCommit v10 and OffsetFetch v10 name topics by id.
    api(ApiKey::OffsetCommit, 2, 9),
    api(ApiKey::OffsetFetch, 1, 9),
    api(ApiKey::DescribeGroups, 0, 5),
    api(ApiKey::ListGroups, 0, 5),
    api(ApiKey::DeleteGroups, 0, 2),
    api(ApiKey::OffsetDelete, 0, 0),
    // Transactions. v4+ of AddPartitionsToTxn (batched, verify-only), EndTxn v4-5,
    // TxnOffsetCommit v4-5 and AddOffsetsToTxn v4 belong to KIP-890 and are not advertised.
    api(ApiKey::AddPartitionsToTxn, 0, 3),
    api(ApiKey::AddOffsetsToTxn, 0, 3),
    api(ApiKey::EndTxn, 0, 3),
    api(ApiKey::TxnOffsetCommit, 0, 3),
    // Operating transactions (KIP-664). ListTransactions v2 adds an id pattern.
    api(ApiKey::DescribeProducers, 0, 0),
    api(ApiKey::DescribeTransactions, 0, 0),
    api(ApiKey::ListTransactions, 0, 1),
    api(ApiKey::WriteTxnMarkers, 1, 1),
];

/// The supported range of an API, if semel implements it.
pub fn supported(key: ApiKey) -> Option<Supported> {
    SUPPORTED.iter().copied().find(|s| s.key == key)
}

/// Dispatch's steps before a handler (header and version, then shape check and decode),
/// re-exported for [`crate::fuzzing`]: `dispatch` is private to `server`, and this is its public
/// module.
#[doc(hidden)]
pub(crate) use super::dispatch::{decode_body, read_header};
