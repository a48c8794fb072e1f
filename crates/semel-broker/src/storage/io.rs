//! The only module that knows how files are made durable: atomic replacement of small files,
//! directory fsyncs, and the log directory's health (stop on the first I/O error).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Replaces `path` with `contents` so that a crash leaves either the old or the new file:
/// write a temporary file, fsync it, rename it over the target, fsync the directory.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Makes a directory's entries (created, renamed, removed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether `e` says the process (EMFILE) or the system (ENFILE) has no file descriptor left.
/// Such an error while opening a file fails the request that wanted it and is never a storage
/// failure: nothing was written, and the same request succeeds once descriptors are free.
pub fn is_fd_exhaustion(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::MFILE.raw_os_error()) || code == Some(rustix::io::Errno::NFILE.raw_os_error())
}

/// Health of the data directory. After the first failed write or fsync the directory is
/// offline until restart: the broker never carries on as if data were safe (Kafka's
/// `LogDirFailureChannel`; redb's `CheckedBackend`). Thread-safe.
#[derive(Debug, Default)]
pub struct LogDirHealth {
    offline: AtomicBool,
}

impl LogDirHealth {
    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::Acquire)
    }

    /// Records an I/O failure and takes the directory offline.
    pub fn fail(&self, what: &str, error: &io::Error) {
        if !self.offline.swap(true, Ordering::AcqRel) {
            tracing::error!(%error, what, "I/O failure: the log directory is now offline; produce answers KAFKA_STORAGE_ERROR until restart");
        }
    }
}
