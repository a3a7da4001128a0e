//! The client in headless Chromium against a real gateway (`cargo xtask test` starts it).
//!
//! The browser cannot start processes, so `cargo xtask test` starts the gateway, a small HTTP
//! supervisor that restarts it on request, and passes their addresses at compile time:
//! `AVIARY_WS_URL` (`ws://127.0.0.1:P/mqtt`) and `AVIARY_CONTROL_URL` (`http://127.0.0.1:Q`).
//! Without them (a plain `cargo test --target wasm32-unknown-unknown`) every test fails, saying
//! what is missing: a test that cannot reach a gateway has tested nothing, so it must not pass.
//! Every wait is bounded; readiness is always an event, never a sleep.
#![cfg(target_arch = "wasm32")]

use std::future::Future;

use aviary_mqtt::engine::{ErrorKind, Reconnect};
use aviary_mqtt::protocol::{
    LastWill, ProtocolVersion, QoS, SubscribeProperties, SubscriptionOptions, TopicFilter,
    TopicName,
};
use aviary_mqtt::{Client, ClientEvent, EventStream, Message, Options};
use futures_util::future::{select, Either};
use futures_util::StreamExt;
use js_sys::{Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(handler: &Function, ms: i32) -> JsValue;
}

const WS_URL: Option<&str> = option_env!("AVIARY_WS_URL");
const CONTROL_URL: Option<&str> = option_env!("AVIARY_CONTROL_URL");

/// What to do when the addresses were not compiled in.
const HOW: &str = "run these tests with `cargo xtask test`, which starts a gateway and its \
                   supervisor, or set both variables when compiling them";

/// The gateway's WebSocket URL; fails the test when it was not given.
fn url() -> &'static str {
    WS_URL.unwrap_or_else(|| panic!("AVIARY_WS_URL (ws://HOST:PORT/mqtt) is not set: {HOW}"))
}

/// The supervisor's URL (restarts the gateway); fails the test when it was not given.
fn control_url() -> &'static str {
    CONTROL_URL.unwrap_or_else(|| panic!("AVIARY_CONTROL_URL (http://HOST:PORT) is not set: {HOW}"))
}

async fn sleep(ms: i32) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(&resolve, ms);
    });
    let _ = JsFuture::from(p).await;
}

/// Awaits `f`, failing the test after `ms`.
async fn within<T>(ms: i32, what: &str, f: impl Future<Output = T>) -> T {
    match select(Box::pin(f), Box::pin(sleep(ms))).await {
        Either::Left((v, _)) => v,
        Either::Right(_) => panic!("timed out after {ms} ms waiting for {what}"),
    }
}

/// Waits for the next event matching `pick`.
async fn next<T>(
    events: &mut EventStream,
    what: &str,
    pick: impl Fn(ClientEvent) -> Option<T>,
) -> T {
    within(10_000, what, async {
        loop {
            let event = events.next().await.expect("event stream ended");
            if let Some(v) = pick(event) {
                return v;
            }
        }
    })
    .await
}

async fn message(events: &mut EventStream) -> Message {
    next(events, "a message", |e| match e {
        ClientEvent::Message(m) => Some(m),
        _ => None,
    })
    .await
}

fn options(protocol: ProtocolVersion) -> Options {
    Options {
        protocol,
        reconnect: Reconnect {
            enabled: true,
            initial_delay_ms: 100,
            max_delay_ms: 1_000,
        },
        ..Options::default()
    }
}

/// A topic prefix unique to this test run, so tests never see each other's messages.
fn unique(name: &str) -> String {
    format!("wasm-test/{}/{name}", (js_sys::Math::random() * 1e9) as u64)
}

async fn connect(url: &str, o: Options) -> Client {
    within(10_000, "CONNACK", Client::connect(url, o))
        .await
        .expect("connect")
}

#[wasm_bindgen_test]
async fn connects_with_mqtt_3_1_1_and_5() {
    let url = url();
    for protocol in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let client = connect(url, options(protocol)).await;
        assert!(client.is_connected());
        client.disconnect();
        assert!(!client.is_connected());
    }
}

#[wasm_bindgen_test]
async fn qos_0_1_2_both_ways() {
    let url = url();
    let topic = unique("qos");
    for protocol in [ProtocolVersion::V3_1_1, ProtocolVersion::V5] {
        let sub = connect(url, options(protocol)).await;
        let mut events = sub.events();
        let granted = within(
            5_000,
            "SUBACK",
            sub.subscribe(&format!("{topic}/#"), QoS::ExactlyOnce),
        )
        .await;
        assert_eq!(granted, Ok(QoS::ExactlyOnce));
        let publisher = connect(url, options(protocol)).await;
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            let t = format!("{topic}/{}", qos as u8);
            let acked = within(
                5_000,
                "ack",
                publisher.publish(&t, vec![qos as u8; 3], qos, false),
            )
            .await;
            assert_eq!(acked, Ok(()), "{qos:?}");
            let m = message(&mut events).await;
            assert_eq!(
                (&*m.topic, m.qos, &m.payload[..]),
                (&*t, qos, &[qos as u8; 3][..])
            );
        }
        sub.disconnect();
        publisher.disconnect();
    }
}

#[wasm_bindgen_test]
async fn retained_messages_arrive_on_subscribe() {
    let url = url();
    let topic = unique("retained");
    let publisher = connect(url, options(ProtocolVersion::V5)).await;
    within(
        5_000,
        "PUBACK",
        publisher.publish(&topic, "kept", QoS::AtLeastOnce, true),
    )
    .await
    .unwrap();
    let sub = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = sub.events();
    within(5_000, "SUBACK", sub.subscribe(&topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    let m = message(&mut events).await;
    assert!(m.retain);
    assert_eq!(&m.payload[..], b"kept");
    // Clear the retained message.
    within(
        5_000,
        "PUBACK",
        publisher.publish(&topic, "", QoS::AtLeastOnce, true),
    )
    .await
    .unwrap();
    publisher.disconnect();
    sub.disconnect();
}

#[wasm_bindgen_test]
async fn the_will_is_published_when_the_socket_dies() {
    let url = url();
    let topic = unique("will");
    let watcher = connect(url, options(ProtocolVersion::V3_1_1)).await;
    let mut events = watcher.events();
    within(5_000, "SUBACK", watcher.subscribe(&topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    let mut o = options(ProtocolVersion::V3_1_1);
    o.reconnect.enabled = false;
    o.will = Some(LastWill {
        topic: TopicName::new(topic.clone()).unwrap(),
        payload: r#"{"online":false}"#.into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let tracker = connect(url, o).await;
    tracker.drop_connection();
    let m = message(&mut events).await;
    assert_eq!(&m.payload[..], br#"{"online":false}"#);
    watcher.disconnect();
}

#[wasm_bindgen_test]
async fn a_clean_disconnect_does_not_publish_the_will() {
    let url = url();
    let topic = unique("no-will");
    let watcher = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = watcher.events();
    within(
        5_000,
        "SUBACK",
        watcher.subscribe(&format!("{topic}/#"), QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let mut o = options(ProtocolVersion::V5);
    o.will = Some(LastWill {
        topic: TopicName::new(format!("{topic}/will")).unwrap(),
        payload: "gone".into(),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Default::default(),
    });
    let tracker = connect(url, o).await;
    tracker.disconnect();
    // A marker published after the disconnect must be the first thing the watcher sees.
    let marker = connect(url, options(ProtocolVersion::V5)).await;
    let marker_topic = format!("{topic}/marker");
    within(
        5_000,
        "PUBACK",
        marker.publish(&marker_topic, "m", QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    assert_eq!(&*message(&mut events).await.topic, marker_topic);
    marker.disconnect();
    watcher.disconnect();
}

#[wasm_bindgen_test]
async fn the_offline_queue_is_flushed_after_a_reconnect() {
    let url = url();
    let topic = unique("offline");
    let sub = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = sub.events();
    within(
        5_000,
        "SUBACK",
        sub.subscribe(&format!("{topic}/#"), QoS::AtLeastOnce),
    )
    .await
    .unwrap();
    let publisher = connect(url, options(ProtocolVersion::V5)).await;
    publisher.drop_connection();
    assert!(!publisher.is_connected());
    let acks: Vec<_> = (0..3)
        .map(|n| publisher.publish(&format!("{topic}/{n}"), "queued", QoS::AtLeastOnce, false))
        .collect();
    for (n, ack) in acks.into_iter().enumerate() {
        assert_eq!(within(10_000, "PUBACK after reconnect", ack).await, Ok(()));
        assert_eq!(message(&mut events).await.topic, format!("{topic}/{n}"));
    }
    publisher.disconnect();
    sub.disconnect();
}

#[wasm_bindgen_test]
async fn invalid_topics_are_rejected_with_a_typed_error() {
    let url = url();
    let client = connect(url, options(ProtocolVersion::V5)).await;
    let err = client
        .publish("a/+/b", "x", QoS::AtMostOnce, false)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    let err = client
        .subscribe("a/#/b", QoS::AtMostOnce)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::InvalidArgument);
    client.disconnect();
}

#[wasm_bindgen_test]
async fn a_bad_url_fails_the_first_connect() {
    // Needs no gateway: nothing listens on port 9 (discard), so the first connect must fail.
    let err = within(
        10_000,
        "failure",
        Client::connect("ws://127.0.0.1:9/mqtt", options(ProtocolVersion::V5)),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, ErrorKind::ConnectionLost);
}

#[wasm_bindgen_test]
async fn large_messages_span_frames() {
    let url = url();
    let topic = unique("large");
    let client = connect(url, options(ProtocolVersion::V3_1_1)).await;
    let mut events = client.events();
    within(5_000, "SUBACK", client.subscribe(&topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    within(
        5_000,
        "PUBACK",
        client.publish(&topic, payload.clone(), QoS::AtLeastOnce, false),
    )
    .await
    .unwrap();
    assert_eq!(message(&mut events).await.payload, payload);
    client.disconnect();
}

/// Restarts the gateway through the supervisor and checks the client comes back by itself,
/// restores its subscription, and receives again.
#[wasm_bindgen_test]
async fn reconnects_after_the_gateway_restarts() {
    let (url, control) = (url(), control_url());
    let topic = unique("restart");
    let client = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = client.events();
    within(5_000, "SUBACK", client.subscribe(&topic, QoS::AtLeastOnce))
        .await
        .unwrap();
    let fetch: Function = Reflect::get(&js_sys::global(), &"fetch".into())
        .unwrap()
        .into();
    let response = fetch
        .call1(&JsValue::NULL, &format!("{control}/restart").into())
        .unwrap();
    within(20_000, "restart", JsFuture::from(Promise::from(response)))
        .await
        .unwrap();
    next(&mut events, "offline", |e| {
        matches!(e, ClientEvent::Offline).then_some(())
    })
    .await;
    next(&mut events, "reconnect", |e| {
        matches!(e, ClientEvent::Connected(_)).then_some(())
    })
    .await;
    let publisher = connect(url, options(ProtocolVersion::V5)).await;
    // The resubscription may still be in flight; the publisher's PUBACK does not wait for it,
    // so publish until the message arrives (bounded by `within`).
    let got = within(10_000, "message after restart", async {
        loop {
            publisher
                .publish(&topic, "back", QoS::AtLeastOnce, false)
                .await
                .unwrap();
            if let Either::Left((m, _)) =
                select(Box::pin(message(&mut events)), Box::pin(sleep(500))).await
            {
                return m;
            }
        }
    })
    .await;
    assert_eq!(&got.payload[..], b"back");
    publisher.disconnect();
    client.disconnect();
}

#[wasm_bindgen_test]
async fn a_subscription_identifier_comes_back_with_the_message() {
    let url = url();
    let topic = unique("sid");
    let sub = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = sub.events();
    let filter = TopicFilter::new(topic.clone()).expect("filter");
    let properties = SubscribeProperties {
        subscription_identifier: std::num::NonZeroU32::new(7),
        user_properties: vec![("app".into(), "test".into())],
    };
    let granted = within(
        5_000,
        "SUBACK",
        sub.subscribe_with(
            vec![(filter, SubscriptionOptions::qos(QoS::AtLeastOnce))],
            properties,
        ),
    )
    .await;
    assert!(granted.is_ok(), "{granted:?}");
    let publisher = connect(url, options(ProtocolVersion::V5)).await;
    let acked = within(
        5_000,
        "PUBACK",
        publisher.publish(&topic, "x", QoS::AtLeastOnce, false),
    )
    .await;
    assert_eq!(acked, Ok(()));
    let m = message(&mut events).await;
    let ids: Vec<u32> = m
        .properties
        .subscription_identifiers
        .iter()
        .map(|id| id.get())
        .collect();
    assert_eq!(ids, [7]);
    sub.disconnect();
    publisher.disconnect();
}

#[wasm_bindgen_test]
async fn a_graceful_end_delivers_a_qos1_publish_in_flight() {
    let url = url();
    let topic = unique("graceful");
    let watcher = connect(url, options(ProtocolVersion::V5)).await;
    let mut events = watcher.events();
    let granted = within(5_000, "SUBACK", watcher.subscribe(&topic, QoS::AtLeastOnce)).await;
    assert_eq!(granted, Ok(QoS::AtLeastOnce));
    let client = connect(url, options(ProtocolVersion::V5)).await;
    let acked = client.publish(&topic, "last words", QoS::AtLeastOnce, false);
    client.end_gracefully(5_000);
    assert_eq!(within(5_000, "PUBACK", acked).await, Ok(()));
    let m = message(&mut events).await;
    assert_eq!(&m.payload[..], b"last words");
    watcher.disconnect();
}
