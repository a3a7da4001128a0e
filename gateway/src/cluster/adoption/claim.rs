//! What `AVIARY_ADOPTIONS` says of a dead node: who is adopting its sessions, and who held
//! that adoption before and died in it; or who adopted them.
//!
//! An adoption under way leaves copies of the dead node's sessions in its adopter's store.
//! If the adopter dies too, the node that adopts it takes over the unfinished adoption and
//! starts it again from the dead node's own log and consumer, which stay whole until an
//! adoption is done; so it must know whose stores hold stale copies: every earlier holder.

use bytes::Bytes;

const ADOPTING: &str = "adopting:";
const ADOPTED: &str = "adopted:";
/// Between holders: no node name has a line break in it.
const SEP: char = '\n';

/// The value under a dead node's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Claim {
    /// Being adopted: by the first holder; the others held it before, newest first, and died.
    Adopting(Vec<String>),
    /// Adopted, by this node: its sessions live there now.
    Adopted(String),
}

impl Claim {
    /// A claim `node` makes, taking over from `previous` holders (newest first).
    pub(super) fn adopting(node: &str, previous: &[String]) -> Self {
        let mut holders = Vec::with_capacity(previous.len() + 1);
        holders.push(node.to_owned());
        holders.extend_from_slice(previous);
        Self::Adopting(holders)
    }

    /// Reads a value; `None` if it is not one of ours.
    pub(super) fn parse(value: &[u8]) -> Option<Self> {
        let value = std::str::from_utf8(value).ok()?;
        if let Some(holders) = value.strip_prefix(ADOPTING) {
            let holders: Vec<String> = holders.split(SEP).map(str::to_owned).collect();
            return (!holders.iter().any(String::is_empty)).then_some(Self::Adopting(holders));
        }
        let node = value.strip_prefix(ADOPTED)?;
        (!node.is_empty()).then(|| Self::Adopted(node.to_owned()))
    }

    pub(super) fn encode(&self) -> Bytes {
        Bytes::from(match self {
            Self::Adopting(holders) => {
                let sep = SEP.to_string();
                format!("{ADOPTING}{}", holders.join(&sep))
            }
            Self::Adopted(node) => format!("{ADOPTED}{node}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_read_back_as_written() {
        for claim in [
            Claim::adopting("gw-b", &[]),
            Claim::adopting("gw-c", &["gw-b".to_owned(), "gw-x".to_owned()]),
            Claim::Adopted("gw-b".to_owned()),
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
    fn what_is_not_a_claim_is_not_read_as_one() {
        for value in [
            &b""[..],
            b"adopting:",
            b"adopted:",
            b"adopting:a\n",
            b"other",
            b"\xff",
        ] {
            assert_eq!(Claim::parse(value), None, "{value:?}");
        }
    }
}
