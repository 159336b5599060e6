//! Acknowledged writes survive `kill -9`.

use std::sync::Arc;

use registry::merkle::{decode_hash, verify_consistency};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::support::{TestApp, media, verify_receipt};

/// The server's consistency proof between two tree sizes, decoded.
async fn consistency_proof(app: &TestApp, from: u64, to: u64) -> Vec<registry::merkle::Hash> {
    let (status, proof) = app
        .get_json(&format!("/v1/log/proof/consistency?from={from}&to={to}"))
        .await;
    assert_eq!(status, 200);
    proof["hashes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| decode_hash(h.as_str().unwrap()).unwrap())
        .collect()
}

fn proof_of(receipt: &Value) -> Vec<String> {
    receipt["ledger"]["inclusion_proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap().to_owned())
        .collect()
}

/// After SIGKILL and a restart on the same data dir: the same key and token,
/// the same tree size and root, every registration readable, the server
/// re-issues the very proofs it gave before, and the log grows on from there
/// consistently.
#[tokio::test]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::start(dir.path()).await;
    let key = app.key().await;
    let mut receipts = vec![];
    for file in [
        "images/astronaut.png",
        "images/camera.png",
        "images/chelsea.png",
        "images/coffee.gif",
        "images/flower.jpg",
        "images/motorcycle_left.png",
    ] {
        let resp = app
            .upload_raw(std::fs::read(media(file)).unwrap(), "image/png")
            .await;
        assert_eq!(resp.status(), 201, "{file}");
        receipts.push(resp.json::<Value>().await.unwrap());
    }
    let before = app.checkpoint().await;
    let token = app.token.clone();

    app.kill();
    let app = TestApp::start(dir.path()).await;
    assert_eq!(app.key().await, key, "the signing key is reused");
    assert_eq!(app.token, token, "the operator token is reused");
    let after = app.checkpoint().await;
    assert_eq!(after.head, before.head, "tree size and root survive");

    for receipt in &receipts {
        verify_receipt(receipt, &key);
        let id = receipt["content_id"].as_str().unwrap();
        let (status, content) = app.get_json(&format!("/v1/content/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(content["sha256"], receipt["sha256"]);
        let index = &receipt["ledger"]["index"];
        let size = &receipt["ledger"]["tree_size"];
        let (status, proof) = app
            .get_json(&format!(
                "/v1/log/proof/inclusion?index={index}&tree_size={size}"
            ))
            .await;
        assert_eq!(status, 200);
        assert_eq!(proof["root_hash"], receipt["ledger"]["root_hash"]);
        let hashes: Vec<String> = serde_json::from_value(proof["hashes"].clone()).unwrap();
        assert_eq!(hashes, proof_of(receipt));
    }

    let resp = app
        .upload_raw(
            std::fs::read(media("images/rocket.jpg")).unwrap(),
            "image/jpeg",
        )
        .await;
    assert_eq!(resp.status(), 201);
    let grown = app.checkpoint().await;
    assert_eq!(grown.head.size, before.head.size + 1);
    let hashes = consistency_proof(&app, before.head.size, grown.head.size).await;
    verify_consistency(
        before.head.size,
        grown.head.size,
        &hashes,
        before.head.root,
        grown.head.root,
    )
    .unwrap();
}

/// SIGKILL while many uploads are in flight: every upload that got a 201 is
/// in the restarted log at the index its receipt names, and every receipt's
/// tree is a prefix of the restarted log.
#[tokio::test]
async fn kill_9_during_concurrent_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::start(dir.path()).await;
    let key = app.key().await;

    let (tx, mut rx) = mpsc::unbounded_channel::<Value>();
    let client = app.client.clone();
    let url = Arc::new(app.url("/v1/content"));
    let token = Arc::new(app.token.clone());
    let mut tasks = vec![];
    for i in 0..40u32 {
        let (client, url, token, tx) = (client.clone(), url.clone(), token.clone(), tx.clone());
        tasks.push(tokio::spawn(async move {
            // Distinct bytes per upload, a few hundred KiB each.
            let body: Vec<u8> = (0..300_000u32)
                .map(|j| (j.wrapping_mul(31) ^ i.wrapping_mul(2_654_435_761)) as u8)
                .collect();
            let resp = client
                .post(url.as_str())
                .bearer_auth(token.as_str())
                .header("content-type", "application/octet-stream")
                .body(body)
                .send()
                .await;
            if let Ok(resp) = resp
                && resp.status() == 201
                && let Ok(receipt) = resp.json::<Value>().await
            {
                let _ = tx.send(receipt);
            }
        }));
    }
    drop(tx);

    // Kill once some writes are acknowledged and others are still running.
    let mut acked = vec![];
    while acked.len() < 5 {
        acked.push(rx.recv().await.expect("at least five uploads succeed"));
    }
    app.kill();
    for task in tasks {
        let _ = task.await;
    }
    while let Ok(receipt) = rx.try_recv() {
        acked.push(receipt);
    }
    assert!(acked.len() < 40, "the kill should interrupt some uploads");

    let app = TestApp::start(dir.path()).await;
    let now = app.checkpoint().await;
    assert!(now.head.size >= acked.len() as u64);
    for receipt in &acked {
        verify_receipt(receipt, &key);
        let id = receipt["content_id"].as_str().unwrap();
        let (status, _) = app.get_json(&format!("/v1/content/{id}")).await;
        assert_eq!(
            status, 200,
            "acknowledged {id} is missing after the restart"
        );
        let index = receipt["ledger"]["index"].as_u64().unwrap();
        let (_, entry) = app.get_json(&format!("/v1/log/entries/{index}")).await;
        assert_eq!(entry["leaf"], receipt["ledger"]["leaf"]);

        let size = receipt["ledger"]["tree_size"].as_u64().unwrap();
        let hashes = consistency_proof(&app, size, now.head.size).await;
        let old_root = decode_hash(receipt["ledger"]["root_hash"].as_str().unwrap()).unwrap();
        verify_consistency(size, now.head.size, &hashes, old_root, now.head.root).unwrap();
    }
}
