//! Snapshots of the whole ledger, for Raft to ship to a lagging replica.
//!
//! Everything the registry holds derives from the leaves (and the prints
//! stored beside them), so a snapshot is the leaves in order plus the Raft
//! marks. They are read a page at a time and installed one leaf at a time,
//! so neither side holds the ledger in memory.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{ApplyTx, Beside, RaftMarks, Registry, from_i64, to_i64};
use crate::Result;

/// One leaf of a snapshot, exactly as stored, with its prints if any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotLeaf {
    /// The leaf text.
    pub leaf: String,
    /// The prints stored beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prints: Option<String>,
    /// The SHA-256 of the token of the party it registers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

/// Leaves per page when a snapshot is read.
pub const SNAPSHOT_PAGE: u64 = 1000;

impl Registry {
    /// The Raft marks and the tree size of one consistent state, read
    /// together. The log is append-only, so the leaves below that size can
    /// be read afterwards, page by page, while later entries are applied.
    pub async fn snapshot_marks(&self) -> Result<(RaftMarks, u64)> {
        let row = sqlx::query(
            "select tree_size, last_applied, last_membership from sm_state where id = 1",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            RaftMarks {
                last_applied: row.try_get(1)?,
                last_membership: row.try_get(2)?,
            },
            from_i64(row.try_get(0)?)?,
        ))
    }

    /// Leaves `[start, end)`, in order, each with its prints. Prints are
    /// written with their leaf, so every leaf read has its prints already.
    pub async fn snapshot_leaves(&self, start: u64, end: u64) -> Result<Vec<SnapshotLeaf>> {
        let rows = sqlx::query(
            "select e.leaf, p.prints, t.token_sha256 from ledger_entry e \
             left join content c on c.ledger_idx = e.idx \
             left join content_print p on p.content_id = c.content_id \
             left join party pa on pa.ledger_idx = e.idx \
             left join party_token t on t.party_id = pa.party_id \
             where e.idx >= $1 and e.idx < $2 order by e.idx",
        )
        .bind(to_i64(start)?)
        .bind(to_i64(end)?)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SnapshotLeaf {
                    leaf: row.try_get(0)?,
                    prints: row.try_get(1)?,
                    token_sha256: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// Starts replacing the whole ledger from a snapshot: a transaction in
    /// which every ledger row is already deleted. Append the snapshot's
    /// leaves in order with [`ApplyTx::append_snapshot_leaf`], then commit
    /// with the snapshot's marks; until then nothing is visible, and
    /// dropping the transaction leaves the ledger as it was.
    pub async fn begin_install(&self) -> Result<ApplyTx> {
        let mut tx = self.begin_apply().await?;
        tx.clear().await?;
        Ok(tx)
    }
}

impl ApplyTx {
    /// Appends one snapshot leaf exactly as given: the text is not
    /// re-serialised, so the rebuilt tree has the same hashes.
    pub async fn append_snapshot_leaf(&mut self, leaf: &SnapshotLeaf) -> Result<()> {
        self.append_stored_leaf(
            &leaf.leaf,
            Beside {
                prints: leaf.prints.as_deref(),
                token_sha256: leaf.token_sha256.as_deref(),
            },
        )
        .await
    }
}
