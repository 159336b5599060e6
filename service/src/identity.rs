//! The node's secrets and cluster identity: its checkpoint signing key, its
//! node key (signing node-to-node messages), the operator token, and the
//! record of which cluster it belongs to.
//!
//! The secrets are created on first start, readable by the owner only, and
//! reused on every later start. None is ever logged; only their paths are.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::prelude::{BASE64_STANDARD, BASE64_URL_SAFE_NO_PAD};
use registry::checkpoint::LogSigner;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};

/// File name of the Ed25519 signing key (PKCS#8) in the data dir.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the operator token in the data dir.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";
/// File name of the node key (Ed25519, PKCS#8) in the data dir.
pub const NODE_KEY_FILE: &str = "node.key";
/// File name of the cluster record in the data dir.
pub const CLUSTER_FILE: &str = "cluster.json";

/// The node's secrets, loaded.
pub struct Identity {
    /// The checkpoint key, PKCS#8; the signer is made from it once the
    /// log's origin is known (a joining node learns it when admitted).
    pub checkpoint_pkcs8: Vec<u8>,
    /// The node key, PKCS#8: signs node-to-node messages.
    pub node_pkcs8: Vec<u8>,
    /// Its public half, standard base64 of the raw 32 bytes.
    node_public_key: String,
    /// SHA-256 of the operator token; requests are compared against this so
    /// the token itself is not kept in memory longer than start-up.
    pub operator_token_digest: [u8; 32],
    /// Where the key is.
    pub key_path: PathBuf,
    /// Where the token is.
    pub token_path: PathBuf,
}

impl Identity {
    /// Loads the keys and token from `data_dir`, creating any that is
    /// missing.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Self> {
        let key_path = data_dir.join(SIGNING_KEY_FILE);
        let checkpoint_pkcs8 = read_or_create(&key_path, || Ok(LogSigner::generate_pkcs8()?))?;
        // Fail now, not when the first checkpoint is signed.
        LogSigner::from_pkcs8("check", &checkpoint_pkcs8)
            .with_context(|| format!("loading the signing key {}", key_path.display()))?;

        let node_key_path = data_dir.join(NODE_KEY_FILE);
        let node_pkcs8 = read_or_create(&node_key_path, || Ok(LogSigner::generate_pkcs8()?))?;
        let node_key = Ed25519KeyPair::from_pkcs8(&node_pkcs8).map_err(|e| {
            anyhow::anyhow!("loading the node key {}: {e}", node_key_path.display())
        })?;
        let node_public_key = BASE64_STANDARD.encode(node_key.public_key().as_ref());

        let token_path = data_dir.join(OPERATOR_TOKEN_FILE);
        let token = read_or_create(&token_path, || {
            let mut bytes = [0u8; 32];
            SystemRandom::new()
                .fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("the system random source failed"))?;
            Ok(format!("{}\n", BASE64_URL_SAFE_NO_PAD.encode(bytes)).into_bytes())
        })?;
        let token = String::from_utf8(token).context("the operator token file is not UTF-8")?;
        let token = token.trim();
        if token.len() < 16 {
            bail!(
                "the operator token in {} is shorter than 16 characters",
                token_path.display()
            );
        }
        Ok(Self {
            checkpoint_pkcs8,
            node_pkcs8,
            node_public_key,
            operator_token_digest: token_digest(token),
            key_path,
            token_path,
        })
    }
}

impl Identity {
    /// The node key's public half, standard base64 of the raw 32 bytes, as
    /// the membership records it.
    pub fn node_public_key(&self) -> String {
        self.node_public_key.clone()
    }

    /// The checkpoint signer for the log called `origin`.
    pub fn signer(&self, origin: &str) -> anyhow::Result<LogSigner> {
        LogSigner::from_pkcs8(origin, &self.checkpoint_pkcs8)
            .with_context(|| format!("making the checkpoint signer for {origin:?}"))
    }
}

/// Which cluster this node belongs to: written when it forms a cluster or
/// is admitted to one, and never changed after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The cluster's id, fixed when it was formed.
    pub cluster_id: String,
    /// The log's origin, fixed when the cluster was formed.
    pub origin: String,
    /// Identifies the cluster secret this node was admitted with (a MAC of
    /// a fixed label under the secret), so that a restart with another
    /// cluster's secret is refused. `None` for a node that formed its
    /// cluster without a secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_id: Option<String>,
    /// The members' node keys when this node was admitted, by id: whom to
    /// believe until the replicated membership reaches this node.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub admitted_by: std::collections::BTreeMap<u64, raft_store::PeerNode>,
}

impl ClusterRecord {
    /// Reads the record from `data_dir`, if the node has one.
    pub fn load(data_dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = data_dir.join(CLUSTER_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Writes the record to `data_dir`, durably: a node that answered an
    /// admission must still know its cluster after a crash.
    pub fn save(&self, data_dir: &Path) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        write_atomically(&data_dir.join(CLUSTER_FILE), &bytes)
    }
}

/// SHA-256 of a presented token, for comparison with the stored digest.
/// Comparing digests keeps the comparison's timing independent of how much
/// of the real token a guess got right.
pub fn token_digest(token: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest(&SHA256, token.as_bytes()).as_ref());
    out
}

/// Reads `path`, or creates it with `make()`'s bytes and mode 0600.
fn read_or_create(
    path: &Path,
    make: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<Vec<u8>> {
    match File::open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes)
                .with_context(|| format!("reading {}", path.display()))?;
            return Ok(bytes);
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    }
    let bytes = make()?;
    write_atomically(path, &bytes)?;
    Ok(bytes)
}

/// Writes `bytes` to `path` with mode 0600, atomically and durably.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    // Written to a temporary name and renamed, so a crash mid-write never
    // leaves a truncated file that would make the next start fail.
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
    if let Some(dir) = path.parent() {
        // The rename must survive a power cut too.
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// First load creates both files with mode 0600; the second reuses them.
    #[test]
    fn created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path()).unwrap();
        for file in [SIGNING_KEY_FILE, NODE_KEY_FILE, OPERATOR_TOKEN_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let second = Identity::load_or_create(dir.path()).unwrap();
        assert_eq!(first.checkpoint_pkcs8, second.checkpoint_pkcs8);
        assert_eq!(first.node_public_key(), second.node_public_key());
        assert_eq!(first.operator_token_digest, second.operator_token_digest);
        let token = std::fs::read_to_string(dir.path().join(OPERATOR_TOKEN_FILE)).unwrap();
        assert_eq!(token_digest(token.trim()), first.operator_token_digest);
    }
}
