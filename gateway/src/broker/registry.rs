//! The sessions of this node, each in a set of the sessions themselves, looked up by one of
//! their own fields: by client id (the registry) and by key (routing). A table entry is one
//! pointer (8 bytes) rather than a second copy of the key beside the pointer (40 for a client
//! id, 16 for a key), and an idle client costs the broker mostly such entries.

use std::borrow::Borrow;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

use super::router::KeyHashing;
use super::{ClientKey, Session};

/// The field of a session a [`Registry`] finds it by.
pub(super) trait KeyOf {
    type Key: ?Sized + Hash + Eq;
    /// How the key is hashed: SipHash for what clients choose, a cheaper hash for the rest.
    type Hashing: BuildHasher + Default;
    fn key_of(session: &Session) -> &Self::Key;
}

/// By client id.
#[derive(Debug)]
pub(super) struct ByName;

impl KeyOf for ByName {
    type Key = str;
    type Hashing = RandomState;
    fn key_of(session: &Session) -> &str {
        &session.client_id
    }
}

/// By the key routing knows a session by.
#[derive(Debug)]
pub(super) struct ByKey;

impl KeyOf for ByKey {
    type Key = ClientKey;
    type Hashing = KeyHashing;
    fn key_of(session: &Session) -> &ClientKey {
        &session.key
    }
}

/// A session, hashed and compared by its `K` field.
pub(super) struct Entry<K>(Arc<Session>, PhantomData<K>);

impl<K: KeyOf> Hash for Entry<K> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As the key it is looked up by (`Borrow`): the two must hash alike.
        K::key_of(&self.0).hash(state);
    }
}

impl<K: KeyOf> PartialEq for Entry<K> {
    fn eq(&self, other: &Self) -> bool {
        K::key_of(&self.0) == K::key_of(&other.0)
    }
}

impl<K: KeyOf> Eq for Entry<K> {}

// One per kind of key: a blanket `Borrow<K::Key>` would overlap `Borrow<T> for T`.
impl Borrow<str> for Entry<ByName> {
    fn borrow(&self) -> &str {
        ByName::key_of(&self.0)
    }
}

impl Borrow<ClientKey> for Entry<ByKey> {
    fn borrow(&self) -> &ClientKey {
        ByKey::key_of(&self.0)
    }
}

/// Sessions by their `K` field.
pub(super) struct Registry<K: KeyOf>(HashSet<Entry<K>, K::Hashing>);

/// Every session of this node, by client id.
pub(super) type Sessions = Registry<ByName>;

impl<K: KeyOf> Default for Registry<K> {
    fn default() -> Self {
        Self(HashSet::default())
    }
}

impl<K: KeyOf> fmt::Debug for Registry<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("sessions", &self.0.len())
            .finish()
    }
}

impl<K: KeyOf> Registry<K>
where
    Entry<K>: Borrow<K::Key>,
{
    pub(super) fn get(&self, key: &K::Key) -> Option<&Arc<Session>> {
        self.0.get(key).map(|s| &s.0)
    }

    pub(super) fn contains_key(&self, key: &K::Key) -> bool {
        self.0.contains(key)
    }

    /// Registers `session` under its key, in place of the one registered before.
    pub(super) fn insert(&mut self, session: Arc<Session>) -> Option<Arc<Session>> {
        self.0.replace(Entry(session, PhantomData)).map(|s| s.0)
    }

    pub(super) fn remove(&mut self, key: &K::Key) -> Option<Arc<Session>> {
        self.0.take(key).map(|s| s.0)
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
    fn sessions_are_found_by_key() {
        let mut by_key = Registry::<ByKey>::default();
        let (a, b) = (session(7, "a"), session(8, "a"));
        by_key.insert(a.clone());
        by_key.insert(b.clone());
        assert!(Arc::ptr_eq(by_key.get(&7).unwrap(), &a));
        assert!(
            Arc::ptr_eq(by_key.get(&8).unwrap(), &b),
            "one client id, two keys"
        );
        assert!(Arc::ptr_eq(&by_key.remove(&7).unwrap(), &a));
        assert!(!by_key.contains_key(&7) && by_key.contains_key(&8));
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
