//! The cluster aggregate: its identity, its nodes and the approvals of
//! voter changes, as recorded in the ledger. Checked and indexed by the
//! apply transaction; read by the service for governance.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::signature::{ED25519, UnparsedPublicKey};
use sqlx::{AnyConnection, Row};

use super::apply::parse_timestamp;
use super::{Registry, from_i64, to_i64};
use crate::entry::{
    APPROVAL_SKEW_SECONDS, Approval, EntryBody, LedgerEntry, NodeRecord, Rejection,
};
use crate::{RegistryError, Result};

/// A node as recorded, with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedNode {
    /// The record.
    pub record: NodeRecord,
    /// Whether a `node.removed` entry retired it.
    pub removed: bool,
}

/// A set of node ids as the approval table keys it.
pub fn voters_key(ids: &[u64]) -> String {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Checks a cluster entry against the state so far; `None` if it may be
/// appended at leaf `index`.
pub(super) async fn check(
    conn: &mut AnyConnection,
    index: u64,
    entry: &LedgerEntry,
) -> Result<Option<Rejection>> {
    match &entry.body {
        EntryBody::ClusterFormed(formed) => {
            if index != 0 || cluster_id(conn).await?.is_some() {
                return Ok(Some(Rejection::ClusterAlreadyFormed));
            }
            Ok(check_record(&formed.founder))
        }
        EntryBody::NodeAdded(added) => {
            if node(conn, added.node.node_id).await?.is_some() {
                return Ok(Some(Rejection::NodeIdReused {
                    node_id: added.node.node_id,
                }));
            }
            Ok(check_record(&added.node))
        }
        EntryBody::NodeRemoved(removed) => match node(conn, removed.node_id).await? {
            Some(node) if !node.removed => Ok(None),
            _ => Ok(Some(Rejection::UnknownNode {
                node_id: removed.node_id,
            })),
        },
        EntryBody::MembershipApproved(approved) => {
            let invalid = |detail: String| Ok(Some(Rejection::InvalidApproval { detail }));
            let approval = &approved.approval;
            match cluster_id(conn).await? {
                Some(id) if id == approval.cluster_id => {}
                Some(id) => {
                    return invalid(format!(
                        "it is for cluster {}, this is {id}",
                        approval.cluster_id
                    ));
                }
                None => return invalid("the ledger records no cluster.formed".into()),
            }
            let (Some(at), Some(recorded)) = (
                parse_timestamp(&approval.approved_at),
                parse_timestamp(&approved.recorded_at),
            ) else {
                return invalid("approved_at is not RFC 3339 in UTC".into());
            };
            if (at - recorded).whole_seconds().abs() > APPROVAL_SKEW_SECONDS {
                return invalid(format!(
                    "approved_at is more than {APPROVAL_SKEW_SECONDS} s from when it was recorded"
                ));
            }
            if approval.from_voters.is_empty() || approval.to_voters.is_empty() {
                return invalid("the voter sets must not be empty".into());
            }
            let Some(approver) = node(conn, approval.approver).await?.filter(|n| !n.removed) else {
                return Ok(Some(Rejection::UnknownNode {
                    node_id: approval.approver,
                }));
            };
            if !verify_approval(approval, &approver.record.node_key) {
                return invalid(format!(
                    "the signature does not verify with node {}'s recorded key",
                    approval.approver
                ));
            }
            Ok(None)
        }
        EntryBody::NodeUpgraded(upgraded) => {
            let invalid = |detail: String| Ok(Some(Rejection::InvalidApproval { detail }));
            let Some(node) = node(conn, upgraded.node_id).await?.filter(|n| !n.removed) else {
                return Ok(Some(Rejection::UnknownNode {
                    node_id: upgraded.node_id,
                }));
            };
            if upgraded.feature_level <= node.record.feature_level {
                return invalid(format!(
                    "node {} is recorded at feature level {} already",
                    upgraded.node_id, node.record.feature_level
                ));
            }
            let Some(cluster) = cluster_id(conn).await? else {
                return invalid("the ledger records no cluster.formed".into());
            };
            let message =
                crate::level_claim_message(&cluster, upgraded.node_id, upgraded.feature_level);
            if !verify_signature(&node.record.node_key, &upgraded.signature, &message) {
                return invalid(format!(
                    "the level claim does not verify with node {}'s recorded key",
                    upgraded.node_id
                ));
            }
            Ok(None)
        }
        // Not a cluster entry: nothing of the cluster's to check.
        _ => Ok(None),
    }
}

fn check_record(record: &NodeRecord) -> Option<Rejection> {
    let key_ok = BASE64_STANDARD
        .decode(&record.node_key)
        .is_ok_and(|k| k.len() == 32);
    (record.node_id == 0 || !key_ok).then(|| Rejection::MalformedEntry {
        detail: format!(
            "node {}: the id must be 1 or more and the node key 32 bytes of base64",
            record.node_id
        ),
    })
}

/// Whether `approval` carries a valid signature by `node_key`.
pub fn verify_approval(approval: &Approval, node_key: &str) -> bool {
    verify_signature(node_key, &approval.signature, &approval.signed_message())
}

/// Whether `signature` (base64) by `node_key` (base64) verifies over
/// `message`.
fn verify_signature(node_key: &str, signature: &str, message: &str) -> bool {
    let (Ok(key), Ok(signature)) = (
        BASE64_STANDARD.decode(node_key),
        BASE64_STANDARD.decode(signature),
    ) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, key)
        .verify(message.as_bytes(), &signature)
        .is_ok()
}

/// Indexes a cluster entry appended at leaf `index`.
pub(super) async fn index(conn: &mut AnyConnection, index: u64, entry: &LedgerEntry) -> Result<()> {
    match &entry.body {
        EntryBody::ClusterFormed(formed) => {
            sqlx::query("insert into cluster_info (id, cluster_id, origin) values (1, $1, $2)")
                .bind(&formed.cluster_id)
                .bind(&formed.origin)
                .execute(&mut *conn)
                .await?;
            insert_node(conn, index, &formed.founder).await?;
        }
        EntryBody::NodeAdded(added) => insert_node(conn, index, &added.node).await?,
        EntryBody::NodeRemoved(removed) => {
            sqlx::query("update cluster_node set removed_idx = $1 where node_id = $2")
                .bind(to_i64(index)?)
                .bind(to_i64(removed.node_id)?)
                .execute(&mut *conn)
                .await?;
        }
        EntryBody::MembershipApproved(approved) => {
            let approval = &approved.approval;
            sqlx::query(
                "insert into cluster_approval (ledger_idx, from_voters, to_voters, approver, approved_at) values ($1, $2, $3, $4, $5)",
            )
            .bind(to_i64(index)?)
            .bind(voters_key(&approval.from_voters))
            .bind(voters_key(&approval.to_voters))
            .bind(to_i64(approval.approver)?)
            .bind(&approval.approved_at)
            .execute(&mut *conn)
            .await?;
        }
        EntryBody::NodeUpgraded(upgraded) => {
            sqlx::query("update cluster_node set feature_level = $1 where node_id = $2")
                .bind(i64::from(upgraded.feature_level))
                .bind(to_i64(upgraded.node_id)?)
                .execute(&mut *conn)
                .await?;
        }
        // Not a cluster entry: nothing of the cluster's to index.
        _ => {}
    }
    Ok(())
}

async fn insert_node(conn: &mut AnyConnection, index: u64, record: &NodeRecord) -> Result<()> {
    sqlx::query(
        "insert into cluster_node (node_id, address, node_key, checkpoint_key, feature_level, added_idx) values ($1, $2, $3, $4, $5, $6)",
    )
    .bind(to_i64(record.node_id)?)
    .bind(&record.address)
    .bind(&record.node_key)
    .bind(&record.checkpoint_key)
    .bind(i64::from(record.feature_level))
    .bind(to_i64(index)?)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn cluster_id(conn: &mut AnyConnection) -> Result<Option<String>> {
    let row = sqlx::query("select cluster_id from cluster_info where id = 1")
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get(0).map_err(RegistryError::from))
        .transpose()
}

async fn node(conn: &mut AnyConnection, node_id: u64) -> Result<Option<RecordedNode>> {
    let row = sqlx::query(
        "select node_id, address, node_key, checkpoint_key, feature_level, removed_idx from cluster_node where node_id = $1",
    )
    .bind(to_i64(node_id)?)
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| node_from_row(&row)).transpose()
}

fn node_from_row(row: &sqlx::any::AnyRow) -> Result<RecordedNode> {
    let level: i64 = row.try_get(4)?;
    let removed: Option<i64> = row.try_get(5)?;
    Ok(RecordedNode {
        record: NodeRecord {
            node_id: from_i64(row.try_get(0)?)?,
            address: row.try_get(1)?,
            node_key: row.try_get(2)?,
            checkpoint_key: row.try_get(3)?,
            feature_level: u32::try_from(level)
                .map_err(|_| RegistryError::Corrupt(format!("feature level {level}")))?,
        },
        removed: removed.is_some(),
    })
}

impl Registry {
    /// The node recorded under `node_id`, if the ledger has ever had one.
    pub async fn recorded_node(&self, node_id: u64) -> Result<Option<RecordedNode>> {
        let mut conn = self.pool.acquire().await?;
        node(&mut conn, node_id).await
    }

    /// Every node the ledger has recorded, by id.
    pub async fn recorded_nodes(&self) -> Result<Vec<RecordedNode>> {
        let rows = sqlx::query(
            "select node_id, address, node_key, checkpoint_key, feature_level, removed_idx from cluster_node order by node_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(node_from_row).collect()
    }

    /// The nodes that approved changing the voters from `from` to `to`,
    /// with approvals given at or after `since` (RFC 3339 UTC).
    pub async fn approvers(&self, from: &[u64], to: &[u64], since: &str) -> Result<Vec<u64>> {
        let rows = sqlx::query(
            "select distinct approver from cluster_approval where from_voters = $1 and to_voters = $2 and approved_at >= $3 order by approver",
        )
        .bind(voters_key(from))
        .bind(voters_key(to))
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| from_i64(row.try_get(0)?)).collect()
    }
}
