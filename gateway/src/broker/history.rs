//! Recent history: the last N messages of every topic matching a set of
//! configured filters (by default `pets/+/location`), so a page that opens
//! now can draw the trail of the last minutes before live updates arrive.
//! Bounded per topic and in the number of topics.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use aviary_protocol::{matches, ByteString};
use bytes::Bytes;
use parking_lot::Mutex;

/// One remembered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Its topic.
    pub topic: ByteString,
    /// Its payload.
    pub payload: Bytes,
    /// When the broker received it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

/// The history store.
#[derive(Debug)]
pub(crate) struct History {
    filters: Vec<Filter>,
    per_topic: usize,
    max_topics: usize,
    topics: Mutex<HashMap<ByteString, VecDeque<HistoryEntry>>>,
}

impl History {
    pub(crate) fn new(filters: Vec<String>, per_topic: usize, max_topics: usize) -> Self {
        Self {
            filters: filters.into_iter().map(Filter::new).collect(),
            per_topic,
            max_topics,
            topics: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers the message if its topic is one we keep history for.
    pub(crate) fn record(&self, topic: &ByteString, payload: &Bytes) {
        if self.per_topic == 0 || !self.filters.iter().any(|f| f.matches(topic)) {
            return;
        }
        let entry = HistoryEntry {
            topic: topic.clone(),
            // A copy, so history does not pin large receive buffers.
            payload: Bytes::copy_from_slice(payload),
            timestamp_ms: now_ms(),
        };
        let mut topics = self.topics.lock();
        if !topics.contains_key(topic) && topics.len() >= self.max_topics {
            return;
        }
        let ring = topics.entry(topic.clone()).or_default();
        if ring.len() == self.per_topic {
            ring.pop_front();
        }
        ring.push_back(entry);
    }

    /// Entries of topics matching `filter`, received after `since_ms`, the
    /// newest `limit` per topic, oldest first within a topic; topics sorted.
    pub(crate) fn query(&self, filter: &str, limit: usize, since_ms: u64) -> Vec<HistoryEntry> {
        let topics = self.topics.lock();
        let mut names: Vec<&ByteString> = topics.keys().filter(|t| matches(filter, t)).collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            let ring = &topics[name];
            let recent: Vec<&HistoryEntry> =
                ring.iter().filter(|e| e.timestamp_ms > since_ms).collect();
            let skip = recent.len().saturating_sub(limit);
            out.extend(recent.into_iter().skip(skip).cloned());
        }
        out
    }
}

/// A history filter, with the literal text every topic it matches starts with: looked at
/// for every PUBLISH, most of which a comparison of that prefix rules out.
#[derive(Debug)]
struct Filter {
    filter: String,
    prefix: usize,
}

impl Filter {
    fn new(filter: String) -> Self {
        let wildcard = filter.find(['+', '#']).unwrap_or(filter.len());
        // `a/#` matches `a` too: its prefix stops before the separator.
        let prefix = match filter[wildcard..].starts_with('#') {
            true => wildcard.saturating_sub(1),
            false => wildcard,
        };
        Self { filter, prefix }
    }

    fn matches(&self, topic: &str) -> bool {
        topic
            .as_bytes()
            .starts_with(&self.filter.as_bytes()[..self.prefix])
            && matches(&self.filter, topic)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(h: &History, topic: &'static str, payload: &'static str) {
        h.record(
            &ByteString::from_static(topic),
            &Bytes::from_static(payload.as_bytes()),
        );
    }

    #[test]
    fn keeps_only_configured_topics_bounded_per_topic() {
        let h = History::new(vec!["pets/+/location".to_owned()], 3, 10);
        for i in 0..5 {
            record(&h, "pets/1/location", ["a", "b", "c", "d", "e"][i]);
        }
        record(&h, "pets/1/status", "x");
        let got = h.query("pets/+/location", 100, 0);
        let payloads: Vec<_> = got.iter().map(|e| e.payload.clone()).collect();
        assert_eq!(payloads, ["c", "d", "e"]);
        assert!(h.query("pets/+/status", 100, 0).is_empty());
    }

    /// The prefix that rules topics out early never rules out one the filter matches.
    #[test]
    fn a_filters_prefix_rules_out_only_what_it_does_not_match() {
        let cases = [
            ("pets/+/location", "pets/1/location", true),
            ("pets/+/location", "pets/1", false),
            ("pets/#", "pets", true),
            ("pets/#", "pets/1/status", true),
            ("pets/#", "petsx", false),
            ("#", "anything/at/all", true),
            ("#", "$SYS/x", false),
            ("+/x", "a/x", true),
            ("a/b", "a/b", true),
            ("a/b", "a/bc", false),
        ];
        for (filter, topic, want) in cases {
            assert_eq!(
                Filter::new(filter.into()).matches(topic),
                want,
                "{filter} {topic}"
            );
        }
    }

    #[test]
    fn limit_since_and_topic_cap() {
        let h = History::new(vec!["#".to_owned()], 10, 2);
        record(&h, "a", "1");
        record(&h, "a", "2");
        record(&h, "b", "1");
        record(&h, "c", "1");
        let topics: Vec<_> = h
            .query("#", 1, 0)
            .into_iter()
            .map(|e| (e.topic, e.payload))
            .collect();
        assert_eq!(
            topics,
            [
                (ByteString::from_static("a"), Bytes::from_static(b"2")),
                (ByteString::from_static("b"), Bytes::from_static(b"1"))
            ],
            "newest per topic, and no third topic"
        );
        assert!(h.query("#", 10, now_ms() + 1000).is_empty());
    }
}
