//! Bad input gets a clear problem+json error and changes nothing.

use serde_json::Value;

use crate::support::{TestApp, media};

async fn assert_problem(resp: reqwest::Response, status: u16) -> Value {
    assert_eq!(
        resp.status().as_u16(),
        status,
        "{:?}",
        resp.url().to_string()
    );
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:provreg:problem:")
    );
    assert!(!body["detail"].as_str().unwrap().is_empty());
    body
}

/// Writes without the operator token are 401 and store nothing, and the
/// upload is refused before its body is read.
#[tokio::test]
async fn writes_need_the_operator_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let bytes = std::fs::read(media("images/rocket.jpg")).unwrap();
    let url = app.url("/v1/content");
    for auth in [
        None,
        Some("Bearer wrong-token-wrong-token"),
        Some("Basic b3BlcmF0b3I6eA=="),
    ] {
        let mut req = app
            .client
            .post(&url)
            .header("content-type", "image/jpeg")
            .body(bytes.clone());
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        assert_problem(resp, 401).await;
    }
    assert_eq!(app.checkpoint().await.head.size, 1, "only the formation");
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &bytes));
    let (status, _) = app.get_json(&format!("/v1/content?sha256={sha}")).await;
    assert_eq!(status, 404);
}

/// Malformed and out-of-range read parameters are 400; absent things 404.
#[tokio::test]
async fn read_parameters_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let resp = app
        .upload_raw(
            std::fs::read(media("images/rocket.jpg")).unwrap(),
            "image/jpeg",
        )
        .await;
    assert_eq!(resp.status(), 201);

    for (path, status) in [
        ("/v1/log/entries/abc", 400),
        ("/v1/log/entries/-1", 400),
        // The log holds the formation and the upload: two leaves.
        ("/v1/log/entries/2", 404),
        ("/v1/log/proof/inclusion?index=1&tree_size=1", 400),
        ("/v1/log/proof/inclusion?index=0&tree_size=3", 400),
        ("/v1/log/proof/inclusion?index=0", 400),
        ("/v1/log/proof/inclusion?index=x&tree_size=1", 400),
        ("/v1/log/proof/consistency?from=0&to=1", 400),
        ("/v1/log/proof/consistency?from=2&to=1", 400),
        ("/v1/log/proof/consistency?from=1&to=3", 400),
        ("/v1/log/proof/consistency?from=1", 400),
        ("/v1/content?sha256=xyz", 400),
        ("/v1/content", 400),
        ("/v1/content/not-an-id", 400),
        ("/v1/content/0192f0c1-0000-7000-8000-0000000000ff", 404),
        (
            "/v1/content?sha256=0000000000000000000000000000000000000000000000000000000000000000",
            404,
        ),
        ("/v1/nothing-here", 404),
    ] {
        let resp = app.client.get(app.url(path)).send().await.unwrap();
        assert_problem(resp, status).await;
    }
}

/// Every malformed upload is refused with a clear error, the log is
/// unchanged, and no spooled file is left behind.
#[tokio::test]
async fn bad_uploads_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start_with(dir.path(), &["--max-upload-bytes", "100000"]).await;
    let image = std::fs::read(media("images/fallen_leaf_thumbnail.jpg")).unwrap();
    let url = app.url("/v1/content");
    let post = || app.client.post(&url).bearer_auth(&app.token);
    let part = |bytes: Vec<u8>| reqwest::multipart::Part::bytes(bytes).file_name("f.jpg");
    use reqwest::multipart::{Form, Part};

    // Empty body.
    assert_problem(
        post()
            .header("content-type", "image/jpeg")
            .send()
            .await
            .unwrap(),
        400,
    )
    .await;
    // Over the configured limit (the rocket is 112 KB).
    let big = std::fs::read(media("images/rocket.jpg")).unwrap();
    assert_problem(
        post()
            .header("content-type", "image/jpeg")
            .body(big)
            .send()
            .await
            .unwrap(),
        413,
    )
    .await;
    // Multipart without a file part.
    let form = Form::new().part("metadata", Part::text("{}"));
    assert_problem(post().multipart(form).send().await.unwrap(), 400).await;
    // Two file parts.
    let form = Form::new()
        .part("file", part(image.clone()))
        .part("file", part(image.clone()));
    assert_problem(post().multipart(form).send().await.unwrap(), 400).await;
    // An unexpected part.
    let form = Form::new()
        .part("file", part(image.clone()))
        .part("extra", Part::text("x"));
    assert_problem(post().multipart(form).send().await.unwrap(), 400).await;
    // Metadata that is not JSON, has unknown fields, or a bad identifier.
    for metadata in [
        "not json",
        r#"{"titel":"typo"}"#,
        r#"{"identifiers":{"isrc":"nope"}}"#,
        r#"{"identifiers":{"doi":"10.1000/1"}}"#,
        r#"{"derived_from":["not-an-id"]}"#,
    ] {
        let form = Form::new()
            .part("metadata", Part::text(metadata))
            .part("file", part(image.clone()));
        let problem = assert_problem(post().multipart(form).send().await.unwrap(), 400).await;
        assert!(
            problem["detail"].as_str().unwrap().contains("metadata"),
            "{metadata}: {problem}"
        );
    }
    // Multipart that is not form-data.
    let resp = post()
        .header("content-type", "multipart/mixed; boundary=x")
        .body("--x--")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 415).await;

    assert_eq!(app.checkpoint().await.head.size, 1, "only the formation");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
        .unwrap()
        .collect();
    assert!(
        leftovers.is_empty(),
        "spooled uploads left behind: {leftovers:?}"
    );

    // And a good upload still works afterwards.
    assert_eq!(app.upload_raw(image, "image/jpeg").await.status(), 201);
}

/// A known path with an unsupported method is a 405 problem that still says
/// which methods are allowed; the bearer scheme name is case-insensitive.
#[tokio::test]
async fn method_not_allowed_and_scheme_case() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let resp = app.client.put(app.url("/v1/content")).send().await.unwrap();
    let allow = resp
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_problem(resp, 405).await;
    assert!(allow.unwrap_or_default().contains("POST"));

    let bytes = std::fs::read(media("images/rocket.jpg")).unwrap();
    let resp = app
        .client
        .post(app.url("/v1/content"))
        .header("authorization", format!("bearer {}", app.token))
        .header("content-type", "image/jpeg")
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
}
