//! Topic names, topic filters, and matching one against the other.
//!
//! A *topic name* is what a PUBLISH is sent to; a *topic filter* is what a SUBSCRIBE asks for and
//! may hold the wildcards `+` (exactly one level) and `#` (the parent level and everything below
//! it). Both are UTF-8 strings whose levels are separated by `/`; empty levels are allowed.
//! A filter may also name an MQTT 5 shared subscription, `$share/{ShareName}/{filter}`.
//!
//! [`TopicName`] and [`TopicFilter`] are validated once, when built, and are cheap to clone
//! (they are `Bytes`-backed, so a topic decoded from a packet is a slice of the received buffer).
//! [`validate_topic_name`] and [`validate_topic_filter`] check a `&str` in place for the codec,
//! and [`matches()`] is the allocation-free matcher on the broker's publish path.
//!
//! Spec: MQTT 5.0 sections 4.7 (Topic Names and Topic Filters), 4.8.2 (Shared Subscriptions)
//! and 1.5.4 (UTF-8 Encoded Strings); MQTT 3.1.1 section 4.7 (which numbers its rules the same
//! way, except that the null-character rule is `[MQTT-1.5.3-2]` there).

use alloc::borrow::ToOwned;
use alloc::string::String;
use core::borrow::Borrow;
use core::fmt;
use core::ops::Deref;

use bytestring::ByteString;

/// The longest topic name or filter, in bytes of UTF-8 [MQTT-4.7.3-3].
const MAX_LEN: usize = 65_535;

/// The first level of a shared subscription's filter [MQTT-4.8.2-1].
const SHARE_PREFIX: &str = "$share";

/// Why a topic name or filter was rejected.
///
/// The texts live in [`TopicError::rule`], so that [`TopicError::message`] says exactly what
/// `Display` says without `core::fmt` (which the browser client's package would pay for).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// The topic name or filter is the empty string.
    #[error("{}", self.rule())]
    Empty,
    /// The topic name or filter is longer than 65,535 bytes; holds its length in bytes.
    #[error("{TOO_LONG}{0}{rule}", rule = self.rule())]
    TooLong(usize),
    /// The topic name or filter contains U+0000.
    #[error("{}", self.rule())]
    NullCharacter,
    /// A topic name contains `+` or `#`.
    #[error("{}", self.rule())]
    WildcardInTopicName,
    /// `#` is not a whole level, or not the last level, of a filter.
    #[error("{}", self.rule())]
    MisplacedMultiLevelWildcard,
    /// `+` shares a level of a filter with other characters.
    #[error("{}", self.rule())]
    MisplacedSingleLevelWildcard,
    /// The ShareName of a `$share/...` filter is empty or contains `+` or `#`.
    #[error("{}", self.rule())]
    InvalidShareName,
    /// A `$share/{ShareName}` filter has no topic filter after the ShareName.
    #[error("{}", self.rule())]
    EmptySharedFilter,
}

/// What [`TopicError::TooLong`] says before the length.
const TOO_LONG: &str = "topic is ";

impl TopicError {
    /// The rule broken: the whole message, except for `TooLong`, whose message is
    /// `topic is {length}` followed by this.
    pub const fn rule(&self) -> &'static str {
        match self {
            Self::Empty => {
                "topic names and filters must be at least one character long [MQTT-4.7.3-1]"
            }
            Self::TooLong(_) => " bytes long, more than the 65535 allowed [MQTT-4.7.3-3]",
            Self::NullCharacter => {
                "topic contains the null character U+0000 [MQTT-4.7.3-2] [MQTT-1.5.4-2]"
            }
            Self::WildcardInTopicName => {
                "topic names must not contain the wildcards '+' or '#' [MQTT-4.7.1-1]"
            }
            Self::MisplacedMultiLevelWildcard => {
                "the multi-level wildcard '#' must be a whole level and the last level of a \
                 filter [MQTT-4.7.1-2]"
            }
            Self::MisplacedSingleLevelWildcard => {
                "the single-level wildcard '+' must occupy an entire level of a filter \
                 [MQTT-4.7.1-3]"
            }
            Self::InvalidShareName => {
                "a shared subscription needs a ShareName of at least one character, without \
                 '/', '+' or '#' [MQTT-4.8.2-1] [MQTT-4.8.2-2]"
            }
            Self::EmptySharedFilter => {
                "a shared subscription's ShareName must be followed by '/' and a topic filter \
                 [MQTT-4.8.2-2]"
            }
        }
    }

    /// The same text as `Display`, put together without `core::fmt`.
    pub fn message(&self) -> String {
        match self {
            Self::TooLong(len) => crate::text::with_number(TOO_LONG, *len, self.rule()),
            other => other.rule().to_owned(),
        }
    }
}

/// Checks the rules shared by names and filters that do not depend on the content.
fn check_length(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        Err(TopicError::Empty)
    } else if s.len() > MAX_LEN {
        Err(TopicError::TooLong(s.len()))
    } else {
        Ok(())
    }
}

/// Checks that `s` is a valid topic name: non-empty, at most 65,535 bytes, no U+0000, and no
/// `+` or `#`.
pub fn validate_topic_name(s: &str) -> Result<(), TopicError> {
    check_length(s)?;
    // `+`, `#` and NUL are ASCII, so they never occur inside a multi-byte UTF-8 sequence and a
    // byte scan is exact.
    for &b in s.as_bytes() {
        match b {
            0 => return Err(TopicError::NullCharacter),
            b'+' | b'#' => return Err(TopicError::WildcardInTopicName),
            _ => {}
        }
    }
    Ok(())
}

/// Checks that `s` is a valid topic filter, including the syntax of a shared subscription
/// `$share/{ShareName}/{filter}`.
///
/// A filter whose first level is exactly `$share` must be a complete shared subscription, so
/// `$share`, `$share/` and `$share/name` are rejected; `$shareX/y` is an ordinary filter.
pub fn validate_topic_filter(s: &str) -> Result<(), TopicError> {
    check_length(s)?;
    let filter = if s == SHARE_PREFIX {
        return Err(TopicError::InvalidShareName);
    } else if let Some(rest) = s.strip_prefix("$share/") {
        let (name, filter) = split_level(rest);
        validate_share_name(name)?;
        if filter.is_empty() {
            return Err(TopicError::EmptySharedFilter);
        }
        filter
    } else {
        s
    };
    validate_filter_levels(filter)
}

/// `s` split at its first `/` (which is dropped), or all of `s` and `""` without one. A byte
/// scan, exact for the ASCII `/`: `str::split_once` would bring its character searcher into
/// the browser client's package for this one split. (`get`, not indexing: a `/` is always a
/// character boundary, and indexing would link the panic message for one that is not, with
/// the formatting code it needs.)
fn split_level(s: &str) -> (&str, &str) {
    match s.bytes().position(|b| b == b'/') {
        Some(i) => (s.get(..i).unwrap_or(s), s.get(i + 1..).unwrap_or("")),
        None => (s, ""),
    }
}

/// A ShareName is at least one character and has no `/`, `+` or `#` [MQTT-4.8.2-1]
/// [MQTT-4.8.2-2]. (`/` cannot occur: the caller splits at the first one.) A wildcard is
/// reported before a NUL. One byte scan, exact for these ASCII characters (see
/// [`validate_topic_name`]): `str`'s multi-character search cost the browser client's
/// package its own searcher.
fn validate_share_name(name: &str) -> Result<(), TopicError> {
    let mut nul = false;
    for &b in name.as_bytes() {
        match b {
            b'+' | b'#' => return Err(TopicError::InvalidShareName),
            0 => nul = true,
            _ => {}
        }
    }
    match (name.is_empty(), nul) {
        (true, _) => Err(TopicError::InvalidShareName),
        (_, true) => Err(TopicError::NullCharacter),
        _ => Ok(()),
    }
}

/// Checks the wildcard placement of a (non-shared) filter and that it has no U+0000.
fn validate_filter_levels(s: &str) -> Result<(), TopicError> {
    let bytes = s.as_bytes();
    // `get`, not indexing, though neither can be out of bounds: indexing linked the bounds
    // check's panic and its message into the browser client's package.
    let is_slash = |j: Option<usize>| j.and_then(|j| bytes.get(j)).is_none_or(|&b| b == b'/');
    let starts_level = |i: usize| is_slash(i.checked_sub(1));
    let ends_level = |i: usize| is_slash(Some(i + 1));
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            0 => return Err(TopicError::NullCharacter),
            b'+' if !(starts_level(i) && ends_level(i)) => {
                return Err(TopicError::MisplacedSingleLevelWildcard)
            }
            b'#' if !(starts_level(i) && i + 1 == bytes.len()) => {
                return Err(TopicError::MisplacedMultiLevelWildcard)
            }
            _ => {}
        }
    }
    Ok(())
}

/// Does `filter` match `topic`? Both are assumed valid; `filter` is matched as written, so pass
/// [`TopicFilter::matching_filter`] for a shared subscription.
///
/// `+` matches exactly one level (possibly empty), `#` matches the parent level and any number
/// of child levels (`sport/#` matches `sport`), and a topic starting with `$` is not matched by
/// a filter whose first level is `+` or `#` [MQTT-4.7.2-1]. Levels are compared byte for byte,
/// with no normalization [MQTT-4.7.3-4]. Allocates nothing.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    // Split as bytes on a byte test: `str::split('/')` set up a substring searcher (memchr)
    // for every level, which cost several times the comparison on the broker's publish path.
    let mut filter_levels = filter.as_bytes().split(|&b| b == b'/');
    let mut topic_levels = topic.as_bytes().split(|&b| b == b'/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            // `#` is always the last level of a valid filter, and also matches the parent.
            (Some(b"#"), _) => return true,
            (Some(b"+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The conversions and trait impls that [`TopicName`] and [`TopicFilter`] share.
macro_rules! impl_topic_string {
    ($ty:ident, $validate:path) => {
        impl $ty {
            /// Validates `s` and wraps it without copying (when given a `ByteString`).
            pub fn new(s: impl Into<ByteString>) -> Result<Self, TopicError> {
                let s = s.into();
                $validate(&s)?;
                Ok(Self(s))
            }

            /// Wraps a constant, for topics known at compile time.
            ///
            /// # Panics
            ///
            /// If `s` is not valid.
            pub fn from_static(s: &'static str) -> Self {
                match $validate(s) {
                    Ok(()) => Self(ByteString::from_static(s)),
                    Err(e) => panic!("invalid {}: {s:?}: {e}", stringify!($ty)),
                }
            }

            /// The topic as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The underlying `ByteString`.
            pub fn into_inner(self) -> ByteString {
                self.0
            }

            /// A reference to the underlying `ByteString`, to clone it cheaply.
            pub fn as_bytestring(&self) -> &ByteString {
                &self.0
            }
        }

        impl Deref for $ty {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;

            fn try_from(s: &str) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = TopicError;

            fn try_from(s: String) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<ByteString> for $ty {
            type Error = TopicError;

            fn try_from(s: ByteString) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

/// A topic name: what a PUBLISH is sent to. Non-empty, at most 65,535 bytes of UTF-8, no U+0000,
/// no `+` or `#`.
///
/// Hashes, compares and orders like the `str` it holds, so it can key a map looked up by `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(ByteString);

impl_topic_string!(TopicName, validate_topic_name);

impl TopicName {
    /// Does the name start with `$` (such as `$SYS/...`)? Filters starting with a wildcard do not
    /// match these [MQTT-4.7.2-1].
    pub fn is_system(&self) -> bool {
        self.0.starts_with('$')
    }
}

/// A topic filter: what a SUBSCRIBE asks for. Like a name, but `+` may fill a whole level and
/// `#` may be the whole last level. Includes shared subscriptions `$share/{ShareName}/{filter}`.
///
/// Hashes, compares and orders like the `str` it holds, so it can key a map looked up by `&str`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(ByteString);

impl_topic_string!(TopicFilter, validate_topic_filter);

impl TopicFilter {
    /// Does the filter contain `+` or `#`?
    pub fn has_wildcards(&self) -> bool {
        // A ShareName cannot hold wildcards, so scanning the whole string is exact.
        self.0.contains(['+', '#'])
    }

    /// `Some((share_name, filter))` for `$share/{name}/{filter}` (MQTT 5 shared subscription),
    /// where filter is the inner filter as a &str.
    pub fn shared(&self) -> Option<(&str, &str)> {
        // Validation guarantees a second `/` and non-empty parts after the prefix.
        let (name, filter) = split_level(self.0.strip_prefix("$share/")?);
        Some((name, filter))
    }

    /// The filter used for matching: the inner filter for a shared subscription, the whole
    /// filter otherwise.
    pub fn matching_filter(&self) -> &str {
        match self.shared() {
            Some((_, filter)) => filter,
            None => &self.0,
        }
    }

    /// Does this filter match `topic`? (uses [`matching_filter`](Self::matching_filter))
    pub fn matches(&self, topic: &str) -> bool {
        matches(self.matching_filter(), topic)
    }
}

#[cfg(test)]
mod tests;
