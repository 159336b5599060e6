//! Helpers shared by the unit tests: paths to the shared test media and the
//! ISCC conformance vectors.

use std::path::PathBuf;

use serde_json::Value;

/// `rel` inside the `shared/` folder that sits beside the workspace root.
pub(crate) fn shared_path(rel: &str) -> PathBuf {
    let path = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared")).join(rel);
    assert!(path.exists(), "test data missing: {}", path.display());
    path
}

/// The conformance vectors of one ISCC function as `(name, inputs, outputs)`.
pub(crate) fn conformance_cases(function: &str) -> Vec<(String, Vec<Value>, Value)> {
    let text = std::fs::read_to_string(shared_path("conformance/iscc/data.json"))
        .expect("read conformance vectors");
    let data: Value = serde_json::from_str(&text).expect("parse conformance vectors");
    let cases = data[function]
        .as_object()
        .unwrap_or_else(|| panic!("no conformance section {function}"));
    cases
        .iter()
        .map(|(name, case)| {
            let inputs = case["inputs"].as_array().expect("inputs").clone();
            (name.clone(), inputs, case["outputs"].clone())
        })
        .collect()
}

/// The bytes of a conformance input written `"stream:<hex>"`.
pub(crate) fn decode_stream_input(input: &Value) -> Vec<u8> {
    let text = input.as_str().expect("stream input is a string");
    let hex_digits = text.strip_prefix("stream:").expect("stream: prefix");
    hex::decode(hex_digits).expect("valid hex")
}

/// A 16-bit PCM WAV file holding `samples`, interleaved over `channels`.
pub(crate) fn wav(sample_rate: u32, channels: u16, samples: &[i16]) -> Vec<u8> {
    let data_len = u32::try_from(samples.len() * 2).expect("small test signal");
    let block_align = channels * 2;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// A reproducible xorshift byte stream.
pub(crate) fn noise(seed: u64) -> impl FnMut() -> u8 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 56) as u8
    }
}

/// A 10000x10000 RGBA PNG of one colour: about 2 MB (with the `image`
/// crate's default compression) that decode to 400 MB, made once per test
/// run.
pub(crate) fn big_png() -> &'static [u8] {
    static PNG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    PNG.get_or_init(|| {
        let image = image::RgbaImage::from_pixel(10_000, 10_000, image::Rgba([40, 90, 200, 255]));
        let mut bytes = Vec::new();
        image::DynamicImage::from(image)
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .expect("encode PNG");
        bytes
    })
}

/// A FLAC file of `frames` frames of silence over `channels` channels (1 to
/// 8) at `sample_rate` Hz, 16-bit: every block is a CONSTANT subframe per
/// channel, so an hour of it takes about 100 KB, while decoding and
/// fingerprinting it costs as much as any hour of audio. Built by hand
/// (RFC 9639) so tests need no encoder.
pub(crate) fn flac_silence(sample_rate: u32, channels: u8, frames: u64) -> Vec<u8> {
    const BLOCK: u64 = 4096;
    let mut out = b"fLaC".to_vec();
    // STREAMINFO, the last metadata block: 34 bytes.
    out.extend([0x80, 0, 0, 34]);
    out.extend((BLOCK as u16).to_be_bytes()); // smallest block
    out.extend((BLOCK as u16).to_be_bytes()); // largest block
    out.extend([0; 6]); // frame sizes unknown
    // Sample rate (20 bits), channels - 1 (3), bits per sample - 1 (5),
    // total samples (36).
    let packed = (u64::from(sample_rate) << 44)
        | (u64::from(channels - 1) << 41)
        | (15u64 << 36)
        | (frames & 0xF_FFFF_FFFF);
    out.extend(packed.to_be_bytes());
    out.extend([0; 16]); // MD5 unknown
    let mut left = frames;
    let mut number = 0u32;
    while left > 0 {
        let block = left.min(BLOCK);
        let start = out.len();
        // Sync code, fixed block size.
        out.extend([0xFF, 0xF8]);
        // Block size code (4096, or 16-bit size after the header), sample
        // rate from STREAMINFO.
        let size_code = if block == BLOCK { 0b1100 } else { 0b0111 };
        out.push(size_code << 4);
        // Independent channels, 16 bits per sample.
        out.push(((channels - 1) << 4) | 0b1000);
        out.extend(utf8_number(number));
        if block != BLOCK {
            out.extend(((block - 1) as u16).to_be_bytes());
        }
        let crc = crc8(&out[start..]);
        out.push(crc);
        for _ in 0..channels {
            // CONSTANT subframe, no wasted bits, value 0 (16 bits).
            out.extend([0, 0, 0]);
        }
        let crc = crc16(&out[start..]);
        out.extend(crc.to_be_bytes());
        left -= block;
        number += 1;
    }
    out
}

/// A frame number in FLAC's UTF-8-like coding.
fn utf8_number(n: u32) -> Vec<u8> {
    if n < 0x80 {
        return vec![n as u8];
    }
    let continuation = match n {
        0..0x800 => 1,
        0x800..0x1_0000 => 2,
        0x1_0000..0x20_0000 => 3,
        0x20_0000..0x400_0000 => 4,
        _ => 5,
    };
    let lead_marker = (0xFF00u16 >> (continuation + 1)) as u8;
    let mut bytes = vec![lead_marker | (n >> (6 * continuation)) as u8];
    for i in (0..continuation).rev() {
        bytes.push(0x80 | ((n >> (6 * i)) & 0x3F) as u8);
    }
    bytes
}

/// CRC-8 of FLAC frame headers (polynomial 0x07).
fn crc8(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |mut crc, &byte| {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// CRC-16 of FLAC frames (polynomial 0x8005).
fn crc16(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &byte| {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x8005
            } else {
                crc << 1
            };
        }
        crc
    })
}
