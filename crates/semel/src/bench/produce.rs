//! `semel bench produce`: send N records, optionally paced to a target rate, and measure the
//! latency from `send` to the delivery report of each record.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::{
    ensure_topic, lock, mib_per_sec, per_sec, print_json, random_letters, BenchContext, Latencies, LatencySummary, ProducerOpts, XorShift,
    METADATA_TIMEOUT,
};

#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Broker(s) to bootstrap from, comma-separated.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic to produce to.
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long, value_name = "N")]
    records: u64,
    /// Size of each record value in bytes (random upper-case letters, generated once).
    #[arg(long, value_name = "BYTES", default_value_t = 1024)]
    record_size: usize,
    /// Size of each record key in bytes (random per record); no key if absent.
    #[arg(long, value_name = "BYTES")]
    key_size: Option<usize>,
    /// Cycle through this many distinct keys (`key-<n>` for record n modulo N, padded to
    /// --key-size), so that a compacted topic keeps N live records.
    #[arg(long, value_name = "N")]
    keys: Option<u64>,
    /// Send in transactions of this many milliseconds (a transactional producer with
    /// transactional.id semel-bench-<pid>; needs --acks all); reports commit latency too.
    #[arg(long, value_name = "MS")]
    transaction_ms: Option<u64>,
    /// Wait for every record sent so far to be acknowledged every this many milliseconds,
    /// without transactions (what a transactional run's commits do to the client's pipeline,
    /// for comparing with --transaction-ms).
    #[arg(long, value_name = "MS", conflicts_with = "transaction_ms")]
    drain_every_ms: Option<u64>,
    /// Config of the topic if it has to be created (for example cleanup.policy=compact).
    #[arg(long = "topic-config", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
    topic_configs: Vec<(String, String)>,
    /// Partition count used if the topic has to be created (replication factor 1) [default: 1].
    #[arg(long, value_name = "P")]
    partitions: Option<i32>,
    /// Target rate in records per second; -1 for as fast as possible.
    #[arg(long, value_name = "RECORDS_PER_SEC", default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,
    #[command(flatten)]
    producer: ProducerOpts,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(runtime: &tokio::runtime::Handle, mut args: ProduceArgs) -> anyhow::Result<()> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    if let Some(ms) = args.transaction_ms {
        if ms == 0 || args.producer.acks != super::Acks::All {
            bail!("--transaction-ms needs a positive duration and --acks all");
        }
        args.producer.producer_props.push(("transactional.id".to_owned(), format!("semel-bench-{}", std::process::id())));
    }
    let rate = target_rate(args.throughput)?;
    let producer = create_producer(&args.producer, &args.bootstrap)?;
    if args.keys == Some(0) {
        anyhow::bail!("--keys must be at least 1");
    }
    let partitions =
        ensure_topic(runtime, &args.bootstrap, &args.topic, args.partitions, &args.producer.producer_props, &args.topic_configs)?;
    warm_up(&producer, &args.bootstrap, &args.topic)?;
    let mut payload = random_letters(args.record_size, &mut XorShift::from_clock());
    let plan = Plan {
        topic: &args.topic,
        records: args.records,
        rate,
        key_size: args.key_size.or(args.keys.map(|_| 16)),
        keys: args.keys,
        transaction: args.transaction_ms.map(Duration::from_millis),
        drain_every: args.drain_every_ms.map(Duration::from_millis),
        idempotent: args.producer.idempotence,
        progress: !args.json,
    };
    if !args.json {
        eprintln!(
            "producing {} records of {} bytes to {} ({partitions} partitions) on {}, acks {}, compression {}, {}",
            args.records,
            args.record_size,
            args.topic,
            args.bootstrap,
            args.producer.acks.as_config(),
            args.producer.compression.as_config(),
            match rate {
                Some(rate) => format!("{rate} records/s"),
                None => "unthrottled".to_owned(),
            }
        );
    }
    let report = send_all(&producer, &plan, &mut payload, |_| {})?;

    if args.json {
        print_json(&serde_json::json!({
            "bench": "produce",
            "topic": args.topic,
            "partitions": partitions,
            "record_size": args.record_size,
            "records": report.sent,
            "acked": report.acked,
            "failed": report.failed,
            "bytes": report.bytes,
            "elapsed_secs": report.elapsed.as_secs_f64(),
            "records_per_sec": report.records_per_sec(),
            "mib_per_sec": report.mib_per_sec(),
            "latency_ms": report.latency.json(),
            "transactions": report.transactions,
            "commit_latency_ms": report.commit_latency.json(),
            "first_error": report.first_error,
        }));
    } else {
        println!(
            "{} records sent, {} acked, {} failed in {:.3} s: {:.1} records/s, {:.2} MiB/s",
            report.sent,
            report.acked,
            report.failed,
            report.elapsed.as_secs_f64(),
            report.records_per_sec(),
            report.mib_per_sec()
        );
        println!("send-to-ack latency: {}", report.latency.text());
        if report.transactions > 0 {
            println!("{} transactions, commit latency: {}", report.transactions, report.commit_latency.text());
        }
    }
    report.check_all_acked()
}

/// `--throughput` as a rate: `None` for unthrottled.
pub(super) fn target_rate(throughput: f64) -> anyhow::Result<Option<f64>> {
    if throughput.is_nan() || throughput == 0.0 {
        bail!("--throughput must be a positive rate, or -1 for unthrottled");
    }
    if throughput < 0.0 {
        return Ok(None);
    }
    if !throughput.is_finite() {
        return Ok(None);
    }
    Ok(Some(throughput))
}

/// When record `index` is due, relative to the start, at `rate` records per second; `None` if
/// that is too far away to represent.
fn due_after(index: u64, rate: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(index as f64 / rate).ok()
}

pub(super) type BenchProducer = BaseProducer<ProduceContext>;

pub(super) fn create_producer(opts: &ProducerOpts, bootstrap: &str) -> anyhow::Result<BenchProducer> {
    let context = ProduceContext {
        base: BenchContext::default(),
        tally: Mutex::new(Tally { latencies: Latencies::new()?, acked: 0, failed: 0, bytes: 0, first_error: None }),
    };
    opts.client_config(bootstrap)?
        .create_with_context(context)
        .context("cannot create the Kafka producer (check the --producer-prop values)")
}

/// Connects the producer and loads the metadata of `topic` before the clock starts, so the first
/// records do not wait for them.
pub(super) fn warm_up(producer: &BenchProducer, bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + METADATA_TIMEOUT;
    loop {
        let metadata = producer
            .client()
            .fetch_metadata(Some(topic), METADATA_TIMEOUT)
            .map_err(|error| anyhow!("cannot fetch the metadata of {topic:?} from {bootstrap}: {error}"))?;
        let ready = metadata.topics().iter().any(|t| {
            t.name() == topic && t.error().is_none() && !t.partitions().is_empty() && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready || Instant::now() >= deadline {
            // If the leaders are still unknown, librdkafka keeps asking while records queue up.
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// What the delivery reports said so far.
struct Tally {
    latencies: Latencies,
    acked: u64,
    failed: u64,
    bytes: u64,
    first_error: Option<String>,
}

pub(super) struct ProduceContext {
    base: BenchContext,
    tally: Mutex<Tally>,
}

impl ClientContext for ProduceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.base.error(error, reason);
    }
}

impl ProducerContext for ProduceContext {
    /// When the record was handed to `send`.
    type DeliveryOpaque = Box<Instant>;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: Box<Instant>) {
        let latency = sent_at.elapsed();
        let mut tally = lock(&self.tally);
        match result {
            Ok(message) => {
                tally.acked += 1;
                tally.bytes += (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
                tally.latencies.record(latency);
            }
            Err((error, _)) => {
                tally.failed += 1;
                if tally.first_error.is_none() {
                    tally.first_error = Some(error.to_string());
                }
            }
        }
    }
}

/// What [`send_all`] sends.
pub(super) struct Plan<'a> {
    pub(super) topic: &'a str,
    pub(super) records: u64,
    /// Records per second; `None` for unthrottled.
    pub(super) rate: Option<f64>,
    pub(super) key_size: Option<usize>,
    /// Cycle through this many keys instead of random ones.
    pub(super) keys: Option<u64>,
    /// Send in transactions of this length (the producer is transactional).
    pub(super) transaction: Option<Duration>,
    /// Wait for all acknowledgements this often (no transactions).
    pub(super) drain_every: Option<Duration>,
    /// For the hint of a fatal error.
    pub(super) idempotent: bool,
    /// Print progress to stderr every few seconds.
    pub(super) progress: bool,
}

/// The outcome of [`send_all`].
pub(super) struct ProduceReport {
    pub(super) sent: u64,
    pub(super) acked: u64,
    pub(super) failed: u64,
    /// Value and key bytes of the acknowledged records.
    pub(super) bytes: u64,
    /// From the first send to the last delivery report.
    pub(super) elapsed: Duration,
    /// Send-to-ack latency of the acknowledged records.
    pub(super) latency: LatencySummary,
    /// Transactions committed, and how long each commit_transaction() took.
    pub(super) transactions: u64,
    pub(super) commit_latency: LatencySummary,
    pub(super) first_error: Option<String>,
}

impl ProduceReport {
    pub(super) fn records_per_sec(&self) -> f64 {
        per_sec(self.acked as f64, self.elapsed)
    }

    pub(super) fn mib_per_sec(&self) -> f64 {
        mib_per_sec(self.bytes, self.elapsed)
    }

    /// An error if some records were not delivered.
    pub(super) fn check_all_acked(&self) -> anyhow::Result<()> {
        if self.failed > 0 {
            bail!(
                "{} of {} records were not delivered; first error: {}",
                self.failed,
                self.sent,
                self.first_error.as_deref().unwrap_or("unknown")
            );
        }
        Ok(())
    }
}

/// Longest wait for init_transactions and commit_transaction.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Sends `plan.records` copies of `payload` (passed through `stamp` just before each send), waits
/// for every delivery report and returns the tally. A full producer queue is waited out by
/// serving delivery reports, never by dropping records.
pub(super) fn send_all(
    producer: &BenchProducer,
    plan: &Plan<'_>,
    payload: &mut [u8],
    mut stamp: impl FnMut(&mut [u8]),
) -> anyhow::Result<ProduceReport> {
    let mut rng = XorShift::from_clock();
    let mut key = plan.key_size.map(|size| vec![0u8; size]);
    let mut progress = Progress::new(plan.progress);
    let mut commits = Latencies::new()?;
    let mut transactions = 0u64;
    if plan.transaction.is_some() {
        producer.init_transactions(TRANSACTION_TIMEOUT).context("init_transactions failed")?;
        producer.begin_transaction().context("begin_transaction failed")?;
    }
    let start = Instant::now();
    let mut txn_start = start;
    for index in 0..plan.records {
        if let Some(period) = plan.drain_every {
            if txn_start.elapsed() >= period {
                drain(producer, plan)?;
                txn_start = Instant::now();
            }
        }
        if let Some(period) = plan.transaction {
            if txn_start.elapsed() >= period {
                let commit = Instant::now();
                drain(producer, plan)?;
                producer.commit_transaction(TRANSACTION_TIMEOUT).with_context(|| format!("commit of transaction {transactions} failed"))?;
                commits.record(commit.elapsed());
                transactions += 1;
                producer.begin_transaction().context("begin_transaction failed")?;
                txn_start = Instant::now();
            }
        }
        if let Some(rate) = plan.rate {
            let Some(due) = due_after(index, rate).and_then(|after| start.checked_add(after)) else {
                bail!("--throughput {rate} is too low to schedule record {index}");
            };
            wait_until(producer, due);
        }
        stamp(payload);
        if let Some(key) = key.as_mut() {
            match plan.keys {
                Some(keys) => {
                    let name = format!("key-{}", index % keys);
                    key.fill(b'.');
                    let n = name.len().min(key.len());
                    key[..n].copy_from_slice(&name.as_bytes()[..n]);
                }
                None => rng.fill_letters(key),
            }
        }
        let mut record = BaseRecord::<[u8], [u8], _>::with_opaque_to(plan.topic, Box::new(Instant::now())).payload(&payload[..]);
        if let Some(key) = key.as_deref() {
            record = record.key(key);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned)) => {
                    record = returned;
                    // The queue drains as delivery reports are served.
                    producer.poll(Duration::from_millis(1));
                    check_fatal(producer, plan)?;
                }
                Err((error, _)) => return Err(error).with_context(|| format!("cannot send record {index} to topic {:?}", plan.topic)),
            }
        }
        producer.poll(Duration::ZERO);
        if index % 1024 == 0 {
            check_fatal(producer, plan)?;
            progress.tick(producer);
        }
    }
    if plan.transaction.is_some() {
        let commit = Instant::now();
        drain(producer, plan)?;
        producer.commit_transaction(TRANSACTION_TIMEOUT).context("commit of the last transaction failed")?;
        commits.record(commit.elapsed());
        transactions += 1;
    }
    // Wait for the remaining delivery reports; librdkafka fails a record after message.timeout.ms.
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(100));
        check_fatal(producer, plan)?;
        progress.tick(producer);
    }
    producer.poll(Duration::ZERO);
    let elapsed = start.elapsed();

    let tally = lock(&producer.context().tally);
    Ok(ProduceReport {
        sent: plan.records,
        acked: tally.acked,
        failed: tally.failed,
        bytes: tally.bytes,
        elapsed,
        latency: tally.latencies.summary(),
        transactions,
        commit_latency: commits.summary(),
        first_error: tally.first_error.clone(),
    })
}

/// Serves delivery reports until every record sent so far is acknowledged (or failed). The
/// transactional commit flushes first as well, but rdkafka's flush polls in steps of 100 ms,
/// which would put a 100 ms floor under every commit latency.
fn drain(producer: &BenchProducer, plan: &Plan<'_>) -> anyhow::Result<()> {
    while producer.in_flight_count() > 0 {
        producer.poll(Duration::from_millis(1));
        check_fatal(producer, plan)?;
    }
    Ok(())
}

/// Serves delivery reports until `due`, to within a millisecond (a record may go out up to a
/// millisecond early rather than spinning).
fn wait_until(producer: &BenchProducer, due: Instant) {
    let now = Instant::now();
    if due > now {
        let wait = Duration::from_millis((due - now).as_millis() as u64);
        if !wait.is_zero() {
            producer.poll(wait);
        }
    }
}

/// Fails on a fatal producer error (after which librdkafka fails every record).
fn check_fatal(producer: &BenchProducer, plan: &Plan<'_>) -> anyhow::Result<()> {
    let Some((code, reason)) = producer.client().fatal_error() else {
        return Ok(());
    };
    let hint =
        if plan.idempotent { "; the broker may not support idempotent producers (InitProducerId), try --idempotence false" } else { "" };
    bail!("the producer hit a fatal error: {reason} ({code}){hint}")
}

/// Periodic progress lines on stderr.
struct Progress {
    enabled: bool,
    last: Instant,
    last_acked: u64,
    last_bytes: u64,
}

impl Progress {
    fn new(enabled: bool) -> Self {
        Progress { enabled, last: Instant::now(), last_acked: 0, last_bytes: 0 }
    }

    fn tick(&mut self, producer: &BenchProducer) {
        if !self.enabled || self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        let now = Instant::now();
        let window = now - self.last;
        let (acked, failed, bytes) = {
            let tally = lock(&producer.context().tally);
            (tally.acked, tally.failed, tally.bytes)
        };
        eprintln!(
            "  {acked} acked, {failed} failed, {} in flight; last {:.1} s: {:.1} records/s, {:.2} MiB/s{}",
            producer.in_flight_count(),
            window.as_secs_f64(),
            per_sec((acked - self.last_acked) as f64, window),
            mib_per_sec(bytes - self.last_bytes, window),
            if acked == self.last_acked { producer.context().base.last_error_suffix() } else { String::new() }
        );
        self.last = now;
        self.last_acked = acked;
        self.last_bytes = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_flag_maps_to_a_rate() {
        assert_eq!(target_rate(-1.0).ok(), Some(None));
        assert_eq!(target_rate(f64::INFINITY).ok(), Some(None));
        assert_eq!(target_rate(2500.0).ok(), Some(Some(2500.0)));
        assert!(target_rate(0.0).is_err());
        assert!(target_rate(f64::NAN).is_err());
    }

    #[test]
    fn records_are_due_evenly() {
        assert_eq!(due_after(0, 1000.0), Some(Duration::ZERO));
        assert_eq!(due_after(1500, 1000.0), Some(Duration::from_millis(1500)));
        assert_eq!(due_after(u64::MAX, 1e-9), None);
    }
}
