//! Each node's store, copied into JetStream: the `AVIARY_STORES` stream holds one log per
//! node, under `aviary.store.<node>`, in the format of `store::replica`.
//!
//! What it is for: a node's persistent sessions (subscriptions, queues, in-flight messages
//! both ways) live in its disk store, which dies with the node's machine. With the log in
//! JetStream, replicated like the rest of Aviary's state, another node can read a dead
//! node's sessions back ([`read`]) and adopt them. A node's store appends to its log before
//! each commit returns, so whatever the node acknowledged is in the log.
//!
//! The store's commit thread is a blocking one (the group commit's writer runs each commit
//! with `spawn_blocking`), so the log's appends block on the runtime's handle there.

use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::runtime::Handle;

use super::subject::token;
use super::ClusterError;
use crate::store::Replica;

/// The stream of the nodes' store logs.
const STREAM: &str = "AVIARY_STORES";
/// Subjects of the nodes' logs: `aviary.store.<node token>`.
const PREFIX: &str = "aviary.store";
/// How long reading a log back may take.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// One node's log in [`STREAM`].
#[derive(Debug)]
pub(super) struct JetStreamLog {
    js: jetstream::Context,
    stream: stream::Stream,
    subject: String,
    runtime: Handle,
}

impl JetStreamLog {
    /// Opens (creating) the stream, for `node`'s log.
    pub(super) async fn open(
        js: &jetstream::Context,
        replicas: u8,
        node: &str,
    ) -> Result<Self, ClusterError> {
        let stream = open_stream(js, replicas).await?;
        Ok(Self {
            js: js.clone(),
            stream,
            subject: subject(node),
            runtime: Handle::current(),
        })
    }
}

impl Replica for JetStreamLog {
    fn append(&self, records: Vec<Bytes>) -> Result<u64, String> {
        self.runtime.block_on(async {
            // Pipelined: every record is on its way before the first acknowledgement.
            let mut acks = Vec::with_capacity(records.len());
            for record in records {
                let ack = self.js.publish(self.subject.clone(), record).await;
                acks.push(ack.map_err(|e| format!("appending to {STREAM}: {e}"))?);
            }
            let mut first = None;
            for ack in acks {
                let ack = ack
                    .await
                    .map_err(|e| format!("appending to {STREAM}: {e}"))?;
                first.get_or_insert(ack.sequence);
            }
            first.ok_or_else(|| "nothing to append".to_owned())
        })
    }

    fn truncate(&self, first: u64) -> Result<(), String> {
        self.runtime.block_on(async {
            self.stream
                .purge()
                .filter(self.subject.clone())
                .sequence(first)
                .await
                .map(|_| ())
                .map_err(|e| format!("dropping the log's old records in {STREAM}: {e}"))
        })
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
    super::setup::retrying(STREAM, || js.get_or_create_stream(config.clone()))
        .await
        .map_err(|e| ClusterError::Stream(e.to_string()))
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
