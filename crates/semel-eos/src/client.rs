//! Client settings shared by every part of the toolkit: where the cluster is, properties the
//! user adds, and the properties exactly-once needs, which the user cannot override.

use std::time::Duration;

use rdkafka::ClientConfig;

/// How to reach the cluster, and extra librdkafka properties for every client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    bootstrap: String,
    extra: Vec<(String, String)>,
}

/// Properties the toolkit sets itself; a user value for one of them is refused.
const RESERVED: [&str; 6] =
    ["transactional.id", "enable.idempotence", "acks", "isolation.level", "enable.auto.commit", "enable.auto.offset.store"];

/// A property the toolkit must set itself.
#[derive(Debug, thiserror::Error)]
#[error("the property {0} is set by the toolkit for exactly-once and cannot be given")]
pub struct ReservedProperty(pub String);

impl ClientSettings {
    pub fn new(bootstrap: impl Into<String>) -> Self {
        Self { bootstrap: bootstrap.into(), extra: Vec::new() }
    }

    /// Adds a librdkafka property for every client (security settings, timeouts, ...).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Result<Self, ReservedProperty> {
        let key = key.into();
        if RESERVED.contains(&key.as_str()) {
            return Err(ReservedProperty(key));
        }
        self.extra.push((key, value.into()));
        Ok(self)
    }

    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    fn base(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap);
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
    }

    /// A transactional producer: idempotent, acks=all, `transactional.id` and its timeout.
    pub fn transactional_producer(&self, transactional_id: &str, transaction_timeout: Duration) -> ClientConfig {
        let mut config = self.base();
        config
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", transaction_timeout.as_millis().to_string())
            .set("enable.idempotence", "true")
            .set("acks", "all");
        config
    }

    /// A consumer of a group that reads only committed data and commits nothing by itself
    /// (its offsets go into the producer's transactions).
    pub fn read_committed_consumer(&self, group_id: &str) -> ClientConfig {
        let mut config = self.base();
        config
            .set("group.id", group_id)
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false");
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_properties_are_refused_and_others_kept() {
        let err = ClientSettings::new("b:9092").with("acks", "1").unwrap_err();
        assert_eq!(err.0, "acks");
        let settings = ClientSettings::new("b:9092").with("client.id", "app").expect("allowed");
        let producer = settings.transactional_producer("t-1", Duration::from_secs(10));
        assert_eq!(producer.get("client.id"), Some("app"));
        assert_eq!(producer.get("transactional.id"), Some("t-1"));
        assert_eq!(producer.get("transaction.timeout.ms"), Some("10000"));
        let consumer = settings.read_committed_consumer("g");
        assert_eq!(consumer.get("isolation.level"), Some("read_committed"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
    }
}
