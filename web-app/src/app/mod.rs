//! The Yew app: the top-level component, which owns the state and wires the hooks (config,
//! session, live feed, history, clock) to the map, the side panel and the sign-in form.
//!
//! When `/config.json` says `auth_required`, nothing connects until the user signs in; the
//! gateway then delivers only what that user may read, so the map shows only their pets.
//! Signing out (or a refused sign-in) drops the connection and every pet it brought.

mod alerts;
mod basemap;
mod browser;
mod canvas;
mod config;
mod feed;
mod fence_editor;
mod hooks;
mod leaflet;
mod map_draw;
mod map_pane;
mod map_probe;
mod map_view;
mod mqtt;
mod panel;
mod pet_dot;
mod pet_draw;
mod pet_list;
mod pet_row;
mod projection;
mod sign_in;
mod status_bar;

use std::cell::RefCell;
use std::rc::Rc;

use yew::prelude::*;

use self::alerts::AlertList;
use self::browser::perf_now;
use self::feed::{use_feed, FeedTarget};
use self::hooks::{use_clock, use_config, use_frame, use_history};
use self::map_pane::{MapHandle, MapPane};
use self::panel::Panel;
use self::sign_in::{SignIn, UserMenu};
use self::status_bar::StatusBar;
use crate::model::{Action, Credentials, PetsState, Refusal, Session, SessionAction};

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
    let session = use_session(config.as_deref());
    let pets = use_reducer(PetsState::default);
    let selected = use_state_eq(|| None::<String>);
    let map = use_memo((), |()| MapHandle(Rc::new(RefCell::new(None))));
    let target = config
        .as_ref()
        .filter(|_| session.connects())
        .map(|config| FeedTarget {
            url: config.broker_url(),
            credentials: session.credentials(),
        });
    let on_refused = {
        let session = session.dispatcher();
        Callback::from(move |refusal: Refusal| session.dispatch(SessionAction::Refused(refusal)))
    };
    let feed = use_feed(target.clone(), pets.dispatcher(), on_refused);
    use_history(config.clone(), target, feed.accepted, pets.dispatcher());
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
        let pump = feed.pump.clone();
        use_frame(Rc::new(move |ts| {
            // The messages first: the map then draws them in this same frame.
            pump.run();
            map.with(|view| view.animate(ts));
        }));
    }
    let on_select = {
        let selected = selected.setter();
        Callback::from(move |id: String| selected.set(Some(id)))
    };
    let on_dismiss = {
        let dispatcher = pets.dispatcher();
        Callback::from(move |id: String| dispatcher.dispatch(Action::DismissAlert(id)))
    };
    let on_sign_in = {
        let session = session.dispatcher();
        Callback::from(move |credentials: Credentials| {
            session.dispatch(SessionAction::SignIn(credentials));
        })
    };
    let on_sign_out = {
        let (session, selected) = (session.dispatcher(), selected.setter());
        Callback::from(move |()| {
            selected.set(None);
            session.dispatch(SessionAction::SignOut);
        })
    };
    let sign_in = match &*session {
        Session::SignedOut { error } => Some((error.clone(), false)),
        // The form stays up, busy, until the gateway accepts the user.
        Session::SignedIn(_) if !feed.accepted => Some((None, true)),
        Session::Loading | Session::Open | Session::SignedIn(_) => None,
    };
    let user = match &*session {
        Session::SignedIn(credentials) if feed.accepted => {
            Some(AttrValue::from(credentials.username.clone()))
        }
        _ => None,
    };
    let online = pets.pets.values().filter(|pet| pet.is_online()).count();
    html! {
        <div class="app">
            <header class="topbar">
                <h1 class="brand">{ "Aviary" }<span class="brand-sub">{ " · pets live" }</span></h1>
                <StatusBar
                    state={feed.state}
                    rate={feed.rate}
                    total={feed.total}
                    pets={pets.pets.len()}
                    online={online}
                    now={now}
                />
                if let Some(username) = user {
                    <UserMenu {username} on_sign_out={on_sign_out} />
                }
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
                    pets={PetsRef(pets.clone())}
                    selected={(*selected).clone()}
                    now={now}
                    on_select={on_select}
                    client={feed.client.clone()}
                />
            </main>
            if let Some((error, busy)) = sign_in {
                <SignIn {error} {busy} on_sign_in={on_sign_in} />
            }
        </div>
    }
}

/// The pets' state for props, compared by version: every change bumps it, so comparing it
/// is enough (and the derived comparison would walk every pet).
#[derive(Clone)]
pub(crate) struct PetsRef(pub(crate) UseReducerHandle<PetsState>);

impl PartialEq for PetsRef {
    fn eq(&self, other: &Self) -> bool {
        (self.0.version, self.0.epoch) == (other.0.version, other.0.epoch)
    }
}

impl std::fmt::Debug for PetsRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PetsRef")
            .field("version", &self.0.version)
            .finish_non_exhaustive()
    }
}

/// The session, configured once `/config.json` is in.
#[hook]
fn use_session(config: Option<&config::WebConfig>) -> UseReducerHandle<Session> {
    let session = use_reducer(|| Session::Loading);
    let auth_required = config.map(|c| c.auth_required);
    {
        let session = session.dispatcher();
        use_effect_with(auth_required, move |auth_required| {
            if let Some(auth_required) = *auth_required {
                session.dispatch(SessionAction::Configured { auth_required });
            }
        });
    }
    session
}
