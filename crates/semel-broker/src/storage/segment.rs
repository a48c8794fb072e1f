//! One log segment: a `.log` file of record batches plus its sparse offset index (`.index`)
//! and time index (`.timeindex`), all named by the segment's base offset as Kafka names them
//! (`00000000000000000000.log`).
//!
//! Index files use Kafka's layout, big-endian:
//! - `.index`: entries of 8 bytes, relative offset (u32) and file position (u32);
//! - `.timeindex`: entries of 12 bytes, timestamp (i64) and relative offset (u32).
//!
//! Indexes are kept in memory and written when the segment is sealed (rolled) or the broker
//! shuts down cleanly. They are derived data: on start-up an index that is missing or fails its
//! checks is rebuilt from the log.
//!
//! File descriptors: only the active segment of a log keeps its `.log` file open (it is written
//! and fsynced). A sealed segment's file is opened on demand, read-only, through one
//! process-wide cache of at most [`max_open_files`] files (least recently used closed first;
//! `[log] max_open_segment_files`), so the fds the logs hold do not grow with the number of
//! segments. A reader keeps the `Arc<File>` it was given until its read is done. Opening can
//! fail with EMFILE/ENFILE ([`super::io::is_fd_exhaustion`]): that fails the request that needed
//! the file, never the log directory.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::batch::{self, BatchHeader, HEADER_SIZE, LOG_OVERHEAD};

const OFFSET_INDEX_ENTRY: usize = 8;
const TIME_INDEX_ENTRY: usize = 12;

/// Formats a base offset as Kafka's 20-digit file name stem.
pub(crate) fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Default of `[log] max_open_segment_files`.
pub const DEFAULT_MAX_OPEN_FILES: usize = 1000;

static MAX_OPEN_FILES: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_OPEN_FILES);
static NEXT_SEGMENT_ID: AtomicU64 = AtomicU64::new(1);
static OPEN_FILES: Mutex<FileCache> = Mutex::new(FileCache { files: None, order: BTreeMap::new(), tick: 0 });

/// Sets how many sealed segment files the process keeps open (at least 1).
pub fn set_max_open_files(max: usize) {
    MAX_OPEN_FILES.store(max.max(1), Ordering::Relaxed);
}

/// How many sealed segment files the process keeps open.
pub(crate) fn max_open_files() -> usize {
    MAX_OPEN_FILES.load(Ordering::Relaxed)
}

/// Sealed segment files the cache holds open now (for tests and metrics).
pub fn open_sealed_files() -> usize {
    lock_cache().files.as_ref().map_or(0, HashMap::len)
}

/// Open files of sealed segments, by segment id, least recently used first in `order`.
#[derive(Debug)]
struct FileCache {
    files: Option<HashMap<u64, (Arc<File>, u64)>>,
    order: BTreeMap<u64, u64>,
    tick: u64,
}

fn lock_cache() -> std::sync::MutexGuard<'static, FileCache> {
    OPEN_FILES.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl FileCache {
    fn get(&mut self, id: u64) -> Option<Arc<File>> {
        self.tick += 1;
        let tick = self.tick;
        let (file, used) = self.files.get_or_insert_with(HashMap::new).get_mut(&id)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, id);
        Some(Arc::clone(file))
    }

    fn insert(&mut self, id: u64, file: Arc<File>) {
        self.forget(id);
        let max = max_open_files();
        while self.files.as_ref().is_some_and(|f| f.len() >= max) {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.files.get_or_insert_with(HashMap::new).remove(&oldest);
        }
        self.tick += 1;
        self.order.insert(self.tick, id);
        self.files.get_or_insert_with(HashMap::new).insert(id, (file, self.tick));
    }

    fn forget(&mut self, id: u64) {
        if let Some((_, used)) = self.files.get_or_insert_with(HashMap::new).remove(&id) {
            self.order.remove(&used);
        }
    }
}

/// Where a read starts and how many bytes it covers, in one segment file.
#[derive(Debug, Clone)]
pub(crate) struct FileSlice {
    pub(crate) file: Arc<File>,
    pub(crate) position: u64,
    pub(crate) length: usize,
}

impl FileSlice {
    pub(crate) fn read(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.length];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }
}

/// A segment. Not thread-safe by itself: the owning `Log` serialises access; readers take an
/// `Arc<File>` and positions under the log's lock and read outside it (the file is append-only
/// below the positions handed out).
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: i64,
    dir: PathBuf,
    /// Identifies this segment's open file in the cache (a cleaned segment that replaces one
    /// of the same base offset is a new segment with a new id).
    id: u64,
    /// The open file while the segment is active (or being opened); `None` once sealed.
    pinned: Option<Arc<File>>,
    /// Bytes of valid batches in the file.
    pub(crate) size: u64,
    /// Offset after the last batch (equals `base_offset` when empty).
    pub(crate) next_offset: i64,
    offset_index: Vec<(u32, u32)>,
    time_index: Vec<(i64, u32)>,
    bytes_since_last_index_entry: u64,
    /// Largest batch max-timestamp in the segment, and the base offset of that batch.
    pub(crate) max_timestamp: i64,
    pub(crate) max_timestamp_batch_offset: i64,
    /// Wall-clock time of the first append, for `segment.ms`; -1 while empty.
    pub(crate) first_append_ms: i64,
    /// Whether the index files on disk match the in-memory indexes.
    indexes_persisted: bool,
}

impl Segment {
    pub(crate) fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.log", file_stem(base_offset)))
    }
    fn index_path(&self) -> PathBuf {
        self.dir.join(format!("{}.index", file_stem(self.base_offset)))
    }
    fn time_index_path(&self) -> PathBuf {
        self.dir.join(format!("{}.timeindex", file_stem(self.base_offset)))
    }

    /// The segment's file: the pinned one of an active segment, or the sealed file from the
    /// cache, opened read-only when it is not there. Fails with EMFILE/ENFILE when the process
    /// is out of file descriptors.
    pub(crate) fn file(&self) -> io::Result<Arc<File>> {
        if let Some(file) = &self.pinned {
            return Ok(Arc::clone(file));
        }
        if let Some(file) = lock_cache().get(self.id) {
            return Ok(file);
        }
        // Opened outside the cache lock; two readers racing both open, one file is kept.
        let file = Arc::new(File::open(Self::log_path(&self.dir, self.base_offset))?);
        lock_cache().insert(self.id, Arc::clone(&file));
        Ok(file)
    }

    /// Seals the segment's file handling: its file is closed (readers holding it keep it until
    /// they are done) and opened on demand from now on. The segment's data must be fsynced.
    pub(crate) fn release_file(&mut self) {
        self.pinned = None;
    }

    /// Creates a new, empty segment file.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> io::Result<Self> {
        let path = Self::log_path(dir, base_offset);
        let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&path)?;
        super::io::sync_dir(dir)?;
        Ok(Self::with_file(dir, base_offset, file))
    }

    fn with_file(dir: &Path, base_offset: i64, file: File) -> Self {
        Self {
            base_offset,
            dir: dir.to_path_buf(),
            id: NEXT_SEGMENT_ID.fetch_add(1, Ordering::Relaxed),
            pinned: Some(Arc::new(file)),
            size: 0,
            next_offset: base_offset,
            offset_index: Vec::new(),
            time_index: Vec::new(),
            bytes_since_last_index_entry: 0,
            max_timestamp: -1,
            max_timestamp_batch_offset: base_offset,
            first_append_ms: -1,
            indexes_persisted: false,
        }
    }

    /// Opens an existing segment. With `trust_indexes`, valid index files on disk are loaded
    /// and the file is taken as is (it was flushed before the last recovery point); otherwise,
    /// or when an index is unusable, every batch is checked by length and CRC, a torn or
    /// corrupt tail is truncated, and the indexes are rebuilt.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        trust_indexes: bool,
        index_interval_bytes: u64,
    ) -> io::Result<(Self, Option<TruncatedTail>)> {
        let path = Self::log_path(dir, base_offset);
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let file_len = file.metadata()?.len();
        let modified_ms = file
            .metadata()?
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(-1, |d| d.as_millis() as i64);
        let mut segment = Self::with_file(dir, base_offset, file);
        if trust_indexes && segment.load_indexes(file_len)? {
            segment.size = file_len;
            segment.first_append_ms = modified_ms;
            return Ok((segment, None));
        }
        let tail = segment.recover(file_len, index_interval_bytes)?;
        segment.first_append_ms = if segment.size > 0 { modified_ms } else { -1 };
        Ok((segment, tail))
    }

    /// Loads index files and derives `next_offset` and timestamps from the last batches.
    /// Returns false when the indexes are missing or inconsistent with the log.
    fn load_indexes(&mut self, file_len: u64) -> io::Result<bool> {
        let file = self.file()?;
        let (Ok(index), Ok(time_index)) = (std::fs::read(self.index_path()), std::fs::read(self.time_index_path())) else {
            return Ok(false);
        };
        if index.len() % OFFSET_INDEX_ENTRY != 0 || time_index.len() % TIME_INDEX_ENTRY != 0 {
            return Ok(false);
        }
        let offsets: Vec<(u32, u32)> = index
            .chunks_exact(OFFSET_INDEX_ENTRY)
            .map(|c| (u32::from_be_bytes(c[..4].try_into().expect("4")), u32::from_be_bytes(c[4..].try_into().expect("4"))))
            .collect();
        let times: Vec<(i64, u32)> = time_index
            .chunks_exact(TIME_INDEX_ENTRY)
            .map(|c| (i64::from_be_bytes(c[..8].try_into().expect("8")), u32::from_be_bytes(c[8..].try_into().expect("4"))))
            .collect();
        let monotonic = offsets.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1)
            && times.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1)
            && offsets.last().is_none_or(|e| u64::from(e.1) < file_len);
        if !monotonic {
            return Ok(false);
        }
        // Walk the batches after the last index entry to find the end offset and check the
        // entry really points at a batch.
        let start = offsets.last().map_or(0, |e| u64::from(e.1));
        let mut position = start;
        let mut header_buf = [0u8; HEADER_SIZE];
        let mut next_offset = self.base_offset;
        while position < file_len {
            if file_len - position < HEADER_SIZE as u64 {
                return Ok(false);
            }
            file.read_exact_at(&mut header_buf, position)?;
            let Ok(header) = BatchHeader::parse(&header_buf) else { return Ok(false) };
            if header.magic != 2 || position + header.total_size() as u64 > file_len {
                return Ok(false);
            }
            if position == start {
                if let Some(&(relative, _)) = offsets.last() {
                    if header.base_offset - self.base_offset > i64::from(relative)
                        || header.last_offset() < self.base_offset + i64::from(relative)
                    {
                        return Ok(false);
                    }
                }
            }
            next_offset = header.next_offset();
            if header.max_timestamp > self.max_timestamp {
                self.max_timestamp = header.max_timestamp;
                self.max_timestamp_batch_offset = header.base_offset;
            }
            position += header.total_size() as u64;
        }
        if let Some(&(ts, relative)) = times.last() {
            if ts > self.max_timestamp {
                self.max_timestamp = ts;
                self.max_timestamp_batch_offset = self.base_offset + i64::from(relative);
            }
        }
        self.next_offset = next_offset;
        self.bytes_since_last_index_entry = file_len - start;
        self.offset_index = offsets;
        self.time_index = times;
        self.indexes_persisted = true;
        Ok(true)
    }

    /// Scans the whole file, checking each batch's framing and CRC and rebuilding the indexes.
    /// Stops at the first bad batch and truncates the file there.
    fn recover(&mut self, file_len: u64, index_interval_bytes: u64) -> io::Result<Option<TruncatedTail>> {
        let file = self.file()?;
        const CHUNK: usize = 8 * 1024 * 1024;
        let mut position = 0u64;
        let mut expected_offset = self.base_offset;
        let mut reason = None;
        let mut buf = Vec::new();
        'scan: while position < file_len {
            // Read a window of at least one whole batch.
            let want = ((file_len - position) as usize).min(CHUNK);
            buf.resize(want, 0);
            file.read_exact_at(&mut buf, position)?;
            let mut at = 0usize;
            while at < buf.len() {
                let rest = &buf[at..];
                if rest.len() < HEADER_SIZE {
                    if position + (at as u64) + (rest.len() as u64) < file_len {
                        break; // the window ended mid-header: read the next window
                    }
                    reason = Some("a torn batch header at the end of the segment".to_string());
                    break 'scan;
                }
                let header = match BatchHeader::parse(rest) {
                    Ok(h) => h,
                    Err(e) => {
                        reason = Some(e.to_string());
                        break 'scan;
                    }
                };
                if header.magic != 2 || header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
                    reason = Some(format!("bad batch header (magic {}, length {})", header.magic, header.batch_length));
                    break 'scan;
                }
                let total = header.total_size();
                if rest.len() < total {
                    if position + (at + total) as u64 > file_len {
                        reason = Some("a batch cut short at the end of the segment".to_string());
                        break 'scan;
                    }
                    if at == 0 {
                        // One batch larger than the window: read it whole.
                        buf.resize(total, 0);
                        file.read_exact_at(&mut buf, position)?;
                        continue;
                    }
                    break;
                }
                if let Err(e) = batch::check_framing_and_crc(&rest[..total]) {
                    reason = Some(e.to_string());
                    break 'scan;
                }
                if header.base_offset < expected_offset {
                    reason = Some(format!("offset {} goes backwards (expected at least {expected_offset})", header.base_offset));
                    break 'scan;
                }
                self.index_batch(&header, position + at as u64, index_interval_bytes);
                expected_offset = header.next_offset();
                self.next_offset = expected_offset;
                self.size = position + (at + total) as u64;
                at += total;
            }
            position += at as u64;
        }
        if self.size < file_len {
            let dropped = file_len - self.size;
            file.set_len(self.size)?;
            file.sync_all()?;
            return Ok(Some(TruncatedTail {
                reason: reason.unwrap_or_else(|| "trailing bytes".into()),
                valid_bytes: self.size,
                dropped_bytes: dropped,
            }));
        }
        Ok(None)
    }

    /// Adds index entries for a batch written at `position` (Kafka's `LogSegment.append`).
    fn index_batch(&mut self, header: &BatchHeader, position: u64, index_interval_bytes: u64) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_batch_offset = header.base_offset;
        }
        if self.bytes_since_last_index_entry >= index_interval_bytes || self.offset_index.is_empty() && position == 0 {
            let relative = (header.last_offset() - self.base_offset) as u32;
            if self.offset_index.last().is_none_or(|e| e.0 < relative) {
                self.offset_index.push((relative, position as u32));
            }
            if self.time_index.last().is_none_or(|e| e.0 < self.max_timestamp) {
                let relative_max = (self.max_timestamp_batch_offset - self.base_offset) as u32;
                self.time_index.push((self.max_timestamp, relative_max.max(self.time_index.last().map_or(0, |e| e.1))));
            }
            self.bytes_since_last_index_entry = 0;
            self.indexes_persisted = false;
        }
        self.bytes_since_last_index_entry += header.total_size() as u64;
    }

    /// Appends batches whose offsets are assigned. `batches` are the headers with their
    /// positions inside `bytes`.
    pub(crate) fn append(
        &mut self,
        bytes: &[u8],
        batches: &[(BatchHeader, usize)],
        now_ms: i64,
        index_interval_bytes: u64,
    ) -> io::Result<()> {
        let file = self.file()?;
        file.write_all_at(bytes, self.size)?;
        for (header, at) in batches {
            self.index_batch(header, self.size + *at as u64, index_interval_bytes);
            self.next_offset = header.next_offset();
        }
        self.size += bytes.len() as u64;
        if self.first_append_ms < 0 {
            self.first_append_ms = now_ms;
        }
        Ok(())
    }

    /// The file position to start scanning from to find `offset`: the last index entry whose
    /// batch ends before or at `offset`.
    fn lookup_position(&self, offset: i64) -> u64 {
        let relative = offset - self.base_offset;
        let idx = self.offset_index.partition_point(|e| i64::from(e.0) < relative);
        // Entries store the batch's last offset: entry idx-1 ends before `offset`, so the
        // batch holding `offset` starts after it. Start from the entry before it.
        if idx == 0 {
            0
        } else {
            u64::from(self.offset_index[idx - 1].1)
        }
    }

    /// Finds the position of the batch that contains `offset` (or the first batch after it),
    /// scanning headers from the nearest index entry. Returns `None` past the end.
    pub(crate) fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let file = self.file()?;
        let mut position = self.lookup_position(offset);
        let mut header_buf = [0u8; HEADER_SIZE];
        while position + HEADER_SIZE as u64 <= self.size {
            file.read_exact_at(&mut header_buf, position)?;
            let header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.total_size() as u64;
        }
        Ok(None)
    }

    /// Reads whole batches starting with the one holding `offset`, up to `max_bytes` (at least
    /// one batch however large) and never past `upper_offset` (exclusive).
    pub(crate) fn read(&self, offset: i64, max_bytes: usize, upper_offset: i64, min_one_batch: bool) -> io::Result<Option<FileSlice>> {
        let Some((start, first)) = self.find_batch(offset)? else { return Ok(None) };
        let file = self.file()?;
        if first.base_offset >= upper_offset {
            return Ok(None);
        }
        let mut end = start;
        let mut header = first;
        let mut header_buf = [0u8; HEADER_SIZE];
        loop {
            let size = header.total_size() as u64;
            if end + size - start > max_bytes as u64 && !(end == start && min_one_batch) {
                break;
            }
            if header.last_offset() >= upper_offset {
                break;
            }
            end += size;
            if end + HEADER_SIZE as u64 > self.size {
                break;
            }
            file.read_exact_at(&mut header_buf, end)?;
            header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
        if end == start {
            return Ok(None);
        }
        Ok(Some(FileSlice { file, position: start, length: (end - start) as usize }))
    }

    /// Reads the whole batch at `position`.
    pub(crate) fn read_batch(&self, position: u64, header: &BatchHeader) -> io::Result<Vec<u8>> {
        let file = self.file()?;
        let mut buf = vec![0u8; header.total_size()];
        file.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Finds the first batch whose max timestamp is at least `target`, from the time index.
    pub(crate) fn find_by_timestamp(&self, target: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let file = self.file()?;
        if self.max_timestamp < target {
            return Ok(None);
        }
        let idx = self.time_index.partition_point(|e| e.0 < target);
        let start_offset = if idx == 0 { self.base_offset } else { self.base_offset + i64::from(self.time_index[idx - 1].1) };
        let Some((mut position, mut header)) = self.find_batch(start_offset)? else { return Ok(None) };
        let mut header_buf = [0u8; HEADER_SIZE];
        loop {
            if header.max_timestamp >= target {
                return Ok(Some((position, header)));
            }
            position += header.total_size() as u64;
            if position + HEADER_SIZE as u64 > self.size {
                return Ok(None);
            }
            file.read_exact_at(&mut header_buf, position)?;
            header = BatchHeader::parse(&header_buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
    }

    /// Writes the index files (at seal and at clean shutdown).
    pub(crate) fn persist_indexes(&mut self) -> io::Result<()> {
        if self.indexes_persisted {
            return Ok(());
        }
        let mut index = Vec::with_capacity(self.offset_index.len() * OFFSET_INDEX_ENTRY);
        for (relative, position) in &self.offset_index {
            index.extend_from_slice(&relative.to_be_bytes());
            index.extend_from_slice(&position.to_be_bytes());
        }
        let mut time_index = Vec::with_capacity(self.time_index.len() * TIME_INDEX_ENTRY);
        for (timestamp, relative) in &self.time_index {
            time_index.extend_from_slice(&timestamp.to_be_bytes());
            time_index.extend_from_slice(&relative.to_be_bytes());
        }
        super::io::write_atomically(&self.index_path(), &index)?;
        super::io::write_atomically(&self.time_index_path(), &time_index)?;
        self.indexes_persisted = true;
        Ok(())
    }

    /// Removes the segment's files.
    pub(crate) fn delete_files(&self) -> io::Result<()> {
        delete_segment_files(&self.dir, self.base_offset)
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.pinned.is_none() {
            lock_cache().forget(self.id);
        }
    }
}

/// Removes the files of the segment at `base_offset` without opening it.
pub(crate) fn delete_segment_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    let stem = file_stem(base_offset);
    for extension in ["log", "index", "timeindex"] {
        match std::fs::remove_file(dir.join(format!("{stem}.{extension}"))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// What recovery cut off the end of a segment.
#[derive(Debug, Clone)]
pub(crate) struct TruncatedTail {
    pub(crate) reason: String,
    pub(crate) valid_bytes: u64,
    pub(crate) dropped_bytes: u64,
}
