//! The side panel: a search box (by name or id; Enter selects the best match), the list of
//! pets (virtualised, see [`super::pet_list`]), and the selected pet's safe-zone editor.
//! Clicking a row centres the map on the pet and follows it.

use std::rc::Rc;

use web_sys::HtmlInputElement;
use yew::prelude::*;

use super::feed::MqttHandle;
use super::fence_editor::FenceEditor;
use super::pet_list::{IdList, PetList};
use super::pet_row::PetRef;
use super::PetsRef;
use crate::model::search::Query;

/// Props of [`Panel`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct PanelProps {
    /// The pets.
    pub(crate) pets: PetsRef,
    /// The selected pet.
    pub(crate) selected: Option<String>,
    /// The clock, ms since the epoch.
    pub(crate) now: f64,
    /// A pet was clicked.
    pub(crate) on_select: Callback<String>,
    /// The client, to publish safe zones with.
    pub(crate) client: Option<MqttHandle>,
}

/// The panel.
#[function_component(Panel)]
pub(crate) fn panel(props: &PanelProps) -> Html {
    let query = use_state_eq(Query::default);
    let state = &props.pets.0;
    // Filtering ten thousand pets is done again only when the query, the set of pets or a
    // name changes, not for every batch of fixes.
    let ids = {
        let state = props.pets.clone();
        use_memo(
            (
                (*query).clone(),
                IdList(Rc::clone(&state.0.order)),
                state.0.renames,
            ),
            move |(query, order, _)| {
                if query.is_empty() {
                    IdList(Rc::clone(&order.0))
                } else {
                    IdList(Rc::new(query.filter(&state.0)))
                }
            },
        )
    };
    let oninput = {
        let query = query.setter();
        Callback::from(move |e: InputEvent| {
            let input: HtmlInputElement = e.target_unchecked_into();
            query.set(Query::new(&input.value()));
        })
    };
    let onkeydown = {
        let (ids, on_select) = (ids.clone(), props.on_select.clone());
        Callback::from(move |e: KeyboardEvent| {
            if e.key() == "Enter" {
                if let Some(first) = ids.0.first() {
                    on_select.emit(first.clone());
                }
            }
        })
    };
    let selected_pet = props.selected.as_deref().and_then(|id| state.pets.get(id));
    let total = state.pets.len();
    html! {
        <aside class="panel">
            <div class="panel-head">
                <h2 class="panel-title">{ "Pets" }</h2>
                <input
                    class="pet-search"
                    type="search"
                    name="pet-search"
                    placeholder="Find a pet by name or id"
                    aria-label="Find a pet by name or id"
                    autocomplete="off"
                    {oninput}
                    {onkeydown}
                />
                if !query.is_empty() {
                    <p class="search-count" data-matches={ids.0.len().to_string()}>
                        { format!("{} of {} pets", ids.0.len(), total) }
                    </p>
                }
            </div>
            if total == 0 {
                <p class="empty">{ "Waiting for trackers… (pets/+/location)" }</p>
            }
            <PetList
                ids={(*ids).clone()}
                pets={props.pets.clone()}
                selected={props.selected.clone()}
                now={props.now}
                on_select={props.on_select.clone()}
            />
            if let Some(pet) = selected_pet {
                <FenceEditor key={pet.id.clone()} pet={PetRef(Rc::clone(pet))} client={props.client.clone()} />
            }
        </aside>
    }
}
