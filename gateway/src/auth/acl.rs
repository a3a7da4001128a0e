//! Mosquitto's `acl_file`, read and applied exactly as Mosquitto 2.0 does
//! (`src/security_default.c`: `aclfile__parse`, `add__acl`, `add__acl_pattern`,
//! `mosquitto_acl_check_default`; `lib/util_topic.c`:
//! `mosquitto_topic_matches_sub_with_pattern`), so an operator can bring a file
//! over unchanged.
//!
//! The file:
//! - `topic [read|write|readwrite|deny] FILTER`: no access word means
//!   readwrite. Before any `user` line the rule is for anonymous clients.
//! - `user NAME` starts (or continues: sections merge) that user's rules.
//! - `pattern [read|write|readwrite|deny] FILTER` applies to every client, with
//!   `%u` (username) and `%c` (client id) standing for a whole topic level
//!   (as issue 11 asks and later Mosquitto releases do; Debian's 2.0.11
//!   substitutes them as text anywhere: `acl/oracle.rs` lists the cases).
//! - `#` starts a comment line; blank lines are skipped; words are separated
//!   by spaces and the filter is the rest of the line, trimmed.
//!
//! The decision ([`AclFile::check`]), in Mosquitto's order, first answer wins:
//! the client's own `deny` rules, the client's own rules (its `user` section,
//! or the anonymous rules when it has no username), then, if there are
//! patterns, a refusal for a username or client id holding `+` or `#`, the
//! `deny` patterns, the patterns. Nothing matched: denied.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aviary_protocol::{matches, TopicFilter};

#[cfg(test)]
mod oracle;
#[cfg(test)]
mod tests;

/// What a client wants to do with a concrete topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Receive a message published on the topic (a delivery).
    Read,
    /// Publish on the topic.
    Write,
}

/// A line of an ACL file that Mosquitto would refuse to start with.
#[derive(Debug, thiserror::Error)]
pub enum AclError {
    /// The file cannot be read.
    #[error("cannot read ACL file {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line does not parse.
    #[error("ACL file {}, line {line}: {reason}", path.display())]
    Line {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// What a rule grants. `deny` grants nothing and stops the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Grant {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Grant {
    fn allows(self, access: Access) -> bool {
        matches!(
            (self, access),
            (Grant::ReadWrite, _) | (Grant::Read, Access::Read) | (Grant::Write, Access::Write)
        )
    }
}

/// One `topic` or `pattern` line.
#[derive(Clone, Debug)]
struct Rule {
    grant: Grant,
    filter: String,
}

/// Rules in evaluation order: Mosquitto puts `deny` lines at the front of
/// each list (`add__acl`: `DL_PREPEND` for `MOSQ_ACL_NONE`), so a deny wins
/// over an earlier grant.
#[derive(Clone, Debug, Default)]
struct Rules {
    deny: Vec<Rule>,
    allow: Vec<Rule>,
}

impl Rules {
    fn push(&mut self, rule: Rule) {
        if rule.grant == Grant::Deny {
            self.deny.push(rule);
        } else {
            self.allow.push(rule);
        }
    }

    fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty()
    }
}

/// A parsed ACL file.
#[derive(Clone, Debug, Default)]
pub(crate) struct AclFile {
    anonymous: Rules,
    users: HashMap<String, Rules>,
    patterns: Rules,
}

impl AclFile {
    /// Reads and parses the file at `path`.
    pub(crate) fn load(path: &Path) -> Result<Self, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of an ACL file; `path` only names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Self, AclError> {
        let mut acl = AclFile::default();
        let mut user: Option<String> = None;
        for (index, raw) in text.lines().enumerate() {
            let error = |reason: String| AclError::Line {
                path: path.to_owned(),
                line: index + 1,
                reason,
            };
            match parse_line(raw).map_err(error)? {
                Line::Skip => {}
                Line::User(name) => user = Some(name),
                Line::Topic(rule) => match &user {
                    Some(name) => acl.users.entry(name.clone()).or_default().push(rule),
                    None => acl.anonymous.push(rule),
                },
                Line::Pattern(rule) => acl.patterns.push(rule),
            }
        }
        Ok(acl)
    }

    /// May this client read (receive) or write (publish) the concrete `topic`?
    pub(crate) fn check(
        &self,
        username: Option<&str>,
        client_id: &str,
        topic: &str,
        access: Access,
    ) -> bool {
        // security.c `acl__check_dollar`: nobody publishes under $SYS, whatever
        // the file says (the bridge state topic is for bridges, which Aviary
        // does not have).
        if access == Access::Write && (topic == "$SYS" || topic.starts_with("$SYS/")) {
            return false;
        }
        if let Some(rules) = self.own_rules(username) {
            if rules.deny.iter().any(|r| matches(&r.filter, topic)) {
                return false;
            }
            if rules
                .allow
                .iter()
                .any(|r| r.grant.allows(access) && matches(&r.filter, topic))
            {
                return true;
            }
        }
        if self.patterns.is_empty() || !safe_for_patterns(username, client_id) {
            return false;
        }
        let hit = |r: &Rule| pattern_matches(&r.filter, topic, username, client_id);
        if self.patterns.deny.iter().any(hit) {
            return false;
        }
        self.patterns
            .allow
            .iter()
            .any(|r| r.grant.allows(access) && hit(r))
    }

    /// May this client subscribe to `filter`? True when the filter can match
    /// some topic the client may read, as issue 11 asks (SUBACK 0x80/0x87
    /// otherwise); each delivery is still checked with [`AclFile::check`].
    ///
    /// Mosquitto 2.0 itself grants every subscription
    /// (`mosquitto_acl_check_default` returns success for
    /// `MOSQ_ACL_SUBSCRIBE`) and filters only deliveries, so this is the one
    /// place Aviary is stricter. The answer errs towards granting: a filter
    /// that meets a read rule is refused only when a deny rule covers the
    /// whole filter, and a partially denied filter is granted and its
    /// deliveries filtered.
    pub(crate) fn can_subscribe(
        &self,
        username: Option<&str>,
        client_id: &str,
        filter: &str,
    ) -> bool {
        // A shared subscription reads what its inner filter reads.
        let filter = TopicFilter::new(filter.to_owned())
            .map(|f| f.matching_filter().to_owned())
            .unwrap_or_else(|_| filter.to_owned());
        let readable = |rules: &Rules, subst: &dyn Fn(&str) -> Option<String>| {
            let denied = rules
                .deny
                .iter()
                .filter_map(|r| subst(&r.filter))
                .any(|d| covers(&d, &filter));
            let granted = rules
                .allow
                .iter()
                .filter(|r| r.grant.allows(Access::Read))
                .filter_map(|r| subst(&r.filter))
                .any(|a| overlaps(&a, &filter));
            (denied, granted)
        };
        let mut reachable = false;
        if let Some(rules) = self.own_rules(username) {
            let (denied, granted) = readable(rules, &|f| Some(f.to_owned()));
            if denied {
                return false;
            }
            reachable = granted;
        }
        if reachable {
            return true;
        }
        if self.patterns.is_empty() || !safe_for_patterns(username, client_id) {
            return false;
        }
        let (denied, granted) = readable(&self.patterns, &|f| substitute(f, username, client_id));
        !denied && granted
    }

    /// The rules of the client's own section: its `user` section, or the
    /// anonymous rules for a client without a username (Mosquitto looks the
    /// section up by username, and a NULL username finds the section of
    /// rules that came before any `user` line).
    fn own_rules(&self, username: Option<&str>) -> Option<&Rules> {
        match username {
            Some(name) => self.users.get(name),
            None => Some(&self.anonymous),
        }
    }
}

/// One line of the file, understood.
enum Line {
    Skip,
    User(String),
    Topic(Rule),
    Pattern(Rule),
}

/// Parses one line as `aclfile__parse` does: trailing and leading whitespace
/// go, `#` starts a comment, words are split on spaces and the filter (or the
/// user name) is the rest of the line.
fn parse_line(raw: &str) -> Result<Line, String> {
    let line = raw.trim_matches(|c: char| c.is_ascii_whitespace());
    if line.is_empty() || line.starts_with('#') {
        return Ok(Line::Skip);
    }
    let (keyword, rest) = match line.split_once(' ') {
        Some((keyword, rest)) => (keyword, rest.trim_start_matches(' ')),
        None => (line, ""),
    };
    match keyword {
        "user" if rest.is_empty() => Err("`user` without a name".into()),
        "user" => Ok(Line::User(rest.to_owned())),
        "topic" => parse_rule(rest).map(Line::Topic),
        "pattern" => parse_rule(rest).map(Line::Pattern),
        other => Err(format!(
            "unknown keyword {other:?} (expected topic, pattern or user)"
        )),
    }
}

/// `[read|write|readwrite|deny] FILTER`. One word alone is the filter; with
/// two or more, the first must be an access word (`topic a b` is an error
/// in Mosquitto too, not a filter with a space).
fn parse_rule(rest: &str) -> Result<Rule, String> {
    if rest.is_empty() {
        return Err("rule without a topic filter".into());
    }
    let (grant, filter) = match rest.split_once(' ') {
        None => (Grant::ReadWrite, rest),
        Some((word, filter)) => {
            let grant = match word {
                "read" => Grant::Read,
                "write" => Grant::Write,
                "readwrite" => Grant::ReadWrite,
                "deny" => Grant::Deny,
                other => return Err(format!("invalid access type {other:?}")),
            };
            (
                grant,
                filter.trim_matches(|c: char| c.is_ascii_whitespace()),
            )
        }
    };
    // `mosquitto_sub_topic_check`: the filter must be a valid subscription.
    TopicFilter::new(filter.to_owned())
        .map_err(|e| format!("invalid topic filter {filter:?}: {e}"))?;
    Ok(Rule {
        grant,
        filter: filter.to_owned(),
    })
}

/// Mosquitto 2.0 refuses every pattern to a client whose username or client
/// id holds `+` or `#`: substituted, they would widen the pattern. A `/`
/// needs no refusal, since a substituted value is compared with one topic
/// level and a level never contains `/`.
fn safe_for_patterns(username: Option<&str>, client_id: &str) -> bool {
    let unsafe_id = |s: &str| s.contains(['+', '#']);
    !username.is_some_and(unsafe_id) && !unsafe_id(client_id)
}

/// The pattern with each whole `%u` or `%c` level replaced; `None` when the
/// pattern needs a username the client does not have (Mosquitto skips such a
/// pattern) or a value holds `/` (it could then match no single level, and
/// must not reach into another user's tree). `%u` inside a longer level
/// stays literal.
fn substitute(pattern: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let mut out = Vec::new();
    for level in pattern.split('/') {
        let value = match level {
            "%u" => username?,
            "%c" => client_id,
            other => other,
        };
        if level != value && value.contains('/') {
            return None;
        }
        out.push(value);
    }
    Some(out.join("/"))
}

/// Does a pattern rule match a concrete topic for this client?
fn pattern_matches(pattern: &str, topic: &str, username: Option<&str>, client_id: &str) -> bool {
    substitute(pattern, username, client_id).is_some_and(|f| matches(&f, topic))
}

/// Is there a topic that both filters match? Level by level: `#` meets
/// anything from there on, `+` meets any one level, literals must be equal,
/// and `a/#` also matches `a` itself. A `$` topic is matched by neither a
/// leading `+` nor a leading `#` [MQTT-4.7.2-1].
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    if dollar_excluded(a, b) || dollar_excluded(b, a) {
        return false;
    }
    let mut xs = a.split('/');
    let mut ys = b.split('/');
    loop {
        match (xs.next(), ys.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(x), Some(y)) if x == "+" || y == "+" || x == y => {}
            _ => return false,
        }
    }
}

/// Does `outer` match every topic that `inner` matches?
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    if inner.starts_with('$') && outer.starts_with(['+', '#']) {
        return false;
    }
    let mut xs = outer.split('/');
    let mut ys = inner.split('/');
    loop {
        match (xs.next(), ys.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            // `#` in the inner filter reaches deeper than anything but `#`.
            (_, Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(x), Some(y)) if x == y && x != "+" => {}
            _ => return false,
        }
    }
}

/// True when `wild` starts with a wildcard and `literal` with a `$` level, so
/// the topics of `literal` are out of `wild`'s reach.
fn dollar_excluded(wild: &str, literal: &str) -> bool {
    wild.starts_with(['+', '#']) && literal.starts_with('$')
}
