//! Session resume across nodes: a persistent session (clean start off, session expiry 3600)
//! subscribes on node A and leaves; N QoS 1 messages are published to it on A, each
//! acknowledged by the broker (so stored); then the client reconnects to node B. Timed from
//! CONNECT written to CONNACK (whose session present must be 1), and to the last of the N
//! arriving, each acknowledged as it comes. The same after node A was killed (SIGKILL) is
//! timed from the kill: the client waits for A's lease to run out and its sessions to be
//! adopted by a node that remains.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use aviary_protocol::{ByteString, Packet, QoS};

use super::session::Raw;
use crate::client::{self, Endpoint, Transport};
use crate::jobs::{read_header, PublisherJob};
use crate::scenarios::{client_options, Params};

/// How long the CONNACK on B may take: after a kill, a lease (15 s by default) and the
/// adoption of the dead node's sessions.
const COME_BACK: Duration = Duration::from_secs(60);

/// What one resume measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resume {
    /// CONNECT written to B until CONNACK.
    pub(crate) connack: Duration,
    /// CONNACK's session present.
    pub(crate) session_present: bool,
    /// CONNECT written until the last queued message arrived (`None`: not all did in time).
    pub(crate) all_arrived: Option<Duration>,
    /// Distinct queued messages that arrived.
    pub(crate) distinct: u64,
    /// PUBLISH packets that arrived, redeliveries included.
    pub(crate) received: u64,
}

/// Leaves a session with `queued` messages on `a` and resumes it on `b`.
pub(crate) async fn resume(
    a: SocketAddr,
    b: SocketAddr,
    tag: &str,
    queued: u64,
    params: &Params,
) -> Result<Resume> {
    let client_id = leave(a, tag, queued, params).await?;
    come_back(b, &client_id, queued, params, Instant::now()).await
}

/// Leaves a persistent session on `a` with `queued` QoS 1 messages, each acknowledged to
/// their publisher: its client id.
pub(crate) async fn leave(
    a: SocketAddr,
    tag: &str,
    queued: u64,
    params: &Params,
) -> Result<String> {
    let client_id = format!("{tag}-session");
    let topic = format!("bench/{tag}");
    let mut first = Raw::open(a).await?;
    first
        .connect(&client_id, true, params.receive_maximum)
        .await
        .context("the session's first connection (node A)")?;
    first.subscribe(&topic).await?;
    first.disconnect().await;
    fill(a, &topic, tag, queued, params).await?;
    Ok(client_id)
}

/// Resumes `client_id`'s session on `b` and takes its `queued` messages; times from `since`
/// (the CONNECT, or earlier: the death of the session's node).
pub(crate) async fn come_back(
    b: SocketAddr,
    client_id: &str,
    queued: u64,
    params: &Params,
    since: Instant,
) -> Result<Resume> {
    let mut again = Raw::open(b).await?;
    let (sent, connack, session_present) = again
        .connect_within(client_id, true, params.receive_maximum, COME_BACK)
        .await
        .context("the session's second connection (node B)")?;
    let from = since.min(sent);
    let (distinct, received, last) = receive(&mut again, queued, sent + params.timeout).await?;
    again.disconnect().await;
    Ok(Resume {
        connack: connack - from,
        session_present,
        all_arrived: (distinct == queued).then(|| last.map_or(Duration::ZERO, |at| at - from)),
        distinct,
        received,
    })
}

/// Publishes `count` QoS 1 messages to `topic` on `a` and waits for every PUBACK.
async fn fill(a: SocketAddr, topic: &str, tag: &str, count: u64, params: &Params) -> Result<()> {
    let endpoint = Endpoint {
        tcp: a,
        ws_url: String::new(),
    };
    let options = client_options(params, format!("{tag}-filler"), None);
    let (reader, writer) = client::connect(&endpoint, Transport::Tcp, &options).await?;
    let job = PublisherJob {
        index: 0,
        messages: count,
        qos: QoS::AtLeastOnce,
        topic: ByteString::from(topic.to_owned()),
        topic_per_message: false,
        topics: None,
        retain: false,
        payload: params.payload,
        window: params.window,
        rate: None,
        deadline: tokio::time::Instant::now() + params.timeout,
        base: Instant::now(),
    };
    let (stats, writer) = job.run(reader, writer).await;
    writer.disconnect().await;
    if let Some(error) = stats.error {
        bail!("queueing the messages: {error}");
    }
    if stats.timed_out || stats.sent < count {
        bail!(
            "queueing the messages timed out after {} of {count}",
            stats.sent
        );
    }
    Ok(())
}

/// Receives and acknowledges until `expected` distinct messages arrived or `deadline`.
/// Returns (distinct, PUBLISH packets, when the last new one arrived).
async fn receive(
    conn: &mut Raw,
    expected: u64,
    deadline: Instant,
) -> Result<(u64, u64, Option<Instant>)> {
    let mut seen = vec![false; expected as usize];
    let (mut distinct, mut received, mut last) = (0u64, 0u64, None);
    while distinct < expected {
        let Ok(packet) = conn.next(deadline).await else {
            break;
        };
        let now = Instant::now();
        let mut next = Some(packet);
        while let Some(packet) = next {
            if let Packet::Publish(publish) = packet {
                received += 1;
                if let Some(id) = publish.packet_id {
                    conn.ack(id)?;
                }
                let seq = read_header(&publish.payload).map(|(_, seq, _)| seq as usize);
                if let Some(slot) = seq.and_then(|seq| seen.get_mut(seq)) {
                    if !*slot {
                        *slot = true;
                        distinct += 1;
                        last = Some(now);
                    }
                }
            }
            next = conn.try_next()?;
        }
        // The PUBACKs of one read go out together.
        conn.flush().await?;
    }
    Ok((distinct, received, last))
}
