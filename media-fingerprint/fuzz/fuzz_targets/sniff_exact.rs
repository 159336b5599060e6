//! `sniff` and `StreamHasher` over arbitrary bytes: sniffing never panics,
//! and the exact hashes do not depend on how the stream is cut into chunks.
//!
//! Input layout, so that plain media files (behind one zero byte) are good
//! seeds: byte 0 holds, in its low 4 bits, the number `n` of chunk sizes that
//! follow as little-endian `u16`s, and in its high 4 bits which declared
//! Content-Type to pass to `sniff`; the rest is the stream. The chunk sizes
//! are used in turn, over and over, until the stream is consumed; with none,
//! the stream is fed whole. A size of 0 feeds an empty chunk.

#![no_main]

use libfuzzer_sys::fuzz_target;
use media_fingerprint::{SNIFF_LEN, StreamHasher, sniff};
use media_fingerprint_fuzz::panic_policy;

/// Declared Content-Types: none, well-formed ones of each kind, ones
/// `sniff` must ignore, and malformed ones.
const DECLARED: [Option<&str>; 16] = [
    None,
    Some("image/jpeg"),
    Some("audio/mpeg"),
    Some("video/mp4"),
    Some("application/pdf"),
    Some("application/octet-stream"),
    Some("multipart/form-data; boundary=x"),
    Some("IMAGE/PNG; charset=binary"),
    Some(""),
    Some("/"),
    Some("image/"),
    Some("image/png/x"),
    Some("audio/ogg;"),
    Some(" video/quicktime "),
    Some("text/plain\u{0}"),
    Some("\u{00e9}/\u{00e9}"),
];

/// Feeding more empty chunks than this (when every size is 0) adds nothing.
const MAX_EMPTY_CHUNKS: usize = 64;

fuzz_target!(init: panic_policy(), |data: &[u8]| {
    let Some((&header, rest)) = data.split_first() else {
        return;
    };
    let count = usize::from(header & 0x0f);
    let declared = DECLARED[usize::from(header >> 4)];
    let Some((sizes, stream)) = rest.split_at_checked(count * 2) else {
        return;
    };
    let sizes: Vec<usize> = sizes
        .chunks_exact(2)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .collect();

    let head = &stream[..stream.len().min(SNIFF_LEN)];
    let sniffed = sniff(head, declared);
    if let Some(media_type) = &sniffed.media_type {
        assert_eq!(media_type, &media_type.to_ascii_lowercase(), "{sniffed:?}");
        assert!(!media_type.contains(';'), "{sniffed:?}");
    }

    let mut one_shot = StreamHasher::new();
    one_shot.update(stream);
    let expected = one_shot.finish();

    let mut chunked = StreamHasher::new();
    let mut offset = 0;
    let mut empty = 0;
    for &size in sizes.iter().cycle() {
        if offset == stream.len() || empty > MAX_EMPTY_CHUNKS {
            break;
        }
        let end = stream.len().min(offset + size);
        chunked.update(&stream[offset..end]);
        if size == 0 {
            empty += 1;
        }
        offset = end;
    }
    chunked.update(&stream[offset..]);
    match (chunked.finish(), expected) {
        (Ok(got), Ok(expected)) => {
            assert_eq!(got, expected, "chunk sizes {sizes:?}");
            assert_eq!(got.size, stream.len() as u64);
        }
        (Err(got), Err(expected)) => assert_eq!(got.to_string(), expected.to_string()),
        (got, expected) => panic!("chunked {got:?}, one-shot {expected:?}, chunk sizes {sizes:?}"),
    }
});
