//! The JSON payloads the trackers publish, parsed leniently: extra fields are ignored, and a
//! malformed payload is dropped rather than breaking the map.

use serde::{Deserialize, Serialize};

use super::LatLng;

/// One GPS fix: `pets/{id}/location`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub(crate) struct Fix {
    /// Latitude, degrees.
    pub(crate) lat: f64,
    /// Longitude, degrees.
    pub(crate) lng: f64,
    /// Accuracy radius in metres.
    #[serde(default)]
    pub(crate) accuracy: f64,
    /// When the fix was taken, ms since the epoch (the tracker's clock).
    #[serde(default)]
    pub(crate) timestamp: Option<f64>,
}

impl Fix {
    /// Where the fix is.
    pub(crate) const fn position(&self) -> LatLng {
        LatLng::new(self.lat, self.lng)
    }
}

/// `pets/{id}/status`: online, or offline (the tracker's last will), and optionally the pet's
/// name (a tracker may retain `{"online":true,"name":"Biscuit"}`; its will usually has none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Status {
    /// Whether the tracker is connected.
    pub(crate) online: bool,
    /// The pet's name, for the panel and the search box.
    #[serde(default)]
    pub(crate) name: Option<String>,
}

/// `pets/{id}/geofence`: the pet's safe zone, a circle.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Geofence {
    /// Centre latitude, degrees.
    pub(crate) lat: f64,
    /// Centre longitude, degrees.
    pub(crate) lng: f64,
    /// Radius in metres.
    pub(crate) radius: f64,
}

impl Geofence {
    /// The centre of the zone.
    pub(crate) const fn center(&self) -> LatLng {
        LatLng::new(self.lat, self.lng)
    }

    /// How far `point` is from the centre, in metres.
    pub(crate) fn distance_m(&self, point: LatLng) -> f64 {
        self.center().distance_m(point)
    }

    /// Whether `point` lies outside the zone (as the seeds' `checkGeofence`: the distance from
    /// the centre exceeds the radius).
    pub(crate) fn is_outside(&self, point: LatLng) -> bool {
        self.distance_m(point) > self.radius
    }

    /// The retained payload that sets this zone.
    pub(crate) fn to_json(self) -> String {
        format!(
            r#"{{"lat":{:.6},"lng":{:.6},"radius":{:.0}}}"#,
            self.lat, self.lng, self.radius
        )
    }
}

/// `pets/{id}/activity`: step count and calories.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub(crate) struct Activity {
    /// Steps counted.
    #[serde(default)]
    pub(crate) steps: f64,
    /// Calories burnt.
    #[serde(default)]
    pub(crate) calories: f64,
    /// When it was measured, ms since the epoch.
    #[serde(default)]
    pub(crate) timestamp: Option<f64>,
}

/// Parses a location payload; `None` when it is not JSON or the position is invalid.
pub(crate) fn fix(payload: &[u8]) -> Option<Fix> {
    let fix: Fix = serde_json::from_slice(payload).ok()?;
    fix.position().is_valid().then_some(fix)
}

/// Parses a status payload.
pub(crate) fn status(payload: &[u8]) -> Option<Status> {
    serde_json::from_slice(payload).ok()
}

/// Parses a geofence payload; `None` for an invalid centre or a radius that is not positive.
/// An empty payload (a cleared retained message) is also `None`.
pub(crate) fn geofence(payload: &[u8]) -> Option<Geofence> {
    let fence: Geofence = serde_json::from_slice(payload).ok()?;
    (fence.center().is_valid() && fence.radius.is_finite() && fence.radius > 0.0).then_some(fence)
}

/// Parses an activity payload.
pub(crate) fn activity(payload: &[u8]) -> Option<Activity> {
    serde_json::from_slice(payload).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_trackers_payloads() {
        let f =
            fix(br#"{"lat":52.37,"lng":4.9,"accuracy":8.5,"timestamp":1700000000000}"#).unwrap();
        assert_eq!(f.position(), LatLng::new(52.37, 4.9));
        assert_eq!(f.accuracy, 8.5);
        assert_eq!(f.timestamp, Some(1.7e12));
        assert_eq!(
            status(br#"{"online":false}"#),
            Some(Status {
                online: false,
                name: None
            })
        );
        let named = status(br#"{"online":true,"name":"Biscuit"}"#).unwrap();
        assert_eq!(named.name.as_deref(), Some("Biscuit"));
        let g = geofence(br#"{"lat":52.0,"lng":4.0,"radius":250}"#).unwrap();
        assert_eq!(g.radius, 250.0);
        let a = activity(br#"{"steps":1200,"calories":45.5,"timestamp":1}"#).unwrap();
        assert_eq!(a.steps, 1200.0);
    }

    #[test]
    fn tolerates_missing_optional_fields_and_rejects_garbage() {
        assert_eq!(fix(br#"{"lat":1,"lng":2}"#).unwrap().accuracy, 0.0);
        assert!(fix(b"not json").is_none());
        assert!(fix(br#"{"lat":100,"lng":2}"#).is_none());
        assert!(geofence(b"").is_none());
        assert!(geofence(br#"{"lat":1,"lng":2,"radius":0}"#).is_none());
        assert!(status(br#"{"online":"yes"}"#).is_none());
    }

    #[test]
    fn geofence_round_trips_and_checks_inside() {
        let g = Geofence {
            lat: 52.37,
            lng: 4.9,
            radius: 100.0,
        };
        assert_eq!(geofence(g.to_json().as_bytes()), Some(g));
        assert!(!g.is_outside(LatLng::new(52.3705, 4.9)));
        assert!(g.is_outside(LatLng::new(52.372, 4.9)));
    }
}
