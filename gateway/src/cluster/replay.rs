//! Reading a stretch of the message stream again: for deliveries of this node's consumer
//! lost on their way here, and for what a dead node's consumer held (see
//! [`super::adoption`]).
//!
//! **Lost deliveries.** When the NATS server holding a consumer's leader dies, the messages
//! it had sent to this node and that were still on their way are lost with it. The new
//! leader counts them as delivered, and sends them again only once the consumer's
//! acknowledgement wait has passed (30 s), after the newer ones: a late message, out of the
//! order it was published in. The consumer numbers its deliveries one by one, so the next
//! delivery that does arrive shows the loss ([`Deliveries`]). The node then reads the stream's
//! messages between the last delivery it saw and that one, with the consumer's filters,
//! before it routes anything newer.
//!
//! **The reader.** A consumer of its own, which acknowledges nothing, so that it takes
//! nothing from the node's consumer, and which is deleted after ([`Reader`]).

use std::ops::Range;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream::Stream};
use futures_util::StreamExt;
use tracing::debug;

use super::messages::pull;

/// Follows the delivery numbers of a consumer, to notice deliveries that never arrived.
#[derive(Debug, Default)]
pub(super) struct Deliveries {
    /// The last delivery seen, and the highest stream sequence seen.
    last: Option<(u64, u64)>,
}

impl Deliveries {
    /// Notes the delivery numbered `delivery`, of the message of stream sequence `seq`. If
    /// deliveries were lost since the last one seen: the stream sequences to read again,
    /// from just past the highest one seen up to this message. Those lost were new messages
    /// (sent in stream order, below this one) or messages sent again, which the server
    /// sends again later still.
    pub(super) fn note(&mut self, delivery: u64, seq: u64) -> Option<Range<u64>> {
        let (lost, highest) = match self.last {
            // A lower number: the consumer was made again. Nothing to compare with.
            Some((last, highest)) if delivery > last => (delivery > last + 1, highest),
            _ => (false, 0),
        };
        self.last = Some((delivery, highest.max(seq)));
        (lost && seq > highest + 1).then_some(highest + 1..seq)
    }
}

/// A stretch of the stream, read by a consumer of its own that acknowledges nothing.
pub(super) struct Reader {
    stream: Stream,
    name: String,
    messages: consumer::pull::Stream,
    end: u64,
    done: bool,
    reached: bool,
}

impl Reader {
    /// Reads the messages of `stream` from sequence `range.start` up to `range.end` (not
    /// included) that `filters` match. The consumer goes by itself once unused for
    /// `inactive`, should [`Reader::close`] not be reached.
    pub(super) async fn open(
        stream: &Stream,
        filters: Vec<String>,
        range: Range<u64>,
        inactive: Duration,
    ) -> Result<Self, String> {
        // Not an ordered consumer: a consumer of a stream with interest retention must have
        // its replicas.
        let replicas = stream.cached_info().config.num_replicas;
        let reader: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subjects: filters,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: range.start,
                },
                ack_policy: consumer::AckPolicy::None,
                num_replicas: replicas,
                inactive_threshold: inactive,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        // With heartbeats every second: a reader made while JetStream still elects leaders
        // may get no answer, and the client's default would notice only after 30 s.
        let messages = pull(&reader).await.map_err(|e| e.to_string())?;
        Ok(Self {
            stream: stream.clone(),
            name: reader.cached_info().name.clone(),
            messages,
            end: range.end,
            done: false,
            reached: false,
        })
    }

    /// The next message and its stream sequence; None once the end is reached, or once
    /// nothing more is in the stream for the filters (an error if the stream ended).
    pub(super) async fn next(&mut self) -> Result<Option<(u64, jetstream::Message)>, String> {
        if self.done {
            return Ok(None);
        }
        let m = self
            .messages
            .next()
            .await
            .ok_or("the stream ended")?
            .map_err(|e| e.to_string())?;
        let info = m.info().map_err(|e| e.to_string())?;
        let seq = info.stream_sequence;
        self.reached = seq >= self.end;
        self.done = self.reached || info.pending == 0;
        Ok((!self.reached).then_some((seq, m)))
    }

    /// Whether the reading got to the end of its stretch (a message at or past it).
    pub(super) fn reached_end(&self) -> bool {
        self.reached
    }

    /// Deletes the reading consumer.
    pub(super) async fn close(self) {
        drop(self.messages);
        if let Err(e) = self.stream.delete_consumer(&self.name).await {
            debug!(error = %e, "the reading consumer did not go; it goes once inactive");
        }
    }
}

/// A consumer's filters, as its information gives them.
pub(super) fn filters(config: &consumer::Config) -> Vec<String> {
    let mut filters = config.filter_subjects.clone();
    if !config.filter_subject.is_empty() {
        filters.push(config.filter_subject.clone());
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_in_a_row_lose_nothing() {
        let mut d = Deliveries::default();
        assert_eq!(d.note(1, 10), None);
        assert_eq!(d.note(2, 12), None, "other messages are for other nodes");
        assert_eq!(d.note(3, 5), None, "a message sent again");
        assert_eq!(d.note(4, 13), None);
    }

    #[test]
    fn a_jump_in_the_delivery_numbers_is_read_again_from_the_stream() {
        let mut d = Deliveries::default();
        d.note(7, 100);
        assert_eq!(d.note(11, 150), Some(101..150));
        assert_eq!(d.note(12, 151), None);
    }

    #[test]
    fn the_stretch_starts_above_the_highest_message_seen() {
        let mut d = Deliveries::default();
        d.note(1, 100);
        d.note(2, 40);
        assert_eq!(d.note(5, 120), Some(101..120), "not from 41");
    }

    #[test]
    fn a_jump_with_nothing_new_between_reads_nothing() {
        let mut d = Deliveries::default();
        d.note(1, 100);
        // Lost: messages sent again, which come again later.
        assert_eq!(d.note(4, 101), None);
    }

    #[test]
    fn the_first_delivery_and_a_consumer_made_again_compare_with_nothing() {
        let mut d = Deliveries::default();
        assert_eq!(
            d.note(40, 500),
            None,
            "from an earlier run: the fence's case"
        );
        assert_eq!(d.note(1, 600), None, "numbered from 1 again");
        assert_eq!(d.note(2, 601), None);
    }
}
