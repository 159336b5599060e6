//! Parties: the people and organisations that hold rights, take licences,
//! register content or audit the ledger.
//!
//! A party is recorded in the ledger (`party.registered`) with its name, its
//! roles, its Ed25519 public key and its standard identifiers, so every node
//! and every auditor knows whose signature is whose. Its bearer token is not
//! in the leaf: only the token's SHA-256 travels beside the leaf in the Raft
//! command, so that the token works on every node.

use serde::{Deserialize, Serialize};

use crate::intent::decode_public_key;
use crate::{RegistryError, Result};

/// Longest party name, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// What a party's token may do. Any party may hold rights or take licences;
/// roles gate what its token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Registers content.
    Broadcaster,
    /// Marks the party as a holder in listings.
    RightsHolder,
    /// Reads restricted views.
    Auditor,
    /// Manages parties.
    Operator,
}

impl Role {
    /// The wire name, e.g. `rights_holder`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Broadcaster => "broadcaster",
            Role::RightsHolder => "rights_holder",
            Role::Auditor => "auditor",
            Role::Operator => "operator",
        }
    }

    /// The role of a wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        [
            Role::Broadcaster,
            Role::RightsHolder,
            Role::Auditor,
            Role::Operator,
        ]
        .into_iter()
        .find(|r| r.as_str() == name)
    }
}

/// A party's standard identifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyIdentifiers {
    /// ISNI (ISO 27729), 16 characters without spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isni: Option<String>,
    /// CISAC IPI name number, 11 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipi: Option<String>,
}

impl PartyIdentifiers {
    /// Whether none is given.
    pub fn is_empty(&self) -> bool {
        self.isni.is_none() && self.ipi.is_none()
    }

    /// The identifiers in canonical form (ISNI without spaces, upper-case
    /// check character), or an error naming the one that is wrong.
    pub fn normalised(self) -> Result<Self> {
        let isni = self.isni.map(|isni| normalise_isni(&isni)).transpose()?;
        let ipi = self.ipi.map(|ipi| normalise_ipi(&ipi)).transpose()?;
        Ok(Self { isni, ipi })
    }
}

/// `party.registered`: a party as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyRegistered {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub registered_at: String,
    /// The party's id, a UUID assigned by the proposing node.
    pub party_id: String,
    /// Its name, as it asked to be known.
    pub name: String,
    /// What its token may do, ascending, each once.
    pub roles: Vec<Role>,
    /// Its Ed25519 public key: standard base64, with padding, of the raw
    /// 32 bytes. It signs the party's intents.
    pub public_key: String,
    /// Its standard identifiers.
    #[serde(default, skip_serializing_if = "PartyIdentifiers::is_empty")]
    pub identifiers: PartyIdentifiers,
}

impl PartyRegistered {
    /// Checks every field as apply does; the error names the field. The
    /// proposer builds entries with [`PartyRegistered::normalised`], so a
    /// proposed entry that fails here was not built by this code.
    pub fn check(&self) -> Result<()> {
        if !crate::intent::is_valid_id(&self.party_id) {
            return Err(RegistryError::invalid(
                "party_id",
                "must be a lowercase hyphenated UUID",
            ));
        }
        check_name(&self.name)?;
        if self.roles.is_empty() {
            return Err(RegistryError::invalid(
                "roles",
                "must name at least one role",
            ));
        }
        if self.roles.windows(2).any(|w| w[0] >= w[1]) {
            return Err(RegistryError::invalid(
                "roles",
                "must be ascending, each role once",
            ));
        }
        decode_public_key(&self.public_key)
            .map_err(|_| RegistryError::invalid("public_key", PUBLIC_KEY_RULE))?;
        if self.identifiers.clone().normalised()? != self.identifiers {
            return Err(RegistryError::invalid(
                "identifiers",
                "must be in canonical form",
            ));
        }
        Ok(())
    }

    /// A party from what a client asked for: the name trimmed, the roles
    /// sorted and deduplicated, the identifiers canonical, every field
    /// checked. The timestamp is left to the proposer.
    pub fn normalised(
        party_id: String,
        name: &str,
        roles: &[String],
        public_key: &str,
        identifiers: PartyIdentifiers,
    ) -> Result<Self> {
        let mut parsed = roles
            .iter()
            .map(|r| {
                Role::from_wire(r).ok_or_else(|| {
                    RegistryError::invalid(
                        "roles",
                        format!(
                            "{r:?} is not a role; the roles are broadcaster, rights_holder, auditor and operator"
                        ),
                    )
                })
            })
            .collect::<Result<Vec<_>>>()?;
        parsed.sort();
        parsed.dedup();
        let party = Self {
            registered_at: String::new(),
            party_id,
            name: name.trim().to_owned(),
            roles: parsed,
            public_key: public_key.to_owned(),
            identifiers: identifiers.normalised()?,
        };
        party.check()?;
        Ok(party)
    }

    /// Whether the party has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

/// `party.key_rotated`: a party's signing key replaced, on an intent of type
/// `key.rotate` that the old key and the new one both signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartyKeyRotated {
    /// When, RFC 3339 UTC, set by the proposing node.
    pub rotated_at: String,
    /// The party.
    pub party_id: String,
    /// Its new key, standard base64 of the raw 32 bytes.
    pub public_key: String,
    /// The intent's replay key: SHA-256 (hex) of the signed message.
    pub intent_sha256: String,
    /// The request body as signed, `{"intent", "signatures"}`, so that
    /// anyone can check the signatures from the log alone.
    pub signed: serde_json::Value,
}

const PUBLIC_KEY_RULE: &str =
    "must be the standard base64 (with padding) of a raw 32-byte Ed25519 public key";

fn check_name(name: &str) -> Result<()> {
    if name.trim() != name || name.is_empty() {
        return Err(RegistryError::invalid(
            "name",
            "must be non-empty, without leading or trailing spaces",
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(RegistryError::invalid(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(RegistryError::invalid(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// An ISNI without spaces: 15 digits and a check character (ISO 7064
/// MOD 11-2, `X` for ten), as ISO 27729 defines it.
fn normalise_isni(isni: &str) -> Result<String> {
    let compact: String = isni
        .chars()
        .filter(|c| *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let bad = || {
        RegistryError::invalid(
            "identifiers.isni",
            format!("{isni:?} is not an ISNI: 15 digits and a check character (0-9 or X)"),
        )
    };
    let bytes = compact.as_bytes();
    if bytes.len() != 16 || !bytes[..15].iter().all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let total = bytes[..15]
        .iter()
        .fold(0u32, |acc, d| (acc + u32::from(d - b'0')) * 2);
    let check = (12 - total % 11) % 11;
    let expected = if check == 10 {
        b'X'
    } else {
        b'0' + check as u8
    };
    if bytes[15] != expected {
        return Err(RegistryError::invalid(
            "identifiers.isni",
            format!("{isni:?} has a wrong check character"),
        ));
    }
    Ok(compact)
}

/// An IPI name number: 11 digits (shorter forms are padded with zeros on
/// the left, as CISAC writes them).
fn normalise_ipi(ipi: &str) -> Result<String> {
    let ipi = ipi.trim();
    if ipi.is_empty() || ipi.len() > 11 || !ipi.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RegistryError::invalid(
            "identifiers.ipi",
            format!("{ipi:?} is not an IPI name number: up to 11 digits"),
        ));
    }
    Ok(format!("{ipi:0>11}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";

    fn party() -> PartyRegistered {
        PartyRegistered::normalised(
            "0192f0c1-0000-7000-8000-000000000001".into(),
            "  Radio Example  ",
            &[
                "rights_holder".into(),
                "broadcaster".into(),
                "broadcaster".into(),
            ],
            KEY,
            PartyIdentifiers {
                isni: Some("0000 0001 2103 2683".into()),
                ipi: Some("254311356".into()),
            },
        )
        .unwrap()
    }

    /// A client's request is normalised: name trimmed, roles sorted once
    /// each, ISNI compact, IPI padded; the result passes apply's check.
    #[test]
    fn requests_are_normalised() {
        let party = party();
        assert_eq!(party.name, "Radio Example");
        assert_eq!(party.roles, vec![Role::Broadcaster, Role::RightsHolder]);
        assert_eq!(party.identifiers.isni.as_deref(), Some("0000000121032683"));
        assert_eq!(party.identifiers.ipi.as_deref(), Some("00254311356"));
        party.check().unwrap();
    }

    /// The leaf encoding of a party is locked.
    #[test]
    fn leaf_encoding_is_stable() {
        let mut party = party();
        party.registered_at = "2026-12-04T12:00:00Z".into();
        let leaf = crate::LedgerEntry::new(crate::EntryBody::PartyRegistered(party))
            .to_leaf()
            .unwrap();
        assert_eq!(
            leaf,
            r#"{"v":1,"type":"party.registered","registered_at":"2026-12-04T12:00:00Z","party_id":"0192f0c1-0000-7000-8000-000000000001","name":"Radio Example","roles":["broadcaster","rights_holder"],"public_key":"11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=","identifiers":{"isni":"0000000121032683","ipi":"00254311356"}}"#
        );
    }

    /// Each bad field is refused with its name.
    #[test]
    fn bad_fields_are_named() {
        let id = "0192f0c1-0000-7000-8000-000000000001".to_owned();
        let none = PartyIdentifiers::default;
        let cases: Vec<(&str, Result<PartyRegistered>)> = vec![
            (
                "name",
                PartyRegistered::normalised(id.clone(), "  ", &["auditor".into()], KEY, none()),
            ),
            (
                "name",
                PartyRegistered::normalised(
                    id.clone(),
                    &"x".repeat(201),
                    &["auditor".into()],
                    KEY,
                    none(),
                ),
            ),
            (
                "name",
                PartyRegistered::normalised(
                    id.clone(),
                    "a\u{7}b",
                    &["auditor".into()],
                    KEY,
                    none(),
                ),
            ),
            (
                "roles",
                PartyRegistered::normalised(id.clone(), "A", &[], KEY, none()),
            ),
            (
                "roles",
                PartyRegistered::normalised(id.clone(), "A", &["admin".into()], KEY, none()),
            ),
            (
                "public_key",
                PartyRegistered::normalised(id.clone(), "A", &["auditor".into()], "AAAA", none()),
            ),
            (
                "public_key",
                PartyRegistered::normalised(
                    id.clone(),
                    "A",
                    &["auditor".into()],
                    &KEY.replace('=', ""),
                    none(),
                ),
            ),
            (
                "party_id",
                PartyRegistered::normalised("X".into(), "A", &["auditor".into()], KEY, none()),
            ),
            (
                "identifiers.isni",
                PartyRegistered::normalised(
                    id.clone(),
                    "A",
                    &["auditor".into()],
                    KEY,
                    PartyIdentifiers {
                        isni: Some("0000000121032684".into()),
                        ipi: None,
                    },
                ),
            ),
            (
                "identifiers.ipi",
                PartyRegistered::normalised(
                    id.clone(),
                    "A",
                    &["auditor".into()],
                    KEY,
                    PartyIdentifiers {
                        isni: None,
                        ipi: Some("12a".into()),
                    },
                ),
            ),
        ];
        for (field, result) in cases {
            match result {
                Err(RegistryError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    /// ISNI check characters follow ISO 7064 MOD 11-2, including `X`.
    #[test]
    fn isni_check_characters() {
        assert_eq!(
            normalise_isni("0000 0001 2308 1542").unwrap(),
            "0000000123081542"
        );
        // Ten is written X, in either case.
        assert_eq!(
            normalise_isni("0000 0001 1234 567x").unwrap(),
            "000000011234567X"
        );
        assert!(normalise_isni("0000 0001 1234 5670").is_err());
        assert!(normalise_isni("0000 0001 2308 1543").is_err());
    }

    /// Apply's check refuses what the normaliser would have changed.
    #[test]
    fn check_wants_canonical_form() {
        let mut unsorted = party();
        unsorted.roles.reverse();
        assert!(unsorted.check().is_err());
        let mut spaced = party();
        spaced.identifiers.isni = Some("0000 0001 2103 2683".into());
        assert!(spaced.check().is_err());
    }
}
