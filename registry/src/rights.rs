//! Rights: ownership of content items and how it moves. Each change is a
//! ledger entry that records the signed intent behind it verbatim, so an
//! auditor can check every signature from the log alone.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entry::Holder;
use crate::intent::{Share, WHOLE_BP};
use crate::scope::{Overlap, Scope};

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

/// `licence.granted` and `licence.sublicensed`: a licence issued on an
/// intent of type `licence.grant` (signed by every holder) or
/// `licence.sublicense` (signed by the parent's licensee). Its terms are
/// the intent's, recorded verbatim in `signed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceGranted {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub granted_at: String,
    /// The licence's id, assigned by the proposing node.
    pub licence_id: String,
    /// The content licensed.
    pub content_id: String,
    /// For a sublicence, the licence it is carved from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_licence_id: Option<String>,
    /// The intent's replay key: SHA-256 (hex) of the signed message.
    pub intent_sha256: String,
    /// The request body as signed, `{"intent", "signatures"}`.
    pub signed: serde_json::Value,
}

/// `licence.transferred`: a licence moved to another licensee, on an
/// intent of type `licence.transfer` signed by the licensee and every
/// holder. Its sublicences stay, under the new licensee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceTransferred {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub transferred_at: String,
    /// The licence.
    pub licence_id: String,
    /// The intent's replay key: SHA-256 (hex) of the signed message.
    pub intent_sha256: String,
    /// The request body as signed, `{"intent", "signatures"}`.
    pub signed: serde_json::Value,
}

/// `licence.revoked`: a licence and all its sublicences valid on no date
/// from this entry on, on an intent of type `licence.revoke` signed by
/// every holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceRevoked {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub revoked_at: String,
    /// The licence.
    pub licence_id: String,
    /// The intent's replay key: SHA-256 (hex) of the signed message.
    pub intent_sha256: String,
    /// The request body as signed, `{"intent", "signatures"}`.
    pub signed: serde_json::Value,
}

/// Where a new licence would conflict with an existing one: both cover
/// these territories, media and dates, and either is exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// The licence it would conflict with.
    pub licence_id: String,
    /// The territories both cover.
    pub territories: crate::Territories,
    /// The media both cover.
    pub media: crate::Media,
    /// The dates both cover.
    pub term: crate::Term,
}

/// A licence of the same content as seen by the conflict check.
#[derive(Debug, Clone)]
pub struct ExistingLicence {
    /// Its id.
    pub licence_id: String,
    /// Its parent, for a sublicence.
    pub parent_licence_id: Option<String>,
    /// Where, how and when.
    pub scope: Scope,
    /// Whether it is exclusive.
    pub exclusive: bool,
    /// Whether it is revoked.
    pub revoked: bool,
}

/// The first licence among `existing` (in their order) that a new licence
/// of `scope` under `parent` would conflict with, and where they overlap.
/// Two non-revoked licences conflict when neither descends from the other,
/// their territories, media and terms all overlap, and either is exclusive.
pub fn find_conflict<'a>(
    existing: &'a [ExistingLicence],
    parent: Option<&str>,
    scope: &Scope,
    exclusive: bool,
) -> Option<(&'a ExistingLicence, Overlap)> {
    let by_id: BTreeMap<&str, &ExistingLicence> = existing
        .iter()
        .map(|l| (l.licence_id.as_str(), l))
        .collect();
    // The new licence has no descendants yet; its ancestors are its
    // parent's chain. Bounded by the number of licences, so a corrupt
    // cycle cannot loop forever.
    let mut ancestors = std::collections::BTreeSet::new();
    let mut next = parent;
    while let Some(id) = next {
        if !ancestors.insert(id) || ancestors.len() > existing.len() {
            break;
        }
        next = by_id.get(id).and_then(|l| l.parent_licence_id.as_deref());
    }
    existing
        .iter()
        .filter(|l| !l.revoked && !ancestors.contains(l.licence_id.as_str()))
        .filter(|l| exclusive || l.exclusive)
        .find_map(|l| l.scope.overlap(scope).map(|overlap| (l, overlap)))
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
    /// The content has no holders, so no one can license it.
    NoHolders,
    /// The intent names a licence that was never granted.
    UnknownLicence,
    /// The licence (or one it descends from) is revoked.
    LicenceRevoked,
    /// The parent licence does not allow sublicensing.
    NotSublicensable,
    /// A sublicence's scope is not inside its parent's.
    ScopeExceeded,
    /// An exclusive sublicence of a non-exclusive licence.
    ExclusivityExceeded,
    /// A licence transfer to the party that already holds it.
    SameLicensee,
}

impl RightsReason {
    /// Every reason.
    pub const ALL: [RightsReason; 12] = [
        RightsReason::UnknownContent,
        RightsReason::NotAHolder,
        RightsReason::InsufficientShare,
        RightsReason::TooManyHolders,
        RightsReason::HoldersChanged,
        RightsReason::NoHolders,
        RightsReason::UnknownLicence,
        RightsReason::LicenceRevoked,
        RightsReason::NotSublicensable,
        RightsReason::ScopeExceeded,
        RightsReason::ExclusivityExceeded,
        RightsReason::SameLicensee,
    ];

    /// The reason named `name` ([`RightsReason::as_str`]), if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The stable kebab-case name, e.g. `not-a-holder`.
    pub fn as_str(self) -> &'static str {
        match self {
            RightsReason::UnknownContent => "unknown-content",
            RightsReason::NotAHolder => "not-a-holder",
            RightsReason::InsufficientShare => "insufficient-share",
            RightsReason::TooManyHolders => "too-many-holders",
            RightsReason::HoldersChanged => "holders-changed",
            RightsReason::NoHolders => "no-holders",
            RightsReason::UnknownLicence => "unknown-licence",
            RightsReason::LicenceRevoked => "licence-revoked",
            RightsReason::NotSublicensable => "not-sublicensable",
            RightsReason::ScopeExceeded => "scope-exceeded",
            RightsReason::ExclusivityExceeded => "exclusivity-exceeded",
            RightsReason::SameLicensee => "same-licensee",
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

    fn scope(include: &[&str], media: &[crate::Medium], start: &str, end: &str) -> Scope {
        Scope {
            territories: crate::Territories::new(include, &[] as &[&str]).unwrap(),
            media: crate::Media::new(media).unwrap(),
            term: crate::Term::parse(start, end).unwrap(),
        }
    }

    fn licence(id: &str, parent: Option<&str>, scope: Scope, exclusive: bool) -> ExistingLicence {
        ExistingLicence {
            licence_id: id.into(),
            parent_licence_id: parent.map(Into::into),
            scope,
            exclusive,
            revoked: false,
        }
    }

    /// Overlap in all three dimensions and exclusivity on either side make
    /// a conflict; a disjoint dimension, two non-exclusive licences, a
    /// revoked licence or an ancestor do not.
    #[test]
    fn conflicts() {
        use crate::Medium::{Avod, Svod};
        let fr_de = scope(&["FR", "DE"], &[Svod], "2027-01-01", "2028-01-01");
        let existing = [
            licence("a", None, fr_de.clone(), true),
            licence(
                "b",
                Some("a"),
                scope(&["FR"], &[Svod], "2027-01-01", "2027-06-01"),
                false,
            ),
        ];
        let overlapping = scope(&["DE", "AT"], &[Svod, Avod], "2027-12-01", "2029-01-01");
        let (hit, overlap) = find_conflict(&existing, None, &overlapping, false).unwrap();
        assert_eq!(hit.licence_id, "a");
        assert_eq!(overlap.territories.codes(), ["DE"]);
        assert_eq!(overlap.media.iter().collect::<Vec<_>>(), [Svod]);
        assert_eq!(overlap.start.to_string(), "2027-12-01");
        assert_eq!(overlap.end.to_string(), "2028-01-01");
        // Adjacent terms do not overlap: ends are exclusive.
        let later = scope(&["FR"], &[Svod], "2028-01-01", "2029-01-01");
        assert!(find_conflict(&existing, None, &later, true).is_none());
        let elsewhere = scope(&["IT"], &[Svod], "2027-01-01", "2028-01-01");
        assert!(find_conflict(&existing, None, &elsewhere, true).is_none());
        // A sublicence of b is inside a and b: its ancestors.
        let inside = scope(&["FR"], &[Svod], "2027-02-01", "2027-03-01");
        assert!(find_conflict(&existing, Some("b"), &inside, true).is_none());
        // A sibling of b under a meets b only if either is exclusive.
        assert!(find_conflict(&existing, Some("a"), &inside, false).is_none());
        let (hit, _) = find_conflict(&existing, Some("a"), &inside, true).unwrap();
        assert_eq!(hit.licence_id, "b");
        let mut revoked = existing.clone();
        revoked[0].revoked = true;
        assert!(find_conflict(&revoked, None, &overlapping, false).is_none());
    }

    /// Reasons have distinct names that read back to themselves, none shared
    /// with an intent's own reasons.
    #[test]
    fn reasons_have_distinct_names() {
        for reason in RightsReason::ALL {
            assert_eq!(RightsReason::from_name(reason.as_str()), Some(reason));
            assert_eq!(crate::IntentReason::from_name(reason.as_str()), None);
        }
        let names: std::collections::BTreeSet<_> =
            RightsReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), RightsReason::ALL.len());
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
