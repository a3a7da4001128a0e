//! What a cluster node needs of the subscription tree: the interest it tells NATS about, and
//! matching for messages NATS delivered for one filter or one shared group.
//!
//! A node is interested in each filter with ordinary subscriptions, and in each shared group
//! (`$share/{group}/{filter}`) with a member here. Shared groups are served across the cluster:
//! NATS gives each of the group's messages to one node with members (a queue group, or a
//! consumer the nodes share), and that node gives it to one of its members. So matching a
//! message routed the ordinary way leaves shared groups out, and [`SubscriptionTree::matches_group`]
//! picks the member.

use aviary_protocol::TopicFilter;

use super::{ClientKey, Collector, Delivery, NodeId, SubscriptionTree, ROOT};

impl SubscriptionTree {
    /// Starts noting interest changes, and returns the interest so far: every filter with
    /// ordinary subscriptions, and every shared group as `$share/{group}/{filter}`. From now
    /// on shared groups are left to the cluster.
    pub(crate) fn track_interest(&mut self) -> Vec<Box<str>> {
        // Shared groups are no longer matched here (a change under the routing write lock,
        // which retires every cached match).
        self.interest = Some(Vec::new());
        let mut filters = Vec::new();
        let mut stack = vec![(ROOT, String::new())];
        while let Some((id, path)) = stack.pop() {
            let node = &self.nodes[id];
            if let (Some(subscribers), false) = (&node.subscribers, id == ROOT) {
                if !subscribers.direct.is_empty() {
                    filters.push(path.clone().into_boxed_str());
                }
                for group in &subscribers.shared {
                    filters.push(format!("$share/{}/{path}", group.name).into_boxed_str());
                }
            }
            let join = |level: &str| match id {
                ROOT => level.to_owned(),
                _ => format!("{path}/{level}"),
            };
            for (level, child) in node.children.iter() {
                stack.push((child, join(level)));
            }
            for (level, child) in [("+", node.single), ("#", node.multi)] {
                if let Some(child) = child {
                    stack.push((child, join(level)));
                }
            }
        }
        filters
    }

    /// The interest changes noted since the last call.
    pub(crate) fn take_interest(&mut self) -> Vec<(Box<str>, bool)> {
        self.interest
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Notes that `filter` (ordinary, or a shared group's) gained its first subscription here
    /// or lost its last.
    pub(super) fn note_interest(&mut self, filter: &TopicFilter, present: bool) {
        if let Some(changes) = &mut self.interest {
            changes.push((filter.as_str().into(), present));
        }
    }

    /// Appends to `out` whom to send a PUBLISH on `topic` to through the ordinary
    /// subscriptions to exactly `filter`, if it matches `topic`: a cluster node's share of a
    /// message NATS delivered for that filter.
    pub(crate) fn matches_filter(
        &self,
        filter: &str,
        topic: &str,
        is_online: impl Fn(ClientKey) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        let Some(id) = self.find(filter, topic) else {
            return;
        };
        let mut collector = Collector {
            publisher: None,
            is_online,
            groups: false,
            out,
            largest: None,
            others: Vec::new(),
            picked: false,
        };
        collector.collect(self.nodes[id].subscribers.as_deref());
        collector.finish();
    }

    /// Appends to `out` the member of shared group `group` on `filter` that gets a PUBLISH on
    /// `topic` (round robin, online members first), if the group has members here and
    /// `filter` matches `topic`.
    pub(crate) fn matches_group(
        &self,
        group: &str,
        filter: &str,
        topic: &str,
        is_online: impl Fn(ClientKey) -> bool,
        out: &mut Vec<Delivery>,
    ) {
        let Some(id) = self.find(filter, topic) else {
            return;
        };
        let subscribers = self.nodes[id].subscribers.as_deref();
        let shared = subscribers.into_iter().flat_map(|s| &s.shared);
        if let Some(group) = shared.into_iter().find(|g| *g.name == *group) {
            let (client, sub) = group.pick(is_online);
            out.push(Delivery::new(client, sub, true));
        }
    }

    /// The node where `filter` ends, if it matches `topic` and has one.
    fn find(&self, filter: &str, topic: &str) -> Option<NodeId> {
        if !aviary_protocol::matches(filter, topic) {
            return None;
        }
        let mut id = ROOT;
        for level in filter.split('/') {
            id = self.nodes[id].child(level)?;
        }
        Some(id)
    }
}
