//! A cluster of separate `provreg` processes on loopback: forming it,
//! adding nodes, writes through followers, reads everywhere, the loss of
//! the leader, and peers refusing whoever is not a member.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::{
    NodeDir, TestApp, distinct_file, eventually, media, tree_head, verify_receipt, write_secret,
};
use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::digest::{SHA256, digest};
use ring::signature::Ed25519KeyPair;
use serde_json::{Value, json};

/// A peer request signed with `key` as node `sender` for node `target`.
fn signed_request(
    key: &Ed25519KeyPair,
    cluster: &str,
    sender: u64,
    target: u64,
    path: &str,
    body: &[u8],
    nonce: &str,
) -> Vec<(&'static str, String)> {
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let message = format!(
        "provreg-peer-request:v1\nPOST\n{path}\n{}\n{cluster}\n{sender}\n{target}\n{timestamp}\n{nonce}",
        hex::encode(digest(&SHA256, body))
    );
    vec![
        ("provreg-cluster", cluster.to_owned()),
        ("provreg-sender", sender.to_string()),
        ("provreg-target", target.to_string()),
        ("provreg-timestamp", timestamp),
        ("provreg-nonce", nonce.to_owned()),
        (
            "provreg-signature",
            BASE64_STANDARD.encode(key.sign(message.as_bytes())),
        ),
    ]
}

async fn post_peer(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    headers: &[(&'static str, String)],
    body: &[u8],
) -> u16 {
    let mut req = client.post(format!("{base}{path}")).body(body.to_vec());
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    req.send().await.unwrap().status().as_u16()
}

fn node_key(dir: &Path) -> Ed25519KeyPair {
    Ed25519KeyPair::from_pkcs8(&std::fs::read(dir.join("node.key")).unwrap()).unwrap()
}

/// Three institutions form one cluster: node 1 forms it, nodes 2 and 3
/// start with `--join` and are added by operators (one of them through a
/// follower, which forwards to the leader), then made voters. A write sent
/// to a follower gets a receipt that verifies with that follower's key;
/// every node reads it at once; every node ends with the same tree. After
/// `kill -9` of the leader another node leads within 5 s and takes writes,
/// and the old leader catches up when it returns. A removed node, a
/// stranger holding the cluster secret, an unsigned request and a replay
/// are refused by peers.
#[tokio::test]
async fn three_nodes_form_replicate_and_survive_the_leader() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "correct horse battery staple 42");
    let nodes: Vec<NodeDir> = (1..=3).map(NodeDir::new).collect();

    let mut n1 = nodes[0].start(&secret, false).await;
    let n2 = nodes[1].start(&secret, true).await;
    let n3 = nodes[2].start(&secret, true).await;

    // A waiting node has no log to sign and no leader.
    let (_, status) = n2.get_json("/v1/cluster/status").await;
    assert_eq!(status["leader_id"], Value::Null, "{status}");
    let resp = n2
        .client
        .get(n2.url("/v1/log/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);

    let first = n1
        .upload_raw(
            std::fs::read(media("images/camera.png")).unwrap(),
            "image/png",
        )
        .await;
    assert_eq!(first.status(), 201);

    // Adding needs the operator token.
    let resp = n1
        .client
        .post(n1.url("/v1/cluster/learners"))
        .json(&json!({"node_id": 2, "address": nodes[1].peer}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": nodes[1].peer}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caught_up"], true, "{body}");
    // The same id at another address is a conflict.
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": nodes[2].peer}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    // Node 3 is added through node 2, a learner, which forwards.
    let (status, body) = n2
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 3, "address": nodes[2].peer}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = n1
        .post_json("/v1/cluster/membership", &json!({"voters": [1, 2, 3]}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (_, status) = n3.get_json("/v1/cluster/status").await;
    assert_eq!(status["voters"], json!([1, 2, 3]), "{status}");
    assert_eq!(status["leader_id"], 1, "{status}");
    assert_eq!(status["node_id"], 3, "{status}");
    let cluster_id = status["cluster_id"].as_str().unwrap().to_owned();
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);
    assert!(
        status["nodes"][0]["matched_index"].is_u64(),
        "a follower shows the leader's progress: {status}"
    );

    // Every node signs checkpoints of the one log, each with its own key,
    // and the log itself says so: its first leaf forms the cluster with
    // its origin, and each node's keys are recorded when it is added.
    let origin = n1.checkpoint().await.origin;
    for app in [&n2, &n3] {
        assert_eq!(app.checkpoint().await.origin, origin);
        assert_ne!(app.key().await, n1.key().await);
    }
    let (_, first_leaf) = n2.get_json("/v1/log/entries/0").await;
    let formed = &first_leaf["entry"];
    assert_eq!(formed["type"], "cluster.formed", "{first_leaf}");
    assert_eq!(formed["origin"], origin.as_str());
    assert_eq!(formed["cluster_id"], cluster_id.as_str());
    assert_eq!(formed["founder"]["checkpoint_key"], n1.key().await.as_str());
    let size = n1.checkpoint().await.head.size;
    let mut added = std::collections::BTreeMap::new();
    for index in 0..size {
        let (_, leaf) = n1.get_json(&format!("/v1/log/entries/{index}")).await;
        if leaf["entry"]["type"] == "node.added" {
            let node = &leaf["entry"]["node"];
            added.insert(
                node["node_id"].as_u64().unwrap(),
                node["checkpoint_key"].clone(),
            );
        }
    }
    assert_eq!(added[&2], n2.key().await.as_str());
    assert_eq!(added[&3], n3.key().await.as_str());

    // A write through a follower: fingerprinted there, proposed by the
    // leader, and its receipt built and signed by the follower.
    let resp = n3
        .upload_raw(
            std::fs::read(media("images/chelsea.png")).unwrap(),
            "image/png",
        )
        .await;
    assert_eq!(resp.status(), 201);
    let receipt: Value = resp.json().await.unwrap();
    verify_receipt(&receipt, &n3.key().await);
    let id = receipt["content_id"].as_str().unwrap();
    for app in [&n1, &n2, &n3] {
        let resp = app
            .client
            .get(app.url(&format!("/v1/content/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "a linearizable read on {}", app.base);
        assert_eq!(resp.headers()["provreg-consistency"], "linearizable");
        let resp = app
            .client
            .get(app.url(&format!("/v1/content/{id}?consistency=local")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["provreg-consistency"], "local");
    }
    let head = tree_head(&n1).await;
    for app in [&n2, &n3] {
        eventually(Duration::from_secs(10), "replicas agree", || async {
            tree_head(app).await == head
        })
        .await;
    }
    // Every replica holds the very leaf bytes of the receipt.
    let index = receipt["ledger"]["index"].as_u64().unwrap();
    for app in [&n1, &n2] {
        let (_, entry) = app.get_json(&format!("/v1/log/entries/{index}")).await;
        assert_eq!(entry["leaf"], receipt["ledger"]["leaf"]);
    }

    // Peers refuse what is not signed by a member.
    let client = reqwest::Client::new();
    let body = b"{}";
    assert_eq!(
        post_peer(&client, &nodes[0].peer, "/v1/raft/vote", &[], body).await,
        401,
        "unsigned"
    );
    let stranger = Ed25519KeyPair::from_pkcs8(
        Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
            .unwrap()
            .as_ref(),
    )
    .unwrap();
    let headers = signed_request(
        &stranger,
        &cluster_id,
        9,
        1,
        "/v1/raft/vote",
        body,
        "00112233445566778899aabbccddeeff",
    );
    assert_eq!(
        post_peer(&client, &nodes[0].peer, "/v1/raft/vote", &headers, body).await,
        403,
        "a stranger's key"
    );
    let key3 = node_key(nodes[2].dir.path());
    let headers = signed_request(
        &key3,
        &cluster_id,
        3,
        2,
        "/v1/raft/read-index",
        b"",
        "0123456789abcdef0123456789abcdef",
    );
    assert_eq!(
        post_peer(
            &client,
            &nodes[0].peer,
            "/v1/raft/read-index",
            &headers,
            b""
        )
        .await,
        403,
        "addressed to another node"
    );
    let headers = signed_request(
        &key3,
        &cluster_id,
        3,
        1,
        "/v1/raft/read-index",
        b"",
        "fedcba9876543210fedcba9876543210",
    );
    assert_eq!(
        post_peer(
            &client,
            &nodes[0].peer,
            "/v1/raft/read-index",
            &headers,
            b""
        )
        .await,
        200,
        "a member's signed request"
    );
    assert_eq!(
        post_peer(
            &client,
            &nodes[0].peer,
            "/v1/raft/read-index",
            &headers,
            b""
        )
        .await,
        401,
        "the same request again is a replay"
    );
    // An id in use is never given to another node.
    let (status, _) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 1, "address": "http://127.0.0.1:9"}),
        )
        .await;
    assert_eq!(status, 409, "an id in use");

    // Removing a voter needs a majority of the three voters' operators:
    // node 1's operator alone gets a 202; node 2's approval completes it.
    // From then on node 3's key opens nothing, and its id is never reused.
    let delete = |app: &TestApp| {
        app.client
            .delete(app.url("/v1/cluster/nodes/3"))
            .bearer_auth(&app.token)
            .send()
    };
    let resp = delete(&n1).await.unwrap();
    assert_eq!(resp.status(), 202);
    let pending: Value = resp.json().await.unwrap();
    assert_eq!(pending["approved_by"], json!([1]), "{pending}");
    assert_eq!(pending["needed"], 2, "{pending}");
    let (_, status) = n1.get_json("/v1/cluster/status").await;
    assert_eq!(
        status["voters"],
        json!([1, 2, 3]),
        "one operator changed nothing"
    );
    let resp = delete(&n2).await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let (_, status) = n1.get_json("/v1/cluster/status").await;
    assert_eq!(status["voters"], json!([1, 2]), "{status}");
    assert_eq!(status["learners"], json!([]), "{status}");
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 3, "address": nodes[2].peer}),
        )
        .await;
    assert_eq!(status, 409, "a removed node's id is never reused: {body}");
    for peer in [&nodes[0].peer, &nodes[1].peer] {
        let target = if *peer == nodes[0].peer { 1 } else { 2 };
        eventually(
            Duration::from_secs(5),
            "the removed node is refused",
            || async {
                let nonce = format!("{:032x}", rand_u128());
                let headers = signed_request(
                    &key3,
                    &cluster_id,
                    3,
                    target,
                    "/v1/raft/read-index",
                    b"",
                    &nonce,
                );
                post_peer(&client, peer, "/v1/raft/read-index", &headers, b"").await == 403
            },
        )
        .await;
    }
    drop(n3);

    // kill -9 the leader: node 2 alone cannot elect (2 voters), so bring
    // node 1 back; the log it acknowledged is intact and writes resume.
    let before = tree_head(&n1).await;
    n1.kill();
    let n1 = nodes[0].start(&secret, false).await;
    let started = Instant::now();
    eventually(Duration::from_secs(10), "a leader is elected", || async {
        let (_, status) = n2.get_json("/v1/cluster/status").await;
        status["leader_id"].is_u64()
    })
    .await;
    let mut seed = 0;
    loop {
        seed += 1;
        let resp = n2
            .upload_raw(distinct_file(seed), "application/octet-stream")
            .await;
        if resp.status() == 201 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no write accepted after the restart: {}",
            resp.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = tree_head(&n1).await;
    assert!(after.0 > before.0);
    eventually(Duration::from_secs(10), "replicas agree again", || async {
        tree_head(&n2).await == tree_head(&n1).await
    })
    .await;
}

fn rand_u128() -> u128 {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    u128::from_le_bytes(bytes)
}

/// A 3-voter cluster loses its leader to `kill -9` while a client writes
/// through a follower: another node leads within 5 s, writes resume, every
/// acknowledged write is on every node, and all nodes end with one tree.
#[tokio::test]
async fn leader_kill_9_under_writes() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "another cluster secret 1234");
    let nodes: Vec<NodeDir> = (1..=3).map(NodeDir::new).collect();
    let mut apps = vec![Some(nodes[0].start(&secret, false).await)];
    for node in &nodes[1..] {
        apps.push(Some(node.start(&secret, true).await));
    }
    let n1 = apps[0].as_ref().unwrap();
    for node in &nodes[1..] {
        let (status, body) = n1
            .post_json(
                "/v1/cluster/learners",
                &json!({"node_id": node.id, "address": node.peer}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = n1
        .post_json("/v1/cluster/membership", &json!({"voters": [1, 2, 3]}))
        .await;
    assert_eq!(status, 200, "{body}");

    let mut acked: Vec<Value> = vec![];
    let mut seed = 1000;
    for _ in 0..10 {
        seed += 1;
        let app = apps[1].as_ref().unwrap();
        let resp = app
            .upload_raw(distinct_file(seed), "application/octet-stream")
            .await;
        assert_eq!(resp.status(), 201);
        acked.push(resp.json().await.unwrap());
    }
    apps[0].as_mut().unwrap().kill();
    let killed = Instant::now();
    let follower = apps[1].as_ref().unwrap();
    let mut new_leader_at = None;
    while acked.len() < 20 {
        seed += 1;
        let resp = follower
            .upload_raw(distinct_file(seed), "application/octet-stream")
            .await;
        if resp.status() == 201 {
            new_leader_at.get_or_insert(killed.elapsed());
            acked.push(resp.json().await.unwrap());
        } else {
            assert_eq!(
                resp.status(),
                503,
                "only 'retry later' while there is no leader"
            );
            assert!(
                killed.elapsed() < Duration::from_secs(15),
                "writes never resumed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let took = new_leader_at.unwrap();
    assert!(
        took < Duration::from_secs(5),
        "a new leader took writes after {took:?}"
    );

    apps[0] = Some(nodes[0].start(&secret, false).await);
    let head = tree_head(apps[1].as_ref().unwrap()).await;
    for app in apps.iter().flatten() {
        eventually(
            Duration::from_secs(15),
            "every node has the final tree",
            || async { tree_head(app).await == head },
        )
        .await;
        for receipt in &acked {
            let index = receipt["ledger"]["index"].as_u64().unwrap();
            let (status, entry) = app.get_json(&format!("/v1/log/entries/{index}")).await;
            assert_eq!(status, 200);
            assert_eq!(entry["leaf"], receipt["ledger"]["leaf"]);
        }
    }
}

/// Start-up refuses what would split or confuse a cluster, naming why.
#[tokio::test]
async fn start_up_refusals() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "a", "the first cluster secret");
    let other = write_secret(secrets.path(), "b", "the second cluster secret");
    let short = write_secret(secrets.path(), "c", "short");
    let dir = tempfile::tempdir().unwrap();

    let err = TestApp::start_fails(dir.path(), &["--join"]);
    assert!(err.contains("--cluster-secret-file"), "{err}");
    let err = TestApp::start_fails(dir.path(), &["--peer-listen", "127.0.0.1:0"]);
    assert!(err.contains("--advertise"), "{err}");
    let err = TestApp::start_fails(
        dir.path(),
        &[
            "--peer-listen",
            "0.0.0.0:0",
            "--advertise",
            "http://0.0.0.0:7000",
        ],
    );
    assert!(
        err.contains("--advertise") && err.contains("wildcard"),
        "{err}"
    );
    let err = TestApp::start_fails(
        dir.path(),
        &["--cluster-secret-file", short.to_str().unwrap()],
    );
    assert!(err.contains("shorter than 16"), "{err}");
    let err = TestApp::start_fails(
        dir.path(),
        &[
            "--peer-listen",
            "127.0.0.1:0",
            "--advertise",
            "https://node.example:7000",
        ],
    );
    assert!(
        err.contains("--advertise") && err.contains("--peer-tls-cert"),
        "{err}"
    );
    let err = TestApp::start_fails(dir.path(), &["--peer-tls-cert", "cert.pem"]);
    assert!(err.contains("--peer-tls-key"), "{err}");
    let err = TestApp::start_fails(dir.path(), &["--snapshot-every", "3"]);
    assert!(err.contains("--snapshot-every"), "{err}");

    // A node that formed a cluster cannot --join another: its data dir
    // holds its own cluster's state.
    let node = NodeDir::new(1);
    let app = node.start(&secret, false).await;
    drop(app);
    let flags = node.flags(&other, true);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let err = TestApp::start_fails(node.dir.path(), &flags);
    assert!(
        err.contains("--join") && err.contains("another cluster secret"),
        "{err}"
    );
    // Nor does its origin change.
    let err = TestApp::start_fails(node.dir.path(), &["--origin", "other.example/log"]);
    assert!(err.contains("origin never changes"), "{err}");
}
