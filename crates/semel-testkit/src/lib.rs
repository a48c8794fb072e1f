//! Test support shared by the tests of semel's crates (a dev-dependency only).
//!
//! The toolkit's acceptance tests run against semel and against Apache Kafka, the engine
//! users move to when they outgrow one machine. [`broker_under_test`] reads the choice from
//! `SEMEL_TEST_BROKER` (`semel`, the default, or `kafka`); [`ApacheKafka`] runs a single-node
//! Kafka from its Maven Central jars through `scripts/kafka.sh`, the same harness the
//! benchmarks use.

mod apache_kafka;

pub use apache_kafka::ApacheKafka;

/// The broker the acceptance tests run against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerUnderTest {
    Semel,
    ApacheKafka,
}

/// `SEMEL_TEST_BROKER`: `semel` (or unset) or `kafka`; anything else stops the test with a
/// message saying what is accepted.
pub fn broker_under_test() -> BrokerUnderTest {
    match std::env::var("SEMEL_TEST_BROKER").as_deref() {
        Err(_) | Ok("") | Ok("semel") => BrokerUnderTest::Semel,
        Ok("kafka") => BrokerUnderTest::ApacheKafka,
        Ok(other) => panic!("SEMEL_TEST_BROKER={other:?}: expected \"semel\" (the default) or \"kafka\" (Apache Kafka, scripts/kafka.sh)"),
    }
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// Waits until no transaction is open on `topic`-`partition` (its last stable offset, what a
/// read_committed consumer reads up to, equals its high watermark) and returns that end.
///
/// Kafka answers EndTxn once a commit is decided and writes its markers to the partitions
/// after, so right after a commit (even after its offsets are readable) an output partition
/// can still be unstable. Call this only once every writer has ended its transactions.
pub fn stable_end(bootstrap: &str, topic: &str, partition: i32, bound: std::time::Duration) -> i64 {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let client = |isolation: &str| -> BaseConsumer {
        rdkafka::ClientConfig::new().set("bootstrap.servers", bootstrap).set("isolation.level", isolation).create().expect("consumer")
    };
    let (committed, uncommitted) = (client("read_committed"), client("read_uncommitted"));
    let call = std::time::Duration::from_secs(60);
    let deadline = std::time::Instant::now() + bound;
    loop {
        let stable = committed.fetch_watermarks(topic, partition, call).map(|w| w.1);
        let high = uncommitted.fetch_watermarks(topic, partition, call).map(|w| w.1);
        match (stable, high) {
            (Ok(stable), Ok(high)) if stable == high => return high,
            last => assert!(
                std::time::Instant::now() < deadline,
                "{topic}-{partition}: a transaction still open after {bound:?} (last stable offset, high watermark: {last:?})"
            ),
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
