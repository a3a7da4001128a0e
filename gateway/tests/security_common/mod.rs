//! What the security tests share: the users (in a password file made by the real
//! `mosquitto_passwd`), the ACL of the pet-tracking documents, a gateway with both, and a raw
//! MQTT client over either front door.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use aviary::Config;
use aviary_protocol::{
    ConnAck, Connect, Packet, ProtocolVersion, Publish, QoS, ReasonCode, SubAck, Subscribe,
    SubscriptionOptions, TopicFilter,
};
use bytes::Bytes;

use crate::common::raw::{self, Raw};
use crate::ws_common::ws::WsRaw;
use crate::ws_common::Gw;

/// The ACL of the pet-tracking documents, unchanged, and after it what these tests add: a
/// second device, and patterns.
pub(crate) const SEED_ACL: &str = "\
user device-123
topic write pets/123/#
topic read pets/123/commands/#
user server
topic read pets/#
topic write pets/+/commands/#
user app-user-456
topic read pets/123/#
";
pub(crate) const MORE_ACL: &str = "\
user device-7
topic write pets/7/#
pattern readwrite users/%u/#
pattern write clients/%c/#
";

pub(crate) const USERS: [(&str, &str); 5] = [
    ("device-123", "dev-pw"),
    ("device-7", "d7-pw"),
    ("server", "srv-pw"),
    ("app-user-456", "app-pw"),
    ("alice", "alice-pw"),
];

/// Makes the password file with the real `mosquitto_passwd` (Debian `mosquitto`).
pub(crate) fn mosquitto_passwd_file(dir: &Path) -> PathBuf {
    let tool = "/usr/bin/mosquitto_passwd";
    assert!(
        Path::new(tool).is_file(),
        "{tool} (Debian package `mosquitto`) makes this test's password file; \
         `cargo xtask test` installs it"
    );
    let path = dir.join("passwd");
    for (i, (user, password)) in USERS.iter().enumerate() {
        let mut args = vec!["-b"];
        if i == 0 {
            args.insert(0, "-c");
        }
        let path_str = path.to_str().expect("UTF-8 temp path");
        args.extend([path_str, user, password]);
        let status = Command::new(tool)
            .args(&args)
            .status()
            .expect("run mosquitto_passwd");
        assert!(status.success(), "mosquitto_passwd {args:?}: {status}");
    }
    path
}

/// A gateway with the password file and the ACL, tuned further by `tune`.
pub(crate) async fn secure_gateway(tune: impl FnOnce(&mut Config)) -> (Gw, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let passwd = mosquitto_passwd_file(dir.path());
    let acl = dir.path().join("acl");
    std::fs::write(&acl, format!("{SEED_ACL}{MORE_ACL}")).expect("write ACL");
    let gw = Gw::start_with(|c| {
        c.auth.password_file = Some(passwd);
        c.auth.acl_file = Some(acl);
        c.auth.admin_users = vec!["server".to_owned()];
        c.auth.api_token = Some("token-0123456789abcdef".to_owned());
        // Failed logins here are on purpose: answer them at once.
        c.auth.login_failure_delay_ms = 0;
        tune(c);
    })
    .await;
    (gw, dir)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Via {
    Tcp,
    Ws,
}

/// A raw MQTT client over either front door.
pub(crate) enum Conn {
    Tcp(Raw),
    Ws(Box<WsRaw>),
}

pub(crate) fn connect_packet(
    version: ProtocolVersion,
    id: &str,
    user: Option<(&str, &str)>,
) -> Connect {
    let mut c = Connect::new(version, id.to_owned());
    if let Some((user, password)) = user {
        c.username = Some(user.into());
        c.password = Some(Bytes::copy_from_slice(password.as_bytes()));
    }
    c
}

pub(crate) fn password_of(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _)| *u == user)
        .map(|(_, p)| *p)
        .expect("a test user")
}

impl Conn {
    pub(crate) async fn connect(gw: &Gw, via: Via, connect: Connect) -> (Self, ConnAck) {
        match via {
            Via::Tcp => {
                let (raw, ack) = Raw::connect(gw.mqtt, connect).await;
                (Self::Tcp(raw), ack)
            }
            Via::Ws => {
                let (raw, ack) = WsRaw::connect(gw.http, connect).await;
                (Self::Ws(Box::new(raw)), ack)
            }
        }
    }

    /// Signs in as `user` (with its password) and expects success.
    pub(crate) async fn user(gw: &Gw, via: Via, v: ProtocolVersion, user: &str, id: &str) -> Self {
        let connect = connect_packet(v, id, Some((user, password_of(user))));
        let (conn, ack) = Self::connect(gw, via, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS, "{user} over {via:?}");
        conn
    }

    pub(crate) async fn send(&mut self, p: Packet) {
        match self {
            Self::Tcp(r) => r.send(p).await,
            Self::Ws(r) => r.send(p).await,
        }
    }

    pub(crate) async fn recv(&mut self) -> Packet {
        match self {
            Self::Tcp(r) => r.recv().await,
            Self::Ws(r) => r.recv().await,
        }
    }

    pub(crate) fn packet_id(&mut self) -> std::num::NonZeroU16 {
        match self {
            Self::Tcp(r) => r.packet_id(),
            Self::Ws(r) => r.packet_id(),
        }
    }

    /// The SUBACK's code for one filter at QoS 1.
    pub(crate) async fn subscribe(&mut self, filter: &str) -> ReasonCode {
        let packet_id = self.packet_id();
        self.send(Packet::Subscribe(Subscribe {
            packet_id,
            properties: Default::default(),
            filters: vec![(
                TopicFilter::new(filter.to_owned()).expect("valid filter"),
                SubscriptionOptions::qos(QoS::AtLeastOnce),
            )],
        }))
        .await;
        match self.recv().await {
            Packet::SubAck(SubAck { reason_codes, .. }) => reason_codes[0],
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Publishes at QoS 1; the PUBACK's code. A PUBLISH arriving before the PUBACK is
    /// acknowledged and dropped: publish and read on different connections.
    pub(crate) async fn publish(&mut self, topic: &str, payload: &str, retain: bool) -> ReasonCode {
        let mut p = raw::message(topic, payload.as_bytes(), QoS::AtLeastOnce);
        p.retain = retain;
        let id = self.packet_id();
        p.packet_id = Some(id);
        self.send(Packet::Publish(p)).await;
        loop {
            match self.recv().await {
                Packet::PubAck(a) if a.packet_id == id => return a.reason_code,
                Packet::Publish(p) => self.ack(&p).await,
                other => panic!("expected PUBACK {id}, got {other:?}"),
            }
        }
    }

    pub(crate) async fn ack(&mut self, p: &Publish) {
        if let Some(id) = p.packet_id {
            self.send(Packet::PubAck(aviary_protocol::Ack::new(id)))
                .await;
        }
    }

    /// The topics of the next `n` messages received, acknowledged.
    pub(crate) async fn topics(&mut self, n: usize) -> Vec<String> {
        let mut topics = Vec::new();
        while topics.len() < n {
            match self.recv().await {
                Packet::Publish(p) => {
                    self.ack(&p).await;
                    topics.push(p.topic.to_string());
                }
                Packet::PingResp => {}
                other => panic!("expected PUBLISH, got {other:?}"),
            }
        }
        topics
    }
}
