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
