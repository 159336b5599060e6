//! `/v1/parties`: parties, their tokens and what their roles open.

use base64::Engine;
use base64::prelude::BASE64_STANDARD;
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};

use crate::support::{NodeDir, TestApp, answer, in_seconds, key_pair, signed_body, write_secret};

/// Raw Ed25519 public keys (RFC 8032's test keys 1 to 3), base64.
const KEYS: [&str; 3] = [
    "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
    "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=",
    "/FHNjmIYoaONpH7QAjDwWAgW7RO6MwOsXeuRFUiQgCU=",
];

/// Uploads `bytes` with `token`; (status, JSON body).
async fn upload_as(app: &TestApp, token: &str, bytes: &[u8]) -> (u16, Value) {
    answer(
        app.client
            .post(app.url("/v1/content"))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec()),
    )
    .await
}

/// The operator registers a party and gets its token once; the party is a
/// public leaf (name, roles, key, identifiers) without the token or its
/// digest, shown by `GET /v1/parties/{id}`. Bad requests are 400 naming the
/// field, a key another party holds is 409, and nothing is appended for
/// either. Roles gate tokens: a broadcaster registers content in its own
/// name, an auditor may not (403), an operator party may register parties,
/// and no party token opens the cluster API. Tokens outlive a restart.
#[tokio::test]
async fn parties_tokens_and_roles() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = TestApp::start(dir.path()).await;
    let op = app.token.clone();
    let request = json!({
        "name": "Radio Example",
        "roles": ["broadcaster", "rights_holder"],
        "public_key": KEYS[0],
        "identifiers": {"isni": "0000 0001 2103 2683"},
    });

    let resp = app
        .client
        .post(app.url("/v1/parties"))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let size_before = app.checkpoint().await.head.size;
    for (bad, field) in [
        (
            json!({"name": "A", "roles": ["broadcaster"], "public_key": "AAAA"}),
            "public_key",
        ),
        (
            json!({"name": "A", "roles": ["admin"], "public_key": KEYS[1]}),
            "roles",
        ),
        (
            json!({"name": " ", "roles": ["auditor"], "public_key": KEYS[1]}),
            "name",
        ),
        (
            json!({"name": "A", "roles": ["auditor"], "public_key": KEYS[1], "identifiers": {"isni": "0000000121032684"}}),
            "isni",
        ),
        (
            json!({"name": "A", "roles": ["auditor"], "public_key": KEYS[1], "colour": "red"}),
            "colour",
        ),
    ] {
        let (status, problem) = app.post_json_as(Some(&op), "/v1/parties", &bad).await;
        assert_eq!(status, 400, "{bad} {problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(field),
            "{field}: {problem}"
        );
    }
    assert_eq!(app.checkpoint().await.head.size, size_before);

    let (status, created) = app.post_json_as(Some(&op), "/v1/parties", &request).await;
    assert_eq!(status, 201, "{created}");
    let party_id = created["party_id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    let (status, shown) = app.get_json(&format!("/v1/parties/{party_id}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["name"], "Radio Example");
    assert_eq!(shown["roles"], json!(["broadcaster", "rights_holder"]));
    assert_eq!(shown["public_key"], KEYS[0]);
    assert_eq!(shown["identifiers"]["isni"], "0000000121032683");
    assert_eq!(shown["ledger_index"], created["ledger_index"]);
    assert!(shown.get("token").is_none(), "{shown}");
    let (_, entry) = app
        .get_json(&format!("/v1/log/entries/{}", created["ledger_index"]))
        .await;
    assert_eq!(entry["entry"]["type"], "party.registered", "{entry}");
    let leaf = String::from_utf8(
        BASE64_STANDARD
            .decode(entry["leaf"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let token_digest = hex::encode(digest(&SHA256, token.as_bytes()));
    assert!(
        !leaf.contains(&token) && !leaf.contains(&token_digest),
        "{leaf}"
    );

    let size = app.checkpoint().await.head.size;
    let same_key = json!({"name": "Copycat", "roles": ["auditor"], "public_key": KEYS[0]});
    let (status, problem) = app.post_json_as(Some(&op), "/v1/parties", &same_key).await;
    assert_eq!(status, 409, "{problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains(&party_id),
        "{problem}"
    );
    assert_eq!(app.checkpoint().await.head.size, size);

    let (status, receipt) = upload_as(&app, &token, b"a broadcaster's own file").await;
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["registrant"], party_id.as_str());
    let (status, problem) = app
        .post_json_as(Some(&token), "/v1/parties", &same_key)
        .await;
    assert_eq!(status, 403, "{problem}");

    let auditor = json!({"name": "Audit Office", "roles": ["auditor"], "public_key": KEYS[1]});
    let (status, created) = app.post_json_as(Some(&op), "/v1/parties", &auditor).await;
    assert_eq!(status, 201, "{created}");
    let auditor_token = created["token"].as_str().unwrap().to_owned();
    let (status, problem) = upload_as(&app, &auditor_token, b"not an auditor's job").await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:forbidden");
    let (status, _) = app
        .post_json_as(
            Some(&auditor_token),
            "/v1/content/batch",
            &json!([{"sha256": "ab".repeat(32), "size": 1}]),
        )
        .await;
    assert_eq!(status, 403);

    let manager = json!({"name": "Registry Desk", "roles": ["operator"], "public_key": KEYS[2]});
    let (status, created) = app.post_json_as(Some(&op), "/v1/parties", &manager).await;
    assert_eq!(status, 201, "{created}");
    let manager_token = created["token"].as_str().unwrap().to_owned();
    let another = json!({"name": "Newcomer", "roles": ["auditor"], "public_key": "O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik="});
    let (status, created) = app
        .post_json_as(Some(&manager_token), "/v1/parties", &another)
        .await;
    assert_eq!(status, 201, "{created}");
    for party_token in [&token, &auditor_token, &manager_token] {
        let (status, _) = app
            .post_json_as(
                Some(party_token),
                "/v1/cluster/membership",
                &json!({"voters": [1]}),
            )
            .await;
        assert_eq!(status, 401);
    }

    let (status, _) = app
        .get_json("/v1/parties/0192f0c1-0000-7000-8000-000000000099")
        .await;
    assert_eq!(status, 404);
    let (status, _) = app.get_json("/v1/parties/not-an-id").await;
    assert_eq!(status, 400);
    let resp = app
        .client
        .post(app.url("/v1/content"))
        .bearer_auth("not-a-token")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    app.kill();
    let app = TestApp::start(dir.path()).await;
    let (status, receipt) = upload_as(&app, &token, b"after a restart").await;
    assert_eq!(status, 201, "{receipt}");
}

/// A party registered on one node can use its token on another: the
/// token's digest is replicated beside the leaf.
#[tokio::test]
async fn a_party_token_works_on_every_node() {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "correct horse battery staple 42");
    let nodes: Vec<NodeDir> = (1..=2).map(NodeDir::new).collect();
    let n1 = nodes[0].start(&secret, false).await;
    let n2 = nodes[1].start(&secret, true).await;
    let (status, body) = n1
        .post_json(
            "/v1/cluster/learners",
            &json!({"node_id": 2, "address": nodes[1].peer}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, created) = n1
        .post_json(
            "/v1/parties",
            &json!({"name": "Channel Two", "roles": ["broadcaster"], "public_key": KEYS[0]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let token = created["token"].as_str().unwrap();
    let (status, receipt) = upload_as(&n2, token, b"registered through node 2").await;
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["registrant"], created["party_id"]);
    let (status, shown) = n2
        .get_json(&format!(
            "/v1/parties/{}",
            created["party_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{shown}");
}

/// A party's key is replaced by a `key.rotate` intent signed by its current
/// key and the new one, with no token. The leaf records the intent and its
/// signatures verbatim, and they verify from the leaf alone. Refused, each
/// with a problem type naming the rule and nothing appended: a missing or
/// bad signature (403), another log, an expired intent or one valid for
/// more than 24 h (422), a replay (409), a key another party holds (409),
/// an intent for another party than the path's (400).
#[tokio::test]
async fn key_rotation_by_signed_intent() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let (old, old_public) = key_pair(1);
    let (new, new_public) = key_pair(2);
    let (_, other_public) = key_pair(3);
    let (status, created) = app
        .post_json(
            "/v1/parties",
            &json!({"name": "Rotating", "roles": ["rights_holder"], "public_key": old_public}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let party = created["party_id"].as_str().unwrap().to_owned();
    let (status, _) = app
        .post_json(
            "/v1/parties",
            &json!({"name": "Other", "roles": ["auditor"], "public_key": other_public}),
        )
        .await;
    assert_eq!(status, 201);
    let origin = crate::support::log_origin(&app).await;
    let path = format!("/v1/parties/{party}/keys");
    let intent = |log: &str, nonce: &str, expires_at: String, key: &str| {
        json!({"type": "key.rotate", "log": log, "nonce": nonce, "expires_at": expires_at,
               "party_id": party, "public_key": key})
    };
    let good = intent(&origin, &"ab".repeat(16), in_seconds(3600), &new_public);
    let size = app.checkpoint().await.head.size;

    let refusals = [
        (
            signed_body(&good, &[(&party, &old)]),
            403,
            "missing-signature",
        ),
        (
            {
                let mut body = signed_body(&good, &[(&party, &old), (&party, &new)]);
                body["signatures"][1]["signature"] = body["signatures"][0]["signature"].clone();
                body
            },
            403,
            "bad-signature",
        ),
        (
            signed_body(
                &intent(
                    "another.example/log",
                    &"cd".repeat(16),
                    in_seconds(3600),
                    &new_public,
                ),
                &[(&party, &old), (&party, &new)],
            ),
            422,
            "wrong-log",
        ),
        (
            signed_body(
                &intent(&origin, &"cd".repeat(16), in_seconds(-10), &new_public),
                &[(&party, &old), (&party, &new)],
            ),
            422,
            "expired",
        ),
        (
            signed_body(
                &intent(
                    &origin,
                    &"cd".repeat(16),
                    in_seconds(25 * 3600),
                    &new_public,
                ),
                &[(&party, &old), (&party, &new)],
            ),
            422,
            "expiry-too-far",
        ),
    ];
    for (body, status, reason) in refusals {
        let (got, problem) = app.post_json_as(None, &path, &body).await;
        assert_eq!(got, status, "{reason}: {problem}");
        assert_eq!(
            problem["type"],
            format!("urn:provreg:problem:{reason}"),
            "{problem}"
        );
    }
    let (status, problem) = app
        .post_json_as(
            None,
            "/v1/parties/0192f0c1-0000-7000-8000-000000000099/keys",
            &signed_body(&good, &[(&party, &old), (&party, &new)]),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (other, _) = key_pair(3);
    let (status, problem) = app
        .post_json_as(
            None,
            &path,
            &signed_body(
                &intent(&origin, &"ef".repeat(16), in_seconds(3600), &other_public),
                &[(&party, &old), (&party, &other)],
            ),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(app.checkpoint().await.head.size, size);

    let body = signed_body(&good, &[(&party, &old), (&party, &new)]);
    let (status, rotated) = app.post_json_as(None, &path, &body).await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["public_key"], new_public.as_str());
    let (_, shown) = app.get_json(&format!("/v1/parties/{party}")).await;
    assert_eq!(shown["public_key"], new_public.as_str(), "{shown}");
    let (_, entry) = app
        .get_json(&format!("/v1/log/entries/{}", rotated["ledger_index"]))
        .await;
    let leaf = &entry["entry"];
    assert_eq!(leaf["type"], "party.key_rotated", "{entry}");
    assert_eq!(leaf["signed"]["intent"], good);
    let recorded =
        registry::intent::SignedIntent::parse(leaf["signed"].to_string().as_bytes()).unwrap();
    let keys = [&old, &new].map(|pair| {
        use ring::signature::KeyPair;
        let key: [u8; 32] = pair.public_key().as_ref().try_into().unwrap();
        registry::intent::SignerKey::new(party.as_str(), key)
    });
    recorded.verify_signers(&keys).unwrap();
    assert_eq!(leaf["intent_sha256"], recorded.replay_key_hex());

    let (status, problem) = app.post_json_as(None, &path, &body).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:replayed-intent");
}

/// Uploads `bytes` as multipart with `metadata`, with `token`; (status, body).
async fn upload_with_metadata(
    app: &TestApp,
    token: &str,
    bytes: &[u8],
    metadata: &Value,
) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "metadata",
            reqwest::multipart::Part::text(metadata.to_string())
                .mime_str("application/json")
                .unwrap(),
        )
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("file.bin"),
        );
    answer(
        app.client
            .post(app.url("/v1/content"))
            .bearer_auth(token)
            .multipart(form),
    )
    .await
}

/// The leaf a receipt is for, decoded.
async fn leaf_of(app: &TestApp, receipt: &Value) -> Value {
    let (_, entry) = app
        .get_json(&format!("/v1/log/entries/{}", receipt["ledger"]["index"]))
        .await;
    entry["entry"].clone()
}

/// A registration names its first holders in its metadata, sorted by party
/// and summing to 10,000 basis points, and the leaf records them; a party
/// that registers without naming any holds the whole, while the operator
/// (not a party) leaves them unnamed. Holders that are not registered
/// parties, or whose shares do not add up, are refused before anything is
/// appended.
#[tokio::test]
async fn first_holders_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let op = app.token.clone();
    let mut parties = Vec::new();
    for (i, key) in KEYS.iter().enumerate() {
        let (status, created) = app
            .post_json(
                "/v1/parties",
                &json!({"name": format!("Holder {i}"), "roles": ["broadcaster"], "public_key": key}),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        parties.push((
            created["party_id"].as_str().unwrap().to_owned(),
            created["token"].as_str().unwrap().to_owned(),
        ));
    }
    let (a, b) = (&parties[0].0, &parties[1].0);

    let (status, receipt) = upload_as(&app, &parties[2].1, b"held whole by its registrant").await;
    assert_eq!(status, 201, "{receipt}");
    let leaf = leaf_of(&app, &receipt).await;
    assert_eq!(
        leaf["metadata"]["holders"],
        json!([{"party_id": parties[2].0, "share_bp": 10000}])
    );

    let (status, receipt) = upload_as(&app, &op, b"registered by the operator").await;
    assert_eq!(status, 201, "{receipt}");
    assert!(
        leaf_of(&app, &receipt).await["metadata"]
            .get("holders")
            .is_none()
    );

    let (status, receipt) = upload_with_metadata(
        &app,
        &op,
        b"held by two parties",
        &json!({"holders": [{"party_id": b, "share_bp": 4000}, {"party_id": a, "share_bp": 6000}]}),
    )
    .await;
    assert_eq!(status, 201, "{receipt}");
    let mut expected = vec![
        json!({"party_id": a, "share_bp": 6000}),
        json!({"party_id": b, "share_bp": 4000}),
    ];
    expected.sort_by_key(|h| h["party_id"].as_str().unwrap().to_owned());
    assert_eq!(
        leaf_of(&app, &receipt).await["metadata"]["holders"],
        json!(expected)
    );

    let size = app.checkpoint().await.head.size;
    for (holders, why) in [
        (json!([{"party_id": a, "share_bp": 6000}]), "6000"),
        (
            json!([{"party_id": "0192f0c1-0000-7000-8000-000000000099", "share_bp": 10000}]),
            "not registered",
        ),
    ] {
        let (status, problem) =
            upload_with_metadata(&app, &op, b"refused holders", &json!({"holders": holders})).await;
        assert_eq!(status, 400, "{problem}");
        assert!(
            problem["detail"].as_str().unwrap().contains(why),
            "{why}: {problem}"
        );
    }
    assert_eq!(app.checkpoint().await.head.size, size);
}
