//! What decoding an upload will cost, estimated from its headers before
//! anything is decoded, so a caller can hold back decodes that would not fit
//! in its memory.

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ::image::{ColorType, ImageFormat, ImageReader};

use crate::audio::{ITEM_SECONDS, decode as audio_decode};
use crate::content::SharedReader;
use crate::error::{FingerprintError, Result};
use crate::image_code;
use crate::jpeg;
use crate::limits::Limits;
use crate::sniff::{MediaKind, Sniffed};
use crate::video::{decode as video_decode, demux};

/// What [`decode_cost`] found in an upload's headers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DecodeCost {
    /// Upper bound of the memory [`content_fingerprint`](crate::content_fingerprint)
    /// holds at its peak for this input, in bytes, beyond the reader it is
    /// given. Computed for a decode that runs to the end of what the headers
    /// declare (a decode stopped by the time bound holds less).
    pub peak_bytes: u64,
    /// Width and height of the picture (an image, or a video's frames), as
    /// the headers declare them.
    pub dimensions: Option<(u32, u32)>,
    /// Duration of the audio or video, in seconds, as the headers declare
    /// it (for a video, the longer of its tracks).
    pub duration_seconds: Option<f64>,
}

impl DecodeCost {
    /// Media with nothing to decode: no fingerprint is computed for it.
    fn nothing() -> Self {
        Self {
            peak_bytes: BASE_BYTES,
            dimensions: None,
            duration_seconds: None,
        }
    }
}

/// Estimates, from the headers alone, the peak memory of
/// [`content_fingerprint`](crate::content_fingerprint) on the same input
/// with the same `limits`, and refuses what those limits would refuse.
///
/// `reader` must be positioned at the start of the media, as for
/// `content_fingerprint`; `sniffed` is what [`sniff`](crate::sniff) said
/// about it. Reads only headers: an image's up to its dimensions and colour
/// type (a JPEG is read whole, as its decoder does; a PNG only to its first
/// chunks), an audio file's container and codec headers, an MP4's box
/// headers and its sample descriptions and sizes. Never decodes a pixel or a
/// sample, and never panics, whatever the bytes: it takes milliseconds, and
/// memory of the order of the headers it reads.
///
/// # Errors
///
/// - [`FingerprintError::LimitExceeded`] when the headers declare more than
///   `limits` allow (pixels, decoded bytes, duration, frames), so
///   `content_fingerprint` would decode nothing of the media either. (A
///   video whose pictures are refused but whose sound track is not gets the
///   cost of its sound track.)
/// - Any other error when the headers cannot be read as the kind of media
///   `sniffed` says: `content_fingerprint` fails on them too, before its
///   decoders allocate anything of size, and records why in `missing`.
///
/// # Calibration
///
/// Estimates against the measured peak: how far the peak resident set of a
/// process rose over one `content_fingerprint` after a warm-up run (glibc
/// set to give blocks of 64 KiB or more their own mappings, so freed memory
/// leaves the resident set at once), with default limits and no time bound,
/// by `cargo run --release -p media-fingerprint --example decode_memory`.
/// The files are the shared test media and synthetic ones the example
/// writes: large images of each colour type and container, one turned by
/// its EXIF orientation, a progressive JPEG (made with `jpegtran`), and
/// hours of FLAC silence. The unit test
/// `estimate_is_an_upper_bound_on_real_files` repeats the measurement on a
/// few shared files.
///
/// Large images are within 15 % above the measured peak (the models count
/// the same buffers the decode makes, plus a margin of one eighth); videos
/// within 60 %; small files sit on the estimate's floor of about 2 MiB (the
/// job's fixed buffers, Chromaprint's state), several times a measured
/// 0.1 to 1.5 MiB but of no weight in a budget counted in MiB. A six-hour
/// audio file's Chromaprint vectors (174,000 items, held up to four times
/// over while the print and its Audio-Code are made) add about 2.7 MiB.
///
/// A video whose in-band parameter sets switch to larger pictures than its
/// `avcC` box declares can need more than estimated for its pictures, up
/// to `limits.max_decoded_bytes`, which the decode enforces per parameter
/// set.
///
/// | file | measured peak | estimate | estimate / measured |
/// | --- | ---: | ---: | ---: |
/// | astronaut.png | 0.8 MiB | 2.6 MiB | 3.26 |
/// | camera.png | 0.3 MiB | 2.0 MiB | 7.82 |
/// | chelsea.png | 0.6 MiB | 2.2 MiB | 3.50 |
/// | coffee.bmp | 0.5 MiB | 2.5 MiB | 4.73 |
/// | coffee.gif | 1.4 MiB | 3.5 MiB | 2.50 |
/// | coffee.png | 0.8 MiB | 2.5 MiB | 3.01 |
/// | coffee.tiff | 1.3 MiB | 3.0 MiB | 2.28 |
/// | coffee.webp | 0.8 MiB | 3.3 MiB | 4.12 |
/// | fallen_leaf_2560x1600.jpg | 13.0 MiB | 15.6 MiB | 1.20 |
/// | fallen_leaf_thumbnail.jpg | 0.1 MiB | 1.8 MiB | 21.12 |
/// | flower.jpg | 10.7 MiB | 13.9 MiB | 1.30 |
/// | motorcycle_left.png | 1.0 MiB | 2.9 MiB | 2.87 |
/// | motorcycle_right.png | 1.1 MiB | 2.9 MiB | 2.57 |
/// | path_2560x1600.jpg | 12.6 MiB | 16.0 MiB | 1.26 |
/// | path_thumbnail.jpg | 0.2 MiB | 1.8 MiB | 7.33 |
/// | rocket.jpg | 0.7 MiB | 2.5 MiB | 3.61 |
/// | elvish-theme.ogg | 1.1 MiB | 3.7 MiB | 3.47 |
/// | house_lo.mp3 | 0.8 MiB | 3.0 MiB | 3.76 |
/// | house_lo.ogg | 1.3 MiB | 3.0 MiB | 2.25 |
/// | house_lo.wav | 0.9 MiB | 2.3 MiB | 2.59 |
/// | love_theme.m4a | 0.7 MiB | 3.7 MiB | 5.45 |
/// | love_theme.mp3 | 0.6 MiB | 3.7 MiB | 6.39 |
/// | love_theme.ogg | 1.1 MiB | 3.7 MiB | 3.47 |
/// | love_theme_30s_to_50s.flac | 0.7 MiB | 2.4 MiB | 3.24 |
/// | love_theme_30s_to_50s.wav | 0.6 MiB | 2.3 MiB | 3.97 |
/// | loyalists.ogg | 1.3 MiB | 3.7 MiB | 2.80 |
/// | speech_front_center.wav | 0.7 MiB | 2.3 MiB | 3.33 |
/// | clip_a_360p_reencoded.mp4 | 7.9 MiB | 12.3 MiB | 1.56 |
/// | clip_a_720p_baseline.mp4 | 17.4 MiB | 27.5 MiB | 1.58 |
/// | clip_a_720p_high.mp4 | 21.4 MiB | 30.0 MiB | 1.40 |
/// | clip_a_excerpt_6s_to_16s.mp4 | 21.4 MiB | 29.9 MiB | 1.40 |
/// | clip_b_720p_high.mp4 | 21.2 MiB | 30.0 MiB | 1.41 |
/// | rgba8_10000x10000.png | 667.5 MiB | 753.3 MiB | 1.13 |
/// | rgb8_8000x6000.png | 137.5 MiB | 156.9 MiB | 1.14 |
/// | rgb8_8000x6000_rotated.png | 274.3 MiB | 310.9 MiB | 1.13 |
/// | l8_10000x8000.png | 76.6 MiB | 88.3 MiB | 1.15 |
/// | la8_8000x6000.png | 137.2 MiB | 156.5 MiB | 1.14 |
/// | rgb16_5000x4000.png | 171.4 MiB | 194.9 MiB | 1.14 |
/// | rgba16_5000x4000.png | 228.6 MiB | 259.3 MiB | 1.13 |
/// | rgb8_4000x3000.tiff | 68.6 MiB | 78.9 MiB | 1.15 |
/// | rgb8_4000x3000.webp | 79.8 MiB | 100.1 MiB | 1.26 |
/// | rgb8_4000x3000.bmp | 34.2 MiB | 40.7 MiB | 1.19 |
/// | rgb8_2000x1500.gif | 19.7 MiB | 27.3 MiB | 1.38 |
/// | rgb8_8000x6000.jpg | 141.5 MiB | 160.1 MiB | 1.13 |
/// | silence_1h_8k_mono.flac | 1.7 MiB | 2.8 MiB | 1.63 |
/// | silence_3h_44k_stereo.flac | 1.5 MiB | 3.8 MiB | 2.52 |
/// | silence_6h_48k_stereo.flac | 3.2 MiB | 5.3 MiB | 1.68 |
/// | silence_20min_48k_8ch.flac | 0.6 MiB | 2.8 MiB | 4.54 |
/// | rgb8_8000x6000_progressive.jpg | 414.1 MiB | 468.1 MiB | 1.13 |
pub fn decode_cost<R: BufRead + Seek + Send + Sync + 'static>(
    reader: R,
    sniffed: &Sniffed,
    limits: &Limits,
) -> Result<DecodeCost> {
    // The parsers below are third-party code reading untrusted bytes, as in
    // `content_fingerprint`; a panic in one is that file's error.
    let mut cost = catch_unwind(AssertUnwindSafe(|| match sniffed.kind {
        MediaKind::Image => image_cost(reader, limits),
        MediaKind::Audio => audio_cost(reader, limits),
        MediaKind::Video => video_cost(reader, limits),
        MediaKind::Other => Ok(DecodeCost::nothing()),
    }))
    .map_err(|panic| {
        FingerprintError::DecoderPanic(crate::error::panic_message(panic.as_ref()))
    })??;
    // The models count the large buffers exactly and measure within a few
    // percent of the largest images; the margin covers what they leave out
    // (allocator rounding, decoders' small buffers, code paths the
    // calibration files did not take).
    cost.peak_bytes = cost.peak_bytes.saturating_add(cost.peak_bytes / MARGIN);
    Ok(cost)
}

/// The margin added to every estimate: one eighth.
const MARGIN: u64 = 8;

/// Memory every fingerprint job holds whatever the media: the reader's and
/// decoders' small buffers, the result. The smallest files measure 0.1 to
/// 0.6 MiB.
const BASE_BYTES: u64 = 1 << 20;

/// The cost of decoding and normalising an image: the largest of the
/// buffers alive at once, in the order the decode makes them (see
/// `normalize::normalize_with_crops`).
fn image_cost<R: BufRead + Seek>(mut reader: R, limits: &Limits) -> Result<DecodeCost> {
    let start = reader.stream_position().map_err(FingerprintError::Io)?;
    let file_len = reader
        .seek(SeekFrom::End(0))
        .and_then(|end| reader.seek(SeekFrom::Start(start)).map(|_| end))
        .map_err(FingerprintError::Io)?
        .saturating_sub(start);
    let format = ImageReader::new(&mut reader)
        .with_guessed_format()
        .map_err(FingerprintError::Io)?
        .format();
    let frame = if format == Some(ImageFormat::Jpeg) {
        let frame = jpeg::frame_header(&mut reader).map_err(FingerprintError::Io)?;
        reader
            .seek(SeekFrom::Start(start))
            .map_err(FingerprintError::Io)?;
        frame
    } else {
        None
    };
    // The same opening as the decode's, limits included, so the two refuse
    // the same files; only the JPEG completeness scan is left out, which
    // needs the whole file and changes nothing of the cost.
    let mut decoder = image_code::open_decoder(reader, limits, false)?;
    let (width, height) = decoder.dimensions();
    let colour = decoder.color_type();
    let decoded = decoder.total_bytes();
    let rotates = decoder.orientation().map_or(true, |o| {
        !matches!(
            o,
            ::image::metadata::Orientation::NoTransforms
                | ::image::metadata::Orientation::Rotate180
                | ::image::metadata::Orientation::FlipHorizontal
                | ::image::metadata::Orientation::FlipVertical
        )
    });
    let shape = ImageShape {
        width: u64::from(width),
        height: u64::from(height),
        colour,
        decoded,
        format,
        file_len,
        frame,
        rotates,
    };
    Ok(DecodeCost {
        peak_bytes: shape.peak_bytes(),
        dimensions: Some((width, height)),
        duration_seconds: None,
    })
}

/// What an image's header says about the buffers its decode makes.
#[derive(Debug, Clone, Copy)]
struct ImageShape {
    width: u64,
    height: u64,
    colour: ColorType,
    /// Bytes of the decoder's output buffer.
    decoded: u64,
    format: Option<ImageFormat>,
    file_len: u64,
    frame: Option<jpeg::Frame>,
    /// Whether the EXIF orientation turns the image by a quarter, which
    /// copies it (flips and half turns work in place).
    rotates: bool,
}

impl ImageShape {
    /// The largest set of buffers alive at once, and the small ones beside.
    fn peak_bytes(&self) -> u64 {
        let pixels = self.width.saturating_mul(self.height);
        // Samples per pixel of the 8-bit form `fill_transparency` converts
        // to, and of the opaque image it makes of that (gray stays gray).
        let (channels_8bit, opaque) = match self.colour {
            ColorType::L8 | ColorType::L16 => (1, 1),
            ColorType::La8 | ColorType::La16 => (2, 1),
            ColorType::Rgb8 | ColorType::Rgb16 | ColorType::Rgb32F => (3, 3),
            _ => (4, 3),
        };
        let is_8bit = matches!(
            self.colour,
            ColorType::L8 | ColorType::La8 | ColorType::Rgb8 | ColorType::Rgba8
        );
        // Decoding: the output buffer and what the decoder keeps besides.
        let decoding = self.decoded.saturating_add(self.decoder_extra(pixels));
        // Converting to 8 bits copies while the decoded image is alive;
        // compositing alpha onto white makes the opaque copy while the
        // 8-bit one is alive.
        let converting = if is_8bit {
            self.decoded
        } else {
            self.decoded.saturating_add(pixels * channels_8bit)
        };
        let compositing = if self.colour.has_alpha() {
            pixels * (channels_8bit + opaque)
        } else {
            0
        };
        let rotating = if self.rotates { 2 * pixels * opaque } else { 0 };
        // The fused luma and resize keep 32 samples of every row and a
        // box-reduced copy of at most 256x256; the crops are 256x256 at most.
        let reducing = 64 * self.height + 16 * self.width + (256 << 10);
        decoding
            .max(converting)
            .max(compositing)
            .max(rotating)
            .saturating_add(reducing)
            .saturating_add(BASE_BYTES)
    }

    /// What the format's decoder holds besides its output, at most.
    fn decoder_extra(&self, pixels: u64) -> u64 {
        let row = self.decoded / self.height.max(1);
        match self.format {
            // zune-jpeg reads the whole file into memory; a progressive
            // JPEG keeps every 16-bit coefficient (padded to whole 16x16
            // blocks) until its last scan.
            Some(ImageFormat::Jpeg) => {
                let coefficients = match self.frame {
                    Some(frame) if frame.progressive => {
                        let padded = self.width.div_ceil(16) * 16 * (self.height.div_ceil(16) * 16);
                        padded * 2 * u64::from(frame.samples_per_pixel_eighths) / 8
                    }
                    Some(_) => 0,
                    // A frame header that did not read: assume the worst,
                    // progressive 4:4:4 with four components.
                    None => pixels * 8,
                };
                self.file_len + coefficients + 32 * row
            }
            // Lossy frames are decoded to YUV planes first, lossless ones to
            // 32-bit ARGB; the frame's bytes are read into memory.
            Some(ImageFormat::WebP) => self.file_len + pixels * 4,
            // A first frame smaller than the canvas is decoded apart and
            // composed onto it.
            Some(ImageFormat::Gif) => pixels * 4,
            // One strip or tile at a time, but a single-strip file's strip
            // is the whole image.
            Some(ImageFormat::Tiff) => self.decoded,
            // Row buffers and the inflater's window.
            _ => 8 * row + (256 << 10),
        }
    }
}

/// The cost of decoding an audio file: the container's and codec's buffers,
/// Chromaprint's state, and the fingerprint vectors, which grow with the
/// duration.
fn audio_cost<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
) -> Result<DecodeCost> {
    // symphonia takes a reader it owns; the probe below needs it back.
    let mut reader = SharedReader::new(reader);
    let start = reader.stream_position().map_err(FingerprintError::Io)?;
    let opened = audio_decode::open(reader.clone(), limits)?;
    let short_name = opened.format.format_info().short_name;
    let sound = SoundShape {
        channels: opened.channels as u64,
        frames_per_packet: opened.max_frames_per_packet,
        seconds: opened
            .declared_seconds
            .unwrap_or(limits.max_duration_seconds),
    };
    drop(opened);
    // symphonia holds an MP4's whole movie header, parsed.
    let moov_len = if short_name == "isomp4" {
        reader
            .seek(SeekFrom::Start(start))
            .map_err(FingerprintError::Io)?;
        demux::probe_header(&mut reader).map_or(0, |probe| probe.moov_len)
    } else {
        0
    };
    Ok(DecodeCost {
        peak_bytes: sound.peak_bytes() + 3 * moov_len + BASE_BYTES,
        dimensions: None,
        duration_seconds: Some(sound.seconds),
    })
}

/// What a sound track's headers say about the buffers its decode makes.
#[derive(Debug, Clone, Copy)]
struct SoundShape {
    channels: u64,
    /// The most frames one packet decodes to, if the codec says.
    frames_per_packet: Option<u64>,
    /// Declared duration, or the longest the limits allow.
    seconds: f64,
}

/// Frames per packet assumed when the codec does not say: FLAC's largest
/// block.
const MAX_FRAMES_PER_PACKET: u64 = 65_536;

/// Memory of Chromaprint's fixed state (its 32768-sample input buffer as
/// 16-bit and 64-bit samples, the resampler, FFT and filter image) and
/// symphonia's 64 KiB read buffer.
const CHROMAPRINT_BYTES: u64 = 1 << 20;

impl SoundShape {
    /// The codec's, Chromaprint's and the prints' buffers together.
    fn peak_bytes(&self) -> u64 {
        let frames = self
            .frames_per_packet
            .unwrap_or(MAX_FRAMES_PER_PACKET)
            .min(MAX_FRAMES_PER_PACKET);
        // The codec's planar buffer of 32-bit samples, the decoded packet,
        // and its interleaved 16-bit copy.
        let packet = self.channels * frames * (4 + 4 + 2);
        // Chromaprint items, 4 bytes each: the fingerprinter's vector (up to
        // twice its length while it grows), the copy kept in the print, and
        // the signed copy the Audio-Code is computed from.
        let seconds = if self.seconds.is_finite() {
            self.seconds.max(0.0)
        } else {
            0.0
        };
        let items = (seconds / ITEM_SECONDS) as u64 + 1;
        let prints = 4 * items * 4;
        CHROMAPRINT_BYTES + packet + prints
    }
}

/// The cost of a video: its pictures' decode, then its sound track's while
/// the pictures' print is kept.
fn video_cost<R: Read + Seek + Send + Sync + 'static>(
    reader: R,
    limits: &Limits,
) -> Result<DecodeCost> {
    let mut reader = SharedReader::new(reader);
    let start = reader.stream_position().map_err(FingerprintError::Io)?;
    let probe = demux::probe_header(&mut reader)?;
    let moov = probe.moov_len;
    let pictures = match &probe.video {
        Some(video) => video_decode::header_cost(video, limits),
        None => Err(FingerprintError::VideoDecode("no H.264 video track".into())),
    };
    // The sound track is read by symphonia from the start, as the decode
    // does; it parses the whole movie header again.
    reader
        .seek(SeekFrom::Start(start))
        .map_err(FingerprintError::Io)?;
    let sound = audio_decode::open(reader, limits).map(|opened| SoundShape {
        channels: opened.channels as u64,
        frames_per_packet: opened.max_frames_per_packet,
        seconds: opened
            .declared_seconds
            .unwrap_or(limits.max_duration_seconds),
    });
    let (picture_peak, print_bytes) = match &pictures {
        Ok(cost) => (cost.peak_bytes, cost.print_bytes),
        Err(_) => (0, 0),
    };
    // Reading the video track holds the movie header, the `mp4` crate's
    // parse of its track and our copy of the sample tables at once.
    let demuxing = 5 * moov;
    let sound_peak = match &sound {
        Ok(shape) => shape.peak_bytes(),
        Err(_) => 0,
    };
    let peak = demuxing
        .max(picture_peak + 2 * moov)
        .max(print_bytes + 3 * moov + sound_peak)
        + BASE_BYTES;
    let duration_seconds = [
        probe
            .video
            .as_ref()
            .filter(|v| v.timescale > 0)
            .map(|v| v.duration as f64 / f64::from(v.timescale)),
        sound.as_ref().ok().map(|s| s.seconds),
    ]
    .into_iter()
    .flatten()
    .reduce(f64::max);
    let dimensions = match &pictures {
        Ok(cost) => Some(cost.dimensions),
        Err(_) => probe
            .video
            .as_ref()
            .map(|v| (u32::from(v.width), u32::from(v.height))),
    };
    match (pictures, sound) {
        // Neither track would be decoded: say why, a refusal by the limits
        // first.
        (Err(pictures), Err(sound)) => Err(match (pictures, sound) {
            (limit @ FingerprintError::LimitExceeded(_), _) => limit,
            (_, limit @ FingerprintError::LimitExceeded(_)) => limit,
            (pictures, _) => pictures,
        }),
        _ => Ok(DecodeCost {
            peak_bytes: peak,
            dimensions,
            duration_seconds,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};
    use std::process::Command;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::sniff::sniff;
    use crate::test_support::{big_png, flac_silence, noise, shared_path};

    /// A reader that counts the bytes handed out of it.
    struct Counting<R> {
        inner: R,
        read: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read
                .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(n)
        }
    }

    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    /// The cost of `bytes`, sniffed as the service sniffs them.
    fn cost_of(bytes: Vec<u8>, limits: &Limits) -> Result<DecodeCost> {
        let sniffed = sniff(&bytes[..bytes.len().min(crate::SNIFF_LEN)], None);
        decode_cost(Cursor::new(bytes), &sniffed, limits)
    }

    /// The 10000x10000 PNG bomb (2 MB as the `image` crate writes it) is
    /// priced from its header alone: more than
    /// its 400 MB of pixels (the decoded image and its opaque copy are alive
    /// at once), within milliseconds, reading a few kilobytes of it.
    #[test]
    fn png_bomb_is_priced_from_its_header() {
        let png = big_png();
        assert!(png.len() < 4_000_000, "{} bytes", png.len());
        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let reader = BufReader::with_capacity(
            4096,
            Counting {
                inner: Cursor::new(png),
                read: std::sync::Arc::clone(&read),
            },
        );
        let sniffed = sniff(&png[..crate::SNIFF_LEN], None);
        let started = Instant::now();
        let cost = decode_cost(reader, &sniffed, &Limits::default()).expect("within limits");
        let took = started.elapsed();
        assert!(cost.peak_bytes >= 700_000_000, "{cost:?}");
        assert!(cost.peak_bytes <= 1_000_000_000, "{cost:?}");
        assert_eq!(cost.dimensions, Some((10_000, 10_000)));
        assert!(took < Duration::from_secs(1), "{took:?}");
        let read = read.load(std::sync::atomic::Ordering::Relaxed);
        assert!(read <= 64 * 1024, "read {read} bytes of {}", png.len());
    }

    /// What the limits refuse from the header, the estimate refuses too:
    /// too many pixels, too many decoded bytes, audio declared too long.
    #[test]
    fn limits_are_enforced_from_headers() {
        let small = Limits {
            max_pixels: 10_000_000,
            ..Limits::default()
        };
        let result = cost_of(big_png().to_vec(), &small);
        assert!(
            matches!(result, Err(FingerprintError::LimitExceeded(_))),
            "{result:?}"
        );
        let few_bytes = Limits {
            max_decoded_bytes: 100_000_000,
            ..Limits::default()
        };
        let result = cost_of(big_png().to_vec(), &few_bytes);
        assert!(
            matches!(result, Err(FingerprintError::LimitExceeded(_))),
            "{result:?}"
        );
        let hour = flac_silence(8000, 1, 8000 * 3600);
        let short = Limits {
            max_duration_seconds: 600.0,
            ..Limits::default()
        };
        let result = cost_of(hour.clone(), &short);
        assert!(
            matches!(result, Err(FingerprintError::LimitExceeded(_))),
            "{result:?}"
        );
        let cost = cost_of(hour, &Limits::default()).expect("an hour is allowed");
        assert_eq!(cost.duration_seconds, Some(3600.0));
    }

    /// A video whose pictures the limits refuse is priced as its sound
    /// track alone, which is still decoded; when the sound track is refused
    /// too, the whole video is.
    #[test]
    fn video_refused_in_part_or_whole() {
        let clip = std::fs::read(shared_path("media/video/clip_a_720p_high.mp4")).expect("read");
        let whole = cost_of(clip.clone(), &Limits::default()).expect("allowed");
        assert_eq!(whole.dimensions, Some((1280, 720)));
        let few_pixels = Limits {
            max_pixels: 640 * 360,
            ..Limits::default()
        };
        let sound_only = cost_of(clip.clone(), &few_pixels).expect("the sound track is allowed");
        assert!(
            sound_only.peak_bytes < whole.peak_bytes / 2,
            "{sound_only:?} {whole:?}"
        );
        let short = Limits {
            max_duration_seconds: 5.0,
            ..Limits::default()
        };
        let result = cost_of(clip, &short);
        assert!(
            matches!(result, Err(FingerprintError::LimitExceeded(_))),
            "{result:?}"
        );
    }

    /// Garbage, and every prefix of real headers, gives an error or a
    /// small bound, never a panic (not even one caught inside).
    #[test]
    fn garbage_and_truncated_headers_never_panic() {
        let mut next = noise(7);
        let garbage: Vec<u8> = (0..65_536).map(|_| next()).collect();
        for kind in [
            MediaKind::Image,
            MediaKind::Audio,
            MediaKind::Video,
            MediaKind::Other,
        ] {
            let sniffed = Sniffed {
                kind,
                media_type: None,
            };
            for len in [0, 1, 8, 100, 4096, garbage.len()] {
                let result = decode_cost(
                    Cursor::new(garbage[..len].to_vec()),
                    &sniffed,
                    &Limits::default(),
                );
                check_no_panic(&result, &format!("{kind:?} garbage of {len}"));
            }
        }
        for file in [
            "images/coffee.png",
            "images/rocket.jpg",
            "images/coffee.webp",
            "images/coffee.tiff",
            "images/coffee.gif",
            "audio/house_lo.mp3",
            "audio/house_lo.ogg",
            "audio/love_theme_30s_to_50s.flac",
            "audio/love_theme.m4a",
            "video/clip_a_360p_reencoded.mp4",
        ] {
            let bytes = std::fs::read(shared_path("media").join(file)).expect("read");
            let sniffed = sniff(&bytes[..crate::SNIFF_LEN], None);
            let mut cuts: Vec<usize> = (0..4096.min(bytes.len())).step_by(37).collect();
            cuts.extend((0..bytes.len()).step_by(bytes.len() / 16 + 1));
            for cut in cuts {
                let result = decode_cost(
                    Cursor::new(bytes[..cut].to_vec()),
                    &sniffed,
                    &Limits::default(),
                );
                check_no_panic(&result, &format!("{file} cut at {cut}"));
            }
            for position in (0..bytes.len().min(4096)).step_by(53) {
                let mut damaged = bytes.clone();
                damaged[position] ^= 0x5a;
                let result = decode_cost(Cursor::new(damaged), &sniffed, &Limits::default());
                check_no_panic(&result, &format!("{file} damaged at {position}"));
            }
        }
    }

    /// Fails the test on a panic caught inside `decode_cost` or an
    /// absurd bound.
    fn check_no_panic(result: &Result<DecodeCost>, what: &str) {
        match result {
            Err(FingerprintError::DecoderPanic(message)) => panic!("{what}: panicked: {message}"),
            // Damaged headers may claim anything up to the limits.
            Ok(cost) => assert!(cost.peak_bytes < 2 << 30, "{what}: {cost:?}"),
            Err(_) => {}
        }
    }

    /// Files the upper-bound test measures: every kind and several formats,
    /// small enough for a debug build.
    const MEASURED: [&str; 8] = [
        "images/coffee.png",
        "images/flower.jpg",
        "images/path_2560x1600.jpg",
        "images/coffee.webp",
        "audio/love_theme_30s_to_50s.flac",
        "audio/house_lo.mp3",
        "audio/love_theme.m4a",
        "video/clip_a_360p_reencoded.mp4",
    ];

    /// On real files, the estimate is at least the peak memory measured
    /// (and not far above it): each is measured in a process of its own, this
    /// test binary running [`measure_peak_in_this_process`] alone.
    #[test]
    fn estimate_is_an_upper_bound_on_real_files() {
        let Ok(me) = std::env::current_exe() else {
            panic!("cannot find the test binary");
        };
        for file in MEASURED {
            let output = Command::new(&me)
                .args([
                    "--exact",
                    "cost::tests::measure_peak_in_this_process",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("MEASURE_FILE", file)
                .env("MALLOC_MMAP_THRESHOLD_", "65536")
                .env("MALLOC_ARENA_MAX", "1")
                .output()
                .expect("run the measuring test");
            let stdout = String::from_utf8_lossy(&output.stdout);
            let line = stdout
                .lines()
                .find_map(|line| line.split("peak:").nth(1))
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: no measurement: {stdout} {}",
                        String::from_utf8_lossy(&output.stderr)
                    )
                });
            let mut fields = line
                .split_whitespace()
                .map(|f| f.parse::<u64>().expect("number"));
            let (measured, estimate) = (
                fields.next().expect("peak"),
                fields.next().expect("estimate"),
            );
            eprintln!("{file}: measured {measured}, estimate {estimate}");
            assert!(
                estimate >= measured,
                "{file}: estimate {estimate} < measured {measured}"
            );
            // Within twice the peak, plus the estimate's fixed floor for
            // small files.
            assert!(
                estimate <= 2 * measured + (4 << 20),
                "{file}: estimate {estimate} far above measured {measured}"
            );
        }
    }

    /// Run by [`estimate_is_an_upper_bound_on_real_files`] in a process of
    /// its own: fingerprints `MEASURE_FILE` once to warm up, then again with
    /// the peak resident set reset, and prints the growth and the estimate.
    #[test]
    #[ignore = "run by estimate_is_an_upper_bound_on_real_files"]
    fn measure_peak_in_this_process() {
        let file = std::env::var("MEASURE_FILE").expect("MEASURE_FILE");
        let bytes = std::fs::read(shared_path("media").join(&file)).expect("read");
        let sniffed = sniff(&bytes[..crate::SNIFF_LEN], None);
        let limits = Limits {
            max_decode_time: None,
            ..Limits::default()
        };
        let estimate = decode_cost(Cursor::new(bytes.clone()), &sniffed, &limits)
            .expect("estimate")
            .peak_bytes;
        let run = || {
            let print = crate::content_fingerprint(Cursor::new(bytes.clone()), &sniffed, &limits)
                .expect("not stopped");
            assert!(print.missing.is_empty(), "{file}: {:?}", print.missing);
        };
        run();
        std::fs::write("/proc/self/clear_refs", "5").expect("reset the peak resident set");
        let before = status_kib("VmRSS:");
        // The input's copy is made before the peak is reset in a real
        // service too: it is the reader, not the decode.
        run();
        let peak = status_kib("VmHWM:");
        let input = bytes.len() as u64;
        println!(
            "peak: {} {estimate}",
            (peak.saturating_sub(before) * 1024).saturating_sub(input)
        );
    }

    /// A `/proc/self/status` field in KiB.
    fn status_kib(field: &str) -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .expect("read status")
            .lines()
            .find(|line| line.starts_with(field))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kib| kib.parse().ok())
            .expect("field")
    }
}
