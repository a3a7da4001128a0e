//! The `aviary` command: run the gateway.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// Aviary: an MQTT 3.1.1 + 5.0 gateway for devices (TCP) and browsers (WebSocket).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// TOML configuration file; command-line flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// MQTT over TCP listen address (default 127.0.0.1:1883; port 0 picks a free port).
    #[arg(long)]
    mqtt: Option<SocketAddr>,
    /// HTTP listen address: web app, WebSocket, REST API, metrics (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Directory of the embedded store (default ./aviary-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut config = match &cli.config {
        Some(path) => aviary::Config::from_file(path)?,
        None => aviary::Config::default(),
    };
    if let Some(a) = cli.mqtt {
        config.listen.mqtt = a;
    }
    if let Some(a) = cli.http {
        config.listen.http = a;
    }
    if let Some(d) = cli.data_dir {
        config.data_dir = d;
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(aviary::run(config, shutdown_signal()))?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
