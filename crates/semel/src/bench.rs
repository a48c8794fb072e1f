//! `semel bench`: load drivers built on librdkafka (placeholder module filled in below).
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {}
}
