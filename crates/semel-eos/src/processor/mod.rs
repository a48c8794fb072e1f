//! Consume-transform-produce with keyed state, exactly once (Kafka Streams'
//! `exactly_once_v2`, without the JVM).
//!
//! ```text
//! mod.rs       the public face: configuration, records, the Transform trait, Processor::run
//! store.rs     keyed state of each input partition, and the changes not yet committed
//! changelog.rs the compacted changelog topic: creation, and restoring a partition's state
//! engine.rs    processing, commits, rollbacks and rebalances
//! ```
//!
//! The contract, per commit: the output records, the changelog records of the state changed
//! since the last commit, and the input offsets are written in one Kafka transaction, with the
//! consumer group's metadata (KIP-447: the group generation fences a zombie instance). A commit
//! happens every `commit_interval` or every `commit_records` records, whichever comes first,
//! and before any partition is revoked. Any failure (an error or panic of the transform, an
//! abortable or fatal producer error, a commit whose outcome is unknown) rolls back: the
//! transaction is aborted (or the producer re-initialised, see [`crate::session`]), every
//! assigned partition is rewound to its committed offset and its state reloaded from the
//! changelog, read with read_committed up to its end. A newly assigned partition is restored the
//! same way before any of its records is processed. Nothing half-written becomes visible, and
//! nothing local is trusted beyond what the changelog and the committed offsets say.
//!
//! `Guarantee::AtLeastOnce` runs the same code without transactions (outputs and changelog
//! flushed, then the offsets committed): for comparison, and for testing the verifier.

mod changelog;
mod engine;
mod store;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use store::KeyState;

use crate::client::ClientSettings;

/// Delivery guarantee of a processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guarantee {
    ExactlyOnce,
    AtLeastOnce,
}

/// How the group's partitions move between instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// `cooperative-sticky`: only the partitions that move are revoked.
    CooperativeSticky,
    /// `range`, eager: every partition is revoked at each rebalance.
    Eager,
}

/// Settings of a processor.
#[derive(Debug, Clone)]
pub struct ProcessorConfig {
    pub client: ClientSettings,
    /// The group id, the transactional id prefix and the changelog topic prefix.
    pub application_id: String,
    /// This instance's name, unique within the application (part of its transactional id).
    pub instance_id: String,
    pub input: String,
    /// Where output records without a topic of their own go.
    pub output: String,
    /// The state store's name: its changelog is `<application_id>-<store>-changelog`. `None`
    /// for a stateless processor.
    pub store: Option<String>,
    pub guarantee: Guarantee,
    pub assignment: Assignment,
    /// Commit at least this often (Kafka Streams under EOS: 100 ms).
    pub commit_interval: Duration,
    /// Commit after this many records, bounding the open transaction and the changed state.
    pub commit_records: usize,
    pub transaction_timeout: Duration,
    /// Bound on each blocking call to the cluster.
    pub call_timeout: Duration,
    /// Failures of the transform in a row (each rolled back and retried) before the
    /// processor stops with the error.
    pub max_retries: u32,
    /// librdkafka's consumer queue bound (`queued.max.messages.kbytes`): back-pressure.
    pub max_queued_kbytes: u32,
}

impl ProcessorConfig {
    pub fn new(client: ClientSettings, application_id: &str, input: &str, output: &str) -> Self {
        Self {
            client,
            application_id: application_id.to_string(),
            instance_id: "0".to_string(),
            input: input.to_string(),
            output: output.to_string(),
            store: None,
            guarantee: Guarantee::ExactlyOnce,
            assignment: Assignment::CooperativeSticky,
            commit_interval: Duration::from_millis(100),
            commit_records: 10_000,
            transaction_timeout: Duration::from_secs(60),
            call_timeout: Duration::from_secs(60),
            max_retries: 5,
            max_queued_kbytes: 65_536,
        }
    }

    /// The changelog topic of the store, if there is one.
    pub fn changelog_topic(&self) -> Option<String> {
        self.store.as_ref().map(|s| format!("{}-{s}-changelog", self.application_id))
    }

    fn transactional_id(&self) -> String {
        format!("{}-{}", self.application_id, self.instance_id)
    }
}

/// One input record, as the transform sees it.
#[derive(Debug)]
pub struct InputRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    /// Milliseconds since the epoch, if the record has a timestamp.
    pub timestamp: Option<i64>,
    pub partition: i32,
    pub offset: i64,
}

/// A record the transform emits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputRecord {
    /// `None`: the processor's output topic.
    pub topic: Option<String>,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

/// What a transform's failure carries.
pub type TransformError = Box<dyn std::error::Error + Send + Sync>;

/// The application's function: one input record and its key's state to zero or more outputs.
pub trait Transform: Send {
    fn apply(&mut self, record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError>;
}

impl<F> Transform for F
where
    F: FnMut(&InputRecord<'_>, &mut KeyState<'_>, &mut Vec<OutputRecord>) -> Result<(), TransformError> + Send,
{
    fn apply(&mut self, record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
        self(record, state, out)
    }
}

/// Counters of a running processor (read them from another thread for progress).
#[derive(Debug, Default)]
pub struct Stats {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub commits: AtomicU64,
    pub rollbacks: AtomicU64,
    pub restored_keys: AtomicU64,
    pub rebalances: AtomicU64,
    /// Input partitions assigned to this instance now (a gauge, set after each rebalance).
    pub assigned_partitions: AtomicU64,
}

impl Stats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Why a processor stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("cannot create the {what}: {source}")]
    Client { what: &'static str, source: rdkafka::error::KafkaError },
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error("cannot create or check the changelog topic {topic}: {why}")]
    Changelog { topic: String, why: String },
    #[error("cannot restore partition {partition} of {topic}: {why}")]
    Restore { topic: String, partition: i32, why: String },
    #[error("the transform failed {attempts} times in a row at {topic}-{partition} offset {offset}: {error}")]
    Transform { topic: String, partition: i32, offset: i64, attempts: u32, error: String },
    #[error("{what} failed: {source}")]
    Kafka { what: &'static str, source: rdkafka::error::KafkaError },
}

/// Runs `call` until it succeeds or `timeout` has passed (brokers restarting, a coordinator
/// moving): the last error then.
pub(crate) fn retrying<T>(timeout: Duration, mut call: impl FnMut() -> rdkafka::error::KafkaResult<T>) -> rdkafka::error::KafkaResult<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match call() {
            Ok(v) => return Ok(v),
            Err(e) if std::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "retrying");
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A processor: run it on a thread of its own; it returns when `stop` is set (after a last
/// commit) or with the error that stopped it.
pub struct Processor<T: Transform> {
    config: ProcessorConfig,
    transform: T,
    stats: Arc<Stats>,
}

impl<T: Transform + 'static> Processor<T> {
    pub fn new(config: ProcessorConfig, transform: T) -> Self {
        Self { config, transform, stats: Arc::new(Stats::default()) }
    }

    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    pub fn run(self, stop: &AtomicBool) -> Result<(), ProcessorError> {
        engine::run(self.config, self.transform, self.stats, stop)
    }
}
