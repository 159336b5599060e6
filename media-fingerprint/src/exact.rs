//! Exact hashes of the uploaded bytes: SHA-256 and the ISCC Instance- and Data-Code.

use iscc_lib::InstanceHasher;
use ring::digest;
use serde::{Deserialize, Serialize};

use crate::cdc::DataCodeHasher;
use crate::error::{FingerprintError, Result};

/// Bit length of the ISCC codes the registry stores (the ISCC default).
const ISCC_BITS: u32 = 64;

/// How many bytes of an update go through all three hashes before the next
/// piece: each hash reads the piece while it is still in the core's cache.
/// One Data-Code batch, so that the Data-Code hasher chunks whole pieces in
/// place rather than gathering them.
const PIECE: usize = crate::cdc::BATCH;

/// Incremental exact hashing: the service feeds upload chunks while streaming
/// them to a temp file.
///
/// Computes SHA-256, the ISCC Instance-Code and the ISCC Data-Code in one pass.
/// Memory use is at most 256 KiB (bytes waiting for a full Data-Code batch,
/// copied only when chunks do not come in whole batches) plus 4 bytes per
/// Data-Code chunk (about 4 bytes per KiB of stream), and the result does not
/// depend on how the bytes were split into chunks.
pub struct StreamHasher {
    size: u64,
    sha256: digest::Context,
    instance: InstanceHasher,
    data: DataCodeHasher,
}

/// The exact identity of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExactHashes {
    /// Length of the stream in bytes.
    pub size: u64,
    /// SHA-256 of the stream; serialised as 64 lowercase hex digits.
    #[serde(with = "hex_digest")]
    pub sha256: [u8; 32],
    /// 64-bit ISCC Instance-Code (BLAKE3 of the stream) in canonical `ISCC:...` form.
    pub instance_code: String,
    /// 64-bit ISCC Data-Code (similarity hash of the bytes) in canonical `ISCC:...` form.
    pub data_code: String,
}

impl ExactHashes {
    /// The SHA-256 as 64 lowercase hex digits.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

impl StreamHasher {
    /// Starts hashing an empty stream.
    pub fn new() -> Self {
        Self {
            size: 0,
            sha256: digest::Context::new(&digest::SHA256),
            instance: InstanceHasher::new(),
            data: DataCodeHasher::new(),
        }
    }

    /// Appends `chunk` to the stream. Chunks of any size, including empty, are fine.
    pub fn update(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        for piece in chunk.chunks(PIECE) {
            self.sha256.update(piece);
            self.instance.update(piece);
            self.data.update(piece);
        }
    }

    /// Finishes the stream and returns its hashes with 64-bit ISCC codes.
    pub fn finish(self) -> Result<ExactHashes> {
        self.finish_with_bits(ISCC_BITS)
    }

    /// Like [`finish`](Self::finish) with ISCC codes of `bits` bits (64, 128, 192 or 256),
    /// for the conformance vectors that use other lengths.
    pub(crate) fn finish_with_bits(self, bits: u32) -> Result<ExactHashes> {
        let data_code = self.data.finish(bits)?;
        let instance_code = self
            .instance
            .finalize(bits)
            .map_err(FingerprintError::Iscc)?
            .iscc;
        let sha256 = self
            .sha256
            .finish()
            .as_ref()
            .try_into()
            .expect("a SHA-256 digest is always 32 bytes");
        Ok(ExactHashes {
            size: self.size,
            sha256,
            instance_code,
            data_code,
        })
    }
}

impl Default for StreamHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for StreamHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamHasher")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// Serde adapter writing a 32-byte digest as hex rather than a list of 32 numbers.
mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(
        digest: &[u8; 32],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(digest))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; 32], D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        let mut digest = [0u8; 32];
        hex::decode_to_slice(text.as_bytes(), &mut digest).map_err(D::Error::custom)?;
        Ok(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{conformance_cases, decode_stream_input, shared_path};

    /// Hashes `bytes` fed to a `StreamHasher` in chunks of `chunk_len`.
    fn hash_in_chunks(bytes: &[u8], chunk_len: usize, bits: u32) -> ExactHashes {
        let mut hasher = StreamHasher::new();
        for chunk in bytes.chunks(chunk_len.max(1)) {
            hasher.update(chunk);
        }
        hasher.finish_with_bits(bits).expect("valid bit length")
    }

    /// What the one-shot functions of iscc-lib and ring say about `bytes`.
    fn one_shot(bytes: &[u8], bits: u32) -> ExactHashes {
        ExactHashes {
            size: bytes.len() as u64,
            sha256: digest::digest(&digest::SHA256, bytes)
                .as_ref()
                .try_into()
                .expect("32 bytes"),
            instance_code: iscc_lib::gen_instance_code_v0(bytes, bits)
                .expect("valid")
                .iscc,
            data_code: iscc_lib::gen_data_code_v0(bytes, bits).expect("valid").iscc,
        }
    }

    /// Streaming the ISCC conformance inputs for gen_data_code_v0 in 1-, 7- and
    /// 64 KiB-byte chunks and whole yields the expected Data-Codes, at every bit
    /// length the vectors use.
    #[test]
    fn data_code_conformance_vectors() {
        let cases = conformance_cases("gen_data_code_v0");
        assert!(cases.len() >= 4, "expected the four Data-Code vectors");
        for (name, inputs, outputs) in cases {
            let bytes = decode_stream_input(&inputs[0]);
            let bits = inputs[1].as_u64().expect("bits") as u32;
            let expected = outputs["iscc"].as_str().expect("iscc");
            for chunk_len in [1, 7, 64 * 1024, bytes.len()] {
                let got = hash_in_chunks(&bytes, chunk_len, bits);
                assert_eq!(got.data_code, expected, "{name}, chunks of {chunk_len}");
            }
        }
    }

    /// Streaming the conformance inputs for gen_instance_code_v0 yields the
    /// expected Instance-Codes and file sizes, whatever the chunking.
    #[test]
    fn instance_code_conformance_vectors() {
        let cases = conformance_cases("gen_instance_code_v0");
        assert!(cases.len() >= 3, "expected the three Instance-Code vectors");
        for (name, inputs, outputs) in cases {
            let bytes = decode_stream_input(&inputs[0]);
            let bits = inputs[1].as_u64().expect("bits") as u32;
            let expected = outputs["iscc"].as_str().expect("iscc");
            let size = outputs["filesize"].as_u64().expect("filesize");
            for chunk_len in [1, 7, 64 * 1024, bytes.len()] {
                let got = hash_in_chunks(&bytes, chunk_len, bits);
                assert_eq!(got.instance_code, expected, "{name}, chunks of {chunk_len}");
                assert_eq!(got.size, size, "{name}, chunks of {chunk_len}");
            }
        }
    }

    /// For real images and audio files, every chunking gives exactly what the
    /// one-shot iscc-lib and ring functions give for the whole file.
    #[test]
    fn streaming_matches_one_shot_on_real_files() {
        let files = [
            ("images/coffee.png", true),
            ("images/fallen_leaf_thumbnail.jpg", true),
            ("images/coffee.webp", true),
            ("audio/house_lo.ogg", true),
            ("audio/house_lo.mp3", false),
            ("audio/love_theme.m4a", false),
        ];
        for (file, byte_at_a_time) in files {
            let bytes = std::fs::read(shared_path("media").join(file)).expect("read test media");
            let expected = one_shot(&bytes, ISCC_BITS);
            // Feeding a megabyte one byte at a time is slow in debug builds, so
            // the 1-byte chunking runs on the smaller files only.
            let chunkings: &[usize] = if byte_at_a_time {
                &[1, 7, 64 * 1024, bytes.len()]
            } else {
                &[7, 4096, 64 * 1024, 64 * 1024 + 1, bytes.len()]
            };
            for &chunk_len in chunkings {
                assert_eq!(
                    hash_in_chunks(&bytes, chunk_len, ISCC_BITS),
                    expected,
                    "{file}, chunks of {chunk_len}"
                );
            }
        }
    }

    /// Irregular chunk sizes that straddle the internal batch boundary in every
    /// way still give the one-shot result.
    #[test]
    fn irregular_chunks_match_one_shot() {
        let bytes = std::fs::read(shared_path("media/images/chelsea.png")).expect("read");
        let expected = one_shot(&bytes, ISCC_BITS);
        let sizes = [0, 1, PIECE - 1, 2, PIECE, 3 * PIECE + 5, 10, 0];
        let mut hasher = StreamHasher::new();
        let mut rest = &bytes[..];
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.min(rest.len()));
            hasher.update(chunk);
            rest = tail;
        }
        assert_eq!(hasher.finish().expect("finish"), expected);
    }

    /// The empty stream has the conformance Instance-Code, SHA-256 of nothing,
    /// and size zero; codes are 64-bit in canonical `ISCC:` form.
    #[test]
    fn empty_stream() {
        let hashes = StreamHasher::new().finish().expect("finish");
        assert_eq!(hashes.size, 0);
        assert_eq!(hashes.instance_code, "ISCC:IAA26E2JXH27TING");
        assert_eq!(hashes.data_code, "ISCC:GAASL4F2WZY7KBXB");
        assert_eq!(
            hashes.sha256_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// `ExactHashes` serialises the SHA-256 as hex and reads it back unchanged.
    #[test]
    fn exact_hashes_serde_round_trip() {
        let mut hasher = StreamHasher::new();
        hasher.update(b"abc");
        let hashes = hasher.finish().expect("finish");
        let json = serde_json::to_value(&hashes).expect("serialise");
        assert_eq!(
            json["sha256"],
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let back: ExactHashes = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, hashes);
    }

    /// A bit length iscc-lib does not support is an error, not a panic.
    #[test]
    fn unsupported_bit_length_is_an_error() {
        let result = StreamHasher::new().finish_with_bits(65);
        assert!(matches!(result, Err(FingerprintError::Iscc(_))));
    }
}
