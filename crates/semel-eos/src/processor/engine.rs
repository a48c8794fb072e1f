//! The processing loop: a consumer of the application's group (read_committed, offsets only
//! in transactions), one producer (a [`TransactionalSession`] under exactly-once), the stores,
//! and what happens at commits, failures and rebalances. See the module doc of
//! [`super`] for the contract.
//!
//! Rebalance callbacks run inside `poll`, on this thread; the engine sits behind a mutex that
//! the loop holds only between polls, so a callback can commit (before partitions are revoked)
//! or restore (after partitions are assigned, before their records are returned).

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};

use super::changelog::{self, Restorer};
use super::store::Stores;
use super::{Assignment, Guarantee, InputRecord, OutputRecord, ProcessorConfig, ProcessorError, Stats, Transform};
use crate::session::{CommitOutcome, TransactionalSession};

/// Where records go: a transactional session, or (at-least-once) a plain idempotent producer.
enum Sink {
    Transactional(TransactionalSession),
    Plain(ThreadedProducer<DefaultProducerContext>),
}

impl Sink {
    fn producer(&self) -> &ThreadedProducer<DefaultProducerContext> {
        match self {
            Sink::Transactional(s) => s.producer(),
            Sink::Plain(p) => p,
        }
    }
}

struct Engine<T> {
    config: ProcessorConfig,
    transform: T,
    stats: Arc<Stats>,
    sink: Sink,
    stores: Stores,
    changelog: Option<String>,
    restorer: Option<Restorer>,
    /// Next offset to commit, per input partition processed since the last commit.
    next: BTreeMap<i32, i64>,
    in_transaction: bool,
    since_commit: usize,
    last_commit: Instant,
    /// The record that failed last, and how many times in a row.
    failing: Option<((i32, i64), u32)>,
    /// A rollback in a callback: rewind before processing anything else.
    rewind_needed: bool,
    /// An error a callback could not return.
    error: Option<ProcessorError>,
}

type Shared<T> = Arc<Mutex<Engine<T>>>;

fn lock<T>(engine: &Shared<T>) -> MutexGuard<'_, Engine<T>> {
    engine.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

struct Callbacks<T> {
    engine: Shared<T>,
}

impl<T: Transform> ClientContext for Callbacks<T> {}

impl<T: Transform> ConsumerContext for Callbacks<T> {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(revoked) = rebalance {
            lock(&self.engine).on_revoke(consumer, revoked);
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut engine = lock(&self.engine);
        if let Rebalance::Assign(assigned) = rebalance {
            engine.on_assign(assigned);
        }
        let owned = consumer.assignment().map(|a| a.count()).unwrap_or(0);
        engine.stats.assigned_partitions.store(owned as u64, Ordering::Relaxed);
    }
}

type GroupConsumer<T> = BaseConsumer<Callbacks<T>>;

impl<T: Transform> Engine<T> {
    fn stateful(&self) -> bool {
        self.changelog.is_some()
    }

    fn process(&mut self, consumer: &GroupConsumer<T>, message: &BorrowedMessage<'_>) -> Result<(), ProcessorError> {
        let partition = message.partition();
        let offset = message.offset();
        if self.stateful() && !self.stores.has(partition) {
            // Assigned but not restored (a restore failed in a callback): start over.
            self.rewind_needed = true;
            return Ok(());
        }
        if let Sink::Transactional(session) = &mut self.sink {
            if !self.in_transaction {
                session.begin()?;
                self.in_transaction = true;
            }
        }
        let headers = message.headers().map(|h| h.iter().map(|h| (h.key, h.value)).collect()).unwrap_or_default();
        let record = InputRecord {
            key: message.key(),
            value: message.payload(),
            headers,
            timestamp: message.timestamp().to_millis(),
            partition,
            offset,
        };
        let mut out = Vec::new();
        let stateful = self.stateful();
        let Engine { stores, transform, .. } = self;
        let mut state = stores.key_state(partition, message.key().unwrap_or_default(), stateful);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| transform.apply(&record, &mut state, &mut out)));
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(panic) => Some(panic_message(&panic)),
        };
        if let Some(error) = failure {
            let attempts = match self.failing {
                Some((at, n)) if at == (partition, offset) => n + 1,
                _ => 1,
            };
            self.failing = Some(((partition, offset), attempts));
            if attempts > self.config.max_retries {
                self.roll_back(consumer, "the transform failed")?;
                return Err(ProcessorError::Transform { topic: self.config.input.clone(), partition, offset, attempts, error });
            }
            tracing::warn!(partition, offset, attempts, %error, "the transform failed; rolling back and retrying");
            return self.roll_back(consumer, "the transform failed");
        }
        for r in &out {
            if let Err(e) = self.send(r) {
                tracing::warn!(error = %e, "cannot send an output record; rolling back");
                return self.roll_back(consumer, "an output record could not be sent");
            }
        }
        self.stats.records_in.fetch_add(1, Ordering::Relaxed);
        self.stats.records_out.fetch_add(out.len() as u64, Ordering::Relaxed);
        self.next.insert(partition, offset + 1);
        self.since_commit += 1;
        Ok(())
    }

    fn send(&self, r: &OutputRecord) -> Result<(), rdkafka::error::KafkaError> {
        let topic = r.topic.as_deref().unwrap_or(&self.config.output);
        let mut headers = OwnedHeaders::new();
        for (k, v) in &r.headers {
            headers = headers.insert(Header { key: k, value: Some(v) });
        }
        let mut record = BaseRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(k) = &r.key {
            record = record.key(k);
        }
        if let Some(v) = &r.value {
            record = record.payload(v);
        }
        send_with_backpressure(self.sink.producer(), record, self.config.call_timeout)
    }

    fn commit_due(&self) -> bool {
        self.since_commit >= self.config.commit_records
            || (self.since_commit > 0 && self.last_commit.elapsed() >= self.config.commit_interval)
    }

    /// Commits what was processed: outputs (already sent), changelog, offsets.
    fn commit(&mut self, consumer: &GroupConsumer<T>) -> Result<(), ProcessorError> {
        // The interval runs from the end of this commit: a commit slower than the interval
        // must not make the next one follow a single record (one transaction per record).
        let result = self.commit_now(consumer);
        self.last_commit = Instant::now();
        result
    }

    fn commit_now(&mut self, consumer: &GroupConsumer<T>) -> Result<(), ProcessorError> {
        if self.next.is_empty() && !self.in_transaction {
            return Ok(());
        }
        if let Some(topic) = self.changelog.clone() {
            for (partition, changes) in self.stores.take_changes() {
                for (key, value) in changes {
                    let mut record = BaseRecord::<[u8], [u8]>::to(&topic).partition(partition).key(&key);
                    if let Some(v) = &value {
                        record = record.payload(v);
                    }
                    if let Err(e) = send_with_backpressure(self.sink.producer(), record, self.config.call_timeout) {
                        tracing::warn!(error = %e, "cannot send a changelog record; rolling back");
                        return self.roll_back(consumer, "a changelog record could not be sent");
                    }
                }
            }
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, next) in &self.next {
            offsets
                .add_partition_offset(&self.config.input, *partition, Offset::Offset(*next))
                .map_err(|source| ProcessorError::Kafka { what: "offsets", source })?;
        }
        let committed = match &mut self.sink {
            Sink::Transactional(session) => {
                if !self.in_transaction {
                    session.begin()?;
                }
                self.in_transaction = false;
                let group = consumer.group_metadata();
                match session.commit(group.as_ref().map(|g| (&offsets, g)))? {
                    CommitOutcome::Committed => true,
                    CommitOutcome::RolledBack(why) => {
                        tracing::warn!(?why, "commit rolled back; rewinding to the committed offsets");
                        false
                    }
                }
            }
            Sink::Plain(producer) => {
                let flushed = producer.flush(self.config.call_timeout);
                flushed.is_ok() && consumer.commit(&offsets, CommitMode::Sync).is_ok()
            }
        };
        if committed {
            self.next.clear();
            self.since_commit = 0;
            self.failing = None;
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            self.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
            self.rewind(consumer)
        }
    }

    /// Aborts the open transaction (if any) and rewinds.
    fn roll_back(&mut self, consumer: &GroupConsumer<T>, why: &str) -> Result<(), ProcessorError> {
        if self.in_transaction {
            self.in_transaction = false;
            if let Sink::Transactional(session) = &mut self.sink {
                session.abort()?;
            }
        }
        tracing::debug!(why, "rolled back");
        self.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
        self.rewind(consumer)
    }

    /// Every assigned partition back to its committed offset, its state reloaded.
    fn rewind(&mut self, consumer: &GroupConsumer<T>) -> Result<(), ProcessorError> {
        self.rewind_needed = false;
        self.next.clear();
        self.since_commit = 0;
        self.stores.clear();
        let assigned = consumer.assignment().map_err(|source| ProcessorError::Kafka { what: "assignment", source })?;
        if assigned.count() == 0 {
            return Ok(());
        }
        let timeout = self.config.call_timeout;
        let committed = super::retrying(timeout, || consumer.committed_offsets(assigned.clone(), timeout))
            .map_err(|source| ProcessorError::Kafka { what: "committed offsets", source })?;
        let mut seek = TopicPartitionList::new();
        for e in committed.elements() {
            self.restore(e.partition())?;
            let to = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            seek.add_partition_offset(e.topic(), e.partition(), to).map_err(|source| ProcessorError::Kafka { what: "seek", source })?;
        }
        let result =
            consumer.seek_partitions(seek, self.config.call_timeout).map_err(|source| ProcessorError::Kafka { what: "seek", source })?;
        if let Some(e) = result.elements().iter().find_map(|e| e.error().err()) {
            return Err(ProcessorError::Kafka { what: "seek", source: e });
        }
        Ok(())
    }

    fn restore(&mut self, partition: i32) -> Result<(), ProcessorError> {
        if let Some(restorer) = &self.restorer {
            let values = restorer.restore(partition)?;
            self.stats.restored_keys.fetch_add(values.len() as u64, Ordering::Relaxed);
            self.stores.install(partition, values);
        }
        Ok(())
    }

    fn on_revoke(&mut self, consumer: &GroupConsumer<T>, revoked: &TopicPartitionList) {
        self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
        let result = if consumer.assignment_lost() {
            // Another instance may own them already: nothing of ours may commit.
            self.roll_back_without_rewind()
        } else {
            self.commit(consumer)
        };
        if let Err(e) = result {
            self.error.get_or_insert(e);
        }
        for e in revoked.elements() {
            self.stores.remove(e.partition());
            self.next.remove(&e.partition());
        }
        if consumer.assignment_lost() {
            self.rewind_needed = true;
        }
    }

    fn roll_back_without_rewind(&mut self) -> Result<(), ProcessorError> {
        if self.in_transaction {
            self.in_transaction = false;
            self.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
            if let Sink::Transactional(session) = &mut self.sink {
                session.abort()?;
            }
        }
        self.next.clear();
        self.since_commit = 0;
        self.stores.clear();
        Ok(())
    }

    fn on_assign(&mut self, assigned: &TopicPartitionList) {
        self.stats.rebalances.fetch_add(1, Ordering::Relaxed);
        for e in assigned.elements() {
            if e.topic() == self.config.input && !self.stores.has(e.partition()) {
                if let Err(err) = self.restore(e.partition()) {
                    self.error.get_or_insert(err);
                    return;
                }
            }
        }
    }
}

/// Sends, waiting while librdkafka's queue is full (back-pressure), up to `timeout`.
fn send_with_backpressure(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
    timeout: Duration,
) -> Result<(), rdkafka::error::KafkaError> {
    let deadline = Instant::now() + timeout;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), back))
                if Instant::now() < deadline =>
            {
                record = back;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
    format!("panicked: {}", text.unwrap_or_else(|| "(no message)".into()))
}

pub(super) fn run<T: Transform + 'static>(
    config: ProcessorConfig,
    transform: T,
    stats: Arc<Stats>,
    stop: &AtomicBool,
) -> Result<(), ProcessorError> {
    let probe: BaseConsumer = config
        .client
        .read_committed_consumer(&config.application_id)
        .create()
        .map_err(|source| ProcessorError::Client { what: "metadata consumer", source })?;
    let partitions = changelog::partition_count(&probe, &config.input, config.call_timeout)
        .ok_or_else(|| ProcessorError::Changelog { topic: config.input.clone(), why: "the input topic does not exist".into() })?;
    let changelog_topic = config.changelog_topic();
    let restorer = match &changelog_topic {
        Some(topic) => {
            changelog::ensure_topic(&config, topic, partitions, &probe)?;
            Some(Restorer::new(&config, topic)?)
        }
        None => None,
    };
    drop(probe);
    let sink = match config.guarantee {
        Guarantee::ExactlyOnce => Sink::Transactional(TransactionalSession::open(
            &config.client,
            &config.transactional_id(),
            config.transaction_timeout,
            config.call_timeout,
        )?),
        Guarantee::AtLeastOnce => {
            let mut producer = rdkafka::ClientConfig::new();
            producer.set("bootstrap.servers", config.client.bootstrap()).set("enable.idempotence", "true").set("acks", "all");
            Sink::Plain(producer.create().map_err(|source| ProcessorError::Client { what: "producer", source })?)
        }
    };
    let engine: Shared<T> = Arc::new(Mutex::new(Engine {
        config: config.clone(),
        transform,
        stats,
        sink,
        stores: Stores::default(),
        changelog: changelog_topic,
        restorer,
        next: BTreeMap::new(),
        in_transaction: false,
        since_commit: 0,
        last_commit: Instant::now(),
        failing: None,
        rewind_needed: false,
        error: None,
    }));

    let mut consumer_config = config.client.read_committed_consumer(&config.application_id);
    consumer_config.set("auto.offset.reset", "earliest").set("queued.max.messages.kbytes", config.max_queued_kbytes.to_string()).set(
        "partition.assignment.strategy",
        match config.assignment {
            Assignment::CooperativeSticky => "cooperative-sticky",
            Assignment::Eager => "range",
        },
    );
    let consumer: GroupConsumer<T> = consumer_config
        .create_with_context(Callbacks { engine: Arc::clone(&engine) })
        .map_err(|source| ProcessorError::Client { what: "group consumer", source })?;
    consumer.subscribe(&[&config.input]).map_err(|source| ProcessorError::Kafka { what: "subscribe", source })?;

    let poll_timeout = config.commit_interval.min(Duration::from_millis(100));
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break lock(&engine).commit(&consumer);
        }
        let message = consumer.poll(poll_timeout);
        let mut e = lock(&engine);
        if let Some(error) = e.error.take() {
            break Err(error);
        }
        if e.rewind_needed {
            // The message (if any) may lie past the committed offset: the rewind re-reads it.
            if let Err(error) = e.rewind(&consumer) {
                break Err(error);
            }
            continue;
        }
        let step = match message {
            Some(Ok(m)) if m.topic() == config.input => e.process(&consumer, &m),
            Some(Ok(_)) => Ok(()),
            Some(Err(error)) => {
                tracing::warn!(%error, "consumer error");
                Ok(())
            }
            None => Ok(()),
        };
        let step = step.and_then(|()| if e.commit_due() { e.commit(&consumer) } else { Ok(()) });
        if let Err(error) = step {
            break Err(error);
        }
    };
    // Leaving the group runs the revoke callback, which takes the engine's lock.
    consumer.unsubscribe();
    drop(consumer);
    result
}
