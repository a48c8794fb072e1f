//! The store's changelog topic: `<application_id>-<store>-changelog`, compacted, one partition
//! per input partition. Created at start-up if missing; an existing one must have the input's
//! partition count. A partition's state is restored by reading its changelog partition from the
//! beginning with read_committed, once no transaction is open on it (the last stable offset has
//! reached the high watermark): then the state is exactly what the committed input offset
//! covers, whichever instance wrote it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::{ProcessorConfig, ProcessorError};

/// Partition count of `topic`, from the cluster's metadata.
pub(crate) fn partition_count(
    consumer: &BaseConsumer<impl rdkafka::consumer::ConsumerContext>,
    topic: &str,
    timeout: Duration,
) -> Option<usize> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).ok()?;
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    (t.error().is_none() && !t.partitions().is_empty()).then(|| t.partitions().len())
}

/// Creates the changelog topic if it is missing; checks its partition count.
pub(crate) fn ensure_topic(config: &ProcessorConfig, topic: &str, partitions: usize, probe: &BaseConsumer) -> Result<(), ProcessorError> {
    let fail = |why: String| ProcessorError::Changelog { topic: topic.to_string(), why };
    if let Some(existing) = partition_count(probe, topic, config.call_timeout) {
        if existing != partitions {
            return Err(fail(format!("it has {existing} partitions and the input {partitions}; delete it or use another application id")));
        }
        return Ok(());
    }
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", config.client.bootstrap()).create().map_err(|e| fail(format!("admin client: {e}")))?;
    let new = NewTopic::new(topic, partitions as i32, TopicReplication::Fixed(-1)).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(config.call_timeout));
    let results = futures_executor::block_on(admin.create_topics(&[new], &options)).map_err(|e| fail(e.to_string()))?;
    for result in results {
        match result {
            Ok(_) | Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(fail(code.to_string())),
        }
    }
    // Created: wait until the metadata shows it (another instance may have created it too).
    let deadline = Instant::now() + config.call_timeout;
    loop {
        match partition_count(probe, topic, config.call_timeout) {
            Some(n) if n == partitions => return Ok(()),
            Some(n) => return Err(fail(format!("it has {n} partitions and the input {partitions}"))),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            None => return Err(fail("created, but not in the metadata".into())),
        }
    }
}

/// Reads changelog partitions back into state.
pub(crate) struct Restorer {
    topic: String,
    committed: BaseConsumer,
    uncommitted: BaseConsumer,
    call_timeout: Duration,
    /// Longest wait for an open transaction on the changelog to end (a previous owner's;
    /// the coordinator aborts it by its timeout at the latest).
    settle_timeout: Duration,
}

impl Restorer {
    pub(crate) fn new(config: &ProcessorConfig, topic: &str) -> Result<Self, ProcessorError> {
        let make = |isolation: &str| -> Result<BaseConsumer, ProcessorError> {
            let mut c = ClientConfig::new();
            c.set("bootstrap.servers", config.client.bootstrap())
                .set("group.id", format!("{}-restore", config.application_id))
                .set("enable.auto.commit", "false")
                .set("isolation.level", isolation);
            c.create().map_err(|source| ProcessorError::Client { what: "changelog reader", source })
        };
        Ok(Self {
            topic: topic.to_string(),
            committed: make("read_committed")?,
            uncommitted: make("read_uncommitted")?,
            call_timeout: config.call_timeout,
            settle_timeout: config.transaction_timeout * 2 + config.call_timeout,
        })
    }

    /// The state of `partition`: the changelog read from its beginning to its end.
    pub(crate) fn restore(&self, partition: i32) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, ProcessorError> {
        let fail = |why: String| ProcessorError::Restore { topic: self.topic.clone(), partition, why };
        let started = Instant::now();
        let end = loop {
            let stable = super::retrying(self.call_timeout, || self.committed.fetch_watermarks(&self.topic, partition, self.call_timeout))
                .map_err(|e| fail(e.to_string()))?
                .1;
            let high = super::retrying(self.call_timeout, || self.uncommitted.fetch_watermarks(&self.topic, partition, self.call_timeout))
                .map_err(|e| fail(e.to_string()))?
                .1;
            if stable >= high {
                break stable;
            }
            tracing::debug!(topic = %self.topic, partition, stable, high, "restore: waiting for an open transaction on the changelog to end");
            if started.elapsed() > self.settle_timeout {
                return Err(fail(format!(
                    "a transaction stayed open on it for {:?} (last stable offset {stable}, high watermark {high})",
                    self.settle_timeout
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let mut values = BTreeMap::new();
        if end == 0 {
            return Ok(values);
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&self.topic, partition, Offset::Beginning).map_err(|e| fail(e.to_string()))?;
        self.committed.assign(&tpl).map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + self.call_timeout;
        loop {
            let position = self
                .committed
                .position()
                .ok()
                .and_then(|p| p.find_partition(&self.topic, partition).and_then(|e| e.offset().to_raw()))
                .unwrap_or(-1);
            if position >= end {
                break;
            }
            if Instant::now() > deadline {
                return Err(fail(format!("read to offset {position} of {end} within {:?}", self.call_timeout)));
            }
            match self.committed.poll(Duration::from_millis(100)) {
                Some(Ok(m)) if m.offset() < end => {
                    let Some(key) = m.key() else { continue };
                    match m.payload() {
                        Some(value) => values.insert(key.to_vec(), value.to_vec()),
                        None => values.remove(key),
                    };
                }
                Some(Ok(_)) => {}
                // Brokers down or restarting: go on until the deadline.
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "changelog read: retrying");
                    std::thread::sleep(Duration::from_millis(100));
                }
                None => {}
            }
        }
        self.committed.unassign().map_err(|e| fail(e.to_string()))?;
        tracing::debug!(topic = %self.topic, partition, end, keys = values.len(), took = ?started.elapsed(), "restored");
        Ok(values)
    }
}
