//! Tests of topic names and filters: validation, matching and the `$share` form, by
//! example and by property (proptest).

use super::*;
use proptest::prelude::*;
use proptest::sample::select;

fn filter(s: &str) -> TopicFilter {
    TopicFilter::new(s).unwrap()
}

#[test]
fn spec_multi_level_examples() {
    // MQTT 5.0 section 4.7.1.2.
    let f = "sport/tennis/player1/#";
    assert!(matches(f, "sport/tennis/player1"));
    assert!(matches(f, "sport/tennis/player1/ranking"));
    assert!(matches(f, "sport/tennis/player1/score/wimbledon"));
    assert!(!matches(f, "sport/tennis/player2"));
    assert!(!matches(f, "sport/tennis"));
    assert!(matches("sport/#", "sport"));
    assert!(matches("sport/#", "sport/"));
    assert!(matches("#", "sport/tennis"));
    assert!(matches("#", "/"));
}

#[test]
fn spec_single_level_examples() {
    // MQTT 5.0 section 4.7.1.3.
    assert!(matches("sport/tennis/+", "sport/tennis/player1"));
    assert!(matches("sport/tennis/+", "sport/tennis/player2"));
    assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
    assert!(!matches("sport/+", "sport"));
    assert!(matches("sport/+", "sport/"));
    assert!(matches("+/+", "/finance"));
    assert!(matches("/+", "/finance"));
    assert!(!matches("+", "/finance"));
    assert!(matches("+", "finance"));
    assert!(matches("+/tennis/#", "sport/tennis/player1"));
}

#[test]
fn spec_dollar_topics() {
    // MQTT 5.0 section 4.7.2.
    let sys = "$SYS/monitor/Clients";
    assert!(!matches("#", sys));
    assert!(matches("$SYS/#", sys));
    assert!(!matches("+/monitor/Clients", sys));
    assert!(matches("$SYS/monitor/+", sys));
    assert!(!matches("+", "$SYS"));
    assert!(!matches("#", "$"));
    // Only the first level is special.
    assert!(matches("a/+", "a/$b"));
    assert!(matches("a/#", "a/$b/c"));
}

#[test]
fn exact_and_empty_levels() {
    assert!(matches("a//b", "a//b"));
    assert!(!matches("a//b", "a/b"));
    assert!(matches("a/+/b", "a//b"));
    assert!(matches("/a", "/a"));
    assert!(!matches("/a", "a"));
    assert!(matches("a/", "a/"));
    assert!(!matches("a/", "a"));
    assert!(!matches("a", "a/"));
    assert!(!matches("a/b", "a/b/c"));
    assert!(!matches("a/b/c", "a/b"));
    assert!(!matches("Sport", "sport"));
    assert!(matches("+/+/+", "//"));
}

#[test]
fn valid_topic_names() {
    for s in [
        "a",
        "/",
        "//",
        "a//b",
        "/a",
        "a/",
        "$SYS/x",
        "sport/tennis",
        "é/ü",
        " ",
    ] {
        assert_eq!(validate_topic_name(s), Ok(()), "{s:?}");
        assert!(TopicName::new(s).is_ok(), "{s:?}");
    }
}

#[test]
fn invalid_topic_names() {
    let cases = [
        ("", TopicError::Empty),
        ("a/+", TopicError::WildcardInTopicName),
        ("#", TopicError::WildcardInTopicName),
        ("sport+", TopicError::WildcardInTopicName),
        ("a/b#", TopicError::WildcardInTopicName),
        ("a\0b", TopicError::NullCharacter),
    ];
    for (s, e) in cases {
        assert_eq!(validate_topic_name(s), Err(e.clone()), "{s:?}");
        assert_eq!(TopicName::new(s), Err(e), "{s:?}");
    }
}

#[test]
fn length_is_counted_in_bytes() {
    let max = "a".repeat(MAX_LEN);
    assert_eq!(validate_topic_name(&max), Ok(()));
    assert_eq!(validate_topic_filter(&max), Ok(()));
    let over = "a".repeat(MAX_LEN + 1);
    assert_eq!(
        validate_topic_name(&over),
        Err(TopicError::TooLong(MAX_LEN + 1))
    );
    assert_eq!(
        validate_topic_filter(&over),
        Err(TopicError::TooLong(MAX_LEN + 1))
    );
    // 32,768 two-byte characters: fewer characters than the limit, but too many bytes.
    let wide = "é".repeat(32_768);
    assert_eq!(validate_topic_name(&wide), Err(TopicError::TooLong(65_536)));
}

#[test]
fn valid_topic_filters() {
    let cases = [
        "a",
        "/",
        "a//b",
        "/a",
        "a/",
        "#",
        "+",
        "+/+",
        "/+",
        "sport/#",
        "sport/+/player1",
        "+/tennis/#",
        "$SYS/#",
        "a/+/+/#",
        "+//+",
        "$shareX/y",
        "$sharefoo",
        "a/$share",
    ];
    for s in cases {
        assert_eq!(validate_topic_filter(s), Ok(()), "{s:?}");
        assert!(TopicFilter::new(s).is_ok(), "{s:?}");
    }
}

#[test]
fn invalid_topic_filters() {
    use TopicError::*;
    let cases = [
        ("", Empty),
        ("sport+", MisplacedSingleLevelWildcard),
        ("+sport", MisplacedSingleLevelWildcard),
        ("a/b+/c", MisplacedSingleLevelWildcard),
        ("++", MisplacedSingleLevelWildcard),
        ("sport/#/x", MisplacedMultiLevelWildcard),
        ("sport#", MisplacedMultiLevelWildcard),
        ("#/", MisplacedMultiLevelWildcard),
        ("##", MisplacedMultiLevelWildcard),
        ("#a", MisplacedMultiLevelWildcard),
        ("a\0", NullCharacter),
        ("$share", InvalidShareName),
        ("$share/", InvalidShareName),
        ("$share//x", InvalidShareName),
        ("$share/na+me/x", InvalidShareName),
        ("$share/#/x", InvalidShareName),
        ("$share/+", InvalidShareName),
        ("$share/name", EmptySharedFilter),
        ("$share/name/", EmptySharedFilter),
        ("$share/n\0/x", NullCharacter),
        // A wildcard in the ShareName is reported before a NUL, wherever each is.
        ("$share/\0+/x", InvalidShareName),
        ("$share/g/a+", MisplacedSingleLevelWildcard),
        ("$share/g/#/a", MisplacedMultiLevelWildcard),
    ];
    for (s, e) in cases {
        assert_eq!(validate_topic_filter(s), Err(e.clone()), "{s:?}");
        assert_eq!(TopicFilter::new(s), Err(e), "{s:?}");
    }
}

#[test]
fn shared_subscriptions() {
    let f = filter("$share/group/sport/+/score");
    assert_eq!(f.shared(), Some(("group", "sport/+/score")));
    assert_eq!(f.matching_filter(), "sport/+/score");
    assert!(f.matches("sport/tennis/score"));
    assert!(!f.matches("$share/group/sport/tennis/score"));
    assert!(f.has_wildcards());

    // The inner filter may be anything valid, including a `/`-led one or `$share` itself.
    assert_eq!(filter("$share/g//a").shared(), Some(("g", "/a")));
    assert_eq!(filter("$share/g/#").shared(), Some(("g", "#")));
    assert_eq!(filter("$share/g/$share").shared(), Some(("g", "$share")));
    assert!(filter("$share/g/#").matches("a/b"));
    assert!(!filter("$share/g/a").has_wildcards());

    for s in ["$shareX/y", "a/b", "#", "a/$share/b"] {
        let f = filter(s);
        assert_eq!(f.shared(), None, "{s:?}");
        assert_eq!(f.matching_filter(), s);
    }
}

#[test]
fn conversions_and_traits() {
    let n = TopicName::from_static("pets/1/location");
    assert_eq!(n, "pets/1/location");
    assert_eq!(&n, "pets/1/location");
    assert_eq!(n.as_str(), "pets/1/location");
    assert_eq!(n.len(), 15); // through Deref<Target = str>
    assert_eq!(n.to_string(), "pets/1/location");
    assert_eq!(format!("{n:?}"), "\"pets/1/location\"");
    assert_eq!(n.as_bytestring(), "pets/1/location");
    assert_eq!(TopicName::try_from("pets/1/location").unwrap(), n);
    assert_eq!(
        TopicName::try_from(String::from("pets/1/location")).unwrap(),
        n
    );
    let bs = ByteString::from_static("pets/1/location");
    assert_eq!(TopicName::try_from(bs.clone()).unwrap(), n);
    assert_eq!(n.clone().into_inner(), bs);
    assert!(!n.is_system());
    assert!(TopicName::from_static("$SYS/uptime").is_system());

    let mut set = std::collections::HashSet::new();
    set.insert(filter("pets/+/status"));
    assert!(set.contains("pets/+/status"));
    assert!(TopicFilter::try_from("a+").is_err());
    assert!(filter("pets/+/location").matches(&n));
}

#[test]
#[should_panic(expected = "invalid TopicName")]
fn from_static_panics_on_invalid() {
    let _ = TopicName::from_static("a/+");
}

#[test]
fn error_messages_cite_rules() {
    use TopicError::*;
    let all = [
        Empty,
        TooLong(70_000),
        NullCharacter,
        WildcardInTopicName,
        MisplacedMultiLevelWildcard,
        MisplacedSingleLevelWildcard,
        InvalidShareName,
        EmptySharedFilter,
    ];
    for e in all {
        assert!(e.to_string().contains("[MQTT-"), "{e:?}");
        assert_eq!(e.message(), e.to_string());
    }
    assert_eq!(
        TooLong(70_000).message(),
        "topic is 70000 bytes long, more than the 65535 allowed [MQTT-4.7.3-3]"
    );
    assert_eq!(
        MisplacedMultiLevelWildcard.message(),
        "the multi-level wildcard '#' must be a whole level and the last level of a filter \
         [MQTT-4.7.1-2]"
    );
}

/// The matching rules restated over collected levels, independently of [`matches()`]: a
/// filter ending in `#` matches any topic whose leading levels match the rest of the filter
/// (the parent level included); otherwise the level counts must be equal.
fn reference_matches(filter: &str, topic: &str) -> bool {
    let f: Vec<&str> = filter.split('/').collect();
    let t: Vec<&str> = topic.split('/').collect();
    if topic.starts_with('$') && (f[0] == "+" || f[0] == "#") {
        return false;
    }
    let level_ok = |(f, t): (&&str, &&str)| *f == "+" || f == t;
    if f.last() == Some(&"#") {
        let prefix = &f[..f.len() - 1];
        t.len() >= prefix.len() && prefix.iter().zip(&t).all(level_ok)
    } else {
        t.len() == f.len() && f.iter().zip(&t).all(level_ok)
    }
}

/// Valid topic names: 1 to 6 levels of any characters but `/`, `+`, `#` and NUL.
fn topic_name() -> impl Strategy<Value = String> {
    prop::collection::vec("[^/+#\\x00]{0,5}", 1..7)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |s| !s.is_empty())
}

/// Levels from a small alphabet, so that filters and topics collide often.
fn small_levels(with_wildcards: bool) -> impl Strategy<Value = String> {
    let mut alphabet = vec!["a", "b", "ab", "", "$", "$a"];
    if with_wildcards {
        alphabet.extend(["+", "#", "+", "#"]);
    }
    prop::collection::vec(select(alphabet), 1..5).prop_map(|levels| levels.join("/"))
}

proptest! {
    // Cheap cases, and the raw-string generators yield mostly invalid filters: run more.
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn topic_matches_hash_and_itself(topic in topic_name()) {
        prop_assert_eq!(validate_topic_name(&topic), Ok(()));
        prop_assert_eq!(matches("#", &topic), !topic.starts_with('$'));
        prop_assert!(matches(&topic, &topic));
    }

    #[test]
    fn any_level_replaced_by_plus_matches(topic in topic_name(), index in any::<prop::sample::Index>()) {
        let mut levels: Vec<&str> = topic.split('/').collect();
        let i = index.index(levels.len());
        levels[i] = "+";
        let filter = levels.join("/");
        prop_assert_eq!(validate_topic_filter(&filter), Ok(()));
        let expected = !(i == 0 && topic.starts_with('$'));
        prop_assert_eq!(matches(&filter, &topic), expected, "{} vs {}", filter, topic);
    }

    #[test]
    fn validation_never_panics(s in any::<String>(), t in "(\\$share/)?[ab$+#/\\x00]{0,12}") {
        for s in [&s, &t] {
            let name = validate_topic_name(s);
            let filter = validate_topic_filter(s);
            prop_assert_eq!(TopicFilter::new(s.as_str()).is_ok(), filter.is_ok());
            // Every valid name is a valid filter, unless it collides with `$share`.
            if name.is_ok() && !s.starts_with(SHARE_PREFIX) {
                prop_assert_eq!(filter, Ok(()));
            }
        }
    }

    #[test]
    fn matches_agrees_with_reference(f in small_levels(true), t in small_levels(false)) {
        if validate_topic_filter(&f).is_ok() && validate_topic_name(&t).is_ok() {
            prop_assert_eq!(matches(&f, &t), reference_matches(&f, &t), "{} vs {}", f, t);
        }
    }

    #[test]
    fn matches_agrees_with_reference_on_raw_strings(
        f in "[ab$+#/]{1,10}",
        t in "[ab$/]{1,10}",
    ) {
        if validate_topic_filter(&f).is_ok() {
            prop_assert_eq!(matches(&f, &t), reference_matches(&f, &t), "{} vs {}", f, t);
        }
    }
}
