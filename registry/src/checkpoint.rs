//! Signed checkpoints: the log's tree head as a C2SP tlog-checkpoint inside a
//! C2SP signed note, and the node's Ed25519 key that signs it.
//!
//! Note parsing and verification use `signed_note`; checkpoint bodies use
//! `tlog_tiles`. Signing uses `ring`, which holds the node's key.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use signed_note::{Note, StandardVerifier, VerifierList};

use crate::merkle::Hash;
use crate::{RegistryError, Result};

/// The signed-note algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;

/// A tree head: how many leaves the log has and the root over them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TreeHead {
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root hash over those leaves.
    pub root: Hash,
}

/// A checkpoint read back from a verified note.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCheckpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree head it commits to.
    pub head: TreeHead,
}

/// The node's checkpoint signer: an Ed25519 key under a note key name, which
/// is the log's origin as C2SP tlog-checkpoint recommends.
pub struct LogSigner {
    name: String,
    key_id: u32,
    pair: Ed25519KeyPair,
    /// The last checkpoint signed: the receipts of one Raft command are for
    /// the same tree, and Ed25519 signatures are deterministic, so it is
    /// signed once.
    last: std::sync::Mutex<Option<(TreeHead, String)>>,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("LogSigner")
            .field("name", &self.name)
            .field("key_id", &format_args!("{:08x}", self.key_id))
            .finish_non_exhaustive()
    }
}

impl LogSigner {
    /// Makes a new random Ed25519 key, as a PKCS#8 document to store.
    pub fn generate_pkcs8() -> Result<Vec<u8>> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| RegistryError::Crypto("the system random source failed".into()))?;
        Ok(doc.as_ref().to_vec())
    }

    /// Loads a signer from a stored PKCS#8 key, to sign under `origin`.
    pub fn from_pkcs8(origin: &str, pkcs8: &[u8]) -> Result<Self> {
        if !signed_note::is_key_name_valid(origin) {
            return Err(RegistryError::invalid(
                "origin",
                "must be non-empty with no spaces or '+' (it names the signing key)",
            ));
        }
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| RegistryError::Crypto(format!("not an Ed25519 PKCS#8 key: {e}")))?;
        let key_id = signed_note::key_id(origin, &encoded_public_key(&pair));
        Ok(Self {
            name: origin.to_owned(),
            key_id,
            pair,
            last: std::sync::Mutex::new(None),
        })
    }

    /// The origin this signer signs for.
    pub fn origin(&self) -> &str {
        &self.name
    }

    /// The note verifier key: `<name>+<8 hex key id>+<base64(0x01 || public key)>`.
    pub fn verifier_key(&self) -> String {
        format!(
            "{}+{:08x}+{}",
            self.name,
            self.key_id,
            BASE64_STANDARD.encode(encoded_public_key(&self.pair))
        )
    }

    /// The signed checkpoint note for `head`: origin, size and base64 root,
    /// then a blank line and this node's signature line.
    pub fn sign_checkpoint(&self, head: &TreeHead) -> Result<String> {
        if let Ok(last) = self.last.lock()
            && let Some((signed, note)) = last.as_ref()
            && signed == head
        {
            return Ok(note.clone());
        }
        let note = self.sign_new(head)?;
        if let Ok(mut last) = self.last.lock() {
            *last = Some((*head, note.clone()));
        }
        Ok(note)
    }

    fn sign_new(&self, head: &TreeHead) -> Result<String> {
        // The origin was checked when the signer was made and there are no
        // extension lines, so a failure here is a bug, not bad input.
        let body = tlog_tiles::Checkpoint::new(&self.name, head.size, head.root, "")
            .map_err(|e| RegistryError::Corrupt(format!("building a checkpoint: {e}")))?;
        let mut note = Note::new(&body.to_bytes(), &[])
            .map_err(|e| RegistryError::Corrupt(format!("checkpoint note: {e}")))?;
        note.add_sigs(&[self])
            .map_err(|e| RegistryError::Crypto(format!("signing the checkpoint: {e}")))?;
        String::from_utf8(note.to_bytes())
            .map_err(|e| RegistryError::Corrupt(format!("checkpoint note is not UTF-8: {e}")))
    }
}

impl signed_note::Signer for LogSigner {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.key_id
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, signature::Error> {
        Ok(self.pair.sign(msg).as_ref().to_vec())
    }
}

fn encoded_public_key(pair: &Ed25519KeyPair) -> Vec<u8> {
    let mut key = vec![ALG_ED25519];
    key.extend_from_slice(pair.public_key().as_ref());
    key
}

/// Verifies a signed checkpoint note against one verifier key and returns
/// what it commits to. Fails if the note is malformed, carries no valid
/// signature by that key, or its body is not a checkpoint for the key's name.
pub fn verify_checkpoint(note_text: &str, verifier_key: &str) -> Result<VerifiedCheckpoint> {
    let verifier = StandardVerifier::new(verifier_key.trim())
        .map_err(|e| RegistryError::invalid("verifier key", e.to_string()))?;
    let name = signed_note::Verifier::name(&verifier).to_owned();
    let note = Note::from_bytes(note_text.as_bytes())
        .map_err(|e| RegistryError::invalid("checkpoint", e.to_string()))?;
    let (verified, _unverified) = note
        .verify(&VerifierList::new(vec![Box::new(verifier)]))
        .map_err(|e| RegistryError::invalid("checkpoint", e.to_string()))?;
    if verified.is_empty() {
        return Err(RegistryError::invalid(
            "checkpoint",
            "no signature by the given key",
        ));
    }
    let body = tlog_tiles::Checkpoint::from_bytes(note.text())
        .map_err(|e| RegistryError::invalid("checkpoint", e.to_string()))?;
    if body.origin() != name {
        return Err(RegistryError::invalid(
            "checkpoint",
            format!(
                "origin {:?} does not match key name {name:?}",
                body.origin()
            ),
        ));
    }
    Ok(VerifiedCheckpoint {
        origin: body.origin().to_owned(),
        head: TreeHead {
            size: body.size(),
            root: *body.hash(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{EMPTY_ROOT, encode_hash};

    fn signer() -> LogSigner {
        LogSigner::from_pkcs8("provreg.local/log", &LogSigner::generate_pkcs8().unwrap()).unwrap()
    }

    /// The note text is exactly the C2SP layout: origin, size, base64 root,
    /// blank line, one em-dash signature line naming the key.
    #[test]
    fn checkpoint_layout() {
        let s = signer();
        let head = TreeHead {
            size: 0,
            root: EMPTY_ROOT,
        };
        let note = s.sign_checkpoint(&head).unwrap();
        let lines: Vec<&str> = note.split('\n').collect();
        assert_eq!(lines[0], "provreg.local/log");
        assert_eq!(lines[1], "0");
        assert_eq!(lines[2], "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(lines[2], encode_hash(&EMPTY_ROOT));
        assert_eq!(lines[3], "");
        assert!(
            lines[4].starts_with("\u{2014} provreg.local/log "),
            "{}",
            lines[4]
        );
        assert_eq!(lines[5], "");
        assert_eq!(lines.len(), 6);
        // 4-byte key id + 64-byte signature.
        let sig = lines[4].rsplit(' ').next().unwrap();
        assert_eq!(BASE64_STANDARD.decode(sig).unwrap().len(), 68);
    }

    /// The verifier key has the signed-note shape and its key id is the one
    /// in the signature line; a signed checkpoint verifies with it.
    #[test]
    fn sign_then_verify() {
        let s = signer();
        let vkey = s.verifier_key();
        let parts: Vec<&str> = vkey.splitn(3, '+').collect();
        assert_eq!(parts[0], "provreg.local/log");
        assert_eq!(parts[1].len(), 8);
        let key = BASE64_STANDARD.decode(parts[2]).unwrap();
        assert_eq!(key.len(), 33);
        assert_eq!(key[0], 0x01);

        let head = TreeHead {
            size: 7,
            root: Hash([7; 32]),
        };
        let note = s.sign_checkpoint(&head).unwrap();
        let got = verify_checkpoint(&note, &vkey).unwrap();
        assert_eq!(got.head, head);
        assert_eq!(got.origin, "provreg.local/log");
    }

    /// A changed size, a changed root or another key's signature all fail.
    #[test]
    fn tampering_is_detected() {
        let s = signer();
        let head = TreeHead {
            size: 7,
            root: Hash([7; 32]),
        };
        let note = s.sign_checkpoint(&head).unwrap();
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(verify_checkpoint(&tampered, &s.verifier_key()).is_err());
        let other = signer();
        assert!(verify_checkpoint(&note, &other.verifier_key()).is_err());
    }

    /// Origins that cannot be key names are refused up front.
    #[test]
    fn bad_origin() {
        let key = LogSigner::generate_pkcs8().unwrap();
        assert!(LogSigner::from_pkcs8("has space", &key).is_err());
        assert!(LogSigner::from_pkcs8("a+b", &key).is_err());
        assert!(LogSigner::from_pkcs8("", &key).is_err());
    }
}
