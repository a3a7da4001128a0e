//! Each node's store, copied into JetStream: the `AVIARY_STORES` stream holds one log per
//! node, under `aviary.store.<node>`, in the format of `store::replica`.
//!
//! What it is for: a node's persistent sessions (subscriptions, queues, in-flight messages
//! both ways) live in its disk store, which dies with the node's machine. With the log in
//! JetStream, replicated like the rest of Aviary's state, another node can read a dead
//! node's sessions back ([`read`]) and adopt them. A node's store appends to its log before
//! each commit returns, so whatever the node acknowledged is in the log.
//!
//! An append that fails (a NATS server died, the stream's leader is being elected again) is
//! sent again for up to [`RETRY_FOR`], each record under the same `Nats-Msg-Id`, so that
//! JetStream keeps one copy of it: the commit, and the acknowledgements it holds, wait
//! meanwhile rather than fail.
//!
//! The store's commit thread is a blocking one (the group commit's writer runs each commit
//! with `spawn_blocking`): it waits there for the append, which runs as a task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::header::{HeaderMap, NATS_MESSAGE_ID};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Handle;
use tracing::debug;

use super::subject::token;
use super::ClusterError;
use crate::store::Replica;

/// The stream of the nodes' store logs.
const STREAM: &str = "AVIARY_STORES";
/// Subjects of the nodes' logs: `aviary.store.<node token>`.
const PREFIX: &str = "aviary.store";
/// How long an append is tried (a NATS server died, the stream's leader is being elected
/// again) before its commit fails: meanwhile the acknowledgements it holds wait.
const RETRY_FOR: Duration = Duration::from_secs(10);
/// The first pause before sending again; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// How long reading a log back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One node's log in [`STREAM`].
#[derive(Debug)]
pub(super) struct JetStreamLog {
    log: Arc<Log>,
    runtime: Handle,
}

/// What the log's tasks share.
#[derive(Debug)]
struct Log {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    /// Prefix of this run's message ids: the node and when it started.
    run: String,
    /// The next record's number in this run.
    next_id: AtomicU64,
}

impl JetStreamLog {
    /// Opens (creating) the stream, for `node`'s log.
    pub(super) async fn open(
        js: &jetstream::Context,
        replicas: u8,
        node: &str,
    ) -> Result<Self, ClusterError> {
        let stream = open_stream(js, replicas).await?;
        let log = Log {
            js: js.clone(),
            stream,
            subject: subject(node),
            run: format!("{}-{}", token(node), started()),
            next_id: AtomicU64::new(0),
        };
        Ok(Self {
            log: Arc::new(log),
            runtime: Handle::current(),
        })
    }

    /// Runs `work` as a task of the runtime and waits for its answer on this (blocking)
    /// thread. A task, not `Handle::block_on`: a runtime shutting down drops its tasks,
    /// which is an answer ("the node is stopping"), where timers driven from here would
    /// panic.
    fn run<T, F>(&self, work: impl FnOnce(Arc<Log>) -> F) -> Result<T, String>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let work = work(self.log.clone());
        self.runtime.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv()
            .unwrap_or_else(|_| Err("the node is stopping".to_owned()))
    }
}

impl Replica for JetStreamLog {
    fn append(&self, records: Vec<Bytes>) -> Result<u64, String> {
        // Ids given once, kept by every attempt: JetStream keeps one copy of a record sent
        // twice (its answer lost), which would otherwise corrupt the group it belongs to.
        let first_id = self
            .log
            .next_id
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        self.run(|log| async move {
            let deadline = tokio::time::Instant::now() + RETRY_FOR;
            let mut pause = FIRST_PAUSE;
            loop {
                match log.try_append(&records, first_id).await {
                    Ok(first) => return Ok(first),
                    Err(e) if tokio::time::Instant::now() + pause < deadline => {
                        debug!(error = %e, "the store's log did not take a commit; sending it again");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_PAUSE);
                    }
                    Err(e) => return Err(format!("appending to {STREAM}: {e}")),
                }
            }
        })
    }

    fn truncate(&self, first: u64) -> Result<(), String> {
        self.run(move |log| async move {
            log.stream
                .purge()
                .filter(log.subject.clone())
                .sequence(first)
                .await
                .map(|_| ())
                .map_err(|e| format!("dropping the log's old records in {STREAM}: {e}"))
        })
    }
}

impl Log {
    /// Sends `records` (the first with message id `first_id`, then on), each once the one
    /// before is stored: the log position of the first.
    ///
    /// One at a time, because a group's records must stay in order (replay joins them up to
    /// the one marked last). Sent together, a record that failed in a failover while the next
    /// was stored would land after it when sent again, and corrupt its group. Sent again
    /// after a failure, the records already stored are kept once, in place, by their ids.
    /// Most groups are one record; a snapshot, or a commit of big messages, takes several of
    /// up to 256 KiB (`store::replica::CHUNK`).
    async fn try_append(&self, records: &[Bytes], first_id: u64) -> Result<u64, String> {
        let mut first = None;
        for (n, record) in (first_id..).zip(records) {
            let mut headers = HeaderMap::new();
            headers.insert(NATS_MESSAGE_ID, format!("{}-{n}", self.run).as_str());
            let ack = self
                .js
                .publish_with_headers(self.subject.clone(), headers, record.clone())
                .await
                .map_err(|e| e.to_string())?
                .await
                .map_err(|e| e.to_string())?;
            first.get_or_insert(ack.sequence);
        }
        first.ok_or_else(|| "nothing to append".to_owned())
    }
}

fn subject(node: &str) -> String {
    format!("{PREFIX}.{}", token(node))
}

async fn open_stream(
    js: &jetstream::Context,
    replicas: u8,
) -> Result<stream::Stream, ClusterError> {
    let config = stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{PREFIX}.>")],
        storage: stream::StorageType::File,
        num_replicas: usize::from(replicas),
        ..Default::default()
    };
    super::setup::step(STREAM, || js.get_or_create_stream(config.clone())).await
}

/// Drops `node`'s log: its sessions were adopted elsewhere.
pub(super) async fn drop_log(
    js: &jetstream::Context,
    replicas: u8,
    node: &str,
) -> Result<(), ClusterError> {
    let stream = open_stream(js, replicas).await?;
    stream
        .purge()
        .filter(subject(node))
        .await
        .map(|_| ())
        .map_err(|e| ClusterError::Stream(format!("dropping {node}'s log: {e}")))
}

/// Reads `node`'s log, oldest record first: what `store::replay` turns back into its store.
pub async fn read(
    js: &jetstream::Context,
    replicas: u8,
    node: &str,
) -> Result<Vec<Bytes>, ClusterError> {
    let err =
        |e: &dyn std::fmt::Display| ClusterError::Stream(format!("reading {node}'s log: {e}"));
    let stream = open_stream(js, replicas).await?;
    let subject = subject(node);
    let last = match stream.get_last_raw_message_by_subject(&subject).await {
        Ok(m) => m.sequence,
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
            return Ok(Vec::new())
        }
        Err(e) => return Err(err(&e)),
    };
    let consumer: consumer::OrderedPullConsumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject,
            ..Default::default()
        })
        .await
        .map_err(|e| err(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| err(&e))?;
    let reading = async {
        let mut records = Vec::new();
        while let Some(next) = messages.next().await {
            let m = next.map_err(|e| err(&e))?;
            let seq = m.info().map_err(|e| err(&e))?.stream_sequence;
            records.push(m.message.payload.clone());
            if seq >= last {
                return Ok(records);
            }
        }
        Err(err(&"the log ended early"))
    };
    tokio::time::timeout(READ_TIMEOUT, reading)
        .await
        .map_err(|_| err(&format!("took over {READ_TIMEOUT:?}")))?
}

/// When this run started (nanoseconds since the Unix epoch): message ids of a node's runs
/// differ.
fn started() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
