//! A transactional producer session: the one producer of a processing instance, its
//! transactions, and what happens when one fails.
//!
//! Contract:
//! - [`TransactionalSession::open`] creates the producer and initialises transactions (which
//!   fences any earlier producer of the same `transactional.id` and settles its transaction).
//! - Records are sent with [`TransactionalSession::producer`] between
//!   [`begin`](TransactionalSession::begin) and [`commit`](TransactionalSession::commit);
//!   `commit` adds the input offsets with the consumer group metadata (KIP-447) and commits.
//! - A commit either reports [`CommitOutcome::Committed`] or rolls back: an abortable error
//!   aborts the transaction; a fatal error (fenced, epoch exhausted) or a failure whose outcome
//!   is unknown (a timeout, a lost connection) is never guessed at, retried or taken as an
//!   abort: the producer is destroyed and a new one initialised with the same
//!   `transactional.id`, which makes the coordinator finish the old transaction one way or the
//!   other and fences whatever the old producer still had in flight (KAFKA-17754). Either way
//!   the caller then rewinds its input to the group's committed offsets (read with
//!   read_committed, which waits for pending transactional offsets) and rebuilds what it derived
//!   from records since: those offsets, not this session, say what was committed.

use std::time::{Duration, Instant};

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::TopicPartitionList;

use crate::client::ClientSettings;

/// The producer type of a session.
pub type SessionProducer = ThreadedProducer<DefaultProducerContext>;

/// Pause between attempts to initialise transactions while the coordinator is not ready.
const INIT_RETRY_PAUSE: Duration = Duration::from_millis(200);

/// How a commit ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The records and the offsets are committed.
    Committed,
    /// Not committed, or not known to be: rewind to the committed offsets.
    RolledBack(Rollback),
}

/// Why a transaction was rolled back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollback {
    /// An abortable error (a record that could not be delivered, a fenced group generation):
    /// the transaction was aborted and the producer is usable.
    Aborted(String),
    /// A fatal error or an unknown outcome: the producer was re-initialised.
    Reinitialised(String),
}

/// What a session cannot do.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("cannot create the transactional producer {id}: {source}")]
    Create { id: String, source: KafkaError },
    #[error("cannot initialise transactions for {id} within {waited:?}: {source}")]
    Init { id: String, waited: Duration, source: KafkaError },
    #[error("cannot begin a transaction for {id}: {source}")]
    Begin { id: String, source: KafkaError },
    #[error("no transaction is open")]
    NotOpen,
    #[error("a transaction is already open")]
    AlreadyOpen,
}

/// One transactional producer and its transactions.
pub struct TransactionalSession {
    settings: ClientSettings,
    transactional_id: String,
    transaction_timeout: Duration,
    /// Bound on each blocking call to the cluster (init, offsets, commit, abort).
    call_timeout: Duration,
    producer: SessionProducer,
    open: bool,
    reinitialisations: u64,
}

impl std::fmt::Debug for TransactionalSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalSession")
            .field("transactional_id", &self.transactional_id)
            .field("open", &self.open)
            .field("reinitialisations", &self.reinitialisations)
            .finish_non_exhaustive()
    }
}

impl TransactionalSession {
    /// Creates the producer and initialises transactions, waiting up to `call_timeout` for the
    /// coordinator.
    pub fn open(
        settings: &ClientSettings,
        transactional_id: &str,
        transaction_timeout: Duration,
        call_timeout: Duration,
    ) -> Result<Self, SessionError> {
        let producer = create(settings, transactional_id, transaction_timeout)?;
        let session = Self {
            settings: settings.clone(),
            transactional_id: transactional_id.to_string(),
            transaction_timeout,
            call_timeout,
            producer,
            open: false,
            reinitialisations: 0,
        };
        session.initialise()?;
        Ok(session)
    }

    /// The producer, to send the records of the open transaction.
    pub fn producer(&self) -> &SessionProducer {
        &self.producer
    }

    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }

    /// How many times the producer was replaced after a fatal error or an unknown outcome.
    pub fn reinitialisations(&self) -> u64 {
        self.reinitialisations
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn begin(&mut self) -> Result<(), SessionError> {
        if self.open {
            return Err(SessionError::AlreadyOpen);
        }
        if let Err(e) = self.producer.begin_transaction() {
            // A producer that went fatal between transactions (fenced while idle).
            if is_fatal(&e) {
                tracing::warn!(id = %self.transactional_id, error = %e, "the producer failed between transactions; re-initialising");
                self.reinitialise()?;
                self.producer.begin_transaction().map_err(|source| SessionError::Begin { id: self.transactional_id.clone(), source })?;
            } else {
                return Err(SessionError::Begin { id: self.transactional_id.clone(), source: e });
            }
        }
        self.open = true;
        Ok(())
    }

    /// Commits the open transaction with `offsets` (the next offsets to read, per input
    /// partition) for the group of `group`; see the module doc for what a rollback means.
    pub fn commit(&mut self, offsets: Option<(&TopicPartitionList, &ConsumerGroupMetadata)>) -> Result<CommitOutcome, SessionError> {
        if !self.open {
            return Err(SessionError::NotOpen);
        }
        self.open = false;
        if let Some((offsets, group)) = offsets {
            if let Err(e) = self.producer.send_offsets_to_transaction(offsets, group, self.call_timeout) {
                return self.roll_back(e);
            }
        }
        match self.producer.commit_transaction(self.call_timeout) {
            Ok(()) => Ok(CommitOutcome::Committed),
            Err(e) => self.roll_back(e),
        }
    }

    /// Aborts the open transaction (the application's function failed). If the abort itself
    /// fails, the producer is re-initialised, which aborts it at the coordinator.
    pub fn abort(&mut self) -> Result<Rollback, SessionError> {
        if !self.open {
            return Err(SessionError::NotOpen);
        }
        self.open = false;
        match self.producer.abort_transaction(self.call_timeout) {
            Ok(()) => Ok(Rollback::Aborted("aborted by the application".into())),
            Err(e) => {
                tracing::warn!(id = %self.transactional_id, error = %e, "abort failed; re-initialising the producer");
                self.reinitialise()?;
                Ok(Rollback::Reinitialised(e.to_string()))
            }
        }
    }

    fn roll_back(&mut self, error: KafkaError) -> Result<CommitOutcome, SessionError> {
        if requires_abort(&error) {
            match self.producer.abort_transaction(self.call_timeout) {
                Ok(()) => {
                    tracing::warn!(id = %self.transactional_id, %error, "transaction aborted");
                    return Ok(CommitOutcome::RolledBack(Rollback::Aborted(error.to_string())));
                }
                Err(abort) => tracing::warn!(id = %self.transactional_id, %error, %abort, "abort failed; re-initialising the producer"),
            }
        } else {
            tracing::warn!(id = %self.transactional_id, %error, "commit failed or its outcome is unknown; re-initialising the producer");
        }
        self.reinitialise()?;
        Ok(CommitOutcome::RolledBack(Rollback::Reinitialised(error.to_string())))
    }

    /// Replaces the producer: the old one is destroyed first, then a new one initialises
    /// transactions with the same id (a new epoch: the old producer's requests are fenced).
    fn reinitialise(&mut self) -> Result<(), SessionError> {
        self.open = false;
        let fresh = create(&self.settings, &self.transactional_id, self.transaction_timeout)?;
        drop(std::mem::replace(&mut self.producer, fresh));
        self.reinitialisations += 1;
        self.initialise()
    }

    fn initialise(&self) -> Result<(), SessionError> {
        let started = Instant::now();
        loop {
            let left = self.call_timeout.saturating_sub(started.elapsed());
            match self.producer.init_transactions(left) {
                Ok(()) => return Ok(()),
                Err(e) if !is_fatal(&e) && is_retriable(&e) && started.elapsed() + INIT_RETRY_PAUSE < self.call_timeout => {
                    tracing::debug!(id = %self.transactional_id, error = %e, "init_transactions: retrying");
                    std::thread::sleep(INIT_RETRY_PAUSE);
                }
                Err(source) => return Err(SessionError::Init { id: self.transactional_id.clone(), waited: started.elapsed(), source }),
            }
        }
    }
}

fn create(settings: &ClientSettings, transactional_id: &str, transaction_timeout: Duration) -> Result<SessionProducer, SessionError> {
    settings
        .transactional_producer(transactional_id, transaction_timeout)
        .create()
        .map_err(|source| SessionError::Create { id: transactional_id.to_string(), source })
}

fn is_fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(r) if r.is_fatal())
}

fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(r) if r.is_retriable())
}

fn requires_abort(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(r) if r.txn_requires_abort() && !r.is_fatal())
}
