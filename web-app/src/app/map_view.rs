//! The pets on the Leaflet map, driven imperatively: the Yew side calls [`MapView::sync`] after
//! each state change and [`MapView::animate`] on every animation frame.
//!
//! Pets are drawn on two canvases over the map ([`Overlay`]): markers (or, with thousands in
//! view, grid clusters) and accuracy circles on the top one, redrawn in the frame after
//! anything moved; trails on the one below, redrawn at most four times a second (and whenever
//! the view moves). A sync only records what changed, per pet, and marks a canvas dirty: the
//! drawing happens once per animation frame however many messages came in. Safe zones stay
//! Leaflet circles. A new [`PetsState::epoch`] (sign-out) removes every pet. What is drawn is
//! visible to tests and tools through [`super::map_probe`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use wasm_bindgen::prelude::*;

use super::canvas::Overlay;
use super::leaflet::{latlng, latlngs, obj, Map, MouseEvent};
use super::map_draw::{self, Frame, Target};
use super::pet_dot::PetDot;
use super::pet_draw::Sprites;
use super::projection::Projection;
use crate::model::{LatLng, PetsState};

/// Trails are redrawn at most this often while pets move (the markers every frame).
const TRAIL_TICK_MS: f64 = 250.0;

/// The map and everything drawn on it for the pets.
pub(crate) struct MapView {
    map: Map,
    markers: Overlay,
    trails: Overlay,
    sprites: Sprites,
    pub(crate) pets: HashMap<Rc<str>, PetDot>,
    pub(crate) selected: Option<String>,
    following: bool,
    /// Fit the view to all pets whenever more appear, until the user moves the map.
    auto_fit: bool,
    fitted_pets: usize,
    /// The state's epoch the pets belong to, and its version at the last sync.
    epoch: u64,
    synced: u64,
    markers_dirty: bool,
    /// The next marker draw must redraw everything (not only what changed).
    markers_full: bool,
    markers_drawn_at: f64,
    trails_dirty: bool,
    trails_drawn_at: f64,
    /// Set by Leaflet's events: the view moved, or a zoom animation is running.
    moved: Rc<Cell<bool>>,
    zooming: Rc<Cell<bool>>,
    /// What the last frame drew.
    pub(crate) frame: Frame,
    /// Whether the mouse is over a marker or cluster (the cursor is a pointer then).
    pointer: bool,
    on_select: Rc<dyn Fn(String)>,
    _handlers: Vec<Closure<dyn FnMut(JsValue)>>,
}

impl std::fmt::Debug for MapView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MapView")
            .field("pets", &self.pets.len())
            .finish_non_exhaustive()
    }
}

impl MapView {
    /// Wraps `map` and lays the canvases over it; clicking a marker calls `on_select` with the
    /// pet's id.
    pub(crate) fn new(map: Map, on_select: Rc<dyn Fn(String)>) -> Result<Self, JsValue> {
        let container = map.get_container();
        let trails = Overlay::new(&container, "pet-trails", 440)?;
        let markers = Overlay::new(&container, "pet-markers", 450)?;
        let (moved, zooming) = (Rc::new(Cell::new(true)), Rc::new(Cell::new(false)));
        let flag = |cell: &Rc<Cell<bool>>, value: bool, also: Option<Rc<Cell<bool>>>| {
            let cell = Rc::clone(cell);
            Closure::<dyn FnMut(JsValue)>::new(move |_: JsValue| {
                cell.set(value);
                if let Some(other) = &also {
                    other.set(true);
                }
            })
        };
        let handlers = vec![
            ("move", flag(&moved, true, None)),
            ("resize", flag(&moved, true, None)),
            ("zoomanim", flag(&zooming, true, None)),
            ("zoomend", flag(&zooming, false, Some(Rc::clone(&moved)))),
        ];
        let mut closures = Vec::new();
        for (event, handler) in handlers {
            map.on_event(event, handler.as_ref().unchecked_ref());
            closures.push(handler);
        }
        Ok(Self {
            map,
            markers,
            trails,
            sprites: Sprites::new()?,
            pets: HashMap::new(),
            selected: None,
            following: false,
            auto_fit: true,
            fitted_pets: 0,
            epoch: 0,
            synced: 0,
            markers_dirty: true,
            markers_full: true,
            markers_drawn_at: f64::NEG_INFINITY,
            trails_dirty: true,
            trails_drawn_at: f64::NEG_INFINITY,
            moved,
            zooming,
            frame: Frame::default(),
            pointer: false,
            on_select,
            _handlers: closures,
        })
    }

    /// Watches the user: dragging the map stops following the selected pet, dragging or
    /// zooming stops fitting the view to the pets, a click selects the pet under it (or
    /// zooms into a cluster), and the cursor is a pointer over a marker or cluster. The view's own moves happen while it is borrowed, so the
    /// handlers cannot borrow it then and ignore them.
    pub(crate) fn watch_user(view: &Rc<RefCell<Option<Self>>>) {
        let on_drag = handler_with_event(view, |view, _| {
            view.following = false;
            view.auto_fit = false;
        });
        let on_zoom = handler_with_event(view, |view, _| view.auto_fit = false);
        let on_click = click_handler(Rc::downgrade(view));
        let on_hover = handler_with_event(view, |view, event| {
            let point = event.unchecked_into::<MouseEvent>().container_point();
            let over = view.clicked(point.x(), point.y()).is_some();
            if over != view.pointer {
                view.pointer = over;
                let cursor = if over { "pointer" } else { "" };
                let _ = view
                    .map
                    .get_container()
                    .style()
                    .set_property("cursor", cursor);
            }
        });
        if let Some(view) = view.borrow_mut().as_mut() {
            for (event, handler) in [
                ("dragstart", &on_drag),
                ("zoomstart", &on_zoom),
                ("click", &on_click),
                ("mousemove", &on_hover),
            ] {
                view.map.on_event(event, handler.as_ref().unchecked_ref());
            }
            view._handlers
                .extend([on_drag, on_zoom, on_click, on_hover]);
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
        self.markers_dirty = true;
        self.markers_full = true;
        self.trails_dirty = true;
        if let Some(dot) = id.and_then(|id| self.pets.get(id)) {
            let zoom = self.map.get_zoom().max(15.0);
            self.map.set_view(&latlng(dot.target), zoom, &obj(&[]));
        }
    }

    /// Brings the pets up to date with `state`; `now` is `performance.now()`. Only pets whose
    /// version changed are looked at again.
    pub(crate) fn sync(&mut self, state: &PetsState, now: f64) {
        if state.epoch != self.epoch {
            self.clear();
            self.epoch = state.epoch;
            self.synced = 0;
        }
        // Pets untouched since the last sync carry an older version: skip them before any
        // lookup (under load a frame's batch touches a few dozen pets out of thousands).
        let since = std::mem::replace(&mut self.synced, state.version);
        for (id, pet) in state.pets.iter().filter(|(_, pet)| pet.version > since) {
            let Some(position) = pet.position() else {
                continue;
            };
            if !self.pets.contains_key(&**id) {
                let dot = PetDot::new(Rc::clone(id), pet, position);
                self.pets.insert(Rc::clone(id), dot);
            }
            let Some(dot) = self.pets.get_mut(&**id) else {
                continue;
            };
            if dot.version == pet.version {
                continue;
            }
            self.trails_dirty |= dot.update(pet, now, &self.map);
            self.markers_dirty = true;
        }
        if self.auto_fit && self.pets.len() > self.fitted_pets {
            self.fitted_pets = self.pets.len();
            self.fit_all();
        }
    }

    /// Once per animation frame: moves gliding markers to where they are at `now`
    /// (`performance.now()`), keeps the followed pet in view, and redraws what changed.
    pub(crate) fn animate(&mut self, now: f64) {
        let mut gliding = false;
        for dot in self.pets.values_mut() {
            gliding |= dot.advance(now);
        }
        self.markers_dirty |= gliding;
        self.follow();
        if self.zooming.get() {
            self.markers.set_visible(false);
            self.trails.set_visible(false);
            return;
        }
        let moved = self.moved.replace(false);
        if moved {
            self.markers.set_visible(true);
            self.trails.set_visible(true);
        }
        if !(moved || self.markers_dirty || self.trails_dirty) {
            return;
        }
        let proj = Projection::of(&self.map);
        // Clusters are redrawn whole, so while pets merely move they are redrawn at the trails'
        // pace: a bubble moving a pixel or its count changing by one can wait a quarter second.
        let clusters_wait = self.frame.clustered
            && !(moved || self.markers_full)
            && now - self.markers_drawn_at < TRAIL_TICK_MS;
        if (moved || self.markers_dirty) && !clusters_wait {
            self.draw_markers(&proj, moved, now);
        }
        if moved || (self.trails_dirty && now - self.trails_drawn_at >= TRAIL_TICK_MS) {
            self.trails_dirty = false;
            self.trails_drawn_at = now;
            let (ctx, _) = self.trails.prepare(proj.width, proj.height);
            ctx.clear_rect(0.0, 0.0, proj.width, proj.height);
            let selected = self.selected.as_deref();
            map_draw::trails(ctx, &proj, &self.pets, selected, self.frame.clustered);
        }
    }

    fn draw_markers(&mut self, proj: &Projection, moved: bool, now: f64) {
        let (ctx, resized) = self.markers.prepare(proj.width, proj.height);
        let full = std::mem::take(&mut self.markers_full) || moved || resized;
        let selected = self.selected.as_deref();
        let frame = map_draw::markers(
            ctx,
            &self.sprites,
            proj,
            &self.pets,
            selected,
            (&self.frame, full),
        );
        super::map_probe::publish(&self.map, &self.frame, &frame);
        self.frame = frame;
        self.markers_dirty = false;
        self.markers_drawn_at = now;
    }

    /// Pans to the followed pet while its marker glides.
    fn follow(&mut self) {
        if !self.following {
            return;
        }
        if let Some(dot) = self.selected.as_deref().and_then(|id| self.pets.get(id)) {
            if dot.gliding() {
                self.map
                    .pan_to(&latlng(dot.shown), &obj(&[("animate", false.into())]));
            }
        }
    }

    /// Removes every pet, and fits the view to the next pets that appear.
    fn clear(&mut self) {
        for (_, mut dot) in self.pets.drain() {
            dot.remove();
        }
        self.following = false;
        self.auto_fit = true;
        self.fitted_pets = 0;
        self.markers_dirty = true;
        self.markers_full = true;
        self.trails_dirty = true;
    }

    /// Fits the view to all pets and their trails (their bounding box, computed here: a
    /// thousand trails would be a hundred thousand points to hand to Leaflet).
    fn fit_all(&self) {
        let points = self.pets.values().flat_map(|dot| {
            dot.pet
                .trail
                .iter()
                .map(|point| point.pos)
                .chain([dot.target])
        });
        let Some((sw, ne)) = map_draw::bounds(points) else {
            return;
        };
        let options = obj(&[
            ("padding", js_sys::Array::of2(&40.into(), &40.into()).into()),
            ("maxZoom", 16.into()),
            ("animate", false.into()),
        ]);
        self.map.fit_bounds(&latlngs([sw, ne]), &options);
    }

    /// What a click at the container point `(x, y)` does.
    fn clicked(&self, x: f64, y: f64) -> Option<Click> {
        match map_draw::hit(&self.frame.targets, x, y)? {
            Target::Pet { id, .. } => Some(Click::Select(id.to_string())),
            Target::Cluster { bounds, .. } => Some(Click::Zoom(bounds.0, bounds.1)),
        }
    }

    /// Removes the canvases (the map itself is removed by its owner).
    pub(crate) fn remove(&mut self) {
        self.clear();
        self.markers.remove();
        self.trails.remove();
    }
}

/// A map event handler that gets the view (when it is not in use) and the event.
fn handler_with_event(
    view: &Rc<RefCell<Option<MapView>>>,
    react: fn(&mut MapView, JsValue),
) -> Closure<dyn FnMut(JsValue)> {
    let weak = Rc::downgrade(view);
    Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(view) = weak.upgrade() else { return };
        let Ok(mut view) = view.try_borrow_mut() else {
            return;
        };
        if let Some(view) = view.as_mut() {
            react(view, event);
        }
    })
}

/// What a click on the map asks for.
enum Click {
    Select(String),
    Zoom(LatLng, LatLng),
}

/// The map's `click` handler: selects the pet hit, or zooms into the cluster hit. The view is
/// released before `on_select` runs, as Yew may re-render (and call the view) at once.
fn click_handler(weak: Weak<RefCell<Option<MapView>>>) -> Closure<dyn FnMut(JsValue)> {
    Closure::<dyn FnMut(JsValue)>::new(move |event: JsValue| {
        let Some(view) = weak.upgrade() else { return };
        let point = event.unchecked_into::<MouseEvent>().container_point();
        let (click, map, on_select) = {
            let Ok(view) = view.try_borrow() else { return };
            let Some(view) = view.as_ref() else { return };
            let click = view.clicked(point.x(), point.y());
            (click, view.map.clone(), Rc::clone(&view.on_select))
        };
        match click {
            Some(Click::Select(id)) => on_select(id),
            Some(Click::Zoom(sw, ne)) => {
                let options = obj(&[
                    ("padding", js_sys::Array::of2(&40.into(), &40.into()).into()),
                    ("maxZoom", 18.into()),
                ]);
                map.fit_bounds(&latlngs([sw, ne]), &options);
            }
            None => {}
        }
    })
}
