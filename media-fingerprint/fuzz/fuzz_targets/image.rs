//! The image decoders (JPEG, PNG, WebP, TIFF, GIF, BMP through the `image`
//! crate) and the normalisation behind the ISCC Image-Code, over arbitrary
//! bytes declared as an image.
//!
//! Limits are far below the defaults so that the fuzzer spends its time on
//! parsing and is not stopped by the honest large allocations the defaults
//! allow; a forged header must fail against them before allocating.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_fingerprint::{Limits, MediaKind, Sniffed, content_fingerprint, decode_cost, sniff};
use media_fingerprint_fuzz::{assert_missing_is_explained, panic_policy, reader, show};

fn limits() -> Limits {
    Limits {
        max_pixels: 4_000_000,
        max_decoded_bytes: 64 * 1024 * 1024,
        // libFuzzer's own -timeout catches slow inputs; a time-out here
        // would hide them.
        max_decode_time: None,
        ..Limits::default()
    }
}

fuzz_target!(init: panic_policy(), |data: &[u8]| {
    // Whatever the bytes say, the image path is taken: the service falls back
    // to a declared `image/*` type when sniffing finds nothing.
    let sniffed = Sniffed {
        kind: MediaKind::Image,
        media_type: sniff(data, None).media_type,
    };
    // The estimate reads the same bytes' headers; it must not panic either.
    let _ = decode_cost(reader(data), &sniffed, &limits());
    let fp = content_fingerprint(reader(data), &sniffed, &limits())
        .expect("without a time bound or a cancellation, nothing stops the decode");
    show(&fp);
    assert_missing_is_explained(&fp, "iscc_image", fp.image_code.is_some());
    assert!(fp.audio.is_none() && fp.video.is_none(), "{fp:?}");
});
