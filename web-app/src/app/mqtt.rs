//! The app's only door to MQTT: a small facade over the `aviary-wasm-client` crate's
//! [`Client`], so that only this file changes while the client's Rust API settles.
//!
//! The facade: [`Mqtt::connect`] with the user's credentials (if any) and three callbacks
//! (messages, connection state, a refused CONNACK), then [`Mqtt::subscribe`], [`Mqtt::publish`]
//! and [`Mqtt::disconnect`]. Everything MQTT — packets, acknowledgements, keep-alive,
//! reconnecting with backoff and jitter, resubscribing — is the client's. After
//! [`Mqtt::disconnect`] no callback runs again, so a signed-out user's pets cannot come back.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;

use aviary_mqtt::protocol::QoS;
use aviary_mqtt::protocol::ReasonCode;
use aviary_mqtt::{Client, ClientEvent, ErrorKind, MqttError, Options};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::browser::{now_ms, window};
use crate::model::{Credentials, Refusal};

/// Where the connection stands, for the status bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ConnState {
    /// The first connection attempt is under way.
    Connecting,
    /// The broker accepted the connection.
    Connected,
    /// The connection was lost and the client is retrying: the next attempt is due at
    /// `retry_at_ms` (ms since the epoch) when the client says so, else it is under way.
    Reconnecting {
        /// When the next attempt starts, if known.
        retry_at_ms: Option<f64>,
    },
    /// No connection and none being attempted: the browser has no network (the client
    /// retries as soon as it is back), or the client was stopped.
    Offline,
    /// Not connecting at all: nobody is signed in.
    Idle,
}

/// One message delivered to the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    /// Its topic.
    pub(crate) topic: String,
    /// Its payload.
    pub(crate) payload: Vec<u8>,
}

/// A connected (or connecting) client. Cloning shares the connection.
#[derive(Debug, Clone)]
pub(crate) struct Mqtt {
    client: Client,
    /// The window's `online`/`offline` listeners, removed on disconnect.
    network: Rc<NetworkWatch>,
    /// Cleared by [`disconnect`](Self::disconnect): events after it are not passed on.
    active: Rc<Cell<bool>>,
}

impl Mqtt {
    /// Connects to the broker at the WebSocket `url` (subprotocol `mqtt`, MQTT 3.1.1, a random
    /// client id, clean session), as `credentials` if given, reconnecting whenever the
    /// connection is lost, until [`disconnect`](Self::disconnect). A refused CONNACK calls
    /// `on_refused`; the client would retry, so the caller decides whether to disconnect.
    pub(crate) fn connect(
        url: &str,
        credentials: Option<&Credentials>,
        on_message: impl Fn(Message) + 'static,
        on_state: impl Fn(ConnState) + 'static,
        on_refused: impl Fn(Refusal) + 'static,
    ) -> Self {
        let options = Options {
            username: credentials.map(|c| c.username.clone()),
            password: credentials.map(|c| c.password.clone().into_bytes().into()),
            ..Options::default()
        };
        let client = Client::new(url, options);
        let active = Rc::new(Cell::new(true));
        let on_state: Rc<dyn Fn(ConnState)> = {
            let active = Rc::clone(&active);
            Rc::new(move |state| {
                if active.get() {
                    on_state(state);
                }
            })
        };
        let connected = Rc::new(Cell::new(false));
        {
            let (on_state, connected) = (Rc::clone(&on_state), Rc::clone(&connected));
            let active = Rc::clone(&active);
            client.on_event(move |event| match event {
                _ if !active.get() => {}
                ClientEvent::Message(message) => on_message(Message {
                    topic: message.topic.to_string(),
                    payload: message.payload.to_vec(),
                }),
                ClientEvent::Connected(_) => {
                    connected.set(true);
                    on_state(ConnState::Connected);
                }
                ClientEvent::ReconnectScheduled { delay_ms, .. } => {
                    connected.set(false);
                    on_state(if browser_online() {
                        ConnState::Reconnecting {
                            retry_at_ms: Some(now_ms() + f64::from(*delay_ms)),
                        }
                    } else {
                        ConnState::Offline
                    });
                }
                ClientEvent::Reconnecting | ClientEvent::Offline | ClientEvent::Closed(Some(_)) => {
                    connected.set(false);
                    // An attempt is under way, or `ReconnectScheduled` (which follows a loss)
                    // will say when the next one is due.
                    on_state(if browser_online() {
                        ConnState::Reconnecting { retry_at_ms: None }
                    } else {
                        ConnState::Offline
                    });
                }
                ClientEvent::Closed(None) | ClientEvent::Ended => {
                    connected.set(false);
                    on_state(ConnState::Offline);
                }
                ClientEvent::Error(err) if err.kind == ErrorKind::ConnectionRefused => {
                    warn(&format!("mqtt: {err}"));
                    on_refused(refusal(err));
                }
                ClientEvent::Error(err) => warn(&format!("mqtt: {err}")),
                // The map signs in with a password: it names no authentication method, so no
                // broker challenges it.
                ClientEvent::AuthChallenge { .. } => {}
            });
        }
        let network = Rc::new(NetworkWatch::new(move |online| {
            if !connected.get() {
                on_state(if online {
                    ConnState::Reconnecting { retry_at_ms: None }
                } else {
                    ConnState::Offline
                });
            }
        }));
        Self {
            client,
            network,
            active,
        }
    }

    /// Subscribes to `filter` at `qos` (0, 1 or 2); the client keeps it across reconnects.
    pub(crate) fn subscribe(&self, filter: &str, qos: u8) {
        let done = self.client.subscribe(filter, to_qos(qos));
        report(format!("subscribe {filter}"), async move {
            done.await.map(drop)
        });
    }

    /// Publishes `payload` on `topic`; the client queues it while disconnected.
    pub(crate) fn publish(&self, topic: &str, payload: Vec<u8>, qos: u8, retain: bool) {
        let done = self.client.publish(topic, payload, to_qos(qos), retain);
        report(format!("publish to {topic}"), done);
    }

    /// Disconnects for good (a normal DISCONNECT); no callback runs after this.
    pub(crate) fn disconnect(&self) {
        self.active.set(false);
        self.network.stop();
        self.client.disconnect();
    }
}

/// What a refused CONNACK means for the user: 0x86 and 0x87 (the client maps MQTT 3.1.1's 0x04
/// and 0x05 to them) are a bad or missing username or password.
fn refusal(err: &MqttError) -> Refusal {
    match err.reason_code {
        Some(ReasonCode::BAD_USER_NAME_OR_PASSWORD | ReasonCode::NOT_AUTHORIZED) => {
            Refusal::BadCredentials
        }
        _ => Refusal::Other(err.message.clone()),
    }
}

/// Whether the browser thinks it has a network.
fn browser_online() -> bool {
    window().navigator().on_line()
}

/// Listens to the window's `online` and `offline` events.
struct NetworkWatch {
    handler: Closure<dyn FnMut(JsValue)>,
}

impl std::fmt::Debug for NetworkWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetworkWatch")
    }
}

impl NetworkWatch {
    fn new(on_change: impl Fn(bool) + 'static) -> Self {
        let handler = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
            on_change(browser_online());
        });
        for event in ["online", "offline"] {
            let _ =
                window().add_event_listener_with_callback(event, handler.as_ref().unchecked_ref());
        }
        Self { handler }
    }

    fn stop(&self) {
        for event in ["online", "offline"] {
            let _ = window()
                .remove_event_listener_with_callback(event, self.handler.as_ref().unchecked_ref());
        }
    }
}

fn to_qos(qos: u8) -> QoS {
    match qos {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// Logs the failure of an operation nobody waits for (the UI shows the connection state).
fn report(what: String, done: impl Future<Output = Result<(), MqttError>> + 'static) {
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(err) = done.await {
            warn(&format!("{what} failed: {err}"));
        }
    });
}

fn warn(message: &str) {
    web_sys::console::warn_1(&JsValue::from_str(message));
}
