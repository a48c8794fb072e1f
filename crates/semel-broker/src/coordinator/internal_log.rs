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

use crate::storage::batch::Marker;
use crate::storage::io::LogDirHealth;
use crate::storage::log::{Log, LogSettings, ReadOutcome};
use crate::storage::partition::{AppendError, AppendSettings, FlushPolicy, Partition};

/// One key/value record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyValue {
    pub(crate) key: Vec<u8>,
    pub(crate) value: Option<Vec<u8>>,
}

/// What the log holds: coordinator records, and transaction markers (control batches in
/// Kafka's format, written when a transaction's outcome reaches the group offsets log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LogEntry {
    Record(KeyValue),
    /// A record of a transaction (a transactional batch of `producer_id`), which counts once
    /// the producer's COMMIT marker follows.
    TxnRecord {
        producer_id: i64,
        record: KeyValue,
    },
    Marker {
        producer_id: i64,
        commit: bool,
    },
}

/// An internal log. Thread-safe (through its partition).
#[derive(Debug)]
pub(crate) struct InternalLog {
    partition: Arc<Partition>,
    settings: AppendSettings,
}

/// Settings of internal logs: compacted with the topic defaults of `delete.retention.ms`
/// and `min.cleanable.dirty.ratio`, never deleted by retention. `segment_bytes` is replaced by
/// the coordinator's setting.
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
    compaction: Some(crate::storage::cleaner::CompactSettings {
        delete_retention_ms: 86_400_000,
        min_cleanable_dirty_ratio: 0.5,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
    }),
};

impl InternalLog {
    /// Opens the log and returns it with every record in it, oldest first.
    pub(crate) fn open(
        data_dir: &Path,
        name: &str,
        health: Arc<LogDirHealth>,
        segment_bytes: u64,
    ) -> std::io::Result<(Self, Vec<LogEntry>)> {
        let mut settings = SETTINGS;
        settings.log.segment_bytes = segment_bytes;
        // Kept apart from topic folders (`<topic>-<partition>`), so no topic can clash with it.
        let dir = data_dir.join("internal").join(format!("{name}-0"));
        // The recovery point is not tracked for internal logs: every segment is checked.
        let (log, report) = Log::open(&dir, 0, 0, &settings.log)?;
        for (segment, tail) in &report.truncated {
            tracing::warn!(log = name, segment, reason = %tail.reason, "recovery truncated the internal log");
        }
        let data_arrived = Arc::new(tokio::sync::watch::channel(0u64).0);
        let partition = Arc::new(Partition::new(name.to_string(), 0, log, health, FlushPolicy { interval_messages: 1 }, data_arrived));
        let this = Self { partition, settings };
        let records = this.read_all()?;
        Ok((this, records))
    }

    fn read_all(&self) -> std::io::Result<Vec<LogEntry>> {
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
                    if record.control {
                        // Control record key: int16 version, int16 type (0 abort, 1 commit).
                        let commit = record.key.as_deref().is_some_and(|k| k.len() >= 4 && k[3] == 1);
                        records.push(LogEntry::Marker { producer_id: record.producer_id, commit });
                    } else if let Some(key) = record.key {
                        let kv = KeyValue { key: key.to_vec(), value: record.value.map(|v| v.to_vec()) };
                        records.push(if record.transactional {
                            LogEntry::TxnRecord { producer_id: record.producer_id, record: kv }
                        } else {
                            LogEntry::Record(kv)
                        });
                    }
                }
            }
            if offset == before {
                break;
            }
        }
        Ok(records)
    }

    /// The log's partition and settings, for the cleaner.
    pub(crate) fn partition(&self) -> (&Arc<Partition>, &AppendSettings) {
        (&self.partition, &self.settings)
    }

    /// Appends records as one batch; returns the offset to wait for with [`Self::flush_to`].
    pub(crate) fn append(&self, records: &[KeyValue]) -> Result<i64, AppendError> {
        let now = crate::now_ms();
        let batch = Self::encode(records, None, now)?;
        let info = self.partition.append(&batch, &self.settings, now, false)?;
        Ok(info.next_offset)
    }

    /// Appends records as one transactional batch of the producer (a transaction's offsets in
    /// the offsets log, as Kafka writes them): they count once the producer's COMMIT marker
    /// follows, and the cleaner drops them if an ABORT does. Returns the offset to wait for.
    pub(crate) fn append_transactional(&self, records: &[KeyValue], producer_id: i64, producer_epoch: i16) -> Result<i64, AppendError> {
        let now = crate::now_ms();
        let batch = Self::encode(records, Some((producer_id, producer_epoch)), now)?;
        let info = self.partition.append_as_coordinator(&batch, &self.settings, now)?;
        Ok(info.next_offset)
    }

    fn encode(records: &[KeyValue], producer: Option<(i64, i16)>, now: i64) -> Result<BytesMut, AppendError> {
        let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
        let records: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, kv)| Record {
                transactional: producer.is_some(),
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                // Coordinator writes carry no sequence (Kafka's NO_SEQUENCE).
                sequence: -1,
                timestamp: now,
                key: Some(Bytes::from(kv.key.clone())),
                value: kv.value.clone().map(Bytes::from),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
            .map_err(|e| AppendError::Batch(crate::storage::batch::BatchError::Invalid(format!("{e:#}"))))?;
        Ok(buf)
    }

    /// Appends a COMMIT or ABORT control batch for `producer_id`, byte for byte as Kafka writes
    /// it to `__consumer_offsets`; returns the offset to wait for.
    pub(crate) fn append_marker(&self, producer_id: i64, producer_epoch: i16, commit: bool) -> Result<i64, AppendError> {
        self.partition.write_marker(producer_id, producer_epoch, Marker { commit, coordinator_epoch: 0 }, &self.settings)
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
