//! What the app knows about the pets, as plain Rust: topics, payloads, geometry and the state
//! that incoming messages fold into. No browser APIs here, so all of it is tested natively.

pub(crate) mod cluster;
pub(crate) mod geo;
pub(crate) mod payload;
pub(crate) mod pet;
pub(crate) mod search;
pub(crate) mod session;
pub(crate) mod state;
pub(crate) mod topic;

pub(crate) use geo::LatLng;
pub(crate) use payload::{Activity, Fix, Geofence};
pub(crate) use pet::Pet;
pub(crate) use session::{Credentials, Refusal, Session, SessionAction};
pub(crate) use state::{Action, Alert, Incoming, PetsState};
