//! The party aggregate: parties as recorded in the ledger, their keys and
//! the digests of their tokens. Checked and indexed by the apply
//! transaction; read by the service to authenticate and to answer.

use sqlx::{AnyConnection, Row};

use super::{Registry, from_i64, to_i64};
use crate::entry::{EntryBody, LedgerEntry, Rejection};
use crate::party::PartyRegistered;
use crate::{RegistryError, Result};

/// A party as recorded, with the leaf that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyRecord {
    /// The party.
    pub party: PartyRegistered,
    /// The leaf index of its `party.registered` entry.
    pub ledger_index: u64,
}

/// Checks a `party.registered` entry against the state so far; `None` if
/// it may be appended.
pub(super) async fn check(
    conn: &mut AnyConnection,
    party: &PartyRegistered,
) -> Result<Option<Rejection>> {
    if let Err(e) = party.check() {
        return Ok(Some(Rejection::MalformedEntry {
            detail: e.to_string(),
        }));
    }
    let taken = sqlx::query("select party_id from party where party_id = $1 or public_key = $2")
        .bind(&party.party_id)
        .bind(&party.public_key)
        .fetch_all(&mut *conn)
        .await?;
    // The id first: a party proposed twice is the same party, not a clash
    // of keys.
    let holders = taken
        .iter()
        .map(|row| row.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(if holders.contains(&party.party_id) {
        Some(Rejection::PartyIdTaken {
            party_id: party.party_id.clone(),
        })
    } else {
        holders
            .into_iter()
            .next()
            .map(|party_id| Rejection::PartyKeyTaken { party_id })
    })
}

/// Indexes a checked `party.registered` entry at leaf `index`, with the
/// digest of its token, which [`super::apply`] checked is there.
pub(super) async fn index(
    conn: &mut AnyConnection,
    index: u64,
    party: &PartyRegistered,
    token_sha256: Option<&str>,
) -> Result<()> {
    sqlx::query("insert into party (party_id, public_key, ledger_idx) values ($1, $2, $3)")
        .bind(&party.party_id)
        .bind(&party.public_key)
        .bind(to_i64(index)?)
        .execute(&mut *conn)
        .await?;
    let digest = token_sha256.ok_or_else(|| {
        RegistryError::Corrupt(format!("party {} came without a token", party.party_id))
    })?;
    sqlx::query("insert into party_token (token_sha256, party_id) values ($1, $2)")
        .bind(digest)
        .bind(&party.party_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Registry {
    /// The party `party_id`, if it is registered.
    pub async fn party(&self, party_id: &str) -> Result<Option<PartyRecord>> {
        let row = sqlx::query(
            "select e.idx, e.leaf from party p join ledger_entry e on e.idx = p.ledger_idx \
             where p.party_id = $1",
        )
        .bind(party_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| record(row.try_get(0)?, &row.try_get::<String, _>(1)?))
            .transpose()
    }

    /// The party whose token has SHA-256 `token_sha256` (lowercase hex).
    pub async fn party_by_token(&self, token_sha256: &str) -> Result<Option<PartyRecord>> {
        let row = sqlx::query(
            "select e.idx, e.leaf from party_token t \
             join party p on p.party_id = t.party_id \
             join ledger_entry e on e.idx = p.ledger_idx \
             where t.token_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| record(row.try_get(0)?, &row.try_get::<String, _>(1)?))
            .transpose()
    }
}

fn record(idx: i64, leaf: &str) -> Result<PartyRecord> {
    match LedgerEntry::from_leaf(leaf)?.body {
        EntryBody::PartyRegistered(party) => Ok(PartyRecord {
            party,
            ledger_index: from_i64(idx)?,
        }),
        _ => Err(RegistryError::Corrupt(format!(
            "party index points at leaf {idx}, which is not a party"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::ApplyOutcome;
    use crate::party::{PartyIdentifiers, Role};
    use crate::store::tests::{apply_all, backends, registration};
    use crate::store::{Beside, RaftMarks};

    const KEY_A: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
    const KEY_B: &str = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=";

    fn party(n: u32, key: &str) -> (String, PartyRegistered) {
        let mut party = PartyRegistered::normalised(
            format!("0192f0c1-0000-7000-9000-{n:012x}"),
            &format!("Party {n}"),
            &["broadcaster".into()],
            key,
            PartyIdentifiers::default(),
        )
        .unwrap();
        // The time of the store tests' registrations, which must not be
        // later than a party applied after them.
        party.registered_at = "2026-11-21T12:00:00Z".into();
        let leaf = LedgerEntry::new(EntryBody::PartyRegistered(party.clone()))
            .to_leaf()
            .unwrap();
        (leaf, party)
    }

    async fn apply(reg: &Registry, leaves: &[(&str, Option<&str>)]) -> Vec<ApplyOutcome> {
        let mut tx = reg.begin_apply().await.unwrap();
        let leaves: Vec<_> = leaves
            .iter()
            .map(|&(leaf, token_sha256)| {
                (
                    leaf,
                    Beside {
                        prints: None,
                        token_sha256,
                    },
                )
            })
            .collect();
        let outcomes = tx.apply_leaves(&leaves).await.unwrap();
        tx.commit(&RaftMarks {
            last_applied: Some("applied".into()),
            last_membership: None,
        })
        .await
        .unwrap();
        outcomes
    }

    /// A party is found by id and by its token's digest; a second party
    /// with the same id or key is refused, as is a party without a token
    /// digest or a token beside another entry; refusals change nothing.
    #[tokio::test]
    async fn parties_are_applied_and_checked() {
        let digest_a = "a".repeat(64);
        let digest_b = "b".repeat(64);
        for (reg, db) in backends().await {
            let (leaf_a, a) = party(1, KEY_A);
            let (leaf_same_key, _) = party(2, KEY_A);
            let (leaf_b, b) = party(3, KEY_B);
            let content = registration(1).to_leaf().unwrap();
            let outcomes = apply(
                &reg,
                &[
                    (&leaf_a, Some(&digest_a)),
                    (&leaf_a, Some(&digest_b)),
                    (&leaf_same_key, Some(&digest_b)),
                    (&leaf_b, None),
                    (&leaf_b, Some("not hex")),
                    (&content, Some(&digest_b)),
                    (&leaf_b, Some(&digest_b)),
                ],
            )
            .await;
            assert_eq!(
                outcomes[0],
                ApplyOutcome::Appended {
                    index: 0,
                    tree_size: 1
                }
            );
            assert_eq!(
                outcomes[1],
                ApplyOutcome::Rejected(Rejection::PartyIdTaken {
                    party_id: a.party_id.clone()
                })
            );
            assert_eq!(
                outcomes[2],
                ApplyOutcome::Rejected(Rejection::PartyKeyTaken {
                    party_id: a.party_id.clone()
                })
            );
            for outcome in &outcomes[3..=5] {
                assert!(
                    matches!(
                        outcome,
                        ApplyOutcome::Rejected(Rejection::MalformedEntry { .. })
                    ),
                    "{outcome:?}"
                );
            }
            assert_eq!(
                outcomes[6],
                ApplyOutcome::Appended {
                    index: 1,
                    tree_size: 2
                }
            );

            let found = reg.party(&a.party_id).await.unwrap().unwrap();
            assert_eq!((found.party, found.ledger_index), (a.clone(), 0));
            let by_token = reg.party_by_token(&digest_b).await.unwrap().unwrap();
            assert_eq!(by_token.party, b);
            assert!(by_token.party.has(Role::Broadcaster));
            assert!(reg.party_by_token(&"c".repeat(64)).await.unwrap().is_none());
            db.drop_db().await;
        }
    }

    /// A snapshot carries each party's token digest beside its leaf, so a
    /// node that installs it accepts the same tokens; the digest is in no
    /// leaf.
    #[tokio::test]
    async fn snapshots_carry_token_digests() {
        let digest = "d".repeat(64);
        let mut all = backends().await;
        let (src, src_db) = all.remove(0);
        apply_all(&src, &[registration(1)]).await;
        let (leaf, party) = party(1, KEY_A);
        apply(&src, &[(&leaf, Some(&digest))]).await;
        let (marks, size) = src.snapshot_marks().await.unwrap();
        let leaves = src.snapshot_leaves(0, size).await.unwrap();
        assert_eq!(leaves[1].token_sha256.as_deref(), Some(digest.as_str()));
        assert!(!leaves.iter().any(|l| l.leaf.contains(&digest)));
        for (dst, db) in backends().await {
            let mut tx = dst.begin_install().await.unwrap();
            for leaf in &leaves {
                tx.append_snapshot_leaf(leaf).await.unwrap();
            }
            tx.commit(&marks).await.unwrap();
            let found = dst.party_by_token(&digest).await.unwrap().unwrap();
            assert_eq!(found.party, party);
            db.drop_db().await;
        }
        for (_, db) in all {
            db.drop_db().await;
        }
        src_db.drop_db().await;
    }
}
