//! `semel`: the one binary. `semel serve` runs the broker; `semel process` runs an exactly-once
//! processor; `semel bench` drives load; `semel txn` operates transactions.

mod bench;
mod process;
mod serve;
mod txn;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "semel", version, about = "An exactly-once streaming system that speaks Kafka")]
struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true, env = "SEMEL_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the broker.
    Serve(serve::ServeArgs),
    /// Measure produce or consume throughput and latency against any Kafka-compatible broker.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// List, describe and abort transactions (like kafka-transactions.sh).
    Txn(txn::TxnArgs),
    /// Run a built-in exactly-once processor (copy, count, sum) on any Kafka-compatible cluster.
    Process(process::ProcessArgs),
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SEMEL_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs redirected to a file stay plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("semel: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
            Command::Bench(command) => bench::run(command).await,
            Command::Txn(args) => txn::run(args).await,
            Command::Process(args) => process::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("semel: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
