//! The app's state and the actions that change it, in the style of Yew's `function_todomvc`:
//! a [`PetsState`] that is `Reducible`, changed only through [`Action`]s.
//!
//! Messages arrive in batches (one per animation frame, see `coalesce`), so one action folds
//! hundreds of messages into one new state and one render.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::topic::{self, Kind};
use super::{payload, Fix, Pet};

/// One MQTT message as the app received it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Incoming {
    /// The topic.
    pub(crate) topic: String,
    /// The payload bytes.
    pub(crate) payload: Vec<u8>,
    /// When it arrived (live) or was recorded (history), ms since the epoch.
    pub(crate) received_ms: f64,
}

/// A pet outside its safe zone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Alert {
    /// Which pet.
    pub(crate) pet_id: String,
    /// How far from the zone's centre, in metres, at the latest fix.
    pub(crate) distance_m: f64,
    /// The zone's radius, in metres.
    pub(crate) radius_m: f64,
    /// When the pet left the zone, ms since the epoch.
    pub(crate) since_ms: f64,
    /// The user closed the alert; it comes back only after the pet returns and leaves again.
    pub(crate) dismissed: bool,
}

/// What can happen to the state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Action {
    /// Live messages, oldest first.
    Messages(Vec<Incoming>),
    /// Messages from the gateway's history endpoint, to fill trails.
    History(Vec<Incoming>),
    /// The user closed the alert of this pet.
    DismissAlert(String),
    /// Forget every pet and alert: the user signed out, or in as someone else.
    Clear,
}

/// All pets, and the alerts about them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct PetsState {
    /// Pets by id. Each is shared, so a new state copies only the pets that changed; the ids
    /// are shared too, so copying the map (once per batch of messages, as Yew keeps the
    /// previous state) allocates its nodes but not one string per pet.
    pub(crate) pets: BTreeMap<Rc<str>, Rc<Pet>>,
    /// Every pet's id in display order (numeric ids by value, then the others by name). Kept
    /// up to date as pets appear, so a render never sorts; shared until a pet is added.
    pub(crate) order: Rc<Vec<String>>,
    /// One alert per pet outside its zone, oldest first.
    pub(crate) alerts: Vec<Alert>,
    /// Bumped on every change; pets carry the value of the change that last touched them.
    pub(crate) version: u64,
    /// Bumped by [`Action::Clear`], so the map knows to remove what it drew.
    pub(crate) epoch: u64,
    /// Bumped whenever a pet's name changes, so a search by name runs again.
    pub(crate) renames: u64,
}

impl PetsState {
    /// Applies one action.
    pub(crate) fn apply(&mut self, action: Action) {
        self.version += 1;
        match action {
            Action::Messages(messages) => {
                for message in &messages {
                    self.apply_message(message);
                }
            }
            Action::History(entries) => self.apply_history(&entries),
            Action::DismissAlert(id) => {
                if let Some(alert) = self.alerts.iter_mut().find(|a| a.pet_id == id) {
                    alert.dismissed = true;
                }
            }
            Action::Clear => {
                self.pets.clear();
                self.order = Rc::default();
                self.alerts.clear();
                self.epoch += 1;
            }
        }
    }

    /// Pets in display order (see [`Self::order`]).
    pub(crate) fn sorted(&self) -> impl Iterator<Item = &Rc<Pet>> + '_ {
        self.order
            .iter()
            .filter_map(|id| self.pets.get(id.as_str()))
    }

    /// The alerts the user has not closed.
    pub(crate) fn active_alerts(&self) -> impl Iterator<Item = &Alert> {
        self.alerts.iter().filter(|alert| !alert.dismissed)
    }

    fn pet_mut(&mut self, id: &str) -> &mut Pet {
        let version = self.version;
        if !self.pets.contains_key(id) {
            let order = Rc::make_mut(&mut self.order);
            let at = order.partition_point(|other| sort_key(other) < sort_key(id));
            order.insert(at, id.to_owned());
            self.pets.insert(Rc::from(id), Rc::new(Pet::new(id)));
        }
        let Some(pet) = self.pets.get_mut(id) else {
            unreachable!("inserted above")
        };
        let pet = Rc::make_mut(pet);
        pet.version = version;
        pet
    }

    fn apply_message(&mut self, message: &Incoming) {
        let Some((id, kind)) = topic::parse(&message.topic) else {
            return;
        };
        let bytes = message.payload.as_slice();
        let now = message.received_ms;
        match kind {
            Kind::Location => {
                let Some(fix) = payload::fix(bytes) else {
                    return;
                };
                self.pet_mut(id).apply_fix(fix, now);
            }
            Kind::Status => {
                let Some(status) = payload::status(bytes) else {
                    return;
                };
                let pet = self.pet_mut(id);
                pet.online = Some(status.online);
                if status.online {
                    pet.seen(now);
                }
                // A will says nothing about the name: keep the one the pet had.
                let renamed = status.name.is_some() && pet.name != status.name;
                if renamed {
                    pet.name = status.name;
                    self.renames += 1;
                }
            }
            Kind::Geofence => {
                // An empty retained payload clears the zone.
                let fence = payload::geofence(bytes);
                if fence.is_none() && !bytes.is_empty() {
                    return;
                }
                self.pet_mut(id).geofence = fence;
            }
            Kind::Activity => {
                let Some(activity) = payload::activity(bytes) else {
                    return;
                };
                let pet = self.pet_mut(id);
                pet.activity = Some(activity);
                pet.seen(activity.timestamp.unwrap_or(now));
            }
        }
        self.check_geofence(id, now);
    }

    fn apply_history(&mut self, entries: &[Incoming]) {
        let mut by_pet: BTreeMap<&str, Vec<(Fix, f64)>> = BTreeMap::new();
        for entry in entries {
            if let Some((id, Kind::Location)) = topic::parse(&entry.topic) {
                if let Some(fix) = payload::fix(&entry.payload) {
                    let t = fix.timestamp.unwrap_or(entry.received_ms);
                    by_pet.entry(id).or_default().push((fix, t));
                }
            }
        }
        for (id, fixes) in by_pet {
            self.pet_mut(id).merge_history(&fixes);
            let latest = fixes.iter().map(|f| f.1).fold(0.0, f64::max);
            self.check_geofence(id, latest);
        }
    }

    /// Raises an alert when the pet is outside its zone, updates it while it stays out, and
    /// drops it when the pet is back inside (or has no zone).
    fn check_geofence(&mut self, id: &str, now: f64) {
        let Some(pet) = self.pets.get(id) else { return };
        let index = self.alerts.iter().position(|alert| alert.pet_id == id);
        let (Some(fence), Some(pos), true) = (pet.geofence, pet.position(), pet.is_outside())
        else {
            if let Some(index) = index {
                self.alerts.remove(index);
            }
            return;
        };
        let distance_m = fence.distance_m(pos);
        match index {
            Some(index) => {
                let alert = &mut self.alerts[index];
                alert.distance_m = distance_m;
                alert.radius_m = fence.radius;
            }
            None => self.alerts.push(Alert {
                pet_id: id.to_owned(),
                distance_m,
                radius_m: fence.radius,
                since_ms: now,
                dismissed: false,
            }),
        }
    }
}

/// Numeric ids first, by value; then the rest by name.
fn sort_key(id: &str) -> (u8, u64, &str) {
    match id.parse::<u64>() {
        Ok(n) => (0, n, ""),
        Err(_) => (1, 0, id),
    }
}

#[cfg(target_arch = "wasm32")]
impl yew::Reducible for PetsState {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut next = Rc::unwrap_or_clone(self);
        next.apply(action);
        Rc::new(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str, at: f64) -> Incoming {
        Incoming {
            topic: topic.to_owned(),
            payload: payload.as_bytes().to_vec(),
            received_ms: at,
        }
    }

    fn loc(id: &str, lat: f64, at: f64) -> Incoming {
        let payload = format!(r#"{{"lat":{lat},"lng":4.9,"accuracy":10,"timestamp":{at}}}"#);
        msg(&format!("pets/{id}/location"), &payload, at)
    }

    #[test]
    fn messages_create_pets_and_track_status() {
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![
            msg("pets/2/status", r#"{"online":true}"#, 1.0),
            loc("2", 52.37, 2.0),
            loc("10", 52.38, 2.0),
            msg("other/topic", "x", 3.0),
        ]));
        let ids: Vec<String> = state.sorted().map(|p| p.id.clone()).collect();
        assert_eq!(ids, ["2", "10"]);
        state.apply(Action::Messages(vec![
            loc("rex", 52.0, 5.0),
            loc("3", 52.0, 5.0),
        ]));
        assert_eq!(*state.order, ["2", "3", "10", "rex"]);
        assert!(state.pets["2"].is_online());
        state.apply(Action::Messages(vec![msg(
            "pets/2/status",
            r#"{"online":false}"#,
            4.0,
        )]));
        assert!(!state.pets["2"].is_online());
        assert_eq!(state.pets["2"].trail.len(), 1);
    }

    #[test]
    fn clear_forgets_pets_and_alerts_and_starts_a_new_epoch() {
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![
            loc("2", 52.37, 1.0),
            msg("pets/2/geofence", r#"{"lat":0,"lng":0,"radius":10}"#, 2.0),
            loc("2", 52.37, 3.0),
        ]));
        assert!(!state.pets.is_empty() && !state.alerts.is_empty());
        let (version, epoch) = (state.version, state.epoch);
        state.apply(Action::Clear);
        assert!(state.pets.is_empty() && state.alerts.is_empty());
        assert!(state.version > version && state.epoch == epoch + 1);
    }

    #[test]
    fn unchanged_pets_are_shared_between_states() {
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![
            loc("1", 52.0, 1.0),
            loc("2", 52.0, 1.0),
        ]));
        let before = state.clone();
        state.apply(Action::Messages(vec![loc("1", 52.1, 2.0)]));
        assert!(Rc::ptr_eq(&before.pets["2"], &state.pets["2"]));
        assert!(!Rc::ptr_eq(&before.pets["1"], &state.pets["1"]));
        assert_eq!(state.pets["1"].version, state.version);
    }

    #[test]
    fn leaving_the_zone_raises_an_alert_and_returning_clears_it() {
        let mut state = PetsState::default();
        let fence = r#"{"lat":52.0,"lng":4.9,"radius":100}"#;
        state.apply(Action::Messages(vec![
            msg("pets/1/geofence", fence, 0.0),
            loc("1", 52.0, 1.0),
        ]));
        assert!(state.alerts.is_empty());
        state.apply(Action::Messages(vec![loc("1", 52.01, 2.0)]));
        assert_eq!(state.active_alerts().count(), 1);
        assert_eq!(state.alerts[0].since_ms, 2.0);
        assert!(state.alerts[0].distance_m > 1000.0);
        state.apply(Action::DismissAlert("1".to_owned()));
        state.apply(Action::Messages(vec![loc("1", 52.02, 3.0)]));
        assert_eq!(
            state.active_alerts().count(),
            0,
            "a dismissed alert stays closed"
        );
        state.apply(Action::Messages(vec![loc("1", 52.0, 4.0)]));
        assert!(state.alerts.is_empty());
        state.apply(Action::Messages(vec![loc("1", 52.01, 5.0)]));
        assert_eq!(
            state.active_alerts().count(),
            1,
            "leaving again alerts again"
        );
    }

    #[test]
    fn a_new_zone_can_put_a_pet_outside_and_an_empty_one_clears_it() {
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![loc("1", 52.01, 1.0)]));
        state.apply(Action::Messages(vec![msg(
            "pets/1/geofence",
            r#"{"lat":52.0,"lng":4.9,"radius":100}"#,
            2.0,
        )]));
        assert_eq!(state.alerts.len(), 1);
        state.apply(Action::Messages(vec![msg("pets/1/geofence", "", 3.0)]));
        assert!(state.alerts.is_empty());
        assert!(state.pets["1"].geofence.is_none());
    }

    #[test]
    fn history_fills_trails() {
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![loc("1", 52.3, 30.0)]));
        state.apply(Action::History(vec![
            loc("1", 52.1, 10.0),
            loc("1", 52.2, 20.0),
            loc("3", 52.5, 20.0),
            msg("pets/1/status", r#"{"online":true}"#, 5.0),
        ]));
        assert_eq!(state.pets["1"].trail.len(), 3);
        assert_eq!(state.pets["1"].position().unwrap().lat, 52.3);
        assert_eq!(state.pets["3"].trail.len(), 1);
        assert_eq!(state.pets["1"].online, None, "history holds locations only");
    }
}
