//! Log compaction: the transaction-aware cleaner of `cleanup.policy=compact` logs, after
//! Kafka's `LogCleaner` (read its class documentation for the design this follows).
//!
//! A log is split at the cleaner checkpoint (`cleaner.checkpoint` in the partition folder)
//! into a clean head, already compacted, and a dirty tail. A pass:
//! 1. bounds the dirty range: it ends at the active segment, at the first unstable offset (no
//!    open transaction's data is ever touched), and before the first segment newer than
//!    `min.compaction.lag.ms`;
//! 2. runs only if the dirty bytes make up at least `min.cleanable.dirty.ratio` of the log, or
//!    the oldest dirty record is older than `max.compaction.lag.ms`;
//! 3. maps each key of the dirty range to its last offset (128-bit key hashes, records of
//!    aborted transactions skipped). The map has a memory budget: when it is full the range
//!    ends there and the rest waits for the next pass;
//! 4. rewrites every sealed segment up to the end of the range, grouped up to `segment.bytes`,
//!    keeping a record when no later record of the dirty range has its key. On top:
//!    - the data of aborted transactions is dropped;
//!    - a control batch (COMMIT/ABORT marker) stays while any data batch of its transaction
//!      is left below it; once none is, it is stamped with a delete horizon (now +
//!      `delete.retention.ms`, KIP-534) and dropped by a pass after that time;
//!    - a tombstone is kept the same way: stamped on the first pass, dropped after its
//!      horizon, so consumers that read the topic within `delete.retention.ms` see the delete;
//!    - records without a key are dropped (produce refuses them on compacted topics);
//!    - the last batch of every producer the partition remembers stays, emptied if need be, so
//!      that idempotent producers' sequence checks survive a restart.
//!
//! Crash safety: a group's new segment is written to `<base>.cleaned` and fsynced, then renamed
//! to `<base>.<end>.swap` (the old segments it replaces are exactly those with a base offset in
//! `base..end`), the directory fsynced, the old segments deleted, and the swap file renamed to
//! `<base>.log`. A crash before the swap file exists leaves the old segments (the `.cleaned`
//! file is deleted at start-up); a crash after it is finished at start-up by
//! [`recover_swaps`]. Either way no key loses its latest value.
//!
//! Crash tests of the real binary stop the cleaner at one of these steps (`cleaned-written`,
//! `swap-renamed`, `old-segment-deleted`) instead of hoping that a kill lands there: with
//! `SEMEL_TEST_CLEANER_HOLD_AT=<step>` and `SEMEL_TEST_CLEANER_HOLD_MARKER=<file>` in its
//! environment, the cleaner writes the file when it reaches the step and then waits there for
//! the kill. Both are for tests only; nothing else reads them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::hash::BuildHasher;
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::batch::{self, BatchHeader, HEADER_SIZE};
use super::partition::Partition;
use super::records;
use crate::producer_state::AbortedTxn;

const CHECKPOINT_FILE: &str = "cleaner.checkpoint";
const READ_WINDOW: usize = 4 * 1024 * 1024;
/// Bytes per key-map entry as hashbrown lays it out (16-byte hash, 8-byte offset, control byte).
const MAP_ENTRY_BYTES: usize = 25;

/// A topic's compaction settings (its `cleanup.policy` includes `compact`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CompactSettings {
    pub(crate) delete_retention_ms: i64,
    pub(crate) min_cleanable_dirty_ratio: f64,
    pub(crate) min_compaction_lag_ms: i64,
    pub(crate) max_compaction_lag_ms: i64,
}

impl Default for CompactSettings {
    fn default() -> Self {
        Self { delete_retention_ms: 86_400_000, min_cleanable_dirty_ratio: 0.5, min_compaction_lag_ms: 0, max_compaction_lag_ms: i64::MAX }
    }
}

/// Limits of the cleaner as a whole (the broker's `[cleaner]` config).
#[derive(Debug, Clone, Copy)]
pub(crate) struct CleanerLimits {
    /// Memory budget of the key map, in bytes.
    pub(crate) dedupe_buffer_bytes: usize,
    /// Bytes read plus written per second; 0 for no limit.
    pub(crate) io_max_bytes_per_second: u64,
}

impl CleanerLimits {
    /// Entries the key map may hold within its budget, counting hashbrown's growth by powers
    /// of two at a load factor of 7/8.
    fn map_entries(&self) -> usize {
        let buckets = (self.dedupe_buffer_bytes / MAP_ENTRY_BYTES).max(16);
        let pow2 = if buckets.is_power_of_two() { buckets } else { buckets.next_power_of_two() / 2 };
        pow2 / 8 * 7
    }
}

/// A sealed segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub(crate) struct SegmentView {
    pub(crate) base_offset: i64,
    pub(crate) next_offset: i64,
    pub(crate) size: u64,
    pub(crate) max_timestamp: i64,
    /// The segment's `.log` file, opened by the cleaner when it reads the segment (sealed
    /// segments keep no file open: segment.rs). It may be gone by then (retention, a deleted
    /// topic): the pass is skipped.
    pub(crate) path: PathBuf,
}

impl SegmentView {
    fn open(&self) -> io::Result<File> {
        File::open(&self.path)
    }
}

/// A log as the cleaner sees it to decide whether it is due (taken under the log lock by
/// `Log::cleaner_view`, for every compacted log at every look, so it holds no per-producer state).
#[derive(Debug, Clone)]
pub(crate) struct LogView {
    pub(crate) dir: PathBuf,
    pub(crate) segments: Vec<SegmentView>,
    pub(crate) active_base: i64,
    pub(crate) log_start_offset: i64,
    pub(crate) first_unstable_offset: Option<i64>,
    pub(crate) log_end_offset: i64,
}

/// The transaction and producer state a pass works with, taken with its `LogView` under one
/// lock (`Log::cleaner_producer_view`).
#[derive(Debug, Clone)]
pub(crate) struct ProducerView {
    pub(crate) aborted: Vec<AbortedTxn>,
    /// Per producer, the last offset of its last batch (which stays, for its sequence checks).
    pub(crate) last_batch_of_producer: HashMap<i64, i64>,
}

/// Whether a log needs cleaning, and the range to clean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Assessment {
    pub(crate) first_dirty: i64,
    /// Exclusive end of what may be cleaned.
    pub(crate) upper: i64,
    pub(crate) dirty_ratio: f64,
    /// `max.compaction.lag.ms` has passed for the oldest dirty record.
    pub(crate) overdue: bool,
}

impl Assessment {
    pub(crate) fn is_due(&self, settings: &CompactSettings) -> bool {
        self.first_dirty < self.upper && (self.overdue || self.dirty_ratio >= settings.min_cleanable_dirty_ratio)
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone)]
pub(crate) struct CleanStats {
    pub(crate) bytes_before: u64,
    pub(crate) bytes_after: u64,
    pub(crate) records_read: u64,
    pub(crate) records_kept: u64,
    pub(crate) keys_mapped: usize,
    pub(crate) batches_dropped: u64,
    pub(crate) segments_before: usize,
    pub(crate) segments_after: usize,
    /// The new cleaner checkpoint.
    pub(crate) cleaned_to: i64,
    pub(crate) elapsed: Duration,
}

#[cfg(test)]
thread_local! {
    /// Tests: the step at which the cleaner "crashes" (returns an error, leaving the files as
    /// a kill -9 there would).
    pub(crate) static CRASH_AT: std::cell::Cell<Option<&'static str>> = const { std::cell::Cell::new(None) };
}

/// A step of a swap at which tests inject a crash: unit tests through [`CRASH_AT`], crash
/// tests of the binary through the environment (see the module documentation).
pub(super) fn crash_point(step: &'static str) -> io::Result<()> {
    #[cfg(test)]
    if CRASH_AT.with(|c| c.get()) == Some(step) {
        return Err(io::Error::other(format!("injected crash at {step}")));
    }
    hold_if_asked(step);
    Ok(())
}

/// Crash tests of the binary: parks the cleaner thread for good at the step named by
/// `SEMEL_TEST_CLEANER_HOLD_AT`, after writing `SEMEL_TEST_CLEANER_HOLD_MARKER`, so that the
/// test kills the process exactly there.
fn hold_if_asked(step: &'static str) {
    static HOLD: std::sync::OnceLock<Option<(String, PathBuf)>> = std::sync::OnceLock::new();
    let hold = HOLD.get_or_init(|| {
        let at = std::env::var("SEMEL_TEST_CLEANER_HOLD_AT").ok()?;
        let marker = std::env::var_os("SEMEL_TEST_CLEANER_HOLD_MARKER")?;
        Some((at, PathBuf::from(marker)))
    });
    let Some((at, marker)) = hold else { return };
    if at != step {
        return;
    }
    tracing::warn!(step, "the cleaner is held at a test crash point (SEMEL_TEST_CLEANER_HOLD_AT) until the process is killed");
    if let Err(e) = std::fs::write(marker, step) {
        tracing::error!(marker = %marker.display(), error = %e, "cannot write the crash point marker");
    }
    loop {
        std::thread::park();
    }
}

/// The cleaner was asked to stop (broker shutdown).
fn stopped() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "the cleaner was stopped")
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

// ---------------------------------------------------------------- checkpoint

pub(crate) fn read_checkpoint(dir: &Path) -> Option<i64> {
    std::fs::read_to_string(dir.join(CHECKPOINT_FILE)).ok()?.trim().parse().ok()
}

fn write_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    super::io::write_atomically(&dir.join(CHECKPOINT_FILE), format!("{offset}\n").as_bytes())
}

// ---------------------------------------------------------------- swap files

fn cleaned_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}.cleaned", super::segment::file_stem(base)))
}

/// The name a cleaned segment takes once it is complete: it replaces the segments whose base
/// offset lies in `base..end`.
pub(crate) fn swap_path(dir: &Path, base: i64, end: i64) -> PathBuf {
    dir.join(format!("{}.{end}.swap", super::segment::file_stem(base)))
}

fn parse_swap_name(name: &str) -> Option<(i64, i64)> {
    let rest = name.strip_suffix(".swap")?;
    let (base, end) = rest.split_once('.')?;
    Some((base.parse().ok()?, end.parse().ok()?))
}

/// Finishes a swap whose file is complete and durable: deletes the segments it replaces,
/// then renames it to `<base>.log` (replacing the old segment of that base in one step).
pub(crate) fn finish_swap(dir: &Path, swap: &Path) -> io::Result<()> {
    let name = swap.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (base, end) = parse_swap_name(&name).ok_or_else(|| invalid(format!("not a swap file: {name}")))?;
    for entry in std::fs::read_dir(dir)? {
        let file_name = entry?.file_name();
        let file_name = file_name.to_string_lossy();
        let Some(stem) = file_name.strip_suffix(".log") else { continue };
        let Ok(old) = stem.parse::<i64>() else { continue };
        if old > base && old < end {
            super::segment::delete_segment_files(dir, old)?;
            crash_point("old-segment-deleted")?;
        }
    }
    // The old indexes of `base` describe the old file.
    for extension in ["index", "timeindex"] {
        match std::fs::remove_file(dir.join(format!("{}.{extension}", super::segment::file_stem(base)))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(swap, super::segment::Segment::log_path(dir, base))?;
    super::io::sync_dir(dir)
}

/// Start-up: deletes unfinished `.cleaned` files and finishes complete swaps.
pub(crate) fn recover_swaps(dir: &Path) -> io::Result<()> {
    let mut swaps = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy().into_owned();
        if name.ends_with(".cleaned") {
            std::fs::remove_file(dir.join(&name))?;
        } else if parse_swap_name(&name).is_some() {
            swaps.push(name);
        }
    }
    swaps.sort();
    for name in swaps {
        tracing::info!(dir = %dir.display(), swap = name, "finishing an interrupted cleaner swap");
        finish_swap(dir, &dir.join(name))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- reading batches

/// Calls `f` with every batch of a segment (header and whole bytes), reading in windows.
fn for_each_batch(
    segment: &SegmentView,
    throttle: &mut Throttle,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> io::Result<bool>,
) -> io::Result<()> {
    let mut position = 0u64;
    let mut buf = Vec::new();
    let file = segment.open()?;
    while position < segment.size {
        let want = ((segment.size - position) as usize).min(READ_WINDOW);
        buf.resize(want, 0);
        file.read_exact_at(&mut buf, position)?;
        throttle.account(want as u64)?;
        let mut at = 0usize;
        while at + HEADER_SIZE <= buf.len() {
            let header = BatchHeader::parse(&buf[at..]).map_err(invalid)?;
            let total = header.total_size();
            if at + total > buf.len() {
                if at == 0 {
                    // A batch larger than the window: read it whole.
                    buf.resize(total, 0);
                    file.read_exact_at(&mut buf, position)?;
                    continue;
                }
                break;
            }
            if !f(&header, &buf[at..at + total])? {
                return Ok(());
            }
            at += total;
        }
        if at == 0 {
            return Err(invalid(format!("segment {} ends with a partial batch", segment.base_offset)));
        }
        position += at as u64;
    }
    Ok(())
}

/// Bounds the cleaner's I/O rate and checks for shutdown.
struct Throttle<'a> {
    limit: u64,
    start: Instant,
    bytes: u64,
    stop: &'a AtomicBool,
}

impl Throttle<'_> {
    fn account(&mut self, bytes: u64) -> io::Result<()> {
        if self.stop.load(Ordering::Acquire) {
            return Err(stopped());
        }
        self.bytes += bytes;
        if self.limit == 0 {
            return Ok(());
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.limit as f64);
        while self.start.elapsed() < due {
            if self.stop.load(Ordering::Acquire) {
                return Err(stopped());
            }
            std::thread::sleep((due - self.start.elapsed()).min(Duration::from_millis(50)));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- transactions

/// Kafka's `CleanedTransactionMetadata`: which transactions the pass is inside of while it
/// walks the log in offset order.
struct TxnTracker {
    /// Aborted transactions not reached yet, by first offset.
    pending_aborted: std::collections::VecDeque<AbortedTxn>,
    /// Producers whose aborted transaction the walk is inside of, and whether a data batch of
    /// it was seen in this pass.
    ongoing_aborted: HashMap<i64, bool>,
    /// Producers whose committed (not aborted) transaction had a data batch in this pass.
    ongoing_committed: std::collections::HashSet<i64>,
}

impl TxnTracker {
    fn new(mut aborted: Vec<AbortedTxn>) -> Self {
        aborted.sort_by_key(|a| a.first_offset);
        Self { pending_aborted: aborted.into(), ongoing_aborted: HashMap::new(), ongoing_committed: Default::default() }
    }

    fn consume_aborted_up_to(&mut self, offset: i64) {
        while self.pending_aborted.front().is_some_and(|a| a.first_offset <= offset) {
            let a = self.pending_aborted.pop_front().expect("front");
            self.ongoing_aborted.insert(a.producer_id, false);
        }
    }

    /// A data batch: true when it belongs to an aborted transaction (its records go).
    fn on_batch(&mut self, header: &BatchHeader) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        if !header.is_transactional() {
            return false;
        }
        if let Some(seen) = self.ongoing_aborted.get_mut(&header.producer_id) {
            *seen = true;
            true
        } else {
            self.ongoing_committed.insert(header.producer_id);
            false
        }
    }

    /// A control batch: true when no data batch of its transaction is left below it, so the
    /// marker may go (after its delete horizon).
    fn on_control(&mut self, header: &BatchHeader, marker: Option<batch::Marker>) -> bool {
        self.consume_aborted_up_to(header.last_offset());
        match marker {
            Some(batch::Marker { commit: false, .. }) => !self.ongoing_aborted.remove(&header.producer_id).unwrap_or(false),
            Some(batch::Marker { commit: true, .. }) => !self.ongoing_committed.remove(&header.producer_id),
            // An emptied control batch was cleaned before: it may go.
            None => header.records_count == 0,
        }
    }
}

// ---------------------------------------------------------------- assessment

/// Decides whether `view` is due for cleaning and over which range.
pub(crate) fn assess(view: &LogView, settings: &CompactSettings, now_ms: i64) -> io::Result<Assessment> {
    let checkpoint = read_checkpoint(&view.dir).unwrap_or(view.log_start_offset);
    let first_dirty =
        if checkpoint < view.log_start_offset || checkpoint > view.log_end_offset { view.log_start_offset } else { checkpoint };
    let mut upper = view.active_base;
    if let Some(first_unstable) = view.first_unstable_offset {
        upper = upper.min(first_unstable);
    }
    if settings.min_compaction_lag_ms > 0 {
        if let Some(young) = view
            .segments
            .iter()
            .find(|s| s.next_offset > first_dirty && s.max_timestamp > now_ms.saturating_sub(settings.min_compaction_lag_ms))
        {
            upper = upper.min(young.base_offset);
        }
    }
    let mut clean_bytes = 0u64;
    let mut dirty_bytes = 0u64;
    let mut first_dirty_segment = None;
    for s in &view.segments {
        if s.next_offset <= first_dirty {
            clean_bytes += s.size;
        } else if s.base_offset < upper {
            dirty_bytes += s.size;
            first_dirty_segment.get_or_insert(s);
        }
    }
    let total = clean_bytes + dirty_bytes;
    let dirty_ratio = if total == 0 { 0.0 } else { dirty_bytes as f64 / total as f64 };
    let mut overdue = false;
    if settings.max_compaction_lag_ms < i64::MAX {
        if let Some(segment) = first_dirty_segment {
            // Kafka's `getFirstBatchTimestamp`: the max timestamp of the segment's first batch.
            let mut header = [0u8; HEADER_SIZE];
            if segment.size >= HEADER_SIZE as u64 {
                segment.open()?.read_exact_at(&mut header, 0)?;
                let first = BatchHeader::parse(&header).map_err(invalid)?;
                overdue = first.max_timestamp >= 0 && now_ms.saturating_sub(first.max_timestamp) > settings.max_compaction_lag_ms;
            }
        }
    }
    Ok(Assessment { first_dirty, upper, dirty_ratio, overdue })
}

// ---------------------------------------------------------------- the pass

struct KeyMap {
    hasher_a: std::collections::hash_map::RandomState,
    hasher_b: std::collections::hash_map::RandomState,
    offsets: HashMap<u128, i64>,
    capacity: usize,
}

impl KeyMap {
    fn new(capacity: usize) -> Self {
        Self { hasher_a: Default::default(), hasher_b: Default::default(), offsets: HashMap::new(), capacity }
    }
    fn hash(&self, key: &[u8]) -> u128 {
        (u128::from(self.hasher_a.hash_one(key)) << 64) | u128::from(self.hasher_b.hash_one(key))
    }
    fn latest(&self, key: &[u8]) -> Option<i64> {
        self.offsets.get(&self.hash(key)).copied()
    }
}

/// Builds the key map over `first_dirty..upper`; returns it with the offset where it stopped
/// (exclusive): `upper`, or earlier when the map filled up.
fn build_map(
    view: &LogView,
    aborted: &[AbortedTxn],
    first_dirty: i64,
    upper: i64,
    limits: &CleanerLimits,
    throttle: &mut Throttle,
) -> io::Result<(KeyMap, i64)> {
    let mut map = KeyMap::new(limits.map_entries());
    let mut end = upper;
    let segments: Vec<&SegmentView> = view.segments.iter().filter(|s| s.next_offset > first_dirty && s.base_offset < upper).collect();
    // The walk starts at the first dirty segment: aborted transactions whose marker lies
    // before it are over (the walk would never see their marker end them).
    let walk_start = segments.first().map_or(first_dirty, |s| s.base_offset);
    let mut txns = TxnTracker::new(aborted.iter().filter(|a| a.last_offset >= walk_start).copied().collect());
    'segments: for segment in segments {
        let mut full = false;
        for_each_batch(segment, throttle, |header, bytes| {
            if header.base_offset >= upper {
                return Ok(false);
            }
            if header.is_control() {
                txns.on_control(header, batch::parse_marker(bytes));
                return Ok(true);
            }
            let aborted = txns.on_batch(header);
            if header.last_offset() < first_dirty || aborted {
                return Ok(true);
            }
            if !map.offsets.is_empty() && map.offsets.len() + header.records_count.max(0) as usize > map.capacity {
                end = header.base_offset;
                full = true;
                return Ok(false);
            }
            let decoded = records::decode(bytes, header).map_err(invalid)?;
            for record in &decoded.records {
                if let Some(key) = decoded.key(record) {
                    let hash = map.hash(key);
                    map.offsets.insert(hash, record.offset);
                }
            }
            Ok(true)
        })?;
        if full {
            break 'segments;
        }
    }
    Ok((map, end))
}

/// Groups consecutive segments up to `segment_bytes` (and an offset span that fits the
/// indexes' 32-bit relative offsets), as Kafka's `groupSegmentsBySize`.
fn group_segments(segments: &[SegmentView], segment_bytes: u64) -> Vec<Vec<SegmentView>> {
    let mut groups: Vec<Vec<SegmentView>> = Vec::new();
    for s in segments {
        if let Some(group) = groups.last_mut() {
            let size: u64 = group.iter().map(|g| g.size).sum();
            if size + s.size <= segment_bytes && s.next_offset - group[0].base_offset <= i64::from(u32::MAX) {
                group.push(s.clone());
                continue;
            }
        }
        groups.push(vec![s.clone()]);
    }
    groups
}

/// Errors of a pass's reading that leave the log as it was and need no failure of the log
/// directory: a segment file gone since the pass took its view (retention, DeleteRecords, a
/// deleted topic), or no file descriptor to open one with. The pass is skipped; the next one
/// tries again.
fn skippable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || super::io::is_fd_exhaustion(e)
}

fn skip(view: &LogView, e: &io::Error) -> io::Result<Option<CleanStats>> {
    tracing::warn!(dir = %view.dir.display(), error = %e, "cleaner pass skipped; it is tried again at the next pass");
    Ok(None)
}

/// Cleans `partition` once if it is due. Returns `None` when it was not.
pub(crate) fn clean(
    partition: &Partition,
    settings: &CompactSettings,
    segment_bytes: u64,
    index_interval_bytes: u64,
    limits: &CleanerLimits,
    stop: &AtomicBool,
    now_ms: i64,
) -> io::Result<Option<CleanStats>> {
    let (view, producers) = {
        let log = partition.lock_log();
        (log.cleaner_view(), log.cleaner_producer_view())
    };
    let assessment = match assess(&view, settings, now_ms) {
        Err(e) if skippable(&e) => return skip(&view, &e),
        other => other?,
    };
    if !assessment.is_due(settings) {
        return Ok(None);
    }
    let started = Instant::now();
    let mut throttle = Throttle { limit: limits.io_max_bytes_per_second, start: started, bytes: 0, stop };
    let (map, end) = match build_map(&view, &producers.aborted, assessment.first_dirty, assessment.upper, limits, &mut throttle) {
        Err(e) if skippable(&e) => return skip(&view, &e),
        other => other?,
    };
    let mut stats = CleanStats { keys_mapped: map.offsets.len(), cleaned_to: end, ..Default::default() };

    // Every sealed segment from the log start up to the one holding the end of the range.
    let to_clean: Vec<SegmentView> =
        view.segments.iter().filter(|s| s.base_offset < end && s.next_offset > view.log_start_offset).cloned().collect();
    stats.segments_before = to_clean.len();
    let mut txns = TxnTracker::new(producers.aborted.clone());
    let horizon = now_ms.saturating_add(settings.delete_retention_ms);
    for group in group_segments(&to_clean, segment_bytes) {
        let base = group[0].base_offset;
        let last = group.last().expect("non-empty");
        // An empty last segment still counts as replaced (its base is below the end).
        let group_end = last.next_offset.max(last.base_offset + 1);
        let cleaned = cleaned_path(&view.dir, base);
        let out = match OpenOptions::new().create(true).write(true).truncate(true).open(&cleaned) {
            Err(e) if skippable(&e) => return skip(&view, &e),
            other => other?,
        };
        let mut out = BufWriter::with_capacity(1024 * 1024, out);
        let mut written = 0u64;
        let mut removed_aborts = Vec::new();
        for segment in &group {
            stats.bytes_before += segment.size;
            let read = for_each_batch(segment, &mut throttle, |header, bytes| {
                let kept =
                    clean_batch(header, bytes, &map, end, &mut txns, &producers.last_batch_of_producer, now_ms, horizon, &mut stats)?;
                if let Some(kept) = kept {
                    let kept: &[u8] = kept.as_deref().unwrap_or(bytes);
                    out.write_all(kept)?;
                    written += kept.len() as u64;
                } else {
                    stats.batches_dropped += 1;
                    if header.is_control() && batch::parse_marker(bytes).is_some_and(|m| !m.commit) {
                        removed_aborts.push(header.base_offset);
                    }
                }
                Ok(true)
            });
            match read {
                Err(e) if skippable(&e) => {
                    drop(out);
                    let _ = std::fs::remove_file(&cleaned);
                    return skip(&view, &e);
                }
                other => other?,
            }
        }
        throttle.account(written)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        crash_point("cleaned-written")?;
        let bases: Vec<i64> = group.iter().map(|s| s.base_offset).collect();
        if partition.lock_log().replace_segments(&bases, &cleaned, group_end, index_interval_bytes, &removed_aborts)? {
            stats.bytes_after += written;
            stats.segments_after += 1;
        } else {
            tracing::debug!(dir = %view.dir.display(), base, "segments went while cleaning them; the group is skipped");
        }
    }
    {
        // Under the log lock: a deleted log's folder may belong to a new topic by now.
        let log = partition.lock_log();
        if !log.is_deleted() {
            write_checkpoint(&view.dir, end)?;
        }
    }
    stats.elapsed = started.elapsed();
    Ok(Some(stats))
}

/// Decides what of one batch stays: `None` drops it, `Some(None)` keeps it as it is,
/// `Some(Some(bytes))` keeps a rebuilt batch.
#[allow(clippy::too_many_arguments)]
fn clean_batch(
    header: &BatchHeader,
    bytes: &[u8],
    map: &KeyMap,
    end: i64,
    txns: &mut TxnTracker,
    last_batch_of_producer: &HashMap<i64, i64>,
    now_ms: i64,
    horizon: i64,
    stats: &mut CleanStats,
) -> io::Result<Option<Option<Vec<u8>>>> {
    if header.is_control() {
        let may_go = txns.on_control(header, batch::parse_marker(bytes));
        if !may_go || header.base_offset >= end {
            return Ok(Some(None));
        }
        return match records::delete_horizon(header) {
            Some(h) if h <= now_ms => Ok(None),
            Some(_) => Ok(Some(None)),
            None => {
                let decoded = records::decode(bytes, header).map_err(invalid)?;
                let all: Vec<usize> = (0..decoded.records.len()).collect();
                Ok(Some(Some(records::rebuild(bytes, header, &decoded, &all, Some(horizon)).map_err(invalid)?)))
            }
        };
    }
    let aborted = txns.on_batch(header);
    let last_of_producer = header.has_producer_id() && last_batch_of_producer.get(&header.producer_id) == Some(&header.last_offset());
    if header.base_offset >= end {
        return Ok(Some(None));
    }
    let decoded = records::decode(bytes, header).map_err(invalid)?;
    stats.records_read += decoded.records.len() as u64;
    let existing_horizon = records::delete_horizon(header);
    let mut keep = Vec::with_capacity(decoded.records.len());
    let mut kept_tombstone = false;
    if !aborted {
        for (i, record) in decoded.records.iter().enumerate() {
            let Some(key) = decoded.key(record) else { continue };
            if record.offset >= end {
                keep.push(i);
                kept_tombstone |= record.tombstone;
                continue;
            }
            if map.latest(key).is_some_and(|latest| record.offset < latest) {
                continue; // superseded
            }
            if record.tombstone && existing_horizon.is_some_and(|h| h <= now_ms) {
                continue; // the delete has been visible for delete.retention.ms
            }
            kept_tombstone |= record.tombstone;
            keep.push(i);
        }
    }
    stats.records_kept += keep.len() as u64;
    if keep.is_empty() && !last_of_producer {
        return Ok(None);
    }
    let needs_horizon = kept_tombstone && existing_horizon.is_none();
    if keep.len() == decoded.records.len() && !needs_horizon {
        return Ok(Some(None));
    }
    let horizon = if needs_horizon { Some(horizon) } else { existing_horizon };
    Ok(Some(Some(records::rebuild(bytes, header, &decoded, &keep, horizon).map_err(invalid)?)))
}
