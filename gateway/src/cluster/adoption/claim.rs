//! What `AVIARY_ADOPTIONS` says of a dead node: who claims its sessions and has yet to
//! confirm the claim ([`super::confirm`]); who is adopting them, and who held that adoption
//! before and died in it; or who adopted them, and what became of what the dead node left in
//! JetStream.
//!
//! An adoption under way leaves copies of the dead node's sessions in its adopter's store.
//! If the adopter dies too, the node that adopts it takes over the unfinished adoption and
//! starts it again from the dead node's own log and consumer, which stay whole until an
//! adoption is done; so it must know whose stores hold stale copies: every earlier holder.
//!
//! Once the adoption is done, the dead node's consumer and log are leftovers to drop. They
//! are dropped only by a node that holds the key in [`Leftovers::Dropping`], taken by
//! compare-and-set: the dead node, back, takes the key away the same way before it makes a
//! new consumer and log under the same names, so no late drop can reach those.

use bytes::Bytes;

const CLAIMING: &str = "claiming:";
const ADOPTING: &str = "adopting:";
const ADOPTED: &str = "adopted:";
const DROPPING: &str = "dropping:";
const DROPPED: &str = "dropped";
/// Between holders, and after the adopter: no node name has a line break in it.
const SEP: char = '\n';

/// The value under a dead node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claim {
    /// Claimed by this node, which has yet to make sure the dead node held no lease since
    /// (see [`super::confirm`]): nothing of the dead node's is copied yet.
    Claiming(String),
    /// Being adopted: by the first holder; the others held it before, newest first, and died.
    Adopting(Vec<String>),
    /// Adopted: its sessions live in `adopter` now.
    Adopted {
        adopter: String,
        leftovers: Leftovers,
    },
}

/// What became of a dead node's stream consumer and log once its adoption was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Leftovers {
    /// Perhaps still there: whoever takes the key from this revision drops them.
    Left,
    /// Being dropped by this node.
    Dropping(String),
    /// Gone.
    Dropped,
}

impl Claim {
    /// A claim `node` makes, taking over from `previous` holders (newest first).
    pub(super) fn adopting(node: &str, previous: &[String]) -> Self {
        let mut holders = Vec::with_capacity(previous.len() + 1);
        holders.push(node.to_owned());
        holders.extend_from_slice(previous);
        Self::Adopting(holders)
    }

    /// Adopted by `adopter`, with the dead node's leftovers in state `leftovers`.
    pub(super) fn adopted(adopter: &str, leftovers: Leftovers) -> Self {
        Self::Adopted {
            adopter: adopter.to_owned(),
            leftovers,
        }
    }

    /// Reads a value; `None` if it is not one of ours.
    pub(super) fn parse(value: &[u8]) -> Option<Self> {
        let value = std::str::from_utf8(value).ok()?;
        if let Some(by) = value.strip_prefix(CLAIMING) {
            return (!by.is_empty() && !by.contains(SEP)).then(|| Self::Claiming(by.to_owned()));
        }
        if let Some(holders) = value.strip_prefix(ADOPTING) {
            let holders: Vec<String> = holders.split(SEP).map(str::to_owned).collect();
            return (!holders.iter().any(String::is_empty)).then_some(Self::Adopting(holders));
        }
        let rest = value.strip_prefix(ADOPTED)?;
        // Written before leftovers were tracked, `adopted:<node>` alone: they may be left.
        let (adopter, leftovers) = match rest.split_once(SEP) {
            None => (rest, Leftovers::Left),
            Some((adopter, DROPPED)) => (adopter, Leftovers::Dropped),
            Some((adopter, state)) => {
                let by = state.strip_prefix(DROPPING)?;
                if by.is_empty() || by.contains(SEP) {
                    return None;
                }
                (adopter, Leftovers::Dropping(by.to_owned()))
            }
        };
        (!adopter.is_empty()).then(|| Self::adopted(adopter, leftovers))
    }

    pub(super) fn encode(&self) -> Bytes {
        Bytes::from(match self {
            Self::Claiming(by) => format!("{CLAIMING}{by}"),
            Self::Adopting(holders) => {
                let sep = SEP.to_string();
                format!("{ADOPTING}{}", holders.join(&sep))
            }
            Self::Adopted { adopter, leftovers } => match leftovers {
                Leftovers::Left => format!("{ADOPTED}{adopter}"),
                Leftovers::Dropping(by) => format!("{ADOPTED}{adopter}{SEP}{DROPPING}{by}"),
                Leftovers::Dropped => format!("{ADOPTED}{adopter}{SEP}{DROPPED}"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_back_as_written() {
        for claim in [
            Claim::Claiming("gw-b".to_owned()),
            Claim::adopting("gw-b", &[]),
            Claim::adopting("gw-c", &["gw-b".to_owned(), "gw-x".to_owned()]),
            Claim::adopted("gw-b", Leftovers::Left),
            Claim::adopted("gw-b", Leftovers::Dropping("gw-c".to_owned())),
            Claim::adopted("gw-b", Leftovers::Dropped),
        ] {
            assert_eq!(Claim::parse(&claim.encode()), Some(claim));
        }
    }

    #[test]
    fn the_new_holder_comes_first_and_the_earlier_ones_follow() {
        let claim = Claim::adopting("gw-c", &["gw-b".to_owned()]);
        assert_eq!(&claim.encode()[..], b"adopting:gw-c\ngw-b");
    }

    #[test]
    fn an_adoption_written_before_leftovers_were_tracked_may_have_left_them() {
        let said = Claim::parse(b"adopted:gw-a");
        assert_eq!(said, Some(Claim::adopted("gw-a", Leftovers::Left)));
        assert_eq!(
            &Claim::adopted("gw-a", Leftovers::Left).encode()[..],
            b"adopted:gw-a"
        );
    }

    #[test]
    fn what_is_not_a_claim_is_not_read_as_one() {
        for value in [
            &b""[..],
            b"adopting:",
            b"adopted:",
            b"adopted:\ndropped",
            b"adopted:gw-a\ndropping:",
            b"adopted:gw-a\ndropping:gw-b\ngw-c",
            b"adopted:gw-a\nsomething",
            b"adopting:a\n",
            b"claiming:",
            b"claiming:gw-a\ngw-b",
            b"other",
            b"\xff",
        ] {
            assert_eq!(Claim::parse(value), None, "{value:?}");
        }
    }
}
