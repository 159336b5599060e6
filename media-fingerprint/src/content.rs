//! Content (perceptual) fingerprints: one entry point that picks the
//! fingerprint for each kind of media.
//!
//! Images get the ISCC Image-Code. Audio and video fingerprints are not
//! computed in this version; when they are, they belong in modules of their own
//! beside `image_code`, dispatched from [`content_fingerprint`].

use std::io::{BufRead, Seek};

use serde::{Deserialize, Serialize};

use crate::image_code::image_code;
use crate::limits::Limits;
use crate::sniff::{MediaKind, Sniffed};

/// Content fingerprints of one upload, and what could not be computed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentFingerprint {
    /// 64-bit ISCC Image-Code in canonical `ISCC:...` form, for images that decoded.
    pub image_code: Option<String>,
    /// Fingerprints that apply to this kind of media but were not computed, with why.
    pub missing: Vec<MissingFingerprint>,
}

/// A fingerprint that was not computed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingFingerprint {
    /// Which fingerprint: `"iscc_image"`, `"iscc_audio"`, `"iscc_video"` or,
    /// for media of kind `other`, `"iscc_content"`.
    pub fingerprint: String,
    /// Why, in words fit to show the uploader.
    pub reason: String,
}

impl MissingFingerprint {
    fn new(fingerprint: &str, reason: impl Into<String>) -> Self {
        Self {
            fingerprint: fingerprint.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Content (perceptual) fingerprints computed from the decoded media. Never
/// fails for undecodable input: what could not be computed is listed in
/// `missing` with a reason.
///
/// `reader` must be positioned at the start of the media; `sniffed` is what
/// [`sniff`](crate::sniff) said about its first bytes. Decoding stays within
/// `limits`. Never panics, whatever the bytes.
pub fn content_fingerprint<R: BufRead + Seek>(
    reader: R,
    sniffed: &Sniffed,
    limits: &Limits,
) -> ContentFingerprint {
    let missing = match sniffed.kind {
        MediaKind::Image => match image_code(reader, limits) {
            Ok(code) => {
                return ContentFingerprint {
                    image_code: Some(code),
                    missing: Vec::new(),
                };
            }
            Err(error) => MissingFingerprint::new("iscc_image", error.to_string()),
        },
        MediaKind::Audio => MissingFingerprint::new(
            "iscc_audio",
            "audio fingerprinting is not available in this version",
        ),
        MediaKind::Video => MissingFingerprint::new(
            "iscc_video",
            "video fingerprinting is not available in this version",
        ),
        MediaKind::Other => MissingFingerprint::new(
            "iscc_content",
            format!(
                "no content fingerprint is computed for this media type ({})",
                sniffed.media_type.as_deref().unwrap_or("unknown")
            ),
        ),
    };
    ContentFingerprint {
        image_code: None,
        missing: vec![missing],
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::*;
    use crate::sniff::sniff;
    use crate::test_support::shared_path;

    /// Sniffs and fingerprints a shared media file, as the service will.
    fn fingerprint_file(rel: &str) -> (Sniffed, ContentFingerprint) {
        let bytes = std::fs::read(shared_path("media").join(rel)).expect("read media");
        let sniffed = sniff(&bytes[..bytes.len().min(crate::SNIFF_LEN)], None);
        let reader = BufReader::new(Cursor::new(bytes));
        let fingerprint = content_fingerprint(reader, &sniffed, &Limits::default());
        (sniffed, fingerprint)
    }

    /// An image gets an Image-Code and nothing is missing.
    #[test]
    fn image_gets_an_image_code() {
        let (_, fingerprint) = fingerprint_file("images/chelsea.png");
        assert!(fingerprint.image_code.is_some());
        assert!(fingerprint.missing.is_empty());
    }

    /// Audio and video get no Image-Code and one honest missing entry each.
    #[test]
    fn audio_and_video_are_reported_missing() {
        let (_, audio) = fingerprint_file("audio/love_theme.ogg");
        assert_eq!(
            audio,
            ContentFingerprint {
                image_code: None,
                missing: vec![MissingFingerprint::new(
                    "iscc_audio",
                    "audio fingerprinting is not available in this version"
                )],
            }
        );
        let (_, video) = fingerprint_file("video/clip_a_360p_reencoded.mp4");
        assert_eq!(video.image_code, None);
        assert_eq!(video.missing.len(), 1);
        assert_eq!(video.missing[0].fingerprint, "iscc_video");
    }

    /// Media of kind `other` says which type it had no fingerprint for.
    #[test]
    fn other_media_names_its_type() {
        let sniffed = sniff(b"%PDF-1.7\n", None);
        let fingerprint =
            content_fingerprint(Cursor::new(b"%PDF-1.7\n"), &sniffed, &Limits::default());
        assert_eq!(fingerprint.image_code, None);
        assert_eq!(fingerprint.missing[0].fingerprint, "iscc_content");
        assert!(fingerprint.missing[0].reason.contains("application/pdf"));
    }

    /// A truncated JPEG yields a missing `iscc_image` entry explaining the
    /// decode failure, not a panic.
    #[test]
    fn truncated_jpeg_is_missing_not_a_panic() {
        let bytes = std::fs::read(shared_path("media/images/flower.jpg")).expect("read");
        let half = bytes[..bytes.len() / 2].to_vec();
        let sniffed = sniff(&half, None);
        assert_eq!(sniffed.kind, MediaKind::Image);
        let fingerprint = content_fingerprint(Cursor::new(half), &sniffed, &Limits::default());
        assert_eq!(fingerprint.image_code, None);
        assert_eq!(fingerprint.missing.len(), 1);
        assert_eq!(fingerprint.missing[0].fingerprint, "iscc_image");
        eprintln!("truncated JPEG: {}", fingerprint.missing[0].reason);
        assert!(!fingerprint.missing[0].reason.is_empty());
    }

    /// Random bytes declared as an image yield a missing `iscc_image` entry.
    #[test]
    fn random_bytes_declared_as_image_are_missing() {
        let bytes: Vec<u8> = (0u32..2048)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let sniffed = sniff(&bytes, Some("image/jpeg"));
        assert_eq!(
            sniffed.kind,
            MediaKind::Image,
            "falls back to the declared type"
        );
        let fingerprint = content_fingerprint(Cursor::new(bytes), &sniffed, &Limits::default());
        assert_eq!(fingerprint.image_code, None);
        assert_eq!(fingerprint.missing[0].fingerprint, "iscc_image");
        assert!(fingerprint.missing[0].reason.contains("not recognised"));
    }

    /// Every prefix length and a sweep of single-byte corruptions of a small
    /// JPEG and PNG produce a result (code or missing entry), never a panic.
    #[test]
    fn damaged_images_never_panic() {
        for file in ["images/fallen_leaf_thumbnail.jpg", "images/coffee.gif"] {
            let bytes = std::fs::read(shared_path("media").join(file)).expect("read");
            let sniffed = sniff(&bytes, None);
            for keep in (0..bytes.len()).step_by(bytes.len() / 40 + 1) {
                let fingerprint =
                    content_fingerprint(Cursor::new(&bytes[..keep]), &sniffed, &Limits::default());
                assert!(fingerprint.image_code.is_some() || fingerprint.missing.len() == 1);
            }
            for position in (0..bytes.len().min(2048)).step_by(61) {
                let mut damaged = bytes.clone();
                damaged[position] ^= 0xa5;
                let fingerprint =
                    content_fingerprint(Cursor::new(damaged), &sniffed, &Limits::default());
                assert!(fingerprint.image_code.is_some() || fingerprint.missing.len() == 1);
            }
        }
    }

    /// The fingerprint serialises with the field names the API documents.
    #[test]
    fn content_fingerprint_serialises() {
        let (_, fingerprint) = fingerprint_file("audio/house_lo.wav");
        let json = serde_json::to_value(&fingerprint).expect("serialise");
        assert_eq!(json["image_code"], serde_json::Value::Null);
        assert_eq!(json["missing"][0]["fingerprint"], "iscc_audio");
    }
}
