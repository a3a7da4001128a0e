//! An ordered, resumable walk over the retained messages that match a filter.
//!
//! Topics come out in level order: compared level by level, a topic comes right before the
//! topics below it (`a`, `a/b`, `a/c`, `ab`). That is the pre-order of the trie with its
//! children sorted, so the walk is a depth-first search with one frame per level, each frame
//! iterating its node's children lazily (a `+` over 100,000 pets never copies the 100,000).
//!
//! Resuming after topic `T` does not replay the topics before it: the walk goes down `T`'s path
//! only, starting each level's children at `T`'s level and skipping the subtrees before it, so
//! resuming costs one ordered lookup per level. `T` need not be retained any more: if it was
//! removed in between, the walk starts at whatever comes after it now.

use std::collections::btree_map;
use std::ops::Bound;

use super::{Entry, Node, NodeId, ROOT};

/// The messages matching a filter, in topic order; from [`super::RetainedStore::walk`].
#[derive(Debug)]
pub(crate) struct Walk<'s, 'f, M> {
    nodes: &'s [Node<M>],
    /// The filter, split into levels.
    filter: Vec<&'f str>,
    /// The levels of the topic to resume after (empty: from the start).
    after: Vec<&'f str>,
    /// One frame per level being walked.
    stack: Vec<Frame<'s>>,
}

/// A node whose own message has been dealt with, and whose children are being walked.
#[derive(Debug)]
struct Frame<'a> {
    /// The children still to visit, in order.
    children: btree_map::Range<'a, Box<str>, NodeId>,
    /// Index of the children's level in the topic (0 for the root's children).
    level: usize,
    /// The filter's `#` has been reached: everything below matches.
    all: bool,
    /// The node is a prefix of the topic to resume after, so the child at that topic's next
    /// level is too.
    on_path: bool,
}

impl<'s, 'f, M> Walk<'s, 'f, M> {
    pub(super) fn new(nodes: &'s [Node<M>], filter: &'f str, after: Option<&'f str>) -> Self {
        let after: Vec<&str> = after.map_or_else(Vec::new, |t| t.split('/').collect());
        let on_path = !after.is_empty();
        let mut walk = Self {
            nodes,
            filter: filter.split('/').collect(),
            after,
            stack: Vec::new(),
        };
        walk.descend(ROOT, 0, false, on_path);
        walk
    }

    /// Pushes the frame for node `id`, whose children are at topic level `level`: the children
    /// the filter lets through, from the resume point on if the node is on its path.
    fn descend(&mut self, id: NodeId, level: usize, all: bool, on_path: bool) {
        let children = &self.nodes[id].children;
        if children.is_empty() {
            return;
        }
        // The node is the resume topic itself: its children all come after it.
        let on_path = on_path && level < self.after.len();
        let from = if on_path {
            Bound::Included(self.after[level])
        } else {
            Bound::Unbounded
        };
        let (all, range) = match (all, self.filter.get(level).copied()) {
            (true, _) | (false, Some("#")) => {
                (true, children.range::<str, _>((from, Bound::Unbounded)))
            }
            (false, Some("+")) => (false, children.range::<str, _>((from, Bound::Unbounded))),
            (false, Some(literal)) => {
                if matches!(from, Bound::Included(start) if literal < start) {
                    return;
                }
                let only = Bound::Included(literal);
                (false, children.range::<str, _>((only, only)))
            }
            // The filter ends here: nothing below matches it.
            (false, None) => return,
        };
        self.stack.push(Frame {
            children: range,
            level,
            all,
            on_path,
        });
    }

    /// Whether a node at `depth` levels, reached along the filter, holds a matching message:
    /// the filter ends there, or goes on with a `#`, which matches its parent too
    /// [MQTT-4.7.1-2].
    fn ends_filter(&self, depth: usize, all: bool) -> bool {
        all || depth == self.filter.len() || self.filter.get(depth) == Some(&"#")
    }
}

impl<'s, M> Iterator for Walk<'s, '_, M> {
    type Item = &'s Entry<M>;

    fn next(&mut self) -> Option<&'s Entry<M>> {
        loop {
            let frame = self.stack.last_mut()?;
            let Some((level_name, &child)) = frame.children.next() else {
                self.stack.pop();
                continue;
            };
            let (level, all) = (frame.level, frame.all);
            // Wildcards in the first level do not match `$` topics [MQTT-4.7.2-1].
            let wildcard = all || self.filter[0] == "+";
            if level == 0 && wildcard && level_name.starts_with('$') {
                continue;
            }
            // A node on the resume path is the resume topic or a prefix of it: its own
            // message, if any, came before.
            let on_path = frame.on_path && **level_name == *self.after[level];
            let depth = level + 1;
            let matches = !on_path && self.ends_filter(depth, all);
            self.descend(child, depth, all, on_path);
            if let (true, Some(entry)) = (matches, &self.nodes[child].entry) {
                return Some(entry);
            }
        }
    }
}
