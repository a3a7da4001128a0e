//! Positions to screen pixels for a whole frame: a snapshot of the map's view (its zoom and
//! where Leaflet puts the map's centre) from three calls into Leaflet, after which every pet
//! is placed in Rust with Web Mercator ([`LatLng::world`]) instead of one
//! `latLngToContainerPoint` call (and two JS objects) per pet.

use super::leaflet::{latlng, Map};
use crate::model::LatLng;

/// The Earth's circumference at the equator in Web Mercator metres (2πR, R = 6,378,137 m).
const EQUATOR_M: f64 = 40_075_016.686;

/// The map's view at one moment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Projection {
    /// Pixels per world unit: `256 * 2^zoom`.
    scale: f64,
    /// The reference point (the map's centre) in world units and in container pixels.
    ref_world: (f64, f64),
    ref_px: (f64, f64),
    /// The container's size in CSS pixels.
    pub(crate) width: f64,
    pub(crate) height: f64,
    /// The zoom level.
    pub(crate) zoom: f64,
}

impl Projection {
    /// The current view of `map`.
    pub(crate) fn of(map: &Map) -> Self {
        let center = map.get_center();
        let center = LatLng::new(center.lat(), center.lng());
        let at = map.lat_lng_to_container_point(&latlng(center));
        let size = map.get_size();
        let zoom = map.get_zoom();
        Self {
            scale: 256.0 * zoom.exp2(),
            ref_world: center.world(),
            ref_px: (at.x(), at.y()),
            width: size.x(),
            height: size.y(),
            zoom,
        }
    }

    /// Where `at` is in the map's container, in CSS pixels.
    // wasm32 has no fused multiply-add: `mul_add` is a slow software `fma` there, and this
    // runs for every pet every frame.
    #[allow(clippy::suboptimal_flops)]
    pub(crate) fn px(&self, at: LatLng) -> (f64, f64) {
        let (x, y) = at.world();
        (
            (x - self.ref_world.0) * self.scale + self.ref_px.0,
            (y - self.ref_world.1) * self.scale + self.ref_px.1,
        )
    }

    /// Whether a point is on screen, or within `margin` pixels of it.
    pub(crate) fn on_screen(&self, (x, y): (f64, f64), margin: f64) -> bool {
        (-margin..=self.width + margin).contains(&x)
            && (-margin..=self.height + margin).contains(&y)
    }

    /// How many pixels `metres` span at latitude `lat`.
    pub(crate) fn metres_to_px(&self, metres: f64, lat: f64) -> f64 {
        metres * self.scale / (EQUATOR_M * lat.to_radians().cos())
    }
}
