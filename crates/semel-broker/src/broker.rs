//! The broker: opens storage, starts the listener and background tasks, shuts down cleanly.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::BrokerConfig;
use crate::metadata::Metadata;
use crate::storage::io::LogDirHealth;

/// State shared by every connection and background task. Thread-safe.
#[derive(Debug)]
pub struct BrokerState {
    pub config: BrokerConfig,
    pub metadata: Metadata,
    pub health: Arc<LogDirHealth>,
    pub producer_ids: crate::producer_ids::ProducerIdManager,
    pub groups: crate::coordinator::group::GroupCoordinator,
    pub txns: crate::coordinator::txn::TxnCoordinator,
    /// Bumped when a high watermark moves or topics change; long-polling fetches wait on it.
    pub data_arrived: Arc<watch::Sender<u64>>,
    /// Flips to true when shutdown starts.
    pub shutdown: watch::Receiver<bool>,
    pub advertised_host: String,
    pub advertised_port: i32,
    /// The threads that check compressed batches (`decompression_threads`).
    pub(crate) decompression: crate::server::decompression::DecompressionPool,
    /// Bytes the network side holds (`max_buffered_bytes`): frames and Fetch responses.
    pub(crate) memory: Arc<crate::server::memory::MemoryPool>,
}

/// A running broker. Dropping it without `shutdown` aborts its tasks (files are left as a
/// crash would leave them; recovery handles that).
#[derive(Debug)]
pub struct Broker {
    state: Arc<BrokerState>,
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    cleaner: Option<(Arc<AtomicBool>, std::thread::JoinHandle<()>)>,
}

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigFileError),
    #[error("cannot open the data directory: {0}")]
    Metadata(#[from] crate::metadata::MetadataError),
    #[error("cannot open the producer id allocator: {0}")]
    ProducerIds(#[from] crate::producer_ids::ProducerIdError),
    #[error("cannot start the decompression threads: {0}")]
    Threads(std::io::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

impl Broker {
    /// Opens the data directory (recovering logs), binds the listener and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Self, StartError> {
        config.validate()?;
        let health = Arc::new(LogDirHealth::default());
        let data_arrived = Arc::new(watch::channel(0u64).0);
        let started = std::time::Instant::now();
        let open_config = config.clone();
        let open_health = Arc::clone(&health);
        let open_arrived = Arc::clone(&data_arrived);
        let metadata = tokio::task::spawn_blocking(move || Metadata::open(&open_config, open_health, open_arrived))
            .await
            .map_err(|e| crate::metadata::MetadataError::Io(std::io::Error::other(e)))??;
        tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, topics = metadata.topics().len(), "opened data directory");
        let producer_ids = crate::producer_ids::ProducerIdManager::open(&config.data_dir)?;
        let groups = crate::coordinator::group::GroupCoordinator::open(&config.data_dir, Arc::clone(&health), config.groups)
            .map_err(crate::metadata::MetadataError::Io)?;
        let (txns, to_complete) = crate::coordinator::txn::TxnCoordinator::open(&config.data_dir, Arc::clone(&health), config.transactions)
            .map_err(crate::metadata::MetadataError::Io)?;
        let listener = TcpListener::bind(config.listen).await.map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let local_addr = listener.local_addr().map_err(|source| StartError::Listen { addr: config.listen, source })?;
        let mut config = config;
        if config.listen.port() == 0 && config.advertised.is_none() {
            config.advertised = Some(local_addr.to_string());
        }
        let (advertised_host, advertised_port) = config.advertised_host_port();
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let state = Arc::new(BrokerState {
            metadata,
            health,
            producer_ids,
            groups,
            txns,
            data_arrived,
            shutdown: shutdown_rx,
            advertised_host,
            advertised_port,
            decompression: crate::server::decompression::DecompressionPool::new(config.decompression_threads)
                .map_err(StartError::Threads)?,
            memory: crate::server::memory::MemoryPool::new(config.max_buffered_bytes),
            config,
        });
        let mut tasks =
            vec![tokio::spawn(crate::server::accept_loop(listener, Arc::clone(&state))), tokio::spawn(background_loop(Arc::clone(&state)))];
        // Transactions found prepared in the log: their markers go out again.
        for completion in to_complete {
            tasks.push(tokio::spawn(crate::coordinator::markers::complete(Arc::clone(&state), completion)));
        }
        let cleaner = if state.config.cleaner.enable {
            let stop = Arc::new(AtomicBool::new(false));
            let (thread_state, thread_stop) = (Arc::clone(&state), Arc::clone(&stop));
            let thread = std::thread::Builder::new()
                .name("semel-cleaner".into())
                .spawn(move || run_cleaner(&thread_state, &thread_stop))
                .map_err(crate::metadata::MetadataError::Io)?;
            Some((stop, thread))
        } else {
            None
        };
        Ok(Self { state, local_addr, shutdown_tx, tasks, cleaner })
    }

    /// Bytes the network side holds now (frames being received or handled, Fetch responses
    /// not yet written), at most about `max_buffered_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.state.memory.used()
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `host:port` for clients' `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("{}:{}", self.state.advertised_host, self.state.advertised_port)
    }

    pub fn state(&self) -> &Arc<BrokerState> {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (bounded wait), flushes every partition,
    /// writes indexes and checkpoints.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some((stop, thread)) = self.cleaner.take() {
            // The cleaner checks the flag between reads; an interrupted pass leaves the old
            // segments in place.
            stop.store(true, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        let state = Arc::clone(&self.state);
        let mut checkpoint = Vec::new();
        for topic in state.metadata.topics() {
            for partition in &topic.partitions {
                if let Err(e) = partition.flush_all().await {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "flush at shutdown failed");
                    continue;
                }
                let persisted = {
                    let mut log = partition.lock_log();
                    log.persist_indexes().and_then(|()| log.snapshot_producers())
                };
                if let Err(e) = persisted {
                    tracing::error!(topic = %topic.name, partition = partition.index, error = %e, "writing indexes at shutdown failed");
                    continue;
                }
                checkpoint.push((topic.name.clone(), partition.index, partition.flushed_offset()));
            }
        }
        state.groups.close().await;
        state.txns.close().await;
        if !state.health.is_offline() {
            if let Err(e) = state.metadata.write_recovery_checkpoint(&checkpoint) {
                tracing::error!(error = %e, "writing the recovery checkpoint failed");
            }
            if let Err(e) = state.metadata.write_log_start_checkpoint() {
                tracing::error!(error = %e, "writing the log start checkpoint failed");
            }
        }
        tracing::info!("broker stopped");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some((stop, _)) = &self.cleaner {
            stop.store(true, Ordering::Release);
        }
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Retention, periodic flush (relaxed durability) and checkpoints.
async fn background_loop(state: Arc<BrokerState>) {
    let config = &state.config;
    let mut shutdown = state.shutdown.clone();
    let mut retention = tokio::time::interval(Duration::from_millis(config.retention_check_interval_ms.max(10)));
    let mut checkpoint = tokio::time::interval(Duration::from_millis(config.checkpoint_interval_ms.max(10)));
    let mut flush = tokio::time::interval(Duration::from_millis(config.flush_interval_ms.max(1)));
    // Session timeouts and rebalance deadlines are checked at this resolution.
    let mut groups = tokio::time::interval(Duration::from_millis(100));
    let mut txns = tokio::time::interval(Duration::from_millis(state.txns.tick_interval_ms().max(10)));
    for interval in [&mut retention, &mut checkpoint, &mut flush, &mut groups, &mut txns] {
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = retention.tick() => run_retention(&state),
            _ = groups.tick() => state.groups.tick(),
            _ = txns.tick() => {
                for (durable, completion) in state.txns.tick() {
                    let state = Arc::clone(&state);
                    tokio::spawn(async move {
                        if state.txns.wait_durable(&completion.transactional_id, durable).await.is_ok() {
                            crate::coordinator::markers::complete(state, completion).await;
                        }
                    });
                }
            }
            _ = checkpoint.tick() => {
                let entries: Vec<_> = state.metadata.topics().iter()
                    .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.index, p.flushed_offset())))
                    .collect();
                if !state.health.is_offline() {
                    if let Err(e) = state.metadata.write_recovery_checkpoint(&entries) {
                        state.health.fail("write recovery checkpoint", &e);
                    }
                }
            }
            _ = flush.tick(), if config.log.flush_interval_messages > 1 => {
                for topic in state.metadata.topics() {
                    for partition in &topic.partitions {
                        let _ = partition.flush_all().await;
                    }
                }
            }
        }
    }
}

fn run_retention(state: &BrokerState) {
    let now = crate::now_ms();
    let mut deleted_any = false;
    for topic in state.metadata.topics() {
        let settings = topic.settings(state.metadata.defaults());
        for partition in &topic.partitions {
            let expired = partition.expire_producers(now, state.config.producer_id_expiration_ms);
            if expired > 0 {
                tracing::debug!(topic = %topic.name, partition = partition.index, expired, "expired idle producers");
            }
            match partition.apply_retention(now, &settings.log) {
                Ok(0) => {}
                Ok(deleted) => {
                    deleted_any = true;
                    tracing::info!(topic = %topic.name, partition = partition.index, deleted, log_start_offset = partition.log_start_offset(), "retention deleted segments");
                }
                Err(e) => state.health.fail("retention", &e),
            }
        }
    }
    if deleted_any {
        if let Err(e) = state.metadata.write_log_start_checkpoint() {
            state.health.fail("write log start checkpoint", &e);
        }
    }
}

/// A log the cleaner looks after.
struct Cleanable<'a> {
    name: String,
    partition: &'a crate::storage::Partition,
    compaction: crate::storage::cleaner::CompactSettings,
    segment_bytes: u64,
    index_interval_bytes: u64,
}

/// The log cleaner thread (Kafka's `log.cleaner.threads` = 1): picks the dirtiest log that is
/// due, cleans it, and backs off when none is. Returns when `stop` is set or the log
/// directory goes offline.
fn run_cleaner(state: &BrokerState, stop: &AtomicBool) {
    use crate::storage::cleaner;
    let limits = cleaner::CleanerLimits {
        dedupe_buffer_bytes: state.config.cleaner.dedupe_buffer_bytes,
        io_max_bytes_per_second: state.config.cleaner.io_max_bytes_per_second,
    };
    // Logs the cleaner gave up on (unreadable data), until restart.
    let mut uncleanable = std::collections::HashSet::new();
    while !stop.load(Ordering::Acquire) && !state.health.is_offline() {
        let topics = state.metadata.topics();
        let mut logs = Vec::new();
        for topic in &topics {
            let settings = topic.settings(state.metadata.defaults());
            if let Some(compaction) = settings.compaction {
                for partition in &topic.partitions {
                    logs.push(Cleanable {
                        name: format!("{}-{}", topic.name, partition.index),
                        partition,
                        compaction,
                        segment_bytes: settings.log.segment_bytes,
                        index_interval_bytes: settings.log.index_interval_bytes,
                    });
                }
            }
        }
        for (name, log) in [("__consumer_offsets-0", state.groups.internal_log()), ("__transaction_state-0", state.txns.internal_log())] {
            let (partition, settings) = log.partition();
            if let Some(compaction) = settings.compaction {
                logs.push(Cleanable {
                    name: name.to_string(),
                    partition,
                    compaction,
                    segment_bytes: settings.log.segment_bytes,
                    index_interval_bytes: settings.log.index_interval_bytes,
                });
            }
        }
        let now = crate::now_ms();
        // The dirtiest log that is due.
        let mut best: Option<(f64, &Cleanable)> = None;
        for log in logs.iter().filter(|l| !uncleanable.contains(&l.name)) {
            let view = log.partition.lock_log().cleaner_view();
            match cleaner::assess(&view, &log.compaction, now) {
                Ok(a) if a.is_due(&log.compaction) => {
                    if best.is_none_or(|(ratio, _)| a.dirty_ratio > ratio) {
                        best = Some((a.dirty_ratio, log));
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(log = log.name, error = %e, "cannot assess a log for cleaning"),
            }
        }
        let Some((_, log)) = best else {
            let until = std::time::Instant::now() + Duration::from_millis(state.config.cleaner.backoff_ms);
            while std::time::Instant::now() < until && !stop.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        };
        match cleaner::clean(log.partition, &log.compaction, log.segment_bytes, log.index_interval_bytes, &limits, stop, now) {
            Ok(Some(stats)) => tracing::info!(
                log = log.name,
                bytes_before = stats.bytes_before,
                bytes_after = stats.bytes_after,
                segments_before = stats.segments_before,
                segments_after = stats.segments_after,
                records_read = stats.records_read,
                records_kept = stats.records_kept,
                keys = stats.keys_mapped,
                cleaned_to = stats.cleaned_to,
                elapsed_ms = stats.elapsed.as_millis() as u64,
                "cleaned log"
            ),
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => {
                tracing::debug!(log = log.name, error = %e, "a log went while it was cleaned (topic deleted)");
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::error!(log = log.name, error = %e, "the cleaner cannot read this log; it is skipped until restart");
                uncleanable.insert(log.name.clone());
            }
            Err(e) => {
                state.health.fail("log cleaner", &e);
                return;
            }
        }
    }
}
