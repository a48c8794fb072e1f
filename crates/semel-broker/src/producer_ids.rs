//! Producer id allocation: ids are unique for the life of the data directory.
//!
//! Ids are handed out from blocks of [`BLOCK_SIZE`]; the end of the current block is made
//! durable in `<data_dir>/producer-id-block` before any id of the block is used, so a restart
//! (kill -9 included) starts after every id that may have been handed out. File layout: the
//! text `semel-producer-id-block 1 <next block start> <crc32c hex of the number>`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::storage::io::write_atomically;

const FILE: &str = "producer-id-block";
pub const BLOCK_SIZE: i64 = 1000;

/// Why no producer id could be handed out.
#[derive(Debug, thiserror::Error)]
pub enum ProducerIdError {
    #[error("cannot persist the producer id block: {0}")]
    Io(#[from] std::io::Error),
    #[error("producer id file is damaged: {0}")]
    Corrupt(String),
    #[error("producer ids are exhausted")]
    Exhausted,
}

#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids. Thread-safe (one mutex; the fsync of a new block happens under it,
/// once every `BLOCK_SIZE` ids).
#[derive(Debug)]
pub struct ProducerIdManager {
    path: PathBuf,
    block: Mutex<Block>,
}

fn encode(next_block: i64) -> String {
    let number = next_block.to_string();
    format!("semel-producer-id-block 1 {number} {:08x}\n", crc32c::crc32c(number.as_bytes()))
}

fn decode(text: &str) -> Result<i64, ProducerIdError> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() != 4 || parts[0] != "semel-producer-id-block" || parts[1] != "1" {
        return Err(ProducerIdError::Corrupt(format!("unexpected content '{}'", text.trim())));
    }
    let crc = u32::from_str_radix(parts[3], 16).map_err(|_| ProducerIdError::Corrupt("bad checksum field".into()))?;
    if crc != crc32c::crc32c(parts[2].as_bytes()) {
        return Err(ProducerIdError::Corrupt("checksum mismatch".into()));
    }
    parts[2].parse().map_err(|_| ProducerIdError::Corrupt("bad number".into()))
}

impl ProducerIdManager {
    /// Opens the allocator; ids continue after the last block that was persisted.
    pub fn open(data_dir: &Path) -> Result<Self, ProducerIdError> {
        let path = data_dir.join(FILE);
        let start = match std::fs::read_to_string(&path) {
            Ok(text) => decode(&text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e.into()),
        };
        Ok(Self { path, block: Mutex::new(Block { next: start, end: start }) })
    }

    /// A producer id never handed out before.
    pub fn next_id(&self) -> Result<i64, ProducerIdError> {
        let mut block = self.block.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if block.next >= block.end {
            let end = block.end.checked_add(BLOCK_SIZE).ok_or(ProducerIdError::Exhausted)?;
            write_atomically(&self.path, encode(end).as_bytes())?;
            block.end = end;
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tmp");
        let first = ProducerIdManager::open(dir.path()).expect("open");
        let a: Vec<i64> = (0..3).map(|_| first.next_id().expect("id")).collect();
        assert_eq!(a, [0, 1, 2]);
        drop(first); // as a crash would: the rest of the block is skipped
        let second = ProducerIdManager::open(dir.path()).expect("reopen");
        assert_eq!(second.next_id().expect("id"), BLOCK_SIZE);
    }

    #[test]
    fn a_damaged_file_is_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join(FILE), "semel-producer-id-block 1 5000 00000000\n").expect("write");
        assert!(ProducerIdManager::open(dir.path()).is_err());
    }
}
