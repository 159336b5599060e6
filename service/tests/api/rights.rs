//! Ownership: transfers on signed intents and who holds what, when, with
//! the evidence each answer rests on.

use serde_json::{Value, json};

use crate::support::{TestApp, answer, in_seconds, key_pair, signed_body};

/// Registers a party with `roles` and the key of `seed`; (id, token).
async fn party(app: &TestApp, name: &str, roles: &[&str], seed: u8) -> (String, String) {
    let (_, public) = key_pair(seed);
    let (status, created) = app
        .post_json_as(
            Some(&app.token),
            "/v1/parties",
            &json!({"name": name, "roles": roles, "public_key": public}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    (
        created["party_id"].as_str().unwrap().to_owned(),
        created["token"].as_str().unwrap().to_owned(),
    )
}

/// The log's origin: the first line of its checkpoint.
async fn origin(app: &TestApp) -> String {
    let checkpoint = app.get_text("/v1/log/checkpoint").await;
    checkpoint.lines().next().unwrap().to_owned()
}

/// A `transfer` intent of `content` from and to (party id, basis points).
fn transfer(
    log: &str,
    nonce: u8,
    content: &str,
    from: &[(&str, u32)],
    to: &[(&str, u32)],
) -> Value {
    let side = |shares: &[(&str, u32)]| {
        shares
            .iter()
            .map(|(p, bp)| json!({"party_id": p, "share_bp": bp}))
            .collect::<Vec<_>>()
    };
    json!({
        "type": "transfer", "log": log, "nonce": format!("{nonce:02x}").repeat(16),
        "expires_at": in_seconds(3600), "content_id": content,
        "from": side(from), "to": side(to),
    })
}

/// Verifies an answer's evidence as `provreg verify` does; the proven
/// entries' types, in order.
fn verified_types(answer: &Value, key: &str) -> Vec<String> {
    let evidence: service::Evidence = serde_json::from_value(answer["evidence"].clone()).unwrap();
    let (_, entries) = service::verify::verify_evidence(&evidence, key).unwrap();
    entries
        .iter()
        .map(|(_, e)| e.type_name().to_owned())
        .collect()
}

/// A broadcaster's upload is held wholly by it; a transfer signed by the
/// giver moves half to a rights holder and is proven; holders are known now
/// and at past instants, each answer with evidence that verifies offline.
/// Replays, non-holders, overdrafts, wrong signers, unbalanced shares,
/// expired intents, unknown content and unknown receivers are each refused
/// with their own problem type, and none appends anything.
#[tokio::test]
async fn transfers_and_holders() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let key = app.key().await;
    let log = origin(&app).await;
    let (broadcaster, token) = party(&app, "Channel One", &["broadcaster"], 21).await;
    let (holder, _) = party(&app, "Rights Co", &["rights_holder"], 22).await;
    let (stranger, _) = party(&app, "Stranger", &["rights_holder"], 23).await;
    let (b_pair, _) = key_pair(21);
    let (h_pair, _) = key_pair(22);
    let (s_pair, _) = key_pair(23);

    let (status, receipt) = answer(
        app.client
            .post(app.url("/v1/content"))
            .bearer_auth(&token)
            .header("content-type", "application/octet-stream")
            .body(b"a programme".to_vec()),
    )
    .await;
    assert_eq!(status, 201, "{receipt}");
    let content = receipt["content_id"].as_str().unwrap().to_owned();
    let registered_at = receipt["registered_at"].as_str().unwrap().to_owned();
    let holders_path = format!("/v1/content/{content}/holders");
    let (status, first) = app.get_json(&holders_path).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        first["holders"],
        json!([{"party_id": broadcaster, "share_bp": 10000}])
    );
    assert_eq!(verified_types(&first, &key), ["content.registered"]);

    // Entries are stamped to the second: the sale must fall in a later one
    // for an instant to tell it from the registration.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let path = format!("/v1/content/{content}/transfers");
    let sale = signed_body(
        &transfer(
            &log,
            1,
            &content,
            &[(&broadcaster, 5000)],
            &[(&holder, 5000)],
        ),
        &[(&broadcaster, &b_pair)],
    );
    let (status, sold) = app.post_json(&path, &sale).await;
    assert_eq!(status, 201, "{sold}");
    let mut expected = vec![
        json!({"party_id": broadcaster, "share_bp": 5000}),
        json!({"party_id": holder, "share_bp": 5000}),
    ];
    expected.sort_by_key(|h| h["party_id"].as_str().unwrap().to_owned());
    assert_eq!(sold["holders"], json!(expected));
    assert_eq!(sold["content_id"], content.as_str());
    let size = app.checkpoint().await.head.size;

    let unknown = "0192f0c1-0000-7000-8000-00000000dead";
    let refusals = [
        (sale.clone(), path.clone(), 409, "replayed-intent"),
        (
            signed_body(
                &transfer(&log, 2, &content, &[(&stranger, 1)], &[(&holder, 1)]),
                &[(&stranger, &s_pair)],
            ),
            path.clone(),
            409,
            "not-a-holder",
        ),
        (
            signed_body(
                &transfer(
                    &log,
                    3,
                    &content,
                    &[(&broadcaster, 6000)],
                    &[(&holder, 6000)],
                ),
                &[(&broadcaster, &b_pair)],
            ),
            path.clone(),
            409,
            "insufficient-share",
        ),
        (
            signed_body(
                &transfer(&log, 4, &content, &[(&broadcaster, 100)], &[(&holder, 100)]),
                &[(&holder, &h_pair)],
            ),
            path.clone(),
            403,
            "unexpected-signer",
        ),
        (
            signed_body(
                &transfer(&log, 5, &content, &[(&broadcaster, 100)], &[(&holder, 90)]),
                &[(&broadcaster, &b_pair)],
            ),
            path.clone(),
            400,
            "unbalanced-shares",
        ),
        (
            {
                let mut expired =
                    transfer(&log, 6, &content, &[(&broadcaster, 100)], &[(&holder, 100)]);
                expired["expires_at"] = json!(in_seconds(-5));
                signed_body(&expired, &[(&broadcaster, &b_pair)])
            },
            path.clone(),
            422,
            "expired",
        ),
        (
            signed_body(
                &transfer(&log, 7, unknown, &[(&broadcaster, 100)], &[(&holder, 100)]),
                &[(&broadcaster, &b_pair)],
            ),
            format!("/v1/content/{unknown}/transfers"),
            404,
            "unknown-content",
        ),
        (
            signed_body(
                &transfer(&log, 8, &content, &[(&broadcaster, 100)], &[(unknown, 100)]),
                &[(&broadcaster, &b_pair)],
            ),
            path.clone(),
            400,
            "bad-request",
        ),
        (
            signed_body(
                &transfer(&log, 9, &content, &[(&broadcaster, 100)], &[(&holder, 100)]),
                &[(&broadcaster, &b_pair)],
            ),
            format!("/v1/content/{unknown}/transfers"),
            400,
            "bad-request",
        ),
    ];
    for (body, path, status, reason) in refusals {
        let (got, problem) = app.post_json(&path, &body).await;
        assert_eq!(got, status, "{reason}: {problem}");
        assert_eq!(
            problem["type"],
            format!("urn:provreg:problem:{reason}"),
            "{problem}"
        );
    }
    assert_eq!(app.checkpoint().await.head.size, size);

    let (status, now) = app.get_json(&holders_path).await;
    assert_eq!(status, 200, "{now}");
    assert_eq!(now["holders"], json!(expected));
    assert_eq!(
        verified_types(&now, &key),
        ["content.registered", "content.transferred"]
    );
    let (status, then) = app
        .get_json(&format!("{holders_path}?at={registered_at}"))
        .await;
    assert_eq!(status, 200, "{then}");
    assert_eq!(then["holders"], first["holders"]);
    assert_eq!(verified_types(&then, &key), ["content.registered"]);
    let (status, before) = app
        .get_json(&format!("{holders_path}?at=2000-01-01T00:00:00Z"))
        .await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        (
            before["holders"].clone(),
            verified_types(&before, &key).len()
        ),
        (json!([]), 0)
    );
    for bad in ["?at=yesterday", "?colour=red"] {
        let (status, problem) = app.get_json(&format!("{holders_path}{bad}")).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let (status, _) = app
        .get_json(&format!("/v1/content/{unknown}/holders"))
        .await;
    assert_eq!(status, 404);

    // The CLI checks the same answer.
    let answer_file = dir.path().join("holders.json");
    std::fs::write(&answer_file, now.to_string()).unwrap();
    let summary = service::verify::verify(&service::config::VerifyArgs {
        receipt: answer_file,
        key: key.clone(),
        file: None,
    })
    .unwrap();
    assert!(summary.starts_with("OK: 2 events"), "{summary}");
}
