//! MQTT 5 topic aliases, both ways.
//!
//! Outgoing: once the broker allows aliases (CONNACK Topic Alias Maximum), the first PUBLISH to
//! a topic carries the topic and a new alias, later ones only the alias, which saves the topic's
//! bytes on every message of a busy feed. Incoming: the broker may do the same to us, up to the
//! maximum we announced. Both maps live for one connection only [MQTT-3.3.2-7].

use alloc::vec::Vec;
use core::num::NonZeroU16;

use aviary_protocol::{ByteString, Publish};

/// Aliases this client assigns to topics it publishes to.
#[derive(Debug, Default)]
pub(crate) struct OutgoingAliases {
    max: u16,
    /// The topic of alias `i + 1` at index `i`: aliases are handed out in order. Looked up by
    /// a scan, which for the few topics a browser publishes to beats a hash map's code size.
    topics: Vec<ByteString>,
}

impl OutgoingAliases {
    /// Starts a connection on which the broker accepts up to `max` aliases.
    pub(crate) fn reset(&mut self, max: u16) {
        self.max = max;
        self.topics.clear();
    }

    /// Rewrites `publish` (a copy about to be encoded) to use an alias where one is allowed.
    pub(crate) fn apply(&mut self, publish: &mut Publish) {
        if self.max == 0 {
            return;
        }
        let known = self.topics.iter().position(|t| *t == publish.topic);
        if let Some(alias) = known.and_then(alias_at) {
            publish.properties.topic_alias = Some(alias);
            publish.topic = ByteString::new();
        } else if self.topics.len() < usize::from(self.max) {
            if let Some(alias) = alias_at(self.topics.len()) {
                self.topics.push(publish.topic.clone());
                publish.properties.topic_alias = Some(alias);
            }
        }
    }
}

/// The alias of the topic at `index`: `index + 1`. The list never holds more than `max` (a
/// u16) topics, so the conversion cannot fail.
fn alias_at(index: usize) -> Option<NonZeroU16> {
    u16::try_from(index + 1).ok().and_then(NonZeroU16::new)
}

/// Why an incoming alias could not be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasError {
    /// The alias is 0 or above the maximum this client announced [MQTT-3.3.2-9].
    OutOfRange,
    /// An empty topic with an alias the broker never defined [MQTT-3.3.4-9].
    Unknown,
}

/// Aliases the broker assigns to topics it sends us.
#[derive(Debug, Default)]
pub(crate) struct IncomingAliases {
    max: u16,
    /// The topic of alias `i + 1` at index `i`, once the broker has defined it.
    topics: Vec<Option<ByteString>>,
}

impl IncomingAliases {
    /// Starts a connection on which we accept up to `max` aliases.
    pub(crate) fn reset(&mut self, max: u16) {
        self.max = max;
        self.topics.clear();
    }

    /// Records or resolves the alias of an incoming PUBLISH, leaving its full topic in place.
    pub(crate) fn resolve(&mut self, publish: &mut Publish) -> Result<(), AliasError> {
        let Some(alias) = publish.properties.topic_alias else {
            return Ok(());
        };
        if alias.get() > self.max {
            return Err(AliasError::OutOfRange);
        }
        let i = usize::from(alias.get() - 1);
        if publish.topic.is_empty() {
            publish.topic = self
                .topics
                .get(i)
                .and_then(Option::clone)
                .ok_or(AliasError::Unknown)?;
        } else {
            // Pushes, not `resize`, whose fill by cloning was code of its own.
            while self.topics.len() <= i {
                self.topics.push(None);
            }
            if let Some(slot) = self.topics.get_mut(i) {
                *slot = Some(publish.topic.clone());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outgoing_aliases_replace_repeated_topics_up_to_the_maximum() {
        let mut out = OutgoingAliases::default();
        out.reset(1);
        let mut first = Publish::new("pets/1/location", &b""[..]);
        out.apply(&mut first);
        assert_eq!(
            (
                &*first.topic,
                first.properties.topic_alias.map(NonZeroU16::get)
            ),
            ("pets/1/location", Some(1))
        );
        let mut again = Publish::new("pets/1/location", &b""[..]);
        out.apply(&mut again);
        assert_eq!(
            (
                &*again.topic,
                again.properties.topic_alias.map(NonZeroU16::get)
            ),
            ("", Some(1))
        );
        let mut other = Publish::new("pets/2/location", &b""[..]);
        out.apply(&mut other);
        assert_eq!(other.properties.topic_alias, None, "no alias left");
        out.reset(0);
        let mut none = Publish::new("pets/1/location", &b""[..]);
        out.apply(&mut none);
        assert_eq!(none.properties.topic_alias, None);
    }

    #[test]
    fn incoming_aliases_are_learned_then_resolved() {
        let mut inc = IncomingAliases::default();
        inc.reset(10);
        let mut define = Publish::new("a/b", &b""[..]);
        define.properties.topic_alias = NonZeroU16::new(3);
        inc.resolve(&mut define).unwrap();
        let mut used = Publish::new("", &b""[..]);
        used.properties.topic_alias = NonZeroU16::new(3);
        inc.resolve(&mut used).unwrap();
        assert_eq!(&*used.topic, "a/b");
        used.topic = ByteString::new();
        used.properties.topic_alias = NonZeroU16::new(4);
        assert_eq!(inc.resolve(&mut used), Err(AliasError::Unknown));
        used.properties.topic_alias = NonZeroU16::new(11);
        assert_eq!(inc.resolve(&mut used), Err(AliasError::OutOfRange));
    }
}
