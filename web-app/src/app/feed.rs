//! The live MQTT feed as a hook: connects to the gateway as the signed-in user (or
//! anonymously), subscribes to the pet topics, and buffers incoming messages until the app's
//! frame callback pumps them into the state ([`Pump`]), once per animation frame and just
//! before the map draws. When the target changes (sign-out, or sign-in as someone else) the
//! old connection goes, and with it every pet it brought.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use yew::prelude::*;

use super::browser::{now_ms, Interval};
use super::mqtt::{self, ConnState, Mqtt};
use crate::model::topic::SUBSCRIPTIONS;
use crate::model::{Action, Credentials, Incoming, PetsState, Refusal};

/// Above this many buffered messages the feed dispatches at once instead of waiting for the
/// next frame (frames stop in a background tab, messages do not).
const MAX_BUFFERED: usize = 5_000;

/// Where to connect, and as whom.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FeedTarget {
    /// The broker's WebSocket URL.
    pub(crate) url: String,
    /// The signed-in user; `None` connects anonymously.
    pub(crate) credentials: Option<Rc<Credentials>>,
}

/// The live connection as the UI sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Feed {
    /// Connection state.
    pub(crate) state: ConnState,
    /// The broker has accepted a connection to the current target (the sign-in worked).
    pub(crate) accepted: bool,
    /// Messages received in the last full second.
    pub(crate) rate: u64,
    /// Messages received since the page loaded.
    pub(crate) total: u64,
    /// The client, to publish with (`None` while not connecting).
    pub(crate) client: Option<MqttHandle>,
    /// Hands the buffered messages to the state.
    pub(crate) pump: Pump,
}

/// Dispatches the messages buffered since the last call as one [`Action::Messages`]: the app
/// calls it at the start of every animation frame, so the map's draw in that same frame shows
/// them (one frame loop for both, not one each).
#[derive(Clone)]
pub(crate) struct Pump(Rc<dyn Fn()>);

impl Pump {
    /// Dispatches what is buffered.
    pub(crate) fn run(&self) {
        (self.0)();
    }
}

impl PartialEq for Pump {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl std::fmt::Debug for Pump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pump")
    }
}

/// A shared client, compared by identity so it can sit in props.
#[derive(Debug, Clone)]
pub(crate) struct MqttHandle(pub(crate) Rc<Mqtt>);

impl PartialEq for MqttHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Messages waiting for the next frame, and a count of all of them.
#[derive(Debug, Default)]
struct Inbox {
    messages: RefCell<Vec<Incoming>>,
    total: Cell<u64>,
}

/// Connects to `target` (while there is one), subscribes to the pet topics, and buffers
/// incoming messages for [`Feed::pump`], so a thousand messages a second cost one state change
/// and one render per frame. A refused CONNACK goes to `on_refused`.
#[hook]
pub(crate) fn use_feed(
    target: Option<FeedTarget>,
    dispatcher: UseReducerDispatcher<PetsState>,
    on_refused: Callback<Refusal>,
) -> Feed {
    let state = use_state_eq(|| ConnState::Connecting);
    let accepted = use_state_eq(|| false);
    let client = use_state(|| None::<MqttHandle>);
    let rate = use_state_eq(|| (0_u64, 0_u64));
    let inbox = use_memo((), |()| Inbox::default());
    {
        let (state, accepted, client, inbox, dispatcher) = (
            state.clone(),
            accepted.clone(),
            client.clone(),
            Rc::clone(&inbox),
            dispatcher.clone(),
        );
        use_effect_with(target, move |target| {
            accepted.set(false);
            state.set(if target.is_some() {
                ConnState::Connecting
            } else {
                ConnState::Idle
            });
            let connection = target.as_ref().map(|target| {
                let on_state = move |s| {
                    if s == ConnState::Connected {
                        accepted.set(true);
                    }
                    state.set(s);
                };
                connect(target, &inbox, dispatcher.clone(), on_state, on_refused)
            });
            client.set(connection.clone().map(MqttHandle));
            move || {
                if let Some(connection) = connection {
                    connection.disconnect();
                    // What this connection brought leaves with it: messages not drawn yet,
                    // and the pets (the next user may not see them).
                    inbox.messages.borrow_mut().clear();
                    dispatcher.dispatch(Action::Clear);
                }
            }
        });
    }
    let pump = use_memo((), {
        let inbox = Rc::clone(&inbox);
        move |()| Pump(Rc::new(move || flush(&inbox, &dispatcher)))
    });
    {
        let (inbox, rate) = (Rc::clone(&inbox), rate.clone());
        use_effect_with((), move |()| {
            let mut last_total = 0;
            let interval = Interval::new(1_000, move || {
                let total = inbox.total.get();
                rate.set((total - last_total, total));
                last_total = total;
            });
            move || drop(interval)
        });
    }
    Feed {
        state: *state,
        accepted: *accepted,
        rate: rate.0,
        total: rate.1,
        client: (*client).clone(),
        pump: (*pump).clone(),
    }
}

fn connect(
    target: &FeedTarget,
    inbox: &Rc<Inbox>,
    dispatcher: UseReducerDispatcher<PetsState>,
    on_state: impl Fn(ConnState) + 'static,
    on_refused: Callback<Refusal>,
) -> Rc<Mqtt> {
    let inbox = Rc::clone(inbox);
    let on_message = move |message: mqtt::Message| {
        inbox.total.set(inbox.total.get() + 1);
        let full = {
            let mut messages = inbox.messages.borrow_mut();
            messages.push(Incoming {
                topic: message.topic,
                payload: message.payload,
                received_ms: now_ms(),
            });
            messages.len() >= MAX_BUFFERED
        };
        if full {
            flush(&inbox, &dispatcher);
        }
    };
    let mqtt = Mqtt::connect(
        &target.url,
        target.credentials.as_deref(),
        on_message,
        on_state,
        move |refusal| on_refused.emit(refusal),
    );
    for (filter, qos) in SUBSCRIPTIONS {
        mqtt.subscribe(filter, qos);
    }
    Rc::new(mqtt)
}

fn flush(inbox: &Inbox, dispatcher: &UseReducerDispatcher<PetsState>) {
    let batch = std::mem::take(&mut *inbox.messages.borrow_mut());
    if !batch.is_empty() {
        dispatcher.dispatch(Action::Messages(batch));
    }
}
