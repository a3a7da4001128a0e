//! Points on the Earth and distances between them.

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres (the one Leaflet uses for `distance`).
const EARTH_RADIUS_M: f64 = 6_371_000.0;
/// The latitude where Web Mercator's square world ends (Leaflet's `MAX_LATITUDE`).
const MAX_LATITUDE: f64 = 85.051_128_779_8;

/// A WGS 84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct LatLng {
    /// Latitude, degrees north.
    pub(crate) lat: f64,
    /// Longitude, degrees east.
    pub(crate) lng: f64,
}

impl LatLng {
    /// A position.
    pub(crate) const fn new(lat: f64, lng: f64) -> Self {
        Self { lat, lng }
    }

    /// Great-circle distance to `other` in metres (haversine).
    pub(crate) fn distance_m(self, other: Self) -> f64 {
        let (phi1, phi2) = (self.lat.to_radians(), other.lat.to_radians());
        let dphi = phi2 - phi1;
        let dlambda = (other.lng - self.lng).to_radians();
        let (half_dphi, half_dlambda) = ((dphi / 2.0).sin(), (dlambda / 2.0).sin());
        let a = (phi1.cos() * phi2.cos()).mul_add(half_dlambda.powi(2), half_dphi.powi(2));
        2.0 * EARTH_RADIUS_M * a.sqrt().atan2((1.0 - a).sqrt())
    }

    /// The point a fraction `t` (0 to 1) of the way to `other`; linear, which is exact enough
    /// for the metres between two fixes.
    // Runs for every gliding pet every frame; wasm32 has no fused multiply-add, so `mul_add`
    // would be a slow software `fma` call.
    #[allow(clippy::suboptimal_flops)]
    pub(crate) fn lerp(self, other: Self, t: f64) -> Self {
        Self {
            lat: (other.lat - self.lat) * t + self.lat,
            lng: (other.lng - self.lng) * t + self.lng,
        }
    }

    /// Web Mercator (EPSG:3857, Leaflet's default CRS) in world units: x and y from 0 to 1,
    /// y growing southwards. Multiplied by `256 * 2^zoom` this is Leaflet's pixel position
    /// at that zoom, so the map can place thousands of pets without a call into Leaflet each.
    pub(crate) fn world(self) -> (f64, f64) {
        let lat = self.lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
        let x = self.lng / 360.0 + 0.5;
        let y = 0.5 - (std::f64::consts::FRAC_PI_4 + lat / 2.0).tan().ln() / std::f64::consts::TAU;
        (x, y)
    }

    /// Whether both coordinates are finite and within their ranges.
    pub(crate) fn is_valid(self) -> bool {
        self.lat.is_finite()
            && self.lng.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lng)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn world_matches_web_mercator() {
        assert_eq!(LatLng::new(0.0, 0.0).world(), (0.5, 0.5));
        let (x, y) = LatLng::new(85.1, 180.0).world();
        assert!((x - 1.0).abs() < 1e-12 && y.abs() < 1e-9, "{x} {y}");
        // Leaflet's EPSG3857.latLngToPoint([52.3676, 4.9041], 0) = (131.48736, 84.134317).
        let (x, y) = LatLng::new(52.3676, 4.9041).world();
        assert!(x.mul_add(256.0, -131.487_36).abs() < 1e-5, "{}", x * 256.0);
        assert!(y.mul_add(256.0, -84.134_317).abs() < 1e-5, "{}", y * 256.0);
    }

    #[test]
    fn distance_matches_known_values() {
        let dam = LatLng::new(52.3731, 4.8926);
        let centraal = LatLng::new(52.3791, 4.9003);
        let d = dam.distance_m(centraal);
        // 0.006° north (667 m) and 0.0077° east (523 m at this latitude).
        assert!((d - 847.5).abs() < 1.0, "{d}");
        // One degree of latitude is about 111.2 km.
        let d = LatLng::new(0.0, 0.0).distance_m(LatLng::new(1.0, 0.0));
        assert!((d - 111_195.0).abs() < 1.0, "{d}");
        assert!(dam.distance_m(dam).abs() < 1e-9);
    }

    #[test]
    fn lerp_goes_between() {
        let a = LatLng::new(52.0, 4.0);
        let b = LatLng::new(53.0, 5.0);
        assert_eq!(a.lerp(b, 0.0), a);
        assert_eq!(a.lerp(b, 1.0), b);
        assert_eq!(a.lerp(b, 0.5), LatLng::new(52.5, 4.5));
    }

    #[test]
    fn validity() {
        assert!(LatLng::new(52.0, 4.0).is_valid());
        assert!(!LatLng::new(91.0, 4.0).is_valid());
        assert!(!LatLng::new(f64::NAN, 4.0).is_valid());
    }
}
