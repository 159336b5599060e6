//! Reading the evidence an answer rests on: leaves, inclusion proofs in one
//! tree, and that tree's signed checkpoint.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use registry::checkpoint::TreeHead;
use registry::merkle::encode_hash;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::{Evidence, EvidenceEvent};

/// The evidence for the leaves `indexes` (ascending) in the tree of
/// `tree_size` leaves.
pub async fn read(state: &AppState, indexes: &[u64], tree_size: u64) -> ApiResult<Evidence> {
    let (root, proofs) = state.registry.inclusion_proofs(indexes, tree_size).await?;
    let mut events = Vec::with_capacity(indexes.len());
    for (&index, proof) in indexes.iter().zip(proofs) {
        let leaf = state
            .registry
            .entry(index)
            .await?
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("leaf {index} is proven but not stored"))
            })?
            .leaf;
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
