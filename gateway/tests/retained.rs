//! Retained messages end to end: set, replace and clear (empty payload);
//! delivery to wildcard subscriptions; the RETAIN flag as each subscriber
//! sees it (MQTT 3.1.1 and MQTT 5 Retain As Published); Retain Handling
//! 1 and 2.
//!
//! "No retained message" is shown without waiting: each SUBSCRIBE also
//! names a marker topic that has a retained message, and the broker sends
//! retained messages in the order of the filters, so the marker coming
//! first proves nothing else was sent. The marker is a `$` topic, which no
//! wildcard filter matches.

mod common;

use aviary_protocol::{Publish, QoS, ReasonCode, RetainHandling, SubscriptionOptions};
use common::raw::{self, Raw};
use common::TestGateway;

fn retained(topic: &str, payload: &[u8], qos: QoS) -> Publish {
    let mut p = raw::message(topic, payload, qos);
    p.retain = true;
    p
}

/// Subscribes to `filter` (with `options`) then `marker`, and returns the
/// retained messages that came before the marker's.
async fn retained_for(
    client: &mut Raw,
    filter: &str,
    options: SubscriptionOptions,
    marker: &str,
) -> Vec<Publish> {
    let marker_opts = SubscriptionOptions::qos(QoS::AtMostOnce);
    client
        .subscribe_with(&[(filter, options), (marker, marker_opts)], None)
        .await;
    let mut found = Vec::new();
    loop {
        let p = client.recv_publish().await;
        client.ack(&p).await;
        if p.topic == marker {
            return found;
        }
        found.push(p);
    }
}

async fn publisher(gw: &TestGateway) -> Raw {
    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("retainer")).await;
    p.publish(retained("$marker", b"m", QoS::AtLeastOnce)).await;
    p
}

#[tokio::test]
async fn set_replace_and_clear() {
    // No `$SYS` messages, so the retained count is all ours.
    let gw = TestGateway::start_with(|c| c.sys_interval_secs = 0).await;
    let mut p = publisher(&gw).await;
    let qos1 = SubscriptionOptions::qos(QoS::AtLeastOnce);

    p.publish(retained("r/1", b"first", QoS::AtLeastOnce)).await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v4("s1")).await;
    let got = retained_for(&mut s, "r/1", qos1, "$marker").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, &b"first"[..]);
    assert!(
        got[0].retain,
        "RETAIN set on a retained message [MQTT-3.3.1-9]"
    );
    assert_eq!(got[0].qos, QoS::AtLeastOnce);

    p.publish(retained("r/1", b"second", QoS::AtMostOnce)).await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v4("s2")).await;
    let got = retained_for(&mut s, "r/1", qos1, "$marker").await;
    assert_eq!(got.len(), 1, "replaced, not added: {got:?}");
    assert_eq!(got[0].payload, &b"second"[..]);
    assert_eq!(
        got[0].qos,
        QoS::AtMostOnce,
        "the retained message's own QoS"
    );

    // An empty retained payload clears it [MQTT-3.3.1-6] and is itself not
    // stored [MQTT-3.3.1-7].
    p.publish(retained("r/1", b"", QoS::AtLeastOnce)).await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v4("s3")).await;
    let got = retained_for(&mut s, "r/1", qos1, "$marker").await;
    assert!(got.is_empty(), "cleared: {got:?}");
    assert_eq!(gw.broker.retained_count(), 1, "only the marker is left");

    // A non-retained publish leaves the retained message alone.
    p.publish(retained("r/2", b"kept", QoS::AtMostOnce)).await;
    p.publish(raw::message("r/2", b"live", QoS::AtLeastOnce))
        .await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v4("s4")).await;
    let got = retained_for(&mut s, "r/2", qos1, "$marker").await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].payload, &b"kept"[..]);
}

#[tokio::test]
async fn wildcard_subscriptions_get_every_match() {
    let gw = TestGateway::start().await;
    let mut p = publisher(&gw).await;
    for t in ["a", "a/1", "a/2/x", "a/2/y/z", "b/1", "ab", "$SYS/a"] {
        p.publish(retained(t, t.as_bytes(), QoS::AtMostOnce)).await;
    }
    let qos0 = SubscriptionOptions::qos(QoS::AtMostOnce);
    let cases: [(&str, &[&str]); 5] = [
        ("a/#", &["a", "a/1", "a/2/x", "a/2/y/z"]),
        ("a/+", &["a/1"]),
        ("a/+/x", &["a/2/x"]),
        ("+/1", &["a/1", "b/1"]),
        ("#", &["a", "a/1", "a/2/x", "a/2/y/z", "ab", "b/1"]),
    ];
    for (i, (filter, expected)) in cases.into_iter().enumerate() {
        let (mut s, _) = Raw::connect_ok(gw.addr, raw::v5(&format!("w{i}"))).await;
        let got = retained_for(&mut s, filter, qos0, "$marker").await;
        let mut topics: Vec<String> = got.iter().map(|p| p.topic.to_string()).collect();
        topics.sort();
        assert_eq!(topics, expected, "retained messages for {filter}");
        assert!(got.iter().all(|p| p.retain));
    }
}

#[tokio::test]
async fn retain_flag_on_live_delivery() {
    let gw = TestGateway::start().await;
    let (mut v4, _) = Raw::connect_ok(gw.addr, raw::v4("live-v4")).await;
    v4.subscribe("live/#", QoS::AtLeastOnce).await;
    let (mut v5, _) = Raw::connect_ok(gw.addr, raw::v5("live-v5")).await;
    v5.subscribe("live/#", QoS::AtLeastOnce).await;
    let (mut rap, _) = Raw::connect_ok(gw.addr, raw::v5("live-rap")).await;
    let mut opts = SubscriptionOptions::qos(QoS::AtLeastOnce);
    opts.retain_as_published = true;
    let ack = rap.subscribe_with(&[("live/#", opts)], None).await;
    assert_eq!(ack.reason_codes, [ReasonCode::GRANTED_QOS_1]);

    let (mut p, _) = Raw::connect_ok(gw.addr, raw::v5("live-pub")).await;
    p.publish(retained("live/t", b"r", QoS::AtLeastOnce)).await;
    p.publish(raw::message("live/t", b"n", QoS::AtLeastOnce))
        .await;

    for (client, keeps) in [(&mut v4, false), (&mut v5, false), (&mut rap, true)] {
        let first = client.recv_publish().await;
        client.ack(&first).await;
        assert_eq!(first.payload, &b"r"[..]);
        assert_eq!(
            first.retain, keeps,
            "live delivery of a retained PUBLISH: RETAIN cleared unless Retain As Published \
             [MQTT-3.3.1-12, MQTT-3.3.1-13]"
        );
        let second = client.recv_publish().await;
        client.ack(&second).await;
        assert_eq!(second.payload, &b"n"[..]);
        assert!(!second.retain);
    }

    // On a new subscription the flag is set for every version [MQTT-3.3.1-9].
    let (mut late, _) = Raw::connect_ok(gw.addr, raw::v4("late-v4")).await;
    late.subscribe("live/t", QoS::AtLeastOnce).await;
    let p = late.recv_publish().await;
    assert!(p.retain);
    assert_eq!(p.payload, &b"r"[..]);
}

#[tokio::test]
async fn retain_handling_1_and_2() {
    let gw = TestGateway::start().await;
    let mut p = publisher(&gw).await;
    p.publish(retained("rh/t", b"x", QoS::AtMostOnce)).await;
    let (mut s, _) = Raw::connect_ok(gw.addr, raw::v5("rh")).await;

    let mut if_new = SubscriptionOptions::qos(QoS::AtMostOnce);
    if_new.retain_handling = RetainHandling::SendIfNew;
    let got = retained_for(&mut s, "rh/t", if_new, "$marker").await;
    assert_eq!(got.len(), 1, "Retain Handling 1, new subscription: sent");

    let got = retained_for(&mut s, "rh/t", if_new, "$marker").await;
    assert!(
        got.is_empty(),
        "Retain Handling 1, existing subscription: not sent [MQTT-3.3.1-10]: {got:?}"
    );

    let mut never = SubscriptionOptions::qos(QoS::AtMostOnce);
    never.retain_handling = RetainHandling::DoNotSend;
    let got = retained_for(&mut s, "rh/#", never, "$marker").await;
    assert!(
        got.is_empty(),
        "Retain Handling 2: never sent [MQTT-3.3.1-11]: {got:?}"
    );

    // Retain Handling 0 sends them again on every SUBSCRIBE [MQTT-3.3.1-9].
    let every = SubscriptionOptions::qos(QoS::AtMostOnce);
    for _ in 0..2 {
        let got = retained_for(&mut s, "rh/t", every, "$marker").await;
        assert_eq!(got.len(), 1);
    }
}
