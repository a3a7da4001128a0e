//! The base layer that needs no network: Natural Earth country outlines (`world-atlas`,
//! vendored by `cargo xtask web` as TopoJSON and turned into GeoJSON by topojson-client) over a
//! sea-coloured background, and a graticule whose spacing follows the zoom. Map tiles, when
//! they load, are drawn on top of it.

use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::browser::{fetch_text, js_error};
use super::leaflet::{self, latlngs, obj, Map, Polyline};
use crate::model::LatLng;

/// The outlines, relative to the page.
const COUNTRIES_URL: &str = "vendor/countries-50m.json";
/// The pane of the outlines: below the tiles (z-index 200) and everything else.
const PANE: &str = "basemap";
/// The pane of the graticule: above the outlines, still below the tiles.
const GRID_PANE: &str = "graticule";
/// Graticule spacings in degrees, finest first.
const STEPS: [f64; 16] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 45.0,
];

/// The graticule and the handler that redraws it; the outlines need no upkeep.
pub(crate) struct Basemap {
    _on_move: Closure<dyn FnMut(JsValue)>,
}

impl std::fmt::Debug for Basemap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Basemap").finish_non_exhaustive()
    }
}

/// Adds the base layer to `map` (the outlines arrive asynchronously).
pub(crate) fn add(map: &Map) -> Basemap {
    let _ = map.create_pane(PANE).set_attribute("style", "z-index: 150");
    let _ = map
        .create_pane(GRID_PANE)
        .set_attribute("style", "z-index: 160");
    let graticule = leaflet::new_polyline(
        &latlngs([]),
        &obj(&[
            ("pane", GRID_PANE.into()),
            ("interactive", false.into()),
            ("color", "#7f8c99".into()),
            ("weight", 0.6.into()),
            ("opacity", 0.55.into()),
            ("className", "graticule".into()),
        ]),
    );
    graticule.add_to(map);
    let graticule = Rc::new(graticule);
    let redraw = {
        let (map, graticule) = (map.clone(), Rc::clone(&graticule));
        move |_: JsValue| draw_graticule(&map, &graticule)
    };
    let on_move = Closure::<dyn FnMut(JsValue)>::new(redraw);
    map.on_event("moveend", on_move.as_ref().unchecked_ref());
    draw_graticule(map, &graticule);
    let map = map.clone();
    wasm_bindgen_futures::spawn_local(async move {
        if let Err(err) = add_outlines(&map).await {
            web_sys::console::warn_1(&format!("base map outlines: {err}").into());
        }
    });
    Basemap { _on_move: on_move }
}

async fn add_outlines(map: &Map) -> Result<(), String> {
    let text = fetch_text(COUNTRIES_URL).await?;
    let topology = js_sys::JSON::parse(&text).map_err(|e| js_error(&e))?;
    let objects = js_sys::Reflect::get(&topology, &"objects".into()).map_err(|e| js_error(&e))?;
    let countries =
        js_sys::Reflect::get(&objects, &"countries".into()).map_err(|e| js_error(&e))?;
    let geojson = leaflet::topo_feature(&topology, &countries).map_err(|e| js_error(&e))?;
    let style = obj(&[
        ("color", "#b8ab9b".into()),
        ("weight", 0.8.into()),
        ("fillColor", "#f2efe9".into()),
        ("fillOpacity", 1.into()),
    ]);
    let options = obj(&[
        ("pane", PANE.into()),
        ("interactive", false.into()),
        ("style", style),
        ("className", "land".into()),
    ]);
    leaflet::geo_json(&geojson, &options).add_to(map);
    // Tells tests (and anyone curious) that the offline base layer is drawn.
    let _ = map.get_container().set_attribute("data-basemap", "loaded");
    Ok(())
}

/// Redraws the graticule for the current view: about 4 to 10 lines across.
fn draw_graticule(map: &Map, graticule: &Polyline) {
    let bounds = map.get_bounds();
    let (south, north) = (bounds.south().max(-85.0), bounds.north().min(85.0));
    let (west, east) = (bounds.west().max(-180.0), bounds.east().min(180.0));
    let step = pick_step((east - west).max(north - south));
    let lines = js_sys::Array::new();
    let (s, n) = (floor_to(south, step), ceil_to(north, step));
    let (w, e) = (floor_to(west, step), ceil_to(east, step));
    let mut lng = w;
    while lng <= e {
        lines.push(&latlngs([LatLng::new(s, lng), LatLng::new(n, lng)]));
        lng += step;
    }
    let mut lat = s;
    while lat <= n {
        lines.push(&latlngs([LatLng::new(lat, w), LatLng::new(lat, e)]));
        lat += step;
    }
    graticule.set_lat_lngs(&lines);
}

/// The finest step that draws at most 10 lines over `span` degrees.
fn pick_step(span: f64) -> f64 {
    STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 10.0)
        .unwrap_or(STEPS[STEPS.len() - 1])
}

fn floor_to(value: f64, step: f64) -> f64 {
    (value / step).floor() * step
}

fn ceil_to(value: f64, step: f64) -> f64 {
    (value / step).ceil() * step
}
