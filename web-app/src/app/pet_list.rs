//! The panel's list of pets, virtualised: only the rows in (and just around) the visible part
//! of the list are in the DOM, placed over a spacer as tall as the whole list, so ten thousand
//! pets cost the DOM a few dozen rows. The list element says how many pets it holds
//! (`data-total`) and which is its first rendered row (`data-first`).

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use web_sys::HtmlElement;
use yew::prelude::*;

use super::browser;
use super::pet_row::{PetRef, PetRow, ROW_PX};
use super::PetsRef;

/// Rows rendered above and below the visible ones, so a fast scroll rarely shows a gap.
const OVERSCAN: usize = 8;
/// Rows assumed visible before the list has been measured.
const FIRST_GUESS: usize = 24;

/// Pet ids in list order, compared by identity (a new search or a new pet makes a new list).
#[derive(Debug, Clone)]
pub(crate) struct IdList(pub(crate) Rc<Vec<String>>);

impl PartialEq for IdList {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

/// Props of [`PetList`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct PetListProps {
    /// The ids to list, in order.
    pub(crate) ids: IdList,
    /// The pets, to look the ids up in.
    pub(crate) pets: PetsRef,
    pub(crate) selected: Option<String>,
    /// The clock, ms since the epoch.
    pub(crate) now: f64,
    pub(crate) on_select: Callback<String>,
}

/// The rows in view: first row index and how many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    first: usize,
    count: usize,
}

impl Window {
    /// The rows to render for a viewport scrolled to `top` and `height` pixels tall.
    fn of(top: f64, height: f64) -> Self {
        let first = (top / ROW_PX).floor().max(0.0) as usize;
        let visible = (height / ROW_PX).ceil().max(1.0) as usize;
        Self {
            first: first.saturating_sub(OVERSCAN),
            count: visible + 2 * OVERSCAN,
        }
    }
}

/// The list.
#[function_component(PetList)]
pub(crate) fn pet_list(props: &PetListProps) -> Html {
    let viewport = use_node_ref();
    let window = use_state_eq(|| Window {
        first: 0,
        count: FIRST_GUESS + 2 * OVERSCAN,
    });
    let measure = {
        let (viewport, window) = (viewport.clone(), window.setter());
        move || {
            if let Some(el) = viewport.cast::<HtmlElement>() {
                window.set(Window::of(
                    f64::from(el.scroll_top()),
                    f64::from(el.client_height()),
                ));
            }
        }
    };
    {
        // Measured once mounted, and again when the window (so maybe the list) is resized.
        let measure = measure.clone();
        use_effect_with((), move |()| {
            measure();
            let on_resize = Closure::<dyn FnMut()>::new(measure);
            let handler = on_resize.as_ref().unchecked_ref();
            let _ = browser::window().add_event_listener_with_callback("resize", handler);
            move || {
                let handler = on_resize.as_ref().unchecked_ref();
                let _ = browser::window().remove_event_listener_with_callback("resize", handler);
            }
        });
    }
    use_scroll_to_selected(&viewport, props);
    let onscroll = Callback::from(move |_: Event| measure());
    let ids = &props.ids.0;
    let end = (window.first + window.count).min(ids.len());
    let first = window.first.min(end);
    let now_s = (props.now / 1000.0).floor() as u64;
    let pets = &props.pets.0.pets;
    html! {
        <div class="pet-scroll" ref={viewport} {onscroll}>
            <div class="pet-spacer" style={format!("height:{}px", ids.len() as f64 * ROW_PX)}>
                <ul
                    class="pet-list"
                    style={format!("transform:translateY({}px)", first as f64 * ROW_PX)}
                    data-total={ids.len().to_string()}
                    data-first={first.to_string()}
                >
                    { for ids[first..end].iter().filter_map(|id| pets.get(id.as_str())).map(|pet| html! {
                        <PetRow
                            key={pet.id.clone()}
                            pet={PetRef(Rc::clone(pet))}
                            now_s={now_s}
                            selected={props.selected.as_deref() == Some(pet.id.as_str())}
                            on_select={props.on_select.clone()}
                        />
                    }) }
                </ul>
            </div>
        </div>
    }
}

/// When the selection changes (a click on the map, or Enter in the search box), scrolls the
/// list so the selected pet's row is in view.
#[hook]
fn use_scroll_to_selected(viewport: &NodeRef, props: &PetListProps) {
    let (viewport, ids) = (viewport.clone(), Rc::clone(&props.ids.0));
    use_effect_with(props.selected.clone(), move |selected| {
        let index = selected
            .as_ref()
            .and_then(|id| ids.iter().position(|other| other == id));
        let (Some(index), Some(el)) = (index, viewport.cast::<HtmlElement>()) else {
            return;
        };
        let top = index as f64 * ROW_PX;
        let (scroll, height) = (f64::from(el.scroll_top()), f64::from(el.client_height()));
        if top < scroll || top + ROW_PX > scroll + height {
            el.set_scroll_top((top - height / 3.0).max(0.0) as i32);
        }
    });
}
