//! A rights workflow end to end on a three-node cluster, each node a
//! separate process, every request over a real socket.

use serde_json::{Value, json};

use crate::support::{
    Database, NodeDir, TestApp, answer, in_seconds, key_pair, log_origin, proven_types,
    register_party, signed_body, write_secret,
};

/// Checks an answer's evidence with the answering node's key; the proven
/// entries' types.
async fn proven(node: &TestApp, answer: &Value) -> Vec<String> {
    proven_types(answer, &node.key().await)
}

/// A started three-voter cluster.
async fn three_nodes(
    secret: &std::path::Path,
    nodes: &[NodeDir],
    databases: &[Database],
) -> Vec<TestApp> {
    let n1 = nodes[0]
        .start_with(secret, false, &databases[0].flags())
        .await;
    let n2 = nodes[1]
        .start_with(secret, true, &databases[1].flags())
        .await;
    let n3 = nodes[2]
        .start_with(secret, true, &databases[2].flags())
        .await;
    for (id, node) in [(2, &nodes[1]), (3, &nodes[2])] {
        let (status, body) = n1
            .post_json(
                "/v1/cluster/learners",
                &json!({"node_id": id, "address": node.peer}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = n1
        .post_json("/v1/cluster/membership", &json!({"voters": [1, 2, 3]}))
        .await;
    assert_eq!(status, 200, "{body}");
    vec![n1, n2, n3]
}

/// An intent of `kind` for `log` with a fresh nonce and an hour to live.
fn intent(log: &str, kind: &str, nonce: u8, members: Value) -> Value {
    let mut intent = json!({
        "type": kind, "log": log, "nonce": format!("{nonce:02x}").repeat(20),
        "expires_at": in_seconds(3600),
    });
    for (k, v) in members.as_object().unwrap() {
        intent[k] = v.clone();
    }
    intent
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|l| l["licence_id"].as_str().unwrap().to_owned())
        .collect()
}

/// A broadcaster registers a programme; sells half of it to a rights
/// holder; both sign a licence to a streaming service for FR and DE, SVOD,
/// all of 2027; an overlapping exclusive grant is refused naming the first;
/// a sublicence inside the scope is accepted and one outside it refused; a
/// replayed transfer is refused; the licence is valid up to its end date
/// and not on it; after a key rotation the old key no longer signs; a
/// revocation takes the sublicences with it; an auditor's history query
/// returns all of it; every answer's evidence verifies offline. Each step
/// goes through a different node of three.
#[tokio::test]
async fn a_rights_workflow_on_three_nodes() {
    for databases in Database::each_kind(3).await {
        a_rights_workflow_on(&databases).await;
        for database in databases {
            database.drop_db().await;
        }
    }
}

async fn a_rights_workflow_on(databases: &[Database]) {
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "secret", "a rights workflow on three nodes");
    let dirs: Vec<NodeDir> = (1..=3).map(NodeDir::new).collect();
    let mut nodes = three_nodes(&secret, &dirs, databases).await;
    let node = |i: usize| &nodes[i % 3];
    let log = log_origin(node(0)).await;
    let (broadcaster, b_token) = register_party(node(0), "Channel One", &["broadcaster"], 31).await;
    let (holder, _) = register_party(node(0), "Rights Co", &["rights_holder"], 32).await;
    let (streamer, _) = register_party(node(0), "Streamer", &["rights_holder"], 33).await;
    let (reseller, _) = register_party(node(0), "Reseller", &["rights_holder"], 34).await;
    let (b_key, r_key, s_key) = (key_pair(31).0, key_pair(32).0, key_pair(33).0);

    // The broadcaster registers a programme through node 2.
    let (status, programme) = answer(
        node(1)
            .client
            .post(node(1).url("/v1/content"))
            .bearer_auth(&b_token)
            .header("content-type", "application/octet-stream")
            .body(b"Evening News, 4 December".to_vec()),
    )
    .await;
    assert_eq!(status, 201, "{programme}");
    let content = programme["content_id"].as_str().unwrap().to_owned();

    // It sells half to the rights holder, through node 3.
    let sale = signed_body(
        &intent(
            &log,
            "transfer",
            1,
            json!({"content_id": content,
                "from": [{"party_id": broadcaster, "share_bp": 5000}],
                "to": [{"party_id": holder, "share_bp": 5000}]}),
        ),
        &[(&broadcaster, &b_key)],
    );
    let transfers = format!("/v1/content/{content}/transfers");
    let (status, sold) = node(2).post_json(&transfers, &sale).await;
    assert_eq!(status, 201, "{sold}");

    // Both sign a licence to the streamer, through node 1.
    let scope = |include: &[&str], start: &str, end: &str, exclusive: bool| {
        json!({"territories": {"include": include, "exclude": []}, "media": ["svod"],
            "term": {"start": start, "end": end}, "exclusive": exclusive, "sublicensable": true})
    };
    let grant = |nonce: u8, licensee: &str, scope: Value| {
        let mut members = scope;
        members["content_id"] = json!(content);
        members["licensee"] = json!(licensee);
        signed_body(
            &intent(&log, "licence.grant", nonce, members),
            &[(&broadcaster, &b_key), (&holder, &r_key)],
        )
    };
    let licences = format!("/v1/content/{content}/licences");
    let (status, granted) = node(0)
        .post_json(
            &licences,
            &grant(
                2,
                &streamer,
                scope(&["FR", "DE"], "2027-01-01", "2028-01-01", true),
            ),
        )
        .await;
    assert_eq!(status, 201, "{granted}");
    let licence = granted["licence_id"].as_str().unwrap().to_owned();

    // An overlapping exclusive grant is refused, naming the first and where
    // they overlap.
    // Node 1 answered the grant after applying it; a refusal appends
    // nothing anywhere.
    let size = node(0).checkpoint().await.head.size;
    let (status, problem) = node(1)
        .post_json(
            &licences,
            &grant(
                3,
                &reseller,
                scope(&["DE", "AT"], "2027-06-01", "2028-06-01", true),
            ),
        )
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:licence-conflict");
    assert_eq!(
        problem["conflict"],
        json!({"licence_id": licence, "territories": {"include": ["DE"], "exclude": []},
            "media": ["svod"], "term": {"start": "2027-06-01", "end": "2028-01-01"}})
    );
    assert_eq!(node(0).checkpoint().await.head.size, size);

    // The streamer sublicenses part of its scope; beyond it is refused.
    let sublicence = |nonce: u8, include: &[&str]| {
        let mut members = scope(include, "2027-03-01", "2027-09-01", false);
        members["parent_licence_id"] = json!(licence);
        members["licensee"] = json!(reseller);
        signed_body(
            &intent(&log, "licence.sublicense", nonce, members),
            &[(&streamer, &s_key)],
        )
    };
    let sublicences = format!("/v1/licences/{licence}/sublicences");
    let (status, sub) = node(2)
        .post_json(&sublicences, &sublicence(4, &["FR"]))
        .await;
    assert_eq!(status, 201, "{sub}");
    let sub = sub["licence_id"].as_str().unwrap().to_owned();
    let (status, problem) = node(0)
        .post_json(&sublicences, &sublicence(5, &["IT"]))
        .await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:scope-exceeded");

    // A replayed transfer is refused.
    let (status, problem) = node(1).post_json(&transfers, &sale).await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:replayed-intent");

    // Valid up to the end date, not on it.
    let valid = |date: &str| format!("{licences}?territory=FR&medium=svod&date={date}");
    let (status, found) = node(1).get_json(&valid("2027-03-01")).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(&found["licences"]), [licence.clone(), sub.clone()]);
    assert!(
        proven(node(1), &found)
            .await
            .contains(&"licence.sublicensed".to_owned())
    );
    let (_, last_day) = node(2).get_json(&valid("2027-12-31")).await;
    assert_eq!(ids(&last_day["licences"]), std::slice::from_ref(&licence));
    let (_, ended) = node(0).get_json(&valid("2028-01-01")).await;
    assert_eq!(ids(&ended["licences"]), Vec::<String>::new());

    // After a key rotation the old key no longer signs.
    let (new_key, new_public) = key_pair(36);
    let rotation = signed_body(
        &intent(
            &log,
            "key.rotate",
            6,
            json!({"party_id": broadcaster, "public_key": new_public}),
        ),
        &[(&broadcaster, &b_key), (&broadcaster, &new_key)],
    );
    let (status, rotated) = node(0)
        .post_json(&format!("/v1/parties/{broadcaster}/keys"), &rotation)
        .await;
    assert_eq!(status, 200, "{rotated}");
    let gift = |nonce: u8, key| {
        signed_body(
            &intent(
                &log,
                "transfer",
                nonce,
                json!({"content_id": content,
                    "from": [{"party_id": broadcaster, "share_bp": 1000}],
                    "to": [{"party_id": holder, "share_bp": 1000}]}),
            ),
            &[(&broadcaster, key)],
        )
    };
    let (status, problem) = node(1).post_json(&transfers, &gift(7, &b_key)).await;
    assert_eq!(status, 403, "{problem}");
    assert_eq!(problem["type"], "urn:provreg:problem:unexpected-signer");
    let (status, gifted) = node(2).post_json(&transfers, &gift(8, &new_key)).await;
    assert_eq!(status, 201, "{gifted}");

    // A revocation takes the sublicence with it. Entries are stamped to
    // the second: the revocation falls in a later one than the gift, so
    // that the gift's instant shows what held before it.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let revocation = signed_body(
        &intent(
            &log,
            "licence.revoke",
            9,
            json!({"licence_id": licence, "reason": "the fee was not paid"}),
        ),
        &[(&broadcaster, &new_key), (&holder, &r_key)],
    );
    let (status, revoked) = node(0)
        .post_json(&format!("/v1/licences/{licence}/revocations"), &revocation)
        .await;
    assert_eq!(status, 201, "{revoked}");
    let (_, after) = node(1).get_json(&valid("2027-03-01")).await;
    assert_eq!(ids(&after["licences"]), Vec::<String>::new());
    let (status, shown) = node(2).get_json(&format!("/v1/licences/{sub}")).await;
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["licence"]["status"], "revoked");
    assert_eq!(
        proven(node(2), &shown).await,
        ["licence.granted", "licence.sublicensed", "licence.revoked"],
        "a sublicence rests on its parent's grant too"
    );
    // As ODRL, the revoked licence's permission ends at the revocation.
    let (status, odrl) = node(0)
        .get_json(&format!("/v1/licences/{licence}?format=odrl"))
        .await;
    assert_eq!(status, 200, "{odrl}");
    let revoked_index = revoked["ledger"]["index"].as_u64().unwrap();
    let (_, entry) = node(0)
        .get_json(&format!("/v1/log/entries/{revoked_index}"))
        .await;
    let constraints = odrl["permission"][0]["constraint"].as_array().unwrap();
    assert_eq!(
        constraints.last().unwrap(),
        &json!({"leftOperand": "dateTime", "operator": "lt",
            "rightOperand": {"@value": entry["entry"]["revoked_at"], "@type": "xsd:dateTime"}})
    );
    // What held before the revocation still shows at an earlier instant.
    let before = gifted["ledger"]["index"].as_u64().unwrap();
    let (_, entry) = node(0).get_json(&format!("/v1/log/entries/{before}")).await;
    let instant = entry["entry"]["transferred_at"].as_str().unwrap();
    let (_, then) = node(0)
        .get_json(&format!("{}&at={instant}", valid("2027-03-01")))
        .await;
    assert_eq!(ids(&then["licences"]), [licence.clone(), sub.clone()]);

    // Holders now, and the auditor's history of all of it.
    let (_, holders) = node(1)
        .get_json(&format!("/v1/content/{content}/holders"))
        .await;
    let mut shares: Vec<u64> = holders["holders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["share_bp"].as_u64().unwrap())
        .collect();
    shares.sort_unstable();
    assert_eq!(shares, [4000, 6000]);
    let (status, history) = node(2)
        .get_json(&format!("/v1/content/{content}/history"))
        .await;
    assert_eq!(status, 200, "{history}");
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "content.registered",
            "content.transferred",
            "licence.granted",
            "licence.sublicensed",
            "content.transferred",
            "licence.revoked",
        ]
    );
    assert_eq!(proven(node(2), &history).await, types);
    for node in &mut nodes {
        node.kill();
    }
}
