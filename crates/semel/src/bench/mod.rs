//! `semel bench`: load drivers built on librdkafka, in the spirit of Kafka's
//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`. They speak plain Kafka, so they
//! work against any Kafka-compatible broker, semel or Apache Kafka.
//!
//! The drivers are blocking loops over librdkafka's poll API; [`run`] moves them off the async
//! runtime. Throughput figures use MiB (1,048,576 bytes), as Kafka's perf tools do.

mod commits;
mod consume;
mod e2e;
mod produce;

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Produce N records (optionally at a fixed rate) and report throughput and send-to-ack latency.
    Produce(produce::ProduceArgs),
    /// Read N records from the beginning of every partition (manual assignment, no consumer
    /// group) and report throughput.
    Consume(consume::ConsumeArgs),
    /// Commit consumer offsets N times and report the rate (also builds a long offsets history).
    Commits(commits::CommitsArgs),
    /// Produce timestamped records at a fixed rate while consuming them, and report the
    /// produce-to-consume latency.
    E2e(e2e::E2eArgs),
}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || match command {
        BenchCommand::Produce(args) => produce::run(&runtime, args),
        BenchCommand::Consume(args) => consume::run(args),
        BenchCommand::E2e(args) => e2e::run(&runtime, args),
        BenchCommand::Commits(args) => commits::run(args),
    })
    .await
    .context("the benchmark thread failed")?
}

/// How long to wait for the first metadata answer before declaring the broker unreachable.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// `--acks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Acks {
    /// Fire and forget: the broker does not answer.
    #[value(name = "0")]
    None,
    /// The partition leader has written the batch.
    #[value(name = "1")]
    Leader,
    /// Every in-sync replica has the batch.
    #[value(name = "all", alias = "-1")]
    All,
}

impl Acks {
    fn as_config(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// `--compression`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    fn as_config(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// `--isolation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Isolation {
    #[value(name = "read_committed")]
    ReadCommitted,
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
}

impl Isolation {
    fn as_config(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Producer settings shared by `bench produce` and `bench e2e`.
#[derive(Debug, Args)]
pub(crate) struct ProducerOpts {
    /// Acknowledgements the producer waits for.
    #[arg(long, value_enum, default_value = "all")]
    acks: Acks,
    /// Enable the idempotent producer (needs InitProducerId on the broker and --acks all).
    #[arg(long, value_name = "BOOL", default_value_t = false, action = clap::ArgAction::Set)]
    idempotence: bool,
    /// Compression codec of produced batches.
    #[arg(long, value_enum, default_value = "none")]
    compression: Compression,
    /// How long the producer waits to fill a batch [librdkafka default: 5].
    #[arg(long, value_name = "MS")]
    linger_ms: Option<u64>,
    /// Maximum size of a batch in bytes [librdkafka default: 1000000].
    #[arg(long, value_name = "BYTES")]
    batch_size: Option<u64>,
    /// Maximum number of records queued in the producer and not yet acknowledged.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    max_queued: u64,
    /// Extra librdkafka producer property (repeatable); applied last, so it overrides the flags.
    #[arg(long = "producer-prop", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    producer_props: Vec<(String, String)>,
}

impl ProducerOpts {
    /// The producer configuration for `bootstrap`.
    fn client_config(&self, bootstrap: &str) -> anyhow::Result<ClientConfig> {
        if self.idempotence && self.acks != Acks::All {
            bail!("--idempotence true needs --acks all (the idempotent producer always waits for all in-sync replicas)");
        }
        if self.max_queued == 0 {
            bail!("--max-queued must be at least 1");
        }
        let mut config = base_config(bootstrap);
        config
            .set("acks", self.acks.as_config())
            .set("enable.idempotence", self.idempotence.to_string())
            .set("compression.type", self.compression.as_config())
            .set("queue.buffering.max.messages", self.max_queued.to_string());
        if let Some(linger) = self.linger_ms {
            config.set("linger.ms", linger.to_string());
        }
        if let Some(size) = self.batch_size {
            config.set("batch.size", size.to_string());
        }
        for (key, value) in &self.producer_props {
            config.set(key, value);
        }
        Ok(config)
    }
}

/// Consumer settings shared by `bench consume` and `bench e2e`.
#[derive(Debug, Args)]
pub(crate) struct ConsumerOpts {
    /// Which records the consumer may read: only those of committed transactions, or all.
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    isolation: Isolation,
    /// Extra librdkafka consumer property (repeatable); applied last, so it overrides the flags.
    #[arg(long = "consumer-prop", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    consumer_props: Vec<(String, String)>,
}

impl ConsumerOpts {
    /// The consumer configuration for `bootstrap`. librdkafka only accepts `assign()` on a
    /// consumer with a `group.id`, but the group is never joined (no subscribe) and nothing is
    /// committed, so the broker needs no group support.
    fn client_config(&self, bootstrap: &str) -> ClientConfig {
        let mut config = base_config(bootstrap);
        config
            .set("group.id", "semel-bench")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", self.isolation.as_config());
        for (key, value) in &self.consumer_props {
            config.set(key, value);
        }
        config
    }
}

/// Parses a `KEY=VALUE` librdkafka property.
fn parse_key_value(arg: &str) -> Result<(String, String), String> {
    let Some((key, value)) = arg.split_once('=') else {
        return Err(format!("expected KEY=VALUE, got {arg:?}"));
    };
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("the property name is empty in {arg:?}"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn base_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("client.id", "semel-bench");
    config
}

/// Locks a mutex, ignoring poisoning (the guarded data are plain counters).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A client context that remembers the last global error librdkafka reported (such as
/// "connection refused"), so a failure message can say why the client made no progress.
#[derive(Default)]
pub(crate) struct BenchContext {
    last_error: Mutex<Option<String>>,
}

impl BenchContext {
    fn last_error(&self) -> Option<String> {
        lock(&self.last_error).clone()
    }

    /// " (last client error: ...)" or nothing.
    fn last_error_suffix(&self) -> String {
        self.last_error().map(|e| format!(" (last client error: {e})")).unwrap_or_default()
    }
}

impl ClientContext for BenchContext {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!(%error, reason, "librdkafka error");
        *lock(&self.last_error) = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for BenchContext {}

/// The partitions of `topic`, or `None` if the broker does not know the topic. Fetches the
/// metadata of all topics so that asking never auto-creates the topic.
fn fetch_partitions(client: &Client<BenchContext>, bootstrap: &str, topic: &str) -> anyhow::Result<Option<Vec<i32>>> {
    let metadata = client.fetch_metadata(None, METADATA_TIMEOUT).map_err(|error| {
        anyhow!(
            "cannot fetch metadata from {bootstrap} within {}s ({error}); is a Kafka broker listening there?{}",
            METADATA_TIMEOUT.as_secs(),
            client.context().last_error_suffix()
        )
    })?;
    let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
        return Ok(None);
    };
    if let Some(error) = found.error() {
        let code = RDKafkaErrorCode::from(error);
        if code == RDKafkaErrorCode::UnknownTopicOrPartition {
            return Ok(None);
        }
        bail!("{bootstrap} reports topic {topic:?} as unusable: {code}");
    }
    let mut partitions: Vec<i32> = found.partitions().iter().map(|p| p.id()).collect();
    partitions.sort_unstable();
    Ok(Some(partitions))
}

/// Makes sure `topic` exists, creating it through the admin API if it does not, with
/// `partitions` partitions (default 1) and replication factor 1. Returns its partition count.
fn ensure_topic(
    runtime: &tokio::runtime::Handle,
    bootstrap: &str,
    topic: &str,
    partitions: Option<i32>,
    props: &[(String, String)],
    topic_configs: &[(String, String)],
) -> anyhow::Result<usize> {
    if partitions.is_some_and(|p| p < 1) {
        bail!("--partitions must be at least 1");
    }
    let mut config = base_config(bootstrap);
    // Security and connection settings given for the producer apply to the admin client too.
    for (key, value) in props {
        config.set(key, value);
    }
    let admin: AdminClient<BenchContext> = config
        .create_with_context(BenchContext::default())
        .context("cannot create the Kafka admin client (check the --producer-prop values)")?;
    if let Some(existing) = fetch_partitions(admin.inner(), bootstrap, topic)? {
        if let Some(requested) = partitions.filter(|&p| p as usize != existing.len()) {
            tracing::warn!(
                topic,
                existing = existing.len(),
                requested,
                "the topic already exists with another partition count; using it as it is"
            );
        }
        return Ok(existing.len());
    }

    let partitions = partitions.unwrap_or(1);
    let mut new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for (key, value) in topic_configs {
        new_topic = new_topic.set(key, value);
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = runtime
        .block_on(admin.create_topics([&new_topic], &options))
        .with_context(|| format!("cannot create topic {topic:?} on {bootstrap}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => bail!("cannot create topic {name:?} with {partitions} partitions on {bootstrap}: {code}"),
        }
    }
    // Topic creation propagates asynchronously on a real cluster: wait until metadata shows it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(created) = fetch_partitions(admin.inner(), bootstrap, topic)? {
            if !created.is_empty() {
                tracing::info!(topic, partitions = created.len(), "created the topic");
                return Ok(created.len());
            }
        }
        if Instant::now() >= deadline {
            bail!("topic {topic:?} was created but does not show up in the metadata of {bootstrap} after 30s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A latency distribution recorded in microseconds.
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    /// Up to one hour, three significant digits.
    fn new() -> anyhow::Result<Self> {
        let histogram = Histogram::new_with_bounds(1, 3_600_000_000, 3).context("cannot create the latency histogram")?;
        Ok(Latencies(histogram))
    }

    fn record(&mut self, elapsed: Duration) {
        self.0.saturating_record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    fn summary(&self) -> LatencySummary {
        let h = &self.0;
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            p50_ms: micros_to_ms(h.value_at_quantile(0.50)),
            p99_ms: micros_to_ms(h.value_at_quantile(0.99)),
            p999_ms: micros_to_ms(h.value_at_quantile(0.999)),
            max_ms: micros_to_ms(h.max()),
            mean_ms: h.mean() / 1000.0,
        }
    }
}

fn micros_to_ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct LatencySummary {
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
    mean_ms: f64,
}

impl LatencySummary {
    fn text(&self) -> String {
        format!(
            "p50 {}, p99 {}, p99.9 {}, max {}, mean {} (ms)",
            format_ms(self.p50_ms),
            format_ms(self.p99_ms),
            format_ms(self.p999_ms),
            format_ms(self.max_ms),
            format_ms(self.mean_ms)
        )
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "p50": self.p50_ms,
            "p99": self.p99_ms,
            "p99_9": self.p999_ms,
            "max": self.max_ms,
            "mean": self.mean_ms,
        })
    }
}

/// Milliseconds with three decimals below 10 ms, one below 1000 ms, none above.
fn format_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.3}")
    } else if ms < 1000.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

/// `count / secs`, or 0 for an empty interval.
fn per_sec(count: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count / secs
    } else {
        0.0
    }
}

fn mib_per_sec(bytes: u64, elapsed: Duration) -> f64 {
    per_sec(bytes as f64 / (1024.0 * 1024.0), elapsed)
}

/// Prints a JSON value as one line on stdout.
fn print_json(value: &serde_json::Value) {
    println!("{value}");
}

/// A small xorshift generator: good enough for filler bytes and keys, and dependency-free.
pub(crate) struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }

    /// A seed that differs between runs.
    fn from_clock() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        XorShift::new(nanos ^ u64::from(std::process::id()).rotate_left(32))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Fills `buf` with random upper-case letters, like Kafka's producer perf test, so that
    /// compression has about as much to work with as there.
    fn fill_letters(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = b'A' + (self.next_u64() % 26) as u8;
        }
    }
}

/// `len` random upper-case letters.
fn random_letters(len: usize, rng: &mut XorShift) -> Vec<u8> {
    let mut buf = vec![0; len];
    rng.fill_letters(&mut buf);
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        bench: BenchCommand,
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "bench",
            "e2e",
            "--acks",
            "1",
            "--producer-prop",
            "linger.ms=0",
            "--consumer-prop",
            "fetch.wait.max.ms=10",
        ])
        .expect("e2e arguments");
        let BenchCommand::E2e(args) = cli.bench else { panic!("not e2e: {cli:?}") };
        assert_eq!(args.producer.producer_props, [("linger.ms".to_owned(), "0".to_owned())]);
        assert_eq!(args.consumer.consumer_props, [("fetch.wait.max.ms".to_owned(), "10".to_owned())]);
        assert!(Cli::try_parse_from(["bench", "produce", "--topic", "t", "--records", "1", "--throughput", "-1"]).is_ok());
        assert!(Cli::try_parse_from(["bench", "produce", "--topic", "t", "--records", "1", "--acks", "2"]).is_err());
    }

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(parse_key_value("linger.ms=5"), Ok(("linger.ms".to_owned(), "5".to_owned())));
        assert_eq!(parse_key_value("sasl.password=a=b"), Ok(("sasl.password".to_owned(), "a=b".to_owned())));
        assert_eq!(parse_key_value(" acks =all"), Ok(("acks".to_owned(), "all".to_owned())));
        assert_eq!(parse_key_value("client.id="), Ok(("client.id".to_owned(), String::new())));
        assert!(parse_key_value("linger.ms").is_err());
        assert!(parse_key_value("=5").is_err());
    }

    #[test]
    fn milliseconds_are_formatted_by_magnitude() {
        assert_eq!(format_ms(0.0), "0.000");
        assert_eq!(format_ms(1.23456), "1.235");
        assert_eq!(format_ms(12.345), "12.3");
        assert_eq!(format_ms(1234.5), "1234");
    }

    #[test]
    fn latency_summary_reads_percentiles_in_milliseconds() {
        let mut latencies = Latencies::new().expect("histogram");
        assert_eq!(latencies.summary(), LatencySummary::default());
        for us in 1..=1000u64 {
            latencies.record(Duration::from_micros(us * 10));
        }
        let summary = latencies.summary();
        // Three significant digits: values are exact to within 0.1%.
        assert!((summary.p50_ms - 5.0).abs() < 0.01, "{summary:?}");
        assert!((summary.p99_ms - 9.9).abs() < 0.01, "{summary:?}");
        assert!((summary.p999_ms - 9.99).abs() < 0.01, "{summary:?}");
        assert!((summary.max_ms - 10.0).abs() < 0.01, "{summary:?}");
        assert!((summary.mean_ms - 5.005).abs() < 0.01, "{summary:?}");
    }

    #[test]
    fn rates_of_an_empty_interval_are_zero() {
        assert_eq!(per_sec(10.0, Duration::ZERO), 0.0);
        assert_eq!(mib_per_sec(2 * 1024 * 1024, Duration::from_secs(2)), 1.0);
    }

    #[test]
    fn filler_is_upper_case_letters() {
        let mut rng = XorShift::new(42);
        let letters = random_letters(1000, &mut rng);
        assert!(letters.iter().all(u8::is_ascii_uppercase));
        assert_ne!(letters, random_letters(1000, &mut rng));
    }
}
