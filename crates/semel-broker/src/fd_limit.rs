//! The process's file-descriptor limit: raised at start-up from the soft to the hard limit
//! (as the JVM does for Kafka with `-XX:+MaxFDLimit`), and both values logged, so that an
//! operator sees what the broker can open. Segment files are kept within
//! `[log] max_open_segment_files` (storage/segment.rs), connections are refused at accept once
//! the limit is reached, and neither takes the log directory offline.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// RLIMIT_NOFILE before and after [`raise_nofile_limit`]; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileLimit {
    pub soft_before: Option<u64>,
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// Raises the soft RLIMIT_NOFILE to the hard limit and logs both (info). A failure to raise is
/// logged as a warning and the broker runs with the limit it has.
pub fn raise_nofile_limit() -> NofileLimit {
    let before = getrlimit(Resource::Nofile);
    let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    let mut soft = before.current;
    if before.current != before.maximum {
        match setrlimit(Resource::Nofile, Rlimit { current: before.maximum, maximum: before.maximum }) {
            Ok(()) => soft = getrlimit(Resource::Nofile).current,
            Err(e) => {
                tracing::warn!(error = %e, soft = %show(before.current), hard = %show(before.maximum), "cannot raise the soft file-descriptor limit to the hard limit");
            }
        }
    }
    tracing::info!(soft = %show(soft), hard = %show(before.maximum), soft_at_start = %show(before.current), "file-descriptor limit (RLIMIT_NOFILE)");
    NofileLimit { soft_before: before.current, soft, hard: before.maximum }
}
