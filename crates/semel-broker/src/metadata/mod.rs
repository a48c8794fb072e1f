//! Cluster metadata of this single-node cluster: the cluster id, topics with their ids,
//! partition counts and config overrides.
//!
//! Persisted in `<data_dir>/metadata.d/`: a `cluster` file (the cluster id) and one file per
//! topic, `<topic id>.topic`, so that creating, changing or deleting a topic writes one small
//! file whatever the number of topics. Each file is replaced atomically (temporary file, fsync,
//! rename, fsync of the folder: `io::write_atomically`); a topic is in the metadata once its
//! file is, which is before CreateTopics answers.
//!
//! File layout: a first line `<kind> <version> <crc32c hex of the rest>` (`semel-cluster 1`,
//! `semel-topic 1`) and then the JSON body. A file whose checksum fails is refused at start-up
//! (never silently replaced).
//!
//! Upgrade: a data directory of an earlier version has one `metadata.json` (`semel-metadata 1`)
//! with every topic. At start-up it is written out as `metadata.d.new/`, which is renamed to
//! `metadata.d/` once complete; then `metadata.json` is removed. A crash at any point leaves
//! either the old file (the migration starts again) or the complete new folder.
//!
//! A topic creation that fails part-way (no file descriptor, a full disk) removes the partition
//! folders it made and the topic's file, and answers KAFKA_STORAGE_ERROR; nothing is recorded.

pub mod config;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::{BrokerConfig, LogDefaults};
use crate::storage::io::{is_fd_exhaustion, sync_dir, write_atomically, LogDirHealth};
use crate::storage::log::Log;
use crate::storage::partition::{AppendSettings, FlushPolicy, Partition};

/// The single metadata file of earlier versions, read once to migrate it.
const LEGACY_METADATA_FILE: &str = "metadata.json";
const METADATA_VERSION: u32 = 1;
const METADATA_DIR: &str = "metadata.d";
const METADATA_DIR_NEW: &str = "metadata.d.new";
const CLUSTER_FILE: &str = "cluster";
const TOPIC_FILE_EXTENSION: &str = "topic";
const RECOVERY_POINT_FILE: &str = "recovery-point-offset-checkpoint";
const LOG_START_FILE: &str = "log-start-offset-checkpoint";
/// Kafka's limit on topic name length.
const MAX_TOPIC_NAME_LEN: usize = 249;
/// Upper bound on partitions per topic and topics per broker: every queue is bounded.
pub const MAX_PARTITIONS_PER_TOPIC: i32 = 10_000;
pub const MAX_TOPICS: usize = 10_000;

#[derive(Debug, Serialize, Deserialize)]
struct StoredCluster {
    cluster_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredMetadata {
    cluster_id: String,
    topics: Vec<StoredTopic>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredTopic {
    name: String,
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

/// A topic and its partitions. Thread-safe.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<Arc<Partition>>,
    configs: RwLock<BTreeMap<String, String>>,
}

impl Topic {
    pub fn config_overrides(&self) -> BTreeMap<String, String> {
        self.configs.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub(crate) fn settings(&self, defaults: &LogDefaults) -> AppendSettings {
        config::resolve(&self.configs.read().unwrap_or_else(std::sync::PoisonError::into_inner), defaults)
    }

    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index).ok().and_then(|i| self.partitions.get(i))
    }
}

/// Why a metadata change was refused. Mapped to Kafka error codes at the protocol edge.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    #[error("topic '{0}' does not exist")]
    UnknownTopic(String),
    #[error("invalid topic name: {0}")]
    InvalidTopicName(String),
    #[error("creation of internal topic {0} is prohibited")]
    InternalTopic(String),
    #[error("invalid partition count: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error(transparent)]
    InvalidConfig(#[from] config::ConfigError),
    #[error("the broker's topic limit ({MAX_TOPICS}) is reached")]
    TooManyTopics,
    #[error("storage error: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata file is corrupt: {0}")]
    Corrupt(String),
}

/// The names of the broker's internal logs (the group and transaction coordinators' own,
/// not topics of the metadata): clients can neither create nor produce to topics of these
/// names, as on Kafka.
pub const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// Whether `name` is one of [`INTERNAL_TOPICS`] (Kafka's `Topic.isInternal`).
pub fn is_internal_topic(name: &str) -> bool {
    INTERNAL_TOPICS.contains(&name)
}

/// Checks a topic name the way Kafka's `Topic.validate` does.
pub fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let bad = |why: &str| Err(MetadataError::InvalidTopicName(format!("'{name}' {why}")));
    if name.is_empty() {
        return bad("is empty");
    }
    if name == "." || name == ".." {
        return bad("cannot be '.' or '..'");
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return bad("is longer than 249 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-') {
        return bad("contains characters other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

#[derive(Debug)]
struct Inner {
    topics: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, String>,
}

/// The registry of topics. Thread-safe: one RwLock over the topic map; changes persist the
/// metadata file while holding the write lock, so the file and the map never disagree.
#[derive(Debug)]
pub struct Metadata {
    data_dir: PathBuf,
    pub cluster_id: String,
    inner: RwLock<Inner>,
    defaults: LogDefaults,
    health: Arc<LogDirHealth>,
    policy: FlushPolicy,
    data_arrived: Arc<tokio::sync::watch::Sender<u64>>,
}

/// A new topic's specification.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

fn read_checkpoint(path: &Path) -> HashMap<(String, i32), i64> {
    // Kafka's checkpoint format: version line, count line, then "topic partition offset".
    let mut map = HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return map };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        tracing::warn!(path = %path.display(), "ignoring checkpoint file with an unknown version");
        return map;
    }
    let count: usize = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or(0);
    for line in lines.take(count) {
        let mut parts = line.split(' ');
        if let (Some(topic), Some(Ok(partition)), Some(Ok(offset))) =
            (parts.next(), parts.next().map(str::parse::<i32>), parts.next().map(str::parse::<i64>))
        {
            map.insert((topic.to_string(), partition), offset);
        }
    }
    map
}

fn write_checkpoint(path: &Path, entries: &[(String, i32, i64)]) -> std::io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for (topic, partition, offset) in entries {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    write_atomically(path, text.as_bytes())
}

impl Metadata {
    /// Loads the metadata file (or starts a new cluster) and opens every partition log,
    /// recovering what was not known to be flushed.
    pub fn open(
        config: &BrokerConfig,
        health: Arc<LogDirHealth>,
        data_arrived: Arc<tokio::sync::watch::Sender<u64>>,
    ) -> Result<Self, MetadataError> {
        let data_dir = config.data_dir.clone();
        crate::storage::set_max_open_files(config.log.max_open_segment_files);
        std::fs::create_dir_all(&data_dir)?;
        let stored = load_or_migrate(&data_dir)?;
        let recovery_points = read_checkpoint(&data_dir.join(RECOVERY_POINT_FILE));
        let log_starts = read_checkpoint(&data_dir.join(LOG_START_FILE));
        let metadata = Self {
            data_dir: data_dir.clone(),
            cluster_id: stored.cluster_id.clone(),
            inner: RwLock::new(Inner { topics: BTreeMap::new(), by_id: HashMap::new() }),
            defaults: config.log.clone(),
            health,
            policy: FlushPolicy { interval_messages: config.log.flush_interval_messages },
            data_arrived,
        };
        let mut inner = Inner { topics: BTreeMap::new(), by_id: HashMap::new() };
        for topic in stored.topics {
            let opened = metadata.open_topic(&topic, &recovery_points, &log_starts)?;
            inner.by_id.insert(topic.id, topic.name.clone());
            inner.topics.insert(topic.name.clone(), Arc::new(opened));
        }
        metadata.remove_orphan_partition_dirs(&inner)?;
        *metadata.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner) = inner;
        Ok(metadata)
    }

    #[cfg(test)]
    fn encode(stored: &StoredMetadata) -> Result<Vec<u8>, MetadataError> {
        encode_file("semel-metadata", stored)
    }

    #[cfg(test)]
    fn decode(bytes: &[u8]) -> Result<StoredMetadata, MetadataError> {
        decode_file("semel-metadata", bytes)
    }

    fn metadata_dir(&self) -> PathBuf {
        self.data_dir.join(METADATA_DIR)
    }

    fn topic_file(&self, id: &Uuid) -> PathBuf {
        self.metadata_dir().join(format!("{id}.{TOPIC_FILE_EXTENSION}"))
    }

    /// Writes a topic's file (creation, new partitions, new configs). Its cost does not
    /// depend on the number of topics.
    fn write_topic_file(&self, topic: &StoredTopic) -> Result<(), MetadataError> {
        let bytes = encode_file("semel-topic", topic)?;
        write_atomically(&self.topic_file(&topic.id), &bytes).map_err(|e| {
            self.fail_unless_out_of_fds("write topic metadata", &e);
            MetadataError::Io(e)
        })
    }

    /// Removes a topic's file and makes that durable. After the removal itself the deletion
    /// stands: a failed folder fsync is logged.
    fn remove_topic_file(&self, id: &Uuid) -> Result<(), MetadataError> {
        match std::fs::remove_file(self.topic_file(id)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                self.fail_unless_out_of_fds("remove topic metadata", &e);
                return Err(e.into());
            }
        }
        if let Err(e) = sync_dir(&self.metadata_dir()) {
            tracing::warn!(error = %e, "cannot fsync the metadata folder after removing a topic's file");
        }
        Ok(())
    }

    /// A metadata write that failed for want of a file descriptor changed nothing on disk that
    /// is not undone; any other failure takes the log directory offline.
    fn fail_unless_out_of_fds(&self, what: &str, e: &std::io::Error) {
        if is_fd_exhaustion(e) {
            tracing::warn!(error = %e, what, "out of file descriptors: the metadata change is refused");
        } else {
            self.health.fail(what, e);
        }
    }

    /// Undoes a topic creation that failed part-way: its partition folders and its file.
    fn discard_created(&self, stored: &StoredTopic) {
        for index in 0..stored.partitions {
            let dir = self.partition_dir(&stored.name, index);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Folders of unknown topics are removed at the next start.
                Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the folder of a failed topic creation"),
            }
        }
        let tmp = self.topic_file(&stored.id).with_extension("tmp");
        let _ = std::fs::remove_file(tmp);
        match std::fs::remove_file(self.topic_file(&stored.id)) {
            Ok(()) => {
                if let Err(e) = sync_dir(&self.metadata_dir()) {
                    self.health.fail("remove the file of a failed topic creation", &e);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            // The topic would come back at the next start.
            Err(e) => self.health.fail("remove the file of a failed topic creation", &e),
        }
    }

    fn stored_topic(topic: &Topic) -> StoredTopic {
        StoredTopic { name: topic.name.clone(), id: topic.id, partitions: topic.partitions.len() as i32, configs: topic.config_overrides() }
    }
}

/// Encodes a metadata file: header line `<kind> <version> <crc32c of the body>`, JSON body.
fn encode_file<T: Serialize>(kind: &str, value: &T) -> Result<Vec<u8>, MetadataError> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| MetadataError::Corrupt(e.to_string()))?;
    let mut out = format!("{kind} {METADATA_VERSION} {:08x}\n", crc32c::crc32c(&body)).into_bytes();
    out.extend_from_slice(&body);
    Ok(out)
}

fn decode_file<T: serde::de::DeserializeOwned>(kind: &str, bytes: &[u8]) -> Result<T, MetadataError> {
    {
        let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| MetadataError::Corrupt("no header line".into()))?;
        let header = std::str::from_utf8(&bytes[..newline]).map_err(|_| MetadataError::Corrupt("header is not text".into()))?;
        let body = &bytes[newline + 1..];
        let parts: Vec<&str> = header.split(' ').collect();
        if parts.len() != 3 || parts[0] != kind {
            return Err(MetadataError::Corrupt(format!("unexpected header '{header}'")));
        }
        if parts[1] != METADATA_VERSION.to_string() {
            return Err(MetadataError::Corrupt(format!("unsupported metadata version {}", parts[1])));
        }
        let crc = u32::from_str_radix(parts[2], 16).map_err(|_| MetadataError::Corrupt("bad checksum field".into()))?;
        if crc != crc32c::crc32c(body) {
            return Err(MetadataError::Corrupt("checksum mismatch".into()));
        }
        serde_json::from_slice(body).map_err(|e| MetadataError::Corrupt(e.to_string()))
    }
}

fn read_metadata_file<T: serde::de::DeserializeOwned>(kind: &str, path: &Path) -> Result<T, MetadataError> {
    let bytes = std::fs::read(path)?;
    decode_file(kind, &bytes).map_err(|e| match e {
        MetadataError::Corrupt(why) => MetadataError::Corrupt(format!("{}: {why}", path.display())),
        other => other,
    })
}

/// Reads `metadata.d/`, first creating it from `metadata.json` (earlier versions) or for a new
/// cluster when it does not exist.
fn load_or_migrate(data_dir: &Path) -> Result<StoredMetadata, MetadataError> {
    let dir = data_dir.join(METADATA_DIR);
    let legacy = data_dir.join(LEGACY_METADATA_FILE);
    if !dir.exists() {
        let new_dir = data_dir.join(METADATA_DIR_NEW);
        if new_dir.exists() {
            std::fs::remove_dir_all(&new_dir)?; // a migration a crash interrupted
        }
        let (stored, migrated) = match std::fs::read(&legacy) {
            Ok(bytes) => (decode_file::<StoredMetadata>("semel-metadata", &bytes)?, true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                (StoredMetadata { cluster_id: new_cluster_id(), topics: Vec::new() }, false)
            }
            Err(e) => return Err(e.into()),
        };
        std::fs::create_dir(&new_dir)?;
        write_atomically(
            &new_dir.join(CLUSTER_FILE),
            &encode_file("semel-cluster", &StoredCluster { cluster_id: stored.cluster_id.clone() })?,
        )?;
        for topic in &stored.topics {
            write_atomically(&new_dir.join(format!("{}.{TOPIC_FILE_EXTENSION}", topic.id)), &encode_file("semel-topic", topic)?)?;
        }
        std::fs::rename(&new_dir, &dir)?;
        sync_dir(data_dir)?;
        if migrated {
            tracing::info!(topics = stored.topics.len(), "metadata.json migrated to metadata.d/ (one file per topic)");
        }
    }
    if legacy.exists() {
        // Migrated (possibly by a start that crashed right after the rename).
        std::fs::remove_file(&legacy)?;
        sync_dir(data_dir)?;
    }
    let cluster: StoredCluster = read_metadata_file("semel-cluster", &dir.join(CLUSTER_FILE))?;
    let mut topics: Vec<StoredTopic> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some(TOPIC_FILE_EXTENSION) => topics.push(read_metadata_file("semel-topic", &path)?),
            Some("tmp") => std::fs::remove_file(&path)?, // a write a crash interrupted
            _ => {}
        }
    }
    topics.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = topics.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(MetadataError::Corrupt(format!("two topic files name topic '{}' ({} and {})", w[0].name, w[0].id, w[1].id)));
    }
    Ok(StoredMetadata { cluster_id: cluster.cluster_id, topics })
}

impl Metadata {
    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    fn open_topic(
        &self,
        topic: &StoredTopic,
        recovery_points: &HashMap<(String, i32), i64>,
        log_starts: &HashMap<(String, i32), i64>,
    ) -> Result<Topic, MetadataError> {
        let settings = config::resolve(&topic.configs, &self.defaults);
        let mut partitions = Vec::with_capacity(topic.partitions as usize);
        for index in 0..topic.partitions {
            let key = (topic.name.clone(), index);
            let dir = self.partition_dir(&topic.name, index);
            let (log, report) = Log::open(
                &dir,
                recovery_points.get(&key).copied().unwrap_or(0),
                log_starts.get(&key).copied().unwrap_or(0),
                &settings.log,
            )?;
            for (segment, tail) in &report.truncated {
                tracing::warn!(topic = %topic.name, partition = index, segment, reason = %tail.reason, kept_bytes = tail.valid_bytes, dropped_bytes = tail.dropped_bytes, "recovery truncated a torn or corrupt segment tail");
            }
            if report.deleted_segments_after_corruption > 0 {
                tracing::warn!(topic = %topic.name, partition = index, segments = report.deleted_segments_after_corruption, "recovery deleted segments after a corrupt batch");
            }
            partitions.push(Arc::new(self.new_partition(&topic.name, index, log)));
        }
        Ok(Topic { name: topic.name.clone(), id: topic.id, partitions, configs: RwLock::new(topic.configs.clone()) })
    }

    fn new_partition(&self, topic: &str, index: i32, log: Log) -> Partition {
        Partition::new(topic.to_string(), index, log, Arc::clone(&self.health), self.policy, Arc::clone(&self.data_arrived))
    }

    /// Deletes partition folders left behind by a topic deletion that a crash interrupted.
    fn remove_orphan_partition_dirs(&self, inner: &Inner) -> std::io::Result<()> {
        for entry in std::fs::read_dir(&self.data_dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            let Some((topic, partition)) = name.rsplit_once('-') else { continue };
            let Ok(partition) = partition.parse::<i32>() else { continue };
            let known = inner.topics.get(topic).is_some_and(|t| partition < t.partitions.len() as i32);
            if !known {
                tracing::info!(dir = %entry.path().display(), "removing the folder of a deleted partition");
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    fn read_inner(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_inner(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn defaults(&self) -> &LogDefaults {
        &self.defaults
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.read_inner().topics.get(name).cloned()
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<Arc<Topic>> {
        let inner = self.read_inner();
        inner.by_id.get(id).and_then(|name| inner.topics.get(name)).cloned()
    }

    pub fn topics(&self) -> Vec<Arc<Topic>> {
        self.read_inner().topics.values().cloned().collect()
    }

    /// Validates a new topic without creating it (CreateTopics validate_only, and the first
    /// step of creation).
    pub fn validate_new_topic(&self, spec: &NewTopic) -> Result<(), MetadataError> {
        validate_topic_name(&spec.name)?;
        if is_internal_topic(&spec.name) {
            return Err(MetadataError::InternalTopic(spec.name.clone()));
        }
        if self.read_inner().topics.contains_key(&spec.name) {
            return Err(MetadataError::TopicAlreadyExists(spec.name.clone()));
        }
        if spec.partitions < 1 || spec.partitions > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetadataError::InvalidPartitions(format!("{} is not between 1 and {MAX_PARTITIONS_PER_TOPIC}", spec.partitions)));
        }
        for (key, value) in &spec.configs {
            config::validate(key, value)?;
        }
        Ok(())
    }

    /// Creates a topic: the metadata file first (so a crash never leaves folders the broker
    /// does not know about in use), then the partition logs.
    pub fn create_topic(&self, spec: NewTopic) -> Result<Arc<Topic>, MetadataError> {
        self.validate_new_topic(&spec)?;
        let mut inner = self.write_inner();
        if inner.topics.contains_key(&spec.name) {
            return Err(MetadataError::TopicAlreadyExists(spec.name));
        }
        if inner.topics.len() >= MAX_TOPICS {
            return Err(MetadataError::TooManyTopics);
        }
        let stored = StoredTopic { name: spec.name.clone(), id: Uuid::new_v4(), partitions: spec.partitions, configs: spec.configs };
        // Remove anything left from an earlier topic of the same name.
        for index in 0..stored.partitions {
            let dir = self.partition_dir(&stored.name, index);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
        }
        // The partition folders, then the topic's file: a crash in between leaves folders of
        // an unknown topic, removed at the next start. A failure removes what was made.
        let topic = match self.open_topic(&stored, &HashMap::new(), &HashMap::new()) {
            Ok(topic) => Arc::new(topic),
            Err(e) => {
                tracing::warn!(topic = %stored.name, error = %e, "topic creation failed; what it created is removed");
                self.discard_created(&stored);
                return Err(e);
            }
        };
        if let Err(e) = self.write_topic_file(&stored) {
            tracing::warn!(topic = %stored.name, error = %e, "topic creation failed; what it created is removed");
            drop(topic);
            self.discard_created(&stored);
            return Err(e);
        }
        inner.by_id.insert(topic.id, topic.name.clone());
        inner.topics.insert(topic.name.clone(), Arc::clone(&topic));
        tracing::info!(topic = %topic.name, id = %topic.id, partitions = topic.partitions.len(), "created topic");
        Ok(topic)
    }

    /// Deletes a topic: removed from the metadata file, then its folders.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<Topic>, MetadataError> {
        let mut inner = self.write_inner();
        let topic = inner.topics.remove(name).ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        inner.by_id.remove(&topic.id);
        if let Err(e) = self.remove_topic_file(&topic.id) {
            inner.by_id.insert(topic.id, topic.name.clone());
            inner.topics.insert(topic.name.clone(), Arc::clone(&topic));
            return Err(e);
        }
        drop(inner);
        for partition in &topic.partitions {
            // Under the log lock, so that the cleaner (which swaps under it) sees the log
            // deleted and never writes into a folder a new topic of the same name may take.
            let mut log = partition.lock_log();
            log.mark_deleted();
            let dir = log.dir().to_path_buf();
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's folder; it is removed at the next start");
            }
        }
        // Wake fetches waiting on the deleted partitions so they answer at once.
        self.data_arrived.send_modify(|v| *v = v.wrapping_add(1));
        tracing::info!(topic = %name, "deleted topic");
        Ok(topic)
    }

    /// Adds partitions to a topic (CreatePartitions).
    pub fn create_partitions(&self, name: &str, new_total: i32, validate_only: bool) -> Result<(), MetadataError> {
        let mut inner = self.write_inner();
        let topic = inner.topics.get(name).cloned().ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let current = topic.partitions.len() as i32;
        if new_total <= current {
            return Err(MetadataError::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is higher than or equal to the requested {new_total}"
            )));
        }
        if new_total > MAX_PARTITIONS_PER_TOPIC {
            return Err(MetadataError::InvalidPartitions(format!("{new_total} is above the limit {MAX_PARTITIONS_PER_TOPIC}")));
        }
        if validate_only {
            return Ok(());
        }
        let overrides = topic.config_overrides();
        let settings = config::resolve(&overrides, &self.defaults);
        let mut partitions = topic.partitions.clone();
        let remove_new = |upto: i32| {
            for index in current..upto {
                let _ = std::fs::remove_dir_all(self.partition_dir(name, index));
            }
        };
        for index in current..new_total {
            let dir = self.partition_dir(name, index);
            if dir.exists() {
                std::fs::remove_dir_all(&dir)?;
            }
            match Log::open(&dir, 0, 0, &settings.log) {
                Ok((log, _)) => partitions.push(Arc::new(self.new_partition(name, index, log))),
                Err(e) => {
                    drop(partitions);
                    remove_new(index + 1);
                    return Err(e.into());
                }
            }
        }
        let grown = Arc::new(Topic { name: topic.name.clone(), id: topic.id, partitions, configs: RwLock::new(overrides) });
        if let Err(e) = self.write_topic_file(&Self::stored_topic(&grown)) {
            drop(grown);
            remove_new(new_total);
            return Err(e);
        }
        inner.topics.insert(name.to_string(), grown);
        Ok(())
    }

    /// Replaces a topic's config overrides (after validation) and persists them.
    pub fn set_topic_configs(&self, name: &str, configs: BTreeMap<String, String>, validate_only: bool) -> Result<(), MetadataError> {
        for (key, value) in &configs {
            config::validate(key, value)?;
        }
        if validate_only {
            return if self.topic(name).is_some() { Ok(()) } else { Err(MetadataError::UnknownTopic(name.to_string())) };
        }
        let inner = self.write_inner();
        let topic = inner.topics.get(name).cloned().ok_or_else(|| MetadataError::UnknownTopic(name.to_string()))?;
        let previous = std::mem::replace(&mut *topic.configs.write().unwrap_or_else(std::sync::PoisonError::into_inner), configs);
        if let Err(e) = self.write_topic_file(&Self::stored_topic(&topic)) {
            *topic.configs.write().unwrap_or_else(std::sync::PoisonError::into_inner) = previous;
            return Err(e);
        }
        Ok(())
    }

    /// Writes the recovery-point checkpoint: per partition, the offset below which data is on
    /// disk with its indexes (segments wholly below it are trusted at start-up).
    pub fn write_recovery_checkpoint(&self, flushed: &[(String, i32, i64)]) -> std::io::Result<()> {
        write_checkpoint(&self.data_dir.join(RECOVERY_POINT_FILE), flushed)
    }

    /// Writes the log start offsets of every partition.
    pub fn write_log_start_checkpoint(&self) -> std::io::Result<()> {
        let entries: Vec<(String, i32, i64)> =
            self.topics().iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.index, p.log_start_offset()))).collect();
        write_checkpoint(&self.data_dir.join(LOG_START_FILE), &entries)
    }
}

/// A Kafka-style cluster id: 16 random bytes, URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = String::with_capacity(22);
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        count += 8;
        while count >= 6 {
            count -= 6;
            out.push(ALPHABET[((bits >> count) & 0x3f) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[((bits << (6 - count)) & 0x3f) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("has space").is_err());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
    }

    #[test]
    fn metadata_file_round_trips_and_detects_corruption() {
        let stored = StoredMetadata {
            cluster_id: "abc".into(),
            topics: vec![StoredTopic { name: "t".into(), id: Uuid::new_v4(), partitions: 3, configs: BTreeMap::new() }],
        };
        let mut bytes = Metadata::encode(&stored).expect("encode");
        let back = Metadata::decode(&bytes).expect("decode");
        assert_eq!(back.topics[0].partitions, 3);
        let last = bytes.len() - 3;
        bytes[last] ^= 1;
        assert!(Metadata::decode(&bytes).is_err());
    }
}
