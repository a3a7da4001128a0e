//! The side panel: one row per pet with its status, last-seen age, activity and safe-zone
//! state; clicking a row centres the map on the pet and follows it, and opens its safe-zone
//! editor. Rows carry `data-*` attributes (id, online, outside, zone) that the end-to-end
//! tests read; the position and trail are on the marker (see `map_view`).

use std::rc::Rc;

use yew::prelude::*;

use super::feed::MqttHandle;
use super::fence_editor::FenceEditor;
use crate::format;
use crate::model::Pet;

/// Props of [`Panel`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct PanelProps {
    /// Pets in display order.
    pub(crate) pets: PetList,
    /// The selected pet.
    pub(crate) selected: Option<String>,
    /// The clock, ms since the epoch.
    pub(crate) now: f64,
    /// A pet was clicked.
    pub(crate) on_select: Callback<String>,
    /// The client, to publish safe zones with.
    pub(crate) client: Option<MqttHandle>,
}

/// The pets in display order, compared by identity (a new state makes a new list).
#[derive(Debug, Clone)]
pub(crate) struct PetList(pub(crate) Rc<Vec<Rc<Pet>>>);

impl PartialEq for PetList {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// The list of pets.
#[function_component(Panel)]
pub(crate) fn panel(props: &PanelProps) -> Html {
    let pets = &props.pets.0;
    let selected_pet = props
        .selected
        .as_ref()
        .and_then(|id| pets.iter().find(|pet| &pet.id == id));
    html! {
        <aside class="panel">
            <h2 class="panel-title">{ "Pets" }</h2>
            if pets.is_empty() {
                <p class="empty">{ "Waiting for trackers… (pets/+/location)" }</p>
            }
            <ul class="pet-list">
                { for pets.iter().map(|pet| html! {
                    <PetRow
                        key={pet.id.clone()}
                        pet={PetRef(Rc::clone(pet))}
                        now_s={(props.now / 1000.0).floor() as u64}
                        selected={props.selected.as_deref() == Some(pet.id.as_str())}
                        on_select={props.on_select.clone()}
                    />
                }) }
            </ul>
            if let Some(pet) = selected_pet {
                <FenceEditor key={pet.id.clone()} pet={PetRef(Rc::clone(pet))} client={props.client.clone()} />
            }
        </aside>
    }
}

/// A pet, compared by identity: the state replaces a pet's `Rc` whenever it changes.
#[derive(Debug, Clone)]
pub(crate) struct PetRef(pub(crate) Rc<Pet>);

impl PartialEq for PetRef {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Props of [`PetRow`].
#[derive(Debug, Properties)]
pub(crate) struct PetRowProps {
    pub(crate) pet: PetRef,
    /// The clock in whole seconds, so a row re-renders once a second, not once a frame.
    pub(crate) now_s: u64,
    pub(crate) selected: bool,
    pub(crate) on_select: Callback<String>,
}

impl PartialEq for PetRowProps {
    /// Equal when the row would look the same: a new fix alone (several a second under load)
    /// does not re-render the row; its position is on the map, and its age moves with `now_s`.
    fn eq(&self, other: &Self) -> bool {
        self.now_s == other.now_s
            && self.selected == other.selected
            && self.on_select == other.on_select
            && row_view(&self.pet.0) == row_view(&other.pet.0)
    }
}

/// What a row shows of a pet.
#[derive(Debug, PartialEq, Eq)]
struct RowView<'a> {
    id: &'a str,
    online: bool,
    outside: bool,
    /// In whole seconds.
    last_seen_s: Option<u64>,
    /// Steps and calories.
    activity: Option<(u64, u64)>,
    has_fence: bool,
}

fn row_view(pet: &Pet) -> RowView<'_> {
    RowView {
        id: &pet.id,
        online: pet.is_online(),
        outside: pet.is_outside(),
        last_seen_s: pet.last_seen_ms.map(|t| (t / 1000.0) as u64),
        activity: pet.activity.map(|a| (a.steps as u64, a.calories as u64)),
        has_fence: pet.geofence.is_some(),
    }
}

/// One pet in the list.
#[function_component(PetRow)]
pub(crate) fn pet_row(props: &PetRowProps) -> Html {
    let pet = &props.pet.0;
    let onclick = {
        let (id, on_select) = (pet.id.clone(), props.on_select.clone());
        Callback::from(move |_: MouseEvent| on_select.emit(id.clone()))
    };
    let online = pet.is_online();
    let outside = pet.is_outside();
    let now_ms = props.now_s as f64 * 1000.0;
    let class = classes!(
        "pet-row",
        (!online).then_some("offline"),
        outside.then_some("outside"),
        props.selected.then_some("selected"),
    );
    html! {
        <li
            class={class}
            onclick={onclick}
            data-pet-id={pet.id.clone()}
            data-online={online.to_string()}
            data-outside={outside.to_string()}
            data-selected={props.selected.to_string()}
            data-has-fence={pet.geofence.is_some().to_string()}
        >
            <span class="dot" aria-hidden="true"></span>
            <span class="pet-name">{ format!("Pet {}", pet.id) }</span>
            <span class="pet-status">{ if online { "online" } else { "offline" } }</span>
            <span class="pet-seen">
                { pet.last_seen_ms.map(|t| format::ago(now_ms, t)).unwrap_or_else(|| "never".to_owned()) }
            </span>
            if let Some(activity) = pet.activity {
                <span class="pet-activity">
                    { format!("{} steps · {} kcal", format::count(activity.steps), format::count(activity.calories)) }
                </span>
            }
            if outside {
                <span class="badge-outside">{ "outside safe zone" }</span>
            }
        </li>
    }
}
