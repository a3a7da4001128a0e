//! Users and ACLs end to end, the way a Mosquitto operator brings them: a password file made
//! by the real `mosquitto_passwd` and the ACL file of the pet-tracking documents, checked as
//! a matrix over TCP and WebSocket, MQTT 3.1.1 and 5.0, with the exact reason codes:
//! CONNACK 5 / 0x86 / 0x87, PUBACK 0x87 (5.0) or a silent drop (3.1.1), SUBACK 0x80 / 0x87;
//! each delivery, retained message and will filtered for its reader or owner; `%u` / `%c`
//! patterns; a reload with a connection open.
//!
//! Every wait is bounded; a message that must not arrive is shown absent by a sentinel the
//! same reader may read, published after it, arriving first.

mod common;
mod security_common;
mod ws_common;

use aviary_protocol::{ProtocolVersion, QoS, ReasonCode};
use bytes::Bytes;
use security_common::{connect_packet, password_of, secure_gateway, Conn, Via};

const VERSIONS: [ProtocolVersion; 2] = [ProtocolVersion::V3_1_1, ProtocolVersion::V5];
const VIAS: [Via; 2] = [Via::Tcp, Via::Ws];

#[tokio::test]
async fn connect_needs_a_known_user_with_the_right_password() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    for via in VIAS {
        for v in VERSIONS {
            let v5 = v == ProtocolVersion::V5;
            let cases = [
                (
                    Some(("server", "wrong")),
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                ),
                (
                    Some(("nobody", "srv-pw")),
                    ReasonCode::BAD_USER_NAME_OR_PASSWORD,
                ),
                (None, ReasonCode::NOT_AUTHORIZED),
                (Some(("server", "srv-pw")), ReasonCode::SUCCESS),
            ];
            for (user, v5_code) in cases {
                let connect = connect_packet(v, "c1", user);
                let (_conn, ack) = Conn::connect(&gw, via, connect).await;
                // MQTT 3.1.1 says 5 Not Authorized for both refusals, as Mosquitto does.
                let want = match (v5, v5_code) {
                    (false, c) if c.is_error() => ReasonCode::NOT_AUTHORIZED,
                    (_, c) => c,
                };
                assert_eq!(ack.reason_code, want, "{user:?} over {via:?} {v:?}");
            }
        }
    }
    let failures = ws_common::metric(&gw.http().metrics().await, "aviary_login_failures_total");
    assert_eq!(
        failures,
        Some(12),
        "three refusals for each of the four cases"
    );
}

#[tokio::test]
async fn publish_and_subscribe_follow_the_acl_with_exact_reason_codes() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    for via in VIAS {
        for v in VERSIONS {
            let v5 = v == ProtocolVersion::V5;
            let mut server = Conn::user(&gw, via, v, "server", "srv").await;
            assert_eq!(server.subscribe("pets/#").await, ReasonCode::GRANTED_QOS_1);
            let mut device = Conn::user(&gw, via, v, "device-123", "dev").await;
            // Its own pet: delivered.
            let ok = device.publish("pets/123/location", "here", false).await;
            assert!(!ok.is_error(), "{via:?} {v:?}: {ok:?}");
            // Another pet's: 0x87 for MQTT 5; acknowledged and dropped for 3.1.1.
            let denied = device.publish("pets/124/location", "forged", false).await;
            let want = if v5 {
                ReasonCode::NOT_AUTHORIZED
            } else {
                ReasonCode::SUCCESS
            };
            assert_eq!(denied, want, "{via:?} {v:?}");
            device.publish("pets/123/status", "sentinel", false).await;
            assert_eq!(
                server.topics(2).await,
                ["pets/123/location", "pets/123/status"],
                "{via:?} {v:?}: the forged message never arrives"
            );
            // A filter that reaches nothing the device may read: 0x80 (3.1.1) or 0x87 (5.0).
            let want = if v5 {
                ReasonCode::NOT_AUTHORIZED
            } else {
                ReasonCode::UNSPECIFIED_ERROR
            };
            assert_eq!(device.subscribe("pets/124/#").await, want, "{via:?} {v:?}");
            assert_eq!(
                device.subscribe("pets/123/commands/#").await,
                ReasonCode::GRANTED_QOS_1
            );
            // The server may command; the device hears its own commands only.
            let ok = server.publish("pets/123/commands/feed", "now", false).await;
            assert!(!ok.is_error(), "{ok:?}");
            assert_eq!(device.topics(1).await, ["pets/123/commands/feed"]);
        }
    }
}

#[tokio::test]
async fn each_delivery_and_retained_message_is_checked_for_its_reader() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let v = ProtocolVersion::V5;
    let mut d7 = Conn::user(&gw, Via::Tcp, v, "device-7", "d7").await;
    let mut d123 = Conn::user(&gw, Via::Tcp, v, "device-123", "d123").await;
    d7.publish("pets/7/location", "retained-7", true).await;
    d123.publish("pets/123/location", "retained-123", true)
        .await;
    for via in VIAS {
        let mut app = Conn::user(&gw, via, v, "app-user-456", "app").await;
        // Granted: it can read pet 123 through this filter.
        assert_eq!(
            app.subscribe("pets/+/location").await,
            ReasonCode::GRANTED_QOS_1
        );
        // Of the two retained messages, only pet 123's.
        assert_eq!(app.topics(1).await, ["pets/123/location"], "{via:?}");
        d7.publish("pets/7/location", "live-7", false).await;
        d123.publish("pets/123/location", "live-123", false).await;
        assert_eq!(app.topics(1).await, ["pets/123/location"], "{via:?}");
    }
    let metrics = gw.http().metrics().await;
    let denied = |action: &str| {
        ws_common::metric(
            &metrics,
            &format!("aviary_acl_denied_total{{action=\"{action}\"}}"),
        )
    };
    assert_eq!(denied("retained"), Some(2));
    assert_eq!(denied("delivery"), Some(2));
}

#[tokio::test]
async fn a_will_is_published_only_where_its_owner_may_write() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let v = ProtocolVersion::V5;
    let mut server = Conn::user(&gw, Via::Tcp, v, "server", "srv").await;
    assert_eq!(server.subscribe("pets/#").await, ReasonCode::GRANTED_QOS_1);
    for (id, topic) in [("w1", "pets/124/status"), ("w2", "pets/123/status")] {
        let mut connect = connect_packet(v, id, Some(("device-123", "dev-pw")));
        connect.will = Some(aviary_protocol::LastWill {
            topic: aviary_protocol::TopicName::new(topic.to_owned()).unwrap(),
            payload: Bytes::from_static(b"offline"),
            qos: QoS::AtLeastOnce,
            retain: false,
            properties: Default::default(),
        });
        let (conn, ack) = Conn::connect(&gw, Via::Tcp, connect).await;
        assert_eq!(ack.reason_code, ReasonCode::SUCCESS);
        // Gone without DISCONNECT: the will is due.
        drop(conn);
    }
    // The first will was refused; the second is what arrives.
    assert_eq!(server.topics(1).await, ["pets/123/status"]);
    let metrics = gw.http().metrics().await;
    assert_eq!(
        ws_common::metric(&metrics, "aviary_acl_denied_total{action=\"will\"}"),
        Some(1)
    );
}

#[tokio::test]
async fn patterns_substitute_the_username_and_client_id_as_whole_levels() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    for v in VERSIONS {
        let v5 = v == ProtocolVersion::V5;
        let mut alice = Conn::user(&gw, Via::Ws, v, "alice", "phone-1").await;
        assert_eq!(
            alice.subscribe("users/alice/#").await,
            ReasonCode::GRANTED_QOS_1
        );
        let refused = alice.subscribe("users/bob/#").await;
        assert!(refused.is_error(), "{v:?}: {refused:?}");
        // %c: her client id's level is hers to write; another's is not.
        assert!(!alice
            .publish("clients/phone-1/x", "ok", false)
            .await
            .is_error());
        let other = alice.publish("clients/phone-2/x", "no", false).await;
        assert_eq!(other.is_error(), v5, "{v:?}: {other:?}");
        alice.publish("users/alice/inbox", "to-self", false).await;
        assert_eq!(alice.topics(1).await, ["users/alice/inbox"]);
    }
}

#[tokio::test]
async fn a_reload_applies_to_the_next_operation_of_an_open_connection() {
    let (gw, dir) = secure_gateway(|_| {}).await;
    let v = ProtocolVersion::V5;
    let mut device = Conn::user(&gw, Via::Tcp, v, "device-123", "dev").await;
    assert_eq!(
        device.publish("pets/999/location", "x", false).await,
        ReasonCode::NOT_AUTHORIZED
    );
    std::fs::write(
        dir.path().join("acl"),
        "user device-123\ntopic write pets/999/#\n",
    )
    .unwrap();
    gw.broker.authorizer().reload().expect("the new ACL loads");
    // Same connection, new rules.
    assert_ne!(
        device.publish("pets/999/location", "x", false).await,
        ReasonCode::NOT_AUTHORIZED
    );
    assert_eq!(
        device.publish("pets/123/location", "x", false).await,
        ReasonCode::NOT_AUTHORIZED
    );
}

#[tokio::test]
async fn a_session_is_not_resumed_by_another_user() {
    let (gw, _dir) = secure_gateway(|_| {}).await;
    let persistent = |user: &str| {
        let mut c = connect_packet(
            ProtocolVersion::V5,
            "phone",
            Some((user, password_of(user))),
        );
        c.clean_start = false;
        c.properties.session_expiry_interval = Some(3600);
        c
    };
    let (mut alice, _) = Conn::connect(&gw, Via::Tcp, persistent("alice")).await;
    assert_eq!(
        alice.subscribe("users/alice/#").await,
        ReasonCode::GRANTED_QOS_1
    );
    drop(alice);
    common::eventually("alice's connection to end", || {
        common::connected(&gw.broker) == 0
    })
    .await;
    // Queued for alice while she is away.
    let mut writer = Conn::user(&gw, Via::Tcp, ProtocolVersion::V5, "alice", "laptop").await;
    writer.publish("users/alice/inbox", "private", false).await;
    // Another user with her client id gets a new session: no subscriptions, no messages.
    let (mut server, ack) = Conn::connect(&gw, Via::Tcp, persistent("server")).await;
    assert!(
        !ack.session_present,
        "another user's session must not be resumed"
    );
    writer.publish("users/alice/inbox", "later", false).await;
    assert_eq!(server.subscribe("pets/#").await, ReasonCode::GRANTED_QOS_1);
    let mut device = Conn::user(&gw, Via::Tcp, ProtocolVersion::V5, "device-123", "d").await;
    device.publish("pets/123/location", "sentinel", false).await;
    // Only what the server's own subscription reads.
    assert_eq!(server.topics(1).await, ["pets/123/location"]);
}
