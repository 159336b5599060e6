//! `provreg verify`: offline checking of a registration receipt.

use std::io::Read;
use std::path::Path;

use anyhow::{Context, bail, ensure};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use registry::checkpoint::verify_checkpoint;
use registry::merkle::{decode_hash, leaf_hash, verify_inclusion};
use registry::{EntryBody, LedgerEntry};
use ring::digest::{Context as Sha, SHA256};

use crate::config::VerifyArgs;
use crate::views::RegistrationReceipt;

/// Checks the receipt and returns a one-line summary of what was proven.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<String> {
    let text = if args.receipt == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.receipt)
            .with_context(|| format!("reading {}", args.receipt.display()))?
    };
    let receipt: RegistrationReceipt =
        serde_json::from_str(&text).context("the receipt is not a registration receipt")?;
    let ledger = &receipt.ledger;

    let checkpoint = verify_checkpoint(&ledger.checkpoint, &args.key)
        .context("checking the checkpoint signature")?;
    ensure!(
        checkpoint.head.size == ledger.tree_size,
        "the checkpoint is for tree size {}, the proof for {}",
        checkpoint.head.size,
        ledger.tree_size
    );
    ensure!(
        decode_hash(&ledger.root_hash)? == checkpoint.head.root,
        "the receipt's root hash is not the signed one"
    );

    let leaf = BASE64_STANDARD
        .decode(&ledger.leaf)
        .context("the leaf is not base64")?;
    let proof = ledger
        .inclusion_proof
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(
        leaf_hash(&leaf),
        ledger.index,
        ledger.tree_size,
        &proof,
        checkpoint.head.root,
    )
    .context("checking the inclusion proof")?;

    let leaf = std::str::from_utf8(&leaf).context("the leaf is not UTF-8")?;
    let EntryBody::ContentRegistered(reg) = LedgerEntry::from_leaf(leaf)?.body else {
        bail!("the proven leaf is not a content registration");
    };
    ensure!(
        reg.content_id == receipt.content.content_id && reg.sha256 == receipt.content.sha256,
        "the proven leaf registers {} ({}), not the receipt's {}",
        reg.content_id,
        reg.sha256,
        receipt.content.content_id
    );

    if let Some(path) = &args.file {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut sha = Sha::new(&SHA256);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            sha.update(&buf[..n]);
        }
        let got = hex::encode(sha.finish());
        if got != reg.sha256 {
            bail!(
                "{} has SHA-256 {got}, the registered file has {}",
                path.display(),
                reg.sha256
            );
        }
    }

    Ok(format!(
        "OK: content {} is leaf {} of the {}-leaf log {} (root {})",
        reg.content_id, ledger.index, ledger.tree_size, checkpoint.origin, ledger.root_hash
    ))
}
