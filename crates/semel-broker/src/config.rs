//! Broker configuration: defaults, the TOML file, and validation.
//!
//! Every field has a default that matches `semel serve` out of the box: listen on
//! 127.0.0.1:9092, data in `./semel-data`, every acknowledged write fsynced.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Settings of the broker. Field names are what the TOML file uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// Address the listener binds. Port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Host and port clients are told to connect to (Metadata); defaults to `listen`.
    pub advertised: Option<String>,
    /// Folder holding the partition logs and the broker's metadata.
    pub data_dir: PathBuf,
    /// This broker's node id.
    pub node_id: i32,
    /// Largest request accepted; a larger frame closes the connection.
    pub max_request_bytes: usize,
    /// Connections beyond this are refused (closed at accept) with a log line.
    pub max_connections: usize,
    /// Largest decompressed size of one produced batch's records; decompression stops there
    /// and the batch is refused (CORRUPT_MESSAGE). At most 256 MiB.
    pub max_decompressed_batch_bytes: usize,
    /// Compressed batches checked at once (each on a blocking thread, not an async worker);
    /// with `max_decompressed_batch_bytes` this bounds the memory decompression can take.
    pub decompression_threads: usize,
    /// Requests read from one connection before its responses are written; the reader waits
    /// when this many are outstanding.
    pub max_in_flight_requests_per_connection: usize,
    /// Connections from one IP address beyond this are refused at accept with a log line
    /// (Kafka's `max.connections.per.ip`; by default only `max_connections` applies).
    pub max_connections_per_ip: usize,
    /// A connection with no request outstanding and no bytes read or written for this long is
    /// closed (Kafka's `connections.max.idle.ms`).
    pub connections_max_idle_ms: u64,
    /// Once a request's size prefix has arrived, its whole frame must arrive within this time,
    /// or the connection is closed (a client that starts frames and stalls holds memory).
    pub request_receive_timeout_ms: u64,
    /// Most bytes of record data in one Fetch response, whatever the request's max_bytes
    /// (Kafka's `fetch.max.bytes`); a first batch larger than this is still returned whole.
    pub fetch_max_bytes: usize,
    /// Bytes the network side may hold over all connections: request frames being received or
    /// handled, and Fetch responses waiting to be written. When it is used up, connections stop
    /// reading until bytes are given back (Kafka's `queued.max.request.bytes` memory pool).
    pub max_buffered_bytes: usize,
    /// Create a topic when a client asks Metadata for one that does not exist.
    pub auto_create_topics_enable: bool,
    /// Partition count of auto-created topics and of CreateTopics with -1.
    pub num_partitions: i32,
    /// How often retention runs.
    pub retention_check_interval_ms: u64,
    /// How often the recovery-point checkpoint is written.
    pub checkpoint_interval_ms: u64,
    /// Periodic flush for relaxed durability (`log.flush.interval.messages` > 1).
    pub flush_interval_ms: u64,
    /// Longest a Fetch may wait (caps the client's max_wait_ms).
    pub fetch_max_wait_ms: u64,
    /// Idempotent producer state is forgotten after this long without a write from the
    /// producer (Kafka's `producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// Defaults of topic configs.
    pub log: LogDefaults,
    /// Consumer group coordinator settings.
    pub groups: crate::coordinator::group::GroupConfig,
    /// Transaction coordinator settings.
    pub transactions: crate::coordinator::txn::TxnConfig,
    /// The log cleaner (compaction of `cleanup.policy=compact` topics and internal logs).
    pub cleaner: CleanerConfig,
}

/// The log cleaner's settings (Kafka's `log.cleaner.*`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleanerConfig {
    /// Run the cleaner (`log.cleaner.enable`).
    pub enable: bool,
    /// Pause when no log needs cleaning (`log.cleaner.backoff.ms`).
    pub backoff_ms: u64,
    /// Memory budget of the key map of one pass (`log.cleaner.dedupe.buffer.size`); when a
    /// log's dirty keys do not fit, it is cleaned in several passes.
    pub dedupe_buffer_bytes: usize,
    /// Bytes read plus written per second by the cleaner, 0 for no limit
    /// (`log.cleaner.io.max.bytes.per.second`).
    pub io_max_bytes_per_second: u64,
}

impl Default for CleanerConfig {
    fn default() -> Self {
        Self { enable: true, backoff_ms: 15_000, dedupe_buffer_bytes: 128 * 1024 * 1024, io_max_bytes_per_second: 0 }
    }
}

/// Broker-wide defaults of topic configs (Kafka's `log.*` settings).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogDefaults {
    pub segment_bytes: i64,
    pub segment_ms: i64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: i64,
    pub index_interval_bytes: i64,
    pub message_timestamp_type: String,
    pub cleanup_policy: String,
    /// Messages written before an fsync. 1 (the default) makes every acknowledged acks=-1
    /// write durable before the answer; larger values trade that for throughput, as Kafka's
    /// `log.flush.interval.messages` does.
    pub flush_interval_messages: u64,
    /// Files of sealed (not active) segments kept open at once, over all logs; others are
    /// opened when read (storage/segment.rs). Active segments are open besides these.
    pub max_open_segment_files: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9092)),
            advertised: None,
            data_dir: PathBuf::from("semel-data"),
            node_id: 1,
            max_request_bytes: 100 * 1024 * 1024,
            max_connections: 1024,
            max_decompressed_batch_bytes: 64 * 1024 * 1024,
            decompression_threads: 2,
            max_in_flight_requests_per_connection: 64,
            max_connections_per_ip: 1024,
            connections_max_idle_ms: 600_000,
            request_receive_timeout_ms: 60_000,
            fetch_max_bytes: 55 * 1024 * 1024,
            max_buffered_bytes: 512 * 1024 * 1024,
            auto_create_topics_enable: true,
            num_partitions: 1,
            retention_check_interval_ms: 30_000,
            checkpoint_interval_ms: 60_000,
            flush_interval_ms: 1_000,
            fetch_max_wait_ms: 30_000,
            producer_id_expiration_ms: 86_400_000,
            log: LogDefaults::default(),
            groups: crate::coordinator::group::GroupConfig::default(),
            transactions: crate::coordinator::txn::TxnConfig::default(),
            cleaner: CleanerConfig::default(),
        }
    }
}

impl Default for LogDefaults {
    fn default() -> Self {
        Self {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            index_interval_bytes: 4096,
            message_timestamp_type: "CreateTime".into(),
            cleanup_policy: "delete".into(),
            flush_interval_messages: 1,
            max_open_segment_files: crate::storage::DEFAULT_MAX_OPEN_SEGMENT_FILES,
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("invalid config file {path}: {source}")]
    Parse { path: PathBuf, source: Box<toml::de::Error> },
    #[error("invalid setting: {0}")]
    Invalid(String),
}

impl BrokerConfig {
    /// Reads a TOML file; keys left out keep their defaults.
    pub fn from_toml_file(path: &std::path::Path) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigFileError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|source| ConfigFileError::Parse { path: path.to_path_buf(), source: Box::new(source) })
    }

    /// Checks relations between settings and the topic-config defaults.
    pub fn validate(&self) -> Result<(), ConfigFileError> {
        let invalid = |m: String| Err(ConfigFileError::Invalid(m));
        if self.max_request_bytes < 1024 || self.max_request_bytes > i32::MAX as usize {
            return invalid(format!("max_request_bytes {} must be between 1024 and {}", self.max_request_bytes, i32::MAX));
        }
        if self.max_connections == 0 || self.max_in_flight_requests_per_connection == 0 {
            return invalid("max_connections and max_in_flight_requests_per_connection must be positive".into());
        }
        if self.max_connections_per_ip == 0 {
            return invalid("max_connections_per_ip must be positive".into());
        }
        if self.connections_max_idle_ms == 0 || self.request_receive_timeout_ms == 0 {
            return invalid("connections_max_idle_ms and request_receive_timeout_ms must be positive".into());
        }
        if self.fetch_max_bytes < 1024 || self.fetch_max_bytes > i32::MAX as usize {
            return invalid(format!("fetch_max_bytes {} must be between 1024 and {}", self.fetch_max_bytes, i32::MAX));
        }
        let needed = self.max_request_bytes.max(self.fetch_max_bytes);
        if self.max_buffered_bytes < needed {
            return invalid(format!(
                "max_buffered_bytes {} must be at least max_request_bytes and fetch_max_bytes ({needed}), or such a request could never be read",
                self.max_buffered_bytes
            ));
        }
        let max = crate::storage::decompress::MAX_DECOMPRESSED_BYTES;
        if self.max_decompressed_batch_bytes < 1024 * 1024 || self.max_decompressed_batch_bytes > max {
            return invalid(format!("max_decompressed_batch_bytes {} must be between 1 MiB and {max}", self.max_decompressed_batch_bytes));
        }
        if self.decompression_threads == 0 {
            return invalid("decompression_threads must be at least 1".into());
        }
        if self.num_partitions < 1 {
            return invalid(format!("num_partitions {} must be at least 1", self.num_partitions));
        }
        if self.log.flush_interval_messages == 0 {
            return invalid("log.flush_interval_messages must be at least 1".into());
        }
        let l = &self.log;
        for (name, value) in [
            ("segment.bytes", l.segment_bytes.to_string()),
            ("segment.ms", l.segment_ms.to_string()),
            ("retention.ms", l.retention_ms.to_string()),
            ("retention.bytes", l.retention_bytes.to_string()),
            ("max.message.bytes", l.max_message_bytes.to_string()),
            ("index.interval.bytes", l.index_interval_bytes.to_string()),
            ("message.timestamp.type", l.message_timestamp_type.clone()),
            ("cleanup.policy", l.cleanup_policy.clone()),
        ] {
            if let Err(e) = crate::metadata::config::validate(name, &value) {
                return invalid(format!("log default: {e}"));
            }
        }
        if self.cleaner.dedupe_buffer_bytes < 1024 * 1024 {
            return invalid(format!("cleaner.dedupe_buffer_bytes {} must be at least 1 MiB", self.cleaner.dedupe_buffer_bytes));
        }
        if self.groups.offsets_segment_bytes < 1024 || self.transactions.state_log_segment_bytes < 1024 {
            return invalid("groups.offsets_segment_bytes and transactions.state_log_segment_bytes must be at least 1024".into());
        }
        if let Some(advertised) = &self.advertised {
            parse_host_port(advertised).map_err(ConfigFileError::Invalid)?;
        }
        Ok(())
    }

    /// The host and port given to clients.
    pub fn advertised_host_port(&self) -> (String, i32) {
        match self.advertised.as_deref().map(parse_host_port) {
            Some(Ok(hp)) => hp,
            _ => (self.listen.ip().to_string(), i32::from(self.listen.port())),
        }
    }
}

/// Parses `HOST:PORT`.
pub fn parse_host_port(value: &str) -> Result<(String, i32), String> {
    let (host, port) = value.rsplit_once(':').ok_or_else(|| format!("'{value}' is not HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| format!("'{port}' in '{value}' is not a port"))?;
    if host.is_empty() {
        return Err(format!("'{value}' has no host"));
    }
    Ok((host.trim_matches(['[', ']']).to_string(), i32::from(port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        BrokerConfig::default().validate().expect("defaults");
    }

    #[test]
    fn toml_overrides_defaults() {
        let config: BrokerConfig =
            toml::from_str("listen = \"127.0.0.1:19092\"\nnum_partitions = 3\n[log]\nsegment_bytes = 4096\n").expect("toml");
        assert_eq!(config.listen.port(), 19092);
        assert_eq!(config.num_partitions, 3);
        assert_eq!(config.log.segment_bytes, 4096);
        assert_eq!(config.log.retention_ms, LogDefaults::default().retention_ms);
        assert!(toml::from_str::<BrokerConfig>("no_such_key = 1").is_err());
    }

    #[test]
    fn advertised_must_be_host_port() {
        assert_eq!(parse_host_port("example.com:9093").expect("ok"), ("example.com".into(), 9093));
        assert!(parse_host_port("nope").is_err());
        assert!(parse_host_port(":1").is_err());
    }
}
