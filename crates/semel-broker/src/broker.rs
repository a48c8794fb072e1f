//! The broker: opens storage, starts the listener and background tasks, shuts down cleanly.

use std::net::SocketAddr;
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
}

/// A running broker. Dropping it without `shutdown` aborts its tasks (files are left as a
/// crash would leave them; recovery handles that).
#[derive(Debug)]
pub struct Broker {
    state: Arc<BrokerState>,
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
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
            config,
            metadata,
            health,
            producer_ids,
            groups,
            txns,
            data_arrived,
            shutdown: shutdown_rx,
            advertised_host,
            advertised_port,
        });
        let mut tasks =
            vec![tokio::spawn(crate::server::accept_loop(listener, Arc::clone(&state))), tokio::spawn(background_loop(Arc::clone(&state)))];
        // Transactions found prepared in the log: their markers go out again.
        for completion in to_complete {
            tasks.push(tokio::spawn(crate::coordinator::markers::complete(Arc::clone(&state), completion)));
        }
        Ok(Self { state, local_addr, shutdown_tx, tasks })
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
