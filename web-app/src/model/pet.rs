//! One pet: its latest fix, trail, status, safe zone and activity.

use std::collections::VecDeque;

use super::{Activity, Fix, Geofence, LatLng};

/// How many positions a trail keeps (the gateway's history keeps 100 per topic by default).
pub(crate) const TRAIL_LEN: usize = 100;

/// One point of a trail.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct TrailPoint {
    /// Where the pet was.
    pub(crate) pos: LatLng,
    /// When, ms since the epoch.
    pub(crate) t: f64,
}

/// Everything known about one pet.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Pet {
    /// The id from the topic, `pets/{id}/...`.
    pub(crate) id: String,
    /// The name its tracker gave in a status message, if any.
    pub(crate) name: Option<String>,
    /// The latest status; `None` until a status message arrives.
    pub(crate) online: Option<bool>,
    /// The latest fix.
    pub(crate) fix: Option<Fix>,
    /// The last [`TRAIL_LEN`] positions, oldest first.
    pub(crate) trail: VecDeque<TrailPoint>,
    /// When the pet was last heard from, ms since the epoch.
    pub(crate) last_seen_ms: Option<f64>,
    /// The safe zone.
    pub(crate) geofence: Option<Geofence>,
    /// The latest activity report.
    pub(crate) activity: Option<Activity>,
    /// Bumped on every change, so views can skip pets that did not change.
    pub(crate) version: u64,
}

impl Pet {
    /// A pet nothing is known about yet.
    pub(crate) fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: None,
            online: None,
            fix: None,
            trail: VecDeque::new(),
            last_seen_ms: None,
            geofence: None,
            activity: None,
            version: 0,
        }
    }

    /// What the panel calls the pet: its name, or "Pet {id}" without one.
    pub(crate) fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("Pet {}", self.id))
    }

    /// Where the pet is, if any fix arrived.
    pub(crate) fn position(&self) -> Option<LatLng> {
        self.fix.map(|fix| fix.position())
    }

    /// Whether the pet is outside its safe zone (false without a zone or a fix).
    pub(crate) fn is_outside(&self) -> bool {
        match (self.geofence, self.position()) {
            (Some(fence), Some(pos)) => fence.is_outside(pos),
            _ => false,
        }
    }

    /// Whether the pet counts as online: a status said so, or it sends fixes without having
    /// said anything yet.
    pub(crate) fn is_online(&self) -> bool {
        self.online.unwrap_or(self.fix.is_some())
    }

    /// Takes a new fix received at `received_ms`.
    pub(crate) fn apply_fix(&mut self, fix: Fix, received_ms: f64) {
        let t = fix.timestamp.unwrap_or(received_ms);
        self.fix = Some(fix);
        self.push_trail(TrailPoint {
            pos: fix.position(),
            t,
        });
        self.seen(t);
    }

    /// Notes that the pet was heard from at `t` (never moving the time backwards).
    pub(crate) fn seen(&mut self, t: f64) {
        self.last_seen_ms = Some(self.last_seen_ms.map_or(t, |last| last.max(t)));
    }

    fn push_trail(&mut self, point: TrailPoint) {
        self.trail.push_back(point);
        while self.trail.len() > TRAIL_LEN {
            self.trail.pop_front();
        }
    }

    /// Merges positions from the gateway's history with the ones already received live:
    /// ordered by time, duplicates (same time) dropped, the newest [`TRAIL_LEN`] kept. A pet
    /// with no live fix yet takes the newest historic one as its position.
    pub(crate) fn merge_history(&mut self, fixes: &[(Fix, f64)]) {
        let mut points: Vec<TrailPoint> = fixes
            .iter()
            .map(|(fix, t)| TrailPoint {
                pos: fix.position(),
                t: *t,
            })
            .chain(self.trail.iter().copied())
            .collect();
        points.sort_by(|a, b| a.t.total_cmp(&b.t));
        points.dedup_by(|a, b| a.t == b.t);
        let skip = points.len().saturating_sub(TRAIL_LEN);
        self.trail = points.into_iter().skip(skip).collect();
        if self.fix.is_none() {
            if let Some((fix, t)) = fixes.iter().max_by(|a, b| a.1.total_cmp(&b.1)) {
                self.fix = Some(*fix);
                self.seen(*t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fix_at(lat: f64, t: f64) -> Fix {
        Fix {
            lat,
            lng: 4.9,
            accuracy: 5.0,
            timestamp: Some(t),
        }
    }

    #[test]
    fn trail_is_bounded_and_ordered() {
        let mut pet = Pet::new("1");
        for i in 0..(TRAIL_LEN + 10) {
            pet.apply_fix(fix_at((i as f64).mul_add(1e-4, 52.0), i as f64), 0.0);
        }
        assert_eq!(pet.trail.len(), TRAIL_LEN);
        assert_eq!(pet.trail.front().unwrap().t, 10.0);
        assert_eq!(pet.last_seen_ms, Some((TRAIL_LEN + 9) as f64));
    }

    #[test]
    fn history_merges_before_live_points() {
        let mut pet = Pet::new("1");
        pet.apply_fix(fix_at(52.3, 100.0), 0.0);
        let history = [
            (fix_at(52.1, 10.0), 10.0),
            (fix_at(52.2, 20.0), 20.0),
            (fix_at(52.3, 100.0), 100.0),
        ];
        pet.merge_history(&history);
        let times: Vec<f64> = pet.trail.iter().map(|p| p.t).collect();
        assert_eq!(times, [10.0, 20.0, 100.0]);
        assert_eq!(pet.position().unwrap().lat, 52.3);
    }

    #[test]
    fn history_gives_a_position_to_a_pet_not_heard_live() {
        let mut pet = Pet::new("1");
        pet.merge_history(&[(fix_at(52.1, 10.0), 10.0), (fix_at(52.2, 20.0), 20.0)]);
        assert_eq!(pet.position().unwrap().lat, 52.2);
        assert_eq!(pet.last_seen_ms, Some(20.0));
    }

    #[test]
    fn outside_needs_a_zone_and_a_fix() {
        let mut pet = Pet::new("1");
        assert!(!pet.is_outside());
        pet.geofence = Some(Geofence {
            lat: 52.0,
            lng: 4.9,
            radius: 100.0,
        });
        assert!(!pet.is_outside());
        pet.apply_fix(fix_at(52.0, 1.0), 1.0);
        assert!(!pet.is_outside());
        pet.apply_fix(fix_at(52.01, 2.0), 2.0);
        assert!(pet.is_outside());
    }
}
