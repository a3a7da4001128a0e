//! The subscriptions that end at one node of the tree: ordinary ones, one per client, and
//! shared groups (`$share/{group}/{filter}`), each with its members in round-robin order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use aviary_protocol::TopicFilter;

use super::{ClientKey, KeyHashing, Subscription};

/// The subscriptions of one filter at one node: ordinary, and per shared group.
#[derive(Debug, Default)]
pub(super) struct Subscribers {
    /// Ordinary subscriptions, one per client.
    pub(super) direct: HashMap<ClientKey, Subscription, KeyHashing>,
    /// Shared subscriptions `$share/{group}/{filter}`. A filter rarely has more than a few
    /// groups, so a scan by name beats a map.
    pub(super) shared: Vec<SharedGroup>,
}

impl Subscribers {
    /// Adds or replaces a subscription; true if it replaced one.
    pub(super) fn insert(
        &mut self,
        client: ClientKey,
        group: Option<&str>,
        sub: Subscription,
    ) -> bool {
        let Some(name) = group else {
            return self.direct.insert(client, sub).is_some();
        };
        let index = self.shared.iter().position(|g| *g.name == *name);
        let index = index.unwrap_or_else(|| {
            self.shared.push(SharedGroup::new(name));
            self.shared.len() - 1
        });
        self.shared[index].upsert(client, sub)
    }

    /// Removes a subscription; true if it existed.
    pub(super) fn remove(&mut self, client: ClientKey, group: Option<&str>) -> bool {
        let Some(name) = group else {
            return self.direct.remove(&client).is_some();
        };
        let Some(index) = self.shared.iter().position(|g| *g.name == *name) else {
            return false;
        };
        let removed = self.shared[index].remove(client);
        if self.shared[index].members.is_empty() {
            self.shared.swap_remove(index);
        }
        removed
    }

    /// Whether there are ordinary subscriptions (`group` None), or members of `group`.
    pub(super) fn has(&self, group: Option<&str>) -> bool {
        match group {
            None => !self.direct.is_empty(),
            Some(name) => self.shared.iter().any(|g| *g.name == *name),
        }
    }

    /// No subscriptions left.
    pub(super) fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.shared.is_empty()
    }
}

/// The members of one shared subscription group for one filter.
#[derive(Debug)]
pub(super) struct SharedGroup {
    /// The ShareName.
    pub(super) name: Box<str>,
    /// Members in subscription order, which is the round-robin order. Never empty in the tree.
    pub(super) members: Vec<(ClientKey, Subscription)>,
    /// Where the next round-robin pick starts; atomic so that matching can take `&self`.
    pub(super) cursor: AtomicUsize,
}

impl SharedGroup {
    /// A group without members yet.
    pub(super) fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            members: Vec::new(),
            cursor: AtomicUsize::new(0),
        }
    }

    /// Adds or replaces a member's subscription; true if it replaced one. A member that
    /// subscribes again keeps its place in the rotation.
    pub(super) fn upsert(&mut self, client: ClientKey, sub: Subscription) -> bool {
        if let Some(member) = self.members.iter_mut().find(|(c, _)| *c == client) {
            member.1 = sub;
            return true;
        }
        self.members.push((client, sub));
        false
    }

    /// Removes a member; true if it was one. The others keep their order, so turns stay fair.
    pub(super) fn remove(&mut self, client: ClientKey) -> bool {
        let index = self.members.iter().position(|(c, _)| *c == client);
        index.map(|index| self.members.remove(index)).is_some()
    }

    /// The member to receive the next message: round robin over the online members, or over all
    /// of them when none is online (the broker queues for the one picked).
    ///
    /// Concurrent publishers may race on the cursor and now and then pick the same member: that
    /// costs a little evenness, never a message.
    pub(super) fn pick(&self, is_online: impl Fn(ClientKey) -> bool) -> (ClientKey, &Subscription) {
        let count = self.members.len();
        let first = self.cursor.fetch_add(1, Ordering::Relaxed) % count;
        let mut turns = (0..count).map(|step| (first + step) % count);
        let chosen = match turns.find(|&i| is_online(self.members[i].0)) {
            Some(index) if index != first => {
                // Offline members were skipped: go on after the one chosen, so that the online
                // members still take even turns.
                self.cursor.store(index + 1, Ordering::Relaxed);
                index
            }
            _ => first,
        };
        let (client, sub) = &self.members[chosen];
        (*client, sub)
    }
}

/// The ShareName of a shared subscription's filter.
pub(super) fn share_name(filter: &TopicFilter) -> Option<&str> {
    filter.shared().map(|(name, _)| name)
}
