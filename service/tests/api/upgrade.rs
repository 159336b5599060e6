//! Raising members' recorded feature levels after an upgrade.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use serde_json::{Value, json};

use crate::support::{
    NodeDir, eventually, in_seconds, key_pair, log_origin, register_party, signed_body,
    write_secret,
};

/// A node that claims level 3 (as a build from before transfers would)
/// keeps transfers off for the whole cluster: the leader refuses them with
/// a 409 naming the node. Restarted at its build's level, the leader asks
/// it over the peer channel, records a `node.upgraded` entry carrying the
/// node's own signed claim, which verifies with the node key the ledger
/// recorded when it joined, and transfers work.
#[tokio::test]
async fn levels_rise_after_an_upgrade() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "levels rise after an upgrade");
    let dirs: Vec<NodeDir> = (1..=2).map(NodeDir::new).collect();
    let n1 = dirs[0].start(&secret, false).await;
    let held_back = ["--max-feature-level".to_owned(), "3".to_owned()];
    let mut n2 = dirs[1].start_with(&secret, true, &held_back).await;
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": dirs[1].peer}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = n1
        .post_json("/v1/cluster/membership", &json!({"voters": [1, 2]}))
        .await;
    assert_eq!(status, 200, "{body}");

    let (party, token) = register_party(&n1, "Channel", &["broadcaster"], 51).await;
    let (buyer, _) = register_party(&n1, "Buyer", &["rights_holder"], 52).await;
    let (status, item) = crate::support::answer(
        n1.client
            .post(n1.url("/v1/content"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(b"a programme before the upgrade".to_vec()),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    let content = item["content_id"].as_str().unwrap();
    let log = log_origin(&n1).await;
    let sale = signed_body(
        &json!({"type": "transfer", "log": log, "nonce": "5a".repeat(16),
            "expires_at": in_seconds(3600), "content_id": content,
            "from": [{"party_id": party, "share_bp": 100}],
            "to": [{"party_id": buyer, "share_bp": 100}]}),
        &[(&party, &key_pair(51).0)],
    );
    let path = format!("/v1/content/{content}/transfers");
    let (status, problem) = n1.post_json(&path, &sale).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("node 2"),
        "{problem}"
    );

    n2.kill();
    let _n2 = dirs[1].start(&secret, true).await;
    eventually(
        std::time::Duration::from_secs(60),
        "node 2's new level recorded and transfers accepted",
        || async { n1.post_json(&path, &sale).await.0 == 201 },
    )
    .await;

    let size = n1.checkpoint().await.head.size;
    let mut entries = Vec::new();
    for index in 0..size {
        let (_, entry) = n1.get_json(&format!("/v1/log/entries/{index}")).await;
        entries.push(entry["entry"].clone());
    }
    let of_type =
        |kind: &str| -> Vec<&Value> { entries.iter().filter(|e| e["type"] == kind).collect() };
    let upgraded = of_type("node.upgraded");
    assert_eq!(upgraded.len(), 1, "{upgraded:?}");
    assert_eq!(
        (&upgraded[0]["node_id"], &upgraded[0]["feature_level"]),
        (&json!(2), &json!(registry::FEATURE_LEVEL))
    );
    let added = of_type("node.added");
    let node2 = added.iter().find(|e| e["node"]["node_id"] == 2).unwrap();
    assert_eq!(node2["node"]["feature_level"], 3);
    let cluster_id = of_type("cluster.formed")[0]["cluster_id"].as_str().unwrap();
    let message = registry::level_claim_message(cluster_id, 2, registry::FEATURE_LEVEL);
    let key = BASE64_STANDARD
        .decode(node2["node"]["node_key"].as_str().unwrap())
        .unwrap();
    let signature = BASE64_STANDARD
        .decode(upgraded[0]["signature"].as_str().unwrap())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key)
        .verify(message.as_bytes(), &signature)
        .expect("the claim is node 2's");

    // A level above the build's is refused at start, naming the flag.
    let dir = tempfile::tempdir().unwrap();
    let printed = crate::support::TestApp::start_fails(dir.path(), &["--max-feature-level", "99"]);
    assert!(printed.contains("--max-feature-level"), "{printed}");
}
