//! Recomputing the rights projections from the ledger alone.

use sqlx::{AnyConnection, Row};

use super::rights::entry_micros;
use super::{Registry, from_i64, licence, rights, signed, to_i64};
use crate::Result;
use crate::entry::{EntryBody, Holder, LedgerEntry};

/// The tables [`Registry::rebuild_projections`] recomputes, children first.
const PROJECTIONS: [&str; 5] = [
    "derivation",
    "licensee",
    "licence",
    "holding",
    "intent_applied",
];

/// Leaves read per query while rebuilding.
const PAGE: i64 = 1000;

impl Registry {
    /// Recomputes the projections the rights queries read (holders,
    /// licences and licensees, derivations, applied intents) from the
    /// ledger's leaves alone, in one transaction: a failure leaves them as
    /// they were. Returns the number of leaves read. Run it on a stopped
    /// node; the state machine writes the same tables.
    pub async fn rebuild_projections(&self) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        for table in PROJECTIONS {
            sqlx::query(&format!("delete from {table}"))
                .execute(&mut *tx)
                .await?;
        }
        let mut next = 0i64;
        loop {
            let rows = sqlx::query(
                "select idx, leaf from ledger_entry where idx >= $1 order by idx limit $2",
            )
            .bind(next)
            .bind(PAGE)
            .fetch_all(&mut *tx)
            .await?;
            let Some(last) = rows.last() else { break };
            next = last.try_get::<i64, _>(0)? + 1;
            for row in &rows {
                let index = from_i64(row.try_get(0)?)?;
                let entry = LedgerEntry::from_leaf(&row.try_get::<String, _>(1)?)?;
                project(&mut tx, index, &entry).await?;
            }
        }
        tx.commit().await?;
        from_i64(next)
    }
}

/// Indexes one applied leaf into the projections.
async fn project(conn: &mut AnyConnection, index: u64, entry: &LedgerEntry) -> Result<()> {
    match &entry.body {
        EntryBody::ContentRegistered(reg) => {
            first_holders(conn, &reg.content_id, &reg.metadata.holders, index, entry).await?;
            derived(conn, &reg.content_id, &reg.metadata.derived_from, index).await
        }
        EntryBody::ContentClaimed(claim) => {
            first_holders(
                conn,
                &claim.content_id,
                &claim.metadata.holders,
                index,
                entry,
            )
            .await?;
            derived(conn, &claim.content_id, &claim.metadata.derived_from, index).await
        }
        EntryBody::PartyKeyRotated(rotated) => {
            signed::mark_applied(conn, &rotated.intent_sha256, index).await
        }
        EntryBody::ContentTransferred(t) => rights::index_transfer(conn, index, t).await,
        EntryBody::LicenceGranted(g) | EntryBody::LicenceSublicensed(g) => {
            licence::index_grant(conn, index, g).await
        }
        EntryBody::LicenceTransferred(t) => licence::index_transfer(conn, index, t).await,
        EntryBody::LicenceRevoked(r) => licence::index_revoke(conn, index, r).await,
        EntryBody::ClusterFormed(_)
        | EntryBody::NodeAdded(_)
        | EntryBody::NodeRemoved(_)
        | EntryBody::MembershipApproved(_)
        | EntryBody::NodeUpgraded(_)
        | EntryBody::PartyRegistered(_) => Ok(()),
    }
}

async fn first_holders(
    conn: &mut AnyConnection,
    content_id: &str,
    holders: &[Holder],
    index: u64,
    entry: &LedgerEntry,
) -> Result<()> {
    if holders.is_empty() {
        return Ok(());
    }
    let us = entry_micros(entry.timestamp())?;
    for holder in holders {
        sqlx::query(
            "insert into holding (content_id, party_id, share_bp, since_idx, since_us) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(content_id)
        .bind(&holder.party_id)
        .bind(i64::from(holder.share_bp))
        .bind(to_i64(index)?)
        .bind(us)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn derived(
    conn: &mut AnyConnection,
    content_id: &str,
    parents: &[String],
    index: u64,
) -> Result<()> {
    for parent in parents {
        sqlx::query("insert into derivation (parent_id, child_id, ledger_idx) values ($1, $2, $3)")
            .bind(parent)
            .bind(content_id)
            .bind(to_i64(index)?)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Every row of the projections, in a fixed order, as text.
    pub(crate) async fn dump(reg: &Registry) -> Vec<String> {
        let mut conn = reg.pool.acquire().await.unwrap();
        let mut rows = Vec::new();
        for (table, order) in [
            ("derivation", "parent_id, child_id"),
            ("licensee", "licence_id, since_idx"),
            ("licence", "licence_id"),
            ("holding", "content_id, party_id, since_idx"),
            ("intent_applied", "replay_key"),
        ] {
            let columns = match table {
                "derivation" => "parent_id || ' ' || child_id || ' ' || ledger_idx",
                "licensee" => {
                    "licence_id || ' ' || party_id || ' ' || since_idx || ' ' || since_us || ' ' || coalesce(until_idx, -1) || ' ' || coalesce(until_us, -1)"
                }
                "licence" => {
                    "licence_id || ' ' || content_id || ' ' || coalesce(parent_id, '-') || ' ' || scope || ' ' || exclusive || ' ' || sublicensable || ' ' || coalesce(fee_ref, '-') || ' ' || granted_idx || ' ' || granted_us || ' ' || coalesce(revoked_idx, -1) || ' ' || coalesce(revoked_us, -1)"
                }
                "holding" => {
                    "content_id || ' ' || party_id || ' ' || share_bp || ' ' || since_idx || ' ' || since_us || ' ' || coalesce(until_idx, -1) || ' ' || coalesce(until_us, -1)"
                }
                _ => "replay_key || ' ' || ledger_idx",
            };
            let sql = format!("select {columns} from {table} order by {order}");
            for row in sqlx::query(&sql).fetch_all(&mut *conn).await.unwrap() {
                rows.push(format!("{table}: {}", row.try_get::<String, _>(0).unwrap()));
            }
        }
        rows
    }

    /// Rebuilding from the leaves gives exactly the rows apply wrote.
    pub(crate) async fn rebuild_matches(reg: &Registry) {
        let live = dump(reg).await;
        assert!(!live.is_empty());
        reg.rebuild_projections().await.unwrap();
        assert_eq!(dump(reg).await, live);
    }
}
