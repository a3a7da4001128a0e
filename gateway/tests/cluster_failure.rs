//! Node failure in cluster mode, against real nats-server processes and independent MQTT
//! clients:
//!
//! - the wills of a node killed with SIGKILL (a real gateway process, so it has no last
//!   word) fire once each, published by a node that remains, once the killed node's lease
//!   has run out; a will delay counts from then; a client that reconnected elsewhere in the
//!   meantime, or that said DISCONNECT before, has none;
//! - a node cut off from NATS disconnects its clients within its grace period (half a
//!   lease), refuses new ones, and takes them again once NATS is back.
//!
//! What the clients of a killed node find elsewhere is in `cluster_node_death.rs`. Leases
//! are short here (`[cluster] lease_ms`), so the tests wait seconds, not tens of them. Each
//! wait is bounded; the timings measured are printed (`--nocapture`).

mod cluster_common;
mod common;
mod ws_common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aviary_protocol::{Connect, LastWill, Packet, QoS, ReasonCode, TopicName};
use cluster_common::{node, process_node, LEASE};
use common::nats::NatsCluster;
use common::raw::{self, until_routed, Raw};
use common::{within, within_for};
use ws_common::Gw;

/// A CONNECT with a will on `topic` (payload: the client id), QoS 1, after `delay_secs`.
fn with_will(mut connect: Connect, topic: &str, delay_secs: u32) -> Connect {
    let mut will = LastWill {
        topic: TopicName::new(topic.to_owned()).expect("a valid topic"),
        payload: connect.client_id.as_bytes().to_vec().into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    };
    if delay_secs > 0 {
        will.properties.will_delay_interval = Some(delay_secs);
        // The session must outlive the delay, or the will goes when it ends.
        connect.properties.session_expiry_interval = Some(60);
    }
    connect.will = Some(will);
    connect
}

/// A subscriber to `wills/#` on `gw`.
async fn watcher(gw: &Gw, id: &str) -> Raw {
    let (mut raw, _) = Raw::connect_ok(gw.mqtt, raw::v5(id)).await;
    raw.subscribe("wills/#", QoS::AtLeastOnce).await;
    raw
}

/// The wills `watcher` receives until `until`, each with when it came.
async fn wills_until(watcher: &mut Raw, until: Instant) -> BTreeMap<String, Vec<Instant>> {
    let mut got: BTreeMap<String, Vec<Instant>> = BTreeMap::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match watcher.next_event(left).await {
            None => return got,
            Some(common::raw::Event::Packet(Packet::Publish(p))) => {
                watcher.ack(&p).await;
                if &*p.topic == "wills/probe" {
                    // A late probe of the routing check, published on the watcher's node.
                    continue;
                }
                let payload = String::from_utf8(p.payload.to_vec()).expect("a client id");
                got.entry(payload).or_default().push(Instant::now());
            }
            Some(other) => panic!("expected wills, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_wills_of_a_killed_nodes_clients_fire_once_from_another_node() {
    let nats = NatsCluster::start(3).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    let c = node(&nats, "gw-c").await;
    let mut on_b = watcher(&b, "watch-b").await;
    let mut on_c = watcher(&c, "watch-c").await;
    // A will published on one node reaches the other's watcher.
    let (mut probe_b, _) = Raw::connect_ok(b.mqtt, raw::v5("probe-b")).await;
    let (mut probe_c, _) = Raw::connect_ok(c.mqtt, raw::v5("probe-c")).await;
    until_routed(&mut probe_b, &mut on_c, "wills/probe", QoS::AtLeastOnce).await;
    until_routed(&mut probe_c, &mut on_b, "wills/probe", QoS::AtLeastOnce).await;

    // A's clients, with wills. "back" will reconnect elsewhere before its delay is over;
    // "polite" leaves with a normal DISCONNECT, which discards its will.
    let mut old = raw::v4("old");
    old = with_will(old, "wills/old", 0);
    if let Some(w) = old.will.as_mut() {
        w.retain = true;
    }
    let clients = [
        with_will(raw::v5("now"), "wills/now", 0),
        with_will(raw::v5("later"), "wills/later", 2),
        with_will(raw::v5("back"), "wills/back", 3),
        old,
    ];
    let mut on_a = Vec::new();
    for connect in clients {
        on_a.push(Raw::connect_ok(a.mqtt, connect).await.0);
    }
    let (polite, _) =
        Raw::connect_ok(a.mqtt, with_will(raw::v5("polite"), "wills/polite", 0)).await;
    polite.disconnect(ReasonCode::SUCCESS).await;
    wait_for_records(&nats, 4).await;

    a.kill9().await;
    let killed = Instant::now();
    // Back on another node, without a will, well within the lease. Its claim on the client id
    // is written at once; the CONNACK waits for A's lease to run out and its sessions to be
    // adopted (see `cluster::adoption`), while the wills are watched.
    let back = tokio::spawn(Raw::connect_ok(b.mqtt, raw::v5("back")));

    // Every will due comes once to each watcher, and "back"'s never: it would be due 3 s
    // after A's lease ran out (at most a lease after the kill); 2 s more are waited.
    let until = killed + LEASE + Duration::from_secs(5);
    let (got_b, got_c) = tokio::join!(wills_until(&mut on_b, until), wills_until(&mut on_c, until));
    let _back = back.await.expect("back connects");
    for (node, got) in [("gw-b", &got_b), ("gw-c", &got_c)] {
        let ids: Vec<(&str, usize)> = got.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        assert_eq!(
            ids,
            [("later", 1), ("now", 1), ("old", 1)],
            "the wills seen on {node}"
        );
    }
    let now = got_b["now"][0];
    let later = got_b["later"][0];
    let fired = now.duration_since(killed);
    eprintln!("SIGKILL to the first will: {fired:?} (lease {LEASE:?})");
    eprintln!(
        "first will to the delayed one (2 s): {:?}",
        later.duration_since(now)
    );
    // A lease runs out at most a lease after the kill, at least four fifths of one (it is
    // renewed every fifth).
    assert!(
        fired >= LEASE / 2,
        "published before A's lease ran out: {fired:?}"
    );
    assert!(
        later.duration_since(now) >= Duration::from_millis(1_800),
        "the delay counts from the lease's end: {:?}",
        later.duration_since(now)
    );
    // The retained will is the cluster's retained message.
    common::eventually("the retained will on every node", || {
        [&b, &c]
            .iter()
            .all(|gw| gw.broker.retained_messages(Some("wills/#")).len() == 1)
    })
    .await;
    drop(on_a);
}

#[tokio::test]
async fn the_wills_of_a_node_killed_and_back_within_its_lease_fire_too() {
    let nats = NatsCluster::start(1).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    let mut on_b = watcher(&b, "watch-b").await;
    let (_quick, _) = Raw::connect_ok(a.mqtt, with_will(raw::v5("quick"), "wills/quick", 0)).await;
    wait_for_records(&nats, 1).await;
    // Killed and started again at once, under the same name: its lease never runs out, so
    // no other node notices; the node finds its previous run's wills itself.
    a.kill9().await;
    let killed = Instant::now();
    let _a = process_node(&nats, "gw-a", dir.path()).await;
    let p = on_b.recv_publish().await;
    on_b.ack(&p).await;
    assert_eq!((&*p.topic, &p.payload[..]), ("wills/quick", &b"quick"[..]));
    eprintln!("SIGKILL and restart to the will: {:?}", killed.elapsed());
    on_b.expect_silence(Duration::from_millis(500)).await;
}

/// A node stopped in good order keeps its clients' delayed wills in their persistent
/// sessions, to publish them once back. When one of its clients reconnects elsewhere, those
/// sessions are adopted there instead, and the node forgets them when it comes back: the
/// wills fire from the cluster, as a dead node's do.
#[tokio::test]
async fn the_delayed_wills_of_a_node_that_left_fire_once_its_sessions_are_adopted() {
    let nats = NatsCluster::start(1).await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let a = process_node(&nats, "gw-a", dir.path()).await;
    let b = node(&nats, "gw-b").await;
    let mut on_b = watcher(&b, "watch-b").await;
    let (_away, _) = Raw::connect_ok(a.mqtt, with_will(raw::v5("away"), "wills/away", 1)).await;
    let mut back = raw::v5("back");
    back.properties.session_expiry_interval = Some(3_600);
    let (_back, _) = Raw::connect_ok(a.mqtt, back.clone()).await;
    wait_for_records(&nats, 1).await;

    a.stop().await;
    let stopped = Instant::now();
    // "back" comes back on gw-b, which adopts gw-a's sessions to give it its own.
    back.clean_start = false;
    let (_back, ack) = within_for(
        LEASE * 10,
        "the session to be adopted",
        Raw::connect_ok(b.mqtt, back),
    )
    .await;
    assert!(ack.session_present, "gw-a's session was adopted on gw-b");
    let p = within_for(LEASE * 10, "the delayed will", on_b.recv_publish()).await;
    on_b.ack(&p).await;
    assert_eq!((&*p.topic, &p.payload[..]), ("wills/away", &b"away"[..]));
    eprintln!("graceful stop to the delayed will: {:?}", stopped.elapsed());
    on_b.expect_silence(Duration::from_millis(500)).await;
}

#[tokio::test]
async fn losing_the_nats_server_that_leads_the_leases_cuts_no_node_off() {
    let mut nats = NatsCluster::start(3).await;
    // The lease bucket's new leader must be elected well within the grace (four fifths of a
    // lease): about 6 s on an idle machine, and more on a loaded one, hence a 20 s lease.
    let long_lease = |name: &str| {
        let (urls, name) = (nats.urls(), name.to_owned());
        Gw::start_with(move |c| {
            c.cluster.nats = urls;
            c.cluster.node = Some(name);
            c.cluster.lease_ms = Some(20_000);
        })
    };
    let a = long_lease("gw-a").await;
    let b = long_lease("gw-b").await;
    let (mut on_a, _) = Raw::connect_ok(a.mqtt, with_will(raw::v5("on-a"), "wills/on-a", 0)).await;
    let mut on_b = watcher(&b, "watch-b").await;
    let leader = leases_leader(&nats).await;
    nats.kill(leader);
    let killed = Instant::now();
    let killed_unix_ms = unix_ms();
    // Both nodes renew their leases again once the bucket has a new leader...
    within_for(Duration::from_secs(30), "both leases renewed", async {
        loop {
            let reply = a.http().get("/api/v1/cluster").await;
            if reply.status == axum::http::StatusCode::OK {
                let view = reply.json();
                let nodes = view["nodes"].as_array().expect("a list of nodes").clone();
                let renewed =
                    |n: &serde_json::Value| n["renewed_unix_ms"].as_u64() > Some(killed_unix_ms);
                if nodes.len() == 2 && nodes.iter().all(renewed) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    eprintln!(
        "lease leader killed; both leases renewed after {:?}",
        killed.elapsed()
    );
    // ... and take clients.
    for gw in [&a, &b] {
        within("a CONNECT to be accepted", async {
            while Raw::connect(gw.mqtt, raw::v5("late")).await.1.reason_code != ReasonCode::SUCCESS
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
    }
    // ... and meanwhile nobody was disconnected, and no will fired.
    let quiet = Duration::from_secs(1);
    tokio::join!(on_a.expect_silence(quiet), on_b.expect_silence(quiet));
}

/// The wall clock in Unix milliseconds, as leases note their renewals.
fn unix_ms() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.expect("after 1970").as_millis() as u64
}

/// The index of the NATS server leading the lease bucket's stream.
async fn leases_leader(nats: &NatsCluster) -> usize {
    let client = async_nats::connect(nats.urls())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let mut stream = js
        .get_stream("KV_AVIARY_NODES")
        .await
        .expect("the lease bucket");
    let info = stream.info().await.expect("its info");
    let leader = info.cluster.clone().and_then(|c| c.leader);
    let leader = leader.expect("the lease bucket has a leader");
    nats.index_of(&leader).expect("one of ours")
}

/// Waits until the cluster holds `n` will records.
async fn wait_for_records(nats: &NatsCluster, n: usize) {
    use futures_util::StreamExt;
    let client = async_nats::connect(nats.urls())
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    let kv = js
        .get_key_value("AVIARY_WILLS")
        .await
        .expect("the wills bucket");
    within("the will records", async {
        loop {
            let keys: Vec<String> = match kv.keys().await {
                Ok(keys) => keys.filter_map(|k| async move { k.ok() }).collect().await,
                Err(_) => Vec::new(),
            };
            if keys.len() == n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_node_cut_off_from_nats_disconnects_its_clients_and_takes_them_again_once_back() {
    let mut nats = NatsCluster::single().await;
    let gw = node(&nats, "gw-a").await;
    let (mut five, _) = Raw::connect_ok(gw.mqtt, with_will(raw::v5("five"), "wills/five", 0)).await;
    let (mut four, _) = Raw::connect_ok(gw.mqtt, raw::v4("four")).await;
    // A persistent session watching the wills: it will be told of "five"'s once back.
    let mut persistent = raw::v5("watch");
    persistent.clean_start = false;
    persistent.properties.session_expiry_interval = Some(60);
    let (mut watch, _) = Raw::connect_ok(gw.mqtt, persistent.clone()).await;
    watch.subscribe("wills/#", QoS::AtLeastOnce).await;
    wait_for_records(&nats, 1).await;

    nats.kill(0);
    let cut = Instant::now();
    // MQTT 5: told to use another server; 3.1.1: closed. Within the grace period (half a
    // lease) after the last renewal, so within a lease after the cut.
    let said = five.expect_closed_within(LEASE * 2).await;
    assert_eq!(raw::disconnects(said), [ReasonCode::USE_ANOTHER_SERVER]);
    let disconnected = cut.elapsed();
    assert!(four.expect_closed_within(LEASE).await.is_empty());
    eprintln!("NATS lost to clients disconnected: {disconnected:?} (lease {LEASE:?})");
    assert!(disconnected <= LEASE, "{disconnected:?}");

    // Refused while cut off: 0x88 Server unavailable, 3.1.1 return code 3.
    let (_, ack) = Raw::connect(gw.mqtt, raw::v5("new")).await;
    assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
    let (_, ack) = Raw::connect(gw.mqtt, raw::v4("new")).await;
    assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
    let reply = gw.http().get("/api/v1/cluster").await;
    assert_eq!(reply.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.text().contains("cut off"), "{}", reply.text());
    // The watcher was disconnected too. "five"'s will is not published while the node is
    // cut off (it may be on the wrong side of the cut): the watcher gets it once, below.
    assert_eq!(
        raw::disconnects(watch.expect_closed().await),
        [ReasonCode::USE_ANOTHER_SERVER]
    );

    nats.restart(0).await;
    let back = Instant::now();
    within("the node to take clients again", async {
        loop {
            let (_, ack) = Raw::connect(gw.mqtt, raw::v5("again")).await;
            if ack.reason_code == ReasonCode::SUCCESS {
                return;
            }
            assert_eq!(ack.reason_code, ReasonCode::SERVER_UNAVAILABLE);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    eprintln!("NATS healthy again to clients taken: {:?}", back.elapsed());
    let view = gw.http().get("/api/v1/cluster").await.json();
    assert_eq!(view["this_node_state"], "up");
    // Back: the will of the client it disconnected goes out, once.
    let (mut watch, ack) = Raw::connect_ok(gw.mqtt, persistent).await;
    assert!(ack.session_present);
    let p = watch.recv_publish().await;
    watch.ack(&p).await;
    assert_eq!((&*p.topic, &p.payload[..]), ("wills/five", &b"five"[..]));
    watch.expect_silence(Duration::from_millis(500)).await;
}
