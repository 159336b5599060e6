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
use crate::views::{Evidence, RegistrationReceipt};

/// Checks the receipt, or the evidence of a query's answer, and returns a
/// one-line summary of what was proven.
pub fn verify(args: &VerifyArgs) -> anyhow::Result<String> {
    let text = if args.receipt == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(&args.receipt)
            .with_context(|| format!("reading {}", args.receipt.display()))?
    };
    let json: serde_json::Value = serde_json::from_str(&text).context("the receipt is not JSON")?;
    if let Some(evidence) = json.get("evidence") {
        ensure!(
            args.file.is_none(),
            "--file checks a registration receipt, and this is the answer of a query"
        );
        let evidence: Evidence = serde_json::from_value(evidence.clone())
            .context("the answer's evidence is not in the documented form")?;
        let (origin, entries) = verify_evidence(&evidence, &args.key)?;
        let indexes: Vec<String> = entries.iter().map(|(i, _)| i.to_string()).collect();
        return Ok(format!(
            "OK: {} events (leaves {}) are in the {}-leaf log {} (root {})",
            entries.len(),
            indexes.join(", "),
            evidence.tree_size,
            origin,
            evidence.root_hash
        ));
    }
    let receipt: RegistrationReceipt =
        serde_json::from_value(json).context("the receipt is not a registration receipt")?;
    let ledger = &receipt.ledger;
    let (origin, leaf) = verify_leaf(
        &ledger.checkpoint,
        &args.key,
        ledger.tree_size,
        &ledger.root_hash,
        ledger.index,
        &ledger.leaf,
        &ledger.inclusion_proof,
    )?;
    let EntryBody::ContentRegistered(reg) = LedgerEntry::from_leaf(&leaf)?.body else {
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
        reg.content_id, ledger.index, ledger.tree_size, origin, ledger.root_hash
    ))
}

/// Checks evidence offline against the log's verifier `key`: the
/// checkpoint's signature, that it signs the evidence's tree, and each
/// event's inclusion proof. Returns the log's origin and the proven
/// entries, in the evidence's order.
pub fn verify_evidence(
    evidence: &Evidence,
    key: &str,
) -> anyhow::Result<(String, Vec<(u64, LedgerEntry)>)> {
    let checkpoint = verify_checkpoint(&evidence.checkpoint, key)
        .context("checking the checkpoint signature")?;
    let mut entries = Vec::with_capacity(evidence.events.len());
    for event in &evidence.events {
        let (_, leaf) = verify_leaf(
            &evidence.checkpoint,
            key,
            evidence.tree_size,
            &evidence.root_hash,
            event.index,
            &event.leaf,
            &event.inclusion_proof,
        )
        .with_context(|| format!("event at leaf {}", event.index))?;
        entries.push((event.index, LedgerEntry::from_leaf(&leaf)?));
    }
    Ok((checkpoint.origin, entries))
}

/// Checks that the base64 `leaf` is leaf `index` of the tree of
/// `tree_size` leaves with root `root_hash`, by its inclusion `proof`, and
/// that `checkpoint` is that tree's, signed by `key`. Returns the log's
/// origin and the leaf text.
fn verify_leaf(
    checkpoint: &str,
    key: &str,
    tree_size: u64,
    root_hash: &str,
    index: u64,
    leaf: &str,
    proof: &[String],
) -> anyhow::Result<(String, String)> {
    let checkpoint =
        verify_checkpoint(checkpoint, key).context("checking the checkpoint signature")?;
    ensure!(
        checkpoint.head.size == tree_size,
        "the checkpoint is for tree size {}, the proof for {tree_size}",
        checkpoint.head.size,
    );
    ensure!(
        decode_hash(root_hash)? == checkpoint.head.root,
        "the root hash is not the signed one"
    );
    let leaf = BASE64_STANDARD
        .decode(leaf)
        .context("the leaf is not base64")?;
    let proof = proof
        .iter()
        .map(|h| decode_hash(h))
        .collect::<Result<Vec<_>, _>>()?;
    verify_inclusion(
        leaf_hash(&leaf),
        index,
        tree_size,
        &proof,
        checkpoint.head.root,
    )
    .context("checking the inclusion proof")?;
    let leaf = String::from_utf8(leaf).context("the leaf is not UTF-8")?;
    Ok((checkpoint.origin, leaf))
}
