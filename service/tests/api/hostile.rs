//! Requests a hostile client would send: each gets a clear problem and the
//! node goes on serving everyone else.

use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::support::{TestApp, media};

/// The metadata documents from issue 10 whose non-ASCII identifiers
/// panicked validation, which closed the connection without an answer.
const NON_ASCII_IDENTIFIERS: [&str; 3] = [
    r#"{"identifiers":{"isan":"aéééééééé"}}"#,
    r#"{"identifiers":{"eidr":"10.5240/aéééééééééé"}}"#,
    r#"{"identifiers":{"isan":"0123456789ABCDEF01éééé"}}"#,
];

/// A multipart upload of the rocket photo with `metadata` as its JSON part,
/// as `curl -F file=@rocket.jpg -F 'metadata=...;type=application/json'`
/// sends it; to `/v1/content` with the operator token, or to
/// `/v1/content/match` without one.
async fn upload(app: &TestApp, path: &str, metadata: &str) -> reqwest::Result<reqwest::Response> {
    let image = std::fs::read(media("images/rocket.jpg")).unwrap();
    let form = Form::new()
        .part(
            "file",
            Part::bytes(image)
                .file_name("rocket.jpg")
                .mime_str("image/jpeg")
                .unwrap(),
        )
        .part(
            "metadata",
            Part::text(metadata.to_owned())
                .mime_str("application/json")
                .unwrap(),
        );
    let mut request = app.client.post(app.url(path)).multipart(form);
    if path == "/v1/content" {
        request = request.bearer_auth(&app.token);
    }
    request.send().await
}

/// Asserts a 400 problem+json whose detail mentions `expect`.
async fn assert_bad_request(resp: reqwest::Result<reqwest::Response>, what: &str, expect: &str) {
    let resp = resp.unwrap_or_else(|e| panic!("{what}: no answer: {e}"));
    assert_eq!(resp.status(), 400, "{what}");
    assert_eq!(
        resp.headers()["content-type"],
        "application/problem+json",
        "{what}"
    );
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["status"], 400, "{what}");
    assert_eq!(problem["type"], "urn:provreg:problem:bad-request", "{what}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains(expect), "{what}: {detail}");
}

/// The node answers a health check and still registers and matches.
async fn assert_still_serving(app: &TestApp) {
    let (status, _) = app.get_json("/v1/health").await;
    assert_eq!(status, 200);
    let resp = upload(app, "/v1/content/match", "{}").await.unwrap();
    assert_eq!(resp.status(), 200);
}

/// Non-ASCII identifiers, sent without a token to the match endpoint and
/// with one to registration, are each answered 400 (not an empty reply);
/// nothing is registered and the node keeps answering.
#[tokio::test]
async fn non_ascii_identifiers_are_a_400_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for path in ["/v1/content/match", "/v1/content"] {
        for metadata in NON_ASCII_IDENTIFIERS {
            let what = format!("{path} {metadata}");
            assert_bad_request(upload(&app, path, metadata).await, &what, "ASCII").await;
        }
    }
    assert_still_serving(&app).await;
    assert_eq!(app.checkpoint().await.head.size, 1, "only the formation");
}

/// Metadata that is a JSON array (which was read as a title) or any other
/// non-object is refused with a 400.
#[tokio::test]
async fn metadata_that_is_not_an_object_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for metadata in [r#"["A title"]"#, r#"["A title", {}, []]"#, r#""A title""#] {
        for path in ["/v1/content", "/v1/content/match"] {
            let what = format!("{path} {metadata}");
            assert_bad_request(upload(&app, path, metadata).await, &what, "metadata").await;
        }
    }
    assert_eq!(app.checkpoint().await.head.size, 1, "nothing registered");
    assert_still_serving(&app).await;
}

/// Two identifier keys naming one scheme, in different case or the same,
/// are a 400: neither value is silently kept.
#[tokio::test]
async fn an_identifier_scheme_given_twice_is_a_400() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    for metadata in [
        r#"{"identifiers":{"isrc":"USRC17607839","ISRC":"GBAYE0601498"}}"#,
        r#"{"identifiers":{"isrc":"USRC17607839","isrc":"GBAYE0601498"}}"#,
    ] {
        assert_bad_request(
            upload(&app, "/v1/content", metadata).await,
            metadata,
            "twice",
        )
        .await;
    }
    assert_eq!(app.checkpoint().await.head.size, 1, "nothing registered");
    assert_still_serving(&app).await;
}
