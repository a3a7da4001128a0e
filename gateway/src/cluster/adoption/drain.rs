//! Step 4 of an adoption (see [`super`]): what the dead node's consumer held before the
//! adopter's marker goes to the adopted sessions.
//!
//! The consumer is read, not consumed: a consumer of its own reads the stream, with
//! the dead node's filters, from just past what the dead node acknowledged (its ack floor)
//! up to the marker. Nothing is acknowledged to the dead node's consumer, so an adopter that
//! dies here leaves it whole, and whoever takes the adoption over reads it again from the
//! same place (see [`super::claim`]). The messages above the floor that the dead node had
//! stored (it died before its acknowledgement reached the stream) are skipped by their
//! stream sequence numbers.

use std::collections::HashSet;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use tracing::{debug, warn};

use super::{Adoption, ClientKey, WAIT};
use crate::cluster::handover::MARK_PREFIX;
use crate::cluster::node::{consumer_name, decode, STREAM, STREAM_PREFIX};

impl Adoption {
    /// Routes what `dead`'s consumer holds before `marker` to the adopted `sessions`, but for
    /// the stream messages its store had `queued` already.
    pub(super) async fn drain(
        &self,
        dead: &str,
        marker: u64,
        sessions: &HashSet<ClientKey>,
        queued: &HashSet<u64>,
    ) -> Result<(), String> {
        let stream = self
            .js
            .get_stream(STREAM)
            .await
            .map_err(|e| e.to_string())?;
        let info = match stream.consumer_info(consumer_name(dead)).await {
            Ok(info) => info,
            Err(e) if e.kind() == jetstream::context::ConsumerInfoErrorKind::NotFound => {
                return Ok(())
            }
            Err(e) => return Err(e.to_string()),
        };
        let start_sequence = info.ack_floor.stream_sequence + 1;
        if start_sequence >= marker {
            return Ok(());
        }
        // Its filters always name its markers, the adopter's among them: the read ends there.
        let mut filter_subjects = info.config.filter_subjects;
        if !info.config.filter_subject.is_empty() {
            filter_subjects.push(info.config.filter_subject);
        }
        // Not an ordered consumer: a consumer of a stream with interest retention must have
        // its replicas. Without acknowledgements, so it takes nothing from the dead node's.
        let replicas = stream.cached_info().config.num_replicas;
        let reader: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                filter_subjects,
                deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence },
                ack_policy: consumer::AckPolicy::None,
                num_replicas: replicas,
                inactive_threshold: WAIT,
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        let mut messages = reader.messages().await.map_err(|e| e.to_string())?;
        let mut routed = 0usize;
        let reading = async {
            while let Some(m) = messages.next().await {
                let m = m.map_err(|e| e.to_string())?;
                let seq = m.info().map_err(|e| e.to_string())?.stream_sequence;
                if seq >= marker {
                    return Ok(());
                }
                if queued.contains(&seq) || m.subject.starts_with(MARK_PREFIX) {
                    continue;
                }
                match decode(&m.subject, m.message.payload.clone(), STREAM_PREFIX) {
                    Ok(msg) => routed += self.broker()?.publish_adopted(msg, sessions),
                    Err(e) => {
                        warn!(subject = %m.subject, error = %e, "dropped a message from the stream")
                    }
                }
            }
            Err("the stream ended before the marker".to_owned())
        };
        let read = tokio::time::timeout(WAIT, reading).await;
        drop(messages);
        if let Err(e) = stream.delete_consumer(&reader.cached_info().name).await {
            debug!(error = %e, "the reading consumer did not go; it goes once inactive");
        }
        read.map_err(|_| {
            format!("{dead}'s consumer was not read up to the marker within {WAIT:?}")
        })??;
        debug!(node = %dead, routed, "read a dead node's consumer");
        Ok(())
    }
}
