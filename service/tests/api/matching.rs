//! `POST /v1/content/match`: finding registered content like an upload.

use serde_json::Value;

use crate::support::{TestApp, media};

async fn match_file(app: &TestApp, file: &str) -> Value {
    let resp = app
        .client
        .post(app.url("/v1/content/match"))
        .header("content-type", "application/octet-stream")
        .body(std::fs::read(media(file)).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{file}");
    resp.json().await.unwrap()
}

/// Identical bytes match on SHA-256; a thumbnail matches its full-size
/// photograph by Image-Code; an unrelated photo matches nothing; nothing a
/// match query uploads is stored.
#[tokio::test]
async fn images_match_by_bytes_and_by_picture() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let mut ids = std::collections::HashMap::new();
    for file in [
        "images/path_2560x1600.jpg",
        "images/fallen_leaf_2560x1600.jpg",
        "images/coffee.png",
    ] {
        let resp = app
            .upload_raw(std::fs::read(media(file)).unwrap(), "image/jpeg")
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        ids.insert(file, body["content_id"].as_str().unwrap().to_owned());
    }

    let exact = match_file(&app, "images/coffee.png").await;
    assert_eq!(exact["matches"][0]["basis"], "sha256");
    assert_eq!(exact["matches"][0]["verdict"], "same");
    assert_eq!(
        exact["matches"][0]["content"]["content_id"],
        ids["images/coffee.png"].as_str()
    );

    let thumb = match_file(&app, "images/path_thumbnail.jpg").await;
    let best = &thumb["matches"][0];
    assert_eq!(
        best["content"]["content_id"],
        ids["images/path_2560x1600.jpg"].as_str()
    );
    assert_eq!(best["basis"], "iscc_image");
    assert_ne!(best["verdict"], "different");
    assert_eq!(thumb["matches"].as_array().unwrap().len(), 1, "{thumb}");

    let webp = match_file(&app, "images/coffee.webp").await;
    assert_eq!(
        webp["matches"][0]["content"]["content_id"],
        ids["images/coffee.png"].as_str()
    );

    let unrelated = match_file(&app, "images/rocket.jpg").await;
    assert_eq!(unrelated["matches"], serde_json::json!([]));

    assert_eq!(
        app.checkpoint().await.head.size,
        4,
        "match queries store nothing"
    );
}

/// An audio excerpt and a re-encoded copy are found in the registered
/// recording, with the excerpt's offset; an unrelated track is not.
#[tokio::test]
async fn audio_excerpts_and_copies_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let mut ids = std::collections::HashMap::new();
    for file in ["audio/love_theme.ogg", "audio/loyalists.ogg"] {
        let resp = app
            .upload_raw(std::fs::read(media(file)).unwrap(), "audio/ogg")
            .await;
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        ids.insert(file, body["content_id"].as_str().unwrap().to_owned());
    }

    let excerpt = match_file(&app, "audio/love_theme_30s_to_50s.flac").await;
    let best = &excerpt["matches"][0];
    assert_eq!(
        best["content"]["content_id"],
        ids["audio/love_theme.ogg"].as_str(),
        "{excerpt}"
    );
    assert_eq!(best["basis"], "audio");
    let offset = best["offset_seconds"].as_f64().unwrap();
    assert!((offset - 30.0).abs() <= 1.0, "offset {offset}");
    assert_eq!(excerpt["matches"].as_array().unwrap().len(), 1, "{excerpt}");

    let mp3 = match_file(&app, "audio/love_theme.mp3").await;
    assert_eq!(
        mp3["matches"][0]["content"]["content_id"],
        ids["audio/love_theme.ogg"].as_str()
    );
    assert_eq!(mp3["matches"][0]["verdict"], "same");

    let unrelated = match_file(&app, "audio/elvish-theme.ogg").await;
    assert_eq!(unrelated["matches"], serde_json::json!([]), "{unrelated}");
}

/// A video excerpt and a lower-resolution re-encode are found in the
/// registered clip, the excerpt at its offset; the other clip is not.
#[tokio::test]
async fn video_excerpts_and_copies_are_found() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::start(dir.path()).await;
    let resp = app
        .upload_raw(
            std::fs::read(media("video/clip_a_720p_high.mp4")).unwrap(),
            "video/mp4",
        )
        .await;
    assert_eq!(resp.status(), 201);
    let clip_a: Value = resp.json().await.unwrap();
    assert!(
        clip_a["iscc"]["video"]
            .as_str()
            .unwrap()
            .starts_with("ISCC:"),
        "{clip_a}"
    );
    assert!(
        clip_a["iscc"]["audio"]
            .as_str()
            .unwrap()
            .starts_with("ISCC:"),
        "{clip_a}"
    );
    let id = clip_a["content_id"].as_str().unwrap();

    let excerpt = match_file(&app, "video/clip_a_excerpt_6s_to_16s.mp4").await;
    let best = &excerpt["matches"][0];
    assert_eq!(best["content"]["content_id"], id, "{excerpt}");
    let offset = best["offset_seconds"].as_f64().unwrap();
    assert!((offset - 6.0).abs() <= 1.0, "offset {offset}");

    let small = match_file(&app, "video/clip_a_360p_reencoded.mp4").await;
    assert_eq!(small["matches"][0]["content"]["content_id"], id, "{small}");
    assert_eq!(small["matches"][0]["verdict"], "same");

    let other = match_file(&app, "video/clip_b_720p_high.mp4").await;
    assert_eq!(other["matches"], serde_json::json!([]), "{other}");
}
