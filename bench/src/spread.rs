//! Many idle connections, spread over several load-generator processes.
//!
//! One process cannot hold 19,990 client sockets and its own files under an open-files limit
//! of 20,000, nor can one source address offer that many ports to one broker port for long.
//! So this scenario starts workers (this same executable, `--idle-worker`), each opening its
//! share of the connections from its own 127.0.0.x, and measures the broker's RSS once every
//! worker reports its connections open. The workers then ping every connection and report
//! how many answered, so loss and failures stand beside the memory figure.
//!
//! Parent and worker talk in lines over the worker's stdin and stdout: the worker says
//! `opened OPENED ATTEMPTED TIMED_OUT CONNECT_MS` (after `error MESSAGE` if one failed), the
//! parent says `ping`, the worker answers `alive N`, and exits when its stdin closes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::pipe;

use crate::broker::RunningBroker;
use crate::client::{Endpoint, Transport};
use crate::scenarios::{open_idle, ping_all, IdleResult, Params};

/// Most connections one worker opens: far below the open-files limit, and the ports of one
/// source address.
const PER_WORKER: usize = 5_000;

/// What a worker is asked to do, as `--idle-worker` carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerSpec {
    /// The broker's MQTT/TCP address.
    pub(crate) broker: SocketAddr,
    /// The address its connections come from.
    pub(crate) source: IpAddr,
    /// Client ids `bench-idle-{i}` for `i` in `first..first + count`.
    pub(crate) first: usize,
    pub(crate) count: usize,
    /// Keep alive its clients announce.
    pub(crate) keep_alive: u16,
}

impl WorkerSpec {
    /// The `--idle-worker` argument.
    fn to_arg(&self) -> String {
        let Self {
            broker,
            source,
            first,
            count,
            keep_alive,
        } = self;
        format!("{broker},{source},{first},{count},{keep_alive}")
    }

    /// Parses an `--idle-worker` argument.
    pub(crate) fn parse(arg: &str) -> Result<Self> {
        let parts: Vec<&str> = arg.split(',').collect();
        let [broker, source, first, count, keep_alive] = parts[..] else {
            bail!("--idle-worker wants BROKER,SOURCE,FIRST,COUNT,KEEP_ALIVE, not {arg:?}");
        };
        Ok(Self {
            broker: broker.parse()?,
            source: source.parse()?,
            first: first.parse()?,
            count: count.parse()?,
            keep_alive: keep_alive.parse()?,
        })
    }
}

/// How `count` connections are shared out: at least two workers (so `--quick` still runs
/// the multi-process path), none above [`PER_WORKER`], each from 127.0.0.(10 + its number).
pub(crate) fn plan(broker: SocketAddr, count: usize, keep_alive: u16) -> Vec<WorkerSpec> {
    let workers = count.div_ceil(PER_WORKER).max(2);
    let share = count.div_ceil(workers);
    (0..workers)
        .map(|w| {
            let first = w * share;
            WorkerSpec {
                broker,
                source: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + w as u8)),
                first,
                count: share.min(count.saturating_sub(first)),
                keep_alive,
            }
        })
        .filter(|spec| spec.count > 0)
        .collect()
}

/// A worker's end of the conversation: opens its connections, reports, pings when asked.
pub(crate) async fn worker(
    spec: &WorkerSpec,
    params: &Params,
    input: impl AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> Result<()> {
    let params = Params {
        keep_alive: spec.keep_alive,
        ..params.clone()
    };
    let endpoint = Endpoint {
        tcp: spec.broker,
        ws_url: String::new(),
    };
    let source = |_| Some(spec.source);
    let ids = spec.first..spec.first + spec.count;
    let (mut connections, result) =
        open_idle(&endpoint, ids, Transport::Tcp, &params, &source).await;
    if let Some(e) = &result.first_error {
        output
            .write_all(format!("error {}\n", e.replace('\n', " ")).as_bytes())
            .await?;
    }
    let report = format!(
        "opened {} {} {} {}\n",
        result.opened,
        result.attempted,
        u8::from(result.timed_out),
        result.connect_time.as_millis()
    );
    output.write_all(report.as_bytes()).await?;
    output.flush().await?;
    let mut lines = BufReader::new(input).lines();
    while let Some(line) = lines.next_line().await? {
        if line == "ping" {
            let alive = ping_all(&mut connections).await;
            output
                .write_all(format!("alive {alive}\n").as_bytes())
                .await?;
            output.flush().await?;
        }
    }
    Ok(())
}

/// The parent's handle on one worker.
pub(crate) struct Worker<R, W> {
    lines: Lines<BufReader<R>>,
    input: W,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Worker<R, W> {
    pub(crate) fn new(output: R, input: W) -> Self {
        Self {
            lines: BufReader::new(output).lines(),
            input,
        }
    }

    /// Waits for the worker's `opened` line and adds it to `total`.
    async fn opened(&mut self, total: &mut IdleResult) -> Result<()> {
        loop {
            let line = self.next_line().await?;
            if let Some(e) = line.strip_prefix("error ") {
                total.first_error.get_or_insert_with(|| e.to_owned());
                continue;
            }
            let fields: Vec<u64> = line
                .strip_prefix("opened ")
                .ok_or_else(|| anyhow!("worker said {line:?}, not `opened`"))?
                .split(' ')
                .map(str::parse)
                .collect::<Result<_, _>>()?;
            let [opened, attempted, timed_out, millis] = fields[..] else {
                bail!("worker said {line:?}");
            };
            total.opened += opened as usize;
            total.attempted += attempted as usize;
            total.timed_out |= timed_out != 0;
            // The workers open theirs at the same time: the slowest is the time for all.
            total.connect_time = total.connect_time.max(Duration::from_millis(millis));
            return Ok(());
        }
    }

    /// Asks the worker to ping its connections; returns how many answered.
    async fn ping(&mut self) -> Result<usize> {
        self.input.write_all(b"ping\n").await?;
        self.input.flush().await?;
        let line = self.next_line().await?;
        let alive = line
            .strip_prefix("alive ")
            .ok_or_else(|| anyhow!("worker said {line:?}, not `alive`"))?;
        Ok(alive.parse()?)
    }

    async fn next_line(&mut self) -> Result<String> {
        self.lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("a load-generator worker ended early"))
    }
}

/// Runs `workers` to the end: connections open, RSS measured by `rss_kib` before and after,
/// every connection pinged. `rss_kib` is called before the workers start connecting.
pub(crate) async fn measure<R, W>(
    workers: &mut [Worker<R, W>],
    attempted: usize,
    rss_before_kib: u64,
    rss_kib: &dyn Fn() -> Result<u64>,
) -> Result<IdleResult>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut result = IdleResult {
        rss_before_kib,
        ..IdleResult::default()
    };
    for worker in workers.iter_mut() {
        worker.opened(&mut result).await?;
    }
    if result.attempted < attempted {
        result
            .first_error
            .get_or_insert_with(|| "workers tried fewer than asked".to_owned());
    }
    // Let the broker settle (deferred allocations, freed handshake buffers) before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    result.rss_after_kib = rss_kib()?;
    for worker in workers.iter_mut() {
        result.alive += worker.ping().await?;
    }
    Ok(result)
}

/// The scenario: `count` idle TCP connections from worker processes against `broker`.
pub(crate) async fn run_spread(
    broker: &RunningBroker,
    endpoint: &Endpoint,
    count: usize,
    params: &Params,
) -> Result<IdleResult> {
    // Let the broker finish starting up (threads, allocator arenas) before the baseline.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_before = broker.rss_kib()?;
    let exe = std::env::current_exe().context("cannot find this executable for the workers")?;
    let mut children = Vec::new();
    let mut workers = Vec::new();
    for spec in plan(endpoint.tcp, count, params.keep_alive) {
        let (child, worker) = spawn_worker(&exe, &spec, params)?;
        children.push(child);
        workers.push(worker);
    }
    let result = measure(&mut workers, count, rss_before, &|| broker.rss_kib()).await;
    eprintln!(
        "    broker open files with the connections up: {}",
        open_files(broker.pid()).map_or_else(|e| format!("unknown ({e})"), |n| n.to_string())
    );
    // Closing their stdin ends the workers, and with them their connections.
    drop(workers);
    for mut child in children {
        let _ = child.wait();
    }
    result
}

/// A worker process, with pipes to its stdin and stdout.
fn spawn_worker(
    exe: &std::path::Path,
    spec: &WorkerSpec,
    params: &Params,
) -> Result<(Child, Worker<pipe::Receiver, pipe::Sender>)> {
    let version = if params.version.is_v5() { "5" } else { "3.1.1" };
    let mut child = Command::new(exe)
        .arg("--idle-worker")
        .arg(spec.to_arg())
        .arg("--mqtt-version")
        .arg(version)
        .arg("--timeout-secs")
        .arg(params.timeout.as_secs().to_string())
        .arg("--connect-concurrency")
        .arg(params.connect_concurrency.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start a load-generator worker ({})", exe.display()))?;
    let stdin = OwnedFd::from(child.stdin.take().expect("piped stdin"));
    let stdout = OwnedFd::from(child.stdout.take().expect("piped stdout"));
    let worker = Worker::new(
        pipe::Receiver::from_owned_fd(stdout)?,
        pipe::Sender::from_owned_fd(stdin)?,
    );
    Ok((child, worker))
}

/// Runs this process as a worker: `arg` is the `--idle-worker` value.
pub(crate) async fn worker_main(arg: &str, params: &Params) -> Result<()> {
    let spec = WorkerSpec::parse(arg)?;
    let input = pipe::Receiver::from_owned_fd(std::io::stdin().as_fd().try_clone_to_owned()?)?;
    let output = pipe::Sender::from_owned_fd(std::io::stdout().as_fd().try_clone_to_owned()?)?;
    worker(&spec, params, input, output).await
}

/// How many files process `pid` has open.
fn open_files(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{smoke_params, TestBroker};

    #[test]
    fn plan_shares_out_every_connection_under_the_worker_limit() {
        let broker = SocketAddr::from(([127, 0, 0, 1], 1883));
        let specs = plan(broker, 19_990, 0);
        assert_eq!(specs.len(), 4);
        assert_eq!(specs.iter().map(|s| s.count).sum::<usize>(), 19_990);
        assert!(specs.iter().all(|s| s.count <= PER_WORKER));
        assert_eq!(specs[3].source, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 13)));
        assert_eq!(plan(broker, 10, 0).len(), 2);
        assert_eq!(WorkerSpec::parse(&specs[1].to_arg()).unwrap(), specs[1]);
    }

    /// The whole conversation with two in-process workers over in-memory pipes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn smoke_spread() {
        let broker = TestBroker::start().await;
        let params = smoke_params(64);
        let mut workers = Vec::new();
        for spec in plan(broker.endpoint.tcp, 21, 0) {
            let (parent_out, worker_in) = tokio::io::duplex(1024);
            let (worker_out, parent_in) = tokio::io::duplex(1024);
            let params = params.clone();
            tokio::spawn(async move { worker(&spec, &params, worker_in, worker_out).await });
            workers.push(Worker::new(parent_in, parent_out));
        }
        let result = measure(&mut workers, 21, 1, &|| Ok(2)).await.unwrap();
        assert_eq!(result.first_error, None);
        assert_eq!(
            (result.attempted, result.opened, result.alive),
            (21, 21, 21)
        );
        assert_eq!((result.rss_before_kib, result.rss_after_kib), (1, 2));
    }
}
