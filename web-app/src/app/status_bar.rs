//! The connection state (connected, reconnecting with the backoff countdown, offline, not
//! connected while nobody is signed in), the message rate and the pet counts, in the top bar.

use yew::prelude::*;

use super::browser::now_ms;
use super::mqtt::ConnState;
use crate::format;

/// Props of [`StatusBar`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct StatusBarProps {
    pub(crate) state: ConnState,
    /// Messages in the last second.
    pub(crate) rate: u64,
    /// Messages since the page loaded.
    pub(crate) total: u64,
    pub(crate) pets: usize,
    pub(crate) online: usize,
    /// The clock, ms since the epoch (for the countdown).
    pub(crate) now: f64,
}

/// The status line.
#[function_component(StatusBar)]
pub(crate) fn status_bar(props: &StatusBarProps) -> Html {
    // `props.now` re-renders the bar every second, but when the state changes it may be up to a
    // second old: read the clock afresh, so a new countdown starts from the delay chosen.
    let now = props.now.max(now_ms());
    let (key, text) = match props.state {
        ConnState::Connecting => ("connecting", "Connecting…".to_owned()),
        ConnState::Connected => ("connected", "Connected".to_owned()),
        ConnState::Reconnecting {
            retry_at_ms: Some(at),
        } => (
            "reconnecting",
            format!("Reconnecting in {} s", format::seconds_until(now, at)),
        ),
        ConnState::Reconnecting { retry_at_ms: None } => {
            ("reconnecting", "Reconnecting…".to_owned())
        }
        ConnState::Offline => ("offline", "Offline".to_owned()),
        ConnState::Idle => ("idle", "Not connected".to_owned()),
    };
    html! {
        <div class="status">
            <span class={classes!("conn", key)} data-state={key} role="status">
                <span class="conn-dot" aria-hidden="true"></span>{ text }
            </span>
            <span class="rate" data-rate={props.rate.to_string()} title={format!("{} messages since the page loaded", props.total)}>
                { format!("{} msg/s", format::count(props.rate as f64)) }
            </span>
            <span class="counts">{ format!("{} pets · {} online", props.pets, props.online) }</span>
        </div>
    }
}
