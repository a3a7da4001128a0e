//! The Yew app: the top-level component, which owns the state and wires the hooks (config,
//! live feed, history, clock) to the map and the side panel.

mod alerts;
mod basemap;
mod browser;
mod config;
mod fence_editor;
mod hooks;
mod leaflet;
mod map_pane;
mod map_view;
mod mqtt;
mod panel;
mod status_bar;

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use self::alerts::AlertList;
use self::browser::perf_now;
use self::hooks::{use_clock, use_config, use_feed, use_frame, use_history};
use self::map_pane::{MapHandle, MapPane};
use self::panel::{Panel, PetList};
use self::status_bar::StatusBar;
use crate::model::{Action, PetsState};

/// Mounts the app on `#app` (or the body).
pub(crate) fn start() {
    let root = browser::window()
        .document()
        .and_then(|doc| doc.get_element_by_id("app"));
    match root {
        Some(root) => yew::Renderer::<App>::with_root(root).render(),
        None => yew::Renderer::<App>::new().render(),
    };
}

/// The whole page.
#[function_component(App)]
fn app() -> Html {
    let config = use_config();
    let pets = use_reducer(PetsState::default);
    let selected = use_state_eq(|| None::<String>);
    let map = use_memo((), |()| MapHandle(Rc::new(RefCell::new(None))));
    let url = config.as_ref().map(|c| c.broker_url());
    let feed = use_feed(url, pets.dispatcher());
    use_history(config.clone(), pets.dispatcher());
    let now = use_clock(1_000);
    {
        let (map, pets) = (Rc::clone(&map), pets.clone());
        use_effect_with(pets.version, move |_| {
            map.with(|view| view.sync(&pets, perf_now()))
        });
    }
    {
        let map = Rc::clone(&map);
        use_effect_with((*selected).clone(), move |id| {
            map.with(|view| view.select(id.as_deref()))
        });
    }
    {
        let map = Rc::clone(&map);
        use_frame(Rc::new(move |ts| map.with(|view| view.animate(ts))));
    }
    let on_select = {
        let selected = selected.setter();
        Callback::from(move |id: String| selected.set(Some(id)))
    };
    let on_dismiss = {
        let dispatcher = pets.dispatcher();
        Callback::from(move |id: String| dispatcher.dispatch(Action::DismissAlert(id)))
    };
    let sorted = Rc::new(pets.sorted());
    let online = sorted.iter().filter(|pet| pet.is_online()).count();
    html! {
        <div class="app">
            <header class="topbar">
                <h1 class="brand">{ "Aviary" }<span class="brand-sub">{ " · pets live" }</span></h1>
                <StatusBar
                    state={feed.state}
                    rate={feed.rate}
                    total={feed.total}
                    pets={sorted.len()}
                    online={online}
                    now={now}
                />
            </header>
            <main class="main">
                <section class="map-wrap">
                    <MapPane handle={(*map).clone()} config={config.clone()} on_select={on_select.clone()} />
                    <AlertList
                        alerts={Rc::new(pets.active_alerts().cloned().collect::<Vec<_>>())}
                        now={now}
                        on_select={on_select.clone()}
                        on_dismiss={on_dismiss}
                    />
                </section>
                <Panel
                    pets={PetList(sorted)}
                    selected={(*selected).clone()}
                    now={now}
                    on_select={on_select}
                    client={feed.client.clone()}
                />
            </main>
        </div>
    }
}
