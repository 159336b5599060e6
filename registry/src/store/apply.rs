//! The write path: one transaction per batch of committed Raft entries.

use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Row, Transaction};

use super::similarity::{self, codes_of, crop_codes};
use super::{RaftMarks, from_i64, to_i64, with_hashes};
use crate::entry::{ApplyOutcome, EntryBody, LedgerEntry, Prints, Rejection};
use crate::{RegistryError, Result};

/// A batch being applied. Entries appended through it become visible, with
/// the Raft marks, when [`ApplyTx::commit`] returns; dropping it rolls back.
pub struct ApplyTx {
    tx: Transaction<'static, Any>,
    tree_size: u64,
}

impl std::fmt::Debug for ApplyTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyTx")
            .field("tree_size", &self.tree_size)
            .finish_non_exhaustive()
    }
}

impl ApplyTx {
    pub(super) async fn begin(pool: &AnyPool) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let tree_size = read_tree_size(&mut tx).await?;
        Ok(Self { tx, tree_size })
    }

    /// Applies one command. Business rules (no duplicate bytes, references
    /// must exist) are checked here, against the data as of this point in the
    /// log, so every replica reaches the same outcome.
    ///
    /// `prints` is the JSON of the [`Prints`] proposed with the entry, if
    /// any; it must be exactly what the entry's `prints_sha256` commits to.
    pub async fn apply(
        &mut self,
        entry: &LedgerEntry,
        prints: Option<&str>,
    ) -> Result<ApplyOutcome> {
        let parsed = match check_prints(entry, prints) {
            Ok(parsed) => parsed,
            Err(rejection) => return Ok(ApplyOutcome::Rejected(rejection)),
        };
        if let Some(rejection) = self.check(entry).await? {
            return Ok(ApplyOutcome::Rejected(rejection));
        }
        let leaf = entry.to_leaf()?;
        self.append_leaf(&leaf, entry, prints.zip(parsed.as_ref()))
            .await
    }

    /// Appends a leaf exactly as given (snapshot install): the text is not
    /// re-serialised, so the rebuilt tree has the same hashes.
    pub(super) async fn append_stored_leaf(
        &mut self,
        leaf: &str,
        prints: Option<&str>,
    ) -> Result<()> {
        let entry = LedgerEntry::from_leaf(leaf)?;
        let parsed = check_prints(&entry, prints)
            .map_err(|r| RegistryError::Corrupt(format!("snapshot leaf: {r}")))?;
        self.append_leaf(leaf, &entry, prints.zip(parsed.as_ref()))
            .await
            .map(|_| ())
    }

    async fn check(&mut self, entry: &LedgerEntry) -> Result<Option<Rejection>> {
        let conn: &mut AnyConnection = &mut self.tx;
        match &entry.body {
            EntryBody::ContentRegistered(reg) => {
                if let Err(e) = codes_of(&reg.iscc) {
                    return Ok(Some(Rejection::InvalidFingerprint {
                        content_id: reg.content_id.clone(),
                        detail: e.to_string(),
                    }));
                }
                if let Some(content_id) = content_id_by_sha256(conn, &reg.sha256).await? {
                    return Ok(Some(Rejection::DuplicateContent { content_id }));
                }
                if content_exists(conn, &reg.content_id).await? {
                    return Ok(Some(Rejection::ContentIdTaken {
                        content_id: reg.content_id.clone(),
                    }));
                }
                for parent in &reg.metadata.derived_from {
                    if !content_exists(conn, parent).await? {
                        return Ok(Some(Rejection::UnknownDerivedFrom {
                            content_id: parent.clone(),
                        }));
                    }
                }
                Ok(None)
            }
        }
    }

    async fn append_leaf(
        &mut self,
        leaf: &str,
        entry: &LedgerEntry,
        prints: Option<(&str, &Prints)>,
    ) -> Result<ApplyOutcome> {
        let index = self.tree_size;
        let conn: &mut AnyConnection = &mut self.tx;
        let entry_type = match &entry.body {
            EntryBody::ContentRegistered(_) => "content.registered",
        };
        sqlx::query("insert into ledger_entry (idx, leaf, entry_type) values ($1, $2, $3)")
            .bind(to_i64(index)?)
            .bind(leaf)
            .bind(entry_type)
            .execute(&mut *conn)
            .await?;

        let new_hashes = with_hashes(conn, |reader| {
            tlog_tiles::stored_hashes(index, leaf.as_bytes(), reader)
        })
        .await?;
        let first_id = tlog_tiles::stored_hash_count(index);
        for (offset, hash) in (0u64..).zip(&new_hashes) {
            sqlx::query("insert into merkle_hash (id, hash) values ($1, $2)")
                .bind(to_i64(first_id + offset)?)
                .bind(hex::encode(hash.0))
                .execute(&mut *conn)
                .await?;
        }

        match &entry.body {
            EntryBody::ContentRegistered(reg) => {
                sqlx::query(
                    "insert into content (content_id, sha256, ledger_idx) values ($1, $2, $3)",
                )
                .bind(&reg.content_id)
                .bind(&reg.sha256)
                .bind(to_i64(index)?)
                .execute(&mut *conn)
                .await?;
                let codes = codes_of(&reg.iscc)?;
                similarity::index(conn, &reg.content_id, index, &codes, prints).await?;
            }
        }

        self.tree_size = index + 1;
        Ok(ApplyOutcome::Appended {
            index,
            tree_size: self.tree_size,
        })
    }

    /// Records the Raft marks for everything applied in this batch and
    /// commits. Entries and marks become durable together or not at all.
    pub async fn commit(mut self, marks: &RaftMarks) -> Result<()> {
        sqlx::query(
            "update sm_state set tree_size = $1, last_applied = $2, last_membership = $3 where id = 1",
        )
        .bind(to_i64(self.tree_size)?)
        .bind(marks.last_applied.as_deref())
        .bind(marks.last_membership.as_deref())
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Deletes every ledger row, for a snapshot install that rebuilds them.
    pub(super) async fn clear(&mut self) -> Result<()> {
        for table in [
            "audio_item",
            "code_band",
            "content_print",
            "content",
            "merkle_hash",
            "ledger_entry",
        ] {
            sqlx::query(&format!("delete from {table}"))
                .execute(&mut *self.tx)
                .await?;
        }
        self.tree_size = 0;
        Ok(())
    }
}

/// Checks the prints sent with an entry against its commitment and decodes
/// them. Deterministic, so every replica rejects the same entries.
fn check_prints(entry: &LedgerEntry, prints: Option<&str>) -> Result<Option<Prints>, Rejection> {
    let EntryBody::ContentRegistered(reg) = &entry.body;
    let mismatch = || Rejection::PrintsMismatch {
        content_id: reg.content_id.clone(),
    };
    match (&reg.prints_sha256, prints) {
        (None, None) => Ok(None),
        (Some(digest), Some(json)) if *digest == Prints::digest(json) => {
            let prints: Prints = serde_json::from_str(json).map_err(|_| mismatch())?;
            crop_codes(&prints.image_crops).map_err(|e| Rejection::InvalidFingerprint {
                content_id: reg.content_id.clone(),
                detail: e.to_string(),
            })?;
            Ok(Some(prints))
        }
        _ => Err(mismatch()),
    }
}

pub(super) async fn read_tree_size(conn: &mut AnyConnection) -> Result<u64> {
    let row = sqlx::query("select tree_size from sm_state where id = 1")
        .fetch_one(&mut *conn)
        .await?;
    from_i64(row.try_get(0)?)
}

async fn content_id_by_sha256(conn: &mut AnyConnection, sha256: &str) -> Result<Option<String>> {
    let row = sqlx::query("select content_id from content where sha256 = $1")
        .bind(sha256)
        .fetch_optional(&mut *conn)
        .await?;
    row.map(|r| r.try_get(0).map_err(RegistryError::from))
        .transpose()
}

async fn content_exists(conn: &mut AnyConnection, content_id: &str) -> Result<bool> {
    let row = sqlx::query("select content_id from content where content_id = $1")
        .bind(content_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}
