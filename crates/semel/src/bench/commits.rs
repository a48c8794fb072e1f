//! `semel bench commits`: commit consumer offsets N times as fast as the broker takes them (a
//! group with no members, OffsetCommit with generation -1, as `kafka-consumer-groups
//! --reset-offsets` does) and report the rate. It also builds a long offsets history, for
//! measuring how start-up time follows the offsets log.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Args;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::consume::create_consumer;
use super::{per_sec, print_json, ConsumerOpts};

#[derive(Debug, Args)]
pub(crate) struct CommitsArgs {
    /// Broker(s) to bootstrap from, comma-separated.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Topic whose offsets are committed (it must exist).
    #[arg(long)]
    topic: String,
    /// Number of commits.
    #[arg(long, value_name = "N")]
    commits: u64,
    /// Commits are spread over this many partitions of the topic (partition = n mod P).
    #[arg(long, value_name = "P", default_value_t = 1)]
    partitions: i32,
    /// Asynchronous commits in flight before the next synchronous one waits for them all.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    window: u64,
    #[command(flatten)]
    consumer: ConsumerOpts,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: CommitsArgs) -> anyhow::Result<()> {
    if args.partitions < 1 || args.window < 1 {
        bail!("--partitions and --window must be at least 1");
    }
    let consumer = create_consumer(&args.consumer, &args.bootstrap)?;
    let start = Instant::now();
    for n in 1..=args.commits {
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&args.topic, (n % args.partitions as u64) as i32, Offset::Offset(n as i64))
            .context("cannot build the commit")?;
        let mode = if n % args.window == 0 || n == args.commits { CommitMode::Sync } else { CommitMode::Async };
        consumer.commit(&list, mode).with_context(|| format!("commit {n} failed"))?;
        // Serve the asynchronous commits' callbacks.
        let _ = consumer.poll(Duration::ZERO);
    }
    let elapsed = start.elapsed();
    let rate = per_sec(args.commits as f64, elapsed);
    if args.json {
        print_json(&serde_json::json!({ "commits": args.commits, "elapsed_s": elapsed.as_secs_f64(), "commits_per_sec": rate }));
    } else {
        println!("{} commits in {:.2}s: {rate:.0} commits/s", args.commits, elapsed.as_secs_f64());
    }
    Ok(())
}
