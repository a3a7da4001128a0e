//! The few parts of Leaflet (the global `L`, from `static/vendor/leaflet/leaflet.js`) and
//! topojson-client (the global `topojson`) the map uses, as wasm-bindgen bindings.
//!
//! Options are plain JS objects built with [`obj`]; positions are `[lat, lng]` arrays
//! ([`latlng`]), which Leaflet accepts wherever it takes a `LatLng`.

use js_sys::{Array, Function, Object, Reflect};
use wasm_bindgen::prelude::*;

use crate::model::LatLng;

#[wasm_bindgen]
extern "C" {
    /// `L.Map`.
    #[derive(Debug, Clone)]
    pub(crate) type Map;

    /// `L.map(element, options)`.
    #[wasm_bindgen(js_namespace = L, js_name = map)]
    pub(crate) fn new_map(element: &web_sys::HtmlElement, options: &JsValue) -> Map;
    #[wasm_bindgen(method, js_name = setView)]
    pub(crate) fn set_view(this: &Map, center: &JsValue, zoom: f64, options: &JsValue);
    #[wasm_bindgen(method, js_name = panTo)]
    pub(crate) fn pan_to(this: &Map, center: &JsValue, options: &JsValue);
    #[wasm_bindgen(method, js_name = fitBounds)]
    pub(crate) fn fit_bounds(this: &Map, bounds: &JsValue, options: &JsValue);
    #[wasm_bindgen(method, js_name = getZoom)]
    pub(crate) fn get_zoom(this: &Map) -> f64;
    #[wasm_bindgen(method, js_name = getCenter)]
    pub(crate) fn get_center(this: &Map) -> JsLatLng;
    #[wasm_bindgen(method, js_name = getBounds)]
    pub(crate) fn get_bounds(this: &Map) -> Bounds;
    #[wasm_bindgen(method, js_name = getSize)]
    pub(crate) fn get_size(this: &Map) -> Point;
    #[wasm_bindgen(method, js_name = latLngToContainerPoint)]
    pub(crate) fn lat_lng_to_container_point(this: &Map, at: &JsValue) -> Point;
    #[wasm_bindgen(method, js_name = createPane)]
    pub(crate) fn create_pane(this: &Map, name: &str) -> web_sys::HtmlElement;
    #[wasm_bindgen(method, js_name = invalidateSize)]
    pub(crate) fn invalidate_size(this: &Map);
    /// `map.on(event, handler)`.
    #[wasm_bindgen(method, js_name = on)]
    pub(crate) fn on_event(this: &Map, event: &str, handler: &Function);
    #[wasm_bindgen(method, js_name = remove)]
    pub(crate) fn remove_map(this: &Map);
    #[wasm_bindgen(method, js_name = getContainer)]
    pub(crate) fn get_container(this: &Map) -> web_sys::HtmlElement;

    /// `L.LatLng`.
    #[derive(Debug, Clone)]
    pub(crate) type JsLatLng;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn lat(this: &JsLatLng) -> f64;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn lng(this: &JsLatLng) -> f64;

    /// `L.Point`, and the `containerPoint` of a map's mouse event.
    #[derive(Debug, Clone)]
    pub(crate) type Point;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn x(this: &Point) -> f64;
    #[wasm_bindgen(method, getter)]
    pub(crate) fn y(this: &Point) -> f64;

    /// A map's mouse event (`click`).
    #[derive(Debug, Clone)]
    pub(crate) type MouseEvent;
    #[wasm_bindgen(method, getter, js_name = containerPoint)]
    pub(crate) fn container_point(this: &MouseEvent) -> Point;

    /// `L.LatLngBounds`.
    #[derive(Debug, Clone)]
    pub(crate) type Bounds;
    #[wasm_bindgen(method, js_name = getSouth)]
    pub(crate) fn south(this: &Bounds) -> f64;
    #[wasm_bindgen(method, js_name = getNorth)]
    pub(crate) fn north(this: &Bounds) -> f64;
    #[wasm_bindgen(method, js_name = getWest)]
    pub(crate) fn west(this: &Bounds) -> f64;
    #[wasm_bindgen(method, js_name = getEast)]
    pub(crate) fn east(this: &Bounds) -> f64;

    /// `L.Layer`: anything that can be added to a map.
    #[derive(Debug, Clone)]
    pub(crate) type Layer;
    #[wasm_bindgen(method, js_name = addTo)]
    pub(crate) fn add_to(this: &Layer, map: &Map) -> Layer;
    #[wasm_bindgen(method)]
    pub(crate) fn remove(this: &Layer);
    /// `layer.on(event, handler)`.
    #[wasm_bindgen(method, js_name = on)]
    pub(crate) fn on_event(this: &Layer, event: &str, handler: &Function);

    /// `L.Circle` (radius in metres).
    #[wasm_bindgen(extends = Layer)]
    #[derive(Debug, Clone)]
    pub(crate) type Circle;
    #[wasm_bindgen(js_namespace = L, js_name = circle)]
    pub(crate) fn new_circle(at: &JsValue, options: &JsValue) -> Circle;
    #[wasm_bindgen(method, js_name = setLatLng)]
    pub(crate) fn set_lat_lng(this: &Circle, at: &JsValue);
    #[wasm_bindgen(method, js_name = setRadius)]
    pub(crate) fn set_radius(this: &Circle, radius: f64);
    #[wasm_bindgen(method, js_name = setStyle)]
    pub(crate) fn set_style(this: &Circle, style: &JsValue);

    /// `L.Polyline`.
    #[wasm_bindgen(extends = Layer)]
    #[derive(Debug, Clone)]
    pub(crate) type Polyline;
    #[wasm_bindgen(js_namespace = L, js_name = polyline)]
    pub(crate) fn new_polyline(points: &JsValue, options: &JsValue) -> Polyline;
    #[wasm_bindgen(method, js_name = setLatLngs)]
    pub(crate) fn set_lat_lngs(this: &Polyline, points: &JsValue);
    #[wasm_bindgen(method, js_name = setStyle)]
    pub(crate) fn set_style(this: &Polyline, style: &JsValue);

    /// `L.tileLayer(url, options)`.
    #[wasm_bindgen(js_namespace = L, js_name = tileLayer)]
    pub(crate) fn tile_layer(url: &str, options: &JsValue) -> Layer;
    /// `L.geoJSON(data, options)`.
    #[wasm_bindgen(js_namespace = L, js_name = geoJSON)]
    pub(crate) fn geo_json(data: &JsValue, options: &JsValue) -> Layer;
    /// `L.control.scale(options)`.
    #[wasm_bindgen(js_namespace = ["L", "control"], js_name = scale)]
    pub(crate) fn scale_control(options: &JsValue) -> Control;

    /// `L.Control`.
    #[derive(Debug, Clone)]
    pub(crate) type Control;
    #[wasm_bindgen(method, js_name = addTo)]
    pub(crate) fn add_to(this: &Control, map: &Map) -> Control;

    /// `topojson.feature(topology, object)`: TopoJSON to GeoJSON (topojson-client).
    #[wasm_bindgen(js_namespace = topojson, js_name = feature, catch)]
    pub(crate) fn topo_feature(topology: &JsValue, object: &JsValue) -> Result<JsValue, JsValue>;
}

/// `[lat, lng]`.
pub(crate) fn latlng(at: LatLng) -> JsValue {
    Array::of2(&at.lat.into(), &at.lng.into()).into()
}

/// `[[lat, lng], ...]`.
pub(crate) fn latlngs(points: impl IntoIterator<Item = LatLng>) -> JsValue {
    points.into_iter().map(latlng).collect::<Array>().into()
}

/// A JS object with the given properties.
pub(crate) fn obj(props: &[(&str, JsValue)]) -> JsValue {
    let object = Object::new();
    for (key, value) in props {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object.into()
}

/// Whether the Leaflet script loaded (it is a classic script the page includes).
pub(crate) fn available() -> bool {
    Reflect::has(&js_sys::global(), &JsValue::from_str("L")).unwrap_or(false)
}
