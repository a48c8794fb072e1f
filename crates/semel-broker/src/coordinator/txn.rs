//! The transaction coordinator (KIP-98), after Kafka's `TransactionCoordinator`,
//! `TransactionMetadata` and `TransactionStateManager`.
//!
//! Each transactional id has metadata (producer id and epoch, timeout, state, the partitions
//! and groups of the ongoing transaction) kept in the internal log `__transaction_state`.
//! Every transition is written there and made durable before the coordinator answers; the log
//! is replayed at start-up through [`TxnCoordinator::replay`], the function live writes use.
//! A transaction found in PrepareCommit or PrepareAbort at start-up is completed again: its
//! markers reach every partition (writing a marker twice is harmless).
//!
//! States, and the states each may be entered from (Kafka's table):
//!
//! | state | entered from |
//! |---|---|
//! | Empty | Empty, CompleteCommit, CompleteAbort |
//! | Ongoing | Ongoing, Empty, CompleteCommit, CompleteAbort |
//! | PrepareCommit | Ongoing |
//! | PrepareAbort | Ongoing, PrepareEpochFence |
//! | CompleteCommit | PrepareCommit |
//! | CompleteAbort | PrepareAbort |
//! | Dead | Empty, CompleteCommit, CompleteAbort |
//! | PrepareEpochFence | Ongoing |
//!
//! Thread-safety: one std mutex over all transactional ids, held for in-memory work and the
//! append of a record; fsyncs are awaited outside it. A transition whose record is not yet
//! durable marks the id `pending`, and requests for it answer CONCURRENT_TRANSACTIONS.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use super::internal_log::{InternalLog, KeyValue, LogEntry};
use crate::storage::io::LogDirHealth;
use crate::storage::partition::AppendError;

/// Kafka error codes this module answers.
pub mod errors {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const INVALID_REQUEST: i16 = 42;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;
}
use errors::*;

const LOG_NAME: &str = "__transaction_state";
/// An epoch at or above this is exhausted: the next one comes with a new producer id.
const MAX_EPOCH: i16 = 32766;

/// Transaction coordinator settings (Kafka's `transaction.*`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TxnConfig {
    pub max_timeout_ms: i32,
    pub id_expiration_ms: i64,
    /// How often open transactions are checked against their timeout (Kafka: 10 s).
    pub abort_timed_out_interval_ms: u64,
    /// Bound on the number of transactional ids.
    pub max_transactional_ids: usize,
    /// Segment size of the transaction state log, which the cleaner compacts (Kafka's
    /// `transaction.state.log.segment.bytes`).
    pub state_log_segment_bytes: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        Self {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3600 * 1000,
            abort_timed_out_interval_ms: 1_000,
            max_transactional_ids: 100_000,
            state_log_segment_bytes: 100 * 1024 * 1024,
        }
    }
}

/// Transaction states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    /// Kafka's name, as DescribeTransactions and ListTransactions report it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Whether `self` may be entered from `from`.
    pub fn can_follow(self, from: Self) -> bool {
        use TxnState::*;
        match self {
            Empty => matches!(from, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(from, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => matches!(from, Ongoing),
            PrepareAbort => matches!(from, Ongoing | PrepareEpochFence),
            CompleteCommit => matches!(from, PrepareCommit),
            CompleteAbort => matches!(from, PrepareAbort),
            Dead => matches!(from, Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => matches!(from, Ongoing),
        }
    }
}

/// A transactional id's metadata; also its record in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last exhaustion of the epoch (-1: none).
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1: none), to recognise a retried InitProducerId.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    pub txn_start_ms: i64,
    pub last_update_ms: i64,
}

#[derive(Debug)]
struct Entry {
    metadata: TxnMetadata,
    /// A transition's record is written but not yet durable.
    pending: bool,
}

/// Work left after a transaction entered PrepareCommit or PrepareAbort: write its markers,
/// then complete it.
#[derive(Debug, Clone)]
pub struct Completion {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub partitions: Vec<(String, i32)>,
    pub groups: Vec<String>,
}

/// What a write returns: the offset to wait for before answering.
pub type Durable = Result<i64, AppendError>;

/// The answer to InitProducerId.
#[derive(Debug)]
pub enum InitOutcome {
    /// Answer now (error, producer id, epoch).
    Now(i16, i64, i16),
    /// Answer after the record is durable.
    AfterWrite(Durable, i64, i16),
    /// An open transaction is being aborted: answer CONCURRENT_TRANSACTIONS after the record
    /// is durable, and run the completion.
    Aborting(Durable, Completion),
}

/// KIP-890 part 1: what the coordinator says of a transactional batch's partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The partition is in the producer's ongoing transaction.
    Added,
    /// The producer's epoch is older than its transactional id's.
    StaleEpoch,
    /// Not part of an ongoing transaction of this producer.
    NotAdded,
}

/// The answer to EndTxn.
#[derive(Debug)]
pub enum EndOutcome {
    Now(i16),
    /// PrepareCommit/PrepareAbort was written: answer NONE once durable, then complete.
    Prepared(Durable, Completion),
}

/// The transaction coordinator. Thread-safe.
#[derive(Debug)]
pub struct TxnCoordinator {
    ids: Mutex<HashMap<String, Entry>>,
    log: InternalLog,
    config: TxnConfig,
}

fn key(transactional_id: &str) -> Vec<u8> {
    transactional_id.as_bytes().to_vec()
}

fn record(metadata: &TxnMetadata) -> KeyValue {
    KeyValue { key: key(&metadata.transactional_id), value: Some(serde_json::to_vec(metadata).expect("metadata serialises")) }
}

impl TxnCoordinator {
    /// The coordinator's internal log (the cleaner compacts it).
    pub(crate) fn internal_log(&self) -> &InternalLog {
        &self.log
    }

    /// Opens the transaction log, replays it, and returns the transactions to complete.
    pub fn open(data_dir: &std::path::Path, health: Arc<LogDirHealth>, config: TxnConfig) -> std::io::Result<(Self, Vec<Completion>)> {
        let (log, records) = InternalLog::open(data_dir, LOG_NAME, health, config.state_log_segment_bytes)?;
        let this = Self { ids: Mutex::new(HashMap::new()), log, config };
        let mut completions = Vec::new();
        {
            let mut ids = this.lock();
            for entry in &records {
                if let LogEntry::Record(r) = entry {
                    Self::replay(&mut ids, r);
                }
            }
            for entry in ids.values() {
                let m = &entry.metadata;
                if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
                    completions.push(Self::completion_of(m));
                }
            }
            tracing::info!(transactional_ids = ids.len(), to_complete = completions.len(), "loaded transaction state");
        }
        Ok((this, completions))
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.ids.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Applies one record of the transaction log (start-up and live writes).
    fn replay(ids: &mut HashMap<String, Entry>, r: &KeyValue) {
        let id = String::from_utf8_lossy(&r.key).into_owned();
        match r.value.as_deref().map(serde_json::from_slice::<TxnMetadata>) {
            Some(Ok(metadata)) => {
                ids.insert(id, Entry { metadata, pending: false });
            }
            Some(Err(_)) => tracing::warn!(transactional_id = id, "skipping an unreadable transaction record"),
            None => {
                ids.remove(&id);
            }
        }
    }

    /// Writes a transition: checks it against the state table, appends the record, applies it
    /// (marking the id pending until the caller saw it durable).
    fn transition(&self, ids: &mut HashMap<String, Entry>, next: TxnMetadata) -> Durable {
        if let Some(entry) = ids.get(&next.transactional_id) {
            assert!(
                next.state.can_follow(entry.metadata.state),
                "illegal transaction transition {:?} -> {:?}",
                entry.metadata.state,
                next.state
            );
        }
        let end = self.log.append(&[record(&next)])?;
        let id = next.transactional_id.clone();
        ids.insert(id, Entry { metadata: next, pending: true });
        Ok(end)
    }

    /// Waits until a transition is durable and clears the pending mark.
    pub async fn wait_durable(&self, transactional_id: &str, durable: Durable) -> Result<(), AppendError> {
        let result = match durable {
            Ok(end) => self.log.flush_to(end).await,
            Err(e) => Err(e),
        };
        if let Some(entry) = self.lock().get_mut(transactional_id) {
            entry.pending = false;
        }
        result
    }

    /// Makes a write durable without holding the transactional id's other requests back
    /// (CompleteCommit/CompleteAbort, which the next write's fsync would cover anyway).
    pub async fn flush(&self, durable: Durable) -> Result<(), AppendError> {
        self.log.flush_to(durable?).await
    }

    fn completion_of(m: &TxnMetadata) -> Completion {
        Completion {
            transactional_id: m.transactional_id.clone(),
            producer_id: m.producer_id,
            producer_epoch: m.producer_epoch,
            commit: m.state == TxnState::PrepareCommit,
            partitions: m.partitions.iter().cloned().collect(),
            groups: m.groups.iter().cloned().collect(),
        }
    }

    /// InitProducerId with a transactional id. `expected` is the client's (producer id, epoch)
    /// from v3 on (KIP-360), or (-1, -1).
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: (i64, i16),
        next_producer_id: impl Fn() -> Option<i64>,
    ) -> InitOutcome {
        if transactional_id.is_empty() {
            return InitOutcome::Now(INVALID_REQUEST, -1, -1);
        }
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return InitOutcome::Now(INVALID_TRANSACTION_TIMEOUT, -1, -1);
        }
        let now = crate::now_ms();
        let mut ids = self.lock();
        let Some(entry) = ids.get(transactional_id) else {
            if ids.len() >= self.config.max_transactional_ids {
                return InitOutcome::Now(COORDINATOR_NOT_AVAILABLE, -1, -1);
            }
            let Some(producer_id) = next_producer_id() else { return InitOutcome::Now(KAFKA_STORAGE_ERROR, -1, -1) };
            let metadata = TxnMetadata {
                transactional_id: transactional_id.to_string(),
                producer_id,
                last_producer_id: -1,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                groups: BTreeSet::new(),
                txn_start_ms: -1,
                last_update_ms: now,
            };
            let durable = self.transition(&mut ids, metadata);
            return InitOutcome::AfterWrite(durable, producer_id, 0);
        };
        if entry.pending {
            return InitOutcome::Now(CONCURRENT_TRANSACTIONS, -1, -1);
        }
        let m = entry.metadata.clone();
        let (expected_pid, expected_epoch) = expected;
        if expected_pid != -1 {
            let known = expected_pid == m.producer_id || (expected_pid == m.last_producer_id && m.last_producer_id != -1);
            if !known {
                return InitOutcome::Now(PRODUCER_FENCED, -1, -1);
            }
            if expected_pid == m.producer_id
                && expected_epoch == m.last_producer_epoch
                && m.last_producer_epoch != -1
                && expected_epoch != m.producer_epoch
                || expected_pid == m.last_producer_id && expected_epoch == m.last_producer_epoch
            {
                // A retry of an InitProducerId that already bumped the epoch: same answer.
                if matches!(m.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort) {
                    return InitOutcome::Now(NONE, m.producer_id, m.producer_epoch);
                }
            } else if expected_pid == m.producer_id && expected_epoch != m.producer_epoch {
                return InitOutcome::Now(PRODUCER_FENCED, -1, -1);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                InitOutcome::Now(CONCURRENT_TRANSACTIONS, -1, -1)
            }
            TxnState::Dead => InitOutcome::Now(CONCURRENT_TRANSACTIONS, -1, -1),
            TxnState::Ongoing => {
                // Fence the previous producer and abort its transaction; the client retries.
                let mut next = m.clone();
                next.last_producer_epoch = m.producer_epoch;
                next.producer_epoch = m.producer_epoch.saturating_add(1);
                next.state = TxnState::PrepareAbort;
                next.last_update_ms = now;
                let completion = Self::completion_of(&next);
                let durable = self.transition(&mut ids, next);
                InitOutcome::Aborting(durable, completion)
            }
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort => {
                let mut next = m.clone();
                if m.producer_epoch >= MAX_EPOCH {
                    let Some(producer_id) = next_producer_id() else { return InitOutcome::Now(KAFKA_STORAGE_ERROR, -1, -1) };
                    next.last_producer_id = m.producer_id;
                    next.producer_id = producer_id;
                    next.producer_epoch = 0;
                } else {
                    next.producer_epoch = m.producer_epoch + 1;
                }
                next.last_producer_epoch = m.producer_epoch;
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.groups.clear();
                next.txn_start_ms = -1;
                next.last_update_ms = now;
                let (pid, epoch) = (next.producer_id, next.producer_epoch);
                let durable = self.transition(&mut ids, next);
                InitOutcome::AfterWrite(durable, pid, epoch)
            }
        }
    }

    /// Common checks of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn.
    fn check_producer(entry: Option<&Entry>, producer_id: i64, epoch: i16, version_fenced: bool) -> Result<&Entry, i16> {
        let Some(entry) = entry else { return Err(INVALID_PRODUCER_ID_MAPPING) };
        let m = &entry.metadata;
        if m.producer_id != producer_id {
            return Err(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != epoch {
            // KIP-588: PRODUCER_FENCED from the versions that know it.
            return Err(if version_fenced { PRODUCER_FENCED } else { INVALID_PRODUCER_EPOCH });
        }
        if entry.pending || matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence) {
            return Err(CONCURRENT_TRANSACTIONS);
        }
        Ok(entry)
    }

    /// AddPartitionsToTxn (v0-v3): per partition errors and the write to wait for.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        version_fenced: bool,
        partitions: &[(String, i32)],
        exists: impl Fn(&str, i32) -> bool,
    ) -> (Vec<i16>, Option<Durable>) {
        let mut ids = self.lock();
        let m = match Self::check_producer(ids.get(transactional_id), producer_id, epoch, version_fenced) {
            Ok(entry) => entry.metadata.clone(),
            Err(error) => return (vec![error; partitions.len()], None),
        };
        if m.state == TxnState::Dead {
            return (vec![INVALID_TXN_STATE; partitions.len()], None);
        }
        let unknown: Vec<bool> = partitions.iter().map(|(t, p)| !exists(t, *p)).collect();
        if unknown.iter().any(|u| *u) {
            return (unknown.iter().map(|u| if *u { UNKNOWN_TOPIC_OR_PARTITION } else { OPERATION_NOT_ATTEMPTED }).collect(), None);
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return (vec![NONE; partitions.len()], None);
        }
        let mut next = m.clone();
        if m.state != TxnState::Ongoing {
            next.txn_start_ms = crate::now_ms();
            next.partitions.clear();
            next.groups.clear();
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = crate::now_ms();
        let durable = self.transition(&mut ids, next);
        (vec![NONE; partitions.len()], Some(durable))
    }

    /// AddOffsetsToTxn: the group's offsets join the transaction.
    pub fn add_offsets(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        version_fenced: bool,
        group_id: &str,
    ) -> Result<Option<Durable>, i16> {
        let mut ids = self.lock();
        let m = Self::check_producer(ids.get(transactional_id), producer_id, epoch, version_fenced)?.metadata.clone();
        if m.state == TxnState::Dead {
            return Err(INVALID_TXN_STATE);
        }
        if m.state == TxnState::Ongoing && m.groups.contains(group_id) {
            return Ok(None);
        }
        let mut next = m.clone();
        if m.state != TxnState::Ongoing {
            next.txn_start_ms = crate::now_ms();
            next.partitions.clear();
            next.groups.clear();
        }
        next.state = TxnState::Ongoing;
        next.groups.insert(group_id.to_string());
        next.last_update_ms = crate::now_ms();
        Ok(Some(self.transition(&mut ids, next)))
    }

    /// EndTxn.
    pub fn end_txn(&self, transactional_id: &str, producer_id: i64, epoch: i16, version_fenced: bool, commit: bool) -> EndOutcome {
        let mut ids = self.lock();
        let Some(entry) = ids.get(transactional_id) else { return EndOutcome::Now(INVALID_PRODUCER_ID_MAPPING) };
        let m = entry.metadata.clone();
        if m.producer_id != producer_id {
            return EndOutcome::Now(INVALID_PRODUCER_ID_MAPPING);
        }
        if m.producer_epoch != epoch {
            return EndOutcome::Now(if version_fenced { PRODUCER_FENCED } else { INVALID_PRODUCER_EPOCH });
        }
        if entry.pending {
            return EndOutcome::Now(CONCURRENT_TRANSACTIONS);
        }
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = m.clone();
                next.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                next.last_update_ms = crate::now_ms();
                let completion = Self::completion_of(&next);
                EndOutcome::Prepared(self.transition(&mut ids, next), completion)
            }
            // A retry of an EndTxn that completed: the same outcome again.
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => EndOutcome::Now(NONE),
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => EndOutcome::Now(CONCURRENT_TRANSACTIONS),
            _ => EndOutcome::Now(INVALID_TXN_STATE),
        }
    }

    /// Marks a transaction CompleteCommit/CompleteAbort after its markers are durable.
    pub fn complete(&self, completion: &Completion) -> Option<Durable> {
        let mut ids = self.lock();
        let m = ids.get(&completion.transactional_id)?.metadata.clone();
        let expected = if completion.commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
        if m.state != expected || m.producer_id != completion.producer_id || m.producer_epoch != completion.producer_epoch {
            return None;
        }
        let mut next = m;
        next.state = if completion.commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
        next.partitions.clear();
        next.groups.clear();
        next.last_update_ms = crate::now_ms();
        let durable = self.transition(&mut ids, next);
        // Not pending: see `markers::complete` (the next write's fsync covers this one).
        if let Some(entry) = ids.get_mut(&completion.transactional_id) {
            entry.pending = false;
        }
        Some(durable)
    }

    /// KIP-890 part 1: whether `producer_id`/`epoch` may write transactional data to the
    /// partition (it was added to the producer's ongoing transaction).
    pub fn verify_partition(&self, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> bool {
        Self::verified(&self.lock(), producer_id, epoch, topic, partition)
    }

    fn verified(ids: &HashMap<String, Entry>, producer_id: i64, epoch: i16, topic: &str, partition: i32) -> bool {
        ids.values().any(|e| {
            let m = &e.metadata;
            m.producer_id == producer_id
                && m.producer_epoch == epoch
                && m.state == TxnState::Ongoing
                && m.partitions.contains(&(topic.to_string(), partition))
        })
    }

    /// Runs `append` with the verification result while holding the coordinator's lock, so
    /// that no transition (EndTxn, a timeout abort) can slip between the check and the write:
    /// a verified batch always lands before its transaction's markers.
    pub fn with_verified<R>(&self, producer_id: i64, epoch: i16, topic: &str, partition: i32, append: impl FnOnce(Verification) -> R) -> R {
        let ids = self.lock();
        let verification = if Self::verified(&ids, producer_id, epoch, topic, partition) {
            Verification::Added
        } else if ids.values().any(|e| e.metadata.producer_id == producer_id && e.metadata.producer_epoch > epoch) {
            // A fenced producer (its id now has a newer epoch): INVALID_PRODUCER_EPOCH, as
            // Kafka's verification answers, rather than a transaction-state error.
            Verification::StaleEpoch
        } else {
            Verification::NotAdded
        };
        append(verification)
    }

    /// TxnOffsetCommit: runs `commit` while holding the coordinator's lock if `producer_id`/
    /// `epoch` is the transactional id's current producer and `group` is in its ongoing
    /// transaction (AddOffsetsToTxn), else answers the error code. Held across the write, so
    /// no transition (EndTxn, fencing by InitProducerId, a timeout abort) slips between the
    /// check and the write: the offsets always land before the transaction's outcome reaches
    /// the group, which then commits or drops them. (Checked first and written after, a
    /// commit racing an abort left offsets pending for good, and OffsetFetch require_stable
    /// answered UNSTABLE_OFFSET_COMMIT for that partition from then on.)
    pub fn with_offsets_verified<R>(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        version_fenced: bool,
        group: &str,
        commit: impl FnOnce(Option<i16>) -> R,
    ) -> R {
        let ids = self.lock();
        let error = match ids.get(transactional_id).map(|e| &e.metadata) {
            None => Some(errors::INVALID_PRODUCER_ID_MAPPING),
            Some(m) if m.producer_id != producer_id => Some(errors::INVALID_PRODUCER_ID_MAPPING),
            Some(m) if m.producer_epoch != epoch => {
                Some(if version_fenced { errors::PRODUCER_FENCED } else { errors::INVALID_PRODUCER_EPOCH })
            }
            Some(m) if m.state != TxnState::Ongoing || !m.groups.contains(group) => Some(errors::INVALID_TXN_STATE),
            Some(_) => None,
        };
        commit(error)
    }

    /// Aborts transactions open longer than their timeout, bumping the epoch so the producer
    /// is fenced; expires idle transactional ids. Returns the aborts to complete, each with the
    /// write to wait for first.
    pub fn tick(&self) -> Vec<(Durable, Completion)> {
        let now = crate::now_ms();
        let mut ids = self.lock();
        let timed_out: Vec<TxnMetadata> = ids
            .values()
            .filter(|e| {
                !e.pending && e.metadata.state == TxnState::Ongoing && now - e.metadata.txn_start_ms > i64::from(e.metadata.timeout_ms)
            })
            .map(|e| e.metadata.clone())
            .collect();
        let mut aborts = Vec::new();
        for m in timed_out {
            tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id, epoch = m.producer_epoch, "aborting a transaction past its timeout");
            let mut next = m.clone();
            next.last_producer_epoch = m.producer_epoch;
            next.producer_epoch = m.producer_epoch.saturating_add(1);
            next.state = TxnState::PrepareAbort;
            next.last_update_ms = now;
            let completion = Self::completion_of(&next);
            aborts.push((self.transition(&mut ids, next), completion));
        }
        let expired: Vec<String> = ids
            .values()
            .filter(|e| {
                !e.pending
                    && matches!(e.metadata.state, TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort)
                    && now - e.metadata.last_update_ms > self.config.id_expiration_ms
            })
            .map(|e| e.metadata.transactional_id.clone())
            .collect();
        for id in expired {
            let tombstone = KeyValue { key: key(&id), value: None };
            if self.log.append(&[tombstone]).is_ok() {
                ids.remove(&id);
                tracing::info!(transactional_id = id, "transactional id expired");
            }
        }
        aborts
    }

    /// Metadata of one id (DescribeTransactions).
    pub fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.lock().get(transactional_id).map(|e| e.metadata.clone())
    }

    /// Metadata of every id (ListTransactions).
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut list: Vec<TxnMetadata> = self.lock().values().map(|e| e.metadata.clone()).collect();
        list.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        list
    }

    /// How often `tick` should run.
    pub fn tick_interval_ms(&self) -> u64 {
        self.config.abort_timed_out_interval_ms
    }

    /// Flushes the log (clean shutdown).
    pub async fn close(&self) {
        self.log.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TxnState::*;

    #[test]
    fn the_transition_table_is_kafkas() {
        let all = [Empty, Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Dead, PrepareEpochFence];
        let allowed: &[(TxnState, &[TxnState])] = &[
            (Empty, &[Empty, CompleteCommit, CompleteAbort]),
            (Ongoing, &[Ongoing, Empty, CompleteCommit, CompleteAbort]),
            (PrepareCommit, &[Ongoing]),
            (PrepareAbort, &[Ongoing, PrepareEpochFence]),
            (CompleteCommit, &[PrepareCommit]),
            (CompleteAbort, &[PrepareAbort]),
            (Dead, &[Empty, CompleteCommit, CompleteAbort]),
            (PrepareEpochFence, &[Ongoing]),
        ];
        for (to, froms) in allowed {
            for from in all {
                assert_eq!(to.can_follow(from), froms.contains(&from), "{from:?} -> {to:?}");
            }
        }
    }

    fn coordinator() -> (tempfile::TempDir, TxnCoordinator) {
        let dir = tempfile::tempdir().expect("tmp");
        let (c, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), TxnConfig::default()).expect("open");
        (dir, c)
    }

    fn settle(c: &TxnCoordinator, id: &str) {
        if let Some(e) = c.lock().get_mut(id) {
            e.pending = false;
        }
    }

    fn init(c: &TxnCoordinator, id: &str, expected: (i64, i16)) -> (i16, i64, i16) {
        static NEXT_ID: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(100);
        let outcome = c.init_producer_id(id, 60_000, expected, || Some(NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)));
        settle(c, id);
        match outcome {
            InitOutcome::Now(e, p, ep) => (e, p, ep),
            InitOutcome::AfterWrite(_, p, ep) => (NONE, p, ep),
            InitOutcome::Aborting(..) => (CONCURRENT_TRANSACTIONS, -1, -1),
        }
    }

    #[test]
    fn init_producer_id_bumps_epochs_and_checks_timeouts() {
        let (_dir, c) = coordinator();
        assert_eq!(c.init_producer_id("t", 0, (-1, -1), || Some(1)).matches_now(), Some(INVALID_TRANSACTION_TIMEOUT));
        assert_eq!(c.init_producer_id("t", 900_001, (-1, -1), || Some(1)).matches_now(), Some(INVALID_TRANSACTION_TIMEOUT));
        assert_eq!(c.init_producer_id("", 1000, (-1, -1), || Some(1)).matches_now(), Some(INVALID_REQUEST));
        let (e, pid, epoch) = init(&c, "t", (-1, -1));
        assert_eq!((e, epoch), (NONE, 0));
        assert_eq!(init(&c, "t", (-1, -1)), (NONE, pid, 1), "a second producer bumps the epoch");
        // KIP-360: the current producer's own id and epoch bump; a retry gets the same answer;
        // an unknown producer id is fenced.
        assert_eq!(init(&c, "t", (pid, 1)), (NONE, pid, 2));
        assert_eq!(init(&c, "t", (pid, 1)), (NONE, pid, 2), "retry of the bump");
        assert_eq!(init(&c, "t", (pid + 50, 0)).0, PRODUCER_FENCED);
    }

    #[test]
    fn end_txn_follows_the_state_machine() {
        let (_dir, c) = coordinator();
        let (_, pid, epoch) = init(&c, "t", (-1, -1));
        assert!(matches!(c.end_txn("t", pid, epoch, true, true), EndOutcome::Now(INVALID_TXN_STATE)), "EndTxn in Empty");
        let (errors, _) = c.add_partitions("t", pid, epoch, true, &[("a".into(), 0)], |_, _| true);
        assert_eq!(errors, [NONE]);
        settle(&c, "t");
        assert!(c.add_partitions("t", pid, epoch, true, &[("a".into(), 0)], |_, _| true).1.is_none(), "already added: no write");
        assert_eq!(c.add_partitions("t", pid + 1, epoch, true, &[("a".into(), 0)], |_, _| true).0, [INVALID_PRODUCER_ID_MAPPING]);
        assert_eq!(c.add_partitions("t", pid, epoch + 1, true, &[("a".into(), 0)], |_, _| true).0, [PRODUCER_FENCED]);
        assert_eq!(
            c.add_partitions("t", pid, epoch + 1, false, &[("a".into(), 0)], |_, _| true).0,
            [INVALID_PRODUCER_EPOCH],
            "KIP-588: v0-1"
        );
        assert_eq!(
            c.add_partitions("t", pid, epoch, true, &[("b".into(), 0), ("a".into(), 1)], |t, _| t == "a").0,
            [UNKNOWN_TOPIC_OR_PARTITION, OPERATION_NOT_ATTEMPTED]
        );
        assert!(c.verify_partition(pid, epoch, "a", 0));
        assert!(!c.verify_partition(pid, epoch, "a", 1));
        let completion = match c.end_txn("t", pid, epoch, true, true) {
            EndOutcome::Prepared(_, completion) => completion,
            other => panic!("{other:?}"),
        };
        assert!(
            matches!(c.end_txn("t", pid, epoch, true, true), EndOutcome::Now(CONCURRENT_TRANSACTIONS)),
            "while the prepare is not durable"
        );
        settle(&c, "t");
        assert!(matches!(c.end_txn("t", pid, epoch, true, true), EndOutcome::Now(CONCURRENT_TRANSACTIONS)), "PrepareCommit retried");
        assert!(matches!(c.end_txn("t", pid, epoch, true, false), EndOutcome::Now(INVALID_TXN_STATE)), "the opposite outcome");
        assert!(!c.verify_partition(pid, epoch, "a", 0), "no more data once prepared");
        let _ = c.complete(&completion).expect("complete");
        settle(&c, "t");
        assert!(matches!(c.end_txn("t", pid, epoch, true, true), EndOutcome::Now(NONE)), "retry after completion");
        assert!(matches!(c.end_txn("t", pid, epoch, true, false), EndOutcome::Now(INVALID_TXN_STATE)));
    }

    #[test]
    fn txn_offsets_are_accepted_only_while_the_transaction_that_added_the_group_is_ongoing() {
        let (_dir, c) = coordinator();
        let (_, pid, epoch) = init(&c, "t", (-1, -1));
        let check = |pid: i64, epoch: i16, group: &str| c.with_offsets_verified("t", pid, epoch, true, group, |e| e.unwrap_or(NONE));
        assert_eq!(check(pid, epoch, "g"), INVALID_TXN_STATE, "no transaction");
        c.add_offsets("t", pid, epoch, true, "g").expect("add offsets");
        settle(&c, "t");
        assert_eq!(check(pid, epoch, "g"), NONE);
        assert_eq!(check(pid, epoch, "other"), INVALID_TXN_STATE, "a group not added");
        assert_eq!(check(pid + 1, epoch, "g"), INVALID_PRODUCER_ID_MAPPING);
        assert_eq!(check(pid, epoch + 1, "g"), PRODUCER_FENCED);
        assert_eq!(c.with_offsets_verified("nobody", pid, epoch, true, "g", |e| e), Some(INVALID_PRODUCER_ID_MAPPING));
        // Once the transaction is prepared (its outcome about to reach the group), no offset
        // may join it: it would stay pending for good.
        let completion = match c.end_txn("t", pid, epoch, true, false) {
            EndOutcome::Prepared(_, completion) => completion,
            other => panic!("{other:?}"),
        };
        assert_eq!(check(pid, epoch, "g"), INVALID_TXN_STATE, "PrepareAbort");
        settle(&c, "t");
        let _ = c.complete(&completion).expect("complete");
        settle(&c, "t");
        assert_eq!(check(pid, epoch, "g"), INVALID_TXN_STATE, "CompleteAbort");
        // Fenced by a new InitProducerId while ongoing: the old producer's offsets are refused.
        c.add_offsets("t", pid, epoch, true, "g").expect("add offsets");
        settle(&c, "t");
        match c.init_producer_id("t", 60_000, (-1, -1), || Some(999)) {
            InitOutcome::Aborting(..) => assert_eq!(check(pid, epoch, "g"), PRODUCER_FENCED),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn init_during_an_ongoing_transaction_fences_and_aborts_it() {
        let (_dir, c) = coordinator();
        let (_, pid, epoch) = init(&c, "t", (-1, -1));
        c.add_partitions("t", pid, epoch, true, &[("a".into(), 0)], |_, _| true);
        settle(&c, "t");
        let counter = || Some(999);
        match c.init_producer_id("t", 60_000, (-1, -1), counter) {
            InitOutcome::Aborting(_, completion) => {
                assert!(!completion.commit);
                assert_eq!(completion.producer_epoch, epoch + 1, "the abort carries the bumped epoch");
                settle(&c, "t");
                assert!(matches!(c.end_txn("t", pid, epoch, true, true), EndOutcome::Now(PRODUCER_FENCED)), "the old producer is fenced");
                assert_eq!(init(&c, "t", (-1, -1)).0, CONCURRENT_TRANSACTIONS, "until the abort completes");
                let _ = c.complete(&completion).expect("complete");
                settle(&c, "t");
                assert_eq!(init(&c, "t", (-1, -1)), (NONE, pid, epoch + 2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timed_out_transactions_are_aborted_with_a_bumped_epoch() {
        let dir = tempfile::tempdir().expect("tmp");
        let (c, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), TxnConfig::default()).expect("open");
        let outcome = c.init_producer_id("t", 1, (-1, -1), || Some(5));
        assert!(matches!(outcome, InitOutcome::AfterWrite(..)));
        settle(&c, "t");
        c.add_partitions("t", 5, 0, true, &[("a".into(), 0)], |_, _| true);
        settle(&c, "t");
        std::thread::sleep(std::time::Duration::from_millis(20));
        let aborts = c.tick();
        assert_eq!(aborts.len(), 1);
        assert_eq!(aborts[0].1.producer_epoch, 1);
        assert_eq!(c.describe("t").map(|m| m.state), Some(PrepareAbort));
    }

    #[test]
    fn epochs_exhausted_get_a_new_producer_id() {
        let (_dir, c) = coordinator();
        let (_, pid, _) = init(&c, "t", (-1, -1));
        c.lock().get_mut("t").expect("t").metadata.producer_epoch = MAX_EPOCH;
        let (e, new_pid, epoch) = init(&c, "t", (-1, -1));
        assert_eq!((e, epoch), (NONE, 0));
        assert_ne!(new_pid, pid);
        assert_eq!(c.describe("t").map(|m| m.last_producer_id), Some(pid));
    }

    #[test]
    fn state_survives_a_reopen_and_prepared_transactions_are_completed() {
        let dir = tempfile::tempdir().expect("tmp");
        {
            let (c, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), TxnConfig::default()).expect("open");
            let _ = c.init_producer_id("t", 60_000, (-1, -1), || Some(7));
            settle(&c, "t");
            c.add_partitions("t", 7, 0, true, &[("a".into(), 0), ("b".into(), 2)], |_, _| true);
            settle(&c, "t");
            assert!(matches!(c.end_txn("t", 7, 0, true, true), EndOutcome::Prepared(..)));
        }
        let (c, completions) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), TxnConfig::default()).expect("reopen");
        assert_eq!(completions.len(), 1);
        assert!(completions[0].commit);
        assert_eq!(completions[0].partitions, vec![("a".to_string(), 0), ("b".to_string(), 2)]);
        assert_eq!(c.describe("t").map(|m| m.state), Some(PrepareCommit));
    }

    impl InitOutcome {
        fn matches_now(&self) -> Option<i16> {
            match self {
                InitOutcome::Now(e, _, _) => Some(*e),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn idle_transactional_ids_expire_and_open_ones_do_not() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = TxnConfig { id_expiration_ms: 10, ..TxnConfig::default() };
        let (c, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("open");
        for (id, pid) in [("idle", 1), ("busy", 2)] {
            assert!(matches!(c.init_producer_id(id, 60_000, (-1, -1), || Some(pid)), InitOutcome::AfterWrite(..)));
            c.lock().get_mut(id).expect("id").pending = false;
        }
        c.add_partitions("busy", 2, 0, true, &[("a".into(), 0)], |_, _| true);
        c.lock().get_mut("busy").expect("busy").pending = false;
        std::thread::sleep(std::time::Duration::from_millis(30));
        assert!(c.tick().is_empty(), "no transaction is past its 60 s timeout");
        assert!(c.describe("idle").is_none(), "the idle id expired");
        assert!(c.describe("busy").is_some(), "an id with an open transaction does not");
        drop(c);
        let (reopened, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("reopen");
        assert!(reopened.describe("idle").is_none(), "the expiry is durable");
    }

    #[test]
    fn a_compacted_transaction_log_replays_to_the_same_state() {
        use crate::storage::cleaner::{self, CleanerLimits};
        let dir = tempfile::tempdir().expect("tmp");
        let config = TxnConfig { state_log_segment_bytes: 8192, ..TxnConfig::default() };
        let (c, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("open");
        let settle = |c: &TxnCoordinator, id: &str| c.lock().get_mut(id).expect("id").pending = false;
        let ids: Vec<String> = (0..20).map(|i| format!("txn-{i}")).collect();
        for (i, id) in ids.iter().enumerate() {
            assert!(matches!(c.init_producer_id(id, 60_000, (-1, -1), || Some(100 + i as i64)), InitOutcome::AfterWrite(..)));
            settle(&c, id);
            for round in 0..30 {
                let pid = 100 + i as i64;
                c.add_partitions(id, pid, 0, true, &[("t".into(), round % 3)], |_, _| true);
                settle(&c, id);
                // The last round of odd ids stays open.
                if round == 29 && i % 2 == 1 {
                    break;
                }
                let EndOutcome::Prepared(_, completion) = c.end_txn(id, pid, 0, true, round % 4 != 0) else { panic!("end_txn") };
                settle(&c, id);
                c.complete(&completion).expect("complete").expect("written");
                settle(&c, id);
            }
        }
        let summary = |c: &TxnCoordinator| -> Vec<String> {
            ids.iter()
                .map(|id| {
                    let m = c.describe(id).expect("known");
                    format!("{} {} {:?} {:?}", m.producer_id, m.producer_epoch, m.state, m.partitions)
                })
                .collect()
        };
        let before = summary(&c);
        let (partition, settings) = c.internal_log().partition();
        let size_before = partition.lock_log().size_bytes();
        partition.lock_log().roll().expect("roll");
        let compaction = settings.compaction.expect("compacted");
        let limits = CleanerLimits { dedupe_buffer_bytes: 1 << 20, io_max_bytes_per_second: 0 };
        cleaner::clean(
            partition,
            &compaction,
            settings.log.segment_bytes,
            4096,
            &limits,
            &std::sync::atomic::AtomicBool::new(false),
            crate::now_ms(),
        )
        .expect("clean")
        .expect("due");
        let size_after = partition.lock_log().size_bytes();
        assert!(size_after * 10 < size_before, "compacted from {size_before} to {size_after} bytes");
        drop(c);
        let (reopened, _) = TxnCoordinator::open(dir.path(), Arc::new(LogDirHealth::default()), config).expect("reopen");
        assert_eq!(summary(&reopened), before, "the same transactions after replaying the compacted log");
        assert!(before[1].contains("Ongoing") && before[0].contains("CompleteCommit"));
    }
}
