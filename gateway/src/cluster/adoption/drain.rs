//! Step 4 of an adoption (see [`super`]): what the dead node's consumer held before the
//! adopter's marker goes to the adopted sessions.
//!
//! The consumer is read, not consumed: a consumer of its own ([`Reader`]) reads the stream, with
//! the dead node's filters, from just past what the dead node acknowledged (its ack floor)
//! up to the marker. Nothing is acknowledged to the dead node's consumer, so an adopter that
//! dies here leaves it whole, and whoever takes the adoption over reads it again from the
//! same place (see [`super::claim`]). The messages above the floor that the dead node had
//! stored (it died before its acknowledgement reached the stream) are skipped by their
//! stream sequence numbers.

use std::collections::HashSet;

use async_nats::jetstream;
use tracing::{debug, warn};

use super::{Adoption, ClientKey, WAIT};
use crate::cluster::handover::MARK_PREFIX;
use crate::cluster::messages::{consumer_name, STREAM, STREAM_PREFIX};
use crate::cluster::node::decode;
use crate::cluster::replay::{filters, Reader};

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
        let filters = filters(&info.config);
        let mut reader = Reader::open(&stream, filters, start_sequence..marker, WAIT).await?;
        let mut routed = 0usize;
        let reading = async {
            while let Some((seq, m)) = reader.next().await? {
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
            match reader.reached_end() {
                true => Ok(()),
                false => Err("the stream ended before the marker".to_owned()),
            }
        };
        let read = tokio::time::timeout(WAIT, reading).await;
        reader.close().await;
        read.map_err(|_| {
            format!("{dead}'s consumer was not read up to the marker within {WAIT:?}")
        })??;
        debug!(node = %dead, routed, "read a dead node's consumer");
        Ok(())
    }
}
