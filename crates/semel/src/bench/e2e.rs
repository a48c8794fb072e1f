//! `semel bench e2e`: produce records stamped with their send time at a fixed rate while a
//! consumer in the same process reads them, and measure the produce-to-consume latency.
//!
//! Each value starts with a run id and the send time (nanoseconds since a shared instant, both
//! little-endian u64), so records of other writers or earlier runs are recognised and skipped.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::Offset;

use super::consume::{assign, create_consumer, existing_partitions, BenchConsumer, ErrorLog};
use super::produce::{create_producer, send_all, target_rate, warm_up, Plan};
use super::{ensure_topic, print_json, random_letters, ConsumerOpts, Latencies, LatencySummary, ProducerOpts, XorShift, METADATA_TIMEOUT};

/// Run id and send time.
const STAMP_LEN: usize = 16;

/// How long the consumer polls before the producer starts, so connection set-up does not count.
const WARMUP: Duration = Duration::from_secs(1);

#[derive(Debug, Args)]
pub(crate) struct E2eArgs {
    /// Broker(s) to bootstrap from, comma-separated.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic to produce to and consume from.
    #[arg(long, default_value = "semel-bench-e2e")]
    topic: String,
    /// Records per second.
    #[arg(long, value_name = "RECORDS_PER_SEC", default_value_t = 1000.0)]
    rate: f64,
    /// How long to produce.
    #[arg(long, value_name = "S", default_value_t = 10)]
    duration_secs: u64,
    /// Size of each record value in bytes (at least 16, for the stamp).
    #[arg(long, value_name = "BYTES", default_value_t = 100)]
    record_size: usize,
    /// Partition count used if the topic has to be created (replication factor 1) [default: 1].
    #[arg(long, value_name = "P")]
    partitions: Option<i32>,
    /// How long to wait for the last records to be consumed once producing is done.
    #[arg(long, value_name = "S", default_value_t = 30)]
    drain_secs: u64,
    #[command(flatten)]
    pub(super) producer: ProducerOpts,
    #[command(flatten)]
    pub(super) consumer: ConsumerOpts,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Sent by the producer side when it is done: how many records to expect, and until when.
struct Done {
    expected: u64,
    deadline: Instant,
}

/// What the consumer thread saw.
struct Received {
    records: u64,
    /// Records of other writers or runs.
    foreign: u64,
    latency: LatencySummary,
    errors: ErrorLog,
}

pub(super) fn run(runtime: &tokio::runtime::Handle, args: E2eArgs) -> anyhow::Result<()> {
    let Some(rate) = target_rate(args.rate)? else {
        bail!("--rate must be a positive, finite number of records per second");
    };
    if args.record_size < STAMP_LEN {
        bail!("--record-size must be at least {STAMP_LEN} bytes (the run id and send time)");
    }
    let records = (rate * args.duration_secs as f64).round();
    if !(1.0..=u64::MAX as f64).contains(&records) {
        bail!("--rate × --duration-secs must be at least one record");
    }
    let records = records as u64;

    let producer = create_producer(&args.producer, &args.bootstrap)?;
    let consumer = create_consumer(&args.consumer, &args.bootstrap)?;
    let partitions = ensure_topic(runtime, &args.bootstrap, &args.topic, args.partitions, &args.producer.producer_props, &[])?;
    let partition_ids = existing_partitions(&consumer, &args.bootstrap, &args.topic)?;
    // Start at the current ends, fixed now so nothing produced below can be missed.
    let mut offsets = Vec::with_capacity(partition_ids.len());
    for &partition in &partition_ids {
        let (_, high) = consumer
            .fetch_watermarks(&args.topic, partition, METADATA_TIMEOUT)
            .with_context(|| format!("cannot read the end offset of partition {partition} of {:?}", args.topic))?;
        offsets.push((partition, Offset::Offset(high)));
    }
    assign(&consumer, &args.topic, offsets)?;

    warm_up(&producer, &args.bootstrap, &args.topic)?;

    if !args.json {
        eprintln!(
            "producing {records} records of {} bytes to {} ({partitions} partitions) on {} at {rate} records/s while consuming them",
            args.record_size, args.topic, args.bootstrap
        );
    }
    let run_id = XorShift::from_clock().next_u64();
    let base = Instant::now();
    let mut payload = random_letters(args.record_size, &mut XorShift::from_clock());
    payload[..8].copy_from_slice(&run_id.to_le_bytes());
    let plan = Plan {
        topic: &args.topic,
        records,
        rate: Some(rate),
        key_size: None,
        keys: None,
        transaction: None,
        drain_every: None,
        idempotent: args.producer.idempotence,
        progress: !args.json,
    };

    let (produced, received) = std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        let consumer_thread = scope.spawn(move || consume_stamped(&consumer, run_id, base, &ready_tx, &done_rx));
        // Whatever the consumer says, start after the warm-up (a closed channel ends the wait too).
        let _ = ready_rx.recv();
        let produced = send_all(&producer, &plan, &mut payload, |value| {
            let nanos = u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX);
            value[8..STAMP_LEN].copy_from_slice(&nanos.to_le_bytes());
        });
        if let Ok(report) = &produced {
            // A failed send drops `done_tx` instead, which stops the consumer at once.
            let _ = done_tx.send(Done { expected: report.acked, deadline: Instant::now() + Duration::from_secs(args.drain_secs) });
        }
        drop(done_tx);
        let received = consumer_thread.join();
        (produced, received)
    });
    let produced = produced?;
    let received = match received {
        Ok(received) => received?,
        Err(_) => bail!("the consumer thread panicked"),
    };

    let lost = produced.acked.saturating_sub(received.records);
    if args.json {
        print_json(&serde_json::json!({
            "bench": "e2e",
            "topic": args.topic,
            "partitions": partitions,
            "record_size": args.record_size,
            "rate": rate,
            "records": produced.sent,
            "acked": produced.acked,
            "failed": produced.failed,
            "consumed": received.records,
            "foreign": received.foreign,
            "elapsed_secs": produced.elapsed.as_secs_f64(),
            "records_per_sec": produced.records_per_sec(),
            "e2e_latency_ms": received.latency.json(),
            "ack_latency_ms": produced.latency.json(),
            "first_error": produced.first_error,
        }));
    } else {
        println!(
            "{} records sent, {} acked, {} failed, {} consumed in {:.3} s: {:.1} records/s",
            produced.sent,
            produced.acked,
            produced.failed,
            received.records,
            produced.elapsed.as_secs_f64(),
            produced.records_per_sec()
        );
        println!("produce-to-consume latency: {}", received.latency.text());
        println!("send-to-ack latency: {}", produced.latency.text());
        if received.foreign > 0 {
            println!("skipped {} records of other writers", received.foreign);
        }
    }
    if lost > 0 {
        bail!(
            "{lost} acknowledged records were not consumed within {}s after producing ended{}",
            args.drain_secs,
            received.errors.suffix()
        );
    }
    produced.check_all_acked()
}

/// The consumer side: warms up, tells the producer it is ready, then reads until it has the
/// expected count or the drain deadline passes.
fn consume_stamped(
    consumer: &BenchConsumer,
    run_id: u64,
    base: Instant,
    ready: &mpsc::Sender<()>,
    done: &Receiver<Done>,
) -> anyhow::Result<Received> {
    let mut latencies = Latencies::new()?;
    let mut received = Received { records: 0, foreign: 0, latency: LatencySummary::default(), errors: ErrorLog::default() };
    let warmup_end = Instant::now() + WARMUP;
    let mut ready = Some(ready);
    let mut finish: Option<Done> = None;
    loop {
        if ready.is_some() && Instant::now() >= warmup_end {
            if let Some(ready) = ready.take() {
                let _ = ready.send(());
            }
        }
        if finish.is_none() {
            match done.try_recv() {
                Ok(d) => finish = Some(d),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => break,
            }
        }
        if let Some(d) = &finish {
            if received.records >= d.expected || Instant::now() >= d.deadline {
                break;
            }
        }
        match consumer.poll(Duration::from_millis(10)) {
            None => {}
            Some(Ok(message)) => match parse_stamp(message.payload().unwrap_or_default()) {
                Some((id, nanos)) if id == run_id => {
                    if let Some(sent_at) = base.checked_add(Duration::from_nanos(nanos)) {
                        latencies.record(Instant::now().saturating_duration_since(sent_at));
                    }
                    received.records += 1;
                }
                _ => received.foreign += 1,
            },
            Some(Err(error)) => received.errors.note(&error),
        }
    }
    received.latency = latencies.summary();
    Ok(received)
}

/// The run id and send time at the start of a value.
fn parse_stamp(value: &[u8]) -> Option<(u64, u64)> {
    let id = u64::from_le_bytes(value.get(..8)?.try_into().ok()?);
    let nanos = u64::from_le_bytes(value.get(8..STAMP_LEN)?.try_into().ok()?);
    Some((id, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_short_values_are_foreign() {
        let mut value = vec![b'x'; 20];
        value[..8].copy_from_slice(&7u64.to_le_bytes());
        value[8..16].copy_from_slice(&123_456u64.to_le_bytes());
        assert_eq!(parse_stamp(&value), Some((7, 123_456)));
        assert_eq!(parse_stamp(&value[..15]), None);
        assert_eq!(parse_stamp(b""), None);
    }
}
