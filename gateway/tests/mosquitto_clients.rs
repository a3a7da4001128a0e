//! Interoperability with mosquitto_pub and mosquitto_sub (Debian
//! `mosquitto-clients`) as child processes, MQTT 3.1.1 and 5.0: QoS 0, 1
//! and 2, retained messages (`-r`), and wills (`--will-*`). Readiness is
//! mosquitto_sub's own `received SUBACK` debug line, never a sleep. When
//! the binaries are missing these tests fail, saying what to install.

mod common;

use aviary_protocol::QoS;
use bytes::Bytes;
use common::mosquitto::{self, Process};
use common::rumqtt::V4;
use common::TestGateway;

/// The lines (after the `MSG ` marker) of the next `n` messages.
async fn messages(sub: &mut Process, n: usize) -> Vec<String> {
    sub.lines_with_prefix("MSG ", n).await
}

#[tokio::test]
async fn pub_and_sub_at_every_qos_and_version() {
    let gw = TestGateway::start().await;
    let port = gw.port();
    let mut subs = Vec::new();
    for version in ["mqttv311", "mqttv5"] {
        let sub = mosquitto::subscribe(port, &["-V", version, "-q", "2", "-t", "mq/#"]).await;
        subs.push(sub);
    }
    let mut expected = Vec::new();
    for version in ["mqttv311", "mqttv5"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("mq/{version}/q{qos}");
            let payload = format!("hello-{version}-{qos}");
            mosquitto::publish(
                port,
                &["-V", version, "-q", qos, "-t", &topic, "-m", &payload],
            )
            .await;
            expected.push(format!("r=0 q={qos} {topic} {payload}"));
        }
    }
    for sub in &mut subs {
        assert_eq!(messages(sub, expected.len()).await, expected);
    }

    // Across clients: rumqttc publishes, mosquitto_sub receives...
    let rq = V4::connect_id(gw.addr, "rq").await;
    rq.publish(
        "mq/rumqttc",
        rumqttc::QoS::ExactlyOnce,
        false,
        "from rumqttc",
    )
    .await;
    for sub in &mut subs {
        assert_eq!(messages(sub, 1).await, ["r=0 q=2 mq/rumqttc from rumqttc"]);
    }
    // ... and mosquitto_pub publishes to rumqttc.
    let mut rq = rq;
    rq.subscribe("to-rumqttc", rumqttc::QoS::AtLeastOnce).await;
    mosquitto::publish(
        port,
        &["-q", "1", "-t", "to-rumqttc", "-m", "from mosquitto"],
    )
    .await;
    let p = rq.recv_publish().await;
    assert_eq!(p.payload, &b"from mosquitto"[..]);
}

#[tokio::test]
async fn retained_with_r() {
    let gw = TestGateway::start().await;
    let port = gw.port();
    mosquitto::publish(port, &["-r", "-q", "1", "-t", "mq/ret", "-m", "kept"]).await;
    for version in ["mqttv311", "mqttv5"] {
        let args = ["-V", version, "-q", "1", "-C", "1", "-t", "mq/ret"];
        let mut sub = mosquitto::subscribe(port, &args).await;
        assert_eq!(messages(&mut sub, 1).await, ["r=1 q=1 mq/ret kept"]);
        sub.success().await;
    }

    // `-r -n`: an empty retained message clears it. The marker, retained
    // on a `$` topic, comes first only if nothing is retained on mq/ret.
    mosquitto::publish(port, &["-r", "-n", "-t", "mq/ret"]).await;
    gw.broker.publish_server(
        "$marker".into(),
        Bytes::from_static(b"m"),
        QoS::AtMostOnce,
        true,
    );
    let mut sub = mosquitto::subscribe(port, &["-C", "1", "-t", "mq/ret", "-t", "$marker"]).await;
    assert_eq!(messages(&mut sub, 1).await, ["r=1 q=0 $marker m"]);
    sub.success().await;
}

#[tokio::test]
async fn will_options() {
    let gw = TestGateway::start().await;
    let port = gw.port();
    let mut observer = V4::connect_id(gw.addr, "observer").await;
    observer
        .subscribe("mq/will/#", rumqttc::QoS::AtLeastOnce)
        .await;
    observer.subscribe("marker", rumqttc::QoS::AtMostOnce).await;

    for version in ["mqttv311", "mqttv5"] {
        let topic = format!("mq/will/{version}");
        let doomed = mosquitto::subscribe(
            port,
            &[
                "-V",
                version,
                "-t",
                "unused",
                "--will-topic",
                &topic,
                "--will-payload",
                "gone",
                "--will-qos",
                "1",
                "--will-retain",
            ],
        )
        .await;
        doomed.kill().await;
        let p = observer.recv_publish().await;
        assert_eq!(
            (p.topic.as_str(), p.payload.as_ref()),
            (topic.as_str(), &b"gone"[..])
        );
        assert_eq!(p.qos, rumqttc::QoS::AtLeastOnce);

        // --will-retain: a late subscriber gets it retained.
        let mut late =
            mosquitto::subscribe(port, &["-V", version, "-q", "1", "-C", "1", "-t", &topic]).await;
        assert_eq!(
            messages(&mut late, 1).await,
            [format!("r=1 q=1 {topic} gone")]
        );
        late.success().await;
    }

    // A clean exit (mosquitto_sub -C 1 sends DISCONNECT): no will.
    let mut polite = mosquitto::subscribe(
        port,
        &[
            "-C",
            "1",
            "-t",
            "mq/trigger",
            "--will-topic",
            "mq/will/polite",
            "--will-payload",
            "no",
        ],
    )
    .await;
    mosquitto::publish(port, &["-t", "mq/trigger", "-m", "bye"]).await;
    assert_eq!(messages(&mut polite, 1).await, ["r=0 q=0 mq/trigger bye"]);
    polite.success().await;
    common::eventually("mosquitto_sub's session to end", || {
        common::connected(&gw.broker) == 1
    })
    .await;
    gw.broker.publish_server(
        "marker".into(),
        Bytes::from_static(b"m"),
        QoS::AtMostOnce,
        false,
    );
    assert_eq!(
        observer.recv_publish().await.topic,
        "marker",
        "no will after DISCONNECT"
    );
}
