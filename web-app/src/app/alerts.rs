//! Safe-zone alerts over the map: one per pet outside its zone, until it returns or the user
//! closes it. Clicking an alert selects the pet.

use std::rc::Rc;

use yew::prelude::*;

use crate::format;
use crate::model::Alert;

/// At most this many alerts are shown (the newest); the rest are counted.
const MAX_SHOWN: usize = 3;

/// Props of [`AlertList`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct AlertListProps {
    pub(crate) alerts: Rc<Vec<Alert>>,
    /// The clock, ms since the epoch.
    pub(crate) now: f64,
    pub(crate) on_select: Callback<String>,
    pub(crate) on_dismiss: Callback<String>,
}

/// The alerts.
#[function_component(AlertList)]
pub(crate) fn alert_list(props: &AlertListProps) -> Html {
    if props.alerts.is_empty() {
        return html! {};
    }
    let hidden = props.alerts.len().saturating_sub(MAX_SHOWN);
    html! {
        <div class="alerts" role="alert">
            { for props.alerts.iter().skip(hidden).map(|alert| {
                let select = {
                    let (id, cb) = (alert.pet_id.clone(), props.on_select.clone());
                    Callback::from(move |_: MouseEvent| cb.emit(id.clone()))
                };
                let dismiss = {
                    let (id, cb) = (alert.pet_id.clone(), props.on_dismiss.clone());
                    Callback::from(move |e: MouseEvent| {
                        e.stop_propagation();
                        cb.emit(id.clone());
                    })
                };
                html! {
                    <div class="alert" key={alert.pet_id.clone()} data-alert-pet={alert.pet_id.clone()} onclick={select}>
                        <strong>{ format!("Pet {} left its safe zone", alert.pet_id) }</strong>
                        <span>{ format!(
                            " {} from the centre (zone {}), {}",
                            format::distance(alert.distance_m),
                            format::distance(alert.radius_m),
                            format::ago(props.now, alert.since_ms),
                        ) }</span>
                        <button class="close" title="Dismiss" onclick={dismiss}>{ "×" }</button>
                    </div>
                }
            }) }
            if hidden > 0 {
                <div class="alert alert-more">{ format!("and {hidden} more pets outside their safe zones") }</div>
            }
        </div>
    }
}
