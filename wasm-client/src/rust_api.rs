//! The Rust API, used by the Yew web app: a cloneable [`Client`] handle, futures that resolve
//! when the broker acknowledges, and events through a callback or a [`Stream`].
//!
//! ```ignore
//! let client = Client::connect("ws://127.0.0.1:8080/mqtt", Options::default()).await?;
//! client.on_event(|event| if let ClientEvent::Message(m) = event { log(&m.topic) });
//! client.subscribe("pets/+/location", QoS::AtLeastOnce).await?;
//! client.publish("pets/1/status", r#"{"online":true}"#, QoS::AtLeastOnce, true).await?;
//! client.disconnect();
//! ```

use alloc::borrow::ToOwned;
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::string::ToString;
use alloc::vec;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use aviary_protocol::{
    Publish, QoS, ReasonCode, SubscribeProperties, SubscriptionOptions, TopicFilter, UserProperty,
};
use bytes::Bytes;
use futures_core::Stream;

use crate::engine::small_map::SmallMap;
use crate::engine::{Connected, Done, ErrorKind, Event, MqttError, Options, Token};
use crate::runtime::{Driver, Hooks, UrlChoice};

/// An incoming message: topic (alias resolved), payload, QoS, retain flag and MQTT 5 properties.
pub type Message = Publish;

/// Something that happened to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The broker accepted a connection (the first or a reconnect).
    Connected(Connected),
    /// A new connection attempt after a loss (MQTT.js's `reconnect`).
    Reconnecting,
    /// A message arrived.
    Message(Message),
    /// A connection ended; `None` when the application disconnected.
    Closed(Option<MqttError>),
    /// A connection that was up was lost.
    Offline,
    /// After a loss (or a failed attempt): the next attempt, number `attempt`, starts in
    /// `delay_ms`, the reconnect backoff just chosen. For a countdown; the browser's `online`
    /// event may start it sooner. [`Reconnecting`](Self::Reconnecting) follows when it starts.
    ReconnectScheduled {
        /// The number the next attempt will have (2 and up).
        attempt: u32,
        /// Milliseconds until it starts.
        delay_ms: u32,
    },
    /// MQTT 5 enhanced authentication: the broker's challenge (AUTH 0x18) to a CONNECT that
    /// named an Authentication Method. Answer with [`Client::answer_auth`] naming `attempt`.
    AuthChallenge {
        /// The connection attempt it belongs to.
        attempt: u32,
        /// The Authentication Method.
        method: String,
        /// The broker's Authentication Data.
        data: Bytes,
    },
    /// A refused connection, protocol error or error DISCONNECT from the broker.
    Error(MqttError),
    /// The client stopped for good.
    Ended,
}

type Listener = Box<dyn FnMut(&ClientEvent)>;
type UrlHook = Box<dyn FnMut(u32, &str) -> Option<String>>;
type Reply = Box<dyn FnOnce(Result<Done, MqttError>)>;

/// The value of a [`Completion`] and the task waiting for it.
struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

/// A future completed by the client (an acknowledgement, the first CONNACK).
pub struct Completion<T>(Rc<RefCell<Slot<T>>>);

impl<T> core::fmt::Debug for Completion<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Completion")
    }
}

impl<T> Completion<T> {
    fn pending() -> Self {
        Self(Rc::new(RefCell::new(Slot {
            value: None,
            waker: None,
        })))
    }

    fn ready(value: T) -> Self {
        let c = Self::pending();
        c.0.borrow_mut().value = Some(value);
        c
    }

    fn complete(&self, value: T) {
        let waker = {
            let mut slot = self.0.borrow_mut();
            slot.value = Some(value);
            slot.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Future for Completion<T> {
    type Output = T;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.borrow_mut();
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// What the Rust API keeps per client: who awaits which token, and the event listeners.
#[derive(Default)]
struct RustHooks {
    replies: RefCell<SmallMap<Token, Reply>>,
    listeners: RefCell<Vec<Listener>>,
    url_hook: RefCell<Option<UrlHook>>,
}

impl Hooks for RustHooks {
    fn url(&self, attempt: u32, current: &str) -> UrlChoice {
        if attempt > 1 {
            self.emit(&ClientEvent::Reconnecting);
        }
        let mut hook = self.url_hook.borrow_mut();
        match hook.as_mut().and_then(|f| f(attempt, current)) {
            Some(url) => UrlChoice::New(url),
            None => UrlChoice::Same,
        }
    }

    fn event(&self, event: Event) {
        let event = match event {
            Event::Completed { token, result } => {
                let reply = self.replies.borrow_mut().remove(&token);
                if let Some(reply) = reply {
                    reply(result);
                }
                return;
            }
            Event::Connected(c) => ClientEvent::Connected(c),
            Event::Message(m) => ClientEvent::Message(m),
            Event::Closed(e) => ClientEvent::Closed(e),
            Event::Offline => ClientEvent::Offline,
            Event::ReconnectScheduled { attempt, delay_ms } => ClientEvent::ReconnectScheduled {
                attempt,
                delay_ms: u32::try_from(delay_ms).unwrap_or(u32::MAX),
            },
            Event::Error(e) => ClientEvent::Error(e),
            Event::AuthChallenge {
                attempt,
                method,
                data,
            } => ClientEvent::AuthChallenge {
                attempt,
                method,
                data,
            },
            Event::Ended => ClientEvent::Ended,
            Event::Open { .. } | Event::CloseSocket => return,
        };
        self.emit(&event);
    }
}

impl RustHooks {
    /// Calls every listener. They are taken out while running, so a listener may add another.
    fn emit(&self, event: &ClientEvent) {
        let mut running = core::mem::take(&mut *self.listeners.borrow_mut());
        for listener in &mut running {
            listener(event);
        }
        let mut listeners = self.listeners.borrow_mut();
        running.append(&mut listeners);
        *listeners = running;
    }
}

/// A handle to one MQTT connection over WebSocket. Clones share the connection, which runs
/// until [`disconnect`](Client::disconnect) (or until reconnecting is disabled and it drops).
#[derive(Clone)]
pub struct Client {
    driver: Rc<Driver>,
    hooks: Rc<RustHooks>,
}

impl core::fmt::Debug for Client {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Client")
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Client {
    /// Starts connecting to `url` (`ws://…/mqtt`) and returns at once; watch
    /// [`ClientEvent::Connected`]. Commands issued before the connection is up are queued.
    pub fn new(url: &str, options: Options) -> Self {
        Self::with_url_hook(url, options, None)
    }

    /// Like [`new`](Self::new), with a hook called before every connection attempt (attempt
    /// number, current URL) that may return a new URL, e.g. with a fresh token.
    pub fn with_url_hook(url: &str, options: Options, url_hook: Option<UrlHook>) -> Self {
        let hooks = Rc::new(RustHooks::default());
        *hooks.url_hook.borrow_mut() = url_hook;
        let driver = Driver::start(url.to_owned(), options, hooks.clone());
        Self { driver, hooks }
    }

    /// Connects and waits for the broker to accept. If the first attempt fails, the client is
    /// ended and the error returned (so a bad URL or bad credentials surface at once); after a
    /// successful connect, losses are retried automatically.
    pub async fn connect(url: &str, options: Options) -> Result<Self, MqttError> {
        let client = Self::new(url, options);
        let first: Completion<Result<(), MqttError>> = Completion::pending();
        let signal = Completion(first.0.clone());
        let settled = Rc::new(core::cell::Cell::new(false));
        client.on_event(move |event| {
            if settled.get() {
                return;
            }
            let result = match event {
                ClientEvent::Connected(_) => Ok(()),
                ClientEvent::Closed(Some(e)) | ClientEvent::Error(e) => Err(e.clone()),
                ClientEvent::Ended | ClientEvent::Closed(None) => Err(MqttError::new(
                    ErrorKind::ClientEnded,
                    "ended before connecting",
                )),
                _ => return,
            };
            settled.set(true);
            signal.complete(result);
        });
        match first.await {
            Ok(()) => Ok(client),
            Err(e) => {
                client.disconnect();
                Err(e)
            }
        }
    }

    /// Calls `listener` for every event, from now on.
    pub fn on_event(&self, listener: impl FnMut(&ClientEvent) + 'static) {
        self.hooks.listeners.borrow_mut().push(Box::new(listener));
    }

    /// Events from now on, as a stream (buffered without bound: poll it).
    pub fn events(&self) -> EventStream {
        let shared = Rc::new(RefCell::new((VecDeque::new(), None::<Waker>, false)));
        let sink = shared.clone();
        self.on_event(move |event| {
            let mut s = sink.borrow_mut();
            s.0.push_back(event.clone());
            s.2 |= matches!(event, ClientEvent::Ended);
            if let Some(w) = s.1.take() {
                w.wake();
            }
        });
        EventStream(shared)
    }

    /// Whether the broker has accepted the current connection.
    pub fn is_connected(&self) -> bool {
        self.driver.read(|m| m.is_connected())
    }

    /// Milliseconds until the next connection attempt while the client waits out its reconnect
    /// backoff; `None` while connected, connecting, offline (no network) or ended.
    pub fn next_attempt_in_ms(&self) -> Option<u32> {
        self.driver
            .call(|m, now| m.next_attempt_in(now))
            .map(|ms| u32::try_from(ms).unwrap_or(u32::MAX))
    }

    /// Whether the keep-alive timer runs in a Worker, immune to background-tab throttling.
    pub fn timer_in_worker(&self) -> bool {
        self.driver.timer_in_worker()
    }

    /// Subscribes to one topic filter; resolves with the granted QoS.
    pub fn subscribe(&self, filter: &str, qos: QoS) -> Completion<Result<QoS, MqttError>> {
        let filter = match TopicFilter::new(filter.to_owned()) {
            Ok(f) => f,
            Err(e) => return Completion::ready(Err(invalid(e))),
        };
        let filters = vec![(filter, SubscriptionOptions::qos(qos))];
        let token = self.driver.call(|m, now| m.subscribe(filters, now));
        self.await_token(token, |done| match done {
            Done::Subscribed(codes) => match codes.first().map(|c| c.value()) {
                Some(2) => QoS::ExactlyOnce,
                Some(1) => QoS::AtLeastOnce,
                _ => QoS::AtMostOnce,
            },
            _ => QoS::AtMostOnce,
        })
    }

    /// Subscribes to several filters with full options; resolves with one reason code each.
    pub fn subscribe_many(
        &self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
    ) -> Completion<Result<Vec<ReasonCode>, MqttError>> {
        let token = self.driver.call(|m, now| m.subscribe(filters, now));
        self.await_token(token, |done| match done {
            Done::Subscribed(codes) => codes,
            _ => Vec::new(),
        })
    }

    /// Subscribes with MQTT 5 SUBSCRIBE properties: a subscription identifier (delivered back
    /// in [`Publish::properties`]`.subscription_identifiers` of every matching message) and
    /// user properties. Resolves with one reason code per filter.
    pub fn subscribe_with(
        &self,
        filters: Vec<(TopicFilter, SubscriptionOptions)>,
        properties: SubscribeProperties,
    ) -> Completion<Result<Vec<ReasonCode>, MqttError>> {
        let token = self
            .driver
            .call(|m, now| m.subscribe_with(filters, properties, now));
        self.await_token(token, |done| match done {
            Done::Subscribed(codes) => codes,
            _ => Vec::new(),
        })
    }

    /// Unsubscribes from several filters with MQTT 5 user properties on the UNSUBSCRIBE.
    pub fn unsubscribe_with(
        &self,
        filters: Vec<TopicFilter>,
        user_properties: Vec<UserProperty>,
    ) -> Completion<Result<(), MqttError>> {
        let token = self
            .driver
            .call(|m, now| m.unsubscribe_with(filters, user_properties, now));
        self.await_token(token, |_| ())
    }

    /// Unsubscribes from one topic filter.
    pub fn unsubscribe(&self, filter: &str) -> Completion<Result<(), MqttError>> {
        let filter = match TopicFilter::new(filter.to_owned()) {
            Ok(f) => f,
            Err(e) => return Completion::ready(Err(invalid(e))),
        };
        let token = self.driver.call(|m, now| m.unsubscribe(vec![filter], now));
        self.await_token(token, |_| ())
    }

    /// Publishes; resolves once written (QoS 0), on PUBACK (QoS 1) or PUBCOMP (QoS 2).
    /// While disconnected the message waits in the bounded offline queue.
    pub fn publish(
        &self,
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
    ) -> Completion<Result<(), MqttError>> {
        let mut message = Publish::new(topic.to_owned(), payload.into());
        message.qos = qos;
        message.retain = retain;
        self.publish_message(message)
    }

    /// Publishes a message with MQTT 5 properties.
    pub fn publish_message(&self, message: Publish) -> Completion<Result<(), MqttError>> {
        let token = self.driver.call(|m, now| m.publish(message, now));
        self.await_token(token, |_| ())
    }

    /// Answers the [`ClientEvent::AuthChallenge`] of `attempt` (AUTH 0x18 with `data`).
    pub fn answer_auth(&self, attempt: u32, data: Bytes) {
        self.driver.with(|m, now| m.answer_auth(attempt, data, now));
    }

    /// Gives up the challenge of `attempt`: that connection attempt fails as refused.
    pub fn fail_auth(&self, attempt: u32) {
        self.driver.with(|m, now| m.fail_auth(attempt, now));
    }

    /// Ends the client: DISCONNECT (so the broker discards the will), close the socket, fail
    /// whatever is pending with `CLIENT_ENDED`.
    pub fn disconnect(&self) {
        self.driver.with(|m, now| m.disconnect(now));
    }

    /// Ends the client gracefully: outgoing QoS 1/2 messages still in flight get up to
    /// `timeout_ms` to be acknowledged (their completions resolve as usual), then as
    /// [`disconnect`](Self::disconnect). New operations fail with `CLIENT_ENDED` meanwhile.
    pub fn end_gracefully(&self, timeout_ms: u32) {
        self.driver.with(|m, now| m.end_gracefully(timeout_ms, now));
    }

    /// Closes the WebSocket without a DISCONNECT, exactly as a network failure would: the
    /// broker publishes the will, and the client reconnects if enabled. For tests and demos.
    #[doc(hidden)]
    pub fn drop_connection(&self) {
        self.driver.drop_socket();
    }

    /// A completion for `token`, mapping success with `map`. The engine call was made without
    /// pumping, so even an immediate completion (QoS 0) is delivered after registration.
    fn await_token<T: 'static>(
        &self,
        token: Result<Token, MqttError>,
        map: impl FnOnce(Done) -> T + 'static,
    ) -> Completion<Result<T, MqttError>> {
        let out = Completion::pending();
        match token {
            Ok(token) => {
                let target = Completion(out.0.clone());
                let reply: Reply = Box::new(move |r| target.complete(r.map(map)));
                self.hooks.replies.borrow_mut().push(token, reply);
            }
            Err(e) => out.complete(Err(e)),
        }
        self.driver.pump();
        out
    }
}

fn invalid(e: impl core::fmt::Display) -> MqttError {
    MqttError::new(ErrorKind::InvalidArgument, e.to_string())
}

/// A stream of [`ClientEvent`]s; ends after [`ClientEvent::Ended`].
pub struct EventStream(Rc<RefCell<StreamState>>);

/// Buffered events, the waiting task, and whether the client has ended.
type StreamState = (VecDeque<ClientEvent>, Option<Waker>, bool);

impl core::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("EventStream")
    }
}

impl Stream for EventStream {
    type Item = ClientEvent;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        let mut s = self.0.borrow_mut();
        match s.0.pop_front() {
            Some(event) => Poll::Ready(Some(event)),
            None if s.2 => Poll::Ready(None),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
