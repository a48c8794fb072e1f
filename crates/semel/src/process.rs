//! `semel process`: runs one of the built-in processors of `semel-eos` (consume-transform-
//! produce, exactly once by default) against any Kafka-compatible cluster:
//! - `copy`: every input record to the output, key, value and headers unchanged;
//! - `count`: the running number of records of each key (a decimal string per record);
//! - `sum --field F`: the running sum of the JSON number field F of each key's values.
//!
//! Stops on SIGINT or SIGTERM after a last commit; progress on stderr every few seconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use semel_eos::processor::{Assignment, Guarantee, InputRecord, KeyState, OutputRecord, Processor, ProcessorConfig, Stats, TransformError};
use semel_eos::ClientSettings;

#[derive(Debug, Args)]
pub(crate) struct ProcessArgs {
    #[command(subcommand)]
    kind: Kind,
    /// Kafka bootstrap servers (semel or Apache Kafka).
    #[arg(long, global = true, default_value = "127.0.0.1:9092", env = "SEMEL_BOOTSTRAP")]
    bootstrap: String,
    /// The group id, transactional id prefix and changelog prefix.
    #[arg(long, global = true, default_value = "semel-process")]
    application_id: String,
    /// This instance's name, unique among the application's instances.
    #[arg(long, global = true, default_value = "0")]
    instance_id: String,
    #[arg(long, global = true, default_value = "")]
    input: String,
    #[arg(long, global = true, default_value = "")]
    output: String,
    #[arg(long, global = true, value_enum, default_value_t = GuaranteeArg::ExactlyOnce)]
    guarantee: GuaranteeArg,
    /// How partitions move between instances.
    #[arg(long, global = true, value_enum, default_value_t = AssignmentArg::CooperativeSticky)]
    assignment: AssignmentArg,
    #[arg(long, global = true, default_value_t = 100)]
    commit_interval_ms: u64,
    /// Commit after this many records at the latest (bounds the open transaction).
    #[arg(long, global = true, default_value_t = 10_000)]
    commit_records: usize,
    /// A librdkafka property for every client, KEY=VALUE (e.g. session.timeout.ms=10000);
    /// repeatable. The exactly-once properties are set by semel and refused here.
    #[arg(long = "property", global = true, value_name = "KEY=VALUE")]
    properties: Vec<String>,
    #[arg(long, global = true, default_value_t = 60_000)]
    transaction_timeout_ms: u64,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, global = true, default_value_t = 5)]
    progress_seconds: u64,
}

#[derive(Debug, Subcommand)]
enum Kind {
    /// Every record to the output, unchanged.
    Copy,
    /// The running count of records per key.
    Count,
    /// The running sum of a JSON number field per key.
    Sum {
        /// The field of the JSON object value to add up.
        #[arg(long)]
        field: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum GuaranteeArg {
    ExactlyOnce,
    AtLeastOnce,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum AssignmentArg {
    CooperativeSticky,
    Eager,
}

fn output(record: &InputRecord<'_>, value: String) -> OutputRecord {
    OutputRecord { topic: None, key: record.key.map(<[u8]>::to_vec), value: Some(value.into_bytes()), headers: vec![] }
}

fn copy(record: &InputRecord<'_>, _: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let headers = record.headers.iter().map(|(k, v)| (k.to_string(), v.unwrap_or_default().to_vec())).collect();
    out.push(OutputRecord { topic: None, key: record.key.map(<[u8]>::to_vec), value: record.value.map(<[u8]>::to_vec), headers });
    Ok(())
}

fn count(record: &InputRecord<'_>, state: &mut KeyState<'_>, out: &mut Vec<OutputRecord>) -> Result<(), TransformError> {
    let previous = match state.get() {
        Some(bytes) => std::str::from_utf8(bytes)?.parse::<u64>()?,
        None => 0,
    };
    let count = previous + 1;
    state.put(count.to_string().into_bytes())?;
    out.push(output(record, count.to_string()));
    Ok(())
}

/// The `sum --field F` transform.
fn sum(field: String) -> impl FnMut(&InputRecord<'_>, &mut KeyState<'_>, &mut Vec<OutputRecord>) -> Result<(), TransformError> + Send {
    move |record, state, out| {
        let value: serde_json::Value = serde_json::from_slice(record.value.unwrap_or_default())
            .map_err(|e| format!("offset {} of partition {}: the value is not JSON: {e}", record.offset, record.partition))?;
        let Some(number) = value.get(&field).and_then(serde_json::Value::as_f64) else {
            return Err(
                format!("offset {} of partition {}: no number field {field:?} in the value", record.offset, record.partition).into()
            );
        };
        let previous = match state.get() {
            Some(bytes) => std::str::from_utf8(bytes)?.parse::<f64>()?,
            None => 0.0,
        };
        let total = previous + number;
        state.put(total.to_string().into_bytes())?;
        out.push(output(record, serde_json::Value::from(total).to_string()));
        Ok(())
    }
}

pub(crate) async fn run(args: ProcessArgs) -> anyhow::Result<()> {
    if args.input.is_empty() || args.output.is_empty() {
        bail!("--input and --output name the topics to read and write (e.g. --input orders --output order-counts)");
    }
    let mut client = ClientSettings::new(&args.bootstrap);
    for property in &args.properties {
        let Some((key, value)) = property.split_once('=') else {
            bail!("--property {property:?}: expected KEY=VALUE (e.g. --property session.timeout.ms=10000)");
        };
        client = client.with(key, value)?;
    }
    let mut config = ProcessorConfig::new(client, &args.application_id, &args.input, &args.output);
    config.commit_records = args.commit_records.max(1);
    config.instance_id = args.instance_id.clone();
    config.guarantee = match args.guarantee {
        GuaranteeArg::ExactlyOnce => Guarantee::ExactlyOnce,
        GuaranteeArg::AtLeastOnce => Guarantee::AtLeastOnce,
    };
    config.assignment = match args.assignment {
        AssignmentArg::CooperativeSticky => Assignment::CooperativeSticky,
        AssignmentArg::Eager => Assignment::Eager,
    };
    config.commit_interval = Duration::from_millis(args.commit_interval_ms.max(1));
    config.transaction_timeout = Duration::from_millis(args.transaction_timeout_ms);
    let stop = Arc::new(AtomicBool::new(false));
    let (stats, worker) = match args.kind {
        Kind::Copy => spawn(config, copy, &stop),
        Kind::Count => {
            config.store = Some("count".into());
            spawn(config, count, &stop)
        }
        Kind::Sum { field } => {
            config.store = Some(format!("sum-{field}"));
            spawn(config, sum(field), &stop)
        }
    };
    let progress =
        (args.progress_seconds > 0).then(|| tokio::spawn(report(Arc::clone(&stats), Duration::from_secs(args.progress_seconds))));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("SIGTERM handler")?;
    let mut worker = worker;
    let result = tokio::select! {
        done = &mut worker => done,
        _ = tokio::signal::ctrl_c() => { stop.store(true, Ordering::Relaxed); worker.await }
        _ = sigterm.recv() => { stop.store(true, Ordering::Relaxed); worker.await }
    };
    if let Some(p) = progress {
        p.abort();
    }
    line(&stats);
    result.context("the processor thread failed")?.context("the processor stopped")
}

type Worker = tokio::task::JoinHandle<Result<(), semel_eos::processor::ProcessorError>>;

fn spawn<T: semel_eos::processor::Transform + 'static>(
    config: ProcessorConfig,
    transform: T,
    stop: &Arc<AtomicBool>,
) -> (Arc<Stats>, Worker) {
    let processor = Processor::new(config, transform);
    let stats = processor.stats();
    let stop = Arc::clone(stop);
    (stats, tokio::task::spawn_blocking(move || processor.run(&stop)))
}

async fn report(stats: Arc<Stats>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        line(&stats);
    }
}

fn line(stats: &Stats) {
    eprintln!(
        "semel process: {} records in, {} out, {} commits, {} rollbacks, {} rebalances, {} keys restored",
        Stats::get(&stats.records_in),
        Stats::get(&stats.records_out),
        Stats::get(&stats.commits),
        Stats::get(&stats.rollbacks),
        Stats::get(&stats.rebalances),
        Stats::get(&stats.restored_keys),
    );
}
