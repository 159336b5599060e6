//! Reading the evidence an answer rests on: leaves, inclusion proofs in one
//! tree, and that tree's signed checkpoint.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use registry::LedgerEntry;
use registry::checkpoint::TreeHead;
use registry::merkle::encode_hash;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{Evidence, EvidenceEvent};

/// The evidence for the leaves `indexes` (in any order, each at least
/// once) in the tree of `tree_size` leaves, in ledger order.
pub async fn read(
    state: &AppState,
    indexes: impl IntoIterator<Item = u64>,
    tree_size: u64,
) -> ApiResult<Evidence> {
    let indexes: Vec<u64> = indexes
        .into_iter()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let indexes = indexes.as_slice();
    let (root, proofs) = state.registry.inclusion_proofs(indexes, tree_size).await?;
    let mut events = Vec::with_capacity(indexes.len());
    for (&index, proof) in indexes.iter().zip(proofs) {
        let leaf = stored_leaf(state, index).await?;
        events.push(EvidenceEvent {
            index,
            leaf: BASE64_STANDARD.encode(leaf.as_bytes()),
            inclusion_proof: proof.iter().map(encode_hash).collect(),
        });
    }
    let checkpoint = state.signer()?.sign_checkpoint(&TreeHead {
        size: tree_size,
        root,
    })?;
    Ok(Evidence {
        tree_size,
        root_hash: encode_hash(&root),
        checkpoint,
        events,
    })
}

/// The text of leaf `index`, which the caller knows is applied here.
pub async fn stored_leaf(state: &AppState, index: u64) -> ApiResult<String> {
    Ok(state
        .registry
        .entry(index)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("applied leaf {index} is not stored")))?
        .leaf)
}

/// The entry of leaf `index`, which the caller knows is applied here.
pub async fn stored_entry(state: &AppState, index: u64) -> ApiResult<LedgerEntry> {
    Ok(LedgerEntry::from_leaf(&stored_leaf(state, index).await?)?)
}

/// The entry of a leaf in base64, as receipts and evidence carry it.
pub fn entry_of(leaf: &str) -> ApiResult<LedgerEntry> {
    let bytes = BASE64_STANDARD
        .decode(leaf)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a leaf in base64: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("a leaf in base64: {e}")))?;
    Ok(LedgerEntry::from_leaf(&text)?)
}
