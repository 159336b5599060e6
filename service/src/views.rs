//! The JSON shapes the API returns. Kept apart from the registry's types so
//! the wire format changes only on purpose.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use media_fingerprint::{MediaKind, MissingFingerprint};
use registry::merkle::{Hash, encode_hash};
use registry::{ClaimedIscc, ContentClaim, ContentRegistration, FingerprintedBy, Metadata};
use serde::{Deserialize, Serialize};

/// A registered piece of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentView {
    /// Stable id.
    pub content_id: String,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// Image, audio, video or other.
    pub media_kind: MediaKind,
    /// Sniffed MIME type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// ISCC units in canonical `ISCC:` form. A registration by upload has
    /// at least the Instance-Code and Data-Code; a claim has what its
    /// registrant gave.
    pub iscc: ClaimedIscc,
    /// Fingerprints that could not be computed, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_fingerprints: Vec<MissingFingerprint>,
    /// The registrant's metadata.
    pub metadata: Metadata,
    /// When it was registered (RFC 3339, UTC).
    pub registered_at: String,
    /// Who registered it.
    pub registrant: String,
    /// Leaf index of the registration in the ledger.
    pub ledger_index: u64,
    /// Who computed the hashes and fingerprints: the registry, from the
    /// uploaded bytes, or the registrant, who sent only the results (a
    /// claim by hash, not a lock on the bytes).
    pub fingerprinted_by: FingerprintedBy,
    /// For a registration by upload of bytes claimed earlier, the claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

impl ContentView {
    /// The view of a registration at leaf `ledger_index`.
    pub fn new(reg: ContentRegistration, ledger_index: u64) -> Self {
        Self {
            content_id: reg.content_id,
            sha256: reg.sha256,
            size: reg.size,
            media_kind: reg.media_kind,
            media_type: reg.media_type,
            iscc: reg.iscc.into(),
            missing_fingerprints: reg.missing_fingerprints,
            metadata: reg.metadata,
            registered_at: reg.registered_at,
            registrant: reg.registrant,
            ledger_index,
            fingerprinted_by: FingerprintedBy::Registry,
            claim: reg.claim,
        }
    }

    /// The view of a claim by hash at leaf `ledger_index`. Its media kind
    /// is read from the media type the registrant declared.
    pub fn from_claim(claim: ContentClaim, ledger_index: u64) -> Self {
        let declared = claim.media_type.as_deref().unwrap_or_default();
        let media_kind = match declared.split('/').next() {
            Some("image") => MediaKind::Image,
            Some("audio") => MediaKind::Audio,
            Some("video") => MediaKind::Video,
            _ => MediaKind::Other,
        };
        Self {
            content_id: claim.content_id,
            sha256: claim.sha256,
            size: claim.size,
            media_kind,
            media_type: claim.media_type,
            iscc: claim.iscc,
            missing_fingerprints: Vec::new(),
            metadata: claim.metadata,
            registered_at: claim.claimed_at,
            registrant: claim.registrant,
            ledger_index,
            fingerprinted_by: claim.fingerprinted_by,
            claim: None,
        }
    }
}

/// The registration or, failing one, the claim with this content id.
pub async fn content_by_id(
    registry: &registry::Registry,
    content_id: &str,
) -> registry::Result<Option<ContentView>> {
    if let Some(record) = registry.content(content_id).await? {
        return Ok(Some(ContentView::new(
            record.registration,
            record.ledger_index,
        )));
    }
    Ok(registry
        .claim(content_id)
        .await?
        .map(|c| ContentView::from_claim(c.claim, c.ledger_index)))
}

/// The registration by upload or, failing one, the claim of the file with
/// this SHA-256.
pub async fn content_by_sha256(
    registry: &registry::Registry,
    sha256: &str,
) -> registry::Result<Option<ContentView>> {
    if let Some(record) = registry.content_by_sha256(sha256).await? {
        return Ok(Some(ContentView::new(
            record.registration,
            record.ledger_index,
        )));
    }
    Ok(registry
        .claim_by_sha256(sha256)
        .await?
        .map(|c| ContentView::from_claim(c.claim, c.ledger_index)))
}

/// Answers of `GET /v1/content/{id}` as JSON bytes, by content id. A
/// registration or claim never changes once applied (an upload of claimed
/// bytes gets an id of its own), so an answer found once can be served
/// again without reading the store or encoding it anew: the lookups that
/// follow a registration, and re-reads by id, cost a hash lookup.
pub struct ContentCache(quick_cache::sync::Cache<String, bytes::Bytes>);

/// Answers kept at most: about 20 MiB at a typical 1 to 2 KiB each.
const CONTENT_CACHE_ENTRIES: usize = 16_384;

impl Default for ContentCache {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::new(CONTENT_CACHE_ENTRIES))
    }
}

impl ContentCache {
    /// The answer for `content_id`, if one was given.
    pub fn get(&self, content_id: &str) -> Option<bytes::Bytes> {
        self.0.get(content_id)
    }

    /// The JSON of `content`, kept for later lookups of its id.
    pub fn keep(&self, content: &ContentView) -> serde_json::Result<bytes::Bytes> {
        let json = bytes::Bytes::from(serde_json::to_vec(content)?);
        self.0.insert(content.content_id.clone(), json.clone());
        Ok(json)
    }
}

/// Everything needed to check offline that a leaf is in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerReceipt {
    /// Leaf index.
    pub index: u64,
    /// Size of the tree the proof and checkpoint are for.
    pub tree_size: u64,
    /// Root of that tree, base64.
    pub root_hash: String,
    /// RFC 9162 inclusion proof, base64 hashes, leaf to root.
    pub inclusion_proof: Vec<String>,
    /// The exact leaf bytes, base64; their leaf hash is what the proof covers.
    pub leaf: String,
    /// The signed C2SP checkpoint for `tree_size` and `root_hash`.
    pub checkpoint: String,
}

impl LedgerReceipt {
    /// Assembles a receipt.
    pub fn new(
        index: u64,
        tree_size: u64,
        root: Hash,
        proof: &[Hash],
        leaf: &str,
        checkpoint: String,
    ) -> Self {
        Self {
            index,
            tree_size,
            root_hash: encode_hash(&root),
            inclusion_proof: proof.iter().map(encode_hash).collect(),
            leaf: BASE64_STANDARD.encode(leaf.as_bytes()),
            checkpoint,
        }
    }
}

/// The 201 body of a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegistrationReceipt {
    /// The registered content.
    #[serde(flatten)]
    pub content: ContentView,
    /// Where it sits in the ledger, with proof.
    pub ledger: LedgerReceipt,
}

/// What an answer rests on: the leaves of the events it was computed from,
/// each with its inclusion proof in one tree, and that tree's signed
/// checkpoint. An auditor checks it offline with `provreg verify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Size of the tree every proof is for.
    pub tree_size: u64,
    /// Root of that tree, base64.
    pub root_hash: String,
    /// The signed C2SP checkpoint for `tree_size` and `root_hash`.
    pub checkpoint: String,
    /// The events, in ledger order.
    pub events: Vec<EvidenceEvent>,
}

/// One event an answer rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvidenceEvent {
    /// Leaf index.
    pub index: u64,
    /// The exact leaf bytes, base64.
    pub leaf: String,
    /// RFC 9162 inclusion proof, base64 hashes, leaf to root.
    pub inclusion_proof: Vec<String>,
}
