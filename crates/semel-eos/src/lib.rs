//! semel's exactly-once toolkit: the pieces an application needs to carry exactly-once from
//! input topics, through its own processing, to output topics, on semel or on an Apache Kafka
//! cluster alike (it speaks to the cluster only through `rdkafka`).
//!
//! ```text
//! client     client settings: bootstrap servers, extra properties, the settings EOS requires
//! session    a transactional producer session: begin, commit with input offsets (KIP-447),
//!            abort, and recovery that never guesses the outcome of a failed commit
//! processor/ consume-transform-produce with keyed state backed by a compacted changelog
//! ```
//!
//! The rule every part follows: the progress marker (input offsets) is written in the same
//! transaction as the effect it covers, and a commit whose outcome is unknown is never
//! guessed at: the producer is re-initialised (which completes or aborts the transaction at
//! the coordinator) and the caller rewinds to what is durably committed.
//!
//! Not there yet (issue #14): `semel process`, the tests against Apache Kafka, the crash and
//! zombie tests with real binaries, and the benchmark against Kafka Streams.

pub mod client;
pub mod processor;
pub mod session;

pub use client::ClientSettings;
pub use session::{CommitOutcome, SessionError, TransactionalSession};
