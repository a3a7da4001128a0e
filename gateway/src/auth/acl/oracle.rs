//! One ACL file and the decisions expected from it, shared by the unit tests
//! (which check [`super::AclFile::check`]) and `tests/acl_mosquitto.rs`
//! (which checks the real Mosquitto broker), so both answer the same table.
//!
//! Every section can read `sentinel`: the Mosquitto test publishes there
//! after the probe, so a missing delivery is known without waiting it out.
//! `writer` may publish anywhere and `watcher` sees everything.

/// The ACL file: the seed ACL of issue 11, plus users for patterns.
pub(crate) const ACL: &str = "\
# anonymous clients
topic read sentinel
user writer
topic write #
user watcher
topic read #
user device-123
topic read sentinel
topic write pets/123/#
topic read pets/123/commands/#
user server
topic read sentinel
topic read pets/#
topic write pets/+/commands/#
user app-user-456
topic read sentinel
topic read pets/123/#
user al
topic read sentinel
topic read pets/#
topic deny pets/123/#
user a+b
topic read sentinel
user a/b
topic read sentinel
pattern read users/%u/#
pattern write devices/%c/up
pattern read x/a%u
pattern read open/#
";

/// `(username, client id, topic, write?, allowed?)`.
pub(crate) type Case = (Option<&'static str>, &'static str, &'static str, bool, bool);

/// The decisions, each checked against Mosquitto 2.0.
pub(crate) const CASES: &[Case] = &[
    (Some("device-123"), "dev", "pets/123/location", true, true),
    (Some("device-123"), "dev", "pets/124/location", true, false),
    (Some("device-123"), "dev", "pets/123/location", false, false),
    (
        Some("device-123"),
        "dev",
        "pets/123/commands/feed",
        false,
        true,
    ),
    (Some("server"), "srv", "pets/124/location", false, true),
    (Some("server"), "srv", "pets/124/location", true, false),
    (Some("server"), "srv", "pets/124/commands/feed", true, true),
    (
        Some("app-user-456"),
        "app",
        "pets/123/location",
        false,
        true,
    ),
    (
        Some("app-user-456"),
        "app",
        "pets/124/location",
        false,
        false,
    ),
    (
        Some("app-user-456"),
        "app",
        "pets/123/location",
        true,
        false,
    ),
    (None, "anon", "pets/123/location", false, false),
    (None, "anon", "pets/123/location", true, false),
    // A deny line wins over an earlier grant.
    (Some("al"), "al-1", "pets/124/location", false, true),
    (Some("al"), "al-1", "pets/123/location", false, false),
    // Patterns: whole-level %u and %c, literal inside a level.
    (Some("al"), "al-1", "users/al/inbox", false, true),
    (Some("al"), "al-1", "users/bo/inbox", false, false),
    (Some("al"), "al-1", "devices/al-1/up", true, true),
    (Some("al"), "al-1", "devices/al-2/up", true, false),
    (Some("al"), "al-1", "x/a%u", false, true),
    (Some("al"), "al-1", "x/aal", false, false),
    (None, "anon-2", "devices/anon-2/up", true, true),
    (None, "anon", "open/x", false, true),
    // Dangerous names get no patterns at all; a `/` only matches no level.
    (Some("a+b"), "ab", "users/ab/x", false, false),
    (Some("a+b"), "ab", "open/x", false, false),
    (Some("al"), "c+d", "open/x", false, false),
    (Some("a/b"), "ab", "users/a/b/x", false, false),
    (Some("a/b"), "ab", "open/x", false, true),
];

/// `(username, topic)` of the cases where Debian's Mosquitto 2.0.11 answers
/// the opposite way: it substitutes `%u` and `%c` as text anywhere in the
/// pattern, so `x/a%u` matches `x/aal` and the user `a/b` reaches
/// `users/a/b/x` (inside user `a`'s tree). Aviary substitutes whole levels
/// only, as issue 11 asks and as later Mosquitto releases do.
pub(crate) const DIFFERS_FROM_2_0_11: &[(&str, &str)] =
    &[("al", "x/a%u"), ("al", "x/aal"), ("a/b", "users/a/b/x")];
