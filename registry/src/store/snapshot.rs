//! Snapshots of the whole ledger, for Raft to ship to a lagging replica.
//!
//! Everything the registry holds derives from the leaves, so a snapshot is
//! the leaves plus the Raft marks. Installing one rebuilds every table from
//! the leaves in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{RaftMarks, Registry};
use crate::Result;
use crate::entry::{EntryBody, LedgerEntry};

/// The ledger as of one applied log id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerSnapshot {
    /// Last applied log id (raft-store's JSON).
    pub last_applied: Option<String>,
    /// Last applied membership (raft-store's JSON).
    pub last_membership: Option<String>,
    /// Every leaf, in order, exactly as stored.
    pub leaves: Vec<String>,
    /// The prints stored beside leaves, by content id, exactly as stored.
    #[serde(default)]
    pub prints: BTreeMap<String, String>,
}

impl Registry {
    /// Captures the ledger. Reads the marks and tree size first, then the
    /// leaves below that size: the log is append-only, so later applies
    /// cannot change what is read.
    pub async fn snapshot(&self) -> Result<LedgerSnapshot> {
        let (marks, size) = self.marks_and_size().await?;
        let leaves = self.leaves(0, size).await?;
        // Prints are written with their leaf, so every leaf read above has
        // its prints stored already; prints of later leaves are dropped.
        let mut prints: BTreeMap<String, String> = self.all_prints().await?.into_iter().collect();
        let mut kept = BTreeMap::new();
        for (_, leaf) in &leaves {
            if let EntryBody::ContentRegistered(reg) = LedgerEntry::from_leaf(leaf)?.body
                && let Some(json) = prints.remove(&reg.content_id)
            {
                kept.insert(reg.content_id, json);
            }
        }
        Ok(LedgerSnapshot {
            last_applied: marks.last_applied,
            last_membership: marks.last_membership,
            leaves: leaves.into_iter().map(|(_, leaf)| leaf).collect(),
            prints: kept,
        })
    }

    /// Replaces the whole ledger with `snapshot`, atomically.
    pub async fn install_snapshot(&self, snapshot: &LedgerSnapshot) -> Result<()> {
        let mut tx = self.begin_apply().await?;
        tx.clear().await?;
        for leaf in &snapshot.leaves {
            let prints = match LedgerEntry::from_leaf(leaf)?.body {
                EntryBody::ContentRegistered(reg) => {
                    snapshot.prints.get(&reg.content_id).map(String::as_str)
                }
                _ => None,
            };
            tx.append_stored_leaf(leaf, prints).await?;
        }
        tx.commit(&RaftMarks {
            last_applied: snapshot.last_applied.clone(),
            last_membership: snapshot.last_membership.clone(),
        })
        .await
    }

    async fn marks_and_size(&self) -> Result<(RaftMarks, u64)> {
        use sqlx::Row;
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
            super::from_i64(row.try_get(0)?)?,
        ))
    }
}
