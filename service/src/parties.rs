//! Registering parties and showing them.

use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use raft_store::ProposedLeaf;
use registry::intent::{IntentBody, SignedIntent, SignerKey};
use registry::party::{PartyIdentifiers, PartyKeyRotated, PartyRegistered};
use registry::{ApplyOutcome, EntryBody, LedgerEntry, PartyRecord};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::identity::token_digest;
use crate::propose::{MakeLeaf, Refused};
use crate::state::AppState;

/// The feature level that introduced `party.registered`.
const PARTY_FEATURE_LEVEL: u32 = 3;

/// `POST /v1/parties`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewParty {
    /// Its name.
    pub name: String,
    /// Its roles: `broadcaster`, `rights_holder`, `auditor`, `operator`.
    pub roles: Vec<String>,
    /// Standard base64 of its raw 32-byte Ed25519 public key.
    pub public_key: String,
    /// ISNI and IPI name number, if it has them.
    #[serde(default)]
    pub identifiers: PartyIdentifiers,
}

/// The 201 of `POST /v1/parties`: the token is shown this once.
#[derive(Debug, Serialize)]
pub struct CreatedParty {
    /// The new party's id.
    pub party_id: String,
    /// Its bearer token; the registry keeps only its SHA-256.
    pub token: String,
    /// The leaf that records it.
    pub ledger_index: u64,
}

/// A party as `GET /v1/parties/{id}` shows it.
#[derive(Debug, Serialize)]
pub struct PartyView {
    /// The party, as its leaf records it.
    #[serde(flatten)]
    pub party: PartyRegistered,
    /// The leaf that records it.
    pub ledger_index: u64,
}

impl From<PartyRecord> for PartyView {
    fn from(record: PartyRecord) -> Self {
        Self {
            party: record.party,
            ledger_index: record.ledger_index,
        }
    }
}

/// Registers a party: checks the request, makes its token, and proposes a
/// `party.registered` leaf with the token's SHA-256 beside it.
pub async fn create_party(state: &AppState, request: NewParty) -> ApiResult<CreatedParty> {
    let party = PartyRegistered::normalised(
        uuid::Uuid::now_v7().to_string(),
        &request.name,
        &request.roles,
        &request.public_key,
        request.identifiers,
    )?;
    crate::cluster::require_feature_level(state, PARTY_FEATURE_LEVEL).await?;
    let mut secret = [0u8; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| ApiError::Internal(anyhow::anyhow!("the system random source failed")))?;
    let token = BASE64_URL_SAFE_NO_PAD.encode(secret);
    let digest = hex::encode(token_digest(&token));
    let party_id = party.party_id.clone();
    let make: MakeLeaf = Box::new(move |at| {
        let mut party = party.clone();
        party.registered_at = at.to_owned();
        let mut leaf =
            ProposedLeaf::new(&LedgerEntry::new(EntryBody::PartyRegistered(party)), None)?;
        leaf.token_sha256 = Some(digest.clone());
        Ok(leaf)
    });
    let outcome = match state.proposer.propose_one(make).await {
        Ok(one) => one.outcome,
        // A fresh id: if the entry committed, the lookup finds it.
        Err(Refused::Unknown(why)) => {
            tracing::warn!(party.id = %party_id, reason = %why, "A party's outcome is unknown; looking it up.");
            state.node.linearize().await?;
            match state.registry.party(&party_id).await? {
                Some(record) => ApplyOutcome::Appended {
                    index: record.ledger_index,
                    tree_size: record.ledger_index + 1,
                },
                None => {
                    return Err(ApiError::Unavailable(
                        "the party could not be registered; retry".into(),
                    ));
                }
            }
        }
        Err(Refused::Failed(e)) => return Err(e),
    };
    match outcome {
        ApplyOutcome::Appended { index, .. } => {
            tracing::info!(party.id = %party_id, ledger.index = index, "Registered a party.");
            Ok(CreatedParty {
                party_id,
                token,
                ledger_index: index,
            })
        }
        ApplyOutcome::Rejected(rejection) => Err(rejection.into()),
        ApplyOutcome::NoLedgerChange => Err(ApiError::Internal(anyhow::anyhow!(
            "a party was applied without a ledger change"
        ))),
    }
}

/// The party `party_id`, found as [`crate::state::Applied`] finds records.
pub async fn party(state: &AppState, party_id: &str) -> ApiResult<PartyView> {
    state
        .applied()
        .find(|| state.registry.party(party_id))
        .await?
        .map(PartyView::from)
        .ok_or_else(|| ApiError::NotFound(format!("party {party_id} is not registered")))
}

/// The 200 of `POST /v1/parties/{id}/keys`.
#[derive(Debug, Serialize)]
pub struct RotatedKey {
    /// The party.
    pub party_id: String,
    /// Its key from now on.
    pub public_key: String,
    /// The `party.key_rotated` leaf.
    pub ledger_index: u64,
}

/// Replaces party `party_id`'s key on a `key.rotate` intent signed by its
/// current key and the new one. Every check apply makes is made here first,
/// for a fast answer; apply makes them again against the log.
pub async fn rotate_key(state: &AppState, party_id: &str, body: &[u8]) -> ApiResult<RotatedKey> {
    let signed = SignedIntent::parse(body)?;
    let IntentBody::KeyRotate(rotate) = &signed.intent().body else {
        return Err(crate::rights::wrong_intent(&signed, "key.rotate"));
    };
    if rotate.party_id != party_id {
        return Err(crate::rights::other_target(
            "party",
            &rotate.party_id,
            party_id,
        ));
    }
    crate::cluster::require_feature_level(state, PARTY_FEATURE_LEVEL).await?;
    crate::rights::precheck(state, &signed).await?;
    let current = party(state, party_id).await?.party.public_key;
    let current = registry::intent::decode_public_key(&current)?;
    signed.verify_signers(&[
        SignerKey::new(party_id, current),
        SignerKey::new(party_id, rotate.public_key),
    ])?;
    let public_key = BASE64_STANDARD.encode(rotate.public_key);
    let rotated = PartyKeyRotated {
        rotated_at: String::new(),
        party_id: party_id.to_owned(),
        public_key: public_key.clone(),
        intent_sha256: signed.replay_key_hex(),
        signed: signed.to_envelope(),
    };
    let make: MakeLeaf = Box::new(move |at| {
        let mut rotated = rotated.clone();
        rotated.rotated_at = at.to_owned();
        ProposedLeaf::new(&LedgerEntry::new(EntryBody::PartyKeyRotated(rotated)), None)
    });
    match crate::rights::propose_intent(state, &signed, make).await? {
        Ok(placed) => {
            tracing::info!(party.id = %party_id, ledger.index = placed.index, "Rotated a party's key.");
            Ok(RotatedKey {
                party_id: party_id.to_owned(),
                public_key,
                ledger_index: placed.index,
            })
        }
        Err(rejection) => Err(rejection.into()),
    }
}
