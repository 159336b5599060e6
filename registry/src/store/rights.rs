//! The ownership aggregate: who holds which share of each content item, and
//! since when. Checked and indexed by the apply transaction; read by the
//! service to answer holders queries with the events they rest on.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::{AnyConnection, Row};
use time::OffsetDateTime;

use super::apply::{content_exists, parse_timestamp};
use super::{Registry, from_i64, party, signed, to_i64};
use crate::entry::{Holder, Rejection};
use crate::intent::IntentBody;
use crate::rights::{ContentTransferred, RightsReason, after_transfer};
use crate::{RegistryError, Result};

/// The holders of a content item at one instant, with the ledger indexes of
/// the events that answer rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holdings {
    /// Holders and shares, in ascending party id; empty before the item
    /// was registered, or if it was registered without holders.
    pub holders: Vec<Holder>,
    /// The registration and every transfer of the item up to the instant,
    /// in ledger order.
    pub events: Vec<u64>,
    /// The size of the tree the answer was read at: every event is below
    /// it, and nothing later changed the answer.
    pub tree_size: u64,
}

/// One item a party holds a share of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyHolding {
    /// The content item.
    pub content_id: String,
    /// The party's share, in basis points.
    pub share_bp: u16,
    /// The registration or transfer that gave it this share.
    pub since_index: u64,
}

/// Microseconds since the Unix epoch: how the projections store instants.
pub(crate) fn micros(at: OffsetDateTime) -> Result<i64> {
    i64::try_from(at.unix_timestamp_nanos() / 1000)
        .map_err(|_| RegistryError::invalid("at", "is out of range"))
}

/// The instant of an applied entry's timestamp, in microseconds.
pub(super) fn entry_micros(timestamp: &str) -> Result<i64> {
    let at = parse_timestamp(timestamp).ok_or_else(|| {
        RegistryError::Corrupt(format!(
            "an applied entry's timestamp {timestamp:?} does not parse"
        ))
    })?;
    micros(at)
}

/// Checks a `content.transferred` entry stamped `at` against the state so
/// far: its intent must be a `transfer` of this item, for this log,
/// unexpired at `at`, never applied before; the item must be registered,
/// each giver must hold what it gives, each receiver must be a party, the
/// leaf's holders must be the result, and exactly the givers must have
/// signed, each with its current key.
pub(super) async fn check_transfer(
    conn: &mut AnyConnection,
    transferred: &ContentTransferred,
    at: OffsetDateTime,
) -> Result<Option<Rejection>> {
    let signed =
        match signed::recorded(conn, &transferred.signed, &transferred.intent_sha256).await? {
            Ok(signed) => signed,
            Err(rejection) => return Ok(Some(rejection)),
        };
    let IntentBody::Transfer(intent) = &signed.intent().body else {
        return Ok(Some(signed::malformed(
            "the signed intent is not a transfer",
        )));
    };
    if intent.content_id != transferred.content_id {
        return Ok(Some(signed::malformed(
            "the signed intent transfers another content item",
        )));
    }
    let origin = signed::origin(conn).await?;
    if let Err(e) = signed
        .check_log(&origin)
        .and_then(|()| signed.check_expiry(at))
    {
        return Ok(Some(signed::refusal(e)));
    }
    if !content_exists(conn, &intent.content_id).await? {
        return Ok(Some(signed::refused(
            RightsReason::UnknownContent.as_str(),
            format!("content {} is not registered", intent.content_id),
        )));
    }
    let current = current_holders(conn, &intent.content_id).await?;
    let after = match after_transfer(&current, &intent.from, &intent.to) {
        Ok(after) => after,
        Err((reason, detail)) => return Ok(Some(signed::refused(reason.as_str(), detail))),
    };
    for share in &intent.to {
        if !party::exists(conn, &share.party_id).await? {
            return Ok(Some(Rejection::UnknownParty {
                party_id: share.party_id.clone(),
            }));
        }
    }
    if after != transferred.holders {
        return Ok(Some(signed::refused(
            RightsReason::HoldersChanged.as_str(),
            "the holders changed since the transfer was proposed",
        )));
    }
    let givers: Vec<&str> = intent.from.iter().map(|s| s.party_id.as_str()).collect();
    let required = match signed::signers(conn, &givers).await? {
        Ok(required) => required,
        Err(rejection) => return Ok(Some(rejection)),
    };
    Ok(signed.verify_signers(&required).err().map(signed::refusal))
}

/// Indexes a checked `content.transferred` entry at leaf `index`: the
/// shares that changed end there, and the new ones begin.
pub(super) async fn index_transfer(
    conn: &mut AnyConnection,
    index: u64,
    transferred: &ContentTransferred,
) -> Result<()> {
    let at = entry_micros(&transferred.transferred_at)?;
    let idx = to_i64(index)?;
    let content_id = &transferred.content_id;
    let before: BTreeMap<String, u16> = current_holders(conn, content_id)
        .await?
        .into_iter()
        .map(|h| (h.party_id, h.share_bp))
        .collect();
    let after: BTreeMap<&str, u16> = transferred
        .holders
        .iter()
        .map(|h| (h.party_id.as_str(), h.share_bp))
        .collect();
    let parties: BTreeSet<&str> = before
        .keys()
        .map(String::as_str)
        .chain(after.keys().copied())
        .collect();
    for party_id in parties {
        let (was, is) = (before.get(party_id), after.get(party_id));
        if was == is {
            continue;
        }
        if was.is_some() {
            sqlx::query(
                "update holding set until_idx = $1, until_us = $2 \
                 where content_id = $3 and party_id = $4 and until_idx is null",
            )
            .bind(idx)
            .bind(at)
            .bind(content_id)
            .bind(party_id)
            .execute(&mut *conn)
            .await?;
        }
        if let Some(&share_bp) = is {
            sqlx::query(
                "insert into holding (content_id, party_id, share_bp, since_idx, since_us) \
                 values ($1, $2, $3, $4, $5)",
            )
            .bind(content_id)
            .bind(party_id)
            .bind(i64::from(share_bp))
            .bind(idx)
            .bind(at)
            .execute(&mut *conn)
            .await?;
        }
    }
    signed::mark_applied(conn, &transferred.intent_sha256, index).await
}

/// The current holders of `content_id`, in ascending party id.
pub(super) async fn current_holders(
    conn: &mut AnyConnection,
    content_id: &str,
) -> Result<Vec<Holder>> {
    let rows = sqlx::query(
        "select party_id, share_bp from holding \
         where content_id = $1 and until_idx is null order by party_id",
    )
    .bind(content_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(holder).collect()
}

fn holder(row: &sqlx::any::AnyRow) -> Result<Holder> {
    let share: i64 = row.try_get(1)?;
    Ok(Holder {
        party_id: row.try_get(0)?,
        share_bp: u16::try_from(share)
            .map_err(|_| RegistryError::Corrupt(format!("a stored share of {share} bp")))?,
    })
}

impl Registry {
    /// The holders of `content_id` now, or at instant `at` (by entry
    /// timestamps: an entry stamped at `at` counts), read in one state of
    /// the ledger; `None` if no registration or claim has this id.
    pub async fn holders(
        &self,
        content_id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<Option<Holdings>> {
        let at = at.map(micros).transpose()?;
        let mut tx = self.read_snapshot().await?;
        let registration = sqlx::query(
            "select idx, leaf from ledger_entry where idx in \
             (select ledger_idx from content where content_id = $1 \
              union all select ledger_idx from content_claim where content_id = $1)",
        )
        .bind(content_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(registration) = registration else {
            return Ok(None);
        };
        let registered = from_i64(registration.try_get(0)?)?;
        let leaf: String = registration.try_get(1)?;
        let registered_us = entry_micros(crate::LedgerEntry::from_leaf(&leaf)?.timestamp())?;
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        let rows = sqlx::query(
            "select party_id, share_bp, since_idx, since_us, until_idx, until_us \
             from holding where content_id = $1 order by party_id, since_idx",
        )
        .bind(content_id)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let by_then = |us: i64| at.is_none_or(|at| us <= at);
        let mut holders = Vec::new();
        let mut events = BTreeSet::new();
        if by_then(registered_us) {
            events.insert(registered);
        }
        for row in &rows {
            let since_us: i64 = row.try_get(3)?;
            if !by_then(since_us) {
                continue;
            }
            events.insert(from_i64(row.try_get(2)?)?);
            let until_idx: Option<i64> = row.try_get(4)?;
            let until_us: Option<i64> = row.try_get(5)?;
            match until_idx.zip(until_us) {
                Some((until_idx, until_us)) if by_then(until_us) => {
                    events.insert(from_i64(until_idx)?);
                }
                _ => holders.push(holder(row)?),
            }
        }
        Ok(Some(Holdings {
            holders,
            events: events.into_iter().collect(),
            tree_size,
        }))
    }
}

impl Registry {
    /// The items party `party_id` holds a share of now, or at instant
    /// `at`, in content id order, with the tree size they were read at.
    pub async fn holdings_of(
        &self,
        party_id: &str,
        at: Option<OffsetDateTime>,
    ) -> Result<(Vec<PartyHolding>, u64)> {
        let at = at.map(micros).transpose()?;
        let by_then = |us: i64| at.is_none_or(|at| us <= at);
        let mut tx = self.read_snapshot().await?;
        let rows = sqlx::query(
            "select content_id, share_bp, since_idx, since_us, until_us from holding \
             where party_id = $1 order by content_id, since_idx",
        )
        .bind(party_id)
        .fetch_all(&mut *tx)
        .await?;
        let tree_size = super::apply::read_tree_size(&mut tx).await?;
        tx.commit().await?;
        let mut holdings = Vec::new();
        for row in &rows {
            let until_us: Option<i64> = row.try_get(4)?;
            if !by_then(row.try_get(3)?) || until_us.is_some_and(by_then) {
                continue;
            }
            let share: i64 = row.try_get(1)?;
            holdings.push(PartyHolding {
                content_id: row.try_get(0)?,
                share_bp: u16::try_from(share)
                    .map_err(|_| RegistryError::Corrupt(format!("a stored share of {share} bp")))?,
                since_index: from_i64(row.try_get(2)?)?,
            });
        }
        Ok((holdings, tree_size))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::format_description::well_known::Rfc3339;

    use super::*;
    use crate::entry::{EntryBody, LedgerEntry};
    use crate::store::tests::{
        LOG, apply_leaves as apply, backends, formed_leaf, install, outcome_names, party_id,
        party_leaf, read_snapshot, registration, sign,
    };

    fn holder(n: u8, share_bp: u16) -> Holder {
        Holder {
            party_id: party_id(n),
            share_bp,
        }
    }

    /// A transfer leaf of `content` stamped `at`, giving `from` and
    /// receiving `to` (party number, basis points), signed by `signers`
    /// and stating `holders` as the result.
    fn transfer(
        content: &str,
        at: &str,
        from: &[(u8, u16)],
        to: &[(u8, u16)],
        signers: &[u8],
        holders: Vec<Holder>,
    ) -> String {
        let shares = |side: &[(u8, u16)]| {
            side.iter()
                .map(|&(n, bp)| json!({"party_id": party_id(n), "share_bp": bp}))
                .collect::<Vec<_>>()
        };
        let intent = json!({
            "type": "transfer", "log": LOG, "nonce": format!("{:032x}", at.len() * 7919 + from.len() + 31 * to.len() + usize::from(signers[0])),
            "expires_at": "2026-11-21T13:00:00Z",
            "content_id": content, "from": shares(from), "to": shares(to),
        });
        let signed = sign(&intent, signers);
        LedgerEntry::new(EntryBody::ContentTransferred(ContentTransferred {
            transferred_at: at.into(),
            content_id: content.into(),
            holders,
            intent_sha256: signed.replay_key_hex(),
            signed: signed.to_envelope(),
        }))
        .to_leaf()
        .unwrap()
    }

    fn at(text: &str) -> Option<OffsetDateTime> {
        Some(OffsetDateTime::parse(text, &Rfc3339).unwrap())
    }

    /// Transfers move shares only when the givers hold them and signed;
    /// each refusal names its rule and changes nothing; holders are known
    /// at every instant with the events they rest on, also after a
    /// snapshot install.
    #[tokio::test]
    async fn transfers_move_shares() {
        let formed = formed_leaf();
        let mut item = registration(1);
        let EntryBody::ContentRegistered(reg) = &mut item.body else {
            unreachable!()
        };
        reg.metadata.holders = vec![holder(1, 10_000)];
        let content = reg.content_id.clone();
        let item = item.to_leaf().unwrap();
        let t1 = "2026-11-21T12:00:01Z";
        let t2 = "2026-11-21T12:00:02Z";
        let half = vec![holder(1, 5_000), holder(2, 5_000)];
        let sold = transfer(
            &content,
            t1,
            &[(1, 5_000)],
            &[(2, 5_000)],
            &[1],
            half.clone(),
        );
        let by_stranger = transfer(&content, t1, &[(3, 1)], &[(2, 1)], &[3], half.clone());
        let too_much = transfer(
            &content,
            t1,
            &[(1, 6_000)],
            &[(3, 6_000)],
            &[1],
            half.clone(),
        );
        let wrong_signer = transfer(
            &content,
            t1,
            &[(2, 100)],
            &[(3, 100)],
            &[1],
            vec![holder(1, 5_000), holder(2, 4_900), holder(3, 100)],
        );
        let elsewhere = transfer(&party_id(7), t1, &[(1, 1)], &[(2, 1)], &[1], half.clone());
        let misstated = transfer(
            &content,
            t2,
            &[(2, 1_000)],
            &[(3, 1_000)],
            &[2],
            half.clone(),
        );
        let resold = transfer(
            &content,
            t2,
            &[(1, 5_000)],
            &[(3, 5_000)],
            &[1],
            vec![holder(2, 5_000), holder(3, 5_000)],
        );
        let digests: Vec<String> = (1..=3).map(|n| format!("{n}").repeat(64)).collect();
        let parties: Vec<String> = (1..=3).map(party_leaf).collect();
        for (reg, db) in backends().await {
            let outcomes = apply(
                &reg,
                &[
                    (&formed, None),
                    (&parties[0], Some(&digests[0])),
                    (&parties[1], Some(&digests[1])),
                    (&parties[2], Some(&digests[2])),
                    (&item, None),
                    (&sold, None),
                    (&sold, None),
                    (&by_stranger, None),
                    (&too_much, None),
                    (&wrong_signer, None),
                    (&elsewhere, None),
                    (&misstated, None),
                    (&resold, None),
                ],
            )
            .await;
            let said = outcome_names(&outcomes[5..]);
            assert_eq!(
                said,
                [
                    "appended 5",
                    "replayed-intent",
                    "not-a-holder",
                    "insufficient-share",
                    "unexpected-signer",
                    "unknown-content",
                    "holders-changed",
                    "appended 6",
                ]
            );
            let now = reg.holders(&content, None).await.unwrap().unwrap();
            assert_eq!(now.holders, [holder(2, 5_000), holder(3, 5_000)]);
            assert_eq!(
                (now.events.as_slice(), now.tree_size),
                ([4, 5, 6].as_slice(), 7)
            );
            let then = reg
                .holders(&content, at("2026-11-21T12:00:01.5Z"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!((then.holders, then.events), (half.clone(), vec![4, 5]));
            // An instant equal to an entry's timestamp includes the entry.
            let exactly = reg.holders(&content, at(t1)).await.unwrap().unwrap();
            assert_eq!(exactly.events, [4, 5]);
            let before = reg
                .holders(&content, at("2026-11-21T11:00:00Z"))
                .await
                .unwrap()
                .unwrap();
            assert!(before.holders.is_empty() && before.events.is_empty());
            assert!(reg.holders(&party_id(7), None).await.unwrap().is_none());

            let snapshot = read_snapshot(&reg).await;
            for (dst, dst_db) in backends().await {
                install(&dst, &snapshot).await;
                for instant in [None, at("2026-11-21T12:00:01.5Z")] {
                    assert_eq!(
                        dst.holders(&content, instant).await.unwrap(),
                        reg.holders(&content, instant).await.unwrap()
                    );
                }
                dst_db.drop_db().await;
            }
            crate::store::rebuild::tests::rebuild_matches(&reg).await;
            db.drop_db().await;
        }
    }
}
