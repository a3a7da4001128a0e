//! The app's hooks: the gateway's config, a ticking clock, the history that fills trails on
//! sign-in, and a per-frame callback (the live feed is in [`super::feed`]). Each effect returns
//! its cleanup (dropping a timer or a frame loop, or dropping a late answer).

use std::cell::Cell;
use std::rc::Rc;

use serde::Deserialize;
use yew::prelude::*;

use super::browser::{fetch_text, fetch_text_as, now_ms, FrameLoop, Interval};
use super::config::WebConfig;
use super::feed::FeedTarget;
use crate::model::topic::LOCATION_FILTER;
use crate::model::{Action, Incoming, PetsState};

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

/// One entry of `GET /api/v1/history`.
#[derive(Debug, Deserialize)]
struct HistoryEntry {
    topic: String,
    payload: String,
    payload_encoding: String,
    timestamp_ms: f64,
}

/// Once the broker has accepted the feed's connection to a new target: fills the trails from
/// the gateway's history of `pets/+/location`, if the gateway keeps one, asking as the
/// signed-in user (the gateway answers with what that user may read). Waiting for the CONNACK
/// means the credentials are known to be good before they go to the REST API.
#[hook]
pub(crate) fn use_history(
    config: Option<Rc<WebConfig>>,
    target: Option<FeedTarget>,
    accepted: bool,
    dispatcher: UseReducerDispatcher<PetsState>,
) {
    let has_history =
        config.is_some_and(|c| c.history_filters.iter().any(|f| f == LOCATION_FILTER));
    let wanted = target.filter(|_| has_history && accepted);
    use_effect_with(wanted, move |wanted| {
        // Set by the cleanup: an answer for a user who has signed out since is dropped.
        let stale = Rc::new(Cell::new(false));
        if let Some(target) = wanted.clone() {
            let stale = Rc::clone(&stale);
            wasm_bindgen_futures::spawn_local(async move {
                let url = "api/v1/history?filter=pets%2F%2B%2Flocation&limit=100";
                let authorization = target.credentials.as_ref().map(|c| c.basic_auth());
                let entries = match fetch_text_as(url, authorization.as_deref()).await {
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
                if !stale.get() {
                    dispatcher.dispatch(Action::History(messages));
                }
            });
        }
        move || stale.set(true)
    });
}
