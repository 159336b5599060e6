//! Decoding the H.264 track and sampling it at a fixed rate by presentation
//! time, holding one coded sample and the decoder's own picture buffers at a
//! time.
//!
//! openh264's decode call (`DecodeFrameNoDelay` underneath) returns pictures
//! in display order when the decoder is told not to flush after every call:
//! it keeps pictures back until their turn, and `flush_remaining` hands over
//! the last ones at the end. Flushing after every call, the crate's default,
//! pushes B-frames out early and loses them (the decoder then reports errors
//! for every later frame), so we never do. Output pictures carry no usable
//! timestamp through the crate's API, so their presentation times come from
//! the sample tables: a picture leaving the decoder is the earliest, in
//! presentation time, of those fed and not yet returned.
//!
//! Which pictures are needed is known before decoding: those ffmpeg's `fps`
//! filter would keep at 5 fps (see `plan_samples`). A disposable
//! picture (one no other picture is predicted from) that is not needed is not
//! decoded at all, which saves about half the decoding of typical x264 output.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{Read, Seek};
use std::panic::{AssertUnwindSafe, catch_unwind};

use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;

use super::demux::{self, MAX_SAMPLE_BYTES, VideoTrack};
use super::h264;
use super::signature::{self, BlockMeans};
use crate::error::{FingerprintError, Result};
use crate::limits::{Limits, Watch};

/// Pictures the decoder may hold at once at most: 16 reference pictures (the
/// H.264 maximum), the one being decoded and one being output. Used to bound
/// the decoder's memory against `Limits::max_decoded_bytes`.
const DECODER_PICTURES: u64 = 18;

/// Iterations of the cheap loops over sample-table entries between two looks
/// at the clock: a few hundred microseconds of work.
const ENTRIES_PER_CHECK: usize = 4096;

/// The sampled frames of a video track.
#[derive(Debug)]
pub(crate) struct Sampled {
    /// Duration of the track in seconds.
    pub(crate) duration_seconds: f64,
    /// One frame signature per sampling instant, in time order.
    pub(crate) signatures: Vec<Vec<i8>>,
}

/// Options that tests change.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    /// Sampling instants per second.
    pub(crate) fps: u32,
    /// Whether disposable pictures that are not sampled are skipped.
    pub(crate) skip_unneeded: bool,
}

/// Decodes the first H.264 track of the MP4/MOV in `reader` and returns the
/// signatures of the frames sampled as ffmpeg's `fps` filter samples.
/// Stops when `watch` says so, between pictures.
pub(crate) fn sample_frames<R: Read + Seek>(
    mut reader: R,
    limits: &Limits,
    watch: &Watch,
    options: Options,
) -> Result<Sampled> {
    let track = demux::open_video_track(&mut reader)?;
    watch.check()?;
    check_header(&track, limits)?;
    let plan = plan_samples(&track, limits, watch, options.fps)?;

    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    let mut decoder = catch_unwind(AssertUnwindSafe(|| {
        Decoder::with_api_config(OpenH264API::from_source(), config)
    }))
    .map_err(|_| decoder_panic())?
    .map_err(|e| FingerprintError::VideoDecode(format!("could not start the decoder: {e}")))?;

    let mut state = State {
        plan,
        next_wanted: 0,
        pending: BinaryHeap::new(),
        signatures: Vec::new(),
        max_pixels: limits.max_pixels,
    };

    let mut annex_b = Vec::new();
    h264::append_annex_b(&track.sps, &mut annex_b);
    h264::append_annex_b(&track.pps, &mut annex_b);
    decode_one(&mut decoder, &annex_b, &mut state)?;

    let mut sample_bytes = Vec::new();
    let mut decoded: u64 = 0;
    let mut errors: u64 = 0;
    for sample in track.samples() {
        // Once per sample, skipped ones included: the check costs far less
        // than reading a sample, let alone decoding one.
        watch.check()?;
        let sample = sample?;
        track.read_sample(&mut reader, &sample, &mut sample_bytes)?;
        let info =
            h264::sample_to_annex_b(&sample_bytes, track.nal_length_size, &mut annex_b, |sps| {
                check_sps(sps, limits)
            })?;
        if info.has_slice {
            if !info.is_reference && options.skip_unneeded && !state.plan.wants(sample.cts) {
                continue;
            }
            decoded += 1;
            if decoded > limits.max_frames {
                return Err(FingerprintError::LimitExceeded(format!(
                    "more than {} video frames",
                    limits.max_frames
                )));
            }
            state.pending.push(Reverse(sample.cts));
        }
        if !decode_one(&mut decoder, &annex_b, &mut state)? {
            // A corrupt picture is dropped by the decoder; the stream goes on
            // from the next one it can decode. A stream that never decodes
            // is reported below as having no pictures.
            errors += 1;
        }
    }
    watch.check()?;
    let remaining = catch_unwind(AssertUnwindSafe(|| {
        decoder.flush_remaining().map(|frames| {
            frames
                .iter()
                .map(|yuv| picture_means(yuv, state.max_pixels))
                .collect::<Vec<_>>()
        })
    }))
    .map_err(|_| decoder_panic())?;
    if let Ok(frames) = remaining {
        for means in frames {
            state.output(means?);
        }
    }
    if state.signatures.is_empty() {
        return Err(FingerprintError::VideoDecode(format!(
            "no picture could be decoded ({errors} of {decoded} pictures failed)"
        )));
    }
    Ok(Sampled {
        duration_seconds: state.plan.duration_ticks as f64 / f64::from(track.timescale),
        signatures: state.signatures,
    })
}

/// Refuses, from the header alone, a track whose pictures, length or frame
/// count exceed the limits.
fn check_header(track: &VideoTrack, limits: &Limits) -> Result<()> {
    if track.sps.is_empty() {
        return Err(FingerprintError::VideoDecode(
            "the H.264 track has no sequence parameter set".into(),
        ));
    }
    for sps in &track.sps {
        check_sps(sps, limits)?;
    }
    let declared = u64::from(track.width) * u64::from(track.height);
    if declared > limits.max_pixels {
        return Err(FingerprintError::LimitExceeded(format!(
            "{}x{} video is {declared} pixels per frame, more than the limit of {}",
            track.width, track.height, limits.max_pixels
        )));
    }
    let seconds = track.declared_duration as f64 / f64::from(track.timescale);
    if seconds > limits.max_duration_seconds {
        return Err(too_long(seconds, limits));
    }
    if u64::from(track.sample_count()) > limits.max_frames {
        return Err(FingerprintError::LimitExceeded(format!(
            "{} video frames, more than the limit of {}",
            track.sample_count(),
            limits.max_frames
        )));
    }
    Ok(())
}

/// What a video track's header says its decode will hold.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PictureCost {
    /// Peak bytes of decoding the pictures and computing the Video-Code.
    pub(crate) peak_bytes: u64,
    /// Bytes of the video print, kept while the sound track decodes.
    pub(crate) print_bytes: u64,
    /// Largest picture size its parameter sets declare.
    pub(crate) dimensions: (u32, u32),
}

/// Bytes of one sampled frame's signature in the print: 380 values in a
/// heap block of 400, and its place in the vector of signatures (24 bytes,
/// twice while the vector grows).
const PRINT_BYTES_PER_FRAME: u64 = 400 + 48;

/// Bytes per sampled frame while the Video-Code is computed: iscc-lib takes
/// the signatures as 32-bit values (380 × 4 in a block of 1536, plus its
/// place in the vector) and sorts references to them into a B-tree set.
const CODE_BYTES_PER_FRAME: u64 = 1536 + 24 + 32;

/// The peak memory of [`sample_frames`] and the Video-Code on the track
/// `video` describes, refusing from its header what [`check_header`] and
/// [`plan_samples`] would refuse from the same tables.
pub(crate) fn header_cost(video: &demux::VideoHeader, limits: &Limits) -> Result<PictureCost> {
    if video.sps.is_empty() {
        return Err(FingerprintError::VideoDecode(
            "the H.264 track has no sequence parameter set".into(),
        ));
    }
    let mut size = (0u32, 0u32);
    let mut decoder = 0u64;
    for sps in &video.sps {
        check_sps(sps, limits)?;
        let picture = h264::sps_picture_size(sps)?;
        size = (size.0.max(picture.width), size.1.max(picture.height));
        decoder = decoder.max(decoder_bytes(&picture));
    }
    let declared = u64::from(video.width) * u64::from(video.height);
    if declared > limits.max_pixels {
        return Err(FingerprintError::LimitExceeded(format!(
            "{}x{} video is {declared} pixels per frame, more than the limit of {}",
            video.width, video.height, limits.max_pixels
        )));
    }
    if video.timescale == 0 {
        return Err(FingerprintError::VideoDecode(
            "the MP4 file is corrupt: track timescale is zero".into(),
        ));
    }
    let timescale = f64::from(video.timescale);
    let seconds = video.duration as f64 / timescale;
    if seconds > limits.max_duration_seconds {
        return Err(too_long(seconds, limits));
    }
    if u64::from(video.sample_count) > limits.max_frames {
        return Err(FingerprintError::LimitExceeded(format!(
            "{} video frames, more than the limit of {}",
            video.sample_count, limits.max_frames
        )));
    }
    if video.max_sample_size > MAX_SAMPLE_BYTES {
        return Err(FingerprintError::LimitExceeded(format!(
            "a video frame of {} bytes, more than the {MAX_SAMPLE_BYTES} accepted",
            video.max_sample_size
        )));
    }
    // The print has one signature per sampled instant over the presentation
    // span, which the decode measures from the tables (and refuses past the
    // duration limit); without the tables, the longest the limits allow.
    let span = video
        .span
        .map_or(limits.max_duration_seconds, |span| span as f64 / timescale)
        .max(seconds)
        .min(limits.max_duration_seconds);
    let frames = if span.is_finite() {
        (span * f64::from(super::FRAMES_PER_SECOND)) as u64 + 1
    } else {
        u64::from(video.sample_count) + 1
    };
    let samples = u64::from(video.sample_count);
    // The plan: every presentation time while planning, then the kept ones.
    let plan = 8 * samples + 16 * frames;
    // One coded sample and its Annex B copy.
    let coded = 2 * u64::from(video.max_sample_size);
    let decoding = decoder + plan + coded + PRINT_BYTES_PER_FRAME * frames;
    let coding = (PRINT_BYTES_PER_FRAME + CODE_BYTES_PER_FRAME) * frames + 16 * frames;
    Ok(PictureCost {
        peak_bytes: decoding.max(coding),
        print_bytes: PRINT_BYTES_PER_FRAME * frames,
        dimensions: size,
    })
}

/// Memory openh264 allocates to decode pictures of the size an SPS declares
/// (`WelsRequestMem`, `AllocPicture`): two pictures more than the SPS's
/// reference frames (at most 16), each 4:2:0 with a 32-pixel border,
/// aligned to 32, with its motion vectors and reference indices, and the
/// decoder's per-macroblock state, measured at about 2.3 KiB a macroblock
/// (fitted on the shared 640x360 and 1280x720 clips, with 3 MiB besides).
fn decoder_bytes(picture: &h264::PictureSize) -> u64 {
    let (width, height) = (u64::from(picture.width), u64::from(picture.height));
    let pictures = (u64::from(picture.ref_frames.min(16)) + 2).min(DECODER_PICTURES);
    let macroblocks = width.div_ceil(16) * height.div_ceil(16);
    let padded = (width + 64).next_multiple_of(32) * (height + 64).next_multiple_of(32);
    let per_picture = padded * 3 / 2 + PICTURE_BYTES_PER_MACROBLOCK * macroblocks;
    pictures * per_picture + DECODER_BYTES_PER_MACROBLOCK * macroblocks + DECODER_BYTES
}

/// Per picture and macroblock: a correctly-decoded flag, a type, two lists
/// of 16 motion vectors and of 16 reference indices.
const PICTURE_BYTES_PER_MACROBLOCK: u64 = 1 + 4 + 2 * 64 + 2 * 16;

/// The decoder's own state per macroblock, fitted on the shared clips
/// (2.3 KiB measured), rounded up.
const DECODER_BYTES_PER_MACROBLOCK: u64 = 2560;

/// The decoder's fixed state, fitted on the shared clips (3 MiB measured),
/// rounded up.
const DECODER_BYTES: u64 = 4 << 20;

/// Refuses an SPS whose pictures are larger than the limits allow, before
/// the decoder allocates for them.
fn check_sps(sps: &[u8], limits: &Limits) -> Result<()> {
    let size = h264::sps_picture_size(sps)?;
    let pixels = u64::from(size.width) * u64::from(size.height);
    if pixels > limits.max_pixels {
        return Err(FingerprintError::LimitExceeded(format!(
            "{}x{} video is {pixels} pixels per frame, more than the limit of {}",
            size.width, size.height, limits.max_pixels
        )));
    }
    // 4:2:0 pictures take 1.5 bytes per pixel.
    let bytes = pixels * 3 / 2 * DECODER_PICTURES;
    if bytes > limits.max_decoded_bytes {
        return Err(FingerprintError::LimitExceeded(format!(
            "decoding {}x{} video needs up to {bytes} bytes of pictures, more than the limit of {}",
            size.width, size.height, limits.max_decoded_bytes
        )));
    }
    Ok(())
}

/// The error for a track longer than allowed.
fn too_long(seconds: f64, limits: &Limits) -> FingerprintError {
    FingerprintError::LimitExceeded(format!(
        "video is {seconds:.1} s long, more than the limit of {} s",
        limits.max_duration_seconds
    ))
}

/// The error for a panic inside the decoder or its bindings.
fn decoder_panic() -> FingerprintError {
    FingerprintError::VideoDecode("the H.264 decoder failed unexpectedly".into())
}

/// Which pictures to keep, decided from the sample tables before decoding.
#[derive(Debug)]
struct Plan {
    /// Presentation times (track ticks) of the pictures to keep, ascending,
    /// each with how many sampling instants it stands for (more than one when
    /// the video has fewer frames per second than we sample).
    wanted: Vec<(i64, usize)>,
    /// Length of the track in ticks, from its first presentation time to the
    /// end of its last picture.
    duration_ticks: i64,
}

impl Plan {
    /// Whether the picture presented at `cts` is kept.
    fn wants(&self, cts: i64) -> bool {
        self.wanted.binary_search_by_key(&cts, |w| w.0).is_ok()
    }
}

/// Reads the sample tables once and picks the pictures that ffmpeg's `fps`
/// filter would output at `fps` frames per second.
fn plan_samples(track: &VideoTrack, limits: &Limits, watch: &Watch, fps: u32) -> Result<Plan> {
    let mut times = Vec::with_capacity(track.sample_count().min(1 << 20) as usize);
    let mut end = i64::MIN;
    for (index, sample) in track.samples().enumerate() {
        if index % ENTRIES_PER_CHECK == 0 {
            watch.check()?;
        }
        let sample = sample?;
        if sample.size > MAX_SAMPLE_BYTES {
            return Err(FingerprintError::LimitExceeded(format!(
                "a video frame of {} bytes, more than the {MAX_SAMPLE_BYTES} accepted",
                sample.size
            )));
        }
        times.push(sample.cts);
        end = end.max(sample.cts.saturating_add(i64::from(sample.duration)));
    }
    times.sort_unstable();
    let Some(&first) = times.first() else {
        return Err(FingerprintError::VideoDecode(
            "the video track has no frames".into(),
        ));
    };
    let duration_ticks = end.saturating_sub(first).max(0);
    let timescale = i64::from(track.timescale);
    let seconds = duration_ticks as f64 / timescale as f64;
    if seconds > limits.max_duration_seconds {
        return Err(too_long(seconds, limits));
    }

    // Sampled as ffmpeg's `fps` filter samples (with its default rounding),
    // which iscc-sdk puts before the signature: a picture at t seconds
    // after the first falls into slot round(t * fps), halves rounding up;
    // output k is the last picture whose slot is at most k (so a slot
    // without pictures repeats the one before), and there are
    // round(duration * fps) outputs. Slots are compared in integers:
    // round(x / y) = (2x + y) / (2y) for x >= 0.
    let fps = i64::from(fps);
    let slot = |ticks: i64| (2 * ticks * fps + timescale) / (2 * timescale);
    let outputs = slot(duration_ticks);
    let mut wanted: Vec<(i64, usize)> = Vec::new();
    for k in 0..outputs {
        if k % ENTRIES_PER_CHECK as i64 == 0 {
            watch.check()?;
        }
        // `times[0]` is `first`, in slot 0, so the index is never -1.
        let at = times.partition_point(|&t| slot(t - first) <= k) - 1;
        let picture = times[at];
        match wanted.last_mut() {
            Some((t, count)) if *t == picture => *count += 1,
            _ => wanted.push((picture, 1)),
        }
    }
    Ok(Plan {
        wanted,
        duration_ticks,
    })
}

/// Decoding state between calls.
struct State {
    /// What to keep.
    plan: Plan,
    /// Index in `plan.wanted` of the next picture to keep.
    next_wanted: usize,
    /// Presentation times of pictures fed to the decoder and not yet returned.
    pending: BinaryHeap<Reverse<i64>>,
    /// Signatures so far.
    signatures: Vec<Vec<i8>>,
    /// Largest picture accepted, in pixels.
    max_pixels: u64,
}

impl State {
    /// Takes the next picture out of the decoder (in display order).
    fn output(&mut self, means: BlockMeans) {
        let Some(Reverse(pts)) = self.pending.pop() else {
            return;
        };
        // Instants whose picture the decoder never produced are skipped.
        while self
            .plan
            .wanted
            .get(self.next_wanted)
            .is_some_and(|&(t, _)| t < pts)
        {
            self.next_wanted += 1;
        }
        if let Some(&(t, count)) = self.plan.wanted.get(self.next_wanted)
            && t == pts
        {
            let signature = signature::frame_signature(&means);
            for _ in 1..count {
                self.signatures.push(signature.clone());
            }
            self.signatures.push(signature);
            self.next_wanted += 1;
        }
    }
}

/// Feeds one access unit (Annex B) to the decoder and takes the picture it
/// returns, if any. `Ok(false)` when the decoder found the data corrupt;
/// errors are what must stop decoding (a panic, a picture over the limits).
fn decode_one(decoder: &mut Decoder, annex_b: &[u8], state: &mut State) -> Result<bool> {
    let max_pixels = state.max_pixels;
    let result = catch_unwind(AssertUnwindSafe(|| {
        decoder
            .decode(annex_b)
            .map(|picture| picture.map(|yuv| picture_means(&yuv, max_pixels)))
    }))
    .map_err(|_| decoder_panic())?;
    match result {
        Ok(Some(means)) => {
            state.output(means?);
            Ok(true)
        }
        Ok(None) => Ok(true),
        Err(_) => Ok(false),
    }
}

/// The 32x32 block means of a decoded picture's luma plane.
fn picture_means(yuv: &DecodedYUV<'_>, max_pixels: u64) -> Result<BlockMeans> {
    let (width, height) = yuv.dimensions();
    if (width as u64).saturating_mul(height as u64) > max_pixels {
        return Err(FingerprintError::LimitExceeded(format!(
            "a decoded {width}x{height} picture is larger than the limit of {max_pixels} pixels"
        )));
    }
    let stride = yuv.strides().0;
    Ok(signature::block_means(yuv.y(), width, height, stride))
}
