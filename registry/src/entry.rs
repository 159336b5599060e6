//! Ledger entries: what a leaf of the log says, and how it is encoded.
//!
//! A leaf is the exact UTF-8 JSON text of a [`LedgerEntry`]. The text is
//! produced once, when the entry is applied, and stored verbatim: proofs are
//! over those bytes, so nothing ever re-serialises a stored entry. Every entry
//! carries `"v"`, the encoding version, and `"type"`, so later versions can add
//! entry types (rights, licences, cosignatures) without breaking old leaves.

use std::collections::BTreeMap;

use media_fingerprint::{MediaKind, MissingFingerprint};
use serde::{Deserialize, Serialize};

use crate::party::{PartyKeyRotated, PartyRegistered};
use crate::rights::{ContentTransferred, LicenceGranted, LicenceRevoked, LicenceTransferred};
use crate::{RegistryError, Result, metadata};

/// The entry encoding this build writes. Readers refuse versions they do not
/// know rather than guess at their meaning.
pub const ENTRY_VERSION: u32 = 1;

/// The entry types this build can apply, as a level recorded for each node
/// in the ledger: 1 knows content registrations; 2 adds the cluster's own
/// entries (formation, nodes added and removed, membership approvals) and
/// claims by hash; 3 adds parties; 4 adds transfers of ownership,
/// licences, and raising a node's recorded level (`node.upgraded`). A type is proposed only once every
/// voter's recorded level covers it ([`EntryBody::feature_level`]), so no
/// voter meets an entry its build cannot apply.
pub const FEATURE_LEVEL: u32 = 4;

/// One leaf of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Encoding version; see [`ENTRY_VERSION`].
    pub v: u32,
    /// What happened.
    #[serde(flatten)]
    pub body: EntryBody,
}

/// The kinds of event the ledger records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
// Registrations are by far the most common entry and are handled one at a
// time; boxing them to shrink the rarer cluster entries buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum EntryBody {
    /// A file was registered.
    #[serde(rename = "content.registered")]
    ContentRegistered(ContentRegistration),
    /// A file was registered by its hashes alone, fingerprinted by the
    /// registrant: a claim, not a lock.
    #[serde(rename = "content.claimed")]
    ContentClaimed(ContentClaim),
    /// The cluster was formed: its id, its origin and its first node. The
    /// first leaf of every cluster formed by this build.
    #[serde(rename = "cluster.formed")]
    ClusterFormed(ClusterFormed),
    /// A node was added to the cluster, with the keys it signs with.
    #[serde(rename = "node.added")]
    NodeAdded(NodeAdded),
    /// A node was removed from the cluster; its id is never used again.
    #[serde(rename = "node.removed")]
    NodeRemoved(NodeRemoved),
    /// A voter's operator approved a change of the voters.
    #[serde(rename = "membership.approved")]
    MembershipApproved(MembershipApproved),
    /// A node now runs a build of a higher feature level, on its own
    /// signed claim.
    #[serde(rename = "node.upgraded")]
    NodeUpgraded(NodeUpgraded),
    /// A party was registered, with the key that signs its intents.
    #[serde(rename = "party.registered")]
    PartyRegistered(PartyRegistered),
    /// A party's signing key was replaced, on its signed intent.
    #[serde(rename = "party.key_rotated")]
    PartyKeyRotated(PartyKeyRotated),
    /// Ownership shares of a content item moved, on the givers' signed
    /// intent.
    #[serde(rename = "content.transferred")]
    ContentTransferred(ContentTransferred),
    /// A licence was granted by every holder.
    #[serde(rename = "licence.granted")]
    LicenceGranted(LicenceGranted),
    /// A sublicence was granted by a licence's licensee.
    #[serde(rename = "licence.sublicensed")]
    LicenceSublicensed(LicenceGranted),
    /// A licence moved to another licensee.
    #[serde(rename = "licence.transferred")]
    LicenceTransferred(LicenceTransferred),
    /// A licence and its sublicences were revoked.
    #[serde(rename = "licence.revoked")]
    LicenceRevoked(LicenceRevoked),
}

impl EntryBody {
    /// The [`FEATURE_LEVEL`] from which builds apply this type.
    pub fn feature_level(&self) -> u32 {
        match self {
            EntryBody::ContentRegistered(_) => 1,
            EntryBody::ContentClaimed(_)
            | EntryBody::ClusterFormed(_)
            | EntryBody::NodeAdded(_)
            | EntryBody::NodeRemoved(_)
            | EntryBody::MembershipApproved(_) => 2,
            EntryBody::PartyRegistered(_) | EntryBody::PartyKeyRotated(_) => 3,
            EntryBody::ContentTransferred(_)
            | EntryBody::LicenceGranted(_)
            | EntryBody::LicenceSublicensed(_)
            | EntryBody::LicenceTransferred(_)
            | EntryBody::LicenceRevoked(_)
            | EntryBody::NodeUpgraded(_) => 4,
        }
    }
}

/// A registration by hash only: the registrant computed the hashes and
/// codes, the registry never saw the bytes. It never stops the same bytes
/// from being registered later by upload; that registration names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentClaim {
    /// Stable identifier, assigned by the proposing node.
    pub content_id: String,
    /// When it was proposed, RFC 3339 UTC.
    pub claimed_at: String,
    /// Who registered it.
    pub registrant: String,
    /// Who computed the hashes and codes: always the registrant here.
    pub fingerprinted_by: FingerprintedBy,
    /// SHA-256 of the file, lowercase hex, as the registrant says.
    pub sha256: String,
    /// Size in bytes, as the registrant says.
    pub size: u64,
    /// The media type the registrant declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// ISCC units the registrant computed, if any.
    #[serde(default, skip_serializing_if = "ClaimedIscc::is_empty")]
    pub iscc: ClaimedIscc,
    /// What the registrant said about the content.
    #[serde(default)]
    pub metadata: Metadata,
}

/// Who computed a registration's hashes and fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FingerprintedBy {
    /// The registry, from the uploaded bytes.
    Registry,
    /// The registrant, who sent only the results.
    Registrant,
}

/// ISCC units a registrant supplies; any may be missing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimedIscc {
    /// The composite ISCC-CODE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Meta-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// Instance-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Data-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// Image-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Audio-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    /// Video-Code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
}

impl ClaimedIscc {
    /// Whether no unit is given.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl From<IsccCodes> for ClaimedIscc {
    fn from(codes: IsccCodes) -> Self {
        Self {
            code: codes.code,
            meta: codes.meta,
            instance: Some(codes.instance),
            data: Some(codes.data),
            image: codes.image,
            audio: codes.audio,
            video: codes.video,
        }
    }
}

/// A node as the ledger records it: how to reach it and the keys it signs
/// with, so that a verifier learns every institution's keys from the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRecord {
    /// The node's id, never reused.
    pub node_id: u64,
    /// Its advertised peer URL when it was added.
    pub address: String,
    /// Its Ed25519 node key (standard base64 of the raw 32 bytes), which
    /// signs node-to-node messages and membership approvals.
    pub node_key: String,
    /// Its checkpoint key, as a C2SP note verifier key.
    pub checkpoint_key: String,
    /// The [`FEATURE_LEVEL`] of its build.
    pub feature_level: u32,
}

/// `cluster.formed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFormed {
    /// When, RFC 3339 UTC.
    pub formed_at: String,
    /// The cluster's id.
    pub cluster_id: String,
    /// The log's origin, fixed from here on.
    pub origin: String,
    /// The node that formed it.
    pub founder: NodeRecord,
}

/// `node.added`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAdded {
    /// When, RFC 3339 UTC.
    pub added_at: String,
    /// The node.
    pub node: NodeRecord,
}

/// `node.removed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRemoved {
    /// When, RFC 3339 UTC.
    pub removed_at: String,
    /// The node.
    pub node_id: u64,
}

/// `membership.approved`: one voter's signed approval, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipApproved {
    /// When the leader recorded it, RFC 3339 UTC.
    pub recorded_at: String,
    /// The approval, exactly as its node signed it.
    pub approval: Approval,
}

/// `node.upgraded`: a member's recorded feature level raised to what its
/// build now knows. Proposed by the leader only once every member answered,
/// over authenticated peer RPC, that it runs a build of at least the level
/// that introduced this entry type; `signature` is the node's own claim
/// ([`level_claim_message`]), so the log shows it was the node that said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeUpgraded {
    /// When it was recorded, RFC 3339 UTC.
    pub upgraded_at: String,
    /// The node.
    pub node_id: u64,
    /// The [`FEATURE_LEVEL`] of its build, above the one recorded.
    pub feature_level: u32,
    /// Ed25519 signature by the node's recorded key over
    /// [`level_claim_message`], standard base64.
    pub signature: String,
}

/// The message a node signs to claim that its build has `feature_level`.
pub fn level_claim_message(cluster_id: &str, node_id: u64, feature_level: u32) -> String {
    format!("provreg-feature-level:v1\n{cluster_id}\n{node_id}\n{feature_level}")
}

/// A voter's approval of one change of the voters, signed with its node
/// key, so that anyone can check from the log that a majority agreed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The cluster it is for.
    pub cluster_id: String,
    /// The voters when it was given, ascending.
    pub from_voters: Vec<u64>,
    /// The voters it approves, ascending.
    pub to_voters: Vec<u64>,
    /// The approving node.
    pub approver: u64,
    /// When it was given, RFC 3339 UTC.
    pub approved_at: String,
    /// Ed25519 signature by the approver's node key over
    /// [`Approval::signed_message`], standard base64.
    pub signature: String,
}

/// How far an approval's own time may be from when it is recorded.
pub const APPROVAL_SKEW_SECONDS: i64 = 60;

impl Approval {
    /// The bytes the approver signs.
    pub fn signed_message(&self) -> String {
        let list = |ids: &[u64]| ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
        format!(
            "provreg-membership-approval:v1\n{}\n{}\n{}\n{}\n{}",
            self.cluster_id,
            list(&self.from_voters),
            list(&self.to_voters),
            self.approver,
            self.approved_at
        )
    }
}

/// The registration of one file: its exact hashes, its fingerprints and what
/// the registrant said about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentRegistration {
    /// Stable identifier of the content, assigned when the registration was
    /// proposed.
    pub content_id: String,
    /// When the registration was proposed, RFC 3339 in UTC. Set by the
    /// proposing node so that every replica writes the same leaf.
    pub registered_at: String,
    /// Who registered it.
    pub registrant: String,
    /// Image, audio, video or other, as sniffed from the bytes.
    pub media_kind: MediaKind,
    /// The MIME type sniffed from the bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Size of the file in bytes.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// ISCC units computed for the file.
    pub iscc: IsccCodes,
    /// Content fingerprints that could not be computed, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_fingerprints: Vec<MissingFingerprint>,
    /// What the registrant said about the content.
    #[serde(default)]
    pub metadata: Metadata,
    /// SHA-256 (hex) of the [`Prints`] JSON proposed with this registration,
    /// which is stored beside the leaf rather than in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prints_sha256: Option<String>,
    /// The content id of an earlier claim of the same bytes
    /// (`content.claimed`), which this registration by upload confirms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

/// Audio and video fingerprints of a registration: too large for the leaf,
/// kept beside it, and anchored by the leaf's `prints_sha256`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Prints {
    /// The Chromaprint fingerprint of the audio or the sound track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<media_fingerprint::audio::AudioPrint>,
    /// The frame signatures of the video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<media_fingerprint::video::VideoPrint>,
    /// Image-Codes of centred crops of the image, indexed beside its
    /// Image-Code so that cropped copies are found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_crops: Vec<String>,
}

impl Prints {
    /// Whether there is nothing to keep.
    pub fn is_empty(&self) -> bool {
        self.audio.is_none() && self.video.is_none() && self.image_crops.is_empty()
    }

    /// The exact JSON text proposed and stored.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| RegistryError::Corrupt(format!("prints do not serialise: {e}")))
    }

    /// SHA-256 (hex) of a prints JSON text, as the leaf records it.
    pub fn digest(json: &str) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, json.as_bytes()))
    }
}

/// ISCC units (ISO 24138), each in canonical `ISCC:` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsccCodes {
    /// The composite ISCC-CODE of the units below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Meta-Code of the title, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<String>,
    /// Instance-Code: identifies these exact bytes.
    pub instance: String,
    /// Data-Code: similarity of the raw bytes.
    pub data: String,
    /// Image-Code: perceptual similarity of an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Audio-Code: perceptual similarity of audio (or a video's sound track).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<String>,
    /// Video-Code: perceptual similarity of video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<String>,
}

/// Descriptive metadata supplied by the registrant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// Human-readable title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Standard identifiers by scheme (`isrc`, `iswc`, `isan`, `eidr`), in
    /// canonical form.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identifiers: BTreeMap<String, String>,
    /// Content ids of registered works this one is derived from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<String>,
    /// The first holders of the content and their shares, by party id,
    /// summing to 10,000 basis points.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holders: Vec<Holder>,
}

/// A party's share of a content item's ownership.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holder {
    /// The party.
    pub party_id: String,
    /// Its share in basis points, 1 to 10,000.
    pub share_bp: u16,
}

impl Metadata {
    /// Checks every field and returns the metadata in canonical form
    /// (trimmed title, normalised identifiers). Fails on the first bad field
    /// with a message naming it.
    pub fn normalised(self) -> Result<Self> {
        metadata::normalise(self)
    }
}

/// Whether `text` is a SHA-256 in lowercase hex, the one spelling the
/// ledger stores.
pub fn is_lower_hex_sha256(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The entry types this build can apply, by their `"type"` tag.
pub const KNOWN_ENTRY_TYPES: &[&str] = &[
    "content.registered",
    "content.claimed",
    "cluster.formed",
    "node.added",
    "node.removed",
    "membership.approved",
    "node.upgraded",
    "party.registered",
    "party.key_rotated",
    "content.transferred",
    "licence.granted",
    "licence.sublicensed",
    "licence.transferred",
    "licence.revoked",
];

impl LedgerEntry {
    /// Wraps a body in the current encoding version.
    pub fn new(body: EntryBody) -> Self {
        Self {
            v: ENTRY_VERSION,
            body,
        }
    }

    /// The exact leaf text for this entry.
    pub fn to_leaf(&self) -> Result<String> {
        serde_json::to_string(self)
            .map_err(|e| RegistryError::Corrupt(format!("entry does not serialise: {e}")))
    }

    /// When the entry was proposed: the timestamp every entry carries,
    /// RFC 3339 in UTC, set by the proposing node.
    pub fn timestamp(&self) -> &str {
        match &self.body {
            EntryBody::ContentRegistered(reg) => &reg.registered_at,
            EntryBody::ContentClaimed(claim) => &claim.claimed_at,
            EntryBody::ClusterFormed(formed) => &formed.formed_at,
            EntryBody::NodeAdded(added) => &added.added_at,
            EntryBody::NodeRemoved(removed) => &removed.removed_at,
            EntryBody::MembershipApproved(approved) => &approved.recorded_at,
            EntryBody::NodeUpgraded(upgraded) => &upgraded.upgraded_at,
            EntryBody::PartyRegistered(party) => &party.registered_at,
            EntryBody::PartyKeyRotated(rotated) => &rotated.rotated_at,
            EntryBody::ContentTransferred(transferred) => &transferred.transferred_at,
            EntryBody::LicenceGranted(granted) | EntryBody::LicenceSublicensed(granted) => {
                &granted.granted_at
            }
            EntryBody::LicenceTransferred(transferred) => &transferred.transferred_at,
            EntryBody::LicenceRevoked(revoked) => &revoked.revoked_at,
        }
    }

    /// The entry's `"type"` tag.
    pub fn type_name(&self) -> &'static str {
        match &self.body {
            EntryBody::ContentRegistered(_) => "content.registered",
            EntryBody::ContentClaimed(_) => "content.claimed",
            EntryBody::ClusterFormed(_) => "cluster.formed",
            EntryBody::NodeAdded(_) => "node.added",
            EntryBody::NodeRemoved(_) => "node.removed",
            EntryBody::MembershipApproved(_) => "membership.approved",
            EntryBody::NodeUpgraded(_) => "node.upgraded",
            EntryBody::PartyRegistered(_) => "party.registered",
            EntryBody::PartyKeyRotated(_) => "party.key_rotated",
            EntryBody::ContentTransferred(_) => "content.transferred",
            EntryBody::LicenceGranted(_) => "licence.granted",
            EntryBody::LicenceSublicensed(_) => "licence.sublicensed",
            EntryBody::LicenceTransferred(_) => "licence.transferred",
            EntryBody::LicenceRevoked(_) => "licence.revoked",
        }
    }

    /// Decodes a leaf proposed through Raft, telling apart the two ways it
    /// can fail. A version or type this build does not know is an
    /// [`RegistryError::UnsupportedEntry`]: the node must stop rather than
    /// guess, since a newer replica may accept it. Anything else that does
    /// not decode is bad data in a known entry, a [`Rejection`] that every
    /// replica reaches alike.
    pub fn decode_proposed(leaf: &str) -> Result<Result<Self, Rejection>> {
        #[derive(Deserialize)]
        struct Envelope {
            v: Option<serde_json::Value>,
            #[serde(rename = "type")]
            kind: Option<serde_json::Value>,
        }
        let malformed = |detail: String| Ok(Err(Rejection::MalformedEntry { detail }));
        let envelope: Envelope = match serde_json::from_str(leaf) {
            Ok(envelope) => envelope,
            Err(e) => return malformed(format!("the leaf is not a JSON object: {e}")),
        };
        match envelope.v {
            Some(v) if v.as_u64() == Some(u64::from(ENTRY_VERSION)) => {}
            Some(v) if v.is_u64() => {
                return Err(RegistryError::UnsupportedEntry(format!(
                    "entry version {v} (this build knows version {ENTRY_VERSION})"
                )));
            }
            _ => return malformed("\"v\" must be a non-negative integer".into()),
        }
        match envelope.kind.as_ref().and_then(|k| k.as_str()) {
            Some(kind) if KNOWN_ENTRY_TYPES.contains(&kind) => {}
            Some(kind) => {
                return Err(RegistryError::UnsupportedEntry(format!(
                    "entry type {kind:?}"
                )));
            }
            None => return malformed("\"type\" must be a string".into()),
        }
        match serde_json::from_str(leaf) {
            Ok(entry) => Ok(Ok(entry)),
            Err(e) => malformed(format!("the entry does not decode: {e}")),
        }
    }

    /// Decodes a stored leaf.
    pub fn from_leaf(leaf: &str) -> Result<Self> {
        let entry: Self = serde_json::from_str(leaf)
            .map_err(|e| RegistryError::Corrupt(format!("leaf does not decode: {e}")))?;
        if entry.v != ENTRY_VERSION {
            return Err(RegistryError::Corrupt(format!(
                "leaf has entry version {}, this build reads version {ENTRY_VERSION}",
                entry.v
            )));
        }
        Ok(entry)
    }
}

/// What applying one command did. Every replica computes the same outcome
/// from the same log, so it is safe to return to the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyOutcome {
    /// The entry became leaf `index`; the tree then had `tree_size` leaves.
    Appended {
        /// Leaf index of the new entry.
        index: u64,
        /// Tree size right after the append.
        tree_size: u64,
    },
    /// The entry was refused; the ledger is unchanged.
    Rejected(Rejection),
    /// A Raft entry without ledger content (a blank or membership entry).
    NoLedgerChange,
}

/// Why a command was refused when applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum Rejection {
    /// These exact bytes are registered already.
    #[error("this file is already registered as {content_id}")]
    DuplicateContent {
        /// The content id it is registered under.
        content_id: String,
    },
    /// The proposed content id is in use.
    #[error("content id {content_id} is already in use")]
    ContentIdTaken {
        /// The id in question.
        content_id: String,
    },
    /// The fingerprints sent with the registration are not the ones its
    /// leaf commits to, or do not decode.
    #[error("the fingerprints sent with {content_id} do not match its prints_sha256")]
    PrintsMismatch {
        /// The registration in question.
        content_id: String,
    },
    /// An ISCC unit in the registration does not decode.
    #[error("registration {content_id} carries an invalid ISCC unit: {detail}")]
    InvalidFingerprint {
        /// The registration in question.
        content_id: String,
        /// What is wrong.
        detail: String,
    },
    /// The proposed leaf is not a well-formed entry of a known type.
    #[error("the proposed entry is malformed: {detail}")]
    MalformedEntry {
        /// What is wrong with it.
        detail: String,
    },
    /// The entry's timestamp is earlier than the last applied entry's: the
    /// ledger's time never goes backwards. The proposer stamps it anew.
    #[error("the entry's timestamp {at} is earlier than the ledger's latest, {latest}")]
    TimestampRegressed {
        /// The entry's timestamp.
        at: String,
        /// The last applied entry's timestamp.
        latest: String,
    },
    /// Applying the entry failed inside this build (a bug); every replica
    /// runs the same code on the same entry, so every replica refuses it.
    #[error("applying the entry failed: {detail}")]
    ApplyFailed {
        /// The failure.
        detail: String,
    },
    /// The bytes were claimed by hash (`content.claimed`) and a registration
    /// by upload must name that claim.
    #[error("these bytes were claimed as {claim_id}; the registration must name the claim")]
    ClaimNotReferenced {
        /// The claim.
        claim_id: String,
    },
    /// The registration names a claim that does not exist for its bytes.
    #[error("there is no claim {content_id} of these bytes")]
    UnknownClaim {
        /// The named claim.
        content_id: String,
    },
    /// The ledger has entries already, or a cluster formed.
    #[error("the cluster is formed already; cluster.formed can only be the first entry")]
    ClusterAlreadyFormed,
    /// A node id that the ledger has recorded before.
    #[error("node id {node_id} was used before; node ids are never reused")]
    NodeIdReused {
        /// The id.
        node_id: u64,
    },
    /// A node the ledger does not record as a current member.
    #[error("node {node_id} is not a current member")]
    UnknownNode {
        /// The id.
        node_id: u64,
    },
    /// An approval that does not check out.
    #[error("the membership approval is invalid: {detail}")]
    InvalidApproval {
        /// Why.
        detail: String,
    },
    /// The party id is in use.
    #[error("party id {party_id} is already in use")]
    PartyIdTaken {
        /// The id in question.
        party_id: String,
    },
    /// Another party holds the public key: a key identifies one signer.
    #[error("the public key is already the key of party {party_id}")]
    PartyKeyTaken {
        /// The party holding it.
        party_id: String,
    },
    /// No party has this id.
    #[error("there is no party {party_id}")]
    UnknownParty {
        /// The id in question.
        party_id: String,
    },
    /// A signed intent that does not check out at this point of the log.
    /// `rule` is the stable name of the rule it broke (see
    /// `registry::intent::IntentReason::as_str`).
    #[error("the intent is refused ({rule}): {detail}")]
    IntentRefused {
        /// Which rule, e.g. `bad-signature` or `replayed-intent`.
        rule: String,
        /// What exactly.
        detail: String,
    },
    /// A licence would conflict with another; see
    /// [`crate::rights::Conflict`].
    #[error("the licence would conflict with licence {}", .0.licence_id)]
    LicenceConflict(Box<crate::rights::Conflict>),
    /// `derived_from` names content that is not registered.
    #[error("derived_from names {content_id}, which is not registered")]
    UnknownDerivedFrom {
        /// The id in question.
        content_id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LedgerEntry {
        LedgerEntry::new(EntryBody::ContentRegistered(ContentRegistration {
            content_id: "0192f0c1-0000-7000-8000-000000000001".into(),
            registered_at: "2026-11-21T12:00:00Z".into(),
            registrant: "operator".into(),
            media_kind: MediaKind::Image,
            media_type: Some("image/png".into()),
            size: 3,
            sha256: "ab".repeat(32),
            iscc: IsccCodes {
                code: None,
                meta: None,
                instance: "ISCC:IAA".into(),
                data: "ISCC:GAA".into(),
                image: None,
                audio: None,
                video: None,
            },
            missing_fingerprints: vec![],
            metadata: Metadata::default(),
            prints_sha256: None,
            claim: None,
        }))
    }

    /// The leaf encoding is locked: field order, tag names and omitted empty
    /// fields are what auditors' parsers see.
    #[test]
    fn leaf_encoding_is_stable() {
        let leaf = sample().to_leaf().unwrap();
        assert_eq!(
            leaf,
            r#"{"v":1,"type":"content.registered","content_id":"0192f0c1-0000-7000-8000-000000000001","registered_at":"2026-11-21T12:00:00Z","registrant":"operator","media_kind":"image","media_type":"image/png","size":3,"sha256":"abababababababababababababababababababababababababababababababab","iscc":{"instance":"ISCC:IAA","data":"ISCC:GAA"},"metadata":{}}"#
        );
        assert_eq!(LedgerEntry::from_leaf(&leaf).unwrap(), sample());
    }

    /// A proposed leaf of an unknown version or type stops the node; bad
    /// data in a known type is a rejection.
    #[test]
    fn proposed_leaves_are_classified() {
        let leaf = sample().to_leaf().unwrap();
        assert_eq!(
            LedgerEntry::decode_proposed(&leaf).unwrap().unwrap(),
            sample()
        );
        for unknown in [
            leaf.replacen("\"v\":1", "\"v\":2", 1),
            leaf.replacen("content.registered", "licence.renewed", 1),
        ] {
            assert!(matches!(
                LedgerEntry::decode_proposed(&unknown),
                Err(RegistryError::UnsupportedEntry(_))
            ));
        }
        for bad in [
            "not json".to_owned(),
            leaf.replacen("\"v\":1", "\"v\":\"1\"", 1),
            leaf.replacen("\"size\":3", "\"size\":\"three\"", 1),
            r#"{"v":1}"#.to_owned(),
        ] {
            assert!(
                matches!(
                    LedgerEntry::decode_proposed(&bad),
                    Ok(Err(Rejection::MalformedEntry { .. }))
                ),
                "{bad}"
            );
        }
    }

    /// A leaf from a future encoding version is refused, not misread.
    #[test]
    fn unknown_version_is_refused() {
        let leaf = sample()
            .to_leaf()
            .unwrap()
            .replacen("\"v\":1", "\"v\":2", 1);
        assert!(matches!(
            LedgerEntry::from_leaf(&leaf),
            Err(RegistryError::Corrupt(_))
        ));
    }
}
