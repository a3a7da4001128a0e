//! Tests of the ACL file: the seed ACL of issue 11 as a matrix, patterns,
//! deny rules, the anonymous section, parse errors, and subscription reach.

use std::path::Path;

use super::{covers, overlaps, Access, AclError, AclFile};

const SEED: &str = "\
user device-123
topic write pets/123/#
topic read pets/123/commands/#
user server
topic read pets/#
topic write pets/+/commands/#
user app-user-456
topic read pets/123/#
";

fn parse(text: &str) -> AclFile {
    AclFile::parse(text, Path::new("acl")).expect("valid ACL")
}

fn parse_err(text: &str) -> String {
    match AclFile::parse(text, Path::new("/etc/aviary/acl")) {
        Ok(acl) => panic!("parsed {text:?} into {acl:?}"),
        Err(e @ AclError::Line { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
    }
}

use Access::{Read as R, Write as W};

#[test]
fn seed_acl_matrix() {
    let acl = parse(SEED);
    let anon = None;
    let cases: &[(Option<&str>, &str, Access, bool)] = &[
        (Some("device-123"), "pets/123/location", W, true),
        (Some("device-123"), "pets/123", W, true),
        (Some("device-123"), "pets/124/location", W, false),
        (Some("device-123"), "pets/123/location", R, false),
        (Some("device-123"), "pets/123/commands/feed", R, true),
        (Some("device-123"), "pets/123/commands/feed", W, true),
        (Some("device-123"), "pets/124/commands/feed", R, false),
        (Some("server"), "pets/123/location", R, true),
        (Some("server"), "pets/999/location", R, true),
        (Some("server"), "pets/123/location", W, false),
        (Some("server"), "pets/123/commands/feed", W, true),
        (Some("server"), "other/topic", R, false),
        (Some("app-user-456"), "pets/123/location", R, true),
        (Some("app-user-456"), "pets/124/location", R, false),
        (Some("app-user-456"), "pets/123/location", W, false),
        (Some("stranger"), "pets/123/location", R, false),
        (anon, "pets/123/location", R, false),
        (anon, "pets/123/location", W, false),
    ];
    for &(user, topic, access, want) in cases {
        let got = acl.check(user, "client", topic, access);
        assert_eq!(got, want, "{user:?} {access:?} {topic}");
    }
}

#[test]
fn no_access_word_means_readwrite_and_whitespace_is_forgiven() {
    let acl = parse("  # comment\n\n\ttopic   a/b  \r\nuser u\n  topic read   c/#\t\n");
    assert!(acl.check(None, "c", "a/b", R));
    assert!(acl.check(None, "c", "a/b", W));
    assert!(acl.check(Some("u"), "c", "c/d", R));
    assert!(
        !acl.check(Some("u"), "c", "a/b", R),
        "anonymous rules are not a user's"
    );
}

#[test]
fn user_sections_merge_and_names_are_the_rest_of_the_line() {
    let acl = parse("user a\ntopic x\nuser b c\ntopic y\nuser a\ntopic read z\n");
    assert!(acl.check(Some("a"), "c", "x", W));
    assert!(acl.check(Some("a"), "c", "z", R));
    assert!(acl.check(Some("b c"), "c", "y", R));
    assert!(!acl.check(Some("b"), "c", "y", R));
}

#[test]
fn deny_wins_over_an_earlier_grant_in_the_same_section() {
    let acl = parse("user u\ntopic pets/#\ntopic deny pets/secret/#\n");
    assert!(acl.check(Some("u"), "c", "pets/1", R));
    assert!(!acl.check(Some("u"), "c", "pets/secret/x", R));
    assert!(!acl.check(Some("u"), "c", "pets/secret/x", W));
}

#[test]
fn own_grant_wins_over_a_deny_pattern_but_own_deny_stops_patterns() {
    let acl = parse("user u\ntopic a/#\ntopic deny b/#\npattern deny a/#\npattern b/#\n");
    assert!(acl.check(Some("u"), "c", "a/1", R), "own rules come first");
    assert!(
        !acl.check(Some("u"), "c", "b/1", R),
        "own deny stops the search"
    );
    assert!(!acl.check(Some("v"), "c", "a/1", R), "deny pattern");
    assert!(acl.check(Some("v"), "c", "b/1", R));
}

#[test]
fn patterns_substitute_whole_levels() {
    let acl = parse("pattern write devices/%c/up\npattern read users/%u/#\npattern read x/a%u\n");
    assert!(acl.check(Some("al"), "dev1", "devices/dev1/up", W));
    assert!(!acl.check(Some("al"), "dev1", "devices/dev2/up", W));
    assert!(!acl.check(Some("al"), "dev1", "devices/dev1/up", R));
    assert!(acl.check(Some("al"), "dev1", "users/al/inbox", R));
    assert!(!acl.check(Some("al"), "dev1", "users/bo/inbox", R));
    assert!(
        acl.check(Some("al"), "dev1", "x/a%u", R),
        "%u inside a level is literal"
    );
    assert!(!acl.check(Some("al"), "dev1", "x/aal", R));
    assert!(
        !acl.check(None, "dev1", "users//inbox", R),
        "%u needs a username"
    );
    assert!(acl.check(None, "dev1", "devices/dev1/up", W), "%c does not");
}

#[test]
fn usernames_and_client_ids_with_wildcards_get_no_patterns() {
    let acl = parse("pattern read users/%u/#\npattern read open/#\nuser a+b\ntopic read own/#\n");
    assert!(!acl.check(Some("a+b"), "c", "users/a+b/x", R));
    assert!(!acl.check(Some("a+b"), "c", "open/x", R));
    assert!(
        acl.check(Some("a+b"), "c", "own/x", R),
        "own rules still apply"
    );
    assert!(!acl.check(Some("#"), "c", "users/x/y", R));
    assert!(!acl.check(Some("u"), "c#", "open/x", R));
    assert!(acl.check(Some("u"), "c", "open/x", R));
}

#[test]
fn a_slash_in_a_username_matches_no_level() {
    let acl = parse("pattern read users/%u/#\npattern read open/#\n");
    assert!(!acl.check(Some("a/b"), "c", "users/a/b/x", R));
    assert!(acl.check(Some("a/b"), "c", "open/x", R));
    assert!(!acl.can_subscribe(Some("a/b"), "c", "users/#"));
}

#[test]
fn dollar_topics_need_dollar_rules_and_sys_is_never_written() {
    let acl = parse("topic #\ntopic $SYS/#\n");
    assert!(acl.check(None, "c", "a", W));
    assert!(
        !acl.check(None, "c", "$other/a", R),
        "# does not reach $ topics"
    );
    assert!(acl.check(None, "c", "$SYS/broker/uptime", R));
    assert!(!acl.check(None, "c", "$SYS/broker/uptime", W));
}

#[test]
fn an_acl_without_matching_rules_denies() {
    let acl = parse("# nothing\n");
    assert!(!acl.check(None, "c", "a", R));
    assert!(!acl.check(Some("u"), "c", "a", W));
    assert!(!acl.can_subscribe(Some("u"), "c", "#"));
}

#[test]
fn bad_lines_name_the_file_and_line() {
    for (text, line, what) in [
        ("topic a\nfrobnicate x\n", 2, "unknown keyword"),
        ("\n\ntopic maybe a/b\n", 3, "invalid access type"),
        ("topic\n", 1, "without a topic"),
        ("user\n", 1, "without a name"),
        ("user u\ntopic read a/#/b\n", 2, "invalid topic filter"),
        ("pattern write a+/b\n", 1, "invalid topic filter"),
    ] {
        let msg = parse_err(text);
        assert!(
            msg.starts_with(&format!("ACL file /etc/aviary/acl, line {line}: ")),
            "{msg}"
        );
        assert!(msg.contains(what), "{msg}");
    }
}

#[test]
fn missing_file_is_an_io_error() {
    let err = AclFile::load(Path::new("/nonexistent/acl")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/acl"), "{err}");
}

#[test]
fn subscriptions_are_refused_only_when_nothing_readable_is_reachable() {
    let acl = parse(SEED);
    let cases: &[(&str, &str, bool)] = &[
        ("app-user-456", "pets/+/location", true),
        ("app-user-456", "pets/123/#", true),
        ("app-user-456", "#", true),
        ("app-user-456", "+/+/location", true),
        ("app-user-456", "pets/124/#", false),
        ("app-user-456", "other/#", false),
        ("app-user-456", "$share/g/pets/+/location", true),
        ("app-user-456", "$share/g/other/#", false),
        ("device-123", "pets/123/location", false),
        ("device-123", "pets/+/commands/#", true),
        ("server", "pets/#", true),
        ("server", "other/#", false),
        ("stranger", "#", false),
    ];
    for &(user, filter, want) in cases {
        assert_eq!(
            acl.can_subscribe(Some(user), "c", filter),
            want,
            "{user} {filter}"
        );
    }
    assert!(!acl.can_subscribe(None, "c", "#"));
}

#[test]
fn subscriptions_respect_denies_and_patterns() {
    let acl = parse("user u\ntopic read a/#\ntopic deny a/secret/#\npattern read inbox/%u/#\n");
    assert!(
        acl.can_subscribe(Some("u"), "c", "a/#"),
        "partly denied: granted, filtered"
    );
    assert!(
        !acl.can_subscribe(Some("u"), "c", "a/secret/+"),
        "wholly denied"
    );
    assert!(!acl.can_subscribe(Some("u"), "c", "a/secret/#"));
    assert!(acl.can_subscribe(Some("u"), "c", "inbox/u/x"));
    assert!(acl.can_subscribe(Some("v"), "c", "inbox/+/x"));
    assert!(!acl.can_subscribe(Some("v"), "c", "inbox/u/x"));
    assert!(!acl.can_subscribe(Some("v+"), "c", "inbox/#"));
}

#[test]
fn filter_overlap() {
    let yes = [
        ("a/b", "a/b"),
        ("a/+", "a/b"),
        ("+/+", "a/b"),
        ("#", "a/b/c"),
        ("a/#", "a"),
        ("a/#", "+/b/c"),
        ("a/+/c", "+/b/#"),
        ("+", ""),
        ("/+", "/x"),
        ("$SYS/#", "$SYS/x"),
    ];
    let no = [
        ("$SYS/+", "+/+"),
        ("a/b", "a/c"),
        ("a/+", "a/b/c"),
        ("a/b/#", "a"),
        ("+", "a/b"),
        ("#", "$SYS/x"),
        ("+/x", "$SYS/x"),
        ("a/+/c", "a/b/d"),
    ];
    for (a, b) in yes {
        assert!(overlaps(a, b) && overlaps(b, a), "{a} ~ {b}");
    }
    for (a, b) in no {
        assert!(!overlaps(a, b) && !overlaps(b, a), "{a} !~ {b}");
    }
}

#[test]
fn filter_cover() {
    let yes = [
        ("#", "a/b"),
        ("#", "#"),
        ("a/#", "a"),
        ("a/#", "a/+/c/#"),
        ("a/+", "a/+"),
        ("a/+", "a/b"),
        ("+/+", "a/+"),
        ("$SYS/#", "$SYS/+"),
    ];
    let no = [
        ("a/b", "a/+"),
        ("a/+", "a/#"),
        ("a/+", "a"),
        ("a", "a/#"),
        ("#", "$SYS/x"),
        ("+/+", "$SYS/x"),
        ("a/b", "a/c"),
    ];
    for (outer, inner) in yes {
        assert!(covers(outer, inner), "{outer} covers {inner}");
    }
    for (outer, inner) in no {
        assert!(!covers(outer, inner), "{outer} does not cover {inner}");
    }
}

/// `covers` and `overlaps` agree with topic matching on a small alphabet:
/// a filter covers another when every sample topic of the inner one matches
/// the outer, and overlaps when some sample topic matches both.
#[test]
fn cover_and_overlap_agree_with_matching() {
    use aviary_protocol::matches;
    let levels = ["a", "b", "+"];
    let mut filters = vec!["#".to_owned()];
    for x in levels {
        filters.push(x.to_owned());
        filters.push(format!("{x}/#"));
        for y in levels {
            filters.push(format!("{x}/{y}"));
            filters.push(format!("{x}/{y}/#"));
        }
    }
    let mut topics = Vec::new();
    let alphabet = ["a", "b", "c"];
    for x in alphabet {
        topics.push(x.to_owned());
        for y in alphabet {
            topics.push(format!("{x}/{y}"));
            for z in alphabet {
                topics.push(format!("{x}/{y}/{z}"));
            }
        }
    }
    for f in &filters {
        for g in &filters {
            let some = topics.iter().any(|t| matches(f, t) && matches(g, t));
            assert_eq!(overlaps(f, g), some, "overlaps({f}, {g})");
            if covers(f, g) {
                let all = topics
                    .iter()
                    .filter(|t| matches(g, t))
                    .all(|t| matches(f, t));
                assert!(all, "covers({f}, {g}) but a topic escapes");
            }
        }
    }
}

/// The table that `tests/acl_mosquitto.rs` checks against the real broker.
#[test]
fn mosquitto_oracle_cases() {
    let acl = parse(super::oracle::ACL);
    for &(user, client, topic, write, want) in super::oracle::CASES {
        let access = if write { W } else { R };
        let got = acl.check(user, client, topic, access);
        assert_eq!(got, want, "{user:?} {client} {access:?} {topic}");
    }
    for &(user, topic) in super::oracle::DIFFERS_FROM_2_0_11 {
        let listed = super::oracle::CASES
            .iter()
            .any(|c| c.0 == Some(user) && c.2 == topic);
        assert!(listed, "{user} {topic} is not a case");
    }
}
