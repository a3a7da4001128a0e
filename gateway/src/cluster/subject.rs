//! MQTT topics as NATS subjects, reversibly, and MQTT filters as the NATS subjects that carry
//! every topic they match.
//!
//! An MQTT topic is `/`-separated levels of any UTF-8 but `+`, `#` and NUL, where a level may
//! be empty or hold `.`, spaces, `*` or `>`; a NATS subject is `.`-separated non-empty tokens
//! in which `.`, whitespace, `*` and `>` mean something. So each level becomes one token:
//! letters, digits and `-` stay as they are, every other byte is `_` and two hex digits, and an
//! empty level is a lone `_` (which no escape can produce). The mapping is one-to-one, so a
//! node turns a subject back into the exact topic.
//!
//! A filter's `+` is NATS's `*` and a trailing `#` is `>`, except that `a/#` also matches `a`
//! itself, which `a.>` does not: such a filter needs two subjects. NATS's interest is a
//! superset of MQTT's (a `*` also matches a `$`-topic's first level), which is all it must be:
//! the receiving node routes every message through its own subscription tree, which applies
//! MQTT's rules exactly.

use std::fmt::Write as _;

/// Why a subject is not one this mapping made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SubjectError {
    /// It does not start with the expected prefix.
    #[error("subject {0:?} is not under the topic prefix")]
    Prefix(String),
    /// A token holds something the encoding never writes.
    #[error("subject token {0:?} is not an encoded topic level")]
    Token(String),
    /// The decoded bytes are not UTF-8.
    #[error("subject {0:?} does not decode to UTF-8")]
    Utf8(String),
}

/// Whether a byte is written as itself in a token.
fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Appends the token of one topic level.
fn push_level(out: &mut String, level: &str) {
    if level.is_empty() {
        out.push('_');
        return;
    }
    for &b in level.as_bytes() {
        if plain(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "_{b:02X}");
        }
    }
}

/// One NATS token (or key-value key) for any string, with the same escapes as a topic level.
pub(crate) fn token(level: &str) -> String {
    let mut out = String::with_capacity(level.len() + 1);
    push_level(&mut out, level);
    out
}

/// The string [`token`] made `token` from.
pub(crate) fn untoken(token: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(token.len());
    decode_token(token, &mut bytes)?;
    String::from_utf8(bytes).ok()
}

/// The subject of `topic` under `prefix` (like `aviary.t`).
pub(crate) fn topic_to_subject(prefix: &str, topic: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + topic.len() * 3 / 2 + 1);
    out.push_str(prefix);
    for level in topic.split('/') {
        out.push('.');
        push_level(&mut out, level);
    }
    out
}

/// The topic `subject` was made from.
pub(crate) fn subject_to_topic(prefix: &str, subject: &str) -> Result<String, SubjectError> {
    let rest = subject
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('.'))
        .ok_or_else(|| SubjectError::Prefix(subject.to_owned()))?;
    let mut bytes = Vec::with_capacity(rest.len());
    for (i, token) in rest.split('.').enumerate() {
        if i > 0 {
            bytes.push(b'/');
        }
        decode_token(token, &mut bytes).ok_or_else(|| SubjectError::Token(token.to_owned()))?;
    }
    String::from_utf8(bytes).map_err(|_| SubjectError::Utf8(subject.to_owned()))
}

/// Appends the level bytes of `token`; `None` if the encoding cannot have written it.
fn decode_token(token: &str, out: &mut Vec<u8>) -> Option<()> {
    if token == "_" {
        return Some(());
    }
    let b = token.as_bytes();
    let mut i = 0;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        if b[i] == b'_' {
            let hex = token.get(i + 1..i + 3)?;
            let byte = u8::from_str_radix(hex, 16).ok()?;
            // Only bytes that are never written plain are escaped, in upper case.
            if plain(byte) || hex.bytes().any(|h| h.is_ascii_lowercase()) {
                return None;
            }
            out.push(byte);
            i += 3;
        } else if plain(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    Some(())
}

/// The subjects that carry every topic `filter` matches (the inner filter of a shared
/// subscription): one, or two for a filter ending in `/#`.
pub(crate) fn filter_to_subjects(prefix: &str, filter: &str) -> Vec<String> {
    let mut subject = String::with_capacity(prefix.len() + filter.len() * 3 / 2 + 1);
    subject.push_str(prefix);
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        match *level {
            "#" if i == 0 => {
                subject.push_str(".>");
                return vec![subject];
            }
            // `a/#` matches `a` and everything below it.
            "#" => return vec![subject.clone(), subject + ".>"],
            "+" => subject.push_str(".*"),
            level => {
                subject.push('.');
                push_level(&mut subject, level);
            }
        }
    }
    vec![subject]
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const P: &str = "aviary.t";

    /// NATS's own matching of a subject against a subscription subject.
    fn nats_matches(sub: &str, subject: &str) -> bool {
        let (s, t): (Vec<&str>, Vec<&str>) =
            (sub.split('.').collect(), subject.split('.').collect());
        for (i, token) in s.iter().enumerate() {
            match *token {
                ">" => return t.len() > i,
                "*" if i < t.len() => {}
                tok if t.get(i) == Some(&tok) => {}
                _ => return false,
            }
        }
        s.len() == t.len()
    }

    fn nats_token_ok(token: &str) -> bool {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| !b.is_ascii_whitespace() && b != b'.' && b != b'*' && b != b'>')
    }

    #[test]
    fn examples() {
        assert_eq!(
            topic_to_subject(P, "pets/123/location"),
            "aviary.t.pets.123.location"
        );
        assert_eq!(topic_to_subject(P, "a.b/c d"), "aviary.t.a_2Eb.c_20d");
        assert_eq!(topic_to_subject(P, "/x//"), "aviary.t._.x._._");
        assert_eq!(topic_to_subject(P, "$SYS/*/>"), "aviary.t._24SYS._2A._3E");
        assert_eq!(topic_to_subject(P, "_"), "aviary.t._5F");
        assert_eq!(topic_to_subject(P, "chat/é"), "aviary.t.chat._C3_A9");
        assert_eq!(
            filter_to_subjects(P, "pets/+/location"),
            ["aviary.t.pets.*.location"]
        );
        assert_eq!(filter_to_subjects(P, "#"), ["aviary.t.>"]);
        assert_eq!(
            filter_to_subjects(P, "pets/#"),
            ["aviary.t.pets", "aviary.t.pets.>"]
        );
        assert_eq!(filter_to_subjects(P, "a.b/+"), ["aviary.t.a_2Eb.*"]);
    }

    #[test]
    fn tokens_round_trip() {
        for s in ["", "client-1", "a/b.c d", "é_*>"] {
            let t = token(s);
            assert!(nats_token_ok(&t), "{t}");
            assert_eq!(untoken(&t).as_deref(), Some(s));
        }
    }

    #[test]
    fn foreign_subjects_are_refused() {
        assert!(matches!(
            subject_to_topic(P, "other.x"),
            Err(SubjectError::Prefix(_))
        ));
        assert!(matches!(
            subject_to_topic(P, "aviary.t"),
            Err(SubjectError::Prefix(_))
        ));
        for bad in ["a_2", "a_zz", "a_41", "a_2e", "a b", "__"] {
            let subject = format!("{P}.{bad}");
            assert!(subject_to_topic(P, &subject).is_err(), "{bad}");
        }
        assert!(matches!(
            subject_to_topic(P, "aviary.t._FF"),
            Err(SubjectError::Utf8(_))
        ));
    }

    fn topic() -> impl Strategy<Value = String> {
        let level = prop_oneof![
            Just(String::new()),
            "[a-z0-9]{1,6}",
            "[ ._*>$é/-]{1,4}".prop_map(|s| s.replace('/', "")),
            any::<String>().prop_map(|s| s.replace(['/', '+', '#', '\0'], "")),
        ];
        prop::collection::vec(level, 1..6).prop_map(|levels| levels.join("/"))
    }

    fn filter() -> impl Strategy<Value = String> {
        let level = prop_oneof![
            Just("+".to_owned()),
            Just(String::new()),
            "[a-z]{1,3}",
            "[ .*>$]{1,2}",
        ];
        (prop::collection::vec(level, 1..5), any::<bool>()).prop_map(|(mut levels, hash)| {
            if hash {
                levels.push("#".to_owned());
            }
            levels.join("/")
        })
    }

    proptest! {
        #[test]
        fn topics_round_trip_through_valid_subjects(t in topic()) {
            let subject = topic_to_subject(P, &t);
            prop_assert!(subject.split('.').skip(2).all(nats_token_ok), "{subject}");
            prop_assert_eq!(subject_to_topic(P, &subject), Ok(t));
        }

        #[test]
        fn a_filter_s_subjects_carry_every_topic_it_matches(f in filter(), t in topic()) {
            let subject = topic_to_subject(P, &t);
            let carried = filter_to_subjects(P, &f).iter().any(|s| nats_matches(s, &subject));
            // Exactly MQTT's matching, except that NATS may carry a `$` topic to a wildcard
            // filter, which the receiving node's own routing then leaves out.
            if aviary_protocol::matches(&f, &t) {
                prop_assert!(carried, "{f} matches {t}, but {subject} is not carried");
            } else if !t.starts_with('$') {
                prop_assert!(!carried, "{f} does not match {t}, but {subject} is carried");
            }
        }
    }
}
