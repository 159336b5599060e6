//! The write path: one transaction per batch of committed Raft entries.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use sqlx::AnyConnection;
use sqlx::{Any, AnyPool, Row, Transaction};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::similarity::{self, claimed_codes, codes_of, crop_codes};
use super::{cluster, licence, party, rights};
use tlog_tiles::HashReader;

use super::similarity::IndexRows;
use super::{Param, RaftMarks, fetch_hashes, from_i64, insert_rows, to_i64};
use crate::entry::{ApplyOutcome, EntryBody, LedgerEntry, Prints, Rejection, is_lower_hex_sha256};
use crate::merkle::Hash;
use crate::{RegistryError, Result};

/// A batch being applied. Entries appended through it become visible, with
/// the Raft marks, when [`ApplyTx::commit`] returns; dropping it rolls back.
pub struct ApplyTx {
    tx: Transaction<'static, Any>,
    tree_size: u64,
    /// The timestamp of the last leaf, which no later leaf may precede.
    latest: Option<(OffsetDateTime, String)>,
    /// Rows of applied entries not yet written.
    pending: Pending,
    /// Merkle hashes stored or read in this transaction: appending a leaf
    /// needs the hashes of the tree's right edge, mostly recent ones.
    hashes: HashMap<u64, Hash>,
    /// What the database held, when the command began, under the bytes and
    /// ids of the command's content leaves.
    known: Known,
}

/// Rows of applied entries waiting to be written: the rows of a whole
/// command go to the database in a few multi-row statements instead of
/// several statements per entry. Checks of later entries see them through
/// the maps; anything else that reads the database first writes them.
#[derive(Debug, Default)]
struct Pending {
    ledger: Vec<(i64, String, &'static str)>,
    hashes: Vec<(i64, String)>,
    content: Vec<(String, String, i64)>,
    claims: Vec<(String, String, i64)>,
    /// First holders: content id, party id, share, leaf index, instant.
    holdings: Vec<(String, String, i64, i64, i64)>,
    /// Derivations: parent id, child id, the child's leaf index.
    derivations: Vec<(String, String, i64)>,
    index: IndexRows,
    /// SHA-256 to content id of the registrations and claims waiting.
    registered: HashMap<String, String>,
    claimed: HashMap<String, String>,
    /// Content ids of both.
    ids: HashSet<String>,
}

/// Rows waiting beyond which they are written even mid-command, which
/// bounds the memory a snapshot install takes.
const MAX_PENDING: usize = 1000;

impl std::fmt::Debug for ApplyTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplyTx")
            .field("tree_size", &self.tree_size)
            .finish_non_exhaustive()
    }
}

/// What travels beside a leaf in the Raft command, kept by every replica but
/// not part of the leaf.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Beside<'a> {
    /// The JSON of the [`Prints`] a registration's `prints_sha256` commits
    /// to.
    pub prints: Option<&'a str>,
    /// The SHA-256 (lowercase hex) of a registered party's bearer token: the
    /// token then works on every node, yet appears in no public leaf.
    pub token_sha256: Option<&'a str>,
}

impl<'a> Beside<'a> {
    /// Prints alone.
    pub fn prints(prints: Option<&'a str>) -> Self {
        Self {
            prints,
            token_sha256: None,
        }
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
            pending: Pending::default(),
            hashes: HashMap::new(),
            known: Known::default(),
        })
    }

    /// Writes the rows waiting, in an order that satisfies the foreign keys.
    async fn flush(&mut self) -> Result<()> {
        let conn: &mut AnyConnection = &mut self.tx;
        let pending = std::mem::take(&mut self.pending);
        let mut params = Vec::with_capacity(3 * pending.ledger.len());
        for (idx, leaf, entry_type) in &pending.ledger {
            params.extend([Param::Int(*idx), Param::Text(leaf), Param::Text(entry_type)]);
        }
        insert_rows(
            conn,
            "insert into ledger_entry (idx, leaf, entry_type)",
            3,
            &params,
        )
        .await?;
        let mut params = Vec::with_capacity(2 * pending.hashes.len());
        for (id, hash) in &pending.hashes {
            params.extend([Param::Int(*id), Param::Text(hash)]);
        }
        insert_rows(conn, "insert into merkle_hash (id, hash)", 2, &params).await?;
        for (table, rows) in [
            ("content", &pending.content),
            ("content_claim", &pending.claims),
        ] {
            let mut params = Vec::with_capacity(3 * rows.len());
            for (content_id, sha256, idx) in rows {
                params.extend([
                    Param::Text(content_id),
                    Param::Text(sha256),
                    Param::Int(*idx),
                ]);
            }
            insert_rows(
                conn,
                &format!("insert into {table} (content_id, sha256, ledger_idx)"),
                3,
                &params,
            )
            .await?;
        }
        let mut params = Vec::with_capacity(5 * pending.holdings.len());
        for (content_id, party_id, share_bp, idx, us) in &pending.holdings {
            params.extend([
                Param::Text(content_id),
                Param::Text(party_id),
                Param::Int(*share_bp),
                Param::Int(*idx),
                Param::Int(*us),
            ]);
        }
        insert_rows(
            conn,
            "insert into holding (content_id, party_id, share_bp, since_idx, since_us)",
            5,
            &params,
        )
        .await?;
        let mut params = Vec::with_capacity(3 * pending.derivations.len());
        for (parent, child, idx) in &pending.derivations {
            params.extend([Param::Text(parent), Param::Text(child), Param::Int(*idx)]);
        }
        insert_rows(
            conn,
            "insert into derivation (parent_id, child_id, ledger_idx)",
            3,
            &params,
        )
        .await?;
        let mut index = pending.index;
        index.flush(conn).await?;
        Ok(())
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
        let mut outcomes = self.apply_leaves(&[(leaf, Beside::prints(prints))]).await?;
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
    /// Its `token_sha256` comes with a `party.registered` entry and with no
    /// other.
    ///
    /// An `Err` is a storage failure or an entry this build cannot judge
    /// ([`RegistryError::UnsupportedEntry`]); the batch must not commit. A
    /// panic while applying a leaf is caught and becomes
    /// [`Rejection::ApplyFailed`], which every replica reaches alike instead
    /// of replaying a fatal error forever: the command's writes are rolled
    /// back and its other leaves applied again without it.
    pub async fn apply_leaves(
        &mut self,
        leaves: &[(&str, Beside<'_>)],
    ) -> Result<Vec<ApplyOutcome>> {
        // One savepoint per command rather than per leaf: a panic is rare,
        // and a round trip to the database per leaf is not.
        sqlx::query("savepoint apply_command")
            .execute(&mut *self.tx)
            .await?;
        self.flush().await?;
        let entries = leaves
            .iter()
            .map(|(leaf, _)| LedgerEntry::decode_proposed(leaf))
            .collect::<Result<Vec<_>>>()?;
        self.known = Known::fetch(&mut self.tx, entries.iter().flatten()).await?;
        let (size, latest) = (self.tree_size, self.latest.clone());
        let mut failed: BTreeMap<usize, String> = BTreeMap::new();
        'apply: loop {
            let mut outcomes = Vec::with_capacity(leaves.len());
            for (i, (&(leaf, beside), entry)) in leaves.iter().zip(&entries).enumerate() {
                if let Some(detail) = failed.get(&i) {
                    outcomes.push(ApplyOutcome::Rejected(Rejection::ApplyFailed {
                        detail: detail.clone(),
                    }));
                    continue;
                }
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(rejection) => {
                        outcomes.push(ApplyOutcome::Rejected(rejection.clone()));
                        continue;
                    }
                };
                let applied = AssertUnwindSafe(self.apply_decoded(leaf, entry, beside))
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
                        self.pending = Pending::default();
                        self.hashes.clear();
                        continue 'apply;
                    }
                }
            }
            // Inside the savepoint, so a failure here undoes the command.
            self.flush().await?;
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
        beside: Beside<'_>,
    ) -> Result<ApplyOutcome> {
        let at = match self.check_time(entry) {
            Ok(at) => at,
            Err(rejection) => return Ok(ApplyOutcome::Rejected(rejection)),
        };
        let parsed = match check_beside(entry, beside) {
            Ok(parsed) => parsed,
            Err(rejection) => return Ok(ApplyOutcome::Rejected(rejection)),
        };
        if let Some(rejection) = self.check(entry).await? {
            return Ok(ApplyOutcome::Rejected(rejection));
        }
        let outcome = self
            .append_leaf(leaf, entry, beside, parsed.as_ref())
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
        beside: Beside<'_>,
    ) -> Result<()> {
        let entry = LedgerEntry::from_leaf(leaf)?;
        let parsed = check_beside(&entry, beside)
            .map_err(|r| RegistryError::Corrupt(format!("snapshot leaf: {r}")))?;
        self.append_leaf(leaf, &entry, beside, parsed.as_ref())
            .await?;
        self.latest =
            parse_timestamp(entry.timestamp()).map(|at| (at, entry.timestamp().to_owned()));
        Ok(())
    }

    async fn check(&mut self, entry: &LedgerEntry) -> Result<Option<Rejection>> {
        if !matches!(
            entry.body,
            EntryBody::ContentRegistered(_) | EntryBody::ContentClaimed(_)
        ) {
            // Cluster and party checks read the database, so it must be
            // whole.
            self.flush().await?;
        }
        let conn: &mut AnyConnection = &mut self.tx;
        let pending = &self.pending;
        match &entry.body {
            EntryBody::ContentRegistered(reg) => {
                if let Err(e) = codes_of(&reg.iscc) {
                    return Ok(Some(Rejection::InvalidFingerprint {
                        content_id: reg.content_id.clone(),
                        detail: e.to_string(),
                    }));
                }
                let existing = self.known.of(pending, &reg.sha256, &reg.content_id);
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
                if let Some(rejection) = check_holders(conn, &reg.metadata.holders).await? {
                    return Ok(Some(rejection));
                }
                check_parents(conn, pending, &reg.metadata.derived_from).await
            }
            EntryBody::ContentClaimed(claim) => {
                if !is_lower_hex_sha256(&claim.sha256) {
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
                let existing = self.known.of(pending, &claim.sha256, &claim.content_id);
                if let Some(content_id) = existing.registered.or(existing.claimed) {
                    return Ok(Some(Rejection::DuplicateContent { content_id }));
                }
                if existing.id_taken {
                    return Ok(Some(Rejection::ContentIdTaken {
                        content_id: claim.content_id.clone(),
                    }));
                }
                if let Some(rejection) = check_holders(conn, &claim.metadata.holders).await? {
                    return Ok(Some(rejection));
                }
                check_parents(conn, pending, &claim.metadata.derived_from).await
            }
            EntryBody::PartyRegistered(registered) => party::check(conn, registered).await,
            EntryBody::PartyKeyRotated(rotated) => {
                let Some(at) = parse_timestamp(&rotated.rotated_at) else {
                    return Ok(Some(Rejection::MalformedEntry {
                        detail: "rotated_at is not RFC 3339 in UTC".into(),
                    }));
                };
                party::check_rotation(conn, rotated, at).await
            }
            EntryBody::ContentTransferred(transferred) => {
                let Some(at) = parse_timestamp(&transferred.transferred_at) else {
                    return Ok(Some(Rejection::MalformedEntry {
                        detail: "transferred_at is not RFC 3339 in UTC".into(),
                    }));
                };
                rights::check_transfer(conn, transferred, at).await
            }
            EntryBody::LicenceGranted(granted) | EntryBody::LicenceSublicensed(granted) => {
                let sublicence = matches!(entry.body, EntryBody::LicenceSublicensed(_));
                match parse_timestamp(&granted.granted_at) {
                    Some(at) => licence::check_grant(conn, granted, sublicence, at).await,
                    None => Ok(Some(untimed("granted_at"))),
                }
            }
            EntryBody::LicenceTransferred(transferred) => {
                match parse_timestamp(&transferred.transferred_at) {
                    Some(at) => licence::check_transfer(conn, transferred, at).await,
                    None => Ok(Some(untimed("transferred_at"))),
                }
            }
            EntryBody::LicenceRevoked(revoked) => match parse_timestamp(&revoked.revoked_at) {
                Some(at) => licence::check_revoke(conn, revoked, at).await,
                None => Ok(Some(untimed("revoked_at"))),
            },
            _ => cluster::check(conn, self.tree_size, entry).await,
        }
    }

    async fn append_leaf(
        &mut self,
        leaf: &str,
        entry: &LedgerEntry,
        beside: Beside<'_>,
        parsed: Option<&Prints>,
    ) -> Result<ApplyOutcome> {
        let prints = beside.prints.zip(parsed);
        let index = self.tree_size;
        let idx = to_i64(index)?;
        let new_hashes = self
            .with_cached_hashes(|reader| tlog_tiles::stored_hashes(index, leaf.as_bytes(), reader))
            .await?;
        let first_id = tlog_tiles::stored_hash_count(index);
        for (offset, hash) in (0u64..).zip(&new_hashes) {
            let id = first_id + offset;
            self.hashes.insert(id, *hash);
            self.pending.hashes.push((to_i64(id)?, hex::encode(hash.0)));
        }
        self.pending
            .ledger
            .push((idx, leaf.to_owned(), entry.type_name()));

        match &entry.body {
            EntryBody::ContentRegistered(reg) => {
                let pending = &mut self.pending;
                pending
                    .content
                    .push((reg.content_id.clone(), reg.sha256.clone(), idx));
                pending
                    .registered
                    .insert(reg.sha256.clone(), reg.content_id.clone());
                pending.ids.insert(reg.content_id.clone());
                first_holders(pending, &reg.content_id, &reg.metadata.holders, idx, entry)?;
                derived(pending, &reg.content_id, &reg.metadata.derived_from, idx);
                let codes = codes_of(&reg.iscc)?;
                similarity::index(&mut pending.index, &reg.content_id, index, &codes, prints)?;
            }
            EntryBody::ContentClaimed(claim) => {
                let pending = &mut self.pending;
                pending
                    .claims
                    .push((claim.content_id.clone(), claim.sha256.clone(), idx));
                pending
                    .claimed
                    .insert(claim.sha256.clone(), claim.content_id.clone());
                pending.ids.insert(claim.content_id.clone());
                first_holders(
                    pending,
                    &claim.content_id,
                    &claim.metadata.holders,
                    idx,
                    entry,
                )?;
                let codes = claimed_codes(&claim.iscc)?;
                similarity::index(&mut pending.index, &claim.content_id, index, &codes, None)?;
            }
            EntryBody::PartyRegistered(registered) => {
                self.flush().await?;
                party::index(&mut self.tx, index, registered, beside.token_sha256).await?;
            }
            EntryBody::PartyKeyRotated(rotated) => {
                self.flush().await?;
                party::index_rotation(&mut self.tx, index, rotated).await?;
            }
            EntryBody::ContentTransferred(transferred) => {
                self.flush().await?;
                rights::index_transfer(&mut self.tx, index, transferred).await?;
            }
            EntryBody::LicenceGranted(granted) | EntryBody::LicenceSublicensed(granted) => {
                self.flush().await?;
                licence::index_grant(&mut self.tx, index, granted).await?;
            }
            EntryBody::LicenceTransferred(transferred) => {
                self.flush().await?;
                licence::index_transfer(&mut self.tx, index, transferred).await?;
            }
            EntryBody::LicenceRevoked(revoked) => {
                self.flush().await?;
                licence::index_revoke(&mut self.tx, index, revoked).await?;
            }
            _ => {
                self.flush().await?;
                cluster::index(&mut self.tx, index, entry).await?;
            }
        }
        if self.pending.ledger.len() >= MAX_PENDING {
            self.flush().await?;
        }

        self.tree_size = index + 1;
        Ok(ApplyOutcome::Appended {
            index,
            tree_size: self.tree_size,
        })
    }

    /// Runs a `tlog_tiles` computation over the hashes this transaction
    /// knows, reading the others from the database once.
    async fn with_cached_hashes<T>(
        &mut self,
        compute: impl Fn(&CachedReader<'_>) -> Result<T, tlog_tiles::Error>,
    ) -> Result<T> {
        for _pass in 0..3 {
            let missing = {
                let reader = CachedReader {
                    known: &self.hashes,
                    missing: RefCell::new(Vec::new()),
                };
                match compute(&reader) {
                    Ok(value) => return Ok(value),
                    Err(tlog_tiles::Error::IndexesNotInTree) => reader.missing.into_inner(),
                    Err(e) => {
                        return Err(RegistryError::Corrupt(format!("merkle computation: {e}")));
                    }
                }
            };
            if missing.is_empty() {
                break;
            }
            // Hashes this transaction wrote are all known, so whatever is
            // missing was committed before it.
            for (id, hash) in fetch_hashes(&mut self.tx, &missing).await? {
                self.hashes.insert(id, hash);
            }
        }
        Err(RegistryError::Corrupt(
            "merkle hashes the tree needs are missing from the store".into(),
        ))
    }

    /// Records the Raft marks for everything applied in this batch and
    /// commits. Entries and marks become durable together or not at all.
    pub async fn commit(mut self, marks: &RaftMarks) -> Result<()> {
        self.flush().await?;
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
            "derivation",
            "licensee",
            "licence",
            "holding",
            "intent_applied",
            "party_key",
            "party_token",
            "party",
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
        self.pending = Pending::default();
        self.hashes.clear();
        Ok(())
    }
}

/// A [`HashReader`] over the hashes a transaction knows; a computation that
/// asks for others fails and names them.
struct CachedReader<'a> {
    known: &'a HashMap<u64, Hash>,
    missing: RefCell<Vec<u64>>,
}

impl HashReader for CachedReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog_tiles::Error> {
        let found: Option<Vec<Hash>> = indexes.iter().map(|i| self.known.get(i).copied()).collect();
        found.ok_or_else(|| {
            self.missing.borrow_mut().extend(
                indexes
                    .iter()
                    .filter(|i| !self.known.contains_key(i))
                    .copied(),
            );
            tlog_tiles::Error::IndexesNotInTree
        })
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

/// The rejection of an entry whose timestamp member does not parse.
fn untimed(member: &str) -> Rejection {
    Rejection::MalformedEntry {
        detail: format!("{member} is not RFC 3339 in UTC"),
    }
}

/// Queues the derivations a registration or claim at leaf `idx` names.
fn derived(pending: &mut Pending, content_id: &str, parents: &[String], idx: i64) {
    for parent in parents {
        pending
            .derivations
            .push((parent.clone(), content_id.to_owned(), idx));
    }
}

/// Queues the first holders of a registration or claim at leaf `idx`.
fn first_holders(
    pending: &mut Pending,
    content_id: &str,
    holders: &[crate::Holder],
    idx: i64,
    entry: &LedgerEntry,
) -> Result<()> {
    if holders.is_empty() {
        return Ok(());
    }
    let us = rights::entry_micros(entry.timestamp())?;
    for holder in holders {
        pending.holdings.push((
            content_id.to_owned(),
            holder.party_id.clone(),
            i64::from(holder.share_bp),
            idx,
            us,
        ));
    }
    Ok(())
}

/// Refuses first holders out of their stored form, or naming a party that
/// is not registered. Parties are written as soon as they are applied, never
/// left waiting, so the database is whole for this read.
async fn check_holders(
    conn: &mut AnyConnection,
    holders: &[crate::Holder],
) -> Result<Option<Rejection>> {
    if holders.is_empty() {
        return Ok(None);
    }
    if let Err(detail) = crate::metadata::check_holders(holders) {
        return Ok(Some(Rejection::MalformedEntry {
            detail: format!("metadata.holders: {detail}"),
        }));
    }
    for holder in holders {
        if !party::exists(conn, &holder.party_id).await? {
            return Ok(Some(Rejection::UnknownParty {
                party_id: holder.party_id.clone(),
            }));
        }
    }
    Ok(None)
}

/// Checks what came beside an entry: the prints against the registration's
/// commitment (decoded), and a token digest with a party and nothing else.
fn check_beside(entry: &LedgerEntry, beside: Beside<'_>) -> Result<Option<Prints>, Rejection> {
    match (&entry.body, beside.token_sha256) {
        (EntryBody::PartyRegistered(_), Some(digest)) if is_lower_hex_sha256(digest) => {}
        (EntryBody::PartyRegistered(_), _) => {
            return Err(Rejection::MalformedEntry {
                detail: "a party.registered entry carries the SHA-256 of the party's token, 64 lowercase hexadecimal digits".into(),
            });
        }
        (_, Some(_)) => {
            return Err(Rejection::MalformedEntry {
                detail: format!("a {} entry carries no token", entry.type_name()),
            });
        }
        (_, None) => {}
    }
    check_prints(entry, beside.prints)
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
pub(super) async fn content_exists(conn: &mut AnyConnection, content_id: &str) -> Result<bool> {
    let row = sqlx::query(
        "select content_id from content where content_id = $1 union all select content_id from content_claim where content_id = $1",
    )
    .bind(content_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.is_some())
}

/// What the ledger already holds under a new registration's or claim's
/// bytes and id.
#[derive(Debug, Default)]
struct Existing {
    /// The registration of the same bytes.
    registered: Option<String>,
    /// The claim of the same bytes.
    claimed: Option<String>,
    /// Whether the content id names a registration or a claim already.
    id_taken: bool,
}

/// Registrations and claims in the database under the bytes and ids of a
/// command's content leaves, read in one query per few hundred leaves
/// rather than one per leaf.
#[derive(Debug, Default)]
struct Known {
    registered: HashMap<String, String>,
    claimed: HashMap<String, String>,
    ids: HashSet<String>,
}

impl Known {
    async fn fetch<'a>(
        conn: &mut AnyConnection,
        entries: impl Iterator<Item = &'a LedgerEntry>,
    ) -> Result<Self> {
        let keys: Vec<(&str, &str)> = entries
            .filter_map(|entry| match &entry.body {
                EntryBody::ContentRegistered(reg) => {
                    Some((reg.sha256.as_str(), reg.content_id.as_str()))
                }
                EntryBody::ContentClaimed(claim) => {
                    Some((claim.sha256.as_str(), claim.content_id.as_str()))
                }
                _ => None,
            })
            .collect();
        let mut known = Self::default();
        let sqlite = super::is_sqlite(conn);
        for chunk in keys.chunks(500) {
            let hashes = || chunk.iter().map(|&(sha256, _)| Param::Text(sha256));
            let ids = || chunk.iter().map(|&(_, id)| Param::Text(id));
            let mut statement = super::Statement::new(sqlite);
            statement
                .sql("select 'registered' as what, sha256, content_id from content where sha256 in (")
                .list(hashes())
                .sql(") union all select 'claimed', sha256, content_id from content_claim where sha256 in (")
                .list(hashes())
                .sql(") union all select 'id', sha256, content_id from content where content_id in (")
                .list(ids())
                .sql(") union all select 'id', sha256, content_id from content_claim where content_id in (")
                .list(ids())
                .sql(")");
            let query = statement.query();
            for row in query.fetch_all(&mut *conn).await? {
                let what: String = row.try_get(0)?;
                let sha256: String = row.try_get(1)?;
                let content_id: String = row.try_get(2)?;
                match what.as_str() {
                    "registered" => {
                        known.registered.insert(sha256, content_id);
                    }
                    "claimed" => {
                        known.claimed.insert(sha256, content_id);
                    }
                    _ => {
                        known.ids.insert(content_id);
                    }
                }
            }
        }
        Ok(known)
    }

    /// What holds `sha256` and `content_id`, in the database or among the
    /// rows `pending` of this command.
    fn of(&self, pending: &Pending, sha256: &str, content_id: &str) -> Existing {
        Existing {
            registered: pending
                .registered
                .get(sha256)
                .or_else(|| self.registered.get(sha256))
                .cloned(),
            claimed: pending
                .claimed
                .get(sha256)
                .or_else(|| self.claimed.get(sha256))
                .cloned(),
            id_taken: pending.ids.contains(content_id) || self.ids.contains(content_id),
        }
    }
}

async fn check_parents(
    conn: &mut AnyConnection,
    pending: &Pending,
    parents: &[String],
) -> Result<Option<Rejection>> {
    let distinct: HashSet<&String> = parents.iter().collect();
    if distinct.len() != parents.len() {
        return Ok(Some(Rejection::MalformedEntry {
            detail: "metadata.derived_from names a registration twice".into(),
        }));
    }
    for parent in parents {
        if !pending.ids.contains(parent) && !content_exists(conn, parent).await? {
            return Ok(Some(Rejection::UnknownDerivedFrom {
                content_id: parent.clone(),
            }));
        }
    }
    Ok(None)
}
