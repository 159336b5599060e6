//! Registering content and reading it back.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::digest::{SHA256, digest};
use serde_json::Value;

use crate::support::{TestApp, media, verify_receipt};

/// Registers real photos in both request forms; each 201 carries the right
/// hashes and ISCC codes and a receipt that verifies offline; re-uploading
/// the same bytes is a 409 naming the first registration; reads find it.
#[tokio::test]
async fn register_images_and_read_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let key = app.key().await;

    let mut receipts = vec![];
    for (i, (file, mime)) in [
        ("images/rocket.jpg", "image/jpeg"),
        ("images/coffee.png", "image/png"),
        ("images/coffee.webp", "image/webp"),
        ("images/fallen_leaf_thumbnail.jpg", "image/jpeg"),
    ]
    .into_iter()
    .enumerate()
    {
        let bytes = std::fs::read(media(file)).unwrap();
        let resp = app.upload_raw(bytes.clone(), mime).await;
        assert_eq!(resp.status(), 201, "{file}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["sha256"],
            hex::encode(digest(&SHA256, &bytes)),
            "{file}"
        );
        assert_eq!(body["size"], bytes.len(), "{file}");
        assert_eq!(body["media_kind"], "image");
        assert_eq!(body["media_type"], mime);
        assert!(uuid::Uuid::parse_str(body["content_id"].as_str().unwrap()).is_ok());
        assert!(
            body["iscc"]["code"].as_str().unwrap().starts_with("ISCC:K"),
            "composite ISCC-CODE"
        );
        assert!(body["iscc"].get("meta").is_none(), "no title, no Meta-Code");
        for code in ["instance", "data", "image"] {
            let c = body["iscc"][code].as_str().unwrap_or_default();
            assert!(c.starts_with("ISCC:") && c.len() > 10, "{file} {code}: {c}");
        }
        // Leaf 0 is the cluster's formation.
        assert_eq!(body["ledger"]["index"], i + 1);
        assert_eq!(body["ledger"]["tree_size"], i + 2);
        verify_receipt(&body, &key);
        receipts.push((file, bytes, body));
    }

    // Same bytes again, even with another declared type: 409, nothing added.
    let (_, bytes, first) = &receipts[0];
    let resp = app
        .upload_raw(bytes.clone(), "application/octet-stream")
        .await;
    assert_eq!(resp.status(), 409);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["content_id"], first["content_id"]);
    assert_eq!(problem["status"], 409);
    assert_eq!(app.checkpoint().await.head.size, 5);

    for (_, bytes, body) in &receipts {
        let id = body["content_id"].as_str().unwrap();
        let (status, by_id) = app.get_json(&format!("/v1/content/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(by_id["sha256"], body["sha256"]);
        assert_eq!(by_id["iscc"], body["iscc"]);
        assert_eq!(by_id["ledger_index"], body["ledger"]["index"]);
        let sha = hex::encode(digest(&SHA256, bytes));
        let (status, by_hash) = app.get_json(&format!("/v1/content?sha256={sha}")).await;
        assert_eq!(status, 200);
        assert_eq!(by_hash, by_id);
    }

    // Leaves served by the log are the receipts' leaves.
    for (_, _, body) in &receipts {
        let index = body["ledger"]["index"].as_u64().unwrap();
        let (status, entry) = app.get_json(&format!("/v1/log/entries/{index}")).await;
        assert_eq!(status, 200);
        assert_eq!(entry["leaf"], body["ledger"]["leaf"]);
        assert_eq!(entry["entry"]["type"], "content.registered");
        assert_eq!(entry["entry"]["content_id"], body["content_id"]);
    }
}

/// The multipart form carries metadata, which is validated, normalised and
/// recorded in the leaf; `derived_from` must name registered content.
#[tokio::test]
async fn multipart_with_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;

    let upload = |file: &'static str, metadata: String| {
        let bytes = std::fs::read(media(file)).unwrap();
        let form = reqwest::multipart::Form::new()
            .part(
                "metadata",
                reqwest::multipart::Part::text(metadata)
                    .mime_str("application/json")
                    .unwrap(),
            )
            .part(
                "file",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name("x")
                    .mime_str("image/jpeg")
                    .unwrap(),
            );
        app.client
            .post(app.url("/v1/content"))
            .bearer_auth(&app.token)
            .multipart(form)
            .send()
    };

    let resp = upload(
        "images/path_2560x1600.jpg",
        r#"{"title":"  Path  ","identifiers":{"ISRC":"us-rc1-76-07839"}}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let parent: Value = resp.json().await.unwrap();
    assert_eq!(parent["metadata"]["title"], "Path");
    let meta = media_fingerprint::iscc::meta_code("Path", None, None)
        .unwrap()
        .iscc;
    assert_eq!(parent["iscc"]["meta"], meta.as_str());
    assert_eq!(parent["metadata"]["identifiers"]["isrc"], "USRC17607839");
    verify_receipt(&parent, &app.key().await);

    let parent_id = parent["content_id"].as_str().unwrap();
    let resp = upload(
        "images/path_thumbnail.jpg",
        format!(r#"{{"title":"Path (thumbnail)","derived_from":["{parent_id}"]}}"#),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 201);
    let child: Value = resp.json().await.unwrap();
    assert_eq!(child["metadata"]["derived_from"][0], parent_id);

    // An unknown parent is refused before anything is proposed: no Raft
    // entry, no leaf.
    let raft_index = |status: &Value| status["nodes"][0]["matched_index"].as_u64().unwrap();
    let (_, before) = app.get_json("/v1/cluster/status").await;
    let resp = upload(
        "images/chelsea.png",
        r#"{"derived_from":["0192f0c1-0000-7000-8000-0000000000ff"]}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    let problem: Value = resp.json().await.unwrap();
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("not registered"),
        "{problem}"
    );
    assert_eq!(app.checkpoint().await.head.size, 3);
    let (_, after) = app.get_json("/v1/cluster/status").await;
    assert_eq!(
        raft_index(&after),
        raft_index(&before),
        "nothing was proposed"
    );
}

/// Audio registers with its Audio-Code; a file that is no media registers
/// with its exact codes, and the response says which content fingerprint is
/// missing and why.
#[tokio::test]
async fn audio_and_other_files_register() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let key = app.key().await;

    let bytes = std::fs::read(media("audio/house_lo.wav")).unwrap();
    let resp = app.upload_raw(bytes, "audio/wav").await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["media_kind"], "audio");
    assert!(
        body["iscc"]["audio"]
            .as_str()
            .unwrap()
            .starts_with("ISCC:E"),
        "{body}"
    );
    assert!(body["iscc"].get("image").is_none());
    verify_receipt(&body, &key);

    let resp = app
        .upload_raw(
            b"%PDF-1.7\n% not really a document\n".to_vec(),
            "application/pdf",
        )
        .await;
    assert_eq!(resp.status(), 201);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["media_kind"], "other");
    assert!(
        body["iscc"]["instance"]
            .as_str()
            .unwrap()
            .starts_with("ISCC:")
    );
    assert_eq!(
        body["missing_fingerprints"][0]["fingerprint"],
        "iscc_content"
    );
    assert!(
        body["missing_fingerprints"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("application/pdf")
    );
    verify_receipt(&body, &key);
}

/// A new node's log holds one leaf, the cluster's formation, which names
/// the cluster, its origin and the founding node's keys; the checkpoint of
/// that one-leaf tree is signed, with a verifier key in note format.
/// Without `--origin` the origin is unique to the cluster: it names its id.
#[tokio::test]
async fn new_log_starts_with_its_formation() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let (_, status) = app.get_json("/v1/cluster/status").await;
    let cluster_id = status["cluster_id"].as_str().unwrap();
    let origin = format!("provreg.local/{cluster_id}");
    let (_, first) = app.get_json("/v1/log/entries/0").await;
    let leaf = BASE64_STANDARD
        .decode(first["leaf"].as_str().unwrap())
        .unwrap();
    let root = BASE64_STANDARD.encode(registry::merkle::leaf_hash(&leaf).0);
    let note = app.get_text("/v1/log/checkpoint").await;
    assert!(
        note.starts_with(&format!("{origin}\n1\n{root}\n\n\u{2014} {origin} ")),
        "{note}"
    );
    assert_eq!(first["entry"]["type"], "cluster.formed");
    assert_eq!(first["entry"]["cluster_id"], cluster_id);
    assert_eq!(first["entry"]["origin"], origin.as_str());
    let key = app.key().await;
    assert_eq!(first["entry"]["founder"]["checkpoint_key"], key.as_str());
    assert_eq!(first["entry"]["founder"]["node_id"], 1);
    let parts: Vec<&str> = key.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], origin);
    assert_eq!(parts[1].len(), 8);
    assert_eq!(app.checkpoint().await.head.size, 1);
}

/// `--origin` names the log in checkpoints and the key.
#[tokio::test]
async fn origin_flag() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(dir.path(), &["--origin", "archive.example/ledger"]).await;
    assert!(app.key().await.starts_with("archive.example/ledger+"));
    assert_eq!(app.checkpoint().await.origin, "archive.example/ledger");
}

/// Concurrent registrations share Raft commands (group commit): 64 at once
/// take far fewer log entries than 64, each still gets its own leaf and a
/// receipt that verifies.
#[tokio::test]
async fn concurrent_registrations_share_commands() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let key = app.key().await;
    let raft_index = |status: &Value| status["nodes"][0]["matched_index"].as_u64().unwrap();
    let (_, before) = app.get_json("/v1/cluster/status").await;

    let writers = 64u32;
    let uploads = (0..writers).map(|seed| {
        let app = &app;
        async move {
            let resp = app
                .upload_raw(
                    crate::support::distinct_file(seed),
                    "application/octet-stream",
                )
                .await;
            assert_eq!(resp.status(), 201);
            resp.json::<Value>().await.unwrap()
        }
    });
    let receipts = futures_util::future::join_all(uploads).await;
    let mut indexes: Vec<u64> = receipts
        .iter()
        .map(|r| r["ledger"]["index"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    indexes.dedup();
    assert_eq!(indexes.len(), writers as usize, "one leaf each");
    for receipt in &receipts {
        verify_receipt(receipt, &key);
    }

    let (_, after) = app.get_json("/v1/cluster/status").await;
    let commands = raft_index(&after) - raft_index(&before);
    assert!(
        commands <= u64::from(writers) / 2,
        "{writers} concurrent registrations took {commands} Raft entries"
    );
    // The receipts of one command are for the tree after it, with one
    // checkpoint between them.
    let trees: std::collections::BTreeSet<u64> = receipts
        .iter()
        .map(|r| r["ledger"]["tree_size"].as_u64().unwrap())
        .collect();
    assert!(
        trees.len() as u64 <= commands,
        "{} trees in the receipts of {commands} commands",
        trees.len()
    );
}
