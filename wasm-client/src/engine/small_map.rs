//! A map kept as a list of entries in insertion order, for the client's few, short-lived keys.
//!
//! The client's maps (operations awaiting an acknowledgement, promises awaiting a token) hold
//! a handful of entries, and they are mostly answered in the order they were made. A scan
//! from the front finds those at once, insertion order is kept for free (resending after a
//! reconnect needs it), and it costs a fraction of `HashMap`'s code: hashbrown and SipHash were
//! about 10 KB of the npm package.
//!
//! A plain `Vec`, not a `VecDeque`: removing the oldest of a handful of entries moves a few
//! words, and the deque's ring-buffer code (`make_contiguous`, `wrap_copy`, `ptr_rotate`) was
//! about 1.5 KB of the package per entry type.

use alloc::vec::Vec;

/// Entries in insertion order; lookups scan from the oldest.
#[derive(Debug, Clone)]
pub(crate) struct SmallMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for SmallMap<K, V> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<K: PartialEq, V> SmallMap<K, V> {
    fn position(&self, key: &K) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == key)
    }

    /// Adds an entry for a key that is not in the map yet (callers hand out fresh keys).
    pub(crate) fn push(&mut self, key: K, value: V) {
        self.entries.push((key, value));
    }

    /// Whether `key` has an entry.
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.position(key).is_some()
    }

    /// The value for `key`.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.position(key)?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Removes and returns the value for `key`.
    pub(crate) fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.position(key)?;
        Some(self.entries.remove(i).1)
    }

    /// The keys, oldest first.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &K> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// Removes every entry, returning them oldest first. (Taking the whole list is less code
    /// in the package than `drain(..)`, and handing the entries over as they are less than
    /// collecting their values, which was an in-place collect of its own.)
    pub(crate) fn take_all(&mut self) -> Vec<(K, V)> {
        core::mem::take(&mut self.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_insertion_order_and_finds_any_entry() {
        let mut m = SmallMap::default();
        for k in [9, 3, 5] {
            m.push(k, k * 10);
        }
        assert!(m.contains(&3));
        assert_eq!(m.get_mut(&5), Some(&mut 50));
        assert_eq!(m.remove(&3), Some(30));
        assert_eq!(m.remove(&3), None);
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), [9, 5]);
        assert_eq!(m.take_all(), [(9, 90), (5, 50)]);
        assert!(!m.contains(&9));
    }
}
