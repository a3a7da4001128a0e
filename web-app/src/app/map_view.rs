//! The pets on the Leaflet map, driven imperatively: the Yew side calls [`MapView::sync`] after
//! each state change and [`MapView::animate`] on every animation frame.
//!
//! Per pet: a marker (its element carries `data-pet` and `data-pet-id` (the pet's id from its
//! topic), `data-online`, `data-outside`, `data-lat`, `data-lng`, `data-trail-len` for styling,
//! tests and tools), an accuracy circle, a trail and the safe-zone circle. A new
//! [`PetsState::epoch`] (sign-out) removes them all. Only pets whose `version` changed are touched; a marker glides
//! from its drawn position to a new fix instead of jumping (when fixes are seconds apart), and
//! a trail is redrawn at most four times a second.

use std::collections::HashMap;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use super::leaflet::{self, latlng, latlngs, obj, Circle, Map, Marker, Polyline};
use crate::model::{Geofence, LatLng, Pet, PetsState};

/// Longest glide between two fixes, in ms; fixes further apart in time jump.
const MAX_GLIDE_MS: f64 = 1_000.0;
/// Fixes further apart than this jump instead of gliding.
const MAX_GLIDE_M: f64 = 2_000.0;
/// Fixes closer in time than this jump: at that rate each frame has a new fix anyway, and
/// gliding hundreds of markers and circles every frame would only cost time.
const MIN_GLIDE_MS: f64 = 300.0;
/// At most this many markers glide at once; beyond that, new fixes jump (a thousand gliding
/// markers would cost more than a frame).
const MAX_GLIDING: usize = 150;
/// Trails, accuracy circles, and the markers' data attributes are
/// redrawn together at most this often: each redraw repaints the whole SVG overlay, so under
/// load one repaint a tick beats one a frame.
const OVERLAY_TICK_MS: f64 = 250.0;

/// A marker's glide from one fix to the next.
#[derive(Debug, Clone, Copy)]
struct Glide {
    from: LatLng,
    to: LatLng,
    start: f64,
    duration: f64,
}

/// The Leaflet layers of one pet.
struct PetLayers {
    marker: Marker,
    accuracy: Circle,
    trail: Polyline,
    fence: Option<Circle>,
    /// Where the marker is drawn now.
    shown: LatLng,
    /// Where it is heading.
    target: LatLng,
    target_t: f64,
    glide: Option<Glide>,
    /// The pet as of the latest change, and whether its overlay still needs drawing.
    pet: Rc<Pet>,
    overlay_dirty: bool,
    version: u64,
    /// What was last drawn, to skip unchanged DOM updates.
    drawn: Drawn,
    /// Nothing drawn yet: the first update draws everything.
    fresh: bool,
    _on_click: Closure<dyn FnMut(JsValue)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Drawn {
    online: bool,
    outside: bool,
    selected: bool,
    accuracy: f64,
    trail_len: usize,
    trail_last_t: f64,
    fence: Option<(f64, f64, f64)>,
}

/// The map and everything drawn on it for the pets.
pub(crate) struct MapView {
    map: Map,
    pets: HashMap<String, PetLayers>,
    selected: Option<String>,
    following: bool,
    /// Fit the view to all pets whenever more appear, until the user moves the map.
    auto_fit: bool,
    fitted_pets: usize,
    overlay_drawn_at: f64,
    /// The state's epoch the layers belong to.
    epoch: u64,
    on_select: Rc<dyn Fn(String)>,
    _on_user: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl std::fmt::Debug for MapView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapView")
            .field("pets", &self.pets.len())
            .finish_non_exhaustive()
    }
}

impl MapView {
    /// Wraps `map`; clicking a marker calls `on_select` with the pet's id.
    pub(crate) fn new(map: Map, on_select: Rc<dyn Fn(String)>) -> Self {
        Self {
            map,
            pets: HashMap::new(),
            selected: None,
            following: false,
            auto_fit: true,
            fitted_pets: 0,
            overlay_drawn_at: f64::NEG_INFINITY,
            epoch: 0,
            on_select,
            _on_user: Vec::new(),
        }
    }

    /// Watches the user: dragging the map stops following the selected pet, and dragging or
    /// zooming stops fitting the view to the pets. The view's own moves happen while it is
    /// borrowed, so the handlers cannot borrow it then and ignore them.
    pub(crate) fn watch_user(view: &Rc<std::cell::RefCell<Option<Self>>>) {
        let handler = |react: fn(&mut Self)| {
            let weak = Rc::downgrade(view);
            Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
                let Some(view) = weak.upgrade() else { return };
                let Ok(mut view) = view.try_borrow_mut() else {
                    return;
                };
                if let Some(view) = view.as_mut() {
                    react(view);
                }
            })
        };
        let on_drag = handler(|view| {
            view.following = false;
            view.auto_fit = false;
        });
        let on_zoom = handler(|view| view.auto_fit = false);
        if let Some(view) = view.borrow_mut().as_mut() {
            view.map
                .on_event("dragstart", on_drag.as_ref().unchecked_ref());
            view.map
                .on_event("zoomstart", on_zoom.as_ref().unchecked_ref());
            view._on_user = vec![on_drag, on_zoom];
        }
    }

    /// The Leaflet map.
    pub(crate) fn map(&self) -> &Map {
        &self.map
    }

    /// Selects a pet (or none): centres the map on it and follows it.
    pub(crate) fn select(&mut self, id: Option<&str>) {
        self.selected = id.map(str::to_owned);
        self.following = id.is_some();
        self.auto_fit &= id.is_none();
        if let Some(layers) = id.and_then(|id| self.pets.get(id)) {
            let zoom = self.map.get_zoom().max(15.0);
            self.map.set_view(&latlng(layers.target), zoom, &obj(&[]));
        }
    }

    /// Brings the layers up to date with `state`; `now` is `performance.now()`.
    pub(crate) fn sync(&mut self, state: &PetsState, now: f64) {
        if state.epoch != self.epoch {
            self.clear();
            self.epoch = state.epoch;
        }
        let mut gliding = self.pets.values().filter(|l| l.glide.is_some()).count();
        for (id, pet) in &state.pets {
            let Some(position) = pet.position() else {
                continue;
            };
            let selected = self.selected.as_deref() == Some(id.as_str());
            if !self.pets.contains_key(id) {
                let layers = self.create(pet, position);
                self.pets.insert(id.clone(), layers);
            }
            let Some(layers) = self.pets.get_mut(id) else {
                continue;
            };
            if layers.version == pet.version && layers.drawn.selected == selected {
                continue;
            }
            layers.version = pet.version;
            layers.pet = Rc::clone(pet);
            layers.update(position, selected, now, gliding < MAX_GLIDING, &self.map);
            gliding += usize::from(layers.glide.is_some());
        }
        if self.auto_fit && self.pets.len() > self.fitted_pets {
            self.fitted_pets = self.pets.len();
            self.fit_all(state);
        }
    }

    /// Moves gliding markers to where they are at `now` (`performance.now()`), and keeps the
    /// followed pet in view.
    pub(crate) fn animate(&mut self, now: f64) {
        let overlay_due = now - self.overlay_drawn_at >= OVERLAY_TICK_MS;
        if overlay_due {
            self.overlay_drawn_at = now;
        }
        for layers in self.pets.values_mut() {
            if overlay_due && (layers.overlay_dirty || layers.glide.is_some()) {
                layers.draw_overlay();
            }
            let Some(glide) = layers.glide else { continue };
            let t = ((now - glide.start) / glide.duration).clamp(0.0, 1.0);
            let at = glide.from.lerp(glide.to, ease(t));
            layers.move_to(at);
            if t >= 1.0 {
                layers.glide = None;
                // The circle catches up at the next tick.
                layers.overlay_dirty = true;
            }
        }
        if self.following {
            if let Some(layers) = self.selected.as_ref().and_then(|id| self.pets.get(id)) {
                if layers.glide.is_some() || layers.shown != layers.target {
                    self.map
                        .pan_to(&latlng(layers.shown), &obj(&[("animate", false.into())]));
                }
            }
        }
    }

    /// Removes every pet's layers, and fits the view to the next pets that appear.
    fn clear(&mut self) {
        for (_, layers) in self.pets.drain() {
            layers.marker.remove();
            layers.accuracy.remove();
            layers.trail.remove();
            if let Some(fence) = layers.fence {
                fence.remove();
            }
        }
        self.following = false;
        self.auto_fit = true;
        self.fitted_pets = 0;
    }

    /// Fits the view to all pets and their trails.
    fn fit_all(&mut self, state: &PetsState) {
        let points: Vec<LatLng> = state
            .pets
            .values()
            .flat_map(|pet| {
                pet.trail
                    .iter()
                    .map(|point| point.pos)
                    .chain(pet.position())
            })
            .collect();
        if points.is_empty() {
            return;
        }
        let options = obj(&[
            ("padding", js_sys::Array::of2(&40.into(), &40.into()).into()),
            ("maxZoom", 16.into()),
            ("animate", false.into()),
        ]);
        self.map.fit_bounds(&latlngs(points), &options);
    }

    fn create(&self, pet: &Rc<Pet>, at: LatLng) -> PetLayers {
        let id = pet.id.clone();
        let on_select = Rc::clone(&self.on_select);
        let on_click = Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| on_select(id.clone()));
        let icon = leaflet::div_icon(&obj(&[
            ("className", "pet-marker".into()),
            (
                "html",
                format!(r#"<span class="pet-label">{}</span>"#, escape(&pet.id)).into(),
            ),
            (
                "iconSize",
                js_sys::Array::of2(&28.into(), &28.into()).into(),
            ),
        ]));
        let marker = leaflet::new_marker(
            &latlng(at),
            &obj(&[("icon", icon), ("title", format!("Pet {}", pet.id).into())]),
        );
        marker.on_event("click", on_click.as_ref().unchecked_ref());
        marker.add_to(&self.map);
        if let Some(element) = marker.get_element() {
            let _ = element.set_attribute("data-pet", &pet.id);
            let _ = element.set_attribute("data-pet-id", &pet.id);
        }
        let accuracy = leaflet::new_circle(
            &latlng(at),
            &obj(&[
                ("radius", 1.into()),
                ("className", "pet-accuracy".into()),
                ("weight", 1.into()),
                ("fillOpacity", 0.12.into()),
                ("interactive", false.into()),
            ]),
        );
        accuracy.add_to(&self.map);
        let trail = leaflet::new_polyline(
            &latlngs([at]),
            &obj(&[
                ("className", "pet-trail".into()),
                ("interactive", false.into()),
                ("weight", 3.into()),
                ("opacity", 0.7.into()),
            ]),
        );
        trail.add_to(&self.map);
        PetLayers {
            marker,
            accuracy,
            trail,
            fence: None,
            shown: at,
            target: at,
            target_t: f64::NEG_INFINITY,
            glide: None,
            pet: Rc::clone(pet),
            overlay_dirty: false,
            version: u64::MAX,
            drawn: Drawn::default(),
            fresh: true,
            _on_click: on_click,
        }
    }
}

impl PetLayers {
    fn update(&mut self, position: LatLng, selected: bool, now: f64, glide: bool, map: &Map) {
        let pet = Rc::clone(&self.pet);
        let fix_t = pet.trail.back().map_or(0.0, |point| point.t);
        if position != self.target {
            self.retarget(position, fix_t, now, glide);
        }
        let drawn = Drawn {
            online: pet.is_online(),
            outside: pet.is_outside(),
            selected,
            accuracy: pet.fix.map_or(0.0, |fix| fix.accuracy),
            trail_len: pet.trail.len(),
            trail_last_t: fix_t,
            fence: pet.geofence.map(|g| (g.lat, g.lng, g.radius)),
        };
        let fresh = std::mem::replace(&mut self.fresh, false);
        let old = std::mem::replace(&mut self.drawn, drawn);
        if fresh
            || (old.online, old.outside, old.selected) != (drawn.online, drawn.outside, selected)
        {
            self.restyle(drawn);
        }
        if old.accuracy != drawn.accuracy {
            self.accuracy.set_radius(drawn.accuracy.max(1.0));
        }
        if (old.trail_len, old.trail_last_t) != (drawn.trail_len, drawn.trail_last_t) {
            self.overlay_dirty = true;
        }
        if old.fence != drawn.fence {
            self.redraw_fence(pet.geofence, map);
        }
        if let Some(fence) = &self.fence {
            if fresh || old.outside != drawn.outside || old.fence != drawn.fence {
                fence.set_style(&fence_style(drawn.outside));
            }
        }
        if fresh {
            self.draw_overlay();
        }
    }

    /// Starts gliding to a new fix, or jumps when the fix is far away in space or time.
    fn retarget(&mut self, to: LatLng, fix_t: f64, now: f64, glide: bool) {
        let interval = fix_t - self.target_t;
        let far = self.shown.distance_m(to) > MAX_GLIDE_M;
        self.target = to;
        self.target_t = fix_t;
        self.overlay_dirty = true;
        if !glide || far || !(MIN_GLIDE_MS..=MAX_GLIDE_MS * 3.0).contains(&interval) {
            // The marker jumps now; its circle follows at the next overlay tick.
            self.glide = None;
            self.move_to(to);
            return;
        }
        self.glide = Some(Glide {
            from: self.shown,
            to,
            start: now,
            duration: interval.clamp(100.0, MAX_GLIDE_MS),
        });
    }

    /// Draws the trail (if it changed) and the accuracy circle where the marker is now, and
    /// updates the marker's position attributes.
    fn draw_overlay(&mut self) {
        let trail = &self.pet.trail;
        if self.overlay_dirty {
            self.trail
                .set_lat_lngs(&latlngs(trail.iter().map(|point| point.pos)));
        }
        self.accuracy.set_lat_lng(&latlng(self.shown));
        self.overlay_dirty = false;
        if let Some(element) = self.marker.get_element() {
            let _ = element.set_attribute("data-lat", &self.target.lat.to_string());
            let _ = element.set_attribute("data-lng", &self.target.lng.to_string());
            let _ = element.set_attribute("data-trail-len", &trail.len().to_string());
        }
    }

    /// Moves the marker; its accuracy circle follows at the next overlay tick.
    fn move_to(&mut self, at: LatLng) {
        self.shown = at;
        self.marker.set_lat_lng(&latlng(at));
    }

    fn restyle(&self, drawn: Drawn) {
        if let Some(element) = self.marker.get_element() {
            let _ = element.set_attribute("data-online", bool_str(drawn.online));
            let _ = element.set_attribute("data-outside", bool_str(drawn.outside));
            let _ = element.set_attribute("data-selected", bool_str(drawn.selected));
        }
        let color = if drawn.online { "#3a86ff" } else { "#8d99ae" };
        self.trail.set_style(&obj(&[("color", color.into())]));
        self.accuracy.set_style(&obj(&[
            ("color", color.into()),
            ("fillColor", color.into()),
        ]));
        self.marker
            .set_z_index_offset(if drawn.selected { 1000.0 } else { 0.0 });
    }

    fn redraw_fence(&mut self, fence: Option<Geofence>, map: &Map) {
        match (fence, &self.fence) {
            (None, Some(circle)) => {
                circle.remove();
                self.fence = None;
            }
            (Some(zone), Some(circle)) => {
                circle.set_lat_lng(&latlng(zone.center()));
                circle.set_radius(zone.radius);
            }
            (Some(zone), None) => {
                let circle = leaflet::new_circle(
                    &latlng(zone.center()),
                    &obj(&[
                        ("radius", zone.radius.into()),
                        ("className", "pet-fence".into()),
                        ("interactive", false.into()),
                    ]),
                );
                circle.add_to(map);
                self.fence = Some(circle);
            }
            (None, None) => {}
        }
    }
}

fn fence_style(outside: bool) -> JsValue {
    let color = if outside { "#d7263d" } else { "#2a9d8f" };
    obj(&[
        ("color", color.into()),
        ("fillColor", color.into()),
        ("fillOpacity", 0.06.into()),
        ("weight", 2.into()),
        ("dashArray", "6 6".into()),
    ])
}

fn bool_str(value: bool) -> &'static str {
    if value {
        "true"
    } else {
        "false"
    }
}

/// Ease-in-out, so a glide starts and ends gently.
fn ease(t: f64) -> f64 {
    t * t * 2.0f64.mul_add(-t, 3.0)
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
