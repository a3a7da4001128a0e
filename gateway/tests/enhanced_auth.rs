//! MQTT 5 enhanced authentication end to end: SCRAM-SHA-512 against a password file made by
//! the real `mosquitto_passwd`, spoken by a raw MQTT 5 client whose SCRAM side is written here
//! from RFC 5802 (PBKDF2, HMAC and SHA-512 from RustCrypto, not the gateway's module).
//! Success with the server's signature checked, a wrong password, an unknown user, a `$6$`
//! user, an unknown method, a stalled client, the growing delay, and the ACL of the user SCRAM
//! proved.

mod common;
mod security_common;
mod ws_common;

use std::process::Command;
use std::time::{Duration, Instant};

use aviary_protocol::{Auth, ByteString, ConnAck, Packet, QoS, ReasonCode, SubscriptionOptions};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha512};

use common::raw::{self, Raw};
use security_common::{password_of, secure_gateway};

const METHOD: &str = "SCRAM-SHA-512";
const CLIENT_NONCE: &str = "fyko+d2lbbFgONRv9qkxdawL";

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 64] {
    let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The client's side of SCRAM-SHA-512 (RFC 5802 section 3).
struct Scram {
    user: String,
    password: String,
    server_signature: Option<[u8; 64]>,
}

impl Scram {
    fn new(user: &str, password: &str) -> Self {
        Self {
            user: user.to_owned(),
            password: password.to_owned(),
            server_signature: None,
        }
    }

    fn bare(&self) -> String {
        format!("n={},r={CLIENT_NONCE}", self.user)
    }

    fn client_first(&self) -> Bytes {
        Bytes::from(format!("n,,{}", self.bare()))
    }

    /// The client-final message answering `server_first`.
    fn client_final(&mut self, server_first: &[u8]) -> Bytes {
        let server_first = std::str::from_utf8(server_first).unwrap();
        let field = |name: &str| {
            server_first
                .split(',')
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in {server_first}"))
        };
        let nonce = field("r=");
        assert!(nonce.starts_with(CLIENT_NONCE) && nonce.len() > CLIENT_NONCE.len());
        let salt = STANDARD.decode(field("s=")).unwrap();
        let iterations: u32 = field("i=").parse().unwrap();
        let mut salted = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<Sha512>(self.password.as_bytes(), &salt, iterations, &mut salted);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{},{server_first},{without_proof}", self.bare());
        let client_key = hmac(&salted, b"Client Key");
        let signature = hmac(&Sha512::digest(client_key), auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature)
            .map(|(k, s)| k ^ s)
            .collect();
        self.server_signature = Some(hmac(&hmac(&salted, b"Server Key"), auth.as_bytes()));
        Bytes::from(format!("{without_proof},p={}", STANDARD.encode(proof)))
    }
}

fn scram_connect(id: &str, scram: &Scram) -> Packet {
    let mut c = raw::v5(id);
    c.properties.authentication_method = Some(ByteString::from_static(METHOD));
    c.properties.authentication_data = Some(scram.client_first());
    Packet::Connect(Box::new(c))
}

fn auth_answer(data: Bytes) -> Packet {
    let mut a = Auth {
        reason_code: ReasonCode::CONTINUE_AUTHENTICATION,
        ..Auth::default()
    };
    a.properties.authentication_method = Some(ByteString::from_static(METHOD));
    a.properties.authentication_data = Some(data);
    Packet::Auth(a)
}

/// Receives the server's AUTH 0x18 challenge and returns its data.
async fn challenge(raw: &mut Raw) -> Bytes {
    match raw.recv().await {
        Packet::Auth(a) => {
            assert_eq!(a.reason_code, ReasonCode::CONTINUE_AUTHENTICATION);
            assert_eq!(a.properties.authentication_method.as_deref(), Some(METHOD));
            a.properties.authentication_data.expect("server-first data")
        }
        other => panic!("expected AUTH, got {other:?}"),
    }
}

async fn connack(raw: &mut Raw) -> ConnAck {
    match raw.recv().await {
        Packet::ConnAck(a) => *a,
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

/// The whole exchange from `source`; the CONNACK (the server's signature checked on success).
async fn sign_in(
    addr: std::net::SocketAddr,
    id: &str,
    user: &str,
    password: &str,
) -> (Raw, ConnAck) {
    let mut raw = Raw::open(addr).await;
    let mut scram = Scram::new(user, password);
    raw.send(scram_connect(id, &scram)).await;
    let first = challenge(&mut raw).await;
    raw.send(auth_answer(scram.client_final(&first))).await;
    let ack = connack(&mut raw).await;
    if ack.reason_code == ReasonCode::SUCCESS {
        assert_eq!(
            ack.properties.authentication_method.as_deref(),
            Some(METHOD)
        );
        let expected = format!("v={}", STANDARD.encode(scram.server_signature.unwrap()));
        assert_eq!(
            ack.properties.authentication_data.as_deref(),
            Some(expected.as_bytes())
        );
    }
    (raw, ack)
}

/// Adds `user` with a `$6$` (salted SHA-512) hash, which cannot do SCRAM.
fn add_sha512_user(c: &mut aviary::Config, user: &str, password: &str) {
    let file = c.auth.password_file.clone().unwrap();
    let status = Command::new("/usr/bin/mosquitto_passwd")
        .args(["-b", "-H", "sha512"])
        .arg(&file)
        .args([user, password])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn scram_signs_in_and_the_users_acl_applies() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let (mut server, ack) = sign_in(gw.mqtt, "processor", "server", password_of("server")).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}");
    server.subscribe("pets/#", QoS::AtLeastOnce).await;
    let (mut device, ack) = sign_in(
        gw.mqtt,
        "collar-123",
        "device-123",
        password_of("device-123"),
    )
    .await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{ack:?}");
    // device-123 may write pets/123/# only.
    let ok = device
        .publish(raw::message("pets/123/location", b"{}", QoS::AtLeastOnce))
        .await;
    assert_eq!(ok, ReasonCode::SUCCESS);
    assert_eq!(&*server.recv_publish().await.topic, "pets/123/location");
    let denied = device
        .publish(raw::message("pets/7/location", b"{}", QoS::AtLeastOnce))
        .await;
    assert_eq!(denied, ReasonCode::NOT_AUTHORIZED);
    let any = SubscriptionOptions::qos(QoS::AtLeastOnce);
    let sub = device.subscribe_with(&[("pets/7/#", any)], None).await;
    assert_eq!(sub.reason_codes, [ReasonCode::NOT_AUTHORIZED]);
}

#[tokio::test]
async fn wrong_password_unknown_user_and_unknown_method_are_refused() {
    let (gw, _dir) = secure_gateway(|c| add_sha512_user(c, "old-timer", "legacy-pw")).await;
    let (_raw, ack) = sign_in(gw.mqtt, "a", "server", "not-the-password").await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    assert!(ack.properties.authentication_data.is_none());
    // An unknown user gets a challenge like anyone, then fails the same way.
    let (_raw, ack) = sign_in(gw.mqtt, "b", "nobody", "whatever").await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    // A `$6$` user: refused at once, saying why.
    let mut raw = Raw::open(gw.mqtt).await;
    raw.send(scram_connect("c", &Scram::new("old-timer", "legacy-pw")))
        .await;
    let ack = connack(&mut raw).await;
    assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
    let why = ack.properties.reason_string.expect("a reason string");
    assert!(why.contains("cannot do SCRAM-SHA-512"), "{why}");
    // ...though its password still works the plain way.
    let mut plain = raw::v5("d");
    plain.username = Some("old-timer".into());
    plain.password = Some(Bytes::from_static(b"legacy-pw"));
    Raw::connect_ok(gw.mqtt, plain).await;
    // Another method.
    let mut other = raw::v5("e");
    other.properties.authentication_method = Some(ByteString::from_static("SCRAM-SHA-256"));
    let (_raw, ack) = Raw::connect(gw.mqtt, other).await;
    assert_eq!(ack.reason_code, ReasonCode::BAD_AUTHENTICATION_METHOD);
    let failures = ws_common::metric(&gw.http().metrics().await, "aviary_login_failures_total");
    assert_eq!(failures, Some(3), "wrong password, unknown user, $6$ user");
}

#[tokio::test]
async fn without_a_password_file_no_method_is_offered() {
    let gw = ws_common::Gw::start().await;
    let mut raw = Raw::open(gw.mqtt).await;
    raw.send(scram_connect("a", &Scram::new("u", "p"))).await;
    assert_eq!(
        connack(&mut raw).await.reason_code,
        ReasonCode::BAD_AUTHENTICATION_METHOD
    );
}

#[tokio::test]
async fn the_answer_must_be_auth_with_the_same_method() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let mut raw = Raw::open(gw.mqtt).await;
    let scram = Scram::new("server", password_of("server"));
    raw.send(scram_connect("a", &scram)).await;
    challenge(&mut raw).await;
    raw.send(Packet::PingReq).await;
    assert_eq!(
        connack(&mut raw).await.reason_code,
        ReasonCode::PROTOCOL_ERROR
    );
    raw.expect_closed().await;
}

#[tokio::test]
async fn a_client_that_never_answers_is_closed_at_the_connect_timeout() {
    let (gw, _dir) = secure_gateway(|c| c.mqtt.connect_timeout_secs = 1).await;
    let mut raw = Raw::open(gw.mqtt).await;
    raw.send(scram_connect("a", &Scram::new("server", "x")))
        .await;
    challenge(&mut raw).await;
    let started = Instant::now();
    let seen = raw.expect_closed_within(Duration::from_secs(5)).await;
    assert!(seen.is_empty(), "{seen:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn failed_scram_logins_are_slowed_down() {
    let (gw, _dir) = secure_gateway(|c| {
        c.auth.login_failure_delay_ms = 400;
        c.auth.login_failure_max_delay_ms = 400;
    })
    .await;
    let mut waits = Vec::new();
    for i in 0..3 {
        let started = Instant::now();
        let (_raw, ack) = sign_in(gw.mqtt, &format!("g{i}"), "server", "guess").await;
        assert_eq!(ack.reason_code, ReasonCode::NOT_AUTHORIZED);
        waits.push(started.elapsed());
    }
    assert!(waits[0] < Duration::from_millis(400), "{waits:?}");
    assert!(waits[1] >= Duration::from_millis(400), "{waits:?}");
    assert!(waits[2] >= Duration::from_millis(400), "{waits:?}");
}

#[tokio::test]
async fn re_authentication_is_refused_and_the_connection_closed() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let (mut raw, ack) = sign_in(gw.mqtt, "again", "server", password_of("server")).await;
    assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
    let mut again = Auth {
        reason_code: ReasonCode::RE_AUTHENTICATE,
        ..Auth::default()
    };
    again.properties.authentication_method = Some(ByteString::from_static(METHOD));
    again.properties.authentication_data = Some(Scram::new("server", "x").client_first());
    raw.send(Packet::Auth(again)).await;
    assert_eq!(
        raw::disconnects(raw.expect_closed().await),
        [ReasonCode::PROTOCOL_ERROR]
    );
}
