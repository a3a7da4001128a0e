//! The app's hooks: the gateway's config, a ticking clock, the live MQTT feed coalesced per
//! animation frame, the history that fills trails on load, and a per-frame callback. Each
//! effect returns its cleanup (dropping a timer, a frame loop or the connection).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use serde::Deserialize;
use yew::prelude::*;

use super::browser::{fetch_text, now_ms, FrameLoop, Interval};
use super::config::WebConfig;
use super::mqtt::{ConnState, Mqtt};
use crate::model::topic::{LOCATION_FILTER, SUBSCRIPTIONS};
use crate::model::{Action, Incoming, PetsState};

/// Above this many buffered messages the feed dispatches at once instead of waiting for the
/// next frame (frames stop in a background tab, messages do not).
const MAX_BUFFERED: usize = 5_000;

/// `/config.json`, or the defaults if it cannot be had; `None` while loading.
#[hook]
pub(crate) fn use_config() -> Option<Rc<WebConfig>> {
    let config = use_state(|| None::<Rc<WebConfig>>);
    {
        let config = config.clone();
        use_effect_with((), move |()| {
            wasm_bindgen_futures::spawn_local(async move {
                let loaded = match fetch_text("config.json").await {
                    Ok(text) => serde_json::from_str(&text).unwrap_or_default(),
                    Err(_) => WebConfig::default(),
                };
                config.set(Some(Rc::new(loaded)));
            });
        });
    }
    (*config).clone()
}

/// The wall clock, updated every `period_ms`: re-renders the caller so ages ("12 s ago") and
/// countdowns move.
#[hook]
pub(crate) fn use_clock(period_ms: i32) -> f64 {
    let now = use_state(now_ms);
    {
        let now = now.clone();
        use_effect_with(period_ms, move |&period| {
            let interval = Interval::new(period, move || now.set(now_ms()));
            move || drop(interval)
        });
    }
    *now
}

/// Calls `on_frame(timestamp)` on every animation frame while the component lives (the latest
/// closure passed in each render).
#[hook]
pub(crate) fn use_frame(on_frame: Rc<dyn Fn(f64)>) {
    let current = use_mut_ref(|| None::<Rc<dyn Fn(f64)>>);
    *current.borrow_mut() = Some(on_frame);
    use_effect_with((), move |()| {
        let frames = FrameLoop::new(move |ts| {
            let f = current.borrow().clone();
            if let Some(f) = f {
                f(ts);
            }
        });
        move || drop(frames)
    });
}

/// The live connection as the UI sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Feed {
    /// Connection state.
    pub(crate) state: ConnState,
    /// Messages received in the last full second.
    pub(crate) rate: u64,
    /// Messages received since the page loaded.
    pub(crate) total: u64,
    /// The client, to publish with (`None` before the config is known).
    pub(crate) client: Option<MqttHandle>,
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

/// Connects to `url` (once known), subscribes to the pet topics, and feeds incoming messages
/// to `dispatcher` as one [`Action::Messages`] per animation frame, so a thousand messages a
/// second cost one state change and one render per frame.
#[hook]
pub(crate) fn use_feed(url: Option<String>, dispatcher: UseReducerDispatcher<PetsState>) -> Feed {
    let state = use_state_eq(|| ConnState::Connecting);
    let client = use_state(|| None::<MqttHandle>);
    let rate = use_state_eq(|| (0_u64, 0_u64));
    let inbox = use_memo((), |()| Inbox::default());
    {
        let (state, client, inbox, dispatcher) = (
            state.clone(),
            client.clone(),
            Rc::clone(&inbox),
            dispatcher.clone(),
        );
        use_effect_with(url, move |url| {
            let url = url.clone();
            let connection = url.map(|url| connect(&url, &inbox, dispatcher, state));
            client.set(connection.clone().map(MqttHandle));
            move || {
                if let Some(connection) = connection {
                    connection.disconnect();
                }
            }
        });
    }
    {
        let (inbox, rate) = (Rc::clone(&inbox), rate.clone());
        use_effect_with((), move |()| {
            let frames = FrameLoop::new({
                let inbox = Rc::clone(&inbox);
                move |_| flush(&inbox, &dispatcher)
            });
            let mut last_total = 0;
            let interval = Interval::new(1_000, move || {
                let total = inbox.total.get();
                rate.set((total - last_total, total));
                last_total = total;
            });
            move || drop((frames, interval))
        });
    }
    Feed {
        state: *state,
        rate: rate.0,
        total: rate.1,
        client: (*client).clone(),
    }
}

fn connect(
    url: &str,
    inbox: &Rc<Inbox>,
    dispatcher: UseReducerDispatcher<PetsState>,
    state: UseStateHandle<ConnState>,
) -> Rc<Mqtt> {
    let inbox = Rc::clone(inbox);
    let on_message = move |message: super::mqtt::Message| {
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
    let mqtt = Mqtt::connect(url, on_message, move |s| state.set(s));
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

/// One entry of `GET /api/v1/history`.
#[derive(Debug, Deserialize)]
struct HistoryEntry {
    topic: String,
    payload: String,
    payload_encoding: String,
    timestamp_ms: f64,
}

/// Once the config is known: fills the trails from the gateway's history of
/// `pets/+/location`, if the gateway keeps one.
#[hook]
pub(crate) fn use_history(
    config: Option<Rc<WebConfig>>,
    dispatcher: UseReducerDispatcher<PetsState>,
) {
    let has_history = config.map(|c| c.history_filters.iter().any(|f| f == LOCATION_FILTER));
    use_effect_with(has_history, move |has_history| {
        if *has_history == Some(true) {
            wasm_bindgen_futures::spawn_local(async move {
                let url = "api/v1/history?filter=pets%2F%2B%2Flocation&limit=100";
                let entries = match fetch_text(url).await {
                    Ok(text) => {
                        serde_json::from_str::<Vec<HistoryEntry>>(&text).unwrap_or_default()
                    }
                    Err(err) => {
                        web_sys::console::warn_1(&format!("history: {err}").into());
                        Vec::new()
                    }
                };
                let messages: Vec<Incoming> = entries
                    .into_iter()
                    .filter(|e| e.payload_encoding == "utf8")
                    .map(|e| Incoming {
                        topic: e.topic,
                        payload: e.payload.into_bytes(),
                        received_ms: e.timestamp_ms,
                    })
                    .collect();
                dispatcher.dispatch(Action::History(messages));
            });
        }
    });
}
