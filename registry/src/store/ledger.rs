//! Reads of the Merkle log: tree heads, proofs and leaves.

use sqlx::Row;

use super::apply::read_tree_size;
use super::{Registry, to_i64, with_hashes};
use crate::checkpoint::TreeHead;
use crate::entry::LedgerEntry;
use crate::merkle::Hash;
use crate::{RegistryError, Result};

/// One leaf as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEntry {
    /// Leaf index.
    pub index: u64,
    /// The exact leaf text; its RFC 9162 leaf hash is in the tree.
    pub leaf: String,
    /// The decoded entry.
    pub entry: LedgerEntry,
}

impl Registry {
    /// Number of leaves in the log now.
    pub async fn tree_size(&self) -> Result<u64> {
        let mut conn = self.pool.acquire().await?;
        read_tree_size(&mut conn).await
    }

    /// The tree head at `size` leaves, or now when `size` is `None`.
    pub async fn tree_head(&self, size: Option<u64>) -> Result<TreeHead> {
        let mut conn = self.pool.acquire().await?;
        let current = read_tree_size(&mut conn).await?;
        let size = size.unwrap_or(current);
        if size > current {
            return Err(RegistryError::OutOfRange(format!(
                "tree size {size} is beyond the current size {current}"
            )));
        }
        let root = with_hashes(&mut conn, |r| tlog_tiles::tree_hash(size, r)).await?;
        Ok(TreeHead { size, root })
    }

    /// The RFC 9162 inclusion proof of leaf `index` in the tree of
    /// `tree_size` leaves, with that tree's root.
    pub async fn inclusion_proof(&self, index: u64, tree_size: u64) -> Result<(Hash, Vec<Hash>)> {
        let mut conn = self.pool.acquire().await?;
        let current = read_tree_size(&mut conn).await?;
        if tree_size > current {
            return Err(RegistryError::OutOfRange(format!(
                "tree_size {tree_size} is beyond the current size {current}"
            )));
        }
        if index >= tree_size {
            return Err(RegistryError::OutOfRange(format!(
                "index {index} is not below tree_size {tree_size}"
            )));
        }
        // Both in each pass, so that one fetch brings what either needs.
        with_hashes(&mut conn, |r| {
            let root = tlog_tiles::tree_hash(tree_size, r);
            let proof = tlog_tiles::prove_record(tree_size, index, r);
            Ok((root?, proof?))
        })
        .await
    }

    /// RFC 9162 inclusion proofs of the leaves `indexes` in the tree of
    /// `tree_size` leaves, with that tree's root; the hashes they need are
    /// read together.
    pub async fn inclusion_proofs(
        &self,
        indexes: &[u64],
        tree_size: u64,
    ) -> Result<(Hash, Vec<Vec<Hash>>)> {
        let mut conn = self.pool.acquire().await?;
        let current = read_tree_size(&mut conn).await?;
        if tree_size > current {
            return Err(RegistryError::OutOfRange(format!(
                "tree_size {tree_size} is beyond the current size {current}"
            )));
        }
        if let Some(index) = indexes.iter().find(|&&i| i >= tree_size) {
            return Err(RegistryError::OutOfRange(format!(
                "index {index} is not below tree_size {tree_size}"
            )));
        }
        with_hashes(&mut conn, |r| {
            let root = tlog_tiles::tree_hash(tree_size, r);
            // Every proof in each pass, so one fetch brings what all need.
            let proofs: Vec<_> = indexes
                .iter()
                .map(|&index| tlog_tiles::prove_record(tree_size, index, r))
                .collect();
            Ok((root?, proofs.into_iter().collect::<Result<Vec<_>, _>>()?))
        })
        .await
    }

    /// The RFC 9162 consistency proof from the tree of `from` leaves to the
    /// tree of `to` leaves, with the root of the larger tree.
    pub async fn consistency_proof(&self, from: u64, to: u64) -> Result<(Hash, Vec<Hash>)> {
        let mut conn = self.pool.acquire().await?;
        let current = read_tree_size(&mut conn).await?;
        if to > current {
            return Err(RegistryError::OutOfRange(format!(
                "to {to} is beyond the current size {current}"
            )));
        }
        if from == 0 || from > to {
            return Err(RegistryError::OutOfRange(format!(
                "from must be between 1 and to ({to}), got {from}"
            )));
        }
        with_hashes(&mut conn, |r| {
            let root = tlog_tiles::tree_hash(to, r);
            let proof = tlog_tiles::prove_tree(to, from, r);
            Ok((root?, proof?))
        })
        .await
    }

    /// The leaf at `index`, if the log has one there.
    pub async fn entry(&self, index: u64) -> Result<Option<StoredEntry>> {
        let row = sqlx::query("select leaf from ledger_entry where idx = $1")
            .bind(to_i64(index)?)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let leaf: String = row.try_get(0)?;
        let entry = LedgerEntry::from_leaf(&leaf)?;
        Ok(Some(StoredEntry { index, leaf, entry }))
    }

    /// The timestamp of the last leaf, if any. A proposer stamps new
    /// entries no earlier than this, since apply refuses time going back.
    pub async fn latest_timestamp(&self) -> Result<Option<String>> {
        let row = sqlx::query(
            "select leaf from ledger_entry where idx = (select max(idx) from ledger_entry)",
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let leaf: String = row.try_get(0)?;
        Ok(Some(LedgerEntry::from_leaf(&leaf)?.timestamp().to_owned()))
    }
}
