//! The pet topics: `pets/{id}/{location|status|geofence|activity}`.

/// The topic filters the app subscribes to, with their QoS.
pub(crate) const SUBSCRIPTIONS: [(&str, u8); 4] = [
    ("pets/+/location", 0),
    ("pets/+/status", 1),
    ("pets/+/geofence", 1),
    ("pets/+/activity", 0),
];

/// The history filter trails are filled from on load.
pub(crate) const LOCATION_FILTER: &str = "pets/+/location";

/// What a pet topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{"lat","lng","accuracy","timestamp"}`.
    Location,
    /// `{"online": bool}`, retained, and the tracker's last will.
    Status,
    /// `{"lat","lng","radius"}`, retained: the safe zone.
    Geofence,
    /// `{"steps","calories","timestamp"}`.
    Activity,
}

/// Splits `pets/{id}/{kind}` into the pet id and the kind; `None` for any other topic.
pub(crate) fn parse(topic: &str) -> Option<(&str, Kind)> {
    let rest = topic.strip_prefix("pets/")?;
    let (id, kind) = rest.split_once('/')?;
    if id.is_empty() {
        return None;
    }
    let kind = match kind {
        "location" => Kind::Location,
        "status" => Kind::Status,
        "geofence" => Kind::Geofence,
        "activity" => Kind::Activity,
        _ => return None,
    };
    Some((id, kind))
}

/// The topic of `kind` for pet `id`.
pub(crate) fn topic(id: &str, kind: Kind) -> String {
    let name = match kind {
        Kind::Location => "location",
        Kind::Status => "status",
        Kind::Geofence => "geofence",
        Kind::Activity => "activity",
    };
    format!("pets/{id}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pet_topics() {
        assert_eq!(parse("pets/7/location"), Some(("7", Kind::Location)));
        assert_eq!(parse("pets/rex/status"), Some(("rex", Kind::Status)));
        assert_eq!(parse("pets/7/geofence"), Some(("7", Kind::Geofence)));
        assert_eq!(parse("pets/7/activity"), Some(("7", Kind::Activity)));
    }

    #[test]
    fn ignores_other_topics() {
        for topic in [
            "pets//location",
            "pets/7",
            "pets/7/location/x",
            "cats/7/location",
            "",
        ] {
            assert_eq!(parse(topic), None, "{topic}");
        }
    }

    #[test]
    fn builds_topics() {
        assert_eq!(topic("3", Kind::Geofence), "pets/3/geofence");
        assert_eq!(parse(&topic("a", Kind::Status)), Some(("a", Kind::Status)));
    }
}
