//! One pet in the panel's list: status, last-seen age, activity and safe-zone state, in a row
//! of fixed height (the list is virtualised: it places rows by index). Rows carry `data-*`
//! attributes (id, online, outside, zone) that the end-to-end tests read; the position and
//! trail are on the map (see `map_probe`).

use std::rc::Rc;

use yew::prelude::*;

use crate::format;
use crate::model::Pet;

/// A row's height in CSS pixels; `style.css` gives `.pet-row` the same.
pub(crate) const ROW_PX: f64 = 52.0;

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
    name: Option<&'a str>,
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
        name: pet.name.as_deref(),
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
            <span class="pet-name">{ pet.label() }</span>
            <span class="pet-status">{ if online { "online" } else { "offline" } }</span>
            <span class="pet-meta">
                <span class="pet-seen">
                    { pet.last_seen_ms.map(|t| format::ago(now_ms, t)).unwrap_or_else(|| "never".to_owned()) }
                </span>
                if let Some(activity) = pet.activity {
                    <span class="pet-activity">
                        { format!(" · {} steps · {} kcal", format::count(activity.steps), format::count(activity.calories)) }
                    </span>
                }
                if outside {
                    <span class="badge-outside">{ " · outside safe zone" }</span>
                }
            </span>
        </li>
    }
}
