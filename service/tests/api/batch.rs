//! `POST /v1/content/batch`: registrations by hash alone.

use serde_json::{Value, json};

use crate::support::{TestApp, media, verify_receipt};

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// A batch answers each item in request order: valid items are claimed
/// (201 with a receipt that verifies, the leaf saying the registrant
/// fingerprinted it), bad items are 400 and repeats 409, without touching
/// the rest. A claim is not a lock: uploading the claimed bytes registers
/// them, naming the claim. Whole-request errors are the body's shape, the
/// item count and the token.
#[tokio::test]
async fn batch_claims_by_hash() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let key = app.key().await;
    let photo = std::fs::read(media("images/camera.png")).unwrap();
    let photo_sha = sha256_hex(&photo);
    let other_sha = sha256_hex(b"some other file");
    let third_sha = sha256_hex(b"a third file");
    let batch = json!([
        {"sha256": photo_sha, "size": photo.len(), "media_type": "image/png",
         "metadata": {"title": "Camera"}},
        {"sha256": other_sha, "size": 15},
        {"sha256": "not-hex", "size": 1},
        {"sha256": other_sha.to_uppercase(), "size": 15},
        {"sha256": third_sha, "size": 12, "iscc": {"data": "ISCC:bogus"}},
        {"sha256": third_sha, "size": 12, "color": "red"},
    ]);
    let (status, body) = app.post_json("/v1/content/batch", &batch).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [201, 201, 400, 409, 400, 400], "{body}");
    for result in &results[..2] {
        let receipt = &result["receipt"];
        verify_receipt(receipt, &key);
        assert_eq!(receipt["fingerprinted_by"], "registrant");
        let (_, entry) = app
            .get_json(&format!("/v1/log/entries/{}", receipt["ledger"]["index"]))
            .await;
        assert_eq!(entry["entry"]["type"], "content.claimed");
        assert_eq!(entry["entry"]["fingerprinted_by"], "registrant");
    }
    for problem in [&results[2], &results[3], &results[4], &results[5]] {
        assert!(problem["problem"]["detail"].is_string(), "{problem}");
    }
    let claim_id = results[0]["receipt"]["content_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, view) = app.get_json(&format!("/v1/content/{claim_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(view["fingerprinted_by"], "registrant");
    assert_eq!(view["media_kind"], "image");
    assert_eq!(view["metadata"]["title"], "Camera");

    // The same batch again: the claims are there already.
    let (_, again) = app.post_json("/v1/content/batch", &batch).await;
    assert_eq!(again["results"][0]["status"], 409, "{again}");
    assert_eq!(
        again["results"][0]["problem"]["content_id"],
        claim_id.as_str()
    );

    // Uploading the claimed bytes registers them and names the claim.
    let resp = app.upload_raw(photo, "image/png").await;
    assert_eq!(resp.status(), 201);
    let upload: Value = resp.json().await.unwrap();
    assert_eq!(upload["claim"], claim_id.as_str());
    assert_eq!(upload["fingerprinted_by"], "registry");
    let (_, found) = app
        .get_json(&format!("/v1/content?sha256={photo_sha}"))
        .await;
    assert_eq!(
        found["content_id"], upload["content_id"],
        "the upload answers for the bytes"
    );

    for (body, status) in [
        (json!({"sha256": other_sha}), 400),
        (json!([]), 400),
        (
            Value::Array(vec![json!({"sha256": third_sha, "size": 1}); 1001]),
            400,
        ),
    ] {
        let (got, problem) = app.post_json("/v1/content/batch", &body).await;
        assert_eq!(got, status, "{problem}");
    }
    let resp = app
        .client
        .post(app.url("/v1/content/batch"))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

/// An item's metadata is read by the same rules as an upload's: a JSON
/// array is not metadata, and an identifier scheme named twice is refused;
/// each is that item's 400, and the valid item beside them is claimed.
#[tokio::test]
async fn batch_metadata_follows_the_upload_rules() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let (a, b, c) = (
        sha256_hex(b"array metadata"),
        sha256_hex(b"twice named"),
        sha256_hex(b"fine"),
    );
    // Written out by hand: a JSON value would keep only one of the keys.
    let body = format!(
        r#"[{{"sha256": "{a}", "size": 1, "metadata": ["a title"]}},
            {{"sha256": "{b}", "size": 1, "metadata": {{"identifiers": {{"isrc": "USRC17607839", "isrc": "GBAYE0000351"}}}}}},
            {{"sha256": "{c}", "size": 1, "metadata": {{"title": "Fine"}}}}]"#
    );
    let resp = app
        .client
        .post(app.url("/v1/content/batch"))
        .bearer_auth(&app.token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let statuses: Vec<u64> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [400, 400, 201], "{body}");
    let (_, found) = app.get_json(&format!("/v1/content?sha256={a}")).await;
    assert_eq!(found["status"], 404, "{found}");
}
