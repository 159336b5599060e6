//! The audio decoders (WAV, FLAC, MP3, AAC/M4A, Ogg Vorbis through
//! symphonia) and the Chromaprint fingerprint, over arbitrary bytes
//! declared as audio.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_fingerprint::{Limits, MediaKind, Sniffed, content_fingerprint, decode_cost, sniff};
use media_fingerprint_fuzz::{assert_missing_is_explained, panic_policy, reader, show};

fn limits() -> Limits {
    Limits {
        max_duration_seconds: 600.0,
        // libFuzzer's own -timeout catches slow inputs; a time-out here
        // would hide them.
        max_decode_time: None,
        ..Limits::default()
    }
}

fuzz_target!(init: panic_policy(), |data: &[u8]| {
    let sniffed = Sniffed {
        kind: MediaKind::Audio,
        media_type: sniff(data, None).media_type,
    };
    let limits = limits();
    // The estimate reads the same bytes' headers; it must not panic either.
    let _ = decode_cost(reader(data), &sniffed, &limits);
    let fp = content_fingerprint(reader(data), &sniffed, &limits)
        .expect("without a time bound or a cancellation, nothing stops the decode");
    show(&fp);
    assert_missing_is_explained(&fp, "iscc_audio", fp.audio_code.is_some());
    assert_eq!(fp.audio_code.is_some(), fp.audio.is_some(), "{fp:?}");
    if let Some(audio) = &fp.audio {
        // "Longest accepted audio duration, whether declared in a header or
        // found while decoding."
        assert!(
            audio.duration_seconds <= limits.max_duration_seconds,
            "accepted {} s of audio, limit {} s",
            audio.duration_seconds,
            limits.max_duration_seconds
        );
    }
    assert!(fp.image_code.is_none() && fp.video.is_none(), "{fp:?}");
});
