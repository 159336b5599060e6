//! The MP4/MOV demuxer, the H.264 decoder (openh264) and the MPEG-7 frame
//! signatures, then the sound track through the audio path, over arbitrary
//! bytes declared as video.
//!
//! Limits are small (360p, a minute, 600 frames) so that a header promising
//! more is refused before any decoding, and the fuzzer explores parsing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_fingerprint::{Limits, MediaKind, Sniffed, content_fingerprint, decode_cost, sniff};
use media_fingerprint_fuzz::{assert_missing_is_explained, panic_policy, reader, show};

fn limits() -> Limits {
    Limits {
        max_pixels: 640 * 360,
        max_decoded_bytes: 16 * 1024 * 1024,
        max_duration_seconds: 60.0,
        max_frames: 600,
        // libFuzzer's own -timeout catches slow inputs; a time-out here
        // would hide them.
        max_decode_time: None,
        ..Limits::default()
    }
}

fuzz_target!(init: panic_policy(), |data: &[u8]| {
    let sniffed = Sniffed {
        kind: MediaKind::Video,
        media_type: sniff(data, None).media_type,
    };
    let limits = limits();
    // The estimate reads the same bytes' headers; it must not panic either.
    let _ = decode_cost(reader(data), &sniffed, &limits);
    let fp = content_fingerprint(reader(data), &sniffed, &limits)
        .expect("without a time bound or a cancellation, nothing stops the decode");
    show(&fp);
    assert_missing_is_explained(&fp, "iscc_video", fp.video_code.is_some());
    assert_missing_is_explained(&fp, "iscc_audio", fp.audio_code.is_some());
    assert_eq!(fp.video_code.is_some(), fp.video.is_some(), "{fp:?}");
    if let Some(video) = &fp.video {
        assert!(
            video.duration_seconds <= limits.max_duration_seconds,
            "accepted {} s of video, limit {} s",
            video.duration_seconds,
            limits.max_duration_seconds
        );
        // Sampled frames are a subset of the decoded ones.
        assert!(
            video.frame_signatures.len() as u64 <= limits.max_frames,
            "{} frame signatures, limit {} frames",
            video.frame_signatures.len(),
            limits.max_frames
        );
        for signature in &video.frame_signatures {
            assert_eq!(signature.len(), 380, "a frame signature has 380 elements");
            assert!(signature.iter().all(|v| (0..=2).contains(v)), "{signature:?}");
        }
    }
    if let Some(audio) = &fp.audio {
        assert!(audio.duration_seconds <= limits.max_duration_seconds, "{audio:?}");
    }
    assert!(fp.image_code.is_none(), "{fp:?}");
});
