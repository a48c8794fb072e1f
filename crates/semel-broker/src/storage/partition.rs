//! A partition replica on this broker: its log plus durability (group commit) and the high
//! watermark that readers see.
//!
//! Durability: with the default `flush_interval_messages = 1` the high watermark is the flushed
//! offset. A produce with acks=-1 is answered once an fsync covers its batches; every waiter
//! queued while one fsync runs is covered by the next single fsync (group commit). Consumers
//! never see data that a crash could take back. Partitions flush independently.

use std::io;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::batch::{self, BatchError, BatchHeader, Marker};
use super::io::LogDirHealth;
use super::log::{Log, LogSettings, ReadOutcome};
use crate::producer_state::{AbortedTxn, Prepared, ProducerStateError};

/// Why an append failed. Mapped to Kafka error codes at the protocol edge.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("record batch of {size} bytes exceeds max.message.bytes {max}")]
    MessageTooLarge { size: usize, max: usize },
    #[error("the log directory is offline after an I/O error")]
    Offline,
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    ProducerState(#[from] ProducerStateError),
    #[error("transactional batch for a partition that is not part of an ongoing transaction")]
    NotInTransaction,
}

/// What a successful append assigned (or, for a duplicate, what the original append did).
#[derive(Debug, Clone, Copy)]
pub struct AppendInfo {
    /// True when the batch was a retry of one already in the log: nothing was appended.
    pub duplicate: bool,
    pub base_offset: i64,
    /// Offset after the last appended record.
    pub next_offset: i64,
    /// The append time stamped on the batches, or -1 for CreateTime topics.
    pub log_append_time_ms: i64,
}

/// Per-append settings taken from the topic's configs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendSettings {
    pub(crate) log: LogSettings,
    pub(crate) max_message_bytes: usize,
    pub(crate) log_append_time: bool,
    /// Set when the topic's `cleanup.policy` includes `compact`: the cleaner's settings, and
    /// every record must have a key.
    pub(crate) compaction: Option<super::cleaner::CompactSettings>,
}

/// The batches of one produce request that passed every check that needs no partition
/// state: framing, CRC, size, the records inside (decompressed for it, to at most
/// `max_decompressed` bytes), no control batches.
#[derive(Debug)]
pub(crate) struct CheckedBatches {
    /// A copy of the batches, made once they passed, for the append to stamp offsets into.
    records: Vec<u8>,
    /// Each batch's header and its position in `records`.
    headers: Vec<(BatchHeader, usize)>,
}

impl CheckedBatches {
    pub(crate) fn check(records: &[u8], settings: &AppendSettings, max_decompressed: usize) -> Result<Self, AppendError> {
        let slices = batch::split_batches(records)?;
        if slices.is_empty() {
            return Err(BatchError::Invalid("produce request without record batches".into()).into());
        }
        let mut headers = Vec::with_capacity(slices.len());
        let mut at = 0usize;
        for slice in &slices {
            if slice.len() > settings.max_message_bytes {
                return Err(AppendError::MessageTooLarge { size: slice.len(), max: settings.max_message_bytes });
            }
            let header = batch::check_framing_and_crc(slice)?;
            batch::validate_records(slice, &header, settings.compaction.is_some() && !header.is_control(), max_decompressed)?;
            if header.is_control() {
                return Err(BatchError::Invalid("clients cannot produce control batches".into()).into());
            }
            headers.push((header, at));
            at += slice.len();
        }
        Ok(Self { records: records.to_vec(), headers })
    }

    /// Whether any batch of `records` is compressed (checking it means decompressing).
    pub(crate) fn any_compressed(records: &[u8]) -> bool {
        batch::split_batches(records)
            .is_ok_and(|slices| slices.iter().any(|s| BatchHeader::parse(s).is_ok_and(|h| h.compression_codec() != 0)))
    }
}

/// How appends become durable, from the broker config.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlushPolicy {
    /// 1: every acknowledged write is fsynced first. N > 1: fsync after N messages (or by the
    /// periodic flusher), and the high watermark follows the log end offset.
    pub(crate) interval_messages: u64,
}

/// A partition. Thread-safe: the log sits behind a std mutex held only for in-memory work and
/// positional writes (never across an await or an fsync); fsyncs are serialised by an async
/// mutex so that one runs at a time per partition and covers every write before it.
#[derive(Debug)]
pub struct Partition {
    pub(crate) topic: String,
    pub(crate) index: i32,
    log: Mutex<Log>,
    /// Offsets below this are visible to consumers.
    high_watermark: AtomicI64,
    /// Offsets below this are on disk.
    flushed_offset: AtomicI64,
    unflushed_messages: AtomicU64,
    flush_lock: tokio::sync::Mutex<()>,
    health: Arc<LogDirHealth>,
    policy: FlushPolicy,
    /// Bumped whenever the high watermark moves, to wake long-polling fetches.
    data_arrived: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Partition {
    pub(crate) fn new(
        topic: String,
        index: i32,
        log: Log,
        health: Arc<LogDirHealth>,
        policy: FlushPolicy,
        data_arrived: Arc<tokio::sync::watch::Sender<u64>>,
    ) -> Self {
        let end = log.log_end_offset();
        Self {
            topic,
            index,
            log: Mutex::new(log),
            // Everything recovered from disk was checked and is treated as durable.
            high_watermark: AtomicI64::new(end),
            flushed_offset: AtomicI64::new(end),
            unflushed_messages: AtomicU64::new(0),
            flush_lock: tokio::sync::Mutex::new(()),
            health,
            policy,
            data_arrived,
        }
    }

    pub(crate) fn lock_log(&self) -> MutexGuard<'_, Log> {
        // A panic while holding the lock is a bug; the log's state is still consistent
        // because every mutation is completed before the lock is released.
        self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.lock_log().log_start_offset
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock_log().log_end_offset()
    }

    fn is_durable_mode(&self) -> bool {
        self.policy.interval_messages <= 1
    }

    fn advance_high_watermark(&self, offset: i64) {
        if self.high_watermark.fetch_max(offset, Ordering::AcqRel) < offset {
            self.data_arrived.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    /// Validates and appends the batches of one produce request. Validation happens before
    /// anything is written, so a refused request leaves the log untouched.
    /// `txn_verified`: the transaction coordinator confirmed that the batches' producer has
    /// this partition in its ongoing transaction (KIP-890 part 1); transactional batches are
    /// refused without it.
    pub(crate) fn append(
        &self,
        records: &[u8],
        settings: &AppendSettings,
        now_ms: i64,
        txn_verified: bool,
    ) -> Result<AppendInfo, AppendError> {
        let checked = CheckedBatches::check(records, settings, super::decompress::MAX_DECOMPRESSED_BYTES)?;
        self.append_from(checked, settings, now_ms, txn_verified, true)
    }

    /// [`Self::append`] of batches checked beforehand (produce checks compressed batches off
    /// the async workers).
    pub(crate) fn append_checked(
        &self,
        checked: CheckedBatches,
        settings: &AppendSettings,
        now_ms: i64,
        txn_verified: bool,
    ) -> Result<AppendInfo, AppendError> {
        self.append_from(checked, settings, now_ms, txn_verified, true)
    }

    /// Appends batches a coordinator wrote to its own internal log (Kafka's
    /// `AppendOrigin.COORDINATOR`): transactional batches are accepted and producer sequences
    /// are not checked, but the batches still open the producer's transaction here.
    pub(crate) fn append_as_coordinator(&self, records: &[u8], settings: &AppendSettings, now_ms: i64) -> Result<AppendInfo, AppendError> {
        let checked = CheckedBatches::check(records, settings, super::decompress::MAX_DECOMPRESSED_BYTES)?;
        self.append_from(checked, settings, now_ms, true, false)
    }

    fn append_from(
        &self,
        checked: CheckedBatches,
        settings: &AppendSettings,
        now_ms: i64,
        txn_verified: bool,
        check_producer_state: bool,
    ) -> Result<AppendInfo, AppendError> {
        if self.health.is_offline() {
            return Err(AppendError::Offline);
        }
        let CheckedBatches { records: mut bytes, mut headers } = checked;
        if !txn_verified && headers.iter().any(|(h, _)| h.is_transactional()) {
            return Err(AppendError::NotInTransaction);
        }
        let message_count: u64 = headers.iter().map(|(h, _)| h.records_count as u64).sum();

        let mut log = self.lock_log();
        if self.health.is_offline() {
            return Err(AppendError::Offline);
        }
        // Validate against producer state, then append, then record (ProducerAppendInfo).
        let parsed: Vec<BatchHeader> = headers.iter().map(|(h, _)| *h).collect();
        let prepared = if check_producer_state { log.producers.prepare(&parsed)? } else { Prepared::Append };
        if let Prepared::Duplicate(original) = prepared {
            return Ok(AppendInfo {
                duplicate: true,
                base_offset: original.first_offset,
                next_offset: original.last_offset + 1,
                log_append_time_ms: if settings.log_append_time { original.timestamp } else { -1 },
            });
        }
        let base_offset = log.log_end_offset();
        let mut next = base_offset;
        for (header, at) in &mut headers {
            let slice = &mut bytes[*at..*at + header.total_size()];
            batch::assign_offset(slice, next, 0);
            if settings.log_append_time {
                batch::set_log_append_time(slice, now_ms);
            }
            *header = BatchHeader::parse(slice)?;
            next = header.next_offset();
        }
        if let Err(error) = log.append(&bytes, &headers, now_ms, &settings.log) {
            self.fail_unless_out_of_fds("append", &error);
            return Err(AppendError::Io(error));
        }
        for (header, _) in &headers {
            log.producers.apply(header);
        }
        drop(log);

        if !self.is_durable_mode() {
            self.advance_high_watermark(next);
        }
        self.unflushed_messages.fetch_add(message_count, Ordering::AcqRel);
        Ok(AppendInfo {
            duplicate: false,
            base_offset,
            next_offset: next,
            log_append_time_ms: if settings.log_append_time { now_ms } else { -1 },
        })
    }

    /// Whether an append of `info` should wait for an fsync before it is acknowledged with
    /// acks=-1, or at least trigger one.
    pub(crate) fn needs_flush_after_append(&self) -> bool {
        self.is_durable_mode() || self.unflushed_messages.load(Ordering::Acquire) >= self.policy.interval_messages
    }

    /// Makes every offset below `end` durable, sharing fsyncs between concurrent callers.
    pub(crate) async fn flush_to(&self, end: i64) -> Result<(), AppendError> {
        loop {
            if self.flushed_offset.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            let _turn = self.flush_lock.lock().await;
            if self.flushed_offset.load(Ordering::Acquire) >= end {
                return Ok(());
            }
            self.flush_now().await?;
        }
    }

    /// One fsync of the active segment (a roll has already synced the sealed ones), covering
    /// everything written before it started. Caller holds `flush_lock`, or accepts overlap.
    async fn flush_now(&self) -> Result<(), AppendError> {
        if self.health.is_offline() {
            return Err(AppendError::Offline);
        }
        let (file, end) = {
            let log = self.lock_log();
            (log.active_file(), log.log_end_offset())
        };
        let file = file.inspect_err(|error| self.health.fail("fsync", error))?;
        self.unflushed_messages.store(0, Ordering::Release);
        let result = tokio::task::spawn_blocking(move || file.sync_data()).await.map_err(io::Error::other).and_then(|r| r);
        if let Err(error) = result {
            self.health.fail("fsync", &error);
            return Err(AppendError::Io(error));
        }
        self.flushed_offset.fetch_max(end, Ordering::AcqRel);
        if self.is_durable_mode() {
            self.advance_high_watermark(end);
        }
        Ok(())
    }

    /// Flushes whatever is unflushed (periodic flusher, shutdown).
    pub(crate) async fn flush_all(&self) -> Result<(), AppendError> {
        let end = self.log_end_offset();
        self.flush_to(end).await
    }

    /// Reads for a fetch: below the high watermark, or for read_committed below the last
    /// stable offset, with the aborted transactions overlapping what may be returned.
    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
        read_committed: bool,
    ) -> io::Result<(ReadOutcome, Vec<AbortedTxn>)> {
        let high_watermark = self.high_watermark();
        let log = self.lock_log();
        if !read_committed {
            return Ok((log.read(offset, max_bytes, high_watermark, min_one_batch)?, Vec::new()));
        }
        let upper = log.producers.first_unstable_offset().map_or(high_watermark, |first| first.min(high_watermark));
        let outcome = log.read(offset, max_bytes, upper, min_one_batch)?;
        let aborted = log.producers.aborted_overlapping(offset, upper);
        Ok((outcome, aborted))
    }

    /// The last stable offset: below it every transaction is decided (and on disk).
    pub fn last_stable_offset(&self) -> i64 {
        let high_watermark = self.high_watermark();
        self.lock_log().producers.first_unstable_offset().map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Active producers of the partition (DescribeProducers): id, epoch, last sequence, last
    /// timestamp, coordinator epoch, start offset of the open transaction (-1: none).
    pub fn describe_producers(&self) -> Vec<(i64, i16, i32, i64, i32, i64)> {
        let log = self.lock_log();
        let mut producers: Vec<_> = log
            .producers
            .iter()
            .map(|(id, e)| {
                (
                    *id,
                    e.epoch,
                    e.batches.back().map_or(-1, |b| b.last_seq),
                    e.last_timestamp,
                    e.coordinator_epoch,
                    e.txn_first_offset.unwrap_or(-1),
                )
            })
            .collect();
        producers.sort_unstable();
        producers
    }

    /// Checks a marker from outside the coordinator (WriteTxnMarkers, as `kafka-transactions
    /// abort` sends it) against producer state, as Kafka's `appendEndTxnMarker` does.
    pub(crate) fn check_external_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ExternalMarkerError> {
        let log = self.lock_log();
        match log.producers.get(producer_id) {
            Some(e) if producer_epoch < e.epoch => Err(ExternalMarkerError::InvalidProducerEpoch),
            Some(e) if coordinator_epoch < e.coordinator_epoch => Err(ExternalMarkerError::CoordinatorFenced),
            _ => Ok(()),
        }
    }

    /// Appends a COMMIT or ABORT marker for `producer_id` and ends its transaction here.
    /// Returns the offset after the marker, to make durable before the transaction completes.
    pub(crate) fn write_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        marker: Marker,
        settings: &AppendSettings,
    ) -> Result<i64, AppendError> {
        if self.health.is_offline() {
            return Err(AppendError::Offline);
        }
        let now = crate::now_ms();
        let mut bytes = batch::encode_marker(producer_id, producer_epoch, marker, now);
        let mut log = self.lock_log();
        let offset = log.log_end_offset();
        batch::assign_offset(&mut bytes, offset, 0);
        let header = BatchHeader::parse(&bytes)?;
        if let Err(error) = log.append(&bytes, &[(header, 0)], now, &settings.log) {
            self.fail_unless_out_of_fds("append marker", &error);
            return Err(AppendError::Io(error));
        }
        log.producers.apply_marker(producer_id, producer_epoch, marker.coordinator_epoch, marker.commit, offset, now);
        drop(log);
        if !self.is_durable_mode() {
            self.advance_high_watermark(offset + 1);
        }
        Ok(offset + 1)
    }

    /// Moves the log start offset (DeleteRecords). `offset` -1 means the high watermark.
    pub(crate) fn delete_records(&self, offset: i64) -> Result<i64, DeleteRecordsError> {
        let high_watermark = self.high_watermark();
        let target = if offset == -1 { high_watermark } else { offset };
        if target < 0 || target > high_watermark {
            return Err(DeleteRecordsError::OffsetOutOfRange);
        }
        let mut log = self.lock_log();
        log.advance_log_start(target).map_err(|e| {
            self.health.fail("delete segments", &e);
            DeleteRecordsError::Io(e)
        })?;
        Ok(log.log_start_offset)
    }

    /// Applies retention; returns the number of segments deleted.
    pub(crate) fn apply_retention(&self, now_ms: i64, settings: &LogSettings) -> io::Result<usize> {
        self.lock_log().apply_retention(now_ms, settings)
    }

    /// Forgets producers idle for longer than `expiration_ms`.
    pub(crate) fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.lock_log().producers.expire(now_ms, expiration_ms)
    }

    /// Takes the log directory offline after a failed append, unless the append failed for
    /// want of a file descriptor: only a segment roll opens files, before any byte of the append
    /// is written, and a failed roll leaves the log as it was (`Log::roll`), so the produce gets
    /// a retriable KAFKA_STORAGE_ERROR and the partition stays online. A failed write or fsync
    /// is a storage failure.
    fn fail_unless_out_of_fds(&self, what: &str, error: &io::Error) {
        if super::io::is_fd_exhaustion(error) {
            tracing::warn!(topic = %self.topic, partition = self.index, %error, what, "out of file descriptors: the request fails, the partition stays online");
        } else {
            self.health.fail(what, error);
        }
    }

    pub(crate) fn health(&self) -> &LogDirHealth {
        &self.health
    }
}

/// Why a marker written from outside the coordinator was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExternalMarkerError {
    #[error("the marker's producer epoch is older than the producer's")]
    InvalidProducerEpoch,
    #[error("the marker's coordinator epoch is older than the last one seen")]
    CoordinatorFenced,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DeleteRecordsError {
    #[error("offset is out of range")]
    OffsetOutOfRange,
    #[error("I/O error: {0}")]
    Io(io::Error),
}

impl Partition {
    /// Offsets below this are on disk.
    pub fn flushed_offset(&self) -> i64 {
        self.flushed_offset.load(Ordering::Acquire)
    }
}
