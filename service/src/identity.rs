//! The node's secrets: its checkpoint signing key and the operator token.
//!
//! Both are created on first start, readable by the owner only, and reused on
//! every later start. Neither is ever logged; only their paths are.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use base64::Engine;
use base64::prelude::BASE64_URL_SAFE_NO_PAD;
use registry::checkpoint::LogSigner;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};

/// File name of the Ed25519 signing key (PKCS#8) in the data dir.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the operator token in the data dir.
pub const OPERATOR_TOKEN_FILE: &str = "operator.token";

/// The node's secrets, loaded.
pub struct Identity {
    /// Signs checkpoints.
    pub signer: LogSigner,
    /// SHA-256 of the operator token; requests are compared against this so
    /// the token itself is not kept in memory longer than start-up.
    pub operator_token_digest: [u8; 32],
    /// Where the key is.
    pub key_path: PathBuf,
    /// Where the token is.
    pub token_path: PathBuf,
}

impl Identity {
    /// Loads the key and token from `data_dir`, creating either if missing.
    pub fn load_or_create(data_dir: &Path, origin: &str) -> anyhow::Result<Self> {
        let key_path = data_dir.join(SIGNING_KEY_FILE);
        let pkcs8 = read_or_create(&key_path, || Ok(LogSigner::generate_pkcs8()?))?;
        let signer = LogSigner::from_pkcs8(origin, &pkcs8)
            .with_context(|| format!("loading the signing key {}", key_path.display()))?;

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
            signer,
            operator_token_digest: token_digest(token),
            key_path,
            token_path,
        })
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
    // Written to a temporary name and renamed, so a crash mid-write never
    // leaves a truncated key that would make the next start fail.
    let tmp = path.with_extension("tmp");
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("creating {}", path.display()))?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// First load creates both files with mode 0600; the second reuses them.
    #[test]
    fn created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity::load_or_create(dir.path(), "provreg.local/log").unwrap();
        for file in [SIGNING_KEY_FILE, OPERATOR_TOKEN_FILE] {
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        let second = Identity::load_or_create(dir.path(), "provreg.local/log").unwrap();
        assert_eq!(first.signer.verifier_key(), second.signer.verifier_key());
        assert_eq!(first.operator_token_digest, second.operator_token_digest);
        let token = std::fs::read_to_string(dir.path().join(OPERATOR_TOKEN_FILE)).unwrap();
        assert_eq!(token_digest(token.trim()), first.operator_token_digest);
    }
}
