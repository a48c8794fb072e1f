//! One module per group of APIs. Handlers turn typed errors into Kafka error codes here, at
//! the protocol edge, and nowhere else.

pub(crate) mod api_versions;
pub(crate) mod configs;
pub(crate) mod coordinator;
pub(crate) mod fetch;
pub(crate) mod groups;
pub(crate) mod init_producer_id;
pub(crate) mod list_offsets;
pub(crate) mod metadata;
pub(crate) mod produce;
pub(crate) mod topics;
pub(crate) mod txn;
pub(crate) mod txn_admin;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use crate::metadata::MetadataError;
use crate::producer_state::ProducerStateError;
use crate::storage::batch::BatchError;
use crate::storage::AppendError;

pub(crate) fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

pub(crate) fn topic_name(s: &str) -> TopicName {
    TopicName(text(s))
}

pub(crate) const NONE: i16 = 0;

pub(crate) fn code(error: ResponseError) -> i16 {
    error.code()
}

/// The Kafka error code of a metadata error.
pub(crate) fn metadata_error_code(error: &MetadataError) -> i16 {
    code(match error {
        MetadataError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        MetadataError::UnknownTopic(_) => ResponseError::UnknownTopicOrPartition,
        MetadataError::InvalidTopicName(_) => ResponseError::InvalidTopicException,
        MetadataError::InternalTopic(_) => ResponseError::InvalidRequest,
        MetadataError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        MetadataError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        MetadataError::InvalidConfig(_) => ResponseError::InvalidConfig,
        MetadataError::TooManyTopics => ResponseError::PolicyViolation,
        MetadataError::Io(_) | MetadataError::Corrupt(_) => ResponseError::KafkaStorageError,
    })
}

/// The Kafka error code of an append error.
pub(crate) fn append_error_code(error: &AppendError) -> i16 {
    code(match error {
        AppendError::Batch(BatchError::UnsupportedMagic(_)) => ResponseError::UnsupportedForMessageFormat,
        AppendError::Batch(BatchError::MissingKey { .. } | BatchError::InvalidRecord(_)) => ResponseError::InvalidRecord,
        AppendError::Batch(_) => ResponseError::CorruptMessage,
        AppendError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        AppendError::Offline | AppendError::Io(_) => ResponseError::KafkaStorageError,
        AppendError::ProducerState(ProducerStateError::InvalidProducerEpoch { .. }) => ResponseError::InvalidProducerEpoch,
        AppendError::ProducerState(ProducerStateError::OutOfOrderSequence { .. }) => ResponseError::OutOfOrderSequenceNumber,
        AppendError::NotInTransaction | AppendError::ProducerState(ProducerStateError::InvalidTxnState { .. }) => {
            ResponseError::InvalidTxnState
        }
    })
}
