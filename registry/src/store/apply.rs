//! The write path: one transaction per batch of committed Raft entries.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::cluster;
use super::similarity::{self, claimed_codes, codes_of, crop_codes};
use super::{Param, RaftMarks, from_i64, insert_rows, to_i64, with_hashes};
use crate::entry::{ApplyOutcome, EntryBody, LedgerEntry, Prints, Rejection};
use crate::{RegistryError, Result};

/// A batch being applied. Entries appended through it become visible, with
/// the Raft marks, when [`ApplyTx::commit`] returns; dropping it rolls back.
pub struct ApplyTx {
    tx: Transaction<'static, Any>,
    tree_size: u64,
    /// The timestamp of the last leaf, which no later leaf may precede.
    latest: Option<(OffsetDateTime, String)>,
}

impl std::fmt::Debug for ApplyTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyTx")
            .field("tree_size", &self.tree_size)
            .finish_non_exhaustive()
    }
}

/// A leaf holding this text panics once applied (tests of the panic path).
#[cfg(test)]
pub(crate) const PANIC_AFTER_APPEND: &str = "panic after append";

impl ApplyTx {
    pub(super) async fn begin(pool: &AnyPool) -> Result<Self> {
        let mut tx = pool.begin().await?;
        let tree_size = read_tree_size(&mut tx).await?;
        let latest = match tree_size.checked_sub(1) {
            Some(last) => latest_timestamp(&mut tx, last).await?,
            None => None,
        };
        Ok(Self {
            tx,
            tree_size,
            latest,
        })
    }

    /// Applies one entry built by its proposer: encodes it and applies the
    /// resulting leaf with [`ApplyTx::apply_leaf`].
    pub async fn apply(
        &mut self,
        entry: &LedgerEntry,
        prints: Option<&str>,
    ) -> Result<ApplyOutcome> {
        self.apply_leaf(&entry.to_leaf()?, prints).await
    }

    /// Applies one proposed leaf, exactly these bytes; see
    /// [`ApplyTx::apply_leaves`].
    pub async fn apply_leaf(&mut self, leaf: &str, prints: Option<&str>) -> Result<ApplyOutcome> {
        let mut outcomes = self.apply_leaves(&[(leaf, prints)]).await?;
        outcomes
            .pop()
            .ok_or_else(|| RegistryError::Corrupt("one leaf was applied as none".into()))
    }

    /// Applies the leaves of one command in order, exactly these bytes,
    /// each accepted or rejected on its own. Business rules (no duplicate
    /// bytes, references must exist, time never goes backwards) are checked
    /// here, against the data as of this point in the log, so every replica
    /// reaches the same outcomes.
    ///
    /// A leaf's `prints` is the JSON of the [`Prints`] proposed with it, if
    /// any; it must be exactly what the entry's `prints_sha256` commits to.
    ///
    /// An `Err` is a storage failure or an entry this build cannot judge
    /// ([`RegistryError::UnsupportedEntry`]); the batch must not commit. A
    /// panic while applying a leaf is caught and becomes
    /// [`Rejection::ApplyFailed`], which every replica reaches alike instead
    /// of replaying a fatal error forever: the command's writes are rolled
    /// back and its other leaves applied again without it.
    pub async fn apply_leaves(
        &mut self,
        leaves: &[(&str, Option<&str>)],
    ) -> Result<Vec<ApplyOutcome>> {
        // One savepoint per command rather than per leaf: a panic is rare,
        // and a round trip to the database per leaf is not.
        sqlx::query("savepoint apply_command")
            .execute(&mut *self.tx)
            .await?;
        let (size, latest) = (self.tree_size, self.latest.clone());
        let mut failed: BTreeMap<usize, String> = BTreeMap::new();
        'apply: loop {
            let mut outcomes = Vec::with_capacity(leaves.len());
            for (i, &(leaf, prints)) in leaves.iter().enumerate() {
                if let Some(detail) = failed.get(&i) {
                    outcomes.push(ApplyOutcome::Rejected(Rejection::ApplyFailed {
                        detail: detail.clone(),
                    }));
                    continue;
                }
                let entry = match LedgerEntry::decode_proposed(leaf)? {
                    Ok(entry) => entry,
                    Err(rejection) => {
                        outcomes.push(ApplyOutcome::Rejected(rejection));
                        continue;
                    }
                };
                let applied = AssertUnwindSafe(self.apply_decoded(leaf, &entry, prints))
                    .catch_unwind()
                    .await;
                match applied {
                    Ok(Ok(outcome)) => outcomes.push(outcome),
                    Ok(Err(e)) => return Err(e),
                    Err(panic) => {
                        let detail = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "panic".to_owned());
                        tracing::error!(%detail, leaf = i, "Applying an entry panicked; it is rejected.");
                        failed.insert(i, detail);
                        sqlx::query("rollback to savepoint apply_command")
                            .execute(&mut *self.tx)
                            .await?;
                        self.tree_size = size;
                        self.latest = latest.clone();
                        continue 'apply;
                    }
                }
            }
            sqlx::query("release savepoint apply_command")
                .execute(&mut *self.tx)
                .await?;
            return Ok(outcomes);
        }
    }

    async fn apply_decoded(
        &mut self,
        leaf: &str,
        entry: &LedgerEntry,
        prints: Option<&str>,
    ) -> Result<ApplyOutcome> {
        let at = match self.check_time(entry) {
            Ok(at) => at,
            Err(rejection) => return Ok(ApplyOutcome::Rejected(rejection)),
        };
        let parsed = match check_prints(entry, prints) {
            Ok(parsed) => parsed,
            Err(rejection) => return Ok(ApplyOutcome::Rejected(rejection)),
        };
        if let Some(rejection) = self.check(entry).await? {
            return Ok(ApplyOutcome::Rejected(rejection));
        }
        let outcome = self
            .append_leaf(leaf, entry, prints.zip(parsed.as_ref()))
            .await?;
        // After the rows are written, so the test sees them undone.
        #[cfg(test)]
        if leaf.contains(PANIC_AFTER_APPEND) {
            panic!("a test asked this leaf to panic");
        }
        self.latest = Some((at, entry.timestamp().to_owned()));
        Ok(outcome)
    }

    /// The entry's timestamp, if it is well formed and not earlier than the
    /// last leaf's.
    fn check_time(&self, entry: &LedgerEntry) -> Result<OffsetDateTime, Rejection> {
        let text = entry.timestamp();
        let at = parse_timestamp(text).ok_or_else(|| Rejection::MalformedEntry {
            detail: format!("timestamp {text:?} is not RFC 3339 in UTC"),
        })?;
        match &self.latest {
            Some((latest, latest_text)) if at < *latest => Err(Rejection::TimestampRegressed {
                at: text.to_owned(),
                latest: latest_text.clone(),
            }),
            _ => Ok(at),
        }
    }

    /// The timestamp of the last applied leaf, for proposers that must not
    /// stamp an entry earlier than it.
    pub fn latest_timestamp(&self) -> Option<&str> {
        self.latest.as_ref().map(|(_, text)| text.as_str())
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
            .await?;
        self.latest =
            parse_timestamp(entry.timestamp()).map(|at| (at, entry.timestamp().to_owned()));
        Ok(())
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
                let existing = Existing::find(conn, &reg.sha256, &reg.content_id).await?;
                if let Some(content_id) = existing.registered {
                    return Ok(Some(Rejection::DuplicateContent { content_id }));
                }
                if existing.id_taken {
                    return Ok(Some(Rejection::ContentIdTaken {
                        content_id: reg.content_id.clone(),
                    }));
                }
                match (&reg.claim, existing.claimed) {
                    (None, None) => {}
                    (Some(named), Some(found)) if *named == found => {}
                    (None, Some(claim_id)) => {
                        return Ok(Some(Rejection::ClaimNotReferenced { claim_id }));
                    }
                    (Some(named), _) => {
                        return Ok(Some(Rejection::UnknownClaim {
                            content_id: named.clone(),
                        }));
                    }
                }
                check_parents(conn, &reg.metadata.derived_from).await
            }
            EntryBody::ContentClaimed(claim) => {
                if claim.sha256.len() != 64
                    || !claim
                        .sha256
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Ok(Some(Rejection::MalformedEntry {
                        detail: "sha256 must be 64 lowercase hexadecimal digits".into(),
                    }));
                }
                if let Err(e) = claimed_codes(&claim.iscc) {
                    return Ok(Some(Rejection::InvalidFingerprint {
                        content_id: claim.content_id.clone(),
                        detail: e.to_string(),
                    }));
                }
                let existing = Existing::find(conn, &claim.sha256, &claim.content_id).await?;
                if let Some(content_id) = existing.registered.or(existing.claimed) {
                    return Ok(Some(Rejection::DuplicateContent { content_id }));
                }
                if existing.id_taken {
                    return Ok(Some(Rejection::ContentIdTaken {
                        content_id: claim.content_id.clone(),
                    }));
                }
                check_parents(conn, &claim.metadata.derived_from).await
            }
            _ => cluster::check(conn, self.tree_size, entry).await,
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
        let entry_type = entry.type_name();
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
        let hexes: Vec<String> = new_hashes.iter().map(|h| hex::encode(h.0)).collect();
        let mut params = Vec::with_capacity(2 * hexes.len());
        for (offset, hash) in (0u64..).zip(&hexes) {
            params.push(Param::Int(to_i64(first_id + offset)?));
            params.push(Param::Text(hash));
        }
        insert_rows(conn, "insert into merkle_hash (id, hash)", 2, &params).await?;

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
            EntryBody::ContentClaimed(claim) => {
                sqlx::query(
                    "insert into content_claim (content_id, sha256, ledger_idx) values ($1, $2, $3)",
                )
                .bind(&claim.content_id)
                .bind(&claim.sha256)
                .bind(to_i64(index)?)
                .execute(&mut *conn)
                .await?;
                let codes = claimed_codes(&claim.iscc)?;
                similarity::index(conn, &claim.content_id, index, &codes, None).await?;
            }
            _ => cluster::index(conn, index, entry).await?,
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
            "cluster_approval",
            "cluster_node",
            "content_claim",
            "cluster_info",
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
        self.latest = None;
        Ok(())
    }
}

/// Parses an entry timestamp: RFC 3339, in UTC.
pub(crate) fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .filter(|at| at.offset().is_utc())
}

async fn latest_timestamp(
    conn: &mut AnyConnection,
    index: u64,
) -> Result<Option<(OffsetDateTime, String)>> {
    let row = sqlx::query("select leaf from ledger_entry where idx = $1")
        .bind(to_i64(index)?)
        .fetch_one(&mut *conn)
        .await?;
    let entry = LedgerEntry::from_leaf(&row.try_get::<String, _>(0)?)?;
    let text = entry.timestamp().to_owned();
    // Leaves applied before timestamps were checked may not parse; they
    // then set no lower bound.
    Ok(parse_timestamp(&text).map(|at| (at, text)))
}

/// Checks the prints sent with an entry against its commitment and decodes
/// them. Deterministic, so every replica rejects the same entries.
fn check_prints(entry: &LedgerEntry, prints: Option<&str>) -> Result<Option<Prints>, Rejection> {
    let EntryBody::ContentRegistered(reg) = &entry.body else {
        return match prints {
            None => Ok(None),
            Some(_) => Err(Rejection::MalformedEntry {
                detail: format!("a {} entry carries no prints", entry.type_name()),
            }),
        };
    };
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

/// Whether `content_id` names a registration or a claim: ids are unique
/// across both.
async fn content_exists(conn: &mut AnyConnection, content_id: &str) -> Result<bool> {
    let row = sqlx::query(
        "select content_id from content where content_id = $1 union all select content_id from content_claim where content_id = $1",
    )
    .bind(content_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// What the ledger already holds under a new registration's or claim's
/// bytes and id, found in one query.
#[derive(Debug, Default)]
struct Existing {
    /// The registration of the same bytes.
    registered: Option<String>,
    /// The claim of the same bytes.
    claimed: Option<String>,
    /// Whether the content id names a registration or a claim already.
    id_taken: bool,
}

impl Existing {
    async fn find(conn: &mut AnyConnection, sha256: &str, content_id: &str) -> Result<Self> {
        let rows = sqlx::query(
            "select 'registered' as what, content_id from content where sha256 = $1 \
             union all select 'claimed', content_id from content_claim where sha256 = $1 \
             union all select 'id', content_id from content where content_id = $2 \
             union all select 'id', content_id from content_claim where content_id = $2",
        )
        .bind(sha256)
        .bind(content_id)
        .fetch_all(&mut *conn)
        .await?;
        let mut existing = Self::default();
        for row in rows {
            let what: String = row.try_get(0)?;
            let id: String = row.try_get(1)?;
            match what.as_str() {
                "registered" => existing.registered = Some(id),
                "claimed" => existing.claimed = Some(id),
                _ => existing.id_taken = true,
            }
        }
        Ok(existing)
    }
}

async fn check_parents(conn: &mut AnyConnection, parents: &[String]) -> Result<Option<Rejection>> {
    for parent in parents {
        if !content_exists(conn, parent).await? {
            return Ok(Some(Rejection::UnknownDerivedFrom {
                content_id: parent.clone(),
            }));
        }
    }
    Ok(None)
}
