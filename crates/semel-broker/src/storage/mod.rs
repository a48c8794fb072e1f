//! Storage: record batches, segments with their indexes, partition logs, recovery and
//! retention. `io` is the only module that decides how bytes become durable.

pub mod batch;
pub(crate) mod cleaner;
#[cfg(test)]
mod cleaner_tests;
pub mod decompress;
pub mod io;
pub(crate) mod log;
pub mod partition;
pub(crate) mod record_check;
pub(crate) mod records;
pub(crate) mod segment;

pub use partition::{AppendError, AppendInfo, Partition};
pub use segment::{open_sealed_files, set_max_open_files, DEFAULT_MAX_OPEN_FILES as DEFAULT_MAX_OPEN_SEGMENT_FILES};
