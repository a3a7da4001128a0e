//! rumqttc clients (MQTT 3.1.1 and 5.0) driven as streams of incoming
//! packets: a task polls the event loop and forwards what arrives, and
//! stops at the first error instead of reconnecting, so a test sees
//! exactly one connection. Dropping a client aborts that task, which drops
//! the socket without a DISCONNECT (as a crash would).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::within;

/// What the event loop task forwards: a packet, or why it stopped.
type Incoming<P> = Result<P, String>;

macro_rules! client {
    ($name:ident, $client:ty, $eventloop:ty, $packet:ty, $incoming:path, $publish_variant:path, $publish:ty) => {
        /// A connected rumqttc client and the packets it receives.
        pub(crate) struct $name {
            /// The client handle, for publishing and subscribing.
            pub(crate) client: $client,
            rx: mpsc::UnboundedReceiver<Incoming<$packet>>,
            stash: VecDeque<$packet>,
            task: JoinHandle<()>,
        }

        impl $name {
            /// Starts the event loop and returns once the CONNACK arrived.
            pub(crate) async fn start(client: $client, eventloop: $eventloop) -> (Self, $packet) {
                let (tx, rx) = mpsc::unbounded_channel();
                let task = tokio::spawn(async move {
                    let mut eventloop = eventloop;
                    loop {
                        match eventloop.poll().await {
                            Ok($incoming(p)) => {
                                if tx.send(Ok(p)).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                let _ = tx.send(Err(e.to_string()));
                                return;
                            }
                        }
                    }
                });
                let mut this = Self {
                    client,
                    rx,
                    stash: VecDeque::new(),
                    task,
                };
                let connack = this.next().await;
                (this, connack)
            }

            /// The next packet from the broker; panics if the connection
            /// fails or nothing comes within the bound.
            pub(crate) async fn next(&mut self) -> $packet {
                if let Some(p) = self.stash.pop_front() {
                    return p;
                }
                match within("a packet from the broker", self.rx.recv()).await {
                    Some(Ok(p)) => p,
                    Some(Err(e)) => panic!("client connection failed: {e}"),
                    None => panic!("client event loop ended"),
                }
            }

            /// The next packet or error, or `None` if nothing comes within
            /// `limit`.
            pub(crate) async fn next_within(
                &mut self,
                limit: Duration,
            ) -> Option<Incoming<$packet>> {
                if let Some(p) = self.stash.pop_front() {
                    return Some(Ok(p));
                }
                match tokio::time::timeout(limit, self.rx.recv()).await {
                    Ok(Some(r)) => Some(r),
                    Ok(None) => Some(Err("event loop ended".to_owned())),
                    Err(_) => None,
                }
            }

            /// Waits for the connection to end; returns the error that ended it.
            pub(crate) async fn closed(&mut self) -> String {
                loop {
                    match within("the connection to close", self.rx.recv()).await {
                        Some(Ok(_)) => {}
                        Some(Err(e)) => return e,
                        None => return "event loop ended".to_owned(),
                    }
                }
            }

            /// Waits for the first packet `pick` accepts; other packets are
            /// kept for later calls, in order.
            pub(crate) async fn wait_for<T>(
                &mut self,
                what: &str,
                mut pick: impl FnMut(&$packet) -> Option<T>,
            ) -> T {
                let mut skipped = Vec::new();
                let found = within(what, async {
                    loop {
                        if let Some(p) = self.stash.pop_front() {
                            if let Some(t) = pick(&p) {
                                break t;
                            }
                            skipped.push(p);
                            continue;
                        }
                        match self.rx.recv().await {
                            Some(Ok(p)) => match pick(&p) {
                                Some(t) => break t,
                                None => skipped.push(p),
                            },
                            Some(Err(e)) => panic!("connection failed waiting for {what}: {e}"),
                            None => panic!("event loop ended waiting for {what}"),
                        }
                    }
                })
                .await;
                for p in skipped.into_iter().rev() {
                    self.stash.push_front(p);
                }
                found
            }

            /// The next PUBLISH, skipping acknowledgements and pings.
            pub(crate) async fn recv_publish(&mut self) -> $publish {
                loop {
                    if let $publish_variant(p) = self.next().await {
                        return p;
                    }
                }
            }

            /// Asserts that no PUBLISH arrives for `quiet`.
            pub(crate) async fn expect_no_publish(&mut self, quiet: Duration) {
                let deadline = tokio::time::Instant::now() + quiet;
                loop {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match self.next_within(left).await {
                        None => return,
                        Some(Ok($publish_variant(p))) => panic!("unexpected message: {p:?}"),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => panic!("connection failed: {e}"),
                    }
                }
            }

            /// Every PUBLISH the client had received, including those still
            /// unread, up to the end of its connection.
            pub(crate) async fn drain_publishes(mut self) -> Vec<$publish> {
                let mut out: Vec<$publish> = std::mem::take(&mut self.stash)
                    .into_iter()
                    .filter_map(|p| match p {
                        $publish_variant(p) => Some(p),
                        _ => None,
                    })
                    .collect();
                loop {
                    match within("the connection to close", self.rx.recv()).await {
                        Some(Ok($publish_variant(p))) => out.push(p),
                        Some(Ok(_)) => {}
                        Some(Err(_)) | None => return out,
                    }
                }
            }

            /// Drops the connection without DISCONNECT.
            pub(crate) fn kill(self) {
                self.task.abort();
            }

            /// Sends DISCONNECT and waits for the event loop to end.
            pub(crate) async fn disconnect(mut self) {
                self.client.disconnect().await.expect("queue DISCONNECT");
                let _ = self.closed().await;
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.task.abort();
            }
        }
    };
}

client!(
    V4,
    rumqttc::AsyncClient,
    rumqttc::EventLoop,
    rumqttc::Packet,
    rumqttc::Event::Incoming,
    rumqttc::Packet::Publish,
    rumqttc::Publish
);
client!(
    V5,
    rumqttc::v5::AsyncClient,
    rumqttc::v5::EventLoop,
    rumqttc::v5::mqttbytes::v5::Packet,
    rumqttc::v5::Event::Incoming,
    rumqttc::v5::mqttbytes::v5::Packet::Publish,
    rumqttc::v5::mqttbytes::v5::Publish
);

/// MQTT 3.1.1 options for `id` on `addr`: clean session, 30 s keep alive.
pub(crate) fn v4_options(addr: SocketAddr, id: &str) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// MQTT 5 options for `id` on `addr`: clean start, 30 s keep alive.
pub(crate) fn v5_options(addr: SocketAddr, id: &str) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl V4 {
    /// Connects with `options`; panics unless the CONNACK accepts.
    pub(crate) async fn connect(options: rumqttc::MqttOptions) -> (Self, rumqttc::ConnAck) {
        let (client, eventloop) = rumqttc::AsyncClient::new(options, 1000);
        let (this, first) = Self::start(client, eventloop).await;
        match first {
            rumqttc::Packet::ConnAck(ack) => {
                assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
                (this, ack)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects `id` with a clean session.
    pub(crate) async fn connect_id(addr: SocketAddr, id: &str) -> Self {
        Self::connect(v4_options(addr, id)).await.0
    }

    /// Subscribes and waits for the SUBACK granting `qos`.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: rumqttc::QoS) {
        self.client
            .subscribe(filter, qos)
            .await
            .expect("queue SUBSCRIBE");
        let codes = self
            .wait_for("SUBACK", |p| match p {
                rumqttc::Packet::SubAck(a) => Some(a.return_codes.clone()),
                _ => None,
            })
            .await;
        assert_eq!(codes, [rumqttc::SubscribeReasonCode::Success(qos)]);
    }

    /// Queues a PUBLISH.
    pub(crate) async fn publish(
        &self,
        topic: &str,
        qos: rumqttc::QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("queue PUBLISH");
    }
}

impl V5 {
    /// Connects with `options`; panics unless the CONNACK accepts.
    pub(crate) async fn connect(
        options: rumqttc::v5::MqttOptions,
    ) -> (Self, rumqttc::v5::mqttbytes::v5::ConnAck) {
        let (client, eventloop) = rumqttc::v5::AsyncClient::new(options, 1000);
        let (this, first) = Self::start(client, eventloop).await;
        match first {
            rumqttc::v5::mqttbytes::v5::Packet::ConnAck(ack) => {
                assert_eq!(
                    ack.code,
                    rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success
                );
                (this, ack)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Connects `id` with a clean start and no session expiry.
    pub(crate) async fn connect_id(addr: SocketAddr, id: &str) -> Self {
        Self::connect(v5_options(addr, id)).await.0
    }

    /// Subscribes with `filter`'s options and waits for the SUBACK.
    pub(crate) async fn subscribe_filter(&mut self, filter: rumqttc::v5::mqttbytes::v5::Filter) {
        let qos = filter.qos;
        self.client
            .subscribe_many([filter])
            .await
            .expect("queue SUBSCRIBE");
        let codes = self
            .wait_for("SUBACK", |p| match p {
                rumqttc::v5::mqttbytes::v5::Packet::SubAck(a) => Some(a.return_codes.clone()),
                _ => None,
            })
            .await;
        assert_eq!(
            codes,
            [rumqttc::v5::mqttbytes::v5::SubscribeReasonCode::Success(
                qos
            )]
        );
    }

    /// Subscribes to `filter` at `qos` and waits for the SUBACK.
    pub(crate) async fn subscribe(&mut self, filter: &str, qos: rumqttc::v5::mqttbytes::QoS) {
        self.subscribe_filter(rumqttc::v5::mqttbytes::v5::Filter::new(filter, qos))
            .await;
    }

    /// Queues a PUBLISH.
    pub(crate) async fn publish(
        &self,
        topic: &str,
        qos: rumqttc::v5::mqttbytes::QoS,
        retain: bool,
        payload: impl Into<bytes::Bytes>,
    ) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("queue PUBLISH");
    }
}
