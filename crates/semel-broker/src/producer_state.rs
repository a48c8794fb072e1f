//! Idempotent producer state of one partition (KIP-98), after Kafka's `ProducerStateManager`
//! and `ProducerAppendInfo`.
//!
//! Per producer id: the producer epoch, the metadata of its last [`MAX_BATCHES`] batches and
//! the time of its last write. A batch is:
//! - a **duplicate** when its epoch is the producer's and its base and last sequence equal one of
//!   the remembered batches: it is not appended and is answered NONE with the original offset;
//! - refused with **INVALID_PRODUCER_EPOCH** when its epoch is older than the producer's;
//! - refused with **OUT_OF_ORDER_SEQUENCE_NUMBER** when a newer epoch does not start at 0, or
//!   within the epoch the base sequence is not last + 1 (wrapping from i32::MAX to 0).
//!
//! A producer with no state (new, or expired) may start at any sequence.
//!
//! Appends go validate ([`ProducerStateManager::prepare`]) -> append -> apply
//! ([`ProducerStateManager::apply`]), so a failed write leaves the state untouched. Recovery
//! calls `apply` for every batch replayed from the log: live writes and replay run one code.
//!
//! Snapshots (`<offset>.snapshot` in the partition folder, `offset` being the log end offset the
//! state covers) are written at segment roll, after retention, and at clean shutdown. Layout,
//! big-endian:
//!
//! ```text
//! u16 version (1) | u32 crc32c of the rest | u32 producer count | producers...
//! producer: i64 id | i16 epoch | i64 last_timestamp | i64 txn_first_offset (-1: none)
//!           | i32 coordinator_epoch | u8 batch count | batches...
//! batch:    i32 first_seq | i32 last_seq | i64 first_offset | i64 last_offset | i64 timestamp
//! then:     u32 aborted count | aborted: i64 producer_id | i64 first_offset | i64 last_offset
//! ```

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};

use crate::storage::batch::BatchHeader;

/// Batches remembered per producer: clients keep at most 5 requests in flight.
pub const MAX_BATCHES: usize = 5;
const SNAPSHOT_VERSION: u16 = 1;
/// Snapshots kept per partition (the newest ones).
const SNAPSHOTS_KEPT: usize = 2;

/// What is remembered of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

/// One producer's state on this partition.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
    pub last_timestamp: i64,
    /// First offset of the producer's open transaction on this partition, if one is open.
    pub txn_first_offset: Option<i64>,
    /// Epoch of the coordinator that wrote the producer's last marker (-1: none).
    pub coordinator_epoch: i32,
}

/// A transaction aborted on this partition: its data lies in `first_offset..=last_offset`
/// (the last offset is its ABORT marker's). read_committed fetches return the ones that
/// overlap the fetched range so that clients drop their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

impl ProducerEntry {
    fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    fn find_duplicate(&self, header: &BatchHeader) -> Option<BatchMetadata> {
        if header.producer_epoch != self.epoch {
            return None;
        }
        let last_seq = header.last_sequence();
        self.batches.iter().copied().find(|b| b.first_seq == header.base_sequence && b.last_seq == last_seq)
    }
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    #[error("producer {producer_id}: epoch {epoch} is older than the current epoch {current}")]
    InvalidProducerEpoch { producer_id: i64, epoch: i16, current: i16 },
    #[error("producer {producer_id}: out of order sequence {sequence} (epoch {epoch}, last sequence {last:?})")]
    OutOfOrderSequence { producer_id: i64, epoch: i16, sequence: i32, last: Option<i32> },
    #[error("producer {producer_id}: a non-transactional batch while its transaction is open")]
    InvalidTxnState { producer_id: i64 },
}

/// The outcome of validating a request's batches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Append them all.
    Append,
    /// One batch was appended before: answer with its metadata, append nothing.
    Duplicate(BatchMetadata),
}

fn in_sequence(last: i32, next: i32) -> bool {
    i64::from(next) == i64::from(last) + 1 || (next == 0 && last == i32::MAX)
}

/// The producer states of one partition. Not thread-safe: it lives inside the partition's log
/// and is guarded by the same lock as appends.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// Aborted transactions, ordered by their marker's offset.
    aborted: Vec<AbortedTxn>,
}

impl ProducerStateManager {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&i64, &ProducerEntry)> {
        self.producers.iter()
    }

    /// Validates client batches against the state without changing it. Batches without a
    /// producer id are not checked.
    pub fn prepare(&self, headers: &[BatchHeader]) -> Result<Prepared, ProducerStateError> {
        // Working copies of the entries this request touches, so that several batches of one
        // producer in one request are checked against each other.
        let mut scratch: HashMap<i64, ProducerEntry> = HashMap::new();
        for header in headers.iter().filter(|h| h.has_producer_id()) {
            let producer_id = header.producer_id;
            let current = scratch.get(&producer_id).or_else(|| self.producers.get(&producer_id));
            if let Some(duplicate) = current.and_then(|e| e.find_duplicate(header)) {
                return Ok(Prepared::Duplicate(duplicate));
            }
            let epoch = header.producer_epoch;
            if let Some(entry) = current {
                if !header.is_transactional() && entry.txn_first_offset.is_some() && epoch >= entry.epoch {
                    return Err(ProducerStateError::InvalidTxnState { producer_id });
                }
                if epoch < entry.epoch {
                    return Err(ProducerStateError::InvalidProducerEpoch { producer_id, epoch, current: entry.epoch });
                }
                let last = entry.last_seq();
                let ok = if epoch != entry.epoch {
                    // A new epoch starts at sequence 0.
                    header.base_sequence == 0
                } else {
                    // Same epoch: the next sequence; an entry with no batches (its batches
                    // were dropped) accepts any sequence.
                    last.is_none_or(|last| in_sequence(last, header.base_sequence))
                };
                if !ok {
                    return Err(ProducerStateError::OutOfOrderSequence { producer_id, epoch, sequence: header.base_sequence, last });
                }
            }
            // No state for this producer: any sequence is accepted (KIP-360).
            let mut entry = current.cloned().unwrap_or_default();
            Self::record(&mut entry, header);
            scratch.insert(producer_id, entry);
        }
        Ok(Prepared::Append)
    }

    fn record(entry: &mut ProducerEntry, header: &BatchHeader) {
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        if header.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(header.base_offset);
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: header.base_sequence,
            last_seq: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            timestamp: header.max_timestamp,
        });
        while entry.batches.len() > MAX_BATCHES {
            entry.batches.pop_front();
        }
        entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
    }

    /// Records an appended batch (live append, or replay during recovery).
    pub fn apply(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        if header.is_control() {
            return; // markers go through `apply_marker`
        }
        let entry = self.producers.entry(header.producer_id).or_insert_with(|| ProducerEntry {
            epoch: header.producer_epoch,
            coordinator_epoch: -1,
            ..Default::default()
        });
        Self::record(entry, header);
    }

    /// Records a COMMIT or ABORT marker written at `offset` (live or replayed): the producer's
    /// transaction on this partition ends; an aborted one enters the aborted index.
    pub fn apply_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        offset: i64,
        timestamp: i64,
    ) {
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerEntry {
            epoch: producer_epoch,
            coordinator_epoch: -1,
            ..Default::default()
        });
        if producer_epoch > entry.epoch {
            // The coordinator bumped the epoch (a fenced or timed-out producer): the new epoch
            // starts its sequences at 0.
            entry.epoch = producer_epoch;
            entry.batches.clear();
        }
        entry.coordinator_epoch = coordinator_epoch;
        entry.last_timestamp = entry.last_timestamp.max(timestamp);
        if let Some(first_offset) = entry.txn_first_offset.take() {
            if !commit {
                self.aborted.push(AbortedTxn { producer_id, first_offset, last_offset: offset });
            }
        }
    }

    /// Whether the producer has a transaction open on this partition.
    pub fn has_open_txn(&self, producer_id: i64) -> bool {
        self.producers.get(&producer_id).is_some_and(|e| e.txn_first_offset.is_some())
    }

    /// First offset of the earliest open transaction: the last stable offset, if below the
    /// high watermark.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.values().filter_map(|e| e.txn_first_offset).min()
    }

    /// Aborted transactions whose data overlaps `from..upper`.
    pub fn aborted_overlapping(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.aborted.iter().filter(|a| a.last_offset >= from && a.first_offset < upper).copied().collect()
    }

    /// Keeps only the aborted transactions `keep` accepts (the cleaner removed the markers of
    /// the others, with their data).
    pub fn retain_aborted(&mut self, mut keep: impl FnMut(&AbortedTxn) -> bool) {
        self.aborted.retain(|a| keep(a));
    }

    /// Forgets aborted transactions wholly below the log start offset.
    pub fn prune_aborted(&mut self, log_start_offset: i64) {
        self.aborted.retain(|a| a.last_offset >= log_start_offset);
    }

    /// Forgets producers whose last write is older than `expiration_ms`. Returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        // A producer with an open transaction never expires (the coordinator ends it first).
        self.producers.retain(|_, e| e.txn_first_offset.is_some() || now_ms - e.last_timestamp < expiration_ms);
        before - self.producers.len()
    }

    /// Encodes the state (see the module documentation for the layout).
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let e = &self.producers[id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&e.epoch.to_be_bytes());
            body.extend_from_slice(&e.last_timestamp.to_be_bytes());
            body.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            body.push(e.batches.len() as u8);
            for b in &e.batches {
                body.extend_from_slice(&b.first_seq.to_be_bytes());
                body.extend_from_slice(&b.last_seq.to_be_bytes());
                body.extend_from_slice(&b.first_offset.to_be_bytes());
                body.extend_from_slice(&b.last_offset.to_be_bytes());
                body.extend_from_slice(&b.timestamp.to_be_bytes());
            }
        }
        body.extend_from_slice(&(self.aborted.len() as u32).to_be_bytes());
        for a in &self.aborted {
            body.extend_from_slice(&a.producer_id.to_be_bytes());
            body.extend_from_slice(&a.first_offset.to_be_bytes());
            body.extend_from_slice(&a.last_offset.to_be_bytes());
        }
        let mut out = Vec::with_capacity(6 + body.len());
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` when it is damaged or of another version.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        struct Reader<'a>(&'a [u8]);
        impl Reader<'_> {
            fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
                let (head, rest) = self.0.split_at_checked(N)?;
                self.0 = rest;
                head.try_into().ok()
            }
        }
        let mut r = Reader(bytes);
        if u16::from_be_bytes(r.take()?) != SNAPSHOT_VERSION {
            return None;
        }
        let crc = u32::from_be_bytes(r.take()?);
        if crc32c::crc32c(r.0) != crc {
            return None;
        }
        let count = u32::from_be_bytes(r.take()?);
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = i64::from_be_bytes(r.take()?);
            let epoch = i16::from_be_bytes(r.take()?);
            let last_timestamp = i64::from_be_bytes(r.take()?);
            let txn_first_offset = Some(i64::from_be_bytes(r.take()?)).filter(|o| *o >= 0);
            let coordinator_epoch = i32::from_be_bytes(r.take()?);
            let [n] = r.take::<1>()?;
            let mut batches = VecDeque::with_capacity(usize::from(n));
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_seq: i32::from_be_bytes(r.take()?),
                    last_seq: i32::from_be_bytes(r.take()?),
                    first_offset: i64::from_be_bytes(r.take()?),
                    last_offset: i64::from_be_bytes(r.take()?),
                    timestamp: i64::from_be_bytes(r.take()?),
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches, last_timestamp, txn_first_offset, coordinator_epoch });
        }
        let aborted_count = u32::from_be_bytes(r.take()?);
        let mut aborted = Vec::new();
        for _ in 0..aborted_count {
            aborted.push(AbortedTxn {
                producer_id: i64::from_be_bytes(r.take()?),
                first_offset: i64::from_be_bytes(r.take()?),
                last_offset: i64::from_be_bytes(r.take()?),
            });
        }
        r.0.is_empty().then_some(Self { producers, aborted })
    }
}

fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}.snapshot"))
}

/// Snapshot files in `dir`, sorted by offset.
pub(crate) fn list_snapshots(dir: &Path) -> io::Result<Vec<(i64, PathBuf)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "snapshot") {
            if let Some(offset) = path.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<i64>().ok()) {
                found.push((offset, path));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Writes a snapshot of `state` at `offset` and deletes all but the newest snapshots.
pub(crate) fn write_snapshot(dir: &Path, offset: i64, state: &ProducerStateManager) -> io::Result<()> {
    crate::storage::io::write_atomically(&snapshot_path(dir, offset), &state.encode())?;
    let snapshots = list_snapshots(dir)?;
    let excess = snapshots.len().saturating_sub(SNAPSHOTS_KEPT);
    for (_, path) in snapshots.into_iter().take(excess) {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// Loads the newest valid snapshot at or below `log_end_offset`, deleting snapshots above it
/// (the log was truncated below them) and damaged ones. Returns the state and its offset.
pub(crate) fn load_snapshot(dir: &Path, log_end_offset: i64) -> io::Result<Option<(i64, ProducerStateManager)>> {
    let mut snapshots = list_snapshots(dir)?;
    while let Some((offset, path)) = snapshots.pop() {
        if offset > log_end_offset {
            tracing::warn!(path = %path.display(), log_end_offset, "deleting a producer snapshot past the recovered log end");
            std::fs::remove_file(&path)?;
            continue;
        }
        match std::fs::read(&path).ok().and_then(|b| ProducerStateManager::decode(&b)) {
            Some(state) => return Ok(Some((offset, state))),
            None => {
                tracing::warn!(path = %path.display(), "deleting a damaged producer snapshot");
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(producer_id: i64, epoch: i16, base_sequence: i32, count: i32, base_offset: i64) -> BatchHeader {
        BatchHeader {
            base_offset,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 1_000,
            max_timestamp: 1_000 + base_offset,
            producer_id,
            producer_epoch: epoch,
            base_sequence,
            records_count: count,
        }
    }

    trait WithAttributes {
        fn with_attributes(self, attributes: i16) -> Self;
    }

    impl WithAttributes for BatchHeader {
        fn with_attributes(mut self, attributes: i16) -> Self {
            self.attributes |= attributes;
            self
        }
    }

    #[test]
    fn transactions_open_close_and_index_aborts() {
        let mut state = ProducerStateManager::default();
        let txn = |seq, count, offset| header(1, 0, seq, count, offset).with_attributes(0x10);
        append(&mut state, txn(0, 2, 100)).expect("first transactional batch");
        append(&mut state, txn(2, 2, 102)).expect("second");
        assert_eq!(state.first_unstable_offset(), Some(100), "the transaction starts at its first batch");
        assert!(state.has_open_txn(1));
        assert_eq!(append(&mut state, header(1, 0, 4, 1, 104)), Err(ProducerStateError::InvalidTxnState { producer_id: 1 }));
        state.apply_marker(1, 0, 0, false, 104, 0);
        assert_eq!(state.first_unstable_offset(), None);
        assert_eq!(state.aborted_overlapping(0, 200), vec![AbortedTxn { producer_id: 1, first_offset: 100, last_offset: 104 }]);
        assert!(state.aborted_overlapping(105, 200).is_empty(), "a fetch after the marker needs no entry");
        assert!(state.aborted_overlapping(0, 100).is_empty(), "nor one that ends before the transaction");
        append(&mut state, txn(4, 1, 105)).expect("next transaction continues the sequence");
        state.apply_marker(1, 0, 0, true, 106, 0);
        assert_eq!(state.aborted_overlapping(0, 200).len(), 1, "commits are not indexed");
        // A marker with a bumped epoch (a timed-out producer fenced by the coordinator).
        append(&mut state, txn(5, 1, 107)).expect("third transaction");
        state.apply_marker(1, 1, 0, false, 108, 0);
        assert!(
            matches!(append(&mut state, txn(6, 1, 109)), Err(ProducerStateError::InvalidProducerEpoch { .. })),
            "the old epoch is fenced"
        );
        state.prune_aborted(105);
        assert_eq!(state.aborted_overlapping(0, 200).len(), 1);
    }

    fn append(state: &mut ProducerStateManager, h: BatchHeader) -> Result<Prepared, ProducerStateError> {
        let prepared = state.prepare(&[h])?;
        if prepared == Prepared::Append {
            state.apply(&h);
        }
        Ok(prepared)
    }

    #[test]
    fn a_new_producer_may_start_at_any_sequence() {
        let mut state = ProducerStateManager::default();
        assert_eq!(append(&mut state, header(1, 0, 17, 3, 0)), Ok(Prepared::Append));
        assert_eq!(state.get(1).and_then(ProducerEntry::last_seq), Some(19));
    }

    #[test]
    fn the_next_sequence_is_last_plus_one() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 0, 0, 3, 0)).expect("first");
        assert_eq!(append(&mut state, header(1, 0, 3, 2, 3)), Ok(Prepared::Append));
        assert!(matches!(
            append(&mut state, header(1, 0, 6, 1, 5)),
            Err(ProducerStateError::OutOfOrderSequence { sequence: 6, last: Some(4), .. })
        ));
        assert!(
            matches!(append(&mut state, header(1, 0, 4, 1, 5)), Err(ProducerStateError::OutOfOrderSequence { .. })),
            "overlapping, not a duplicate"
        );
    }

    #[test]
    fn duplicates_of_the_last_five_batches_return_their_original_offsets() {
        let mut state = ProducerStateManager::default();
        for i in 0..6 {
            append(&mut state, header(9, 0, i * 2, 2, i64::from(i) * 10)).expect("append");
        }
        // Batches 1..=5 are remembered, batch 0 has left the window.
        for i in 1..6 {
            let again = header(9, 0, i * 2, 2, 999);
            match append(&mut state, again) {
                Ok(Prepared::Duplicate(original)) => assert_eq!(original.first_offset, i64::from(i) * 10),
                other => panic!("batch {i}: {other:?}"),
            }
        }
        assert!(matches!(append(&mut state, header(9, 0, 0, 2, 999)), Err(ProducerStateError::OutOfOrderSequence { .. })));
    }

    #[test]
    fn an_older_epoch_is_fenced() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 3, 0, 1, 0)).expect("epoch 3");
        assert_eq!(
            append(&mut state, header(1, 2, 1, 1, 1)),
            Err(ProducerStateError::InvalidProducerEpoch { producer_id: 1, epoch: 2, current: 3 })
        );
    }

    #[test]
    fn a_newer_epoch_must_start_at_zero() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 0, 0, 5, 0)).expect("epoch 0");
        assert!(matches!(append(&mut state, header(1, 1, 5, 1, 5)), Err(ProducerStateError::OutOfOrderSequence { .. })));
        assert_eq!(append(&mut state, header(1, 1, 0, 1, 5)), Ok(Prepared::Append));
        assert_eq!(state.get(1).map(|e| (e.epoch, e.batches.len())), Some((1, 1)), "the new epoch forgets the old batches");
    }

    #[test]
    fn sequences_wrap_from_max_to_zero() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 0, i32::MAX - 1, 2, 0)).expect("up to MAX");
        assert_eq!(append(&mut state, header(1, 0, 0, 1, 2)), Ok(Prepared::Append));
        // A batch that itself wraps: MAX-1, MAX, 0.
        let mut other = ProducerStateManager::default();
        append(&mut other, header(2, 0, i32::MAX - 1, 3, 0)).expect("wrapping batch");
        assert_eq!(other.get(2).and_then(ProducerEntry::last_seq), Some(0));
        assert_eq!(append(&mut other, header(2, 0, 1, 1, 3)), Ok(Prepared::Append));
    }

    #[test]
    fn several_batches_in_one_request_are_checked_in_order() {
        let state = ProducerStateManager::default();
        assert_eq!(state.prepare(&[header(1, 0, 0, 2, 0), header(1, 0, 2, 2, 2)]), Ok(Prepared::Append));
        assert!(state.prepare(&[header(1, 0, 0, 2, 0), header(1, 0, 5, 2, 2)]).is_err());
        assert!(state.is_empty(), "prepare changes nothing");
    }

    #[test]
    fn batches_without_producer_id_are_not_tracked() {
        let mut state = ProducerStateManager::default();
        assert_eq!(append(&mut state, header(-1, -1, -1, 4, 0)), Ok(Prepared::Append));
        assert!(state.is_empty());
    }

    #[test]
    fn expiry_forgets_idle_producers_only() {
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 0, 0, 1, 0)).expect("p1"); // max timestamp 1000
        append(&mut state, header(2, 0, 0, 1, 5000)).expect("p2"); // max timestamp 6000
        assert_eq!(state.expire(7_000, 3_000), 1);
        assert!(state.get(1).is_none() && state.get(2).is_some());
    }

    #[test]
    fn snapshots_round_trip_and_detect_damage() {
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut state, header(1, 0, i, 1, i64::from(i))).expect("append");
        }
        append(&mut state, header(5, 2, 0, 3, 7)).expect("append");
        let mut txn = header(6, 0, 0, 2, 10);
        txn.attributes |= 0x10;
        append(&mut state, txn).expect("transactional");
        state.apply_marker(6, 0, 3, false, 12, 5_000);
        append(&mut state, header(6, 0, 2, 1, 13).with_attributes(0x10)).expect("a second transaction");
        let bytes = state.encode();
        let back = ProducerStateManager::decode(&bytes).expect("decode");
        assert_eq!(back.producers, state.producers);
        assert_eq!(back.aborted, vec![AbortedTxn { producer_id: 6, first_offset: 10, last_offset: 12 }]);
        assert_eq!(back.first_unstable_offset(), Some(13));
        let mut damaged = bytes.clone();
        damaged[10] ^= 1;
        assert!(ProducerStateManager::decode(&damaged).is_none());
        assert!(ProducerStateManager::decode(&bytes[..bytes.len() - 1]).is_none());
    }

    #[test]
    fn snapshot_files_past_the_log_end_are_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut state = ProducerStateManager::default();
        append(&mut state, header(1, 0, 0, 1, 0)).expect("append");
        write_snapshot(dir.path(), 1, &state).expect("write");
        append(&mut state, header(1, 0, 1, 1, 1)).expect("append");
        write_snapshot(dir.path(), 2, &state).expect("write");
        let (offset, loaded) = load_snapshot(dir.path(), 1).expect("load").expect("found");
        assert_eq!(offset, 1);
        assert_eq!(loaded.get(1).and_then(ProducerEntry::last_seq), Some(0));
        assert_eq!(list_snapshots(dir.path()).expect("list").len(), 1);
    }
}
