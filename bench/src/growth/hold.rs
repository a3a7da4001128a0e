//! Setting up many subscriptions fast: a fixed number of clients, each sending SUBSCRIBE
//! packets of many filters with a window of them unacknowledged, all clients at once.
//!
//! Subscription `i` goes to client `i % clients`, so a publication to subscription `k`
//! reaches client `k % clients`: the caller knows how many deliveries each client is owed.

use std::num::NonZeroU16;

use anyhow::{anyhow, bail, Context as _, Result};
use aviary_protocol::{Packet, QoS, Subscribe, SubscriptionOptions, TopicFilter};
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::client::{self, Endpoint, PacketReader, PacketWriter, Transport};
use crate::scenarios::{client_options, Params};

/// SUBSCRIBE packets a client keeps unacknowledged at most: enough to keep the broker busy,
/// few enough that its SUBACKs never fill a socket buffer we are not reading yet.
const SUBSCRIBE_WINDOW: usize = 32;

/// Who holds what: `subscriptions` filters, made by `filter(i)`, over `clients` clients.
pub(crate) struct Holding<'a> {
    /// Subscriptions in all.
    pub(crate) subscriptions: usize,
    /// Clients holding them (at most one per subscription).
    pub(crate) clients: usize,
    /// Topic filters per SUBSCRIBE packet.
    pub(crate) per_packet: usize,
    /// The filter of subscription `i`.
    pub(crate) filter: &'a (dyn Fn(usize) -> String + Sync),
}

impl Holding<'_> {
    /// Clients actually used: at least one, at most one per subscription.
    pub(crate) fn client_count(&self) -> usize {
        self.clients.clamp(1, self.subscriptions.max(1))
    }
}

/// Connects the clients and subscribes each to its share, all at once; fails if any client
/// cannot, or if `deadline` passes first. The connections come back in client order.
pub(crate) async fn hold(
    endpoint: &Endpoint,
    holding: &Holding<'_>,
    params: &Params,
    deadline: tokio::time::Instant,
) -> Result<Vec<(PacketReader, PacketWriter)>> {
    let clients = holding.client_count();
    let mut tasks = JoinSet::new();
    for c in 0..clients {
        // Built here, not in the task: the closure is borrowed, the task must own its filters.
        let filters: Vec<String> = (c..holding.subscriptions)
            .step_by(clients)
            .map(holding.filter)
            .collect();
        let endpoint = endpoint.clone();
        let options = client_options(params, format!("growth-{c}"), None);
        let per_packet = holding.per_packet.max(1);
        tasks.spawn(async move {
            let (mut reader, mut writer) = client::connect(&endpoint, Transport::Tcp, &options)
                .await
                .with_context(|| format!("client {c} cannot connect"))?;
            subscribe_many(&mut reader, &mut writer, &filters, per_packet, deadline)
                .await
                .with_context(|| format!("client {c} cannot subscribe"))?;
            anyhow::Ok((c, reader, writer))
        });
    }
    let mut held: Vec<Option<(PacketReader, PacketWriter)>> = (0..clients).map(|_| None).collect();
    loop {
        match timeout_at(deadline, tasks.join_next()).await {
            Ok(Some(done)) => {
                let (c, reader, writer) = done.map_err(|e| anyhow!("client panicked: {e}"))??;
                held[c] = Some((reader, writer));
            }
            Ok(None) => break,
            Err(_) => {
                let left = tasks.len();
                tasks.abort_all();
                bail!("{left} of {clients} clients not subscribed within the setup timeout");
            }
        }
    }
    Ok(held.into_iter().flatten().collect())
}

/// Subscribes to every filter at QoS 1, `per_packet` filters per SUBSCRIBE, with
/// [`SUBSCRIBE_WINDOW`] packets in flight; waits for every SUBACK, until `deadline`, and
/// checks each grant.
async fn subscribe_many(
    reader: &mut PacketReader,
    writer: &mut PacketWriter,
    filters: &[String],
    per_packet: usize,
    deadline: tokio::time::Instant,
) -> Result<()> {
    let mut packets = filters.chunks(per_packet);
    let total = filters.len().div_ceil(per_packet);
    let (mut sent, mut acked) = (0usize, 0usize);
    while acked < total {
        while sent < total && sent - acked < SUBSCRIBE_WINDOW {
            let chunk = packets.next().context("ran out of filters")?;
            let filters = chunk
                .iter()
                .map(|f| {
                    let filter = TopicFilter::new(f.as_str())
                        .map_err(|e| anyhow!("bad topic filter {f}: {e}"))?;
                    Ok((filter, SubscriptionOptions::qos(QoS::AtLeastOnce)))
                })
                .collect::<Result<Vec<_>>>()?;
            let subscribe = Subscribe {
                packet_id: NonZeroU16::new((sent % 65_535) as u16 + 1).unwrap_or(NonZeroU16::MIN),
                properties: Default::default(),
                filters,
            };
            writer.queue(&Packet::Subscribe(subscribe))?;
            sent += 1;
        }
        writer.flush().await?;
        // Bounded by the setup's deadline, not a fixed time per SUBACK: a broker slowed down
        // (under callgrind, 100 clients with 32 SUBSCRIBEs each in flight) may take minutes
        // to reach a client's first packet, and is still answering. A broker that stops
        // answering fails the client when the setup times out, with how far it got.
        match timeout_at(deadline, reader.next()).await {
            Ok(Ok(Packet::SubAck(ack))) => {
                if let Some(code) = ack.reason_codes.iter().find(|code| code.is_error()) {
                    bail!("subscription refused: {code:?}");
                }
                acked += 1;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                bail!("no SUBACK in the setup timeout ({acked} of {total} packets acknowledged)")
            }
        }
    }
    Ok(())
}
