//! An internal, private log of key/value records (Kafka's `__consumer_offsets` design): the
//! coordinator appends records, waits until they are durable, and replays them all at start-up
//! through the same function that applies live writes.
//!
//! Records are ordinary Kafka record batches (magic v2, uncompressed) stored through the same
//! storage code as topics, in `<data_dir>/internal/<name>-0`, but the log is not a topic: clients
//! cannot produce to it. Keys and values are JSON documents defined by the coordinator; a
//! record without a value is a tombstone.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use crate::storage::io::LogDirHealth;
use crate::storage::log::{Log, LogSettings, ReadOutcome};
use crate::storage::partition::{AppendError, AppendSettings, FlushPolicy, Partition};

/// One key/value record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyValue {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// An internal log. Thread-safe (through its partition).
#[derive(Debug)]
pub(crate) struct InternalLog {
    partition: Arc<Partition>,
    settings: AppendSettings,
}

const SETTINGS: AppendSettings = AppendSettings {
    log: LogSettings {
        segment_bytes: 100 * 1024 * 1024,
        segment_ms: i64::MAX,
        retention_ms: -1,
        retention_bytes: -1,
        index_interval_bytes: 4096,
    },
    max_message_bytes: 64 * 1024 * 1024,
    log_append_time: false,
};

impl InternalLog {
    /// Opens the log and returns it with every record in it, oldest first.
    pub(crate) fn open(data_dir: &Path, name: &str, health: Arc<LogDirHealth>) -> std::io::Result<(Self, Vec<KeyValue>)> {
        // Kept apart from topic folders (`<topic>-<partition>`), so no topic can clash with it.
        let dir = data_dir.join("internal").join(format!("{name}-0"));
        // The recovery point is not tracked for internal logs: every segment is checked.
        let (log, report) = Log::open(&dir, 0, 0, &SETTINGS.log)?;
        for (segment, tail) in &report.truncated {
            tracing::warn!(log = name, segment, reason = %tail.reason, "recovery truncated the internal log");
        }
        let data_arrived = Arc::new(tokio::sync::watch::channel(0u64).0);
        let partition = Arc::new(Partition::new(name.to_string(), 0, log, health, FlushPolicy { interval_messages: 1 }, data_arrived));
        let this = Self { partition, settings: SETTINGS };
        let records = this.read_all()?;
        Ok((this, records))
    }

    fn read_all(&self) -> std::io::Result<Vec<KeyValue>> {
        let mut records = Vec::new();
        let mut offset = self.partition.log_start_offset();
        let end = self.partition.log_end_offset();
        while offset < end {
            let slice = match self.partition.lock_log().read(offset, 16 * 1024 * 1024, end, true)? {
                ReadOutcome::Data(slice) => slice,
                ReadOutcome::Empty | ReadOutcome::OutOfRange => break,
            };
            let mut bytes = Bytes::from(slice.read()?);
            let sets = RecordBatchDecoder::decode_all(&mut bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{e:#}")))?;
            let before = offset;
            for set in sets {
                for record in set.records {
                    offset = offset.max(record.offset + 1);
                    if let Some(key) = record.key {
                        records.push(KeyValue { key: key.to_vec(), value: record.value.map(|v| v.to_vec()) });
                    }
                }
            }
            if offset == before {
                break;
            }
        }
        Ok(records)
    }

    /// Appends records as one batch; returns the offset to wait for with [`Self::flush_to`].
    pub(crate) fn append(&self, records: &[KeyValue]) -> Result<i64, AppendError> {
        let now = crate::now_ms();
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, kv)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp: now,
                key: Some(Bytes::from(kv.key.clone())),
                value: kv.value.clone().map(Bytes::from),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
            .map_err(|e| AppendError::Batch(crate::storage::batch::BatchError::Invalid(format!("{e:#}"))))?;
        let info = self.partition.append(&buf, &self.settings, now, false)?;
        Ok(info.next_offset)
    }

    /// Waits until everything below `end` is durable.
    pub(crate) async fn flush_to(&self, end: i64) -> Result<(), AppendError> {
        self.partition.flush_to(end).await
    }

    /// Flushes and writes indexes and producer snapshots (clean shutdown).
    pub(crate) async fn close(&self) {
        let _ = self.partition.flush_all().await;
        let mut log = self.partition.lock_log();
        let _ = log.persist_indexes();
    }
}
