//! `semel bench consume`: read N records from the beginning of every partition of a topic with
//! a manual assignment (no consumer group, no commits) and measure the throughput.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use clap::Args;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::{fetch_partitions, mib_per_sec, per_sec, print_json, BenchContext, ConsumerOpts};

#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Broker(s) to bootstrap from, comma-separated.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic to read; every partition is read from its beginning.
    #[arg(long)]
    topic: String,
    /// Number of records to read.
    #[arg(long, value_name = "N")]
    records: u64,
    /// Give up if fewer than N records arrived after this many seconds.
    #[arg(long, value_name = "S", default_value_t = 60)]
    timeout_secs: u64,
    #[command(flatten)]
    consumer: ConsumerOpts,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) type BenchConsumer = BaseConsumer<BenchContext>;

pub(super) fn create_consumer(opts: &ConsumerOpts, bootstrap: &str) -> anyhow::Result<BenchConsumer> {
    opts.client_config(bootstrap)
        .create_with_context(BenchContext::default())
        .context("cannot create the Kafka consumer (check the --consumer-prop values)")
}

/// Assigns `offsets` (partition, offset) of `topic` to the consumer.
pub(super) fn assign(consumer: &BenchConsumer, topic: &str, offsets: impl IntoIterator<Item = (i32, Offset)>) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in offsets {
        list.add_partition_offset(topic, partition, offset).with_context(|| format!("cannot assign partition {partition} of {topic:?}"))?;
    }
    consumer.assign(&list).with_context(|| format!("cannot assign the partitions of {topic:?}"))
}

/// The partitions of `topic`, failing if it does not exist.
pub(super) fn existing_partitions(consumer: &BenchConsumer, bootstrap: &str, topic: &str) -> anyhow::Result<Vec<i32>> {
    let partitions =
        fetch_partitions(consumer.client(), bootstrap, topic)?.ok_or_else(|| anyhow!("topic {topic:?} does not exist on {bootstrap}"))?;
    if partitions.is_empty() {
        bail!("topic {topic:?} has no partitions on {bootstrap}");
    }
    Ok(partitions)
}

/// Logs each distinct consumer error once, and remembers the last one.
#[derive(Default)]
pub(super) struct ErrorLog {
    seen: HashSet<String>,
    pub(super) last: Option<String>,
}

impl ErrorLog {
    pub(super) fn note(&mut self, error: &KafkaError) {
        let text = error.to_string();
        if self.seen.insert(text.clone()) {
            tracing::warn!(error = %text, "consumer error");
        }
        self.last = Some(text);
    }

    /// " (last consumer error: ...)" or nothing.
    pub(super) fn suffix(&self) -> String {
        self.last.as_ref().map(|e| format!(" (last consumer error: {e})")).unwrap_or_default()
    }
}

pub(super) fn run(args: ConsumeArgs) -> anyhow::Result<()> {
    if args.records == 0 {
        bail!("--records must be at least 1");
    }
    let timeout = Duration::from_secs(args.timeout_secs);
    let consumer = create_consumer(&args.consumer, &args.bootstrap)?;
    let partitions = existing_partitions(&consumer, &args.bootstrap, &args.topic)?;
    if !args.json {
        eprintln!(
            "consuming {} records from {} ({} partitions) on {}, {}",
            args.records,
            args.topic,
            partitions.len(),
            args.bootstrap,
            args.consumer.isolation.as_config()
        );
    }
    assign(&consumer, &args.topic, partitions.iter().map(|&p| (p, Offset::Beginning)))?;

    let start = Instant::now();
    let deadline = start + timeout;
    let mut count = 0u64;
    let mut bytes = 0u64;
    let mut first_record = None;
    let mut errors = ErrorLog::default();
    let mut last_progress = (start, 0u64, 0u64);
    while count < args.records {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        match consumer.poll((deadline - now).min(Duration::from_millis(100))) {
            None => {}
            Some(Ok(message)) => {
                count += 1;
                bytes += (message.payload_len() + message.key().map_or(0, <[u8]>::len)) as u64;
                first_record.get_or_insert_with(|| start.elapsed());
            }
            Some(Err(error)) => errors.note(&error),
        }
        if !args.json && last_progress.0.elapsed() >= Duration::from_secs(5) {
            let (at, at_count, at_bytes) = last_progress;
            let window = at.elapsed();
            eprintln!(
                "  {count} records; last {:.1} s: {:.1} records/s, {:.2} MiB/s",
                window.as_secs_f64(),
                per_sec((count - at_count) as f64, window),
                mib_per_sec(bytes - at_bytes, window)
            );
            last_progress = (Instant::now(), count, bytes);
        }
    }
    let elapsed = start.elapsed();

    if count < args.records {
        let available = available_records(&consumer, &args.topic, &partitions);
        bail!(
            "only {count} of {} records arrived within {}s; {}{}{}",
            args.records,
            args.timeout_secs,
            match available {
                Some(n) => format!("the {} partitions of {:?} hold {n} records", partitions.len(), args.topic),
                None => "the partition offsets are unknown".to_owned(),
            },
            errors.suffix(),
            consumer.context().last_error_suffix()
        );
    }

    let records_per_sec = per_sec(count as f64, elapsed);
    let mib_per_sec = mib_per_sec(bytes, elapsed);
    let first_record_secs = first_record.unwrap_or_default().as_secs_f64();
    if args.json {
        print_json(&serde_json::json!({
            "bench": "consume",
            "topic": args.topic,
            "partitions": partitions.len(),
            "isolation": args.consumer.isolation.as_config(),
            "records": count,
            "bytes": bytes,
            "elapsed_secs": elapsed.as_secs_f64(),
            "first_record_secs": first_record_secs,
            "records_per_sec": records_per_sec,
            "mib_per_sec": mib_per_sec,
        }));
    } else {
        println!(
            "{count} records ({:.2} MiB) in {:.3} s: {records_per_sec:.1} records/s, {mib_per_sec:.2} MiB/s (first record after {first_record_secs:.3} s)",
            bytes as f64 / (1024.0 * 1024.0),
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// The number of records between the low and high watermarks of the partitions, if known.
fn available_records(consumer: &BenchConsumer, topic: &str, partitions: &[i32]) -> Option<i64> {
    let mut total = 0;
    for &partition in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)).ok()?;
        total += (high - low).max(0);
    }
    Some(total)
}
