//! TLS end to end, with a CA, server and client certificates made in the
//! test: mqtts with mosquitto_pub/sub (`--cafile`, `--cert`), wss with
//! tokio-tungstenite on rustls, messages crossing to plain TCP; client
//! certificates optional and required; the verified certificate's CN
//! delivered as the connection's identity.

mod common;
mod tls_common;
mod ws_common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aviary::broker::connection::Transport;
use aviary::broker::Metrics;
use aviary::config::TlsConfig;
use aviary::Broker;
use aviary_protocol::{Packet, ReasonCode, Subscribe, SubscriptionOptions, TopicFilter};
use common::mosquitto::{self, Process};
use common::{eventually, within};
use tls_common::{client_config, tls_connect, Ca, Issued, Mqtt};
use ws_common::Gw;

/// A CA, its server certificate written out, and a scratch dir.
struct Pki {
    ca: Ca,
    dir: tempfile::TempDir,
    ca_file: PathBuf,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Pki {
    fn new() -> Self {
        let ca = Ca::new("Aviary test CA");
        let dir = tempfile::tempdir().expect("temporary dir");
        let ca_file = tls_common::write(dir.path(), "ca.pem", &ca.pem);
        let (cert_file, key_file) = ca.server().write(dir.path(), "server");
        Self {
            ca,
            dir,
            ca_file,
            cert_file,
            key_file,
        }
    }

    /// `[tls]` with the server certificate; client certificates verified
    /// against the CA when `clients` is set, and required if `required`.
    fn tls(&self, clients: bool, required: bool) -> TlsConfig {
        TlsConfig {
            certfile: Some(self.cert_file.clone()),
            keyfile: Some(self.key_file.clone()),
            cafile: clients.then(|| self.ca_file.clone()),
            require_certificate: required,
            use_identity_as_username: false,
        }
    }

    /// A client certificate of this CA with CN `cn`, written out.
    fn client(&self, cn: &str) -> (Issued, PathBuf, PathBuf) {
        let issued = self.ca.client(cn);
        let (cert, key) = issued.write(self.dir.path(), cn);
        (issued, cert, key)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn loopback() -> Option<SocketAddr> {
    Some(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A gateway with mqtts and https on ephemeral ports and `tls`.
async fn gateway(tls: TlsConfig) -> Gw {
    Gw::start_with(|c| {
        c.listen.mqtts = loopback();
        c.listen.https = loopback();
        c.tls = tls;
    })
    .await
}

fn port(addr: Option<SocketAddr>) -> u16 {
    addr.expect("the TLS listener is bound").port()
}

/// The identity and transport the broker holds for `client_id`.
fn client(broker: &Broker, client_id: &str) -> Option<(Transport, Option<String>)> {
    broker
        .clients()
        .into_iter()
        .find(|c| &*c.client_id == client_id)
        .map(|c| (c.transport, c.peer_identity.map(|i| i.to_string())))
}

fn handshake_failures(broker: &Broker) -> u64 {
    Metrics::get(&broker.metrics().tls_handshake_failures)
}

#[tokio::test]
async fn mqtts_round_trip_with_mosquitto_clients() {
    let pki = Pki::new();
    let gw = gateway(pki.tls(false, false)).await;
    let mqtts = port(gw.mqtts);
    let ca = pki.ca_file.to_str().expect("UTF-8 path");
    let mut sub = mosquitto::subscribe(mqtts, &["--cafile", ca, "-t", "pets/#"]).await;
    mosquitto::publish(
        mqtts,
        &["--cafile", ca, "-t", "pets/1/location", "-m", "over-tls"],
    )
    .await;
    assert_eq!(
        sub.lines_with_prefix("MSG ", 1).await,
        ["r=0 q=0 pets/1/location over-tls"]
    );
    // Across doors: a plain TCP publisher reaches the TLS subscriber.
    mosquitto::publish(gw.mqtt.port(), &["-t", "pets/2/location", "-m", "from-tcp"]).await;
    assert_eq!(
        sub.lines_with_prefix("MSG ", 1).await,
        ["r=0 q=0 pets/2/location from-tcp"]
    );
    sub.kill().await;
}

#[tokio::test]
async fn mosquitto_without_the_ca_is_refused() {
    let pki = Pki::new();
    let gw = gateway(pki.tls(false, false)).await;
    let other = Ca::new("someone else");
    let other_ca = tls_common::write(pki.path(), "other-ca.pem", &other.pem);
    let port = port(gw.mqtts).to_string();
    let args = ["-h", "127.0.0.1", "-p", &port, "-t", "x", "-m", "x"];
    let status = within(
        "mosquitto_pub to give up",
        tokio::process::Command::new(mosquitto::binary("mosquitto_pub"))
            .args(args)
            .arg("--cafile")
            .arg(&other_ca)
            .stderr(std::process::Stdio::null())
            .status(),
    )
    .await
    .expect("run mosquitto_pub");
    assert!(
        !status.success(),
        "a server certificate of another CA was accepted"
    );
}

#[tokio::test]
async fn wss_round_trip_with_plain_tcp() {
    let pki = Pki::new();
    let gw = gateway(pki.tls(false, false)).await;
    let https = gw.https.expect("https bound");
    let config = client_config(&pki.ca.pem, None);
    let stream = tls_connect(https, config).await.expect("TLS to https");
    let mut wss = Mqtt::over_wss(stream, https).await;
    wss.connect_ok("browser").await;
    assert_eq!(
        client(&gw.broker, "browser"),
        Some((Transport::WebSocketTls, None))
    );
    wss.subscribe("pets/+/status").await;

    // TCP to wss.
    mosquitto::publish(gw.mqtt.port(), &["-t", "pets/3/status", "-m", "online"]).await;
    assert_eq!(
        wss.recv_publish().await,
        ("pets/3/status".to_owned(), b"online".to_vec())
    );
    // wss to TCP.
    let mut sub = mosquitto::subscribe(gw.mqtt.port(), &["-t", "from/wss"]).await;
    wss.publish("from/wss", b"hello tcp").await;
    assert_eq!(
        sub.lines_with_prefix("MSG ", 1).await,
        ["r=0 q=0 from/wss hello tcp"]
    );
    sub.kill().await;
}

/// Connects over mqtts with `config` and sends CONNECT: the CONNACK's
/// code, or why the connection failed (at the handshake, or when the
/// server's alert arrives on the first read, as TLS 1.3 reports a refused
/// client certificate).
async fn try_mqtts(
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<(), String> {
    let stream = tls_connect(addr, config).await?;
    let mut mqtt = Mqtt::over_tls(stream);
    match mqtt.connect("probe").await? {
        aviary_protocol::ReasonCode::SUCCESS => Ok(()),
        code => Err(format!("CONNACK {code:?}")),
    }
}

#[tokio::test]
async fn a_required_certificate_must_be_from_the_ca() {
    let pki = Pki::new();
    let gw = gateway(pki.tls(true, true)).await;
    let mqtts = gw.mqtts.expect("mqtts bound");
    let (good, _, _) = pki.client("device-1");
    try_mqtts(mqtts, client_config(&pki.ca.pem, Some(&good)))
        .await
        .expect("a client with a certificate of the CA connects");

    let before = handshake_failures(&gw.broker);
    let none = try_mqtts(mqtts, client_config(&pki.ca.pem, None)).await;
    let e = none.expect_err("a client without a certificate was let in");
    assert!(e.contains("CertificateRequired"), "{e}");

    let stranger = Ca::new("another CA").client("device-2");
    let foreign = try_mqtts(mqtts, client_config(&pki.ca.pem, Some(&stranger))).await;
    let e = foreign.expect_err("a certificate of another CA was let in");
    assert!(e.contains("UnknownCA"), "{e}");
    eventually("both refusals counted", || {
        handshake_failures(&gw.broker) >= before + 2
    })
    .await;
}

#[tokio::test]
async fn the_client_certificate_cn_is_the_identity() {
    let pki = Pki::new();
    let gw = gateway(pki.tls(true, false)).await;
    let (issued, cert, key) = pki.client("device-7");
    let (ca, cert, key) = (
        pki.ca_file.to_str().expect("UTF-8"),
        cert.to_str().expect("UTF-8"),
        key.to_str().expect("UTF-8"),
    );
    // mosquitto_sub presents the certificate over mqtts.
    let tls_args = ["--cafile", ca, "--cert", cert, "--key", key];
    let mut args = tls_args.to_vec();
    args.extend(["-i", "tracker-7", "-t", "pets/7/#"]);
    let sub: Process = mosquitto::subscribe(port(gw.mqtts), &args).await;
    assert_eq!(
        client(&gw.broker, "tracker-7"),
        Some((Transport::Tls, Some("device-7".to_owned())))
    );

    // Without a certificate (it is optional here): no identity.
    let stream = tls_connect(gw.mqtts.expect("mqtts"), client_config(&pki.ca.pem, None))
        .await
        .expect("TLS without a client certificate");
    let mut anonymous = Mqtt::over_tls(stream);
    anonymous.connect_ok("no-cert").await;
    assert_eq!(client(&gw.broker, "no-cert"), Some((Transport::Tls, None)));

    // wss carries it too.
    let https = gw.https.expect("https");
    let stream = tls_connect(https, client_config(&pki.ca.pem, Some(&issued)))
        .await
        .expect("TLS with a client certificate");
    let mut wss = Mqtt::over_wss(stream, https).await;
    wss.connect_ok("browser-7").await;
    assert_eq!(
        client(&gw.broker, "browser-7"),
        Some((Transport::WebSocketTls, Some("device-7".to_owned())))
    );
    sub.kill().await;
}

#[tokio::test]
async fn the_certificate_identity_is_the_username_the_acl_knows() {
    let pki = Pki::new();
    let acl = tls_common::write(
        pki.path(),
        "acl",
        "user device-7\ntopic readwrite pets/7/#\n",
    );
    let mut tls = pki.tls(true, false);
    tls.use_identity_as_username = true;
    let gw = Gw::start_with(|c| {
        c.listen.mqtts = loopback();
        c.tls = tls;
        c.auth.acl_file = Some(acl);
        c.auth.api_token = Some("token-0123456789abcdef".to_owned());
    })
    .await;
    let mqtts = gw.mqtts.expect("mqtts");
    let (issued, _, _) = pki.client("device-7");
    let stream = tls_connect(mqtts, client_config(&pki.ca.pem, Some(&issued)))
        .await
        .expect("TLS with a client certificate");
    let mut device = Mqtt::over_tls(stream);
    // No username in the CONNECT: the certificate says who this is.
    device.connect_ok("tracker-7").await;
    let subscribe = |id: u16, filter: &str| {
        Packet::Subscribe(Subscribe {
            packet_id: std::num::NonZeroU16::new(id).expect("non-zero"),
            properties: Default::default(),
            filters: vec![(
                TopicFilter::new(filter.to_owned()).expect("filter"),
                SubscriptionOptions::default(),
            )],
        })
    };
    for (id, filter, want) in [
        (1, "pets/7/#", ReasonCode::GRANTED_QOS_0),
        (2, "pets/8/#", ReasonCode::NOT_AUTHORIZED),
    ] {
        device.send(subscribe(id, filter)).await.expect("SUBSCRIBE");
        match device.recv().await.expect("SUBACK") {
            Packet::SubAck(ack) => assert_eq!(ack.reason_codes, [want], "{filter}"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }
    device.publish("pets/7/location", b"here").await;
    assert_eq!(device.recv_publish().await.0, "pets/7/location");
    let auth = [("authorization", "Bearer token-0123456789abcdef")];
    let clients = gw.http().get_with("/api/v1/clients", &auth).await.json();
    assert_eq!(clients[0]["username"], "device-7");
    assert_eq!(clients[0]["peer_identity"], "device-7");

    // Without a certificate there is no username to act as: 0x87.
    let stream = tls_connect(mqtts, client_config(&pki.ca.pem, None))
        .await
        .expect("TLS without a client certificate");
    let mut anonymous = Mqtt::over_tls(stream);
    assert_eq!(
        anonymous.connect("no-cert").await,
        Ok(ReasonCode::NOT_AUTHORIZED)
    );
}
