//! The party aggregate: parties as recorded in the ledger, their keys and
//! the digests of their tokens. Checked and indexed by the apply
//! transaction; read by the service to authenticate and to answer.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use time::OffsetDateTime;

use super::{Registry, from_i64, signed, to_i64};
use crate::entry::{EntryBody, LedgerEntry, Rejection};
use crate::intent::{IntentBody, SignerKey, decode_public_key};
use crate::party::{PartyKeyRotated, PartyRegistered};
use crate::{RegistryError, Result};

/// A party as recorded, with the leaf that records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyRecord {
    /// The party as registered; its `public_key` is its current key (the
    /// registered one, or the last rotated to).
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
    let taken = sqlx::query(
        "select party_id from party where party_id = $1 \
         union all select party_id from party_key where public_key = $2",
    )
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
    insert_key(conn, &party.public_key, &party.party_id, index).await?;
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

async fn insert_key(
    conn: &mut AnyConnection,
    public_key: &str,
    party_id: &str,
    index: u64,
) -> Result<()> {
    sqlx::query("insert into party_key (public_key, party_id, ledger_idx) values ($1, $2, $3)")
        .bind(public_key)
        .bind(party_id)
        .bind(to_i64(index)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Checks a `party.key_rotated` entry stamped `at` against the state so
/// far: the recorded intent must be a `key.rotate` of this party to this
/// key, for this log, unexpired at `at`, never applied before, and signed
/// by exactly the party's current key and the new one; the new key must
/// never have been any party's.
pub(super) async fn check_rotation(
    conn: &mut AnyConnection,
    rotated: &PartyKeyRotated,
    at: OffsetDateTime,
) -> Result<Option<Rejection>> {
    let signed = match signed::recorded(conn, &rotated.signed, &rotated.intent_sha256).await? {
        Ok(signed) => signed,
        Err(rejection) => return Ok(Some(rejection)),
    };
    let new_key = match decode_public_key(&rotated.public_key) {
        Ok(key) => key,
        Err(e) => return Ok(Some(signed::malformed(e.to_string()))),
    };
    match &signed.intent().body {
        IntentBody::KeyRotate(rotate)
            if rotate.party_id == rotated.party_id && rotate.public_key == new_key => {}
        _ => {
            return Ok(Some(signed::malformed(
                "the signed intent is not a key.rotate of this party to this key",
            )));
        }
    }
    let Some(current) = signed::current_key(conn, &rotated.party_id).await? else {
        return Ok(Some(Rejection::UnknownParty {
            party_id: rotated.party_id.clone(),
        }));
    };
    if let Some(holder) = key_holder(conn, &rotated.public_key).await? {
        return Ok(Some(Rejection::PartyKeyTaken { party_id: holder }));
    }
    let origin = signed::origin(conn).await?;
    let required = [
        SignerKey::new(rotated.party_id.clone(), current),
        SignerKey::new(rotated.party_id.clone(), new_key),
    ];
    Ok(signed
        .check(&origin, at, &required)
        .err()
        .map(signed::refusal))
}

/// Indexes a checked `party.key_rotated` entry at leaf `index`.
pub(super) async fn index_rotation(
    conn: &mut AnyConnection,
    index: u64,
    rotated: &PartyKeyRotated,
) -> Result<()> {
    sqlx::query("update party set public_key = $1 where party_id = $2")
        .bind(&rotated.public_key)
        .bind(&rotated.party_id)
        .execute(&mut *conn)
        .await?;
    insert_key(conn, &rotated.public_key, &rotated.party_id, index).await?;
    signed::mark_applied(conn, &rotated.intent_sha256, index).await
}

/// Whether party `party_id` is registered.
pub(super) async fn exists(conn: &mut AnyConnection, party_id: &str) -> Result<bool> {
    let row = sqlx::query("select 1 from party where party_id = $1")
        .bind(party_id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

async fn key_holder(conn: &mut AnyConnection, public_key: &str) -> Result<Option<String>> {
    let row = sqlx::query("select party_id from party_key where public_key = $1")
        .bind(public_key)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

impl Registry {
    /// The leaf index of the entry that applied the intent with this
    /// replay key (lowercase hex), if one did.
    pub async fn intent_applied(&self, replay_key: &str) -> Result<Option<u64>> {
        let row = sqlx::query("select ledger_idx from intent_applied where replay_key = $1")
            .bind(replay_key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| from_i64(row.try_get(0)?)).transpose()
    }

    /// The party `party_id`, if it is registered.
    pub async fn party(&self, party_id: &str) -> Result<Option<PartyRecord>> {
        let row = sqlx::query(
            "select e.idx, e.leaf, p.public_key from party p \
             join ledger_entry e on e.idx = p.ledger_idx where p.party_id = $1",
        )
        .bind(party_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }

    /// The party whose token has SHA-256 `token_sha256` (lowercase hex).
    pub async fn party_by_token(&self, token_sha256: &str) -> Result<Option<PartyRecord>> {
        let row = sqlx::query(
            "select e.idx, e.leaf, p.public_key from party_token t \
             join party p on p.party_id = t.party_id \
             join ledger_entry e on e.idx = p.ledger_idx \
             where t.token_sha256 = $1",
        )
        .bind(token_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(record).transpose()
    }
}

/// A party from a row of its leaf's index, the leaf and its current key.
fn record(row: &AnyRow) -> Result<PartyRecord> {
    let idx: i64 = row.try_get(0)?;
    let leaf: String = row.try_get(1)?;
    let public_key: String = row.try_get(2)?;
    match LedgerEntry::from_leaf(&leaf)?.body {
        EntryBody::PartyRegistered(party) => Ok(PartyRecord {
            party: PartyRegistered {
                public_key,
                ..party
            },
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
    use crate::intent::SignedIntent;
    use crate::party::{PartyIdentifiers, Role};
    use crate::store::tests::{
        apply_all, apply_leaves as apply, backends, install, read_snapshot, registration,
    };

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

    /// A rotation applies once: it moves the party's current key (also
    /// after a snapshot install), and the same signed intent again is a
    /// replay; a rotation signed with a stale key, or for another log, is
    /// refused with the rule's name, deterministically in apply.
    #[tokio::test]
    async fn key_rotations_are_checked_when_applied() {
        use base64::Engine;
        use base64::prelude::BASE64_STANDARD;
        use ring::signature::{Ed25519KeyPair, KeyPair};
        let pair = |seed: u8| Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap();
        let public = |pair: &Ed25519KeyPair| BASE64_STANDARD.encode(pair.public_key().as_ref());
        let (k1, k2, k3) = (pair(1), pair(2), pair(3));
        let founder = crate::store::tests::node_record(1, &k3);
        let formed = LedgerEntry::new(EntryBody::ClusterFormed(crate::ClusterFormed {
            formed_at: "2026-11-21T12:00:00Z".into(),
            cluster_id: "0192f0c1-0000-7000-8000-0000000000c1".into(),
            origin: "provreg.example/log".into(),
            founder,
        }))
        .to_leaf()
        .unwrap();
        let (party_leaf, party) = party(1, &public(&k1));
        let rotation = |log: &str, to: &Ed25519KeyPair, signers: &[&Ed25519KeyPair]| {
            let intent = serde_json::json!({
                "type": "key.rotate", "log": log, "nonce": "00".repeat(16),
                "expires_at": "2026-11-21T13:00:00Z",
                "party_id": party.party_id, "public_key": public(to),
            });
            let message = crate::intent::signing_message(&intent).unwrap();
            let signatures: Vec<_> = signers
                .iter()
                .map(|k| {
                    serde_json::json!({"party_id": party.party_id, "public_key": public(k),
                        "signature": BASE64_STANDARD.encode(k.sign(&message).as_ref())})
                })
                .collect();
            let body = serde_json::json!({"intent": intent, "signatures": signatures});
            let signed = SignedIntent::parse(body.to_string().as_bytes()).unwrap();
            LedgerEntry::new(EntryBody::PartyKeyRotated(PartyKeyRotated {
                rotated_at: "2026-11-21T12:00:00Z".into(),
                party_id: party.party_id.clone(),
                public_key: public(to),
                intent_sha256: signed.replay_key_hex(),
                signed: signed.to_envelope(),
            }))
            .to_leaf()
            .unwrap()
        };
        let to_k2 = rotation("provreg.example/log", &k2, &[&k1, &k2]);
        let elsewhere = rotation("other.example/log", &k3, &[&k1, &k3]);
        let stale = rotation("provreg.example/log", &k3, &[&k1, &k3]);
        let digest = "e".repeat(64);
        for (reg, db) in backends().await {
            let outcomes = apply(
                &reg,
                &[
                    (&formed, None),
                    (&party_leaf, Some(&digest)),
                    (&elsewhere, None),
                    (&to_k2, None),
                    (&to_k2, None),
                    (&stale, None),
                ],
            )
            .await;
            let reasons: Vec<String> = outcomes[2..]
                .iter()
                .map(|o| match o {
                    ApplyOutcome::Rejected(Rejection::IntentRefused { rule, .. }) => rule.clone(),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(
                reasons,
                [
                    "wrong-log",
                    "Appended { index: 2, tree_size: 3 }",
                    "replayed-intent",
                    "unexpected-signer"
                ]
            );
            let current = reg.party(&party.party_id).await.unwrap().unwrap();
            assert_eq!(current.party.public_key, public(&k2));

            let snapshot = read_snapshot(&reg).await;
            for (dst, dst_db) in backends().await {
                install(&dst, &snapshot).await;
                let installed = dst.party(&party.party_id).await.unwrap().unwrap();
                assert_eq!(installed.party.public_key, public(&k2));
                assert!(dst.party_by_token(&digest).await.unwrap().is_some());
                dst_db.drop_db().await;
            }
            db.drop_db().await;
        }
    }

    /// Apply refuses first holders that are not registered parties or not
    /// in their stored form, whatever the proposer checked.
    #[tokio::test]
    async fn holders_are_checked_when_applied() {
        let digest = "f".repeat(64);
        let (party_leaf, party) = party(1, KEY_A);
        let with_holders = |n: u32, holders: Vec<crate::Holder>| {
            let mut entry = registration(n);
            if let EntryBody::ContentRegistered(reg) = &mut entry.body {
                reg.metadata.holders = holders;
            }
            entry.to_leaf().unwrap()
        };
        let holder = |party_id: &str, share_bp| crate::Holder {
            party_id: party_id.to_owned(),
            share_bp,
        };
        let held = with_holders(1, vec![holder(&party.party_id, 10_000)]);
        let stranger = with_holders(
            2,
            vec![holder("0192f0c1-0000-7000-8000-000000000099", 10_000)],
        );
        let half = with_holders(3, vec![holder(&party.party_id, 5_000)]);
        for (reg, db) in backends().await {
            let outcomes = apply(
                &reg,
                &[
                    (&party_leaf, Some(&digest)),
                    (&held, None),
                    (&stranger, None),
                    (&half, None),
                ],
            )
            .await;
            assert_eq!(
                outcomes[1],
                ApplyOutcome::Appended {
                    index: 1,
                    tree_size: 2
                }
            );
            assert!(
                matches!(
                    &outcomes[2],
                    ApplyOutcome::Rejected(Rejection::UnknownParty { .. })
                ),
                "{:?}",
                outcomes[2]
            );
            assert!(
                matches!(
                    &outcomes[3],
                    ApplyOutcome::Rejected(Rejection::MalformedEntry { .. })
                ),
                "{:?}",
                outcomes[3]
            );
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
        let snapshot = read_snapshot(&src).await;
        let leaves = &snapshot.1;
        assert_eq!(leaves[1].token_sha256.as_deref(), Some(digest.as_str()));
        assert!(!leaves.iter().any(|l| l.leaf.contains(&digest)));
        for (dst, db) in backends().await {
            install(&dst, &snapshot).await;
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
