//! The map component: creates the Leaflet map on mount (with the offline base layer), adds
//! the configured tile layer when the config arrives, and hands the [`MapView`] to the app
//! through a shared [`MapHandle`]. Leaflet, not Yew, owns everything inside the map's element.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;
use yew::prelude::*;

use super::basemap;
use super::browser::js_error;
use super::config::WebConfig;
use super::leaflet::{self, latlng, obj};
use super::map_probe;
use super::map_view::MapView;
use crate::model::LatLng;

/// The map, once mounted, shared between the map component and the app.
#[derive(Debug, Clone)]
pub(crate) struct MapHandle(pub(crate) Rc<RefCell<Option<MapView>>>);

impl PartialEq for MapHandle {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl MapHandle {
    /// Runs `f` on the map view if it is mounted (and not in use further up the stack).
    pub(crate) fn with(&self, f: impl FnOnce(&mut MapView)) {
        if let Ok(mut view) = self.0.try_borrow_mut() {
            if let Some(view) = view.as_mut() {
                f(view);
            }
        }
    }
}

/// Props of [`MapPane`].
#[derive(Debug, Properties, PartialEq)]
pub(crate) struct MapPaneProps {
    /// Where the mounted map goes.
    pub(crate) handle: MapHandle,
    /// The gateway's config: the tile layer.
    pub(crate) config: Option<Rc<WebConfig>>,
    /// A marker was clicked.
    pub(crate) on_select: Callback<String>,
}

/// The map.
#[function_component(MapPane)]
pub(crate) fn map_pane(props: &MapPaneProps) -> Html {
    let node = use_node_ref();
    {
        let (node, handle, on_select) =
            (node.clone(), props.handle.clone(), props.on_select.clone());
        use_effect_with((), move |()| {
            let basemap = mount(&node, &handle, on_select);
            move || {
                drop(basemap);
                if let Some(mut view) = handle.0.borrow_mut().take() {
                    view.remove();
                    view.map().remove_map();
                }
            }
        });
    }
    {
        let handle = props.handle.clone();
        use_effect_with(props.config.clone(), move |config| {
            let mut tiles = None;
            if let Some(config) = config {
                handle.with(|view| {
                    let options = obj(&[
                        ("attribution", config.tile_attribution.as_str().into()),
                        ("maxZoom", 19.into()),
                    ]);
                    tiles =
                        Some(leaflet::tile_layer(&config.tile_url, &options).add_to(view.map()));
                });
            }
            move || {
                if let Some(tiles) = tiles {
                    tiles.remove();
                }
            }
        });
    }
    if !leaflet::available() {
        return html! {
            <div class="map map-missing">
                { "Leaflet did not load (static/vendor/leaflet/leaflet.js): run `cargo xtask web`." }
            </div>
        };
    }
    html! { <div class="map" id="map" ref={node}></div> }
}

/// Creates the Leaflet map in the element and stores its view in `handle`.
fn mount(
    node: &NodeRef,
    handle: &MapHandle,
    on_select: Callback<String>,
) -> Option<basemap::Basemap> {
    if !leaflet::available() {
        return None;
    }
    let element = node.cast::<web_sys::HtmlElement>()?;
    let map = leaflet::new_map(
        &element,
        &obj(&[("worldCopyJump", true.into()), ("zoomSnap", 0.5.into())]),
    );
    map.set_view(&latlng(LatLng::new(30.0, 0.0)), 2.0, &obj(&[]));
    leaflet::scale_control(&obj(&[("imperial", false.into())])).add_to(&map);
    let basemap = basemap::add(&map);
    // For tests and the console: the map, to turn coordinates into pixels.
    let _ = js_sys::Reflect::set(
        &js_sys::global(),
        &JsValue::from_str("aviaryMap"),
        map.as_ref(),
    );
    let on_select: Rc<dyn Fn(String)> = Rc::new(move |id| on_select.emit(id));
    match MapView::new(map, on_select) {
        Ok(view) => *handle.0.borrow_mut() = Some(view),
        Err(err) => {
            web_sys::console::error_1(&format!("map: {}", js_error(&err)).into());
            return Some(basemap);
        }
    }
    MapView::watch_user(&handle.0);
    map_probe::install(&handle.0);
    Some(basemap)
}
