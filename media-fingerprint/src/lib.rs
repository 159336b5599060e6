//! Exact hashes and content fingerprints of uploaded media, for the provenance
//! registry.
//!
//! Two questions are answered about every upload:
//!
//! - *Is this exactly a file we know?* [`StreamHasher`] computes SHA-256 and
//!   the ISCC Instance-Code and Data-Code (ISO 24138) while the upload streams
//!   past, never holding the whole file.
//! - *Is this perceptually a picture we know?* [`content_fingerprint`] decodes
//!   the media within [`Limits`] and computes the ISCC Image-Code, a 64-bit
//!   perceptual hash compared with [`image_code_distance`]. What cannot be
//!   computed is reported, never raised, so registration can go on with the
//!   exact hashes alone.
//!
//! Decoding untrusted uploads is bounded three ways. [`decode_cost`] reads
//! only the headers and says how much memory the decode will need at its
//! peak (an upper bound, calibrated against measured peaks), and refuses what
//! the limits would refuse, so a caller can wait for room in a memory budget
//! before decoding. [`Limits::max_decode_time`] stops a decode that runs too
//! long, and [`Limits::cancel`] (a [`Cancel`]) stops one from another thread;
//! either way `content_fingerprint` returns [`FingerprintError::TimedOut`]
//! or [`FingerprintError::Cancelled`], its only errors.
//!
//! [`sniff`] decides the [`MediaKind`] from the bytes, never from what the
//! client claims. ISCC codes come from `iscc-lib`, the ISCC Foundation's
//! implementation, and are written in canonical `ISCC:...` form.
//!
//! This is a pure library: it reads only the readers it is given, and does no
//! networking and no async.
//!
//! # Layout
//!
//! - `error`: [`FingerprintError`] and [`Result`].
//! - `limits`: [`Limits`], the bounds on decoding cost, its time bound and
//!   [`Cancel`] flag, checked by every decoding loop.
//! - `cost`: [`decode_cost`] and [`DecodeCost`], the header-only estimate of
//!   a decode's peak memory.
//! - `exact`: [`StreamHasher`] and [`ExactHashes`].
//! - [`cdc`]: the Data-Code's content-defined chunking in interleaved lanes,
//!   equal to iscc-lib's and faster, and [`cdc::DataCodeHasher`].
//! - `sniff`: [`sniff`], [`Sniffed`] and [`MediaKind`].
//! - `content`: [`content_fingerprint`], which picks the fingerprint for each
//!   media kind; future audio and video fingerprints plug in here.
//! - `image_code`: decoding images under limits, the Image-Code, and
//!   [`image_code_distance`].
//! - `jpeg`: refusing truncated JPEGs, which the decoder would accept, and
//!   reading the frame header (progressive or not, sampling).
//! - `normalize`: the iscc-sdk image normalisation (orientation, transparency,
//!   border trim, luma, bicubic resize), matching Pillow's arithmetic.
//! - `kernels`: its two inner loops (luma, the resize's dot product), in a
//!   portable and an AVX2 form chosen at run time.
//! - [`audio`]: audio decoding (symphonia), the Chromaprint fingerprint, the
//!   ISCC Audio-Code and excerpt matching.
//! - [`video`]: MP4/MOV demuxing, H.264 decoding, MPEG-7 frame signatures,
//!   the ISCC Video-Code and excerpt matching.
//! - `similarity`: [`Comparison`] and [`Verdict`], shared by every kind.
//! - [`packed`]: the compact JSON forms of frame signatures and Chromaprint
//!   vectors.
//! - [`iscc`]: Meta-Code, Text-Code, Mixed-Code, the composite ISCC-CODE and
//!   unit sequences; with the conformance test over the published vectors.

pub mod audio;
pub mod cdc;
mod content;
mod cost;
mod error;
mod exact;
mod image_code;
pub mod iscc;
mod jpeg;
mod kernels;
mod limits;
mod normalize;
pub mod packed;
mod similarity;
mod sniff;
pub mod video;

#[cfg(test)]
mod test_support;

pub use content::{ContentFingerprint, MissingFingerprint, content_fingerprint};
pub use cost::{DecodeCost, decode_cost};
pub use error::{FingerprintError, Result};
pub use exact::{ExactHashes, StreamHasher};
pub use image_code::image_code_distance;
pub use limits::{Cancel, DEFAULT_MAX_DECODE_TIME, Limits};
pub use similarity::{
    Comparison, IMAGE_SAME_BITS, IMAGE_SIMILAR_BITS, Verdict, compare_image_code_sets,
    compare_image_codes, image_verdict,
};
pub use sniff::{MediaKind, SNIFF_LEN, Sniffed, sniff};
