//! ISCC units that are not tied to one decoder: the Meta-Code (from title
//! and metadata), the Text-Code, the Mixed-Code, the composite ISCC-CODE and
//! the binary sequence form of several units.
//!
//! Every ISCC unit the crate produces comes from `iscc-lib` through this
//! module or through the decoder modules (`image_code`, `audio`, `video`,
//! `exact`); the conformance test below runs all 58 published vectors
//! through exactly these functions.

use serde::{Deserialize, Serialize};

use crate::error::{FingerprintError, Result};

/// Bit length of the units the registry stores (the ISCC default).
const BITS: u32 = 64;

/// A Meta-Code and the hash of the metadata it was computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaCode {
    /// The Meta-Code in canonical `ISCC:` form.
    pub iscc: String,
    /// BLAKE3 multihash (hex) of the metadata, as ISO 24138 defines it.
    pub metahash: String,
}

/// The Meta-Code of a title, with an optional description and metadata
/// (JSON text, or a `data:` URL).
pub fn meta_code(name: &str, description: Option<&str>, meta: Option<&str>) -> Result<MetaCode> {
    meta_code_bits(name, description, meta, BITS)
}

pub(crate) fn meta_code_bits(
    name: &str,
    description: Option<&str>,
    meta: Option<&str>,
    bits: u32,
) -> Result<MetaCode> {
    let result = iscc_lib::gen_meta_code_v0(name, description, meta, bits)
        .map_err(FingerprintError::Iscc)?;
    Ok(MetaCode {
        iscc: result.iscc,
        metahash: result.metahash,
    })
}

/// The Text-Code of plain text.
pub fn text_code(text: &str) -> Result<String> {
    text_code_bits(text, BITS)
}

pub(crate) fn text_code_bits(text: &str, bits: u32) -> Result<String> {
    iscc_lib::gen_text_code_v0(text, bits)
        .map(|r| r.iscc)
        .map_err(FingerprintError::Iscc)
}

/// The Mixed-Code of several Content-Codes (of one work in several media).
pub fn mixed_code(codes: &[&str]) -> Result<String> {
    mixed_code_bits(codes, BITS)
}

pub(crate) fn mixed_code_bits(codes: &[&str], bits: u32) -> Result<String> {
    iscc_lib::gen_mixed_code_v0(codes, bits)
        .map(|r| r.iscc)
        .map_err(FingerprintError::Iscc)
}

/// The composite ISCC-CODE of a file from its units: optionally a Meta-Code
/// and a Content-Code, always the Data-Code and the Instance-Code.
pub fn iscc_code(units: &[&str]) -> Result<String> {
    iscc_lib::gen_iscc_code_v0(units, false)
        .map(|r| r.iscc)
        .map_err(FingerprintError::Iscc)
}

/// The first 64 bits of an ISCC unit's body, for similarity indexes: two
/// units of the same type are compared by the Hamming distance of these.
pub fn unit_bits64(unit: &str) -> Result<u64> {
    let (_, _, _, _, body) = iscc_lib::iscc_decode(unit.strip_prefix("ISCC:").unwrap_or(unit))
        .map_err(FingerprintError::Iscc)?;
    let first: [u8; 8] = body
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            FingerprintError::Iscc(iscc_lib::IsccError::InvalidInput(format!(
                "{unit} has fewer than 64 bits"
            )))
        })?;
    Ok(u64::from_be_bytes(first))
}

/// Several ISCC units as one byte string: each unit's header and body,
/// concatenated. Compact storage for the units of one registration.
pub fn encode_sequence(units: &[&str]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for unit in units {
        let body = unit.strip_prefix("ISCC:").unwrap_or(unit);
        out.extend(iscc_lib::codec::decode_base32(body).map_err(FingerprintError::Iscc)?);
    }
    Ok(out)
}

/// The units of a byte string written by [`encode_sequence`].
pub fn decode_sequence(mut bytes: &[u8]) -> Result<Vec<String>> {
    let mut units = Vec::new();
    while !bytes.is_empty() {
        let (main_type, sub_type, _version, length, body) =
            iscc_lib::codec::decode_header(bytes).map_err(FingerprintError::Iscc)?;
        let body_len = (iscc_lib::codec::decode_length(main_type, length, sub_type) / 8) as usize;
        let header_len = bytes.len() - body.len();
        let unit_len = header_len + body_len;
        let unit = bytes.get(..unit_len).ok_or_else(|| {
            FingerprintError::Iscc(iscc_lib::IsccError::InvalidInput(format!(
                "sequence ends inside a unit: {} of {unit_len} bytes left",
                bytes.len()
            )))
        })?;
        units.push(format!("ISCC:{}", iscc_lib::codec::encode_base32(unit)));
        bytes = &bytes[unit_len..];
    }
    Ok(units)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::test_support::{conformance_cases, decode_stream_input};

    fn strs(v: &Value) -> Vec<String> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|s| s.as_str().expect("string").to_owned())
            .collect()
    }

    fn bits(v: &Value) -> u32 {
        u32::try_from(v.as_u64().expect("bits")).expect("bits fit")
    }

    /// The 64-bit body of a unit is what its base32 text encodes after the
    /// header, and two units' distance is the popcount of their XOR.
    #[test]
    fn unit_bits() {
        let a = unit_bits64("ISCC:EEA4ANY35QN6KETH").unwrap();
        assert_eq!(a, unit_bits64("EEA4ANY35QN6KETH").unwrap());
        let b = unit_bits64("ISCC:EEA3XAZAG5WA6NRX").unwrap();
        assert_eq!(
            (a ^ b).count_ones(),
            crate::image_code_distance("ISCC:EEA4ANY35QN6KETH", "ISCC:EEA3XAZAG5WA6NRX").unwrap()
        );
        assert!(unit_bits64("not a code").is_err());
    }

    /// Every one of the 58 published ISO 24138 conformance vectors passes
    /// through the functions this crate uses to make its codes.
    #[test]
    fn all_conformance_vectors() {
        let mut checked = 0;
        for (name, inputs, outputs) in conformance_cases("gen_meta_code_v0") {
            let meta = match &inputs[2] {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            };
            let description = inputs[1].as_str().filter(|s| !s.is_empty());
            let got = meta_code_bits(
                inputs[0].as_str().expect("name"),
                description,
                meta.as_deref(),
                bits(&inputs[3]),
            )
            .expect(&name);
            assert_eq!(got.iscc, outputs["iscc"].as_str().expect("iscc"), "{name}");
            assert_eq!(
                got.metahash,
                outputs["metahash"].as_str().expect("metahash"),
                "{name}"
            );
            checked += 1;
        }
        for (name, inputs, outputs) in conformance_cases("gen_text_code_v0") {
            let got =
                text_code_bits(inputs[0].as_str().expect("text"), bits(&inputs[1])).expect(&name);
            assert_eq!(got, outputs["iscc"].as_str().expect("iscc"), "{name}");
            checked += 1;
        }
        for (name, inputs, outputs) in conformance_cases("gen_image_code_v0") {
            let pixels: Vec<u8> = inputs[0]
                .as_array()
                .expect("pixels")
                .iter()
                .map(|p| u8::try_from(p.as_u64().expect("pixel")).expect("pixel fits"))
                .collect();
            let got =
                crate::image_code::image_code_from_pixels(&pixels, bits(&inputs[1])).expect(&name);
            assert_eq!(got, outputs["iscc"].as_str().expect("iscc"), "{name}");
            checked += 1;
        }
        for (name, inputs, outputs) in conformance_cases("gen_mixed_code_v0") {
            let codes = strs(&inputs[0]);
            let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
            let got = mixed_code_bits(&refs, bits(&inputs[1])).expect(&name);
            assert_eq!(got, outputs["iscc"].as_str().expect("iscc"), "{name}");
            checked += 1;
        }
        for function in ["gen_data_code_v0", "gen_instance_code_v0"] {
            for (name, inputs, outputs) in conformance_cases(function) {
                let mut hasher = crate::StreamHasher::new();
                for chunk in decode_stream_input(&inputs[0]).chunks(4096) {
                    hasher.update(chunk);
                }
                let exact = hasher.finish_with_bits(bits(&inputs[1])).expect(&name);
                let got = if function == "gen_data_code_v0" {
                    exact.data_code
                } else {
                    exact.instance_code
                };
                assert_eq!(got, outputs["iscc"].as_str().expect("iscc"), "{name}");
                checked += 1;
            }
        }
        for (name, inputs, outputs) in conformance_cases("gen_iscc_code_v0") {
            let units = strs(&inputs[0]);
            let refs: Vec<&str> = units.iter().map(String::as_str).collect();
            let got = iscc_code(&refs).expect(&name);
            assert_eq!(got, outputs["iscc"].as_str().expect("iscc"), "{name}");
            checked += 1;
        }
        for (name, inputs, outputs) in conformance_cases("encode_seq") {
            let units = strs(&inputs[0]);
            let refs: Vec<&str> = units.iter().map(String::as_str).collect();
            let want = outputs
                .as_str()
                .and_then(|s| s.strip_prefix("bytes:"))
                .expect("bytes output");
            assert_eq!(
                hex::encode(encode_sequence(&refs).expect(&name)),
                want,
                "{name}"
            );
            checked += 1;
        }
        for (name, inputs, outputs) in conformance_cases("decode_seq") {
            let hex_in = inputs[0]
                .as_str()
                .and_then(|s| s.strip_prefix("bytes:"))
                .expect("bytes input");
            let got = decode_sequence(&hex::decode(hex_in).expect("hex")).expect(&name);
            assert_eq!(got, strs(&outputs), "{name}");
            checked += 1;
        }
        // The 5 Audio-Code and 3 Video-Code vectors go through `audio_code`
        // and `video_code` in those modules' tests.
        assert_eq!(
            checked, 50,
            "every other published vector is checked exactly once"
        );
    }
}
