//! Rights: ownership of content items and how it moves. Each change is a
//! ledger entry that records the signed intent behind it verbatim, so an
//! auditor can check every signature from the log alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entry::Holder;
use crate::intent::{Share, WHOLE_BP};

/// `content.transferred`: ownership shares moved on an intent of type
/// `transfer` that every giving party signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentTransferred {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub transferred_at: String,
    /// The content item.
    pub content_id: String,
    /// Every holder and share once the transfer is applied, in stored form
    /// (ascending party id): a reader of this one leaf knows the owners.
    pub holders: Vec<Holder>,
    /// The intent's replay key: SHA-256 (hex) of the signed message.
    pub intent_sha256: String,
    /// The request body as signed, `{"intent", "signatures"}`.
    pub signed: serde_json::Value,
}

/// Why the state of the rights refuses an intent: stable names for problem
/// types, beside the intent's own [`crate::IntentReason`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RightsReason {
    /// The intent names content that is not registered.
    UnknownContent,
    /// A party gives up shares of content it holds none of.
    NotAHolder,
    /// A party gives up more than it holds.
    InsufficientShare,
    /// The holders after the change would exceed
    /// [`crate::metadata::MAX_HOLDERS`].
    TooManyHolders,
    /// The holders a transfer's leaf states are not those it leaves: the
    /// holders changed after the proposer read them. Proposing again with
    /// the new holders may succeed.
    HoldersChanged,
}

impl RightsReason {
    /// The stable kebab-case name, e.g. `not-a-holder`.
    pub fn as_str(self) -> &'static str {
        match self {
            RightsReason::UnknownContent => "unknown-content",
            RightsReason::NotAHolder => "not-a-holder",
            RightsReason::InsufficientShare => "insufficient-share",
            RightsReason::TooManyHolders => "too-many-holders",
            RightsReason::HoldersChanged => "holders-changed",
        }
    }
}

impl fmt::Display for RightsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The holders after moving `from` to `to`, in stored form, or why the
/// current holders cannot give what `from` says.
///
/// `from` and `to` are as [`crate::SignedIntent::parse`] accepts them: each
/// party once per side, the sides equal in total.
pub fn after_transfer(
    current: &[Holder],
    from: &[Share],
    to: &[Share],
) -> Result<Vec<Holder>, (RightsReason, String)> {
    let mut shares: BTreeMap<&str, u32> = current
        .iter()
        .map(|h| (h.party_id.as_str(), u32::from(h.share_bp)))
        .collect();
    for give in from {
        let held = shares.get(give.party_id.as_str()).copied().unwrap_or(0);
        let gives = u32::from(give.share_bp);
        if held == 0 {
            return Err((
                RightsReason::NotAHolder,
                format!("party {} holds no share of this content", give.party_id),
            ));
        }
        if held < gives {
            return Err((
                RightsReason::InsufficientShare,
                format!(
                    "party {} holds {held} basis points and cannot give {gives}",
                    give.party_id
                ),
            ));
        }
        shares.insert(&give.party_id, held - gives);
    }
    for take in to {
        *shares.entry(&take.party_id).or_insert(0) += u32::from(take.share_bp);
    }
    let after: Vec<Holder> = shares
        .into_iter()
        .filter(|&(_, bp)| bp > 0)
        .map(|(party_id, bp)| Holder {
            party_id: party_id.to_owned(),
            // Equal sides keep the total at WHOLE_BP, so each share fits.
            share_bp: u16::try_from(bp).unwrap_or(WHOLE_BP),
        })
        .collect();
    if after.len() > crate::metadata::MAX_HOLDERS {
        return Err((
            RightsReason::TooManyHolders,
            format!(
                "the transfer would leave {} holders; at most {} may hold one item",
                after.len(),
                crate::metadata::MAX_HOLDERS
            ),
        ));
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(p: &str, bp: u16) -> Holder {
        Holder {
            party_id: p.into(),
            share_bp: bp,
        }
    }

    fn share(p: &str, bp: u16) -> Share {
        Share {
            party_id: p.into(),
            share_bp: bp,
        }
    }

    /// Shares move, givers who give all drop out, receivers merge with
    /// what they held, and the result is in party order.
    #[test]
    fn shares_move() {
        let current = [holder("b", 6_000), holder("c", 4_000)];
        let after = after_transfer(
            &current,
            &[share("b", 6_000), share("c", 1_000)],
            &[share("a", 5_000), share("c", 2_000)],
        )
        .unwrap();
        assert_eq!(after, [holder("a", 5_000), holder("c", 5_000)]);
    }

    /// A non-holder and a holder giving more than it holds are told apart.
    #[test]
    fn givers_must_hold_enough() {
        let current = [holder("b", 10_000)];
        let (reason, _) = after_transfer(&current, &[share("a", 1)], &[share("b", 1)]).unwrap_err();
        assert_eq!(reason, RightsReason::NotAHolder);
        let current = [holder("a", 4_000), holder("b", 6_000)];
        let (reason, detail) =
            after_transfer(&current, &[share("a", 5_000)], &[share("b", 5_000)]).unwrap_err();
        assert_eq!(reason, RightsReason::InsufficientShare);
        assert!(detail.contains("4000"), "{detail}");
    }
}
