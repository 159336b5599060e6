//! The licence aggregate: licences and sublicences of content, their
//! licensees over time, and revocations. Checked and indexed by the apply
//! transaction; read by the service to answer licence queries with the
//! events they rest on.

use std::collections::BTreeSet;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::apply::content_exists;
use super::rights::{current_holders, entry_micros, micros};
use super::{Registry, from_i64, party, signed, to_i64};
use crate::entry::Rejection;
use crate::intent::{IntentBody, is_valid_id};
use crate::rights::{
    Conflict, ExistingLicence, LicenceGranted, LicenceRevoked, LicenceTransferred, RightsReason,
    find_conflict,
};
use crate::scope::Scope;
use crate::{RegistryError, Result};

/// A licence as the registry knows it at one instant, with the ledger
/// indexes of the events that answer rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceRecord {
    /// Its id.
    pub licence_id: String,
    /// The content licensed.
    pub content_id: String,
    /// For a sublicence, the licence it is carved from.
    pub parent_licence_id: Option<String>,
    /// Who holds it at the instant.
    pub licensee: String,
    /// Where, how and when.
    pub scope: Scope,
    /// Whether no one else may be licensed within its scope.
    pub exclusive: bool,
    /// Whether its licensee may sublicense.
    pub sublicensable: bool,
    /// The fee reference the parties recorded, if any.
    pub fee_ref: Option<String>,
    /// The leaf that granted it.
    pub granted_index: u64,
    /// The revocation (of it or of a licence it descends from) that ended
    /// it by the instant, if any.
    pub revoked_index: Option<u64>,
    /// Its grant, the transfers of it and its revocation by the instant,
    /// and those of every licence it descends from, in ledger order.
    pub events: Vec<u64>,
}

impl LicenceRecord {
    /// Whether it is valid in `territory` for `medium` on `date`: not
    /// revoked, and each given dimension inside its scope.
    pub fn valid_for(
        &self,
        territory: Option<&str>,
        medium: Option<crate::Medium>,
        date: Option<time::Date>,
    ) -> bool {
        self.revoked_index.is_none()
            && territory.is_none_or(|t| self.scope.territories.covers(t))
            && medium.is_none_or(|m| self.scope.media.covers(m))
            && date.is_none_or(|d| self.scope.term.covers(d))
    }
}

/// Licences read at one state of the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licences {
    /// The licences, in the order they were granted.
    pub licences: Vec<LicenceRecord>,
    /// The size of the tree they were read at.
    pub tree_size: u64,
}

/// A licence row as stored, with its current state.
#[derive(Debug, Clone)]
struct Stored {
    licence_id: String,
    content_id: String,
    parent_id: Option<String>,
    scope: Scope,
    exclusive: bool,
    sublicensable: bool,
    fee_ref: Option<String>,
    granted_idx: u64,
    granted_us: i64,
    revoked: Option<(u64, i64)>,
}

const COLUMNS: &str = "licence_id, content_id, parent_id, scope, exclusive, sublicensable, \
                       fee_ref, granted_idx, granted_us, revoked_idx, revoked_us";

fn stored(row: &AnyRow) -> Result<Stored> {
    let scope: String = row.try_get(3)?;
    let scope = serde_json::from_str(&scope)
        .map_err(|e| RegistryError::Corrupt(format!("a stored licence scope: {e}")))?;
    let revoked_idx: Option<i64> = row.try_get(9)?;
    let revoked_us: Option<i64> = row.try_get(10)?;
    Ok(Stored {
        licence_id: row.try_get(0)?,
        content_id: row.try_get(1)?,
        parent_id: row.try_get(2)?,
        scope,
        exclusive: row.try_get::<i64, _>(4)? != 0,
        sublicensable: row.try_get::<i64, _>(5)? != 0,
        fee_ref: row.try_get(6)?,
        granted_idx: from_i64(row.try_get(7)?)?,
        granted_us: row.try_get(8)?,
        revoked: match revoked_idx.zip(revoked_us) {
            Some((idx, us)) => Some((from_i64(idx)?, us)),
            None => None,
        },
    })
}

async fn licence(conn: &mut AnyConnection, licence_id: &str) -> Result<Option<Stored>> {
    let row = sqlx::query(&format!(
        "select {COLUMNS} from licence where licence_id = $1"
    ))
    .bind(licence_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(stored).transpose()
}

async fn licences_of(conn: &mut AnyConnection, content_id: &str) -> Result<Vec<Stored>> {
    let rows = sqlx::query(&format!(
        "select {COLUMNS} from licence where content_id = $1 order by granted_idx"
    ))
    .bind(content_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(stored).collect()
}

async fn current_licensee(conn: &mut AnyConnection, licence_id: &str) -> Result<String> {
    let row =
        sqlx::query("select party_id from licensee where licence_id = $1 and until_idx is null")
            .bind(licence_id)
            .fetch_optional(&mut *conn)
            .await?;
    match row {
        Some(row) => Ok(row.try_get(0)?),
        None => Err(RegistryError::Corrupt(format!(
            "licence {licence_id} has no current licensee"
        ))),
    }
}

fn refused(reason: RightsReason, detail: impl Into<String>) -> Option<Rejection> {
    Some(signed::refused(reason.as_str(), detail))
}

/// Checks a `licence.granted` (`sublicence` false) or
/// `licence.sublicensed` entry stamped `at` against the state so far: its
/// intent must be of the matching type, for this log, unexpired, never
/// applied; the content, licensee and parent must exist; a grant needs
/// holders and is signed by exactly all of them, a sublicence by exactly
/// the parent's licensee, and only inside a live, sublicensable parent's
/// scope (exclusive only under an exclusive parent); and no licence of the
/// content may conflict with it.
pub(super) async fn check_grant(
    conn: &mut AnyConnection,
    granted: &LicenceGranted,
    sublicence: bool,
    at: OffsetDateTime,
) -> Result<Option<Rejection>> {
    let signed = match signed::recorded(conn, &granted.signed, &granted.intent_sha256).await? {
        Ok(signed) => signed,
        Err(rejection) => return Ok(Some(rejection)),
    };
    let (licensee, scope, exclusive) = match (&signed.intent().body, sublicence) {
        (IntentBody::LicenceGrant(grant), false)
            if grant.content_id == granted.content_id && granted.parent_licence_id.is_none() =>
        {
            (&grant.licensee, grant.scope(), grant.exclusive)
        }
        (IntentBody::LicenceSublicense(sub), true)
            if granted.parent_licence_id.as_ref() == Some(&sub.parent_licence_id) =>
        {
            (&sub.licensee, sub.scope(), sub.exclusive)
        }
        _ => {
            return Ok(Some(signed::malformed(
                "the signed intent is not the grant or sublicence this entry records",
            )));
        }
    };
    if !is_valid_id(&granted.licence_id) || licence(conn, &granted.licence_id).await?.is_some() {
        return Ok(Some(signed::malformed(
            "licence_id must be a fresh lowercase UUID",
        )));
    }
    let origin = signed::origin(conn).await?;
    if let Err(e) = signed
        .check_log(&origin)
        .and_then(|()| signed.check_expiry(at))
    {
        return Ok(Some(signed::refusal(e)));
    }
    let required: Vec<String> = match &granted.parent_licence_id {
        None => {
            if !content_exists(conn, &granted.content_id).await? {
                return Ok(refused(
                    RightsReason::UnknownContent,
                    format!("content {} is not registered", granted.content_id),
                ));
            }
            let holders = current_holders(conn, &granted.content_id).await?;
            if holders.is_empty() {
                return Ok(refused(
                    RightsReason::NoHolders,
                    format!(
                        "content {} has no holders to grant a licence",
                        granted.content_id
                    ),
                ));
            }
            holders.into_iter().map(|h| h.party_id).collect()
        }
        Some(parent_id) => {
            let Some(parent) = licence(conn, parent_id).await? else {
                return Ok(refused(
                    RightsReason::UnknownLicence,
                    format!("licence {parent_id} was never granted"),
                ));
            };
            if parent.content_id != granted.content_id {
                return Ok(Some(signed::malformed(
                    "content_id is not the parent licence's content",
                )));
            }
            if parent.revoked.is_some() {
                return Ok(refused(
                    RightsReason::LicenceRevoked,
                    format!("licence {parent_id} is revoked"),
                ));
            }
            if !parent.sublicensable {
                return Ok(refused(
                    RightsReason::NotSublicensable,
                    format!("licence {parent_id} may not be sublicensed"),
                ));
            }
            if !parent.scope.contains(&scope) {
                return Ok(refused(
                    RightsReason::ScopeExceeded,
                    format!(
                        "the sublicence's territories, media or term reach beyond licence {parent_id}'s"
                    ),
                ));
            }
            if exclusive && !parent.exclusive {
                return Ok(refused(
                    RightsReason::ExclusivityExceeded,
                    format!("licence {parent_id} is not exclusive, so no sublicence of it can be"),
                ));
            }
            vec![current_licensee(conn, parent_id).await?]
        }
    };
    if !party::exists(conn, licensee).await? {
        return Ok(Some(Rejection::UnknownParty {
            party_id: licensee.clone(),
        }));
    }
    let required: Vec<&str> = required.iter().map(String::as_str).collect();
    let keys = match signed::signers(conn, &required).await? {
        Ok(keys) => keys,
        Err(rejection) => return Ok(Some(rejection)),
    };
    if let Err(e) = signed.verify_signers(&keys) {
        return Ok(Some(signed::refusal(e)));
    }
    let existing: Vec<ExistingLicence> = licences_of(conn, &granted.content_id)
        .await?
        .into_iter()
        .map(|l| ExistingLicence {
            licence_id: l.licence_id,
            parent_licence_id: l.parent_id,
            scope: l.scope,
            exclusive: l.exclusive,
            revoked: l.revoked.is_some(),
        })
        .collect();
    let parent = granted.parent_licence_id.as_deref();
    Ok(
        find_conflict(&existing, parent, &scope, exclusive).and_then(|(hit, overlap)| {
            Some(Rejection::LicenceConflict(Box::new(Conflict {
                licence_id: hit.licence_id.clone(),
                territories: overlap.territories.to_territories()?,
                media: overlap.media,
                term: crate::Term::new(overlap.start, overlap.end).ok()?,
            })))
        }),
    )
}

/// Indexes a checked grant or sublicence at leaf `index`.
pub(super) async fn index_grant(
    conn: &mut AnyConnection,
    index: u64,
    granted: &LicenceGranted,
) -> Result<()> {
    let body = serde_json::to_vec(&granted.signed)
        .map_err(|e| RegistryError::Corrupt(format!("a recorded intent: {e}")))?;
    let signed = crate::SignedIntent::parse(&body)?;
    let (licensee, scope, exclusive, sublicensable, fee_ref) = match &signed.intent().body {
        IntentBody::LicenceGrant(g) => (
            &g.licensee,
            g.scope(),
            g.exclusive,
            g.sublicensable,
            g.fee_ref.clone(),
        ),
        IntentBody::LicenceSublicense(s) => {
            (&s.licensee, s.scope(), s.exclusive, s.sublicensable, None)
        }
        _ => {
            return Err(RegistryError::Corrupt(
                "a checked grant records another kind of intent".into(),
            ));
        }
    };
    let scope = serde_json::to_string(&scope)
        .map_err(|e| RegistryError::Corrupt(format!("a scope does not encode: {e}")))?;
    let (idx, us) = (to_i64(index)?, entry_micros(&granted.granted_at)?);
    sqlx::query(
        "insert into licence (licence_id, content_id, parent_id, scope, exclusive, sublicensable, \
         fee_ref, granted_idx, granted_us) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&granted.licence_id)
    .bind(&granted.content_id)
    .bind(granted.parent_licence_id.as_deref())
    .bind(scope)
    .bind(i64::from(exclusive))
    .bind(i64::from(sublicensable))
    .bind(fee_ref)
    .bind(idx)
    .bind(us)
    .execute(&mut *conn)
    .await?;
    insert_licensee(conn, &granted.licence_id, licensee, idx, us).await?;
    signed::mark_applied(conn, &granted.intent_sha256, index).await
}

async fn insert_licensee(
    conn: &mut AnyConnection,
    licence_id: &str,
    party_id: &str,
    idx: i64,
    us: i64,
) -> Result<()> {
    sqlx::query(
        "insert into licensee (licence_id, party_id, since_idx, since_us) values ($1, $2, $3, $4)",
    )
    .bind(licence_id)
    .bind(party_id)
    .bind(idx)
    .bind(us)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Checks the recorded intent, log and expiry of a licence change, and
/// that the licence exists and is live; the live licence, or the refusal.
async fn live_licence(
    conn: &mut AnyConnection,
    signed: &crate::SignedIntent,
    licence_id: &str,
    at: OffsetDateTime,
) -> Result<std::result::Result<Stored, Rejection>> {
    let origin = signed::origin(conn).await?;
    if let Err(e) = signed
        .check_log(&origin)
        .and_then(|()| signed.check_expiry(at))
    {
        return Ok(Err(signed::refusal(e)));
    }
    let Some(stored) = licence(conn, licence_id).await? else {
        return Ok(Err(signed::refused(
            RightsReason::UnknownLicence.as_str(),
            format!("licence {licence_id} was never granted"),
        )));
    };
    if stored.revoked.is_some() {
        return Ok(Err(signed::refused(
            RightsReason::LicenceRevoked.as_str(),
            format!("licence {licence_id} is revoked"),
        )));
    }
    Ok(Ok(stored))
}

/// Checks that exactly the current holders of `content_id`, and `also` if
/// given, signed.
async fn signed_by_holders(
    conn: &mut AnyConnection,
    signed: &crate::SignedIntent,
    content_id: &str,
    also: Option<&str>,
) -> Result<Option<Rejection>> {
    let holders = current_holders(conn, content_id).await?;
    let mut required: Vec<&str> = holders.iter().map(|h| h.party_id.as_str()).collect();
    required.extend(also);
    let keys = match signed::signers(conn, &required).await? {
        Ok(keys) => keys,
        Err(rejection) => return Ok(Some(rejection)),
    };
    Ok(signed.verify_signers(&keys).err().map(signed::refusal))
}

/// Checks a `licence.transferred` entry stamped `at`: a `licence.transfer`
/// of a live licence to another registered party, signed by exactly its
/// licensee and every holder of the content.
pub(super) async fn check_transfer(
    conn: &mut AnyConnection,
    transferred: &LicenceTransferred,
    at: OffsetDateTime,
) -> Result<Option<Rejection>> {
    let signed =
        match signed::recorded(conn, &transferred.signed, &transferred.intent_sha256).await? {
            Ok(signed) => signed,
            Err(rejection) => return Ok(Some(rejection)),
        };
    let IntentBody::LicenceTransfer(intent) = &signed.intent().body else {
        return Ok(Some(signed::malformed(
            "the signed intent is not a licence.transfer",
        )));
    };
    if intent.licence_id != transferred.licence_id {
        return Ok(Some(signed::malformed(
            "the signed intent transfers another licence",
        )));
    }
    let stored = match live_licence(conn, &signed, &intent.licence_id, at).await? {
        Ok(stored) => stored,
        Err(rejection) => return Ok(Some(rejection)),
    };
    if !party::exists(conn, &intent.to).await? {
        return Ok(Some(Rejection::UnknownParty {
            party_id: intent.to.clone(),
        }));
    }
    let licensee = current_licensee(conn, &intent.licence_id).await?;
    if licensee == intent.to {
        return Ok(refused(
            RightsReason::SameLicensee,
            format!(
                "party {} already holds licence {}",
                intent.to, intent.licence_id
            ),
        ));
    }
    signed_by_holders(conn, &signed, &stored.content_id, Some(&licensee)).await
}

/// Indexes a checked licence transfer at leaf `index`.
pub(super) async fn index_transfer(
    conn: &mut AnyConnection,
    index: u64,
    transferred: &LicenceTransferred,
) -> Result<()> {
    let body = serde_json::to_vec(&transferred.signed)
        .map_err(|e| RegistryError::Corrupt(format!("a recorded intent: {e}")))?;
    let IntentBody::LicenceTransfer(intent) =
        crate::SignedIntent::parse(&body)?.intent().body.clone()
    else {
        return Err(RegistryError::Corrupt(
            "a checked licence transfer records another kind of intent".into(),
        ));
    };
    let (idx, us) = (to_i64(index)?, entry_micros(&transferred.transferred_at)?);
    sqlx::query(
        "update licensee set until_idx = $1, until_us = $2 \
         where licence_id = $3 and until_idx is null",
    )
    .bind(idx)
    .bind(us)
    .bind(&transferred.licence_id)
    .execute(&mut *conn)
    .await?;
    insert_licensee(conn, &transferred.licence_id, &intent.to, idx, us).await?;
    signed::mark_applied(conn, &transferred.intent_sha256, index).await
}

/// Checks a `licence.revoked` entry stamped `at`: a `licence.revoke` of a
/// live licence, signed by exactly every holder of the content.
pub(super) async fn check_revoke(
    conn: &mut AnyConnection,
    revoked: &LicenceRevoked,
    at: OffsetDateTime,
) -> Result<Option<Rejection>> {
    let signed = match signed::recorded(conn, &revoked.signed, &revoked.intent_sha256).await? {
        Ok(signed) => signed,
        Err(rejection) => return Ok(Some(rejection)),
    };
    match &signed.intent().body {
        IntentBody::LicenceRevoke(intent) if intent.licence_id == revoked.licence_id => {}
        _ => {
            return Ok(Some(signed::malformed(
                "the signed intent is not a licence.revoke of this licence",
            )));
        }
    }
    let stored = match live_licence(conn, &signed, &revoked.licence_id, at).await? {
        Ok(stored) => stored,
        Err(rejection) => return Ok(Some(rejection)),
    };
    signed_by_holders(conn, &signed, &stored.content_id, None).await
}

/// Indexes a checked revocation at leaf `index`: the licence and every
/// live licence descending from it end there.
pub(super) async fn index_revoke(
    conn: &mut AnyConnection,
    index: u64,
    revoked: &LicenceRevoked,
) -> Result<()> {
    let (idx, us) = (to_i64(index)?, entry_micros(&revoked.revoked_at)?);
    let mut ending = vec![revoked.licence_id.clone()];
    let mut seen = BTreeSet::new();
    while let Some(licence_id) = ending.pop() {
        if !seen.insert(licence_id.clone()) {
            continue;
        }
        sqlx::query(
            "update licence set revoked_idx = $1, revoked_us = $2 \
             where licence_id = $3 and revoked_idx is null",
        )
        .bind(idx)
        .bind(us)
        .bind(&licence_id)
        .execute(&mut *conn)
        .await?;
        let children = sqlx::query("select licence_id from licence where parent_id = $1")
            .bind(&licence_id)
            .fetch_all(&mut *conn)
            .await?;
        for child in children {
            ending.push(child.try_get(0)?);
        }
    }
    signed::mark_applied(conn, &revoked.intent_sha256, index).await
}

/// [`as_of`], with the events of the licences it descends from added to
/// its own: a sublicence rests on its parent's grant (whose scope contains
/// it) and on who held the parent when it was signed, so an auditor can
/// check the chain from the evidence alone.
async fn with_ancestry(
    conn: &mut AnyConnection,
    stored: Stored,
    at: Option<i64>,
) -> Result<Option<LicenceRecord>> {
    let Some(mut record) = as_of(conn, stored, at).await? else {
        return Ok(None);
    };
    let mut seen = BTreeSet::from([record.licence_id.clone()]);
    let mut next = record.parent_licence_id.clone();
    while let Some(parent_id) = next.take() {
        if !seen.insert(parent_id.clone()) {
            return Err(RegistryError::Corrupt(format!(
                "licence {parent_id} descends from itself"
            )));
        }
        let parent = licence(conn, &parent_id).await?.ok_or_else(|| {
            RegistryError::Corrupt(format!("a sublicence's parent {parent_id} is missing"))
        })?;
        if let Some(parent) = as_of(conn, parent, at).await? {
            record.events.extend(parent.events);
            next = parent.parent_licence_id;
        }
    }
    record.events.sort_unstable();
    record.events.dedup();
    Ok(Some(record))
}

/// A stored licence as it stood at instant `at` (microseconds; `None` for
/// now), or `None` if it was not yet granted then.
async fn as_of(
    conn: &mut AnyConnection,
    stored: Stored,
    at: Option<i64>,
) -> Result<Option<LicenceRecord>> {
    let by_then = |us: i64| at.is_none_or(|at| us <= at);
    if !by_then(stored.granted_us) {
        return Ok(None);
    }
    let rows = sqlx::query(
        "select party_id, since_idx, since_us from licensee \
         where licence_id = $1 order by since_idx",
    )
    .bind(&stored.licence_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut events = BTreeSet::from([stored.granted_idx]);
    let mut licensee = None;
    for row in &rows {
        if by_then(row.try_get(2)?) {
            events.insert(from_i64(row.try_get(1)?)?);
            licensee = Some(row.try_get::<String, _>(0)?);
        }
    }
    let licensee = licensee.ok_or_else(|| {
        RegistryError::Corrupt(format!("licence {} has no licensee", stored.licence_id))
    })?;
    let revoked_index = stored
        .revoked
        .filter(|&(_, us)| by_then(us))
        .map(|(idx, _)| idx);
    events.extend(revoked_index);
    Ok(Some(LicenceRecord {
        licence_id: stored.licence_id,
        content_id: stored.content_id,
        parent_licence_id: stored.parent_id,
        licensee,
        scope: stored.scope,
        exclusive: stored.exclusive,
        sublicensable: stored.sublicensable,
        fee_ref: stored.fee_ref,
        granted_index: stored.granted_idx,
        revoked_index,
        events: events.into_iter().collect(),
    }))
}

impl Registry {
    /// Licence `licence_id` as it stood at `at` (now if `None`), with the
    /// tree size it was read at; `None` if it was not granted by then.
    pub async fn licence(
        &self,
        licence_id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<Option<(LicenceRecord, u64)>> {
        let at = at.map(micros).transpose()?;
        let mut tx = self.read_snapshot().await?;
        let Some(stored) = licence(&mut tx, licence_id).await? else {
            return Ok(None);
        };
        let record = with_ancestry(&mut tx, stored, at).await?;
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        Ok(record.map(|r| (r, tree_size)))
    }

    /// Every licence of `content_id` granted by `at` (now if `None`), as
    /// each stood then; `None` if no registration or claim has this id.
    pub async fn licences(
        &self,
        content_id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<Option<Licences>> {
        let at = at.map(micros).transpose()?;
        let mut tx = self.read_snapshot().await?;
        if !content_exists(&mut tx, content_id).await? {
            return Ok(None);
        }
        let mut licences = Vec::new();
        for stored in licences_of(&mut tx, content_id).await? {
            licences.extend(with_ancestry(&mut tx, stored, at).await?);
        }
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        Ok(Some(Licences {
            licences,
            tree_size,
        }))
    }
}

impl Registry {
    /// The licences party `party_id` holds now, or held at instant `at`,
    /// as each stood then, in the order they were granted, with the tree
    /// size they were read at.
    pub async fn licences_of(
        &self,
        party_id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<(Vec<LicenceRecord>, u64)> {
        let at = at.map(micros).transpose()?;
        let mut tx = self.read_snapshot().await?;
        let rows = sqlx::query(&format!(
            "select {COLUMNS} from licence where licence_id in \
             (select licence_id from licensee where party_id = $1) order by granted_idx"
        ))
        .bind(party_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut licences = Vec::new();
        for row in &rows {
            if let Some(record) = with_ancestry(&mut tx, stored(row)?, at).await?
                && record.licensee == party_id
            {
                licences.push(record);
            }
        }
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        Ok((licences, tree_size))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};
    use time::format_description::well_known::Rfc3339;

    use super::*;
    use crate::entry::{EntryBody, Holder, LedgerEntry};
    use crate::rights::ContentTransferred;
    use crate::store::tests::{
        LOG, apply_leaves, backends, formed_leaf, install, outcome_names, party_id, party_leaf,
        read_snapshot, registration, sign,
    };

    fn licence_id(n: u8) -> String {
        format!("0192f0c1-0000-7000-a000-{n:012x}")
    }

    fn intent(kind: &str, nonce: u8, members: Value) -> Value {
        let mut intent = json!({
            "type": kind, "log": LOG, "nonce": format!("{nonce:02x}").repeat(16),
            "expires_at": "2026-11-21T13:00:00Z",
        });
        for (k, v) in members.as_object().unwrap() {
            intent[k] = v.clone();
        }
        intent
    }

    fn terms(include: &[&str], media: &[&str], start: &str, end: &str, exclusive: bool) -> Value {
        json!({
            "territories": {"include": include, "exclude": []}, "media": media,
            "term": {"start": start, "end": end}, "exclusive": exclusive, "sublicensable": true,
        })
    }

    fn with(mut base: Value, extra: Value) -> Value {
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    fn leaf(body: EntryBody) -> String {
        LedgerEntry::new(body).to_leaf().unwrap()
    }

    /// Grants, sublicences, licence transfers and revocations are checked
    /// against holders, parents, signers and conflicts; each refusal names
    /// its rule and appends nothing; a revocation ends the sublicences too;
    /// licences are known as they stood at any instant, also after a
    /// snapshot install.
    #[tokio::test]
    async fn licences_are_granted_checked_and_revoked() {
        let formed = formed_leaf();
        let mut item = registration(1);
        let EntryBody::ContentRegistered(reg) = &mut item.body else {
            unreachable!()
        };
        let holder = |n: u8, share_bp: u16| Holder {
            party_id: party_id(n),
            share_bp,
        };
        reg.metadata.holders = vec![holder(1, 10_000)];
        let content = reg.content_id.clone();
        let item = item.to_leaf().unwrap();
        let sale = sign(
            &intent(
                "transfer",
                1,
                json!({"content_id": content,
                    "from": [{"party_id": party_id(1), "share_bp": 5000}],
                    "to": [{"party_id": party_id(2), "share_bp": 5000}]}),
            ),
            &[1],
        );
        let sold = leaf(EntryBody::ContentTransferred(ContentTransferred {
            transferred_at: "2026-11-21T12:00:01Z".into(),
            content_id: content.clone(),
            holders: vec![holder(1, 5_000), holder(2, 5_000)],
            intent_sha256: sale.replay_key_hex(),
            signed: sale.to_envelope(),
        }));
        let grant = |n: u8, at: &str, nonce: u8, members: Value, signers: &[u8]| {
            let signed = sign(
                &intent(
                    "licence.grant",
                    nonce,
                    with(members, json!({"content_id": content})),
                ),
                signers,
            );
            leaf(EntryBody::LicenceGranted(LicenceGranted {
                granted_at: at.into(),
                licence_id: licence_id(n),
                content_id: content.clone(),
                parent_licence_id: None,
                intent_sha256: signed.replay_key_hex(),
                signed: signed.to_envelope(),
            }))
        };
        let sublicense = |n: u8, at: &str, nonce: u8, members: Value, signers: &[u8]| {
            let parent = 1;
            let signed = sign(
                &intent(
                    "licence.sublicense",
                    nonce,
                    with(members, json!({"parent_licence_id": licence_id(parent)})),
                ),
                signers,
            );
            leaf(EntryBody::LicenceSublicensed(LicenceGranted {
                granted_at: at.into(),
                licence_id: licence_id(n),
                content_id: content.clone(),
                parent_licence_id: Some(licence_id(parent)),
                intent_sha256: signed.replay_key_hex(),
                signed: signed.to_envelope(),
            }))
        };
        let t2 = "2026-11-21T12:00:02Z";
        let streamer = json!({"licensee": party_id(3)});
        let first = grant(
            1,
            t2,
            10,
            with(
                terms(&["FR", "DE"], &["svod"], "2027-01-01", "2028-01-01", true),
                streamer.clone(),
            ),
            &[1, 2],
        );
        let overlapping = grant(
            2,
            t2,
            11,
            with(
                terms(
                    &["DE", "AT"],
                    &["svod", "avod"],
                    "2027-06-01",
                    "2029-01-01",
                    false,
                ),
                streamer.clone(),
            ),
            &[1, 2],
        );
        let half_signed = grant(
            3,
            t2,
            12,
            with(
                terms(&["IT"], &["svod"], "2027-01-01", "2028-01-01", false),
                streamer.clone(),
            ),
            &[1],
        );
        let sub_licensee = json!({"licensee": party_id(4)});
        let inside = sublicense(
            4,
            "2026-11-21T12:00:03Z",
            13,
            with(
                terms(&["FR"], &["svod"], "2027-03-01", "2027-06-01", false),
                sub_licensee.clone(),
            ),
            &[3],
        );
        let outside = sublicense(
            5,
            "2026-11-21T12:00:03Z",
            14,
            with(
                terms(&["IT"], &["svod"], "2027-03-01", "2027-06-01", false),
                sub_licensee.clone(),
            ),
            &[3],
        );
        let not_licensee = sublicense(
            6,
            "2026-11-21T12:00:03Z",
            15,
            with(
                terms(&["FR"], &["svod"], "2027-03-01", "2027-04-01", false),
                sub_licensee.clone(),
            ),
            &[1],
        );
        let moved = {
            let signed = sign(
                &intent(
                    "licence.transfer",
                    16,
                    json!({"licence_id": licence_id(1), "to": party_id(5)}),
                ),
                &[3, 1, 2],
            );
            leaf(EntryBody::LicenceTransferred(LicenceTransferred {
                transferred_at: "2026-11-21T12:00:04Z".into(),
                licence_id: licence_id(1),
                intent_sha256: signed.replay_key_hex(),
                signed: signed.to_envelope(),
            }))
        };
        let revoke = |nonce: u8| {
            let signed = sign(
                &intent(
                    "licence.revoke",
                    nonce,
                    json!({"licence_id": licence_id(1), "reason": "unpaid"}),
                ),
                &[1, 2],
            );
            leaf(EntryBody::LicenceRevoked(LicenceRevoked {
                revoked_at: "2026-11-21T12:00:05Z".into(),
                licence_id: licence_id(1),
                intent_sha256: signed.replay_key_hex(),
                signed: signed.to_envelope(),
            }))
        };
        let late_sub = sublicense(
            7,
            "2026-11-21T12:00:05Z",
            19,
            with(
                terms(&["FR"], &["svod"], "2027-03-01", "2027-04-01", false),
                sub_licensee.clone(),
            ),
            &[5],
        );
        let after_revocation = grant(
            8,
            "2026-11-21T12:00:06Z",
            20,
            with(
                terms(
                    &["DE", "AT"],
                    &["svod", "avod"],
                    "2027-06-01",
                    "2029-01-01",
                    true,
                ),
                streamer.clone(),
            ),
            &[1, 2],
        );
        let (revoked, revoked_again) = (revoke(17), revoke(18));
        let parties: Vec<String> = (1..=5).map(party_leaf).collect();
        let digests: Vec<String> = (1..=5).map(|n| format!("{n}").repeat(64)).collect();
        let mut leaves: Vec<(&str, Option<&str>)> = vec![(&formed, None)];
        for (party, digest) in parties.iter().zip(&digests) {
            leaves.push((party, Some(digest)));
        }
        leaves.extend([
            (item.as_str(), None),
            (&sold, None),
            (&first, None),
            (&overlapping, None),
            (&half_signed, None),
            (&inside, None),
            (&outside, None),
            (&not_licensee, None),
            (&moved, None),
            (&revoked, None),
            (&revoked_again, None),
            (&late_sub, None),
            (&after_revocation, None),
        ]);
        for (reg, db) in backends().await {
            let outcomes = apply_leaves(&reg, &leaves).await;
            assert_eq!(
                outcome_names(&outcomes[8..]),
                [
                    "appended 8".to_owned(),
                    format!("conflict with {}", licence_id(1)),
                    "missing-signature".into(),
                    "appended 9".into(),
                    "scope-exceeded".into(),
                    "unexpected-signer".into(),
                    "appended 10".into(),
                    "appended 11".into(),
                    "licence-revoked".into(),
                    "licence-revoked".into(),
                    "appended 12".into(),
                ]
            );
            let Some(crate::ApplyOutcome::Rejected(Rejection::LicenceConflict(conflict))) =
                outcomes.get(9)
            else {
                panic!("{:?}", outcomes[9]);
            };
            assert_eq!(
                serde_json::to_value((&conflict.territories, &conflict.media, &conflict.term))
                    .unwrap(),
                json!([{"include": ["DE"], "exclude": []}, ["svod"],
                    {"start": "2027-06-01", "end": "2028-01-01"}])
            );

            let at = |t: &str| Some(OffsetDateTime::parse(t, &Rfc3339).unwrap());
            let now = reg.licences(&content, None).await.unwrap().unwrap();
            let ids: Vec<(&str, Option<u64>)> = now
                .licences
                .iter()
                .map(|l| (l.licence_id.as_str(), l.revoked_index))
                .collect();
            assert_eq!(
                ids,
                [
                    (licence_id(1).as_str(), Some(11)),
                    (licence_id(4).as_str(), Some(11)),
                    (licence_id(8).as_str(), None),
                ]
            );
            assert_eq!(now.licences[0].licensee, party_id(5));
            assert_eq!(now.licences[0].events, [8, 10, 11]);
            let date = time::Date::from_calendar_date(2027, time::Month::March, 1).unwrap();
            assert!(!now.licences[1].valid_for(Some("FR"), Some(crate::Medium::Svod), Some(date)));

            let then = reg
                .licences(&content, at("2026-11-21T12:00:03Z"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(then.licences.len(), 2);
            let sub = &then.licences[1];
            assert_eq!(
                (
                    sub.licensee.as_str(),
                    sub.revoked_index,
                    sub.events.as_slice()
                ),
                (party_id(4).as_str(), None, [8, 9].as_slice())
            );
            assert!(sub.valid_for(Some("FR"), Some(crate::Medium::Svod), Some(date)));
            assert!(!sub.valid_for(Some("DE"), None, None));
            let (first_then, _) = reg
                .licence(&licence_id(1), at("2026-11-21T12:00:03Z"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(first_then.licensee, party_id(3));
            assert!(reg.licence(&licence_id(2), None).await.unwrap().is_none());

            let snapshot = read_snapshot(&reg).await;
            for (dst, dst_db) in backends().await {
                install(&dst, &snapshot).await;
                for instant in [None, at("2026-11-21T12:00:03Z")] {
                    assert_eq!(
                        dst.licences(&content, instant).await.unwrap(),
                        reg.licences(&content, instant).await.unwrap()
                    );
                }
                dst_db.drop_db().await;
            }
            crate::store::rebuild::tests::rebuild_matches(&reg).await;
            db.drop_db().await;
        }
    }
}
