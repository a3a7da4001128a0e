//! The sessions by client id. A set of the sessions themselves, looked up by their own client
//! id: each costs the table one pointer (8 bytes) rather than a second copy of its id beside
//! the pointer (40), and an idle client costs the broker mostly such entries.

use std::borrow::Borrow;
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::Session;

/// A session, hashed and compared by its client id.
#[derive(Debug)]
struct ByName(Arc<Session>);

impl Hash for ByName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the `str` it is looked up by (`Borrow`): the two must hash alike.
        str::hash(&self.0.client_id, state);
    }
}

impl PartialEq for ByName {
    fn eq(&self, other: &Self) -> bool {
        *self.0.client_id == *other.0.client_id
    }
}

impl Eq for ByName {}

impl Borrow<str> for ByName {
    fn borrow(&self) -> &str {
        &self.0.client_id
    }
}

/// Every session of this node, by client id.
#[derive(Debug, Default)]
pub(super) struct Sessions(HashSet<ByName>);

impl Sessions {
    pub(super) fn get(&self, client_id: &str) -> Option<&Arc<Session>> {
        self.0.get(client_id).map(|s| &s.0)
    }

    pub(super) fn contains_key(&self, client_id: &str) -> bool {
        self.0.contains(client_id)
    }

    /// Registers `session` under its client id, in place of the one registered before.
    pub(super) fn insert(&mut self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.0.replace(ByName(session)).map(|s| s.0)
    }

    pub(super) fn remove(&mut self, client_id: &str) -> Option<Arc<Session>> {
        self.0.take(client_id).map(|s| s.0)
    }

    /// Takes every session out.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Arc<Session>> + '_ {
        self.0.drain().map(|s| s.0)
    }

    pub(super) fn values(&self) -> impl Iterator<Item = &Arc<Session>> {
        self.0.iter().map(|s| &s.0)
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use aviary_protocol::ByteString;

    use super::*;

    fn session(id: u64, client_id: &str) -> Arc<Session> {
        Arc::new(Session::new(id, ByteString::from(client_id)))
    }

    #[test]
    fn sessions_are_found_and_replaced_by_client_id() {
        let mut sessions = Sessions::default();
        let a = session(1, "a");
        assert!(sessions.insert(a.clone()).is_none());
        assert!(sessions.insert(session(2, "b")).is_none());
        assert!(Arc::ptr_eq(sessions.get("a").unwrap(), &a));
        assert!(sessions.contains_key("b") && !sessions.contains_key("c"));
        let a2 = session(3, "a");
        let replaced = sessions.insert(a2.clone()).unwrap();
        assert!(Arc::ptr_eq(&replaced, &a));
        assert!(Arc::ptr_eq(sessions.get("a").unwrap(), &a2));
        assert_eq!(sessions.len(), 2);
        assert!(Arc::ptr_eq(&sessions.remove("a").unwrap(), &a2));
        assert!(sessions.remove("a").is_none());
        let left: Vec<_> = sessions.values().map(|s| s.client_id.to_string()).collect();
        assert_eq!(left, ["b"]);
    }
}
