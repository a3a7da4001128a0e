//! The panel's search box: which pets match what the user typed, by name or by id.

use super::{Pet, PetsState};

/// What the user typed, trimmed and lower-cased once, so matching a pet costs no allocation
/// beyond its own lower-cased name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Query(String);

impl Query {
    /// A query from the search box's text.
    pub(crate) fn new(text: &str) -> Self {
        Self(text.trim().to_lowercase())
    }

    /// Whether the box is empty (every pet matches).
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `pet` matches: its id, its name, or its label ("Pet 12") contains the text.
    pub(crate) fn matches(&self, pet: &Pet) -> bool {
        let q = self.0.as_str();
        q.is_empty()
            || pet.id.to_lowercase().contains(q)
            || pet
                .name
                .as_deref()
                .is_some_and(|name| name.to_lowercase().contains(q))
            || format!("pet {}", pet.id.to_lowercase()).contains(q)
    }

    /// The ids of the matching pets, in display order; exact id or name matches first, so
    /// Enter in the box picks the pet the user named.
    pub(crate) fn filter(&self, state: &PetsState) -> Vec<String> {
        let (mut exact, mut partial) = (Vec::new(), Vec::new());
        for pet in state.sorted().filter(|pet| self.matches(pet)) {
            let is_exact = pet.id.to_lowercase() == self.0
                || pet.name.as_deref().map(str::to_lowercase).as_deref() == Some(&self.0);
            if is_exact && !self.is_empty() {
                exact.push(pet.id.clone());
            } else {
                partial.push(pet.id.clone());
            }
        }
        exact.append(&mut partial);
        exact
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Action, Incoming};

    fn state() -> PetsState {
        let msg = |topic: &str, payload: &str| Incoming {
            topic: topic.to_owned(),
            payload: payload.as_bytes().to_vec(),
            received_ms: 1.0,
        };
        let mut state = PetsState::default();
        state.apply(Action::Messages(vec![
            msg("pets/1/status", r#"{"online":true,"name":"Biscuit"}"#),
            msg("pets/12/status", r#"{"online":true}"#),
            msg("pets/112/status", r#"{"online":true,"name":"Rex"}"#),
            msg("pets/rex/status", r#"{"online":true}"#),
        ]));
        state
    }

    #[test]
    fn finds_pets_by_name_or_id_ignoring_case() {
        let state = state();
        assert_eq!(Query::new("  bisc ").filter(&state), ["1"]);
        assert_eq!(Query::new("12").filter(&state), ["12", "112"]);
        assert_eq!(Query::new("Pet 12").filter(&state), ["12"]);
        assert!(Query::new("nobody").filter(&state).is_empty());
        assert_eq!(Query::new("").filter(&state).len(), 4);
    }

    #[test]
    fn exact_matches_come_first() {
        let state = state();
        // "rex" is pet 112's name and pet rex's id: both exact, in display order.
        assert_eq!(Query::new("REX").filter(&state), ["112", "rex"]);
        assert_eq!(Query::new("112").filter(&state), ["112"]);
    }
}
