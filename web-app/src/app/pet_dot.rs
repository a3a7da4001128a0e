//! One pet as the map draws it: where its marker is now and where it glides to, the pet as of
//! its latest change (for colours, accuracy and trail), and its safe zone, the one part still
//! drawn by Leaflet (an SVG circle: only pets with a zone have one, so there are few).

use std::cell::Cell;
use std::rc::Rc;

use super::leaflet::{self, latlng, obj, Circle, Map};
use super::pet_draw::MarkKey;
use crate::model::{Geofence, LatLng, Pet};

/// Longest glide between two fixes, in ms; fixes further apart in time jump.
const MAX_GLIDE_MS: f64 = 1_000.0;
/// Fixes further apart than this jump instead of gliding.
const MAX_GLIDE_M: f64 = 2_000.0;
/// Fixes closer in time than this jump: at that rate each frame has a new fix anyway.
const MIN_GLIDE_MS: f64 = 300.0;

/// A marker's glide from one fix to the next.
#[derive(Debug, Clone, Copy)]
struct Glide {
    from: LatLng,
    to: LatLng,
    start: f64,
    duration: f64,
}

/// One pet on the map.
#[derive(Debug)]
pub(crate) struct PetDot {
    /// The id, shared with hit targets.
    pub(crate) id: Rc<str>,
    /// The pet as of the latest change.
    pub(crate) pet: Rc<Pet>,
    /// The state version that change came with.
    pub(crate) version: u64,
    /// Where the marker is drawn now.
    pub(crate) shown: LatLng,
    /// Where it is heading (the latest fix).
    pub(crate) target: LatLng,
    target_t: f64,
    glide: Option<Glide>,
    fence: Option<(Circle, Geofence, bool)>,
    /// The marker as the canvas has it (`None`: not drawn), and the frame that last drew it.
    pub(crate) drawn: Cell<Option<MarkKey>>,
    pub(crate) drawn_in: Cell<u64>,
}

impl PetDot {
    /// A pet first seen at `at`; `id` is the state's key for it.
    pub(crate) fn new(id: Rc<str>, pet: &Rc<Pet>, at: LatLng) -> Self {
        Self {
            id,
            pet: Rc::clone(pet),
            version: u64::MAX,
            shown: at,
            target: at,
            target_t: f64::NEG_INFINITY,
            glide: None,
            fence: None,
            drawn: Cell::new(None),
            drawn_in: Cell::new(0),
        }
    }

    /// Takes the pet's latest state; a new fix starts a glide at `now` (`performance.now()`).
    /// Returns whether the trail (or its colour) changed.
    pub(crate) fn update(&mut self, pet: &Rc<Pet>, now: f64, map: &Map) -> bool {
        let old = std::mem::replace(&mut self.pet, Rc::clone(pet));
        self.version = pet.version;
        let fix_t = pet.trail.back().map_or(0.0, |point| point.t);
        if let Some(position) = pet.position() {
            if position != self.target {
                self.retarget(position, fix_t, now);
            }
        }
        self.update_fence(map);
        old.trail.len() != pet.trail.len()
            || old.trail.back() != pet.trail.back()
            || old.is_online() != pet.is_online()
    }

    /// Moves a gliding marker to where it is at `now`; whether it is still gliding.
    pub(crate) fn advance(&mut self, now: f64) -> bool {
        let Some(glide) = self.glide else {
            return false;
        };
        let t = ((now - glide.start) / glide.duration).clamp(0.0, 1.0);
        self.shown = glide.from.lerp(glide.to, ease(t));
        if t >= 1.0 {
            self.glide = None;
        }
        true
    }

    /// Whether the marker is on its way to a new fix.
    pub(crate) fn gliding(&self) -> bool {
        self.glide.is_some()
    }

    /// Removes what Leaflet draws for the pet.
    pub(crate) fn remove(&mut self) {
        if let Some((circle, _, _)) = self.fence.take() {
            circle.remove();
        }
    }

    /// Starts gliding to a new fix, or jumps when the fix is far away in space or time.
    fn retarget(&mut self, to: LatLng, fix_t: f64, now: f64) {
        let interval = fix_t - self.target_t;
        let far = self.shown.distance_m(to) > MAX_GLIDE_M;
        self.target = to;
        self.target_t = fix_t;
        if far || !(MIN_GLIDE_MS..=MAX_GLIDE_MS * 3.0).contains(&interval) {
            self.glide = None;
            self.shown = to;
            return;
        }
        self.glide = Some(Glide {
            from: self.shown,
            to,
            start: now,
            duration: interval.clamp(100.0, MAX_GLIDE_MS),
        });
    }

    /// Adds, moves, restyles or removes the safe-zone circle.
    fn update_fence(&mut self, map: &Map) {
        let outside = self.pet.is_outside();
        match (self.pet.geofence, self.fence.take()) {
            (None, Some((circle, _, _))) => circle.remove(),
            (Some(zone), Some((circle, drawn, was_outside))) => {
                if zone != drawn {
                    circle.set_lat_lng(&latlng(zone.center()));
                    circle.set_radius(zone.radius);
                }
                if outside != was_outside {
                    circle.set_style(&fence_style(outside));
                }
                self.fence = Some((circle, zone, outside));
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
                circle.set_style(&fence_style(outside));
                circle.add_to(map);
                self.fence = Some((circle, zone, outside));
            }
            (None, None) => {}
        }
    }
}

fn fence_style(outside: bool) -> wasm_bindgen::JsValue {
    let color = if outside { "#d7263d" } else { "#2a9d8f" };
    obj(&[
        ("color", color.into()),
        ("fillColor", color.into()),
        ("fillOpacity", 0.06.into()),
        ("weight", 2.into()),
        ("dashArray", "6 6".into()),
    ])
}

/// Ease-in-out, so a glide starts and ends gently.
#[allow(clippy::suboptimal_flops)] // no fused multiply-add on wasm32: `mul_add` is slow there
fn ease(t: f64) -> f64 {
    t * t * (3.0 - 2.0 * t)
}
