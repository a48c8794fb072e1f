//! Topic configs: the keys semel knows, how each is validated, and how a topic's overrides are
//! resolved against the broker's defaults.
//!
//! The bounds are those of Kafka 4's `LogConfig` (`segment.bytes` at least 1 MiB since KIP-1030,
//! `segment.index.bytes` at least 4, `segment.ms` at least 1, `retention.ms` at least -1,
//! `min.cleanable.dirty.ratio` between 0 and 1, ...); a value outside them is answered
//! INVALID_CONFIG by CreateTopics, AlterConfigs and IncrementalAlterConfigs. A topic cannot make
//! the broker open one file per few bytes (and run out of file descriptors).
//!
//! `internal.segment.bytes` is Kafka's internal, test-only escape (`LogConfig.INTERNAL_SEGMENT_BYTES_CONFIG`):
//! when set it replaces `segment.bytes` and has no 1 MiB minimum, so tests can force segment
//! rolls. It is accepted on CreateTopics and the Alter requests but not listed by DescribeConfigs
//! (it is not in [`TOPIC_CONFIGS`], see [`INTERNAL_TOPIC_CONFIGS`]).

use std::collections::BTreeMap;

use crate::config::LogDefaults;
use crate::storage::cleaner::CompactSettings;
use crate::storage::log::LogSettings;
use crate::storage::partition::AppendSettings;

/// Kafka's config types as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Long = 5,
    Double = 6,
    List = 7,
}

/// A topic config semel accepts. `applied` says whether semel acts on it; the others are
/// accepted for compatibility with tools that set them and have no effect on a single broker
/// (documented in docs/configuration.md).
#[derive(Debug)]
pub struct ConfigDef {
    pub name: &'static str,
    pub kind: ConfigType,
    pub applied: bool,
    validate: fn(&str) -> Result<(), String>,
}

fn long_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v| match v.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(()),
        Ok(n) => Err(format!("{n} is below the minimum {min}")),
        Err(_) => Err(format!("'{v}' is not a number")),
    }
}

fn int_at_least(min: i64) -> impl Fn(&str) -> Result<(), String> {
    move |v| match v.trim().parse::<i32>() {
        Ok(n) if i64::from(n) >= min => Ok(()),
        Ok(n) => Err(format!("{n} is below the minimum {min}")),
        Err(_) => Err(format!("'{v}' is not a 32-bit number")),
    }
}

macro_rules! def {
    ($name:literal, $kind:ident, $applied:literal, $validate:expr) => {
        ConfigDef { name: $name, kind: ConfigType::$kind, applied: $applied, validate: $validate }
    };
}

fn v_long_m1(v: &str) -> Result<(), String> {
    long_at_least(-1)(v)
}
fn v_long_0(v: &str) -> Result<(), String> {
    long_at_least(0)(v)
}
fn v_long_1(v: &str) -> Result<(), String> {
    long_at_least(1)(v)
}
fn v_int_0(v: &str) -> Result<(), String> {
    int_at_least(0)(v)
}
fn v_int_1(v: &str) -> Result<(), String> {
    int_at_least(1)(v)
}
/// Kafka 4's minimum `segment.bytes` (KIP-1030: `atLeast(1024 * 1024)`).
pub const MIN_SEGMENT_BYTES: i64 = 1024 * 1024;

fn v_segment_bytes(v: &str) -> Result<(), String> {
    int_at_least(MIN_SEGMENT_BYTES)(v).map_err(|e| format!("{e} (1 MiB, as Kafka 4 enforces it)"))
}
fn v_internal_segment_bytes(v: &str) -> Result<(), String> {
    // Kafka has no validator for it; below a record overhead (LegacyRecord.RECORD_OVERHEAD_V0,
    // 14 bytes) a segment is meaningless.
    int_at_least(14)(v)
}
fn v_int_4(v: &str) -> Result<(), String> {
    int_at_least(4)(v)
}
fn v_long(v: &str) -> Result<(), String> {
    long_at_least(i64::MIN)(v)
}
fn v_bool(v: &str) -> Result<(), String> {
    match v.trim() {
        "true" | "false" => Ok(()),
        _ => Err(format!("'{v}' is not true or false")),
    }
}
fn v_ratio(v: &str) -> Result<(), String> {
    match v.trim().parse::<f64>() {
        Ok(n) if (0.0..=1.0).contains(&n) => Ok(()),
        _ => Err(format!("'{v}' is not a number between 0 and 1")),
    }
}
fn v_cleanup_policy(v: &str) -> Result<(), String> {
    let parts: Vec<&str> = v.split(',').map(str::trim).collect();
    if parts.is_empty() || parts.iter().any(|p| !matches!(*p, "delete" | "compact")) {
        return Err(format!("'{v}' is not a list of delete and compact"));
    }
    Ok(())
}
fn v_timestamp_type(v: &str) -> Result<(), String> {
    match v.trim() {
        "CreateTime" | "LogAppendTime" => Ok(()),
        _ => Err(format!("'{v}' is not CreateTime or LogAppendTime")),
    }
}
fn v_compression_type(v: &str) -> Result<(), String> {
    // semel stores batches as the producer compressed them; re-compression is not done.
    match v.trim() {
        "producer" => Ok(()),
        other => Err(format!("compression.type '{other}' is not supported: semel keeps the producer's compression (use 'producer')")),
    }
}

/// Every topic config semel accepts, sorted by name.
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    def!("cleanup.policy", List, true, v_cleanup_policy),
    def!("compression.type", String, true, v_compression_type),
    def!("delete.retention.ms", Long, true, v_long_0),
    def!("file.delete.delay.ms", Long, false, v_long_0),
    def!("flush.messages", Long, false, v_long_1),
    def!("flush.ms", Long, false, v_long_0),
    def!("index.interval.bytes", Int, true, v_int_0),
    def!("max.compaction.lag.ms", Long, true, v_long_1),
    def!("max.message.bytes", Int, true, v_int_0),
    def!("message.timestamp.after.max.ms", Long, false, v_long_0),
    def!("message.timestamp.before.max.ms", Long, false, v_long_0),
    def!("message.timestamp.type", String, true, v_timestamp_type),
    def!("min.cleanable.dirty.ratio", Double, true, v_ratio),
    def!("min.compaction.lag.ms", Long, true, v_long_0),
    def!("min.insync.replicas", Int, false, v_int_1),
    def!("preallocate", Boolean, false, v_bool),
    // Kafka: no bound (any negative value means no limit).
    def!("retention.bytes", Long, true, v_long),
    def!("retention.ms", Long, true, v_long_m1),
    def!("segment.bytes", Int, true, v_segment_bytes),
    def!("segment.index.bytes", Int, false, v_int_4),
    def!("segment.jitter.ms", Long, false, v_long_0),
    def!("segment.ms", Long, true, v_long_1),
    def!("unclean.leader.election.enable", Boolean, false, v_bool),
];

/// Kafka's internal topic configs semel accepts (`defineInternal`): settable, never described.
pub static INTERNAL_TOPIC_CONFIGS: &[ConfigDef] = &[def!("internal.segment.bytes", Int, true, v_internal_segment_bytes)];

pub fn find(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().chain(INTERNAL_TOPIC_CONFIGS).find(|d| d.name == name)
}

/// Why a config was refused; answered as INVALID_CONFIG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Checks one key and value.
pub fn validate(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = find(name).ok_or_else(|| ConfigError(format!("unknown topic config '{name}'")))?;
    (def.validate)(value).map_err(|e| ConfigError(format!("invalid value for {name}: {e}")))
}

/// The broker default of a topic config, as a string.
pub fn default_value(name: &str, defaults: &LogDefaults) -> String {
    match name {
        "cleanup.policy" => defaults.cleanup_policy.clone(),
        "compression.type" => "producer".into(),
        "delete.retention.ms" => "86400000".into(),
        "file.delete.delay.ms" => "60000".into(),
        "flush.messages" => defaults.flush_interval_messages.to_string(),
        "flush.ms" => "9223372036854775807".into(),
        "index.interval.bytes" => defaults.index_interval_bytes.to_string(),
        "max.compaction.lag.ms" => "9223372036854775807".into(),
        "max.message.bytes" => defaults.max_message_bytes.to_string(),
        "message.timestamp.after.max.ms" | "message.timestamp.before.max.ms" => "9223372036854775807".into(),
        "message.timestamp.type" => defaults.message_timestamp_type.clone(),
        "min.cleanable.dirty.ratio" => "0.5".into(),
        "min.compaction.lag.ms" => "0".into(),
        "min.insync.replicas" => "1".into(),
        "preallocate" | "unclean.leader.election.enable" => "false".into(),
        "retention.bytes" => defaults.retention_bytes.to_string(),
        "retention.ms" => defaults.retention_ms.to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.index.bytes" => "10485760".into(),
        "segment.jitter.ms" => "0".into(),
        "segment.ms" => defaults.segment_ms.to_string(),
        _ => String::new(),
    }
}

/// A topic's effective settings: its overrides over the broker defaults.
pub(crate) fn resolve(overrides: &BTreeMap<String, String>, defaults: &LogDefaults) -> AppendSettings {
    let get = |name: &str| overrides.get(name).cloned().unwrap_or_else(|| default_value(name, defaults));
    let long = |name: &str| get(name).trim().parse::<i64>().unwrap_or(-1);
    // Retention deletes segments only under the delete policy (Kafka: compact alone keeps
    // every segment and leaves the log to the cleaner).
    let deletes = get("cleanup.policy").split(',').any(|p| p.trim() == "delete");
    let compacts = get("cleanup.policy").split(',').any(|p| p.trim() == "compact");
    AppendSettings {
        log: LogSettings {
            // internal.segment.bytes wins when set (Kafka's LogConfig.segmentSize()).
            segment_bytes: overrides
                .get("internal.segment.bytes")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or_else(|| long("segment.bytes"))
                .max(14) as u64,
            segment_ms: long("segment.ms").max(1),
            retention_ms: if deletes { long("retention.ms") } else { -1 },
            retention_bytes: if deletes { long("retention.bytes") } else { -1 },
            index_interval_bytes: long("index.interval.bytes").max(0) as u64,
        },
        max_message_bytes: long("max.message.bytes").max(0) as usize,
        log_append_time: get("message.timestamp.type").trim() == "LogAppendTime",
        compaction: compacts.then(|| CompactSettings {
            delete_retention_ms: long("delete.retention.ms").max(0),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio").trim().parse().unwrap_or(0.5),
            min_compaction_lag_ms: long("min.compaction.lag.ms").max(0),
            max_compaction_lag_ms: get("max.compaction.lag.ms").trim().parse::<i64>().map_or(i64::MAX, |v| v.max(1)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_are_sorted_and_validated() {
        assert!(TOPIC_CONFIGS.windows(2).all(|w| w[0].name < w[1].name));
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("segment.bytes", "abc").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "keep").is_err());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
    }

    #[test]
    fn kafka_4_bounds() {
        assert!(validate("segment.bytes", "1048575").is_err());
        assert!(validate("segment.bytes", "1048576").is_ok());
        assert!(validate("segment.bytes", "2147483648").is_err());
        assert!(validate("internal.segment.bytes", "1000").is_ok());
        assert!(validate("internal.segment.bytes", "0").is_err());
        assert!(validate("segment.index.bytes", "3").is_err());
        assert!(validate("segment.ms", "0").is_err());
        assert!(validate("index.interval.bytes", "-1").is_err());
        assert!(validate("max.message.bytes", "-1").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("delete.retention.ms", "-1").is_err());
        assert!(validate("min.compaction.lag.ms", "-1").is_err());
        assert!(validate("max.compaction.lag.ms", "0").is_err());
        assert!(validate("retention.bytes", "-5").is_ok());
        assert!(validate("flush.messages", "0").is_err());
        assert!(validate("min.insync.replicas", "0").is_err());
    }

    #[test]
    fn overrides_win_over_defaults() {
        let defaults = LogDefaults::default();
        let mut overrides = BTreeMap::new();
        overrides.insert("segment.bytes".to_string(), "2000000".to_string());
        overrides.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let settings = resolve(&overrides, &defaults);
        assert_eq!(settings.log.segment_bytes, 2_000_000);
        overrides.insert("internal.segment.bytes".to_string(), "1000".to_string());
        assert_eq!(resolve(&overrides, &defaults).log.segment_bytes, 1000);
        assert!(settings.log_append_time);
        assert_eq!(settings.log.retention_ms, defaults.retention_ms);
    }
}
