//! The `aviary` command: run the gateway (optionally with simulated pet
//! trackers: `--demo`), or only the simulator (`aviary simulate`), or edit a password file
//! (`aviary passwd`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use aviary::signals::Signals;
use aviary::simulator::{self, demo_auth, SimConfig, SimCredentials};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// jemalloc rather than glibc's malloc: a durable flow's buffers are allocated on connection
/// threads and freed on the store's commit thread, which glibc's arenas serve slowly (a quarter
/// of the broker's CPU went to malloc and its consolidation). See the workspace Cargo.toml for
/// the measurement.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Aviary: an MQTT 3.1.1 + 5.0 gateway for devices (TCP) and browsers (WebSocket).
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulate pet trackers: each pet is its own TCP MQTT connection.
    Simulate(SimulateArgs),
    /// Add, update (-D: delete) a user in a mosquitto-compatible password file.
    Passwd(aviary::auth::passwd_cmd::PasswdArgs),
}

#[derive(Debug, Args)]
struct RunArgs {
    /// TOML configuration file; command-line flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// MQTT over TCP listen address (default 127.0.0.1:1883; port 0 picks a free port).
    #[arg(long)]
    mqtt: Option<SocketAddr>,
    /// HTTP listen address: web app, WebSocket, REST API, metrics (default 127.0.0.1:8080).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// MQTT over TLS listen address, like 127.0.0.1:8883 (needs [tls] in the config).
    #[arg(long)]
    mqtts: Option<SocketAddr>,
    /// HTTPS listen address (web app, wss, REST, metrics), like 127.0.0.1:8443 (needs [tls]).
    #[arg(long)]
    https: Option<SocketAddr>,
    /// Directory of the embedded store (default ./aviary-data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also run 25 simulated pet trackers against this gateway, with demo users (alice, bob)
    /// and authentication on: see the log for how to sign in.
    #[arg(long)]
    demo: bool,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// The broker, as mqtt://HOST:PORT.
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    url: String,
    /// Number of pets.
    #[arg(long, default_value_t = 25)]
    pets: u32,
    /// Time between location fixes, like 1s, 500ms or 30s.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// Seed of the simulated walks.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Sign in as PREFIX followed by the pet's id (like `tracker-pet-`); needs --password.
    #[arg(long, requires = "password")]
    username_prefix: Option<String>,
    /// The trackers' password (with --username-prefix).
    #[arg(long, requires = "username_prefix")]
    password: Option<String>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s or m")),
    };
    if !(secs > 0.0 && secs < 86_400.0) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A file edit: no logging, no runtime.
    if let Some(Command::Passwd(args)) = &cli.command {
        return Ok(aviary::auth::passwd_cmd::run(args)?);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            // The store engine narrates every table it opens at info; its warnings still show.
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,fjall=warn,lsm_tree=warn")),
        )
        // Plain text when piped, so scripts can read the `listening` line.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    // Before the runtime: its threads must inherit the blocked signals (see the module).
    let signals = Signals::install().context("cannot listen for signals")?;
    // Its workers wake a connection that deferred its writer (see `broker::connection`).
    let runtime = aviary::runtime().context("cannot start the async runtime")?;
    match cli.command {
        Some(Command::Simulate(args)) => runtime.block_on(simulate(args, signals)),
        Some(Command::Passwd(_)) => unreachable!("handled above"),
        None => runtime.block_on(serve(cli.run, signals)),
    }
}

async fn serve(args: RunArgs, signals: Signals) -> anyhow::Result<()> {
    let mut config = match &args.config {
        Some(path) => aviary::Config::from_file(path)?,
        None => aviary::Config::default(),
    };
    if let Some(a) = args.mqtt {
        config.listen.mqtt = a;
    }
    if let Some(a) = args.http {
        config.listen.http = a;
    }
    if args.mqtts.is_some() {
        config.listen.mqtts = args.mqtts;
    }
    if args.https.is_some() {
        config.listen.https = args.https;
    }
    if let Some(d) = args.data_dir {
        config.data_dir = d;
    }
    // The demo's users and ACL, in the data dir, before anything reads `[auth]`.
    let demo = if args.demo {
        Some(demo_auth::setup(&mut config)?)
    } else {
        None
    };
    // Again: a flag may have moved a listener off loopback.
    config.validate()?;
    // index.html is committed; the built app is what `cargo xtask web` makes.
    let app_built = config.http.static_dir.join("pkg/aviary-web.js").is_file();
    let mut gateway = aviary::Gateway::bind(config).await?;
    gateway.reload_on(signals.hangups());
    let (mqtt, http) = (gateway.mqtt_addr(), gateway.http_addr());
    let stop = CancellationToken::new();
    if let Some(demo) = &demo {
        let mut sim = SimConfig::new(mqtt.ip().to_string(), mqtt.port(), demo_auth::PETS);
        sim.credentials = demo.tracker_credentials();
        tokio::spawn(simulator::run(sim, stop.clone()));
    }
    if app_built {
        let url = format!("http://{http}/");
        match &demo {
            Some(demo) => tracing::info!("{}", demo.open_hint(&url)),
            None => tracing::info!("open {url} to see the map"),
        }
    } else {
        tracing::warn!(
            "the web app is not built; `cargo xtask demo` builds it. http://{http}/ says the same"
        );
    }
    let shutdown = async move {
        signals.stopped().await;
        stop.cancel();
    };
    gateway.run(shutdown).await?;
    Ok(())
}

async fn simulate(args: SimulateArgs, signals: Signals) -> anyhow::Result<()> {
    let (host, port) = simulator::parse_url(&args.url)?;
    let mut config = SimConfig::new(host, port, args.pets);
    config.interval = args.interval;
    config.seed = args.seed;
    config.credentials =
        args.username_prefix
            .zip(args.password)
            .map(|(username_prefix, password)| SimCredentials {
                username_prefix,
                password,
            });
    let stop = CancellationToken::new();
    let run = tokio::spawn(simulator::run(config, stop.clone()));
    signals.stopped().await;
    stop.cancel();
    run.await.context("simulator task failed")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
