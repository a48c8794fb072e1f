//! semel's broker: a single-node Kafka-compatible broker, as a library.
//!
//! ```text
//! server/      listener, connections (framing, in-order responses), dispatch, one handler per API
//! storage/     record batches, segments and indexes, partition logs, recovery, retention
//! metadata/    topics, partitions, topic configs, the persisted metadata file
//! config       broker settings (TOML, flags)
//! fd_limit     RLIMIT_NOFILE raised to the hard limit at start-up
//! broker       start, background tasks, shutdown
//! ```
//!
//! Start one in-process with [`Broker::start`]; stop it with [`Broker::shutdown`].

pub mod broker;
pub mod config;
pub mod coordinator;
pub mod fd_limit;
/// Entry points for `fuzz/`, not an API.
#[doc(hidden)]
pub mod fuzzing;
pub mod metadata;
pub mod producer_ids;
pub mod producer_state;
pub mod server;
pub mod storage;

pub use broker::Broker;
pub use config::BrokerConfig;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
