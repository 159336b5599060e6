//! Nodes that are too far behind for the Raft log catch up from a
//! snapshot streamed in chunks.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::TestApp;

fn peer_url() -> String {
    format!("http://{}", crate::support::peer_listen_address())
}

fn peer_flags(id: u64, peer: &str, secret: &std::path::Path) -> Vec<String> {
    [
        "--node-id",
        &id.to_string(),
        "--peer-listen",
        peer.trim_start_matches("http://"),
        "--advertise",
        peer,
        "--cluster-secret-file",
        secret.to_str().unwrap(),
        "--snapshot-every",
        "20",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

async fn start(dir: &std::path::Path, flags: &[String], join: bool) -> TestApp {
    let mut flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    if join {
        flags.push("--join");
    }
    TestApp::start_with(dir, &flags).await
}

async fn head(app: &TestApp) -> (u64, String) {
    let cp = app.checkpoint().await;
    (cp.head.size, hex::encode(cp.head.root.0))
}

async fn write_many(app: &TestApp, seed: u32, count: u32) {
    for n in seed..seed + count {
        let body: Vec<u8> = format!("snapshot test file {n}").into_bytes();
        let resp = app.upload_raw(body, "application/octet-stream").await;
        assert_eq!(resp.status(), 201);
    }
}

async fn same_tree(a: &TestApp, b: &TestApp) {
    let start = Instant::now();
    loop {
        if head(a).await == head(b).await {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the trees did not converge: {:?} vs {:?}",
            head(a).await,
            head(b).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A node added after the log was purged, and a node that was down while
/// many entries were written and the log purged again, both reach the
/// identical tree size and root through a snapshot sent in chunks.
#[tokio::test]
async fn lagging_nodes_catch_up_from_snapshots() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("secret");
    std::fs::write(&secret, "a snapshot test cluster secret").unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (p1, p2) = (peer_url(), peer_url());
    let n1 = start(d1.path(), &peer_flags(1, &p1, &secret), false).await;
    write_many(&n1, 0, 70).await;
    // The log behind the snapshot is purged: a new node needs the snapshot.
    let snapshot = d1.path().join("raft/snapshot.jsonl");
    assert!(snapshot.exists(), "the leader built a snapshot");

    let mut n2 = start(d2.path(), &peer_flags(2, &p2, &secret), true).await;
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": p2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    same_tree(&n1, &n2).await;
    assert!(
        d2.path().join("raft/snapshot.jsonl").exists(),
        "the learner installed a snapshot"
    );

    // Down while the leader writes on and purges again.
    n2.kill();
    write_many(&n1, 100, 70).await;
    let n2 = start(d2.path(), &peer_flags(2, &p2, &secret), true).await;
    same_tree(&n1, &n2).await;
    let (size, _) = head(&n1).await;
    let last = format!("/v1/log/entries/{}", size - 1);
    assert_eq!(
        n2.get_json(&last).await.1["leaf"],
        n1.get_json(&last).await.1["leaf"]
    );
}

/// A learner that was down while large commands (batches of 1,000 claims)
/// were written catches up from the Raft log: appends bigger than the
/// extractors' default body limit are accepted, and those over a part's
/// size are sent in several requests.
#[tokio::test]
async fn a_lagging_learner_catches_up_on_large_commands() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = secrets.path().join("secret");
    std::fs::write(&secret, "a large-append test cluster secret").unwrap();
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (p1, p2) = (peer_url(), peer_url());
    // The default snapshot interval: the learner catches up from the log.
    let flags = |id, peer: &str| {
        let mut flags = peer_flags(id, peer, &secret);
        flags.truncate(flags.len() - 2);
        flags
    };
    let n1 = start(d1.path(), &flags(1, &p1), false).await;
    let mut n2 = start(d2.path(), &flags(2, &p2), true).await;
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": p2}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    n2.kill();
    for batch in 0..24u64 {
        let items: Vec<_> = (0..1000u64)
            .map(|i| json!({"sha256": format!("{:064x}", batch * 1000 + i + 1), "size": 1000}))
            .collect();
        let (status, body) = n1.post_json("/v1/content/batch", &json!(items)).await;
        assert_eq!(status, 200, "{body}");
        assert!(
            body["results"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["status"] == 201)
        );
    }
    let n2 = start(d2.path(), &flags(2, &p2), true).await;
    same_tree(&n1, &n2).await;
    assert!(
        !d2.path().join("raft/snapshot.jsonl").exists(),
        "caught up from the log, not a snapshot"
    );
}
