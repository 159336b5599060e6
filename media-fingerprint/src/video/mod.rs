//! Video: demuxing, H.264 decoding, MPEG-7 video signatures and the ISCC
//! Video-Code.
//!
//! [`video_print`] reads the first H.264 track of an MP4/MOV file (demuxed
//! with the `mp4` crate, decoded with Cisco's openh264), samples it at 5 fps
//! as ffmpeg's `fps` filter does (the last frame that rounds to each fifth of
//! a second of presentation time), and computes a
//! 380-element ternary frame signature of each ([`signature`]). The ISCC
//! Video-Code ([`video_code`]) is iscc-lib's `gen_video_code_v0` over those
//! signatures, fed exactly as iscc-sdk feeds ffmpeg's: every frame at 5 fps,
//! no scene detection, values 0/1/2 (iscc-lib drops duplicate frames itself).
//! [`compare_video`] finds where one video sits in another.
//!
//! The signatures are those of ffmpeg's `signature` filter, element for
//! element, on the same decoded frames (see [`signature`] for how its layout
//! was measured), so our Video-Codes are those iscc-sdk computes with ffmpeg.
//!
//! # Layout
//!
//! - `demux`: MP4/MOV boxes and sample tables; samples read by offset.
//! - `h264`: NAL units, SPS picture size, AVCC to Annex B.
//! - `decode`: the openh264 decoder, presentation order, 5 fps sampling,
//!   limits.
//! - `signature`: the 32x32 luminance grid and the 380 ternary elements.
//! - `matching`: aligning two signature sequences.

pub(crate) mod decode;
pub(crate) mod demux;
mod h264;
mod matching;
mod signature;

use std::io::{Read, Seek};

use serde::{Deserialize, Serialize};

use crate::error::{FingerprintError, Result};
use crate::limits::{Limits, Watch};
use crate::similarity::{Comparison, Verdict};

/// Frames sampled per second, as iscc-sdk samples for the Video-Code.
pub(crate) const FRAMES_PER_SECOND: u32 = 5;

/// Bits of the Video-Code we issue.
const VIDEO_CODE_BITS: u32 = 64;

/// At or below this distance (mean fraction of differing signature elements
/// over the overlap) two videos are the same content, when each covers most
/// of the other. Measured on the shared clips: the 360p re-encode of clip a
/// is at 0.12 and its Baseline copy at 0.04, while clip b against clip a is
/// at 0.61 at its best offset; unrelated frames agree on a third of the
/// elements by chance (0.67).
pub const VIDEO_SAME_MAX_DISTANCE: f64 = 0.2;

/// At or below this distance the videos are related (an excerpt, a heavier
/// transformation) even if they do not cover each other. Halfway between the
/// worst related pair on the shared clips and the best unrelated one.
pub const VIDEO_SIMILAR_MAX_DISTANCE: f64 = 0.35;

/// Share of each video that must overlap the other for a verdict of
/// [`Verdict::Same`]; an excerpt is at most [`Verdict::Similar`].
pub const VIDEO_SAME_MIN_COVERAGE: f64 = 0.9;

/// The video fingerprint kept for matching: per-frame signatures at a fixed
/// sampling rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoPrint {
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Frames sampled per second.
    pub frames_per_second: f64,
    /// One frame signature (380 values in 0..=2, 1 meaning "no significant
    /// difference") per sampled frame. Packed five values to a byte in
    /// JSON ([`crate::packed::trits`]).
    #[serde(with = "crate::packed::trits")]
    pub frame_signatures: Vec<Vec<i8>>,
}

/// Decodes the video track and computes its frame signatures.
///
/// Reads only the header (`moov`) and the video samples, one at a time;
/// refuses by `limits` before decoding what the headers promise (picture
/// size, duration, frame count) and stops if the data breaks them. A
/// truncated file gives the frames before the cut. Stops with
/// [`FingerprintError::TimedOut`] or [`FingerprintError::Cancelled`] when
/// `watch` says so.
pub(crate) fn video_print<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
    watch: &Watch,
) -> Result<VideoPrint> {
    let sampled = decode::sample_frames(
        reader,
        limits,
        watch,
        decode::Options {
            fps: FRAMES_PER_SECOND,
            skip_unneeded: true,
        },
    )?;
    Ok(VideoPrint {
        duration_seconds: sampled.duration_seconds,
        frames_per_second: f64::from(FRAMES_PER_SECOND),
        frame_signatures: sampled.signatures,
    })
}

/// The video fingerprint of an MP4/MOV alone, without its sound track (which
/// [`content_fingerprint`](crate::content_fingerprint) adds): for callers
/// that only need the picture, and for the `video` benchmark. The time
/// bound of `limits` counts from this call.
pub fn video_fingerprint<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
) -> Result<VideoPrint> {
    video_print(reader, limits, &Watch::start(limits))
}

/// The 64-bit ISCC Video-Code of a fingerprint.
pub fn video_code(print: &VideoPrint) -> Result<String> {
    let frames: Vec<Vec<i32>> = print
        .frame_signatures
        .iter()
        .map(|f| f.iter().map(|&v| i32::from(v)).collect())
        .collect();
    video_code_from_frames(&frames, VIDEO_CODE_BITS)
}

/// The Video-Code of `bits` bits for frame signatures as iscc-sdk passes
/// them; the one place our video path and the conformance vectors meet
/// iscc-lib.
pub(crate) fn video_code_from_frames(frames: &[Vec<i32>], bits: u32) -> Result<String> {
    if frames.is_empty() {
        return Err(FingerprintError::VideoDecode(
            "no frames to compute a Video-Code from".into(),
        ));
    }
    let code = iscc_lib::gen_video_code_v0(frames, bits).map_err(FingerprintError::Iscc)?;
    Ok(code.iscc)
}

/// Compares two video fingerprints, finding where `b` sits in `a`.
///
/// `distance` is the mean fraction of signature elements that differ between
/// aligned frames (0 identical, about 0.67 unrelated); `offset_seconds` is
/// where `b`'s start falls in `a`. The verdict follows
/// [`VIDEO_SAME_MAX_DISTANCE`], [`VIDEO_SIMILAR_MAX_DISTANCE`] and
/// [`VIDEO_SAME_MIN_COVERAGE`].
pub fn compare_video(a: &VideoPrint, b: &VideoPrint) -> Comparison {
    let different = Comparison {
        distance: 1.0,
        verdict: Verdict::Different,
        offset_seconds: None,
    };
    if !(a.frames_per_second > 0.0 && b.frames_per_second > 0.0) {
        return different;
    }
    // A long video's print may be sampled to fit the ledger, one frame in
    // `step`: the finer print is then taken one frame in `step` too, at
    // each phase, and the best alignment wins. Other rates are not made.
    let a_finer = a.frames_per_second >= b.frames_per_second;
    let ratio = if a_finer {
        a.frames_per_second / b.frames_per_second
    } else {
        b.frames_per_second / a.frames_per_second
    };
    let step = ratio.round();
    if (ratio - step).abs() > 1e-6 || !(1.0..=f64::from(MAX_SAMPLING_STEP)).contains(&step) {
        return different;
    }
    let step = step as usize;
    let pack = |p: &VideoPrint, phase: usize, step: usize| -> Vec<matching::Packed> {
        p.frame_signatures
            .iter()
            .skip(phase)
            .step_by(step)
            .map(|s| matching::Packed::new(s))
            .collect()
    };
    let coarse_fps = a.frames_per_second.min(b.frames_per_second);
    let coarse = if a_finer {
        pack(b, 0, 1)
    } else {
        pack(a, 0, 1)
    };
    let mut best: Option<Comparison> = None;
    for phase in 0..step {
        let fine = if a_finer {
            pack(a, phase, step)
        } else {
            pack(b, phase, step)
        };
        let (packed_a, packed_b) = if a_finer {
            (&fine, &coarse)
        } else {
            (&coarse, &fine)
        };
        let Some(found) = matching::align(packed_a, packed_b) else {
            continue;
        };
        let coverage = |len: usize| found.overlap as f64 / len.max(1) as f64;
        let covers_both = coverage(packed_a.len()) >= VIDEO_SAME_MIN_COVERAGE
            && coverage(packed_b.len()) >= VIDEO_SAME_MIN_COVERAGE;
        let verdict = if found.distance <= VIDEO_SAME_MAX_DISTANCE && covers_both {
            Verdict::Same
        } else if found.distance <= VIDEO_SIMILAR_MAX_DISTANCE {
            Verdict::Similar
        } else {
            Verdict::Different
        };
        // `b`'s first frame, in `a`'s time: the phase moves the sampled
        // frames of the finer print away from its first frame.
        let shift = phase as f64 / coarse_fps / step as f64;
        let start = found.offset as f64 / coarse_fps;
        let offset = if a_finer {
            start + shift
        } else {
            start - shift
        };
        let comparison = Comparison {
            distance: found.distance,
            verdict,
            offset_seconds: (verdict != Verdict::Different).then_some(offset),
        };
        if best
            .as_ref()
            .is_none_or(|b| comparison.distance < b.distance)
        {
            best = Some(comparison);
        }
    }
    best.unwrap_or(different)
}

/// The coarsest sampling of a print that is still compared: one frame in
/// this many (at 5 fps, one every 12.8 s).
pub const MAX_SAMPLING_STEP: u32 = 64;

impl VideoPrint {
    /// The print with one frame signature in `step` kept, for a video whose
    /// full print is too large to store; `compare_video` compares it with
    /// full prints. `step` is at least 1 and at most [`MAX_SAMPLING_STEP`].
    pub fn sampled(&self, step: u32) -> VideoPrint {
        let step = step.clamp(1, MAX_SAMPLING_STEP);
        VideoPrint {
            duration_seconds: self.duration_seconds,
            frames_per_second: self.frames_per_second / f64::from(step),
            frame_signatures: self
                .frame_signatures
                .iter()
                .step_by(step as usize)
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests;
