//! What the cluster tests share: nodes of a test cluster, in-process or as processes of their
//! own (to be killed with SIGKILL), with short leases for the tests of node failure, and the
//! clients' side of sessions and deliveries.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use crate::common::nats::NatsCluster;
use crate::common::process::GatewayProcess;
use aviary_protocol::{Ack, Packet};

use crate::common::raw::{Event, Raw};
use crate::common::within_for;
use crate::ws_common::Gw;

/// The lease of every node in these tests: short, so that they wait seconds, not tens of
/// them, for a dead node to be noticed; not shorter, as a node cuts itself off when it cannot
/// renew its lease for four fifths of it (see `cluster::link`). At 2 s, that was 1.6 s, and a
/// JetStream put stalled that long once on the loaded 2-core CI machine: a live node cut
/// itself off mid-test (DISCONNECT 0x9C to its publisher).
pub(crate) const LEASE: Duration = Duration::from_millis(3_000);

/// An in-process node of the cluster on `nats`.
pub(crate) async fn node(nats: &NatsCluster, name: &str) -> Gw {
    Gw::start_with(|c| {
        c.cluster.nats = nats.urls();
        c.cluster.node = Some(name.to_owned());
        c.cluster.lease_ms = Some(LEASE.as_millis() as u64);
    })
    .await
}

/// An in-process node of the cluster on `nats` with the default lease, for the tests where no
/// node dies: a JetStream put stalled on a loaded machine does not cut it off (see `LEASE`).
pub(crate) async fn steady_node(nats: &NatsCluster, name: &str) -> Gw {
    Gw::start_with(|c| {
        c.cluster.nats = nats.urls();
        c.cluster.node = Some(name.to_owned());
    })
    .await
}

/// How long a NATS failover may take in the tests: JetStream's leader elections take a few
/// seconds, on a loaded machine more.
pub(crate) const FAILOVER: Duration = Duration::from_secs(30);

/// Two in-process nodes for a NATS failover (default lease): gw-a talks to server 0 first,
/// which the test kills; gw-b never to it.
pub(crate) async fn failover_pair(nats: &NatsCluster) -> (Gw, Gw) {
    let start = |name: &'static str, urls: Vec<String>| {
        Gw::start_with(move |c| {
            c.cluster.nats = urls;
            c.cluster.node = Some(name.to_owned());
            c.cluster.replicas = Some(3);
        })
    };
    let a = start("gw-a", vec![nats.url(0), nats.url(1)]).await;
    let b = start("gw-b", vec![nats.url(2), nats.url(1)]).await;
    (a, b)
}

/// A node of the cluster on `nats` as a process of its own, to be killed with SIGKILL.
pub(crate) async fn process_node(nats: &NatsCluster, name: &str, dir: &Path) -> GatewayProcess {
    let urls: Vec<String> = nats.urls().iter().map(|u| format!("{u:?}")).collect();
    let config = format!(
        "[cluster]\nnats = [{}]\nnode = {name:?}\nlease_ms = {}\n",
        urls.join(", "),
        LEASE.as_millis()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, config).expect("write the node's config");
    let data = dir.join(format!("{name}-data"));
    let config = path.to_str().expect("a UTF-8 path");
    GatewayProcess::start(&data, &["--config", config]).await
}

/// A CONNECT of a persistent session (an hour).
pub(crate) fn persistent(client_id: &str) -> aviary_protocol::Connect {
    let mut connect = crate::common::raw::v5(client_id);
    connect.clean_start = false;
    connect.properties.session_expiry_interval = Some(3_600);
    connect
}

/// The payloads of the next `n` messages, each acknowledged.
pub(crate) async fn receive(sub: &mut Raw, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    crate::common::within("the queued messages", async {
        while got.len() < n {
            let p = sub.recv_publish().await;
            sub.ack(&p).await;
            got.push(String::from_utf8(p.payload.to_vec()).expect("utf-8"));
        }
    })
    .await;
    got
}

/// The numbers `sub` receives, each acknowledged, until it has `n` different ones; routing
/// probes left out.
pub(crate) async fn numbers(sub: &mut Raw, n: usize) -> BTreeSet<usize> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let p = sub.recv_publish().await;
        sub.ack(&p).await;
        let payload = String::from_utf8(p.payload.to_vec()).expect("utf-8");
        if payload != "probe" {
            seen.insert(payload.parse::<usize>().expect("a number"));
        }
    }
    seen
}

/// A QoS 2 receiver as a client library keeps one, across the connections of its session:
/// a message is delivered when its PUBLISH first comes; one sent again under a packet id it
/// holds (not yet released) is a resend, acknowledged and not delivered again.
#[derive(Default)]
pub(crate) struct Qos2Receiver {
    held: HashSet<u16>,
    /// Deliveries per message number.
    pub(crate) delivered: BTreeMap<usize, usize>,
}

impl Qos2Receiver {
    /// Takes what `conn` brings until `n` messages were delivered (true) or it closes.
    pub(crate) async fn take(&mut self, conn: &mut Raw, n: usize) -> bool {
        while self.delivered.len() < n {
            match conn.next_event(Duration::from_secs(10)).await {
                Some(Event::Packet(Packet::Publish(p))) => {
                    let id = p.packet_id.expect("a QoS 2 packet id");
                    if self.held.insert(id.get()) {
                        let payload = String::from_utf8(p.payload.to_vec()).expect("utf-8");
                        if payload != "probe" {
                            let n = payload.parse::<usize>().expect("a number");
                            *self.delivered.entry(n).or_default() += 1;
                        }
                    }
                    if !conn.try_send(Packet::PubRec(Ack::new(id))).await {
                        return false;
                    }
                }
                Some(Event::Packet(Packet::PubRel(a))) => {
                    self.held.remove(&a.packet_id.get());
                    if !conn.try_send(Packet::PubComp(Ack::new(a.packet_id))).await {
                        return false;
                    }
                }
                Some(Event::Closed) => return false,
                Some(Event::Packet(other)) => panic!("unexpected {other:?}"),
                None => panic!("nothing came for 10 s"),
            }
        }
        true
    }
}

/// A node's reads of its key in a key-value bucket, whichever way they go (direct gets, or
/// the stream leader's message gets): to see a starting node wait on what its key says.
pub(crate) struct KeyReads {
    direct: async_nats::Subscriber,
    plain: async_nats::Subscriber,
}

impl KeyReads {
    /// Starts watching the reads of `bucket`'s keys.
    pub(crate) async fn watch(client: &async_nats::Client, bucket: &str) -> Self {
        let direct = client
            .subscribe(format!("$JS.API.DIRECT.GET.KV_{bucket}.>"))
            .await
            .expect("watch direct reads");
        let plain = client
            .subscribe(format!("$JS.API.STREAM.MSG.GET.KV_{bucket}"))
            .await
            .expect("watch reads");
        client.flush().await.expect("flush");
        Self { direct, plain }
    }

    /// Waits until `key` was read 3 times while `start` (a node starting) is still pending;
    /// panics with `started` if it completes first.
    pub(crate) async fn while_pending<F>(&mut self, start: &mut F, key: &str, started: &str)
    where
        F: std::future::Future + Unpin,
    {
        use futures_util::StreamExt;
        let key = format!(".{key}");
        within_for(LEASE * 5, "a starting node to wait on its key", async {
            let mut reads = 0;
            while reads < 3 {
                let read = tokio::select! {
                    _ = &mut *start => panic!("{started}"),
                    Some(m) = self.direct.next() => m,
                    Some(m) = self.plain.next() => m,
                };
                let about = String::from_utf8_lossy(&read.payload).into_owned() + &read.subject;
                reads += usize::from(about.contains(&key));
            }
        })
        .await;
    }
}
