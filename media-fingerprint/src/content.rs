//! Content (perceptual) fingerprints: one entry point that picks the
//! fingerprints for each kind of media.
//!
//! Images get the ISCC Image-Code; audio gets a Chromaprint fingerprint and
//! the ISCC Audio-Code; video gets MPEG-7 frame signatures and the ISCC
//! Video-Code, plus the audio fingerprint of its sound track.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::audio::{AudioPrint, audio_code, audio_print};
use crate::error::{FingerprintError, Result};
use crate::image_code::image_codes;
use crate::limits::{Limits, Watch};
use crate::sniff::{MediaKind, Sniffed};
use crate::video::{VideoPrint, video_code, video_print};

/// Content fingerprints of one upload, and what could not be computed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ContentFingerprint {
    /// 64-bit ISCC Image-Code in canonical `ISCC:...` form, for images that decoded.
    pub image_code: Option<String>,
    /// Image-Codes of centred crops keeping 95 % and 90 % of each side, so a
    /// cropped copy can be matched with its original.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_crop_codes: Vec<String>,
    /// 64-bit ISCC Audio-Code, for audio and for video with a sound track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_code: Option<String>,
    /// 64-bit ISCC Video-Code, for video that decoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_code: Option<String>,
    /// The audio fingerprint, for matching excerpts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioPrint>,
    /// The video fingerprint, for matching excerpts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<VideoPrint>,
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

/// Content (perceptual) fingerprints computed from the decoded media.
/// Undecodable input is not an error: what could not be computed is listed
/// in `missing` with a reason, as is media refused by `limits`' bounds on
/// size and duration.
///
/// `reader` must be positioned at the start of the media; `sniffed` is what
/// [`sniff`](crate::sniff) said about its first bytes. Decoding stays within
/// `limits`. Never panics, whatever the bytes.
///
/// # Errors
///
/// Only when the job was stopped, so nothing about the media can be said:
/// [`FingerprintError::TimedOut`] once it has run longer than
/// [`Limits::max_decode_time`] (counted from this call, across every
/// fingerprint of the upload: a video's sound track gets what its pictures
/// left), and [`FingerprintError::Cancelled`] once [`Limits::cancel`] is set,
/// including when it was set before the call. See
/// [`FingerprintError::is_stop`].
pub fn content_fingerprint<R: BufRead + Seek + Send + Sync + 'static>(
    reader: R,
    sniffed: &Sniffed,
    limits: &Limits,
) -> Result<ContentFingerprint> {
    let watch = Watch::start(limits);
    watch.check()?;
    let mut out = ContentFingerprint::default();
    match sniffed.kind {
        MediaKind::Image => match image_codes(reader, limits, &watch) {
            Ok(codes) => {
                out.image_code = Some(codes.code);
                out.image_crop_codes = codes.crop_codes;
            }
            Err(error) => missing(&mut out, "iscc_image", error)?,
        },
        MediaKind::Audio => add_audio(&mut out, audio_print(reader, limits, &watch))?,
        MediaKind::Video => {
            // The sound track is fingerprinted in a second pass over the same
            // reader; both decoders stream, neither holds the file.
            let shared = SharedReader::new(reader);
            let start = shared.clone().stream_position();
            match video_print(shared.clone(), limits, &watch)
                .and_then(|print| Ok((video_code(&print)?, print)))
            {
                Ok((code, print)) => {
                    out.video_code = Some(code);
                    out.video = Some(print);
                }
                Err(error) => missing(&mut out, "iscc_video", error)?,
            }
            watch.check()?;
            let mut second = shared;
            match start.and_then(|pos| second.seek(SeekFrom::Start(pos))) {
                Ok(_) => add_audio(&mut out, audio_print(second, limits, &watch))?,
                Err(e) => out
                    .missing
                    .push(MissingFingerprint::new("iscc_audio", e.to_string())),
            }
        }
        MediaKind::Other => out.missing.push(MissingFingerprint::new(
            "iscc_content",
            format!(
                "no content fingerprint is computed for this media type ({})",
                sniffed.media_type.as_deref().unwrap_or("unknown")
            ),
        )),
    }
    Ok(out)
}

/// Records that `fingerprint` could not be computed because of `error`;
/// passes a stopped job's error on instead, since it says nothing about the
/// media.
fn missing(out: &mut ContentFingerprint, fingerprint: &str, error: FingerprintError) -> Result<()> {
    if error.is_stop() {
        return Err(error);
    }
    out.missing
        .push(MissingFingerprint::new(fingerprint, error.to_string()));
    Ok(())
}

/// One reader handed to two decoders in turn. Each decoder needs a reader it
/// owns; they never run at the same time, so a lock is only ever uncontended.
pub(crate) struct SharedReader<R>(Arc<Mutex<R>>);

impl<R> Clone for SharedReader<R> {
    fn clone(&self) -> Self {
        Self(Arc::clone(&self.0))
    }
}

impl<R> SharedReader<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self(Arc::new(Mutex::new(reader)))
    }

    fn lock(&self) -> std::io::Result<std::sync::MutexGuard<'_, R>> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("a decoder panicked while reading"))
    }
}

impl<R: Read> Read for SharedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.lock()?.read(buf)
    }
}

impl<R: Seek> Seek for SharedReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.lock()?.seek(pos)
    }
}

fn add_audio(out: &mut ContentFingerprint, print: Result<AudioPrint>) -> Result<()> {
    match print.and_then(|print| Ok((audio_code(&print)?, print))) {
        Ok((code, print)) => {
            out.audio_code = Some(code);
            out.audio = Some(print);
            Ok(())
        }
        Err(error) => missing(out, "iscc_audio", error),
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
        let fingerprint =
            content_fingerprint(reader, &sniffed, &Limits::default()).expect("not stopped");
        (sniffed, fingerprint)
    }

    /// An image gets an Image-Code and nothing is missing.
    #[test]
    fn image_gets_an_image_code() {
        let (_, fingerprint) = fingerprint_file("images/chelsea.png");
        assert!(fingerprint.image_code.is_some());
        assert!(fingerprint.missing.is_empty());
    }

    /// Audio and video get no Image-Code; what they lack is named. Audio, and
    /// the sound track of a video, get an Audio-Code and the print behind it.
    #[test]
    fn audio_and_video_get_no_image_code() {
        let (_, audio) = fingerprint_file("audio/love_theme.ogg");
        assert_eq!(audio.image_code, None);
        assert!(
            audio.audio_code.is_some() && audio.audio.is_some(),
            "{:?}",
            audio.missing
        );
        let (_, video) = fingerprint_file("video/clip_a_360p_reencoded.mp4");
        assert_eq!(video.image_code, None);
        assert!(
            video.video_code.is_some()
                || video.missing.iter().any(|m| m.fingerprint == "iscc_video")
        );
        // The sound track is read in a second pass over the same reader.
        assert!(
            video.audio_code.is_some() && video.audio.is_some(),
            "{:?}",
            video.missing
        );
    }

    /// Media of kind `other` says which type it had no fingerprint for.
    #[test]
    fn other_media_names_its_type() {
        let sniffed = sniff(b"%PDF-1.7\n", None);
        let fingerprint =
            content_fingerprint(Cursor::new(b"%PDF-1.7\n"), &sniffed, &Limits::default())
                .expect("not stopped");
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
        let fingerprint = content_fingerprint(Cursor::new(half), &sniffed, &Limits::default())
            .expect("not stopped");
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
        let fingerprint = content_fingerprint(Cursor::new(bytes), &sniffed, &Limits::default())
            .expect("not stopped");
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
                let fingerprint = content_fingerprint(
                    Cursor::new(bytes[..keep].to_vec()),
                    &sniffed,
                    &Limits::default(),
                )
                .expect("not stopped");
                assert!(fingerprint.image_code.is_some() || fingerprint.missing.len() == 1);
            }
            for position in (0..bytes.len().min(2048)).step_by(61) {
                let mut damaged = bytes.clone();
                damaged[position] ^= 0xa5;
                let fingerprint =
                    content_fingerprint(Cursor::new(damaged), &sniffed, &Limits::default())
                        .expect("not stopped");
                assert!(fingerprint.image_code.is_some() || fingerprint.missing.len() == 1);
            }
        }
    }

    /// Six hours of FLAC silence (about 600 KB, the longest the default
    /// limits accept): its decode takes seconds, well past the bounds below.
    fn six_hours_of_silence() -> Vec<u8> {
        crate::test_support::flac_silence(8000, 1, 8000 * 6 * 3600)
    }

    /// `bytes` fingerprinted under `limits`, and how long that took.
    fn timed(bytes: Vec<u8>, limits: &Limits) -> (Result<ContentFingerprint>, std::time::Duration) {
        let sniffed = sniff(&bytes[..bytes.len().min(crate::SNIFF_LEN)], None);
        let started = std::time::Instant::now();
        let result = content_fingerprint(Cursor::new(bytes), &sniffed, limits);
        (result, started.elapsed())
    }

    /// A decode running past the time bound stops with `TimedOut` soon after
    /// it, not when the audio ends; the message names the bound.
    #[test]
    fn long_audio_stops_at_the_time_bound() {
        let bytes = six_hours_of_silence();
        let sniffed = sniff(&bytes[..crate::SNIFF_LEN], None);
        let cost = crate::decode_cost(Cursor::new(bytes.clone()), &sniffed, &Limits::default())
            .expect("cost");
        assert_eq!(cost.duration_seconds, Some(6.0 * 3600.0));
        let limits = Limits {
            max_decode_time: Some(std::time::Duration::from_millis(200)),
            ..Limits::default()
        };
        let (result, took) = timed(bytes, &limits);
        match result {
            Err(error @ FingerprintError::TimedOut { .. }) => {
                assert!(error.to_string().contains("0.2 s"), "{error}");
                assert!(error.is_stop());
            }
            other => panic!("expected a time-out, got {other:?}"),
        }
        // Decoding it all takes several seconds even in a release build.
        assert!(took < std::time::Duration::from_millis(1000), "{took:?}");
    }

    /// A job cancelled before it starts does nothing, whatever the media.
    #[test]
    fn cancelled_before_the_start_returns_cancelled() {
        let limits = Limits::default();
        limits.cancel.cancel();
        for file in [
            "images/coffee.png",
            "audio/house_lo.ogg",
            "video/clip_a_360p_reencoded.mp4",
        ] {
            let bytes = std::fs::read(shared_path("media").join(file)).expect("read");
            let (result, took) = timed(bytes, &limits);
            assert!(
                matches!(result, Err(FingerprintError::Cancelled)),
                "{file}: {result:?}"
            );
            assert!(
                took < std::time::Duration::from_millis(50),
                "{file}: {took:?}"
            );
        }
    }

    /// Cancelling from another thread stops an audio decode and a video
    /// decode part-way, within a fraction of a second.
    #[test]
    fn cancelling_from_another_thread_stops_the_decode() {
        let clip = std::fs::read(shared_path("media/video/clip_a_720p_high.mp4")).expect("read");
        for bytes in [six_hours_of_silence(), clip] {
            let limits = Limits {
                max_decode_time: None,
                ..Limits::default()
            };
            let handle = limits.cancel.clone();
            let canceller = std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(100));
                handle.cancel();
            });
            let (result, took) = timed(bytes, &limits);
            canceller.join().expect("the canceller does not panic");
            assert!(
                matches!(result, Err(FingerprintError::Cancelled)),
                "{result:?}"
            );
            assert!(took < std::time::Duration::from_millis(600), "{took:?}");
        }
    }

    /// The time bound covers a video and its sound track together, and an
    /// image between its reads and stages: a bound shorter than either
    /// decode stops both.
    #[test]
    fn video_and_image_stop_at_the_time_bound() {
        let limits = Limits {
            max_decode_time: Some(std::time::Duration::from_millis(50)),
            ..Limits::default()
        };
        let clip = std::fs::read(shared_path("media/video/clip_a_720p_high.mp4")).expect("read");
        let big_png = crate::test_support::big_png().to_vec();
        for bytes in [clip, big_png] {
            let (result, took) = timed(bytes, &limits);
            assert!(
                matches!(result, Err(FingerprintError::TimedOut { .. })),
                "{result:?}"
            );
            assert!(took < std::time::Duration::from_millis(500), "{took:?}");
        }
    }

    /// The fingerprint serialises with the field names the API documents.
    #[test]
    fn content_fingerprint_serialises() {
        // 1.4 s of speech: too short for Chromaprint, so a missing entry.
        let (_, fingerprint) = fingerprint_file("audio/speech_front_center.wav");
        let json = serde_json::to_value(&fingerprint).expect("serialise");
        assert_eq!(json["image_code"], serde_json::Value::Null);
        assert_eq!(json["missing"][0]["fingerprint"], "iscc_audio");
        let (_, fingerprint) = fingerprint_file("audio/house_lo.wav");
        let json = serde_json::to_value(&fingerprint).expect("serialise");
        assert!(
            json["audio_code"]
                .as_str()
                .is_some_and(|c| c.starts_with("ISCC:"))
        );
        // Packed: base64 of the little-endian items.
        assert!(
            json["audio"]["chromaprint"]
                .as_str()
                .is_some_and(|a| !a.is_empty())
        );
        assert!(json.get("video").is_none());
    }
}
