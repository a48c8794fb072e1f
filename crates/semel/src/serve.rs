//! `semel serve`: run the broker until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use semel_broker::{Broker, BrokerConfig};

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9092].
    #[arg(long, env = "SEMEL_LISTEN", value_name = "HOST:PORT")]
    listen: Option<SocketAddr>,
    /// Address clients are told to connect to [default: the listen address].
    #[arg(long, env = "SEMEL_ADVERTISED", value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Folder for logs and metadata [default: ./semel-data].
    #[arg(long, env = "SEMEL_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML config file; flags and environment variables override its values.
    #[arg(long, env = "SEMEL_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => BrokerConfig::from_toml_file(path)?,
        None => BrokerConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(advertised) = args.advertised {
        config.advertised = Some(advertised);
    }
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let data_dir = std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    // Before any file or socket is opened: the soft fd limit up to the hard one, both logged.
    semel_broker::fd_limit::raise_nofile_limit();
    let broker = Broker::start(config).await.context("cannot start the broker")?;
    tracing::info!(listen = %broker.local_addr(), advertised = %broker.bootstrap(), data_dir = %data_dir.display(), "semel is serving");
    println!("semel listening on {} (advertised as {}), data in {}", broker.local_addr(), broker.bootstrap(), data_dir.display());

    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    broker.shutdown().await;
    Ok(())
}
