//! What every entry that records a signed intent shares in apply: reading
//! the intent back from the leaf, the replay check, the log's origin, the
//! signers' current keys, and turning refusals into rejections.

use sqlx::{AnyConnection, Row};

use super::to_i64;
use crate::entry::Rejection;
use crate::intent::{IntentReason, SignedIntent, SignerKey, decode_public_key};
use crate::{RegistryError, Result};

/// The rejection of an intent the checks refused; anything other than an
/// intent's refusal means the proposer built a leaf it should not have.
pub(super) fn refusal(e: RegistryError) -> Rejection {
    match e {
        RegistryError::Intent { reason, detail } => Rejection::IntentRefused {
            rule: reason.as_str().to_owned(),
            detail,
        },
        other => Rejection::MalformedEntry {
            detail: other.to_string(),
        },
    }
}

/// A rejection by a named rule.
pub(super) fn refused(rule: &str, detail: impl Into<String>) -> Rejection {
    Rejection::IntentRefused {
        rule: rule.to_owned(),
        detail: detail.into(),
    }
}

/// A rejection of a leaf its proposer should not have built.
pub(super) fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection::MalformedEntry {
        detail: detail.into(),
    }
}

/// The signed intent a leaf records, parsed again from the leaf exactly as
/// a client's body is, if its replay key is the one the leaf states and it
/// was never applied before.
pub(super) async fn recorded(
    conn: &mut AnyConnection,
    signed: &serde_json::Value,
    intent_sha256: &str,
) -> Result<Result<SignedIntent, Rejection>> {
    let body = match serde_json::to_vec(signed) {
        Ok(body) => body,
        Err(e) => {
            return Ok(Err(malformed(format!(
                "the signed intent does not encode: {e}"
            ))));
        }
    };
    let signed = match SignedIntent::parse(&body) {
        Ok(signed) => signed,
        Err(e) => return Ok(Err(refusal(e))),
    };
    if signed.replay_key_hex() != intent_sha256 {
        return Ok(Err(malformed(
            "intent_sha256 is not the SHA-256 of the signed message",
        )));
    }
    if applied(conn, intent_sha256).await? {
        return Ok(Err(refused(
            IntentReason::Replayed.as_str(),
            format!("intent {intent_sha256} was applied before"),
        )));
    }
    Ok(Ok(signed))
}

/// The log's origin, from `cluster.formed`; empty on a ledger begun before
/// clusters were, which no intent can name.
pub(super) async fn origin(conn: &mut AnyConnection) -> Result<String> {
    Ok(sqlx::query("select origin from cluster_info where id = 1")
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.try_get::<String, _>(0))
        .transpose()?
        .unwrap_or_default())
}

/// Whether an intent with this replay key was applied.
pub(super) async fn applied(conn: &mut AnyConnection, replay_key: &str) -> Result<bool> {
    let row = sqlx::query("select 1 from intent_applied where replay_key = $1")
        .bind(replay_key)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.is_some())
}

/// Records that the intent with this replay key was applied at `index`.
pub(super) async fn mark_applied(
    conn: &mut AnyConnection,
    replay_key: &str,
    index: u64,
) -> Result<()> {
    sqlx::query("insert into intent_applied (replay_key, ledger_idx) values ($1, $2)")
        .bind(replay_key)
        .bind(to_i64(index)?)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Party `party_id`'s current key, if it is registered.
pub(super) async fn current_key(
    conn: &mut AnyConnection,
    party_id: &str,
) -> Result<Option<[u8; 32]>> {
    let row = sqlx::query("select public_key from party where party_id = $1")
        .bind(party_id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let key: String = row.try_get(0)?;
    decode_public_key(&key).map(Some).map_err(|_| {
        RegistryError::Corrupt(format!("party {party_id}'s stored key does not decode"))
    })
}

/// Each of `parties` with its current key, as required signers; a party
/// that is not registered is named.
pub(super) async fn signers(
    conn: &mut AnyConnection,
    parties: &[&str],
) -> Result<Result<Vec<SignerKey>, Rejection>> {
    let mut required = Vec::new();
    for &party_id in parties {
        match current_key(conn, party_id).await? {
            Some(key) => required.push(SignerKey::new(party_id, key)),
            None => {
                return Ok(Err(Rejection::UnknownParty {
                    party_id: party_id.to_owned(),
                }));
            }
        }
    }
    Ok(Ok(required))
}
