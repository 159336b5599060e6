//! Deciding what kind of media an upload is, from its first bytes.

use serde::{Deserialize, Serialize};

/// How many leading bytes [`sniff`] needs to recognise every format it knows.
/// Passing fewer works but may leave some formats unrecognised.
pub const SNIFF_LEN: usize = 8192;

/// Broad kind of media, which decides which content fingerprint applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// Still images (the first frame of an animation counts as the image).
    Image,
    /// Sound recordings.
    Audio,
    /// Moving pictures, with or without sound.
    Video,
    /// Anything else: documents, archives, unknown bytes.
    Other,
}

/// What [`sniff`] found out about an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    /// Broad kind of media.
    pub kind: MediaKind,
    /// MIME type (lowercase, without parameters), or `None` when neither the
    /// bytes nor a well-formed declared type gave one.
    pub media_type: Option<String>,
}

/// Sniffs the media kind and MIME type from the first bytes (magic numbers via
/// `infer`), falling back to the declared Content-Type only when sniffing finds
/// nothing. The declared type never overrides what the bytes say.
///
/// `head` should be the first [`SNIFF_LEN`] bytes of the upload (or all of it,
/// if shorter). `declared` is the client's Content-Type, parameters allowed
/// (`"image/png; charset=binary"`); a malformed one is ignored.
pub fn sniff(head: &[u8], declared: Option<&str>) -> Sniffed {
    if let Some(found) = infer::get(head) {
        let kind = match found.matcher_type() {
            infer::MatcherType::Image => MediaKind::Image,
            infer::MatcherType::Audio => MediaKind::Audio,
            infer::MatcherType::Video => MediaKind::Video,
            _ => MediaKind::Other,
        };
        return Sniffed {
            kind,
            media_type: Some(found.mime_type().to_owned()),
        };
    }
    if is_mpeg_audio(head) {
        return Sniffed {
            kind: MediaKind::Audio,
            media_type: Some("audio/mpeg".to_owned()),
        };
    }
    match declared.and_then(essence).filter(|t| !is_uninformative(t)) {
        Some(media_type) => Sniffed {
            kind: kind_of_media_type(&media_type),
            media_type: Some(media_type),
        },
        None => Sniffed {
            kind: MediaKind::Other,
            media_type: None,
        },
    }
}

/// Declared types that say nothing about the content: clients send them by
/// default (curl's `--data-binary` sends a form type), so recording them in
/// the ledger would record the client's habits, not the file.
fn is_uninformative(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/octet-stream" | "application/x-www-form-urlencoded"
    ) || media_type.starts_with("multipart/")
}

/// True when `head` starts with two consecutive, consistent MPEG audio frame
/// headers: an MP3 (or MP2) without an ID3 tag.
///
/// `infer` recognises such files only for MPEG-1 and MPEG-2 Layer III; MPEG-2.5
/// files (low sample rates, as in speech recordings) and Layers I and II slip
/// through. One 11-bit sync word alone is too weak a signal (plenty of binary
/// data starts with 0xFFE), so the second frame must sit exactly where the first
/// frame's header says it ends.
fn is_mpeg_audio(head: &[u8]) -> bool {
    let Some(first) = MpegFrame::parse(head) else {
        return false;
    };
    let Some(rest) = head.get(first.length..) else {
        return false;
    };
    MpegFrame::parse(rest).is_some_and(|second| {
        (second.version, second.layer, second.sample_rate)
            == (first.version, first.layer, first.sample_rate)
    })
}

/// What sniffing needs from an MPEG audio frame header (ISO 11172-3 §2.4.2.3,
/// ISO 13818-3, and the unofficial MPEG-2.5 extension).
struct MpegFrame {
    /// 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1 (1 is reserved).
    version: u8,
    /// 1 = Layer III, 2 = Layer II, 3 = Layer I (0 is reserved).
    layer: u8,
    sample_rate: u32,
    /// Bytes from this header to the next.
    length: usize,
}

impl MpegFrame {
    fn parse(bytes: &[u8]) -> Option<Self> {
        let &[b0, b1, b2, _, ..] = bytes else {
            return None;
        };
        if b0 != 0xFF || b1 & 0xE0 != 0xE0 {
            return None;
        }
        let version = (b1 >> 3) & 0b11;
        let layer = (b1 >> 1) & 0b11;
        let bitrate_index = usize::from(b2 >> 4);
        let rate_index = usize::from((b2 >> 2) & 0b11);
        let padding = u32::from((b2 >> 1) & 1);
        // Reserved values; free-format bitrate (index 0) gives no frame length.
        if version == 1
            || layer == 0
            || bitrate_index == 0
            || bitrate_index == 15
            || rate_index == 3
        {
            return None;
        }
        let mpeg1 = version == 3;
        // Bitrates in kbit/s by layer, for MPEG-1 and for MPEG-2/2.5.
        let kbps: [u32; 15] = match (mpeg1, layer) {
            (true, 3) => [
                0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
            ],
            (true, 2) => [
                0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
            ],
            (true, _) => [
                0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
            ],
            (false, 3) => [
                0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
            ],
            (false, _) => [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        };
        let base_rate = [44_100, 48_000, 32_000][rate_index];
        let sample_rate = match version {
            3 => base_rate,
            2 => base_rate / 2,
            _ => base_rate / 4,
        };
        let bitrate = kbps[bitrate_index] * 1000;
        let length = match layer {
            3 => (12 * bitrate / sample_rate + padding) * 4,
            1 if !mpeg1 => 72 * bitrate / sample_rate + padding,
            _ => 144 * bitrate / sample_rate + padding,
        };
        Some(Self {
            version,
            layer,
            sample_rate,
            length: usize::try_from(length).ok()?,
        })
    }
}

/// The `type/subtype` of a Content-Type value, lowercased, or `None` if it is
/// not of that shape (RFC 9110 §8.3.1: both parts are tokens).
fn essence(content_type: &str) -> Option<String> {
    let essence = content_type.split(';').next()?.trim();
    let (top, sub) = essence.split_once('/')?;
    let is_token = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    (is_token(top) && is_token(sub)).then(|| essence.to_ascii_lowercase())
}

/// The media kind a (lowercase) MIME type's top-level type names.
fn kind_of_media_type(media_type: &str) -> MediaKind {
    match media_type.split('/').next() {
        Some("image") => MediaKind::Image,
        Some("audio") => MediaKind::Audio,
        Some("video") => MediaKind::Video,
        _ => MediaKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::test_support::shared_path;

    /// The first `SNIFF_LEN` bytes of a shared media file.
    fn head_of(path: &std::path::Path) -> Vec<u8> {
        let mut head = Vec::new();
        std::fs::File::open(path)
            .expect("open media")
            .take(SNIFF_LEN as u64)
            .read_to_end(&mut head)
            .expect("read media");
        head
    }

    /// Every file in the shared media folders is sniffed to the kind its
    /// extension implies, with an `image/`, `audio/` or `video/` MIME type.
    #[test]
    fn shared_media_sniffs_to_the_right_kind() {
        let mut seen = 0;
        for (folder, mime_prefix) in [
            ("images", "image/"),
            ("audio", "audio/"),
            ("video", "video/"),
        ] {
            let dir = shared_path("media").join(folder);
            for entry in std::fs::read_dir(&dir).expect("list media") {
                let path = entry.expect("dir entry").path();
                let extension = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                let expected = match extension {
                    "png" | "jpg" | "jpeg" | "webp" | "tiff" | "gif" | "bmp" => MediaKind::Image,
                    "ogg" | "mp3" | "m4a" | "flac" | "wav" => MediaKind::Audio,
                    "mp4" => MediaKind::Video,
                    _ => continue,
                };
                let sniffed = sniff(&head_of(&path), None);
                assert_eq!(sniffed.kind, expected, "{}", path.display());
                let media_type = sniffed.media_type.expect("sniffed a MIME type");
                assert!(
                    media_type.starts_with(mime_prefix),
                    "{}: {media_type}",
                    path.display()
                );
                seen += 1;
            }
        }
        assert!(
            seen >= 30,
            "expected the whole shared media set, saw {seen} files"
        );
    }

    /// The exact MIME types of a few formats, as the registry will store them.
    #[test]
    fn sniffed_mime_types() {
        let cases = [
            ("images/coffee.png", "image/png"),
            ("images/rocket.jpg", "image/jpeg"),
            ("images/coffee.webp", "image/webp"),
            ("images/coffee.tiff", "image/tiff"),
            ("images/coffee.gif", "image/gif"),
            ("images/coffee.bmp", "image/bmp"),
            ("video/clip_a_720p_high.mp4", "video/mp4"),
        ];
        for (file, mime) in cases {
            let sniffed = sniff(&head_of(&shared_path("media").join(file)), None);
            assert_eq!(sniffed.media_type.as_deref(), Some(mime), "{file}");
        }
    }

    /// A declared Content-Type that contradicts the bytes is ignored, in both
    /// directions (image bytes declared as audio, audio bytes declared as image).
    #[test]
    fn declared_type_never_overrides_the_bytes() {
        let png = head_of(&shared_path("media/images/coffee.png"));
        let sniffed = sniff(&png, Some("audio/mpeg"));
        assert_eq!(sniffed.kind, MediaKind::Image);
        assert_eq!(sniffed.media_type.as_deref(), Some("image/png"));

        let ogg = head_of(&shared_path("media/audio/house_lo.ogg"));
        let sniffed = sniff(&ogg, Some("image/jpeg"));
        assert_eq!(sniffed.kind, MediaKind::Audio);

        let mp4 = head_of(&shared_path("media/video/clip_b_720p_high.mp4"));
        assert_eq!(sniff(&mp4, Some("text/plain")).kind, MediaKind::Video);
    }

    /// When the bytes are unrecognisable, a declared type decides, with its
    /// parameters stripped and case folded.
    #[test]
    fn declared_type_is_the_fallback() {
        let unknown = b"just some text, no magic number here";
        let sniffed = sniff(unknown, Some("Image/PNG; charset=binary"));
        assert_eq!(
            sniffed,
            Sniffed {
                kind: MediaKind::Image,
                media_type: Some("image/png".into())
            }
        );
        assert_eq!(sniff(unknown, Some("text/plain")).kind, MediaKind::Other);
        assert_eq!(
            sniff(unknown, Some("audio/x-custom")).kind,
            MediaKind::Audio
        );
    }

    /// Default client types (form-encoded, octet-stream, multipart) are not
    /// recorded as the media type of bytes that sniffing cannot place.
    #[test]
    fn uninformative_declared_types_are_ignored() {
        for declared in [
            "application/x-www-form-urlencoded",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
        ] {
            let s = sniff(b"hello, world", Some(declared));
            assert_eq!(s.kind, MediaKind::Other, "{declared}");
            assert_eq!(s.media_type, None, "{declared}");
        }
    }

    /// Unrecognisable bytes with no usable declared type are `Other` with no
    /// MIME type; malformed declared types are ignored rather than stored.
    #[test]
    fn nothing_known_gives_other() {
        let unknown = b"\x00\x01\x02";
        let nothing = Sniffed {
            kind: MediaKind::Other,
            media_type: None,
        };
        assert_eq!(sniff(unknown, None), nothing);
        assert_eq!(sniff(&[], None), nothing);
        for bad in [
            "",
            "image",
            "image/",
            "/png",
            "image/png extra",
            "im age/png",
        ] {
            assert_eq!(sniff(unknown, Some(bad)), nothing, "{bad:?}");
        }
    }

    /// An MPEG-2.5 Layer III file without ID3 tag, which `infer` misses, is
    /// recognised by its consecutive frame headers; a lone sync word is not.
    #[test]
    fn mp3_without_id3_is_audio() {
        let mp3 = head_of(&shared_path("media/audio/house_lo.mp3"));
        assert_eq!(infer::get(&mp3), None, "infer misses this one");
        assert_eq!(
            sniff(&mp3, None),
            Sniffed {
                kind: MediaKind::Audio,
                media_type: Some("audio/mpeg".into())
            }
        );
        let mut lone_sync = mp3[..4].to_vec();
        lone_sync.extend([0u8; 2000]);
        assert_eq!(sniff(&lone_sync, None).kind, MediaKind::Other);
        assert_eq!(sniff(&mp3[..3], None).kind, MediaKind::Other);
    }

    /// `MediaKind` serialises as the lowercase names the API documents.
    #[test]
    fn media_kind_serialises_lowercase() {
        let names: Vec<String> = [
            MediaKind::Image,
            MediaKind::Audio,
            MediaKind::Video,
            MediaKind::Other,
        ]
        .iter()
        .map(|kind| serde_json::to_string(kind).expect("serialise"))
        .collect();
        assert_eq!(names, ["\"image\"", "\"audio\"", "\"video\"", "\"other\""]);
    }
}
