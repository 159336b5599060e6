//! The openraft type configuration, the command it carries and the node
//! record kept in the membership.

use std::fmt;

use registry::{ApplyOutcome, LedgerEntry};
use serde::{Deserialize, Deserializer, Serialize};

/// What a client proposes through Raft: one or more leaves, each with the
/// JSON of the fingerprints to store beside it (see [`registry::Prints`]).
/// The leaves are applied in order, in one transaction, each accepted or
/// rejected on its own.
///
/// A leaf is produced once, by the proposing node, and every replica (and
/// every later rebuild from the log) appends exactly these bytes: nothing
/// re-serialises it, so replicas cannot drift apart through encoding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Command {
    /// The leaves, in the order they are applied.
    pub leaves: Vec<ProposedLeaf>,
}

/// One leaf of a [`Command`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposedLeaf {
    /// The leaf text, a JSON-encoded [`LedgerEntry`].
    pub leaf: String,
    /// The fingerprints the entry's `prints_sha256` commits to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prints: Option<String>,
    /// The SHA-256 (hex) of the bearer token of the party a
    /// `party.registered` entry registers: replicated, never in the leaf.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
}

impl ProposedLeaf {
    /// The leaf of `entry`, encoded here, once.
    pub fn new(entry: &LedgerEntry, prints: Option<String>) -> registry::Result<Self> {
        Ok(Self {
            leaf: entry.to_leaf()?,
            prints,
            token_sha256: None,
        })
    }

    /// What travels beside the leaf, as the state machine takes it.
    pub fn beside(&self) -> registry::Beside<'_> {
        registry::Beside {
            prints: self.prints.as_deref(),
            token_sha256: self.token_sha256.as_deref(),
        }
    }
}

impl Command {
    /// The command appending `entry`.
    pub fn new(entry: &LedgerEntry, prints: Option<String>) -> registry::Result<Self> {
        Ok(Self {
            leaves: vec![ProposedLeaf::new(entry, prints)?],
        })
    }

    /// Size of the command's payload in bytes, for bounds and caches.
    pub fn payload_len(&self) -> usize {
        self.leaves
            .iter()
            .map(|l| {
                l.leaf.len()
                    + l.prints.as_ref().map_or(0, String::len)
                    + l.token_sha256.as_ref().map_or(0, String::len)
            })
            .sum()
    }
}

/// Commands written to Raft logs by older builds hold one leaf, as its
/// text (`leaf`) or, older still, as the entry as a JSON value (`entry`),
/// which decodes to the leaf those builds produced when applying: `to_leaf`
/// of the same entry.
impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Wire {
            leaves: Option<Vec<ProposedLeaf>>,
            leaf: Option<String>,
            entry: Option<LedgerEntry>,
            prints: Option<String>,
        }
        let wire = Wire::deserialize(deserializer)?;
        let leaves = match (wire.leaves, wire.leaf, wire.entry) {
            (Some(leaves), None, None) if wire.prints.is_none() => leaves,
            (None, Some(leaf), None) => vec![ProposedLeaf {
                leaf,
                prints: wire.prints,
                token_sha256: None,
            }],
            (None, None, Some(entry)) => vec![ProposedLeaf {
                leaf: entry.to_leaf().map_err(serde::de::Error::custom)?,
                prints: wire.prints,
                token_sha256: None,
            }],
            _ => {
                return Err(serde::de::Error::custom(
                    "a command has either leaves, or one leaf or entry",
                ));
            }
        };
        Ok(Self { leaves })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "append {} leaves, {} bytes",
            self.leaves.len(),
            self.payload_len()
        )
    }
}

/// A member of the cluster as the membership records it: where peers reach
/// it, and the Ed25519 key it signs node-to-node messages with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerNode {
    /// The node's advertised peer URL, e.g. `https://node2.example:7443`.
    pub addr: String,
    /// The node's public key, standard base64 of the raw 32 bytes. Absent
    /// only for a node formed before nodes had keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_key: Option<String>,
}

impl fmt::Display for PeerNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

openraft::declare_raft_types!(
    /// provreg's openraft types: leaves in, apply outcomes out, nodes
    /// addressed by their peer URL and known by their node key.
    pub TypeConfig:
        D = Command,
        R = Vec<ApplyOutcome>,
        NodeId = u64,
        Node = PeerNode,
);

pub(crate) type LogId = openraft::alias::LogIdOf<TypeConfig>;
pub(crate) type Vote = openraft::alias::VoteOf<TypeConfig>;
pub(crate) type Entry = openraft::alias::EntryOf<TypeConfig>;
pub(crate) type StoredMembership = openraft::alias::StoredMembershipOf<TypeConfig>;
pub(crate) type SnapshotMeta = openraft::alias::SnapshotMetaOf<TypeConfig>;
pub(crate) type Snapshot = openraft::alias::SnapshotOf<TypeConfig, crate::snapshot::SnapshotFile>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Commands in the old forms (one entry as a value, one leaf) decode to
    /// the leaf the old apply produced; the new form round-trips byte for
    /// byte.
    #[test]
    fn old_and_new_commands_decode() {
        let leaf = r#"{"v":1,"type":"content.registered","content_id":"0192f0c1-0000-7000-8000-000000000001","registered_at":"2026-11-21T12:00:00Z","registrant":"operator","media_kind":"other","size":3,"sha256":"abababababababababababababababababababababababababababababababab","iscc":{"instance":"ISCC:IAA","data":"ISCC:GAA"},"metadata":{}}"#;
        let old = format!(r#"{{"entry":{leaf}}}"#);
        let decoded: Command = serde_json::from_str(&old).unwrap();
        assert_eq!(decoded.leaves[0].leaf, leaf);
        let single = format!(
            r#"{{"leaf":{},"prints":"{{}}"}}"#,
            serde_json::to_string(leaf).unwrap()
        );
        let decoded: Command = serde_json::from_str(&single).unwrap();
        assert_eq!(decoded.leaves[0].leaf, leaf);
        assert_eq!(decoded.leaves[0].prints.as_deref(), Some("{}"));
        // Whitespace or member order in a new command survive as sent.
        let odd = leaf.replace(",\"size\"", ", \"size\"");
        let new = serde_json::to_string(&Command {
            leaves: vec![ProposedLeaf {
                leaf: odd.clone(),
                prints: None,
                token_sha256: None,
            }],
        })
        .unwrap();
        assert_eq!(
            serde_json::from_str::<Command>(&new).unwrap().leaves[0].leaf,
            odd
        );
        assert!(serde_json::from_str::<Command>("{}").is_err());
    }
}
