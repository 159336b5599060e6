//! Audio: decoding, the Chromaprint fingerprint, the ISCC Audio-Code and
//! excerpt matching.
//!
//! The audio (or the sound track of a video) is decoded with symphonia one
//! packet at a time and fed straight to rusty-chromaprint's `Fingerprinter`
//! with the `preset_test2` configuration, the one `fpcalc` uses by default.
//! The fingerprinter downmixes to mono and resamples to 11025 Hz itself, so
//! the decoded signal is never held whole.
//!
//! [`AudioPrint::chromaprint`] is the raw vector `fpcalc -raw -length 0`
//! prints, over the whole audio: iscc-sdk computes the Audio-Code from
//! `fpcalc -raw -signed -length 0`, so [`audio_code`] covers the whole audio
//! too, not fpcalc's default first 120 s.
//!
//! # Layout
//!
//! - `decode`: symphonia probing, track choice, the packet loop and [`Limits`].
//! - `matching`: sliding one vector along the other to find the best offset.

use std::io::{Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};

use rusty_chromaprint::{Configuration, Fingerprinter};
use serde::{Deserialize, Serialize};

use crate::error::{FingerprintError, Result};
use crate::limits::{Limits, Watch};
use crate::similarity::{Comparison, Verdict};

pub(crate) mod decode;
mod matching;

#[cfg(test)]
mod media_tests;

/// Bit length of the Audio-Codes the registry stores (the ISCC default).
const AUDIO_CODE_BITS: u32 = 64;

/// Shortest audio fingerprinted, in seconds. Chromaprint's filters need about
/// 2.6 s of audio before they give their first item; a few items more make a
/// print worth matching.
pub(crate) const MIN_DURATION_SECONDS: f64 = 3.0;

/// Seconds of audio per Chromaprint item: `preset_test2` hops 1365 samples
/// (a 4096-sample frame overlapping its predecessor by 2731) at 11025 Hz.
pub(crate) const ITEM_SECONDS: f64 = 1365.0 / 11025.0;

/// Highest bit error rate at which two prints are the same audio (when the
/// overlap also covers [`SAME_MIN_COVERAGE`] of the longer one). On the shared
/// media, re-encodes of one recording (house_lo as WAV, Ogg Vorbis and MP3;
/// love_theme as Ogg Vorbis, MP3 128k and AAC 128k; clip a's sound track in
/// three encodings) are at most 0.041 apart; the margin is for heavier
/// re-encodes such as low-bitrate MP3.
pub const SAME_MAX_BIT_ERROR_RATE: f64 = 0.15;

/// Highest bit error rate at which two prints are related (an excerpt, or a
/// heavier transformation). On the shared media, excerpts are at most 0.077
/// from the audio they were cut from, and unrelated pairs at least 0.370
/// apart at their best offset (about 0.5 is chance).
pub const SIMILAR_MAX_BIT_ERROR_RATE: f64 = 0.25;

/// Share of the longer print that the overlap must cover for the verdict
/// [`Verdict::Same`]; less is an excerpt, [`Verdict::Similar`]. Re-encodes
/// differ in length by encoder delay and padding only.
pub const SAME_MIN_COVERAGE: f64 = 0.9;

/// The audio fingerprint kept for matching: the raw Chromaprint vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioPrint {
    /// Decoded duration in seconds.
    pub duration_seconds: f64,
    /// Raw Chromaprint fingerprint (`preset_test2`, as `fpcalc -raw`), one
    /// 32-bit item per 1365/11025 s, over the whole audio. Base64 of the
    /// little-endian items in JSON ([`crate::packed::items`]).
    #[serde(with = "crate::packed::items")]
    pub chromaprint: Vec<u32>,
}

/// Decodes the audio (or the audio track of a video) and fingerprints it.
///
/// Fails for input that is not audio in a supported format, audio shorter than
/// [`MIN_DURATION_SECONDS`], or audio longer than `limits` allow (declared or
/// found while decoding). A stream cut short or corrupt part-way gives the
/// fingerprint of what decoded. Stops with [`FingerprintError::TimedOut`] or
/// [`FingerprintError::Cancelled`] when `watch` says so. Never panics: a
/// panic in the third-party decoders becomes [`FingerprintError::AudioDecode`].
pub(crate) fn audio_print<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
    watch: &Watch,
) -> Result<AudioPrint> {
    // The decoders are third-party parsers of untrusted bytes, and
    // rusty-chromaprint asserts its own invariants; a panic in either becomes
    // a missing fingerprint for this upload, not a panic in the caller.
    // Nothing outlives the closure but its result.
    catch_unwind(AssertUnwindSafe(|| {
        fingerprint_stream(reader, limits, watch)
    }))
    .map_err(|panic| {
        FingerprintError::AudioDecode(format!(
            "the decoder failed unexpectedly: {}",
            crate::error::panic_message(panic.as_ref())
        ))
    })?
}

/// [`audio_print`] without the panic guard.
fn fingerprint_stream<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
    watch: &Watch,
) -> Result<AudioPrint> {
    let mut sink = ChromaprintSink {
        fingerprinter: Fingerprinter::new(&Configuration::preset_test2()),
    };
    let decoded = decode::decode(reader, limits, watch, &mut sink)?;
    sink.fingerprinter.finish();
    let chromaprint = sink.fingerprinter.fingerprint().to_vec();
    let duration_seconds = decoded.seconds();
    if duration_seconds < MIN_DURATION_SECONDS || chromaprint.is_empty() {
        return Err(FingerprintError::AudioDecode(format!(
            "the audio is too short to fingerprint: {duration_seconds:.1} s decoded, \
             at least {MIN_DURATION_SECONDS} s are needed"
        )));
    }
    Ok(AudioPrint {
        duration_seconds,
        chromaprint,
    })
}

/// Feeds decoded packets to the Chromaprint fingerprinter.
struct ChromaprintSink {
    fingerprinter: Fingerprinter,
}

impl decode::AudioSink for ChromaprintSink {
    fn start(&mut self, sample_rate: u32, channels: usize) -> Result<()> {
        // `channels` is at most `decode::MAX_CHANNELS`, so it fits.
        let channels = u32::try_from(channels).unwrap_or(u32::MAX);
        self.fingerprinter
            .start(sample_rate, channels)
            .map_err(|e| FingerprintError::AudioDecode(format!("cannot fingerprint: {e}")))
    }

    fn consume(&mut self, interleaved: &[i16]) {
        self.fingerprinter.consume(interleaved);
    }
}

/// The 64-bit ISCC Audio-Code of a fingerprint, in canonical `ISCC:...` form.
///
/// Computed as iscc-sdk does: `gen_audio_code_v0` over the whole raw vector
/// read as signed 32-bit integers (`fpcalc -raw -signed -length 0`).
pub fn audio_code(print: &AudioPrint) -> Result<String> {
    audio_code_with_bits(&print.chromaprint, AUDIO_CODE_BITS)
}

/// The Audio-Code of `bits` bits for a raw Chromaprint vector; the one place
/// our audio path and the conformance vectors meet iscc-lib.
pub(crate) fn audio_code_with_bits(chromaprint: &[u32], bits: u32) -> Result<String> {
    // fpcalc -signed prints the same 32 bits as a signed integer.
    let signed: Vec<i32> = chromaprint.iter().map(|&x| x.cast_signed()).collect();
    let code = iscc_lib::gen_audio_code_v0(&signed, bits).map_err(FingerprintError::Iscc)?;
    Ok(code.iscc)
}

/// Compares two audio fingerprints, finding where `b` sits in `a`.
///
/// `b` is slid along `a` (and `a` along `b`) over every offset where they
/// overlap by at least about 5 s (or the whole of the shorter print), and the
/// offset where the fewest bits differ wins:
///
/// - `distance`: the bit error rate over the overlap at that offset, 0 for
///   identical prints, about 0.5 for unrelated audio; 1.0 when either print
///   is empty.
/// - `offset_seconds`: where the start of `b` sits in `a` (negative when `b`
///   starts before `a`), refined to a fraction of a Chromaprint item
///   (0.124 s); `None` when either print is empty.
/// - `verdict`: [`Verdict::Same`] when `distance` ≤
///   [`SAME_MAX_BIT_ERROR_RATE`] (0.15) and the overlap covers at least
///   [`SAME_MIN_COVERAGE`] (90 %) of the longer print; [`Verdict::Similar`]
///   when `distance` ≤ [`SIMILAR_MAX_BIT_ERROR_RATE`] (0.25), which includes
///   an excerpt of the same audio; [`Verdict::Different`] otherwise.
pub fn compare_audio(a: &AudioPrint, b: &AudioPrint) -> Comparison {
    let Some(found) = matching::align(&a.chromaprint, &b.chromaprint) else {
        return Comparison {
            distance: 1.0,
            verdict: Verdict::Different,
            offset_seconds: None,
        };
    };
    let longer = a.chromaprint.len().max(b.chromaprint.len());
    let coverage = found.overlap as f64 / longer as f64;
    let distance = found.bit_error_rate;
    let verdict = if distance <= SAME_MAX_BIT_ERROR_RATE && coverage >= SAME_MIN_COVERAGE {
        Verdict::Same
    } else if distance <= SIMILAR_MAX_BIT_ERROR_RATE {
        Verdict::Similar
    } else {
        Verdict::Different
    };
    Comparison {
        distance,
        verdict,
        offset_seconds: Some(found.fine_offset * ITEM_SECONDS),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A 16-bit mono PCM WAV holding `samples`.
    pub(super) fn wav(sample_rate: u32, samples: &[i16]) -> Vec<u8> {
        crate::test_support::wav(sample_rate, 1, samples)
    }

    /// A chord whose notes change every half second, `seconds` long.
    pub(super) fn melody(sample_rate: u32, seconds: f64) -> Vec<i16> {
        let notes = [220.0, 277.2, 329.6, 392.0, 440.0, 523.3, 293.7, 349.2];
        let n = (seconds * f64::from(sample_rate)) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(sample_rate);
                let note = notes[(t * 2.0) as usize % notes.len()];
                let v = (t * note * std::f64::consts::TAU).sin()
                    + 0.5 * (t * note * 1.5 * std::f64::consts::TAU).sin();
                (v * 8000.0) as i16
            })
            .collect()
    }

    /// `ITEM_SECONDS` is the item step of the configuration we fingerprint with.
    #[test]
    fn item_seconds_matches_the_configuration() {
        let configured = f64::from(Configuration::preset_test2().item_duration_in_seconds());
        assert!((ITEM_SECONDS - configured).abs() < 1e-6, "{configured}");
    }

    /// A synthetic WAV fingerprints to about eight items a second.
    #[test]
    fn synthetic_wav_is_fingerprinted() {
        let bytes = wav(22_050, &melody(22_050, 10.0));
        let print =
            audio_print(Cursor::new(bytes), &Limits::default(), &Watch::none()).expect("print");
        assert!((print.duration_seconds - 10.0).abs() < 1e-9);
        // About 8 items a second, less Chromaprint's start-up delay.
        let items = print.chromaprint.len();
        assert!((55..=80).contains(&items), "{items} items");
        assert!(audio_code(&print).expect("code").starts_with("ISCC:EI"));
    }

    /// Audio too short for Chromaprint gives an error that says so.
    #[test]
    fn too_short_audio_is_refused() {
        let bytes = wav(22_050, &melody(22_050, 2.0));
        let error = audio_print(Cursor::new(bytes), &Limits::default(), &Watch::none())
            .expect_err("too short");
        assert!(error.to_string().contains("too short"), "{error}");
    }

    /// A print compared with itself is the same at offset 0; with an excerpt of
    /// itself, similar at the excerpt's offset.
    #[test]
    fn compare_with_self_and_excerpt() {
        let bytes = wav(22_050, &melody(22_050, 30.0));
        let print =
            audio_print(Cursor::new(bytes), &Limits::default(), &Watch::none()).expect("print");
        let same = compare_audio(&print, &print);
        assert_eq!(same.verdict, Verdict::Same);
        assert_eq!(same.distance, 0.0);
        assert_eq!(same.offset_seconds, Some(0.0));
        let excerpt = AudioPrint {
            duration_seconds: 10.0,
            chromaprint: print.chromaprint[100..180].to_vec(),
        };
        let found = compare_audio(&print, &excerpt);
        assert_eq!(found.verdict, Verdict::Similar);
        let offset = found.offset_seconds.expect("offset");
        assert!((offset - 100.0 * ITEM_SECONDS).abs() < 0.07, "{offset}");
    }

    /// An empty print is different from everything, with no offset.
    #[test]
    fn empty_print_is_different() {
        let empty = AudioPrint {
            duration_seconds: 0.0,
            chromaprint: Vec::new(),
        };
        let comparison = compare_audio(&empty, &empty);
        assert_eq!(comparison.verdict, Verdict::Different);
        assert_eq!(comparison.offset_seconds, None);
    }
}
