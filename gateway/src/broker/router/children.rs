//! A node's literal children: a short list while there are few, a map once there are many.
//!
//! Most nodes of a real tree have a handful of children (the root: `pets`, `$SYS`; a pet:
//! `location`, `status`), and a few have thousands (`pets/+`: one per pet). Matching looks up
//! one child per topic level on every PUBLISH, and SipHash, which the map keeps because
//! levels come from clients, cost more than comparing a few short strings. A list never
//! grows past [`FEW`], so a client choosing levels cannot make a scan long.

use std::collections::HashMap;

use super::NodeId;

/// The most children kept in a list; one more turns it into a map.
const FEW: usize = 8;

/// The literal children of one node, by level.
#[derive(Debug)]
pub(super) enum Children {
    /// Up to [`FEW`], in insertion order.
    Few(Vec<(Box<str>, NodeId)>),
    /// More. SipHash (std's default) on purpose: levels come from clients.
    Many(HashMap<Box<str>, NodeId>),
}

impl Default for Children {
    fn default() -> Self {
        Self::Few(Vec::new())
    }
}

impl Children {
    /// The child for `level`.
    pub(super) fn get(&self, level: &str) -> Option<NodeId> {
        match self {
            Self::Few(list) => list.iter().find(|(l, _)| **l == *level).map(|&(_, id)| id),
            Self::Many(map) => map.get(level).copied(),
        }
    }

    /// Links `child` for `level`, in place of any before.
    pub(super) fn insert(&mut self, level: &str, child: NodeId) {
        match self {
            Self::Few(list) => {
                if let Some(slot) = list.iter_mut().find(|(l, _)| **l == *level) {
                    slot.1 = child;
                } else if list.len() < FEW {
                    list.push((level.into(), child));
                } else {
                    let mut map: HashMap<_, _> = list.drain(..).collect();
                    map.insert(level.into(), child);
                    *self = Self::Many(map);
                }
            }
            Self::Many(map) => _ = map.insert(level.into(), child),
        }
    }

    /// Unlinks the child for `level`. A map stays a map: a node that once had many children
    /// is likely to again, and the node is reset when it is pruned anyway.
    pub(super) fn remove(&mut self, level: &str) {
        match self {
            Self::Few(list) => list.retain(|(l, _)| **l != *level),
            Self::Many(map) => _ = map.remove(level),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        match self {
            Self::Few(list) => list.is_empty(),
            Self::Many(map) => map.is_empty(),
        }
    }

    /// Every child with its level, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&str, NodeId)> {
        let (few, many) = match self {
            Self::Few(list) => (Some(list.iter().map(|(l, id)| (&**l, *id))), None),
            Self::Many(map) => (None, Some(map.iter().map(|(l, id)| (&**l, *id)))),
        };
        few.into_iter().flatten().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_turns_into_a_map_past_few_and_finds_every_child_either_way() {
        let mut children = Children::default();
        let levels: Vec<String> = (0..3 * FEW).map(|i| format!("level{i}")).collect();
        for (i, level) in levels.iter().enumerate() {
            children.insert(level, i);
            assert_eq!(matches!(children, Children::Few(_)), i < FEW);
            for (j, earlier) in levels[..=i].iter().enumerate() {
                assert_eq!(children.get(earlier), Some(j));
            }
            assert_eq!(children.get("missing"), None);
        }
        assert_eq!(children.iter().count(), levels.len());
    }

    #[test]
    fn insert_replaces_and_remove_unlinks() {
        let mut children = Children::default();
        children.insert("a", 1);
        children.insert("a", 2);
        assert_eq!(children.get("a"), Some(2));
        assert_eq!(children.iter().count(), 1);
        children.remove("a");
        assert!(children.is_empty());
        assert_eq!(children.get("a"), None);
    }

    #[test]
    fn levels_differ_byte_for_byte_only() {
        let mut children = Children::default();
        for level in ["", "a", "A", "a ", "ä"] {
            children.insert(level, level.len());
        }
        assert_eq!(children.get(""), Some(0));
        assert_eq!(children.get("a "), Some(2));
        assert_eq!(children.get("ä"), Some(2));
        assert_eq!(children.iter().count(), 5);
    }
}
