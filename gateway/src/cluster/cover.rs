//! The subjects a node's stream consumer listens to: JetStream refuses a consumer whose filter
//! subjects overlap ("consumer subject filters cannot overlap"), yet the subjects of one node's
//! MQTT filters often do (`t/#` and `t/x/+`; `a/+/c` and `a/b/+`). So the consumer gets a cover
//! of them instead: subjects that match at least everything the filters need, and never the
//! same message twice. A subject inside another goes; two that overlap otherwise become one
//! that takes in both (`a.*.c` and `a.b.*` become `a.*.*`). The node routes every message it
//! gets through its own subscription tree, so a cover wider than needed costs traffic, never
//! correctness.
//!
//! Past [`MAX_SUBJECTS`] the cover is everything (`>`): a consumer's configuration is one NATS
//! message, and tens of thousands of subjects would not fit in it.

/// The most filter subjects a consumer is given before it listens to everything.
pub(super) const MAX_SUBJECTS: usize = 1_000;

/// A cover of `subjects` without overlaps (see the module documentation).
pub(super) fn cover(prefix: &str, subjects: Vec<String>) -> Vec<String> {
    if subjects.len() > MAX_SUBJECTS {
        return vec![format!("{prefix}.>")];
    }
    let mut set: Vec<Vec<String>> = subjects
        .iter()
        .map(|s| s.split('.').map(str::to_owned).collect())
        .collect();
    set.sort();
    set.dedup();
    // Merge overlapping pairs until none is left; each merge shrinks the set by one.
    'again: loop {
        for i in 0..set.len() {
            for j in i + 1..set.len() {
                if !overlap(&set[i], &set[j]) {
                    continue;
                }
                let merged = if covers(&set[i], &set[j]) {
                    set[i].clone()
                } else if covers(&set[j], &set[i]) {
                    set[j].clone()
                } else {
                    join(&set[i], &set[j])
                };
                set.swap_remove(j);
                set[i] = merged;
                continue 'again;
            }
        }
        break;
    }
    set.sort();
    set.into_iter().map(|tokens| tokens.join(".")).collect()
}

/// Whether some subject matches both patterns.
fn overlap(a: &[String], b: &[String]) -> bool {
    for i in 0.. {
        match (a.get(i).map(String::as_str), b.get(i).map(String::as_str)) {
            (None, None) => return true,
            // `>` takes one token or more: it needs the other to go on.
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
    unreachable!("the loop returns")
}

/// Whether every subject `b` matches, `a` matches too.
fn covers(a: &[String], b: &[String]) -> bool {
    for i in 0.. {
        match (a.get(i).map(String::as_str), b.get(i).map(String::as_str)) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(y)) if y != ">" => {}
            (Some(x), Some(y)) if x == y && y != "*" && y != ">" => {}
            _ => return false,
        }
    }
    unreachable!("the loop returns")
}

/// A pattern that matches all that two overlapping patterns match: the tokens they share, `*`
/// where they differ, and `>` from where either has it.
fn join(a: &[String], b: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    for (x, y) in a.iter().zip(b) {
        if x == ">" || y == ">" {
            out.push(">".to_owned());
            return out;
        }
        out.push(if x == y { x.clone() } else { "*".to_owned() });
    }
    // Overlapping patterns of different lengths meet a `>` above; equal lengths end here.
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn inner_subjects_go_and_crossing_ones_merge() {
        let c = |s: &[&str]| cover("q", strings(s));
        assert_eq!(c(&["q.t", "q.t.>", "q.t.x.*"]), ["q.t", "q.t.>"]);
        assert_eq!(c(&["q.a.*.c", "q.a.b.*"]), ["q.a.*.*"]);
        assert_eq!(c(&["q.a", "q.b", "q.a"]), ["q.a", "q.b"]);
        assert_eq!(c(&["q.>", "q._mark_.gw-a", "q.x"]), ["q.>"]);
        assert_eq!(c(&["q.a.b", "q.a.b.c"]), ["q.a.b", "q.a.b.c"], "no overlap");
        let many: Vec<String> = (0..=MAX_SUBJECTS).map(|i| format!("q.d{i}")).collect();
        assert_eq!(cover("q", many), ["q.>"]);
    }

    /// A concrete subject matched by a pattern, token by token (`>` as one token).
    fn matches(pattern: &[String], subject: &[&str]) -> bool {
        for (i, p) in pattern.iter().enumerate() {
            match (p.as_str(), subject.get(i)) {
                (">", Some(_)) => return true,
                ("*", Some(_)) => {}
                (p, Some(s)) if p == *s => {}
                _ => return false,
            }
        }
        pattern.len() == subject.len()
    }

    fn pattern() -> impl Strategy<Value = String> {
        let token = prop_oneof![Just("a"), Just("b"), Just("*")];
        (prop::collection::vec(token, 1..4), any::<bool>()).prop_map(|(tokens, tail)| {
            let mut s = format!("q.{}", tokens.join("."));
            if tail {
                s.push_str(".>");
            }
            s
        })
    }

    proptest! {
        /// The cover has no overlapping pair, and every subject a filter needs, it matches.
        #[test]
        fn a_cover_never_overlaps_and_misses_nothing(
            patterns in prop::collection::vec(pattern(), 1..8),
            subject in prop::collection::vec(prop_oneof![Just("a"), Just("b"), Just("c")], 1..6),
        ) {
            let covered = cover("q", patterns.clone());
            let split = |s: &String| s.split('.').map(str::to_owned).collect::<Vec<_>>();
            let covered: Vec<Vec<String>> = covered.iter().map(split).collect();
            for i in 0..covered.len() {
                for j in i + 1..covered.len() {
                    prop_assert!(!overlap(&covered[i], &covered[j]), "{:?} {:?}", covered[i], covered[j]);
                }
            }
            let mut concrete = vec!["q"];
            concrete.extend(subject.iter().copied());
            if patterns.iter().any(|p| matches(&split(p), &concrete)) {
                prop_assert!(covered.iter().any(|c| matches(c, &concrete)), "{concrete:?} lost by {covered:?}");
            }
        }
    }
}
