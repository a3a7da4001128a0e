//! What the canvases show, for tests and tools (pixels on a canvas have no DOM to query):
//! the map's element carries `data-pets` (pets placed), `data-markers` (markers drawn) and
//! `data-clusters` (cluster bubbles drawn) after every frame, and the page gets
//! `aviaryPet(id)` (where and how a pet is drawn), `aviaryPetIds()` (every pet on the map),
//! `aviaryClusters()` (the bubbles drawn: `{x, y}` in container pixels) and `aviaryDraws`
//! (how many marker draw passes ran, for `perf.mjs` to report next to frames a second; a
//! pass repaints only the markers whose pixels changed, so it may paint nothing).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use js_sys::{Array, Reflect};
use wasm_bindgen::prelude::*;

use super::leaflet::{obj, Map};
use super::map_draw::{Frame, Target};
use super::map_view::MapView;
use super::projection::Projection;

/// Counts a draw, and updates the map element's counts when they changed.
pub(crate) fn publish(map: &Map, old: &Frame, new: &Frame) {
    thread_local!(static DRAWS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) });
    let draws = DRAWS.with(|d| {
        d.set(d.get().wrapping_add(1));
        d.get()
    });
    let _ = Reflect::set(&js_sys::global(), &"aviaryDraws".into(), &draws.into());
    let container = map.get_container();
    let counts = [
        ("data-pets", old.placed, new.placed),
        ("data-markers", old.markers, new.markers),
        ("data-clusters", old.clusters, new.clusters),
    ];
    for (name, before, now) in counts {
        if before != now || container.get_attribute(name).is_none() {
            let _ = container.set_attribute(name, &now.to_string());
        }
    }
}

/// Defines `aviaryPet` and `aviaryPetIds` on the page, reading `view` when called.
pub(crate) fn install(view: &Rc<RefCell<Option<MapView>>>) {
    let pet = {
        let weak = Rc::downgrade(view);
        Closure::<dyn Fn(String) -> JsValue>::new(move |id: String| {
            with_view(&weak, |view| describe(view, &id)).unwrap_or(JsValue::NULL)
        })
    };
    let ids = {
        let weak = Rc::downgrade(view);
        Closure::<dyn Fn() -> JsValue>::new(move || {
            with_view(&weak, |view| {
                view.pets
                    .keys()
                    .map(|id| JsValue::from_str(id))
                    .collect::<Array>()
                    .into()
            })
            .unwrap_or_else(|| Array::new().into())
        })
    };
    let clusters = {
        let weak = Rc::downgrade(view);
        Closure::<dyn Fn() -> JsValue>::new(move || {
            with_view(&weak, |view| {
                view.frame
                    .targets
                    .iter()
                    .filter_map(|target| match target {
                        Target::Cluster { x, y, .. } => {
                            Some(obj(&[("x", (*x).into()), ("y", (*y).into())]))
                        }
                        Target::Pet { .. } => None,
                    })
                    .collect::<Array>()
                    .into()
            })
            .unwrap_or_else(|| Array::new().into())
        })
    };
    let global = js_sys::global();
    let _ = Reflect::set(&global, &"aviaryClusters".into(), &clusters.into_js_value());
    let _ = Reflect::set(&global, &"aviaryPet".into(), &pet.into_js_value());
    let _ = Reflect::set(&global, &"aviaryPetIds".into(), &ids.into_js_value());
}

fn with_view<T>(weak: &Weak<RefCell<Option<MapView>>>, f: impl FnOnce(&MapView) -> T) -> Option<T> {
    let view = weak.upgrade()?;
    let view = view.try_borrow().ok()?;
    view.as_ref().map(f)
}

/// `{id, lat, lng, x, y, drawn, online, outside, selected, trailLen}`: `lat`/`lng` is the
/// latest fix, `x`/`y` where the marker is drawn now (container pixels), `drawn` whether the
/// last frame drew its marker (not clustered, not off screen).
fn describe(view: &MapView, id: &str) -> JsValue {
    let Some(dot) = view.pets.get(id) else {
        return JsValue::NULL;
    };
    let (x, y) = Projection::of(view.map()).px(dot.shown);
    let drawn = view
        .frame
        .targets
        .iter()
        .any(|t| matches!(t, Target::Pet { id: drawn, .. } if **drawn == *id));
    obj(&[
        ("id", id.into()),
        ("lat", dot.target.lat.into()),
        ("lng", dot.target.lng.into()),
        ("x", x.into()),
        ("y", y.into()),
        ("drawn", drawn.into()),
        ("online", dot.pet.is_online().into()),
        ("outside", dot.pet.is_outside().into()),
        ("selected", (view.selected.as_deref() == Some(id)).into()),
        ("trailLen", (dot.pet.trail.len() as u32).into()),
    ])
}
