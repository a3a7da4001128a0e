//! QoS 0 messages between nodes, over core NATS: several messages of one topic in one NATS
//! message when they come faster than they are sent.
//!
//! A NATS message costs both gateways far more than the MQTT message it carries: the client's
//! command channel and protocol line on one side, the parse, the subscription's channel and
//! the subject's decoding on the other. The sending task has often taken several messages on
//! the same topic by the time it sends one (a sensor stream, a chat room), and sends them
//! together. It never waits for more: what is queued goes now, so batching adds no latency.
//! A batch keeps its messages' order, and NATS keeps the order of a subject's messages from
//! one connection, so a topic's QoS 0 messages arrive in the order they were published.
//!
//! A shared group's QoS 0 messages go to one node per NATS message (a queue group), so a
//! batch goes to one node; [`MAX_MESSAGES`] keeps batches small enough for the split to
//! stay even.
//!
//! Layout: [`FORMAT`], then for each message its length (4 bytes, big-endian) and its bytes
//! as [`encode_wire`](crate::broker::encode_wire) wrote them. No NATS headers: the subject
//! says the topic, and the node a message came from is not needed (the connection asks NATS
//! not to echo this node's own messages).
//!
//! QoS 0 goes both ways on a connection of its own ([`connect`]): the NATS client keeps up to
//! its subscription capacity of messages per subscription that the node has not read yet, and
//! its default (65,536) of batches could hold a gigabyte for a node that falls behind. This one
//! holds [`BACKLOG`] per subscription and drops the rest, as QoS 0 allows; the connection of
//! the streams and buckets, whose messages must not be dropped, keeps the default.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::warn;

use super::link;
use super::node::decode_on;
use super::outbound::Out;
use super::subject::subject_to_topic;
use super::ClusterError;
use crate::broker::Message;
use crate::config::ClusterConfig;

/// The first byte of a batch: the layout's version.
const FORMAT: u8 = 1;
/// At most this many bytes of messages in one batch (a lone message may be larger).
const MAX_BYTES: usize = 4 * 1024;
/// NATS messages a QoS 0 subscription holds for the node to read: at most 64 MiB of full
/// batches. With 4,096 a node that shared 2 cores with three NATS servers lost 1–10 % of a
/// burst of 200,000 messages on as many topics in the bench; with this many, none.
const BACKLOG: usize = 16 * 1024;
/// At most this many messages in one batch.
pub(super) const MAX_MESSAGES: usize = 64;
/// At most one warning per this long that the node drops QoS 0 messages.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// QoS 0 messages on one subject, on their way into one NATS message.
pub(super) struct Batch {
    subject: String,
    buf: BytesMut,
    count: usize,
}

impl Batch {
    /// A batch of the message `wire` on `subject`.
    pub(super) fn new(subject: String, wire: &[u8]) -> Self {
        let mut batch = Self {
            subject,
            // Room for a few more: most batches that take more take many.
            buf: BytesMut::with_capacity(1 + 4 + wire.len()),
            count: 0,
        };
        batch.buf.put_u8(FORMAT);
        batch.push(wire);
        batch
    }

    /// Adds the messages already queued in `out` while they are QoS 0 on this subject and
    /// there is room; returns the first one it did not take.
    pub(super) fn fill(&mut self, out: &mut mpsc::UnboundedReceiver<Out>) -> Option<Out> {
        while self.count < MAX_MESSAGES {
            match out.try_recv().ok()? {
                Out::Live { subject, payload }
                    if subject == self.subject
                        && self.buf.len() + 4 + payload.len() <= MAX_BYTES =>
                {
                    self.push(&payload);
                }
                other => return Some(other),
            }
        }
        None
    }

    fn push(&mut self, wire: &[u8]) {
        let len = u32::try_from(wire.len()).expect("an MQTT message is under 4 GiB");
        self.buf.put_u32(len);
        self.buf.put_slice(wire);
        self.count += 1;
    }

    /// How many messages it holds.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// The bytes of its messages, as they were handed to the sending task.
    pub(super) fn message_bytes(&self) -> usize {
        self.buf.len() - 1 - 4 * self.count
    }

    /// The NATS subject and payload.
    pub(super) fn finish(self) -> (String, Bytes) {
        (self.subject, self.buf.freeze())
    }
}

/// The messages of a batch that came on `subject` (under `prefix`), in order; an error names
/// what is wrong with the first one that is not a message on the subject's topic.
pub(super) fn unbatch(
    subject: &str,
    mut payload: Bytes,
    prefix: &str,
) -> impl Iterator<Item = Result<Message, String>> {
    let topic = subject_to_topic(prefix, subject).map_err(|e| e.to_string());
    let format = match payload.has_remaining() {
        true => payload.get_u8(),
        false => 0,
    };
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || !payload.has_remaining() {
            return None;
        }
        let next = next_message(&topic, format, &mut payload);
        failed = next.is_err();
        Some(next)
    })
}

/// The next message of a batch.
fn next_message(
    topic: &Result<String, String>,
    format: u8,
    payload: &mut Bytes,
) -> Result<Message, String> {
    let topic = topic.as_ref().map_err(Clone::clone)?;
    if format != FORMAT {
        return Err(format!("unknown batch format {format}"));
    }
    if payload.remaining() < 4 {
        return Err("a batch ends inside a message's length".to_owned());
    }
    let len = payload.get_u32() as usize;
    if payload.remaining() < len {
        return Err(format!(
            "a batch's message of {len} bytes has {} left",
            payload.remaining()
        ));
    }
    decode_on(topic, payload.split_to(len))
}

/// A connection for QoS 0 between nodes (`role` names it in the NATS server's view), which
/// hears its own messages only with `echo`; a subscription the node falls behind on drops
/// messages past [`BACKLOG`].
pub(super) async fn connect(
    config: &ClusterConfig,
    node: &str,
    role: &str,
    echo: bool,
) -> Result<async_nats::Client, ClusterError> {
    let warned: Arc<Mutex<Option<Instant>>> = Arc::default();
    let mut options = async_nats::ConnectOptions::new()
        .name(format!("aviary {node} {role}"))
        .connection_timeout(Duration::from_secs(5))
        .subscription_capacity(BACKLOG)
        // Back as soon as the node's main connection is.
        .reconnect_delay_callback(link::reconnect_delay)
        .event_callback(move |event| {
            if let async_nats::Event::SlowConsumer(_) = event {
                let mut last = warned.lock();
                if last.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    *last = Some(Instant::now());
                    warn!(
                        "this node falls behind the QoS 0 messages of the other nodes \
                         and drops some (this is said at most every 10 s)"
                    );
                }
            }
            async {}
        });
    if !echo {
        options = options.no_echo();
    }
    options
        .connect(config.nats.as_slice())
        .await
        .map_err(|e| ClusterError::Connect {
            urls: config.nats.join(", "),
            error: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::encode_wire;
    use crate::cluster::node::LIVE;
    use crate::cluster::subject::topic_to_subject;
    use aviary_protocol::QoS;

    fn wire(topic: &str, payload: &str) -> Bytes {
        Bytes::from(encode_wire(&Message {
            topic: topic.into(),
            payload: Bytes::from(payload.to_owned()),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            stored: Default::default(),
            stream_seq: None,
        }))
    }

    fn live(topic: &str, payload: &str) -> Out {
        Out::Live {
            subject: topic_to_subject(LIVE, topic),
            payload: wire(topic, payload),
        }
    }

    fn payloads(subject: &str, payload: Bytes) -> Vec<Result<String, String>> {
        unbatch(subject, payload, LIVE)
            .map(|m| m.map(|m| String::from_utf8(m.payload.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn a_batch_takes_what_is_queued_on_its_subject_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for (topic, payload) in [("a/b", "2"), ("a/b", "3"), ("a/c", "4"), ("a/b", "5")] {
            tx.send(live(topic, payload)).unwrap();
        }
        let subject = topic_to_subject(LIVE, "a/b");
        let mut batch = Batch::new(subject.clone(), &wire("a/b", "1"));
        let stopped_at = batch.fill(&mut rx);
        assert!(matches!(stopped_at, Some(Out::Live { subject, .. }) if subject.ends_with(".c")));
        assert_eq!(batch.message_bytes(), 3 * wire("a/b", "1").len());
        let (sent_on, payload) = batch.finish();
        assert_eq!(sent_on, subject);
        assert_eq!(
            payloads(&subject, payload),
            vec![Ok("1".into()), Ok("2".into()), Ok("3".into())]
        );
        // What the batch did not take is still queued, in order.
        assert!(matches!(rx.try_recv(), Ok(Out::Live { .. })));
    }

    #[test]
    fn a_batch_stops_at_its_message_limit() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        for i in 0..MAX_MESSAGES + 5 {
            tx.send(live("t", &i.to_string())).unwrap();
        }
        let mut batch = Batch::new(topic_to_subject(LIVE, "t"), &wire("t", "first"));
        assert!(batch.fill(&mut rx).is_none());
        let (subject, payload) = batch.finish();
        let got = payloads(&subject, payload);
        assert_eq!(got.len(), MAX_MESSAGES);
        assert_eq!(got[1], Ok("0".to_owned()));
    }

    #[test]
    fn a_batch_stops_at_its_byte_limit() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let third = "x".repeat(MAX_BYTES / 3);
        for _ in 0..3 {
            tx.send(live("t", &third)).unwrap();
        }
        let mut batch = Batch::new(topic_to_subject(LIVE, "t"), &wire("t", &third));
        // The first queued one fits beside the batch's own, the second does not.
        assert!(batch.fill(&mut rx).is_some());
        assert!(rx.try_recv().is_ok());
        let (subject, payload) = batch.finish();
        assert!(payload.len() <= MAX_BYTES);
        assert_eq!(payloads(&subject, payload).len(), 2);
    }

    #[test]
    fn a_message_on_another_topic_or_a_broken_batch_is_an_error() {
        let subject = topic_to_subject(LIVE, "a/b");
        let (_, payload) = Batch::new(subject.clone(), &wire("a/c", "1")).finish();
        let got = payloads(&subject, payload);
        assert!(
            matches!(&got[..], [Err(e)] if e.contains("not the subject's")),
            "{got:?}"
        );

        let (_, payload) = Batch::new(subject.clone(), &wire("a/b", "1")).finish();
        let cut = payload.slice(..payload.len() - 1);
        let got = payloads(&subject, cut);
        assert!(matches!(&got[..], [Err(e)] if e.contains("has")), "{got:?}");

        let mut other = BytesMut::from(&payload[..]);
        other[0] = 9;
        let got = payloads(&subject, other.freeze());
        assert!(
            matches!(&got[..], [Err(e)] if e.contains("format 9")),
            "{got:?}"
        );
    }
}
