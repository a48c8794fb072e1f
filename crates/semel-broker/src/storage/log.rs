//! A partition's log: an ordered set of segments, the log start offset and the log end offset.
//! Appends go to the active (last) segment, which is rolled by size and age; retention deletes
//! whole segments from the front.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::batch::{BatchHeader, Marker, HEADER_SIZE};
use super::segment::{FileSlice, Segment, TruncatedTail};
use crate::producer_state::{self, ProducerStateManager};

/// Settings a log reads at each operation (a topic's configs can change at run time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogSettings {
    pub(crate) segment_bytes: u64,
    pub(crate) segment_ms: i64,
    pub(crate) retention_ms: i64,
    pub(crate) retention_bytes: i64,
    pub(crate) index_interval_bytes: u64,
}

/// A partition log. Not thread-safe: the owning partition keeps it behind a mutex.
#[derive(Debug)]
pub(crate) struct Log {
    dir: PathBuf,
    segments: BTreeMap<i64, Segment>,
    pub(crate) log_start_offset: i64,
    /// Idempotent producer state, guarded with the log so appends and state change together.
    pub(crate) producers: ProducerStateManager,
    /// The partition was deleted (its folder is gone or going): the cleaner must not swap
    /// segments into a folder that a new topic of the same name may own by now.
    deleted: bool,
}

/// What start-up recovery found.
#[derive(Debug, Default)]
pub(crate) struct RecoveryReport {
    pub(crate) truncated: Vec<(i64, TruncatedTail)>,
    pub(crate) deleted_segments_after_corruption: usize,
    pub(crate) producer_batches_replayed: usize,
    pub(crate) producers: usize,
}

/// Result of a read.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    Data(FileSlice),
    /// The offset is valid but no batch lies below the upper bound.
    Empty,
    OutOfRange,
}

impl Log {
    /// Opens (or creates) the log in `dir`. Segments whose data lies wholly below
    /// `recovery_point` are trusted; the rest are checked batch by batch.
    pub(crate) fn open(
        dir: &Path,
        recovery_point: i64,
        log_start_checkpoint: i64,
        settings: &LogSettings,
    ) -> io::Result<(Self, RecoveryReport)> {
        std::fs::create_dir_all(dir)?;
        // A cleaner swap that was interrupted is finished before anything else is read.
        super::cleaner::recover_swaps(dir)?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    bases.push(base);
                }
            } else if name.ends_with(".tmp") {
                let _ = std::fs::remove_file(dir.join(&*name));
            }
        }
        bases.sort_unstable();
        let mut report = RecoveryReport::default();
        let mut segments = BTreeMap::new();
        let mut corrupted = false;
        for (i, &base) in bases.iter().enumerate() {
            if corrupted {
                // Everything after a corrupt batch is dropped, as Kafka does: the files go
                // without being opened or checked.
                super::segment::delete_segment_files(dir, base)?;
                report.deleted_segments_after_corruption += 1;
                continue;
            }
            let next_base = bases.get(i + 1).copied();
            let trust = next_base.is_some_and(|next| next <= recovery_point);
            let (segment, tail) = Segment::open(dir, base, trust, settings.index_interval_bytes)?;
            if let Some(tail) = tail {
                corrupted = true;
                report.truncated.push((base, tail));
            }
            segments.insert(base, segment);
        }
        // An empty segment that is not the last one carries nothing; an empty log gets one
        // segment starting at the log start offset.
        let mut log =
            Self { dir: dir.to_path_buf(), segments, log_start_offset: 0, producers: ProducerStateManager::default(), deleted: false };
        if log.segments.is_empty() {
            let base = log_start_checkpoint.max(0);
            log.segments.insert(base, Segment::create(dir, base)?);
        }
        // Only the active segment keeps its file open; sealed ones are opened on demand
        // (segment.rs: the fd budget).
        let active_base = log.active().base_offset;
        for segment in log.segments.range_mut(..active_base).map(|(_, s)| s) {
            segment.release_file();
        }
        let first_base = *log.segments.keys().next().expect("one segment");
        log.log_start_offset = log_start_checkpoint.max(first_base).min(log.log_end_offset());
        log.recover_producer_state(&mut report)?;
        Ok((log, report))
    }

    /// Rebuilds producer state from disk alone: the newest snapshot at or below the log end,
    /// then every batch after it (Kafka's `rebuildProducerState`; no other side effects).
    fn recover_producer_state(&mut self, report: &mut RecoveryReport) -> io::Result<()> {
        let end = self.log_end_offset();
        let (from, state) = match producer_state::load_snapshot(&self.dir, end)? {
            Some((offset, state)) => (offset, state),
            None => (self.segments.keys().next().copied().unwrap_or(0), ProducerStateManager::default()),
        };
        self.producers = state;
        let mut replayed = 0usize;
        let mut batches = Vec::new();
        self.for_each_batch_from(from, |h, marker| batches.push((*h, marker)))?;
        for (header, marker) in &batches {
            match marker {
                Some(m) => self.producers.apply_marker(
                    header.producer_id,
                    header.producer_epoch,
                    m.coordinator_epoch,
                    m.commit,
                    header.base_offset,
                    header.max_timestamp,
                ),
                None => self.producers.apply(header),
            }
            replayed += 1;
        }
        // A snapshot may list aborted transactions whose ABORT marker the cleaner removed
        // since (with all of their data): a consumer must not be told about them, or it would
        // skip the producer's later batches waiting for a marker that is gone.
        let mut markers = Vec::new();
        for a in self.producers.aborted_overlapping(i64::MIN, i64::MAX) {
            let found = self.segments.range(..=a.last_offset).next_back().map(|(_, s)| s.find_batch(a.last_offset)).transpose()?.flatten();
            if found.is_some_and(|(_, h)| h.base_offset == a.last_offset && h.is_control()) {
                markers.push(a.last_offset);
            }
        }
        self.producers.retain_aborted(|a| markers.contains(&a.last_offset));
        report.producer_batches_replayed = replayed;
        report.producers = self.producers.len();
        Ok(())
    }

    /// Calls `f` with the header of every batch at or after `offset`, in log order, and the
    /// marker of control batches.
    pub(crate) fn for_each_batch_from(&self, offset: i64, mut f: impl FnMut(&BatchHeader, Option<Marker>)) -> io::Result<()> {
        let start = self.segments.range(..=offset).next_back().map_or(i64::MIN, |(b, _)| *b);
        let mut header_buf = [0u8; HEADER_SIZE];
        for segment in self.segments.range(start..).map(|(_, s)| s) {
            let Some((mut position, _)) = segment.find_batch(offset)? else { continue };
            let file = segment.file()?;
            while position + HEADER_SIZE as u64 <= segment.size {
                use std::os::unix::fs::FileExt;
                file.read_exact_at(&mut header_buf, position)?;
                let header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if header.last_offset() >= offset {
                    let marker =
                        if header.is_control() { super::batch::parse_marker(&segment.read_batch(position, &header)?) } else { None };
                    f(&header, marker);
                }
                position += header.total_size() as u64;
            }
        }
        Ok(())
    }

    /// Writes a producer state snapshot at the log end offset.
    pub(crate) fn snapshot_producers(&self) -> io::Result<()> {
        producer_state::write_snapshot(&self.dir, self.log_end_offset(), &self.producers)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn log_end_offset(&self) -> i64 {
        self.active().next_offset
    }

    fn active(&self) -> &Segment {
        self.segments.values().next_back().expect("a log always has a segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("a log always has a segment")
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    /// Rolls the active segment if adding `incoming` bytes would pass `segment.bytes` or it is
    /// older than `segment.ms`. The sealed segment is fsynced and its indexes written first.
    fn maybe_roll(&mut self, incoming: u64, now_ms: i64, settings: &LogSettings) -> io::Result<()> {
        let active = self.active();
        if active.size == 0 {
            return Ok(());
        }
        let too_big = active.size + incoming > settings.segment_bytes;
        let too_old = active.first_append_ms >= 0 && now_ms - active.first_append_ms >= settings.segment_ms;
        if !(too_big || too_old) {
            return Ok(());
        }
        self.roll()
    }

    /// Seals the active segment and starts a new one at the log end offset. A failure leaves
    /// the log as it was (the new segment's file is removed again), so an append that could not
    /// roll, e.g. for want of a file descriptor, changed nothing.
    pub(crate) fn roll(&mut self) -> io::Result<()> {
        let base = self.log_end_offset();
        let active = self.active_mut();
        if active.base_offset == base {
            return Ok(()); // nothing in it
        }
        active.file()?.sync_data()?;
        active.persist_indexes()?;
        let segment = Segment::create(&self.dir, base)?;
        if let Err(e) = producer_state::write_snapshot(&self.dir, base, &self.producers) {
            drop(segment);
            // An empty segment left in the middle of the log would hide the offsets after it.
            if let Err(removed) = super::segment::delete_segment_files(&self.dir, base) {
                tracing::warn!(dir = %self.dir.display(), base, error = %removed, "cannot remove the segment of a failed roll");
            }
            return Err(e);
        }
        tracing::debug!(dir = %self.dir.display(), base, "rolled segment");
        self.active_mut().release_file();
        self.segments.insert(base, segment);
        Ok(())
    }

    /// Appends batches whose offsets are already assigned (contiguous from the log end offset).
    pub(crate) fn append(&mut self, bytes: &[u8], batches: &[(BatchHeader, usize)], now_ms: i64, settings: &LogSettings) -> io::Result<()> {
        debug_assert_eq!(batches.first().map(|b| b.0.base_offset), Some(self.log_end_offset()));
        self.maybe_roll(bytes.len() as u64, now_ms, settings)?;
        self.active_mut().append(bytes, batches, now_ms, settings.index_interval_bytes)
    }

    /// The file handle of the active segment, for fsync outside the lock.
    pub(crate) fn active_file(&self) -> io::Result<std::sync::Arc<std::fs::File>> {
        self.active().file()
    }

    /// Reads from `offset`: whole batches up to `max_bytes` (at least one when
    /// `min_one_batch`), none at or past `upper_offset`.
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, upper_offset: i64, min_one_batch: bool) -> io::Result<ReadOutcome> {
        if offset < self.log_start_offset || offset > self.log_end_offset() {
            return Ok(ReadOutcome::OutOfRange);
        }
        if offset >= upper_offset {
            return Ok(ReadOutcome::Empty);
        }
        // Start in the segment holding `offset`; move on if it has nothing at or after it
        // (its tail batches may have been below the offset).
        for (_, segment) in self.segments.range(..=offset).next_back().into_iter().chain(self.segments.range(offset + 1..)) {
            if let Some(slice) = segment.read(offset, max_bytes, upper_offset, min_one_batch)? {
                return Ok(ReadOutcome::Data(slice));
            }
        }
        Ok(ReadOutcome::Empty)
    }

    /// The offset of the first record with a timestamp at or after `target`, and that
    /// timestamp; `None` when every record is older.
    pub(crate) fn offset_for_timestamp(&self, target: i64) -> io::Result<Option<(i64, i64)>> {
        for segment in self.segments.values() {
            if segment.max_timestamp < target {
                continue;
            }
            let Some((mut position, mut header)) = segment.find_by_timestamp(target)? else { continue };
            loop {
                let batch = segment.read_batch(position, &header)?;
                let found = super::batch::first_offset_with_timestamp(&batch, target)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                if let Some((offset, timestamp)) = found {
                    if offset >= self.log_start_offset {
                        return Ok(Some((offset, timestamp)));
                    }
                }
                position += header.total_size() as u64;
                match segment.find_batch(header.next_offset())? {
                    Some((p, h)) if p == position => header = h,
                    _ => break,
                }
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub(crate) fn offset_of_max_timestamp(&self) -> io::Result<Option<(i64, i64)>> {
        let Some(segment) = self.segments.values().filter(|s| s.size > 0).max_by_key(|s| s.max_timestamp) else {
            return Ok(None);
        };
        let Some((position, header)) = segment.find_batch(segment.max_timestamp_batch_offset)? else { return Ok(None) };
        let batch = segment.read_batch(position, &header)?;
        let found = super::batch::offset_of_max_timestamp(&batch).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        Ok(Some(found))
    }

    /// Moves the log start offset forward (DeleteRecords) and deletes segments wholly below it.
    pub(crate) fn advance_log_start(&mut self, offset: i64) -> io::Result<usize> {
        if offset <= self.log_start_offset {
            return Ok(0);
        }
        self.log_start_offset = offset.min(self.log_end_offset());
        let deleted = self.delete_segments_below(self.log_start_offset)?;
        self.producers.prune_aborted(self.log_start_offset);
        if deleted > 0 {
            // Producer state outlives the deleted batches: snapshot it so a restart does not
            // need them (a retry after retention must still be recognised).
            self.snapshot_producers()?;
        }
        Ok(deleted)
    }

    /// Deletes segments whose every offset is below `offset`; the active segment stays.
    fn delete_segments_below(&mut self, offset: i64) -> io::Result<usize> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let (&base, first) = self.segments.iter().next().expect("non-empty");
            if first.next_offset > offset {
                break;
            }
            first.delete_files()?;
            self.segments.remove(&base);
            deleted += 1;
        }
        Ok(deleted)
    }

    /// Applies retention: deletes the oldest segments past `retention.ms` or while the log is
    /// larger than `retention.bytes`. The active segment is rolled first when it has expired
    /// too, as Kafka does. Returns the number of segments deleted.
    pub(crate) fn apply_retention(&mut self, now_ms: i64, settings: &LogSettings) -> io::Result<usize> {
        let mut deleted = 0;
        if settings.retention_ms >= 0 {
            let expired = |s: &Segment| s.size > 0 && s.max_timestamp >= 0 && now_ms - s.max_timestamp > settings.retention_ms;
            if expired(self.active()) {
                self.roll()?;
            }
            while self.segments.len() > 1 {
                let first = self.segments.values().next().expect("non-empty");
                if !expired(first) {
                    break;
                }
                let next = first.next_offset;
                self.log_start_offset = self.log_start_offset.max(next);
                deleted += self.delete_segments_below(next)?;
            }
        }
        if settings.retention_bytes >= 0 {
            while self.segments.len() > 1 {
                let first = self.segments.values().next().expect("non-empty");
                if self.size_bytes() - first.size < settings.retention_bytes as u64 {
                    break;
                }
                let next = first.next_offset;
                self.log_start_offset = self.log_start_offset.max(next);
                deleted += self.delete_segments_below(next)?;
            }
        }
        if deleted > 0 {
            self.producers.prune_aborted(self.log_start_offset);
            self.snapshot_producers()?;
        }
        Ok(deleted)
    }

    /// What the cleaner needs to decide on a pass, taken under the lock: the sealed segments (the
    /// active one is never cleaned) and the bounds.
    pub(crate) fn cleaner_view(&self) -> super::cleaner::LogView {
        let active_base = self.active().base_offset;
        super::cleaner::LogView {
            dir: self.dir.clone(),
            segments: self
                .segments
                .values()
                .filter(|s| s.base_offset != active_base)
                .map(|s| super::cleaner::SegmentView {
                    base_offset: s.base_offset,
                    next_offset: s.next_offset,
                    size: s.size,
                    max_timestamp: s.max_timestamp,
                    path: Segment::log_path(&self.dir, s.base_offset),
                })
                .collect(),
            active_base,
            log_start_offset: self.log_start_offset,
            first_unstable_offset: self.producers.first_unstable_offset(),
            log_end_offset: self.log_end_offset(),
        }
    }

    /// The transaction and producer state a cleaner pass needs (taken with `cleaner_view`).
    pub(crate) fn cleaner_producer_view(&self) -> super::cleaner::ProducerView {
        super::cleaner::ProducerView {
            aborted: self.producers.aborted_overlapping(i64::MIN, i64::MAX),
            last_batch_of_producer: self.producers.iter().filter_map(|(id, e)| e.batches.back().map(|b| (*id, b.last_offset))).collect(),
        }
    }

    /// Marks the log deleted (DeleteTopics, before its folder goes).
    pub(crate) fn mark_deleted(&mut self) {
        self.deleted = true;
    }

    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted
    }

    /// Replaces the sealed segments `old_bases` (consecutive, the first being the new
    /// segment's base) with the cleaned, fsynced segment in `cleaned`, which holds what is left
    /// of offsets up to `end`: renames it to its swap name (`cleaner::swap_path`), makes that
    /// durable, then finishes the swap. Returns false, deleting the cleaned file, when one of
    /// the old segments is gone (retention or DeleteRecords ran meanwhile) or the log was
    /// deleted. `removed_aborts`: offsets of the ABORT markers the cleaned segment no longer
    /// has; their entries leave the aborted index.
    pub(crate) fn replace_segments(
        &mut self,
        old_bases: &[i64],
        cleaned: &Path,
        end: i64,
        index_interval_bytes: u64,
        removed_aborts: &[i64],
    ) -> io::Result<bool> {
        let active_base = self.active().base_offset;
        if self.deleted || old_bases.iter().any(|b| !self.segments.contains_key(b) || *b == active_base) {
            match std::fs::remove_file(cleaned) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => return Ok(false),
            }
        }
        let base = old_bases[0];
        let swap = super::cleaner::swap_path(&self.dir, base, end);
        std::fs::rename(cleaned, &swap)?;
        super::io::sync_dir(&self.dir)?;
        super::cleaner::crash_point("swap-renamed")?;
        super::cleaner::finish_swap(&self.dir, &swap)?;
        let (mut segment, tail) = Segment::open(&self.dir, base, false, index_interval_bytes)?;
        segment.release_file();
        if let Some(tail) = tail {
            // The cleaner fsynced the file before the swap; damage here is a disk fault.
            return Err(io::Error::new(io::ErrorKind::InvalidData, format!("cleaned segment {base} is damaged: {}", tail.reason)));
        }
        for b in old_bases {
            self.segments.remove(b);
        }
        self.segments.insert(base, segment);
        if !removed_aborts.is_empty() {
            self.producers.retain_aborted(|a| !removed_aborts.contains(&a.last_offset));
        }
        // A producer snapshot taken below the active segment may name a transaction as open
        // whose batches and marker the cleaner has now removed; recovery must not start from
        // one. The one at the active segment's base (its roll) stays; without it recovery
        // replays the whole log, which is consistent.
        for (offset, path) in producer_state::list_snapshots(&self.dir)? {
            if offset < active_base {
                std::fs::remove_file(path)?;
            }
        }
        Ok(true)
    }

    /// Writes the active segment's indexes (clean shutdown).
    pub(crate) fn persist_indexes(&mut self) -> io::Result<()> {
        for segment in self.segments.values_mut() {
            segment.persist_indexes()?;
        }
        Ok(())
    }
}
