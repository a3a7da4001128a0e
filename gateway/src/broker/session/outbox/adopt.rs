//! A session moving in from another node (cluster mode): its messages from the old node go
//! ahead of those this node queued for it while the move was under way, and of those, the
//! ones the old node had already had are dropped.
//!
//! Both nodes read the cluster's message stream in its order. The old node handed the session
//! over when it reached a marker at stream sequence `after` in that order, so it had every
//! message up to the marker (delivered, queued or in flight), and this node keeps only what
//! came after. Messages that did not come through the stream (QoS 0, over core NATS) are kept:
//! at most once promises nothing either way.

use aviary_protocol::QoS;

use super::{Active, Event, Inflight, Outgoing};

impl Active {
    /// Puts the old node's in-flight and queued messages first, then what this outbox queued
    /// after the marker at stream sequence `after`, writing the new order to the store.
    pub(crate) fn adopt(&mut self, inflight: Vec<Inflight>, queued: Vec<Outgoing>, after: u64) {
        let mut held = Vec::with_capacity(self.queue.len());
        while let Some(out) = self.remove_queued(0) {
            // The store forgets its place: it is written again in the new order.
            self.record(|| Event::Done(out.clone()), &out);
            let had = out.msg.stream_seq.is_some_and(|s| s.get() <= after);
            if !had {
                held.push(Outgoing { seq: None, ..out });
            }
        }
        for mut i in inflight {
            i.out.seq = self.take_seq(&i.out);
            if let (Some(journal), Some(_)) = (&mut self.journal, i.out.seq) {
                journal.push(Event::Queued {
                    out: i.out.clone(),
                    online: false,
                });
                if i.out.qos == QoS::ExactlyOnce {
                    journal.push(Event::Sent(i.out.clone(), i.packet_id));
                    if i.released {
                        journal.push(Event::Released(i.out.clone(), i.packet_id));
                    }
                }
            }
            self.next_packet_id = self.next_packet_id.max(i.packet_id.get());
            self.mix_ids();
            self.inflight.push_back(i);
        }
        for mut out in queued.into_iter().chain(held) {
            out.seq = self.take_seq(&out);
            if let (Some(journal), Some(_)) = (&mut self.journal, out.seq) {
                journal.push(Event::Queued {
                    out: out.clone(),
                    online: false,
                });
            }
            self.account(&out, true);
            self.queue.push_back(out);
        }
    }

    /// The store key for `out` when the store keeps it (QoS 1/2 of a persistent session).
    fn take_seq(&mut self, out: &Outgoing) -> Option<u64> {
        (self.journal.is_some() && out.qos != QoS::AtMostOnce).then(|| {
            self.next_seq += 1;
            self.next_seq - 1
        })
    }
}

#[cfg(test)]
mod tests {
    use std::num::{NonZeroU16, NonZeroU64};
    use std::sync::Arc;

    use aviary_protocol::QoS;
    use bytes::Bytes;

    use super::super::{Inflight, Outbox, QueueLimits};
    use crate::broker::message::{Message, Outgoing};

    fn out(name: &str, seq: Option<u64>) -> Outgoing {
        let msg = Message {
            topic: name.into(),
            payload: Bytes::from_static(b"x"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
            expires_at: None,
            stored: Default::default(),
            stream_seq: seq.and_then(NonZeroU64::new),
        };
        Outgoing {
            msg: Arc::new(msg),
            qos: QoS::AtLeastOnce,
            retain: false,
            subscription_ids: Vec::new(),
            seq: None,
        }
    }

    #[test]
    fn the_old_nodes_messages_go_first_and_what_it_had_goes() {
        let limits = QueueLimits {
            max_messages: 100,
            max_bytes: 1 << 20,
            qos0_offline: true,
            slow: crate::broker::SlowAfter::DEFAULT,
        };
        let mut outbox = Outbox::default();
        outbox.set_journaled(true);
        // Queued here while the move was under way: two the old node had (up to the marker at
        // 10), one after it, and one that never came through the stream.
        for (name, seq) in [
            ("had-9", Some(9)),
            ("had-10", Some(10)),
            ("new-11", Some(11)),
            ("live", None),
        ] {
            outbox.enqueue(out(name, seq), &limits, false);
        }
        let inflight = vec![Inflight {
            packet_id: NonZeroU16::new(7).unwrap(),
            out: out("in-flight", Some(5)),
            released: false,
        }];
        outbox.adopt(inflight, vec![out("queued-there", Some(8))], 10);
        let queued: Vec<&str> = outbox.queue().iter().map(|o| &*o.msg.topic).collect();
        assert_eq!(queued, ["queued-there", "new-11", "live"]);
        assert_eq!(outbox.inflight().len(), 1);
        // Written to the store again in the new order, keys rising with it.
        let seqs: Vec<u64> = outbox
            .inflight()
            .iter()
            .map(|i| i.out.seq.unwrap())
            .chain(outbox.queue().iter().map(|o| o.seq.unwrap()))
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    }
}
