//! Streaming decode of an audio track with symphonia, within [`Limits`].
//!
//! Packets are decoded one at a time and handed to an [`AudioSink`]; the
//! decoded signal is never held as a whole.

use std::io::{self, Read, Seek, SeekFrom};

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, Track, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::{FingerprintError, Result};
use crate::limits::{Limits, Watch};

/// Lowest sample rate accepted. Telephone audio (8 kHz) is real; below 4 kHz
/// there is hardly any of the 28 Hz to 3.5 kHz band Chromaprint looks at.
const MIN_SAMPLE_RATE: u32 = 4_000;

/// Highest sample rate accepted: the highest rate studio formats use.
const MAX_SAMPLE_RATE: u32 = 768_000;

/// Most channels accepted: enough for 22.2 surround and third-order
/// ambisonics, far below anything that would make a packet's buffer large.
const MAX_CHANNELS: usize = 32;

/// Undecodable packets in a row after which the rest of the stream is taken
/// to be garbage. Single bad packets are skipped, as ffmpeg does.
const MAX_BAD_PACKETS_IN_A_ROW: u32 = 64;

/// Most frames handed to the sink at once. A FLAC packet may hold 65535
/// frames of 32 channels; fed in pieces of this size (1/4 s at 32 kHz), the
/// fingerprinter's resampling and transforms between two looks at the clock
/// stay in the low milliseconds whatever the packet size.
const MAX_FRAMES_PER_FEED: usize = 8192;

/// Where decoded audio goes, one packet at a time.
pub(super) trait AudioSink {
    /// Called once, before any samples, with the stream's format.
    fn start(&mut self, sample_rate: u32, channels: usize) -> Result<()>;
    /// Interleaved 16-bit samples of whole frames.
    fn consume(&mut self, interleaved: &[i16]);
}

/// What was decoded.
#[derive(Debug, Clone, Copy)]
pub(super) struct Decoded {
    /// Sample rate of the track, in Hz.
    pub(super) sample_rate: u32,
    /// Audio frames (samples per channel) handed to the sink.
    pub(super) frames: u64,
}

impl Decoded {
    /// Decoded duration in seconds.
    pub(super) fn seconds(&self) -> f64 {
        self.frames as f64 / f64::from(self.sample_rate)
    }
}

/// Decodes the first decodable audio track of `reader` (an audio file, or the
/// sound track of a video) into `sink`.
///
/// Refuses a track whose header declares more than
/// `limits.max_duration_seconds`, and stops with
/// [`FingerprintError::LimitExceeded`] as soon as decoding passes it. A stream
/// that is cut short or turns to garbage ends where it stops making sense: the
/// sink has what was decoded until then. Stops when `watch` says so, between
/// packets and between pieces of a packet fed to the sink.
pub(super) fn decode<R, S>(
    reader: R,
    limits: &Limits,
    watch: &Watch,
    sink: &mut S,
) -> Result<Decoded>
where
    R: Read + Seek + Send + Sync + 'static,
    S: AudioSink,
{
    let Opened {
        mut format,
        track_id,
        mut decoder,
        sample_rate,
        channels,
        ..
    } = open(reader, limits)?;
    sink.start(sample_rate, channels)?;

    // `as` saturates, so an infinite or huge limit means "no limit".
    let max_frames = (limits.max_duration_seconds * f64::from(sample_rate)).floor() as u64;
    let mut frames: u64 = 0;
    let mut samples: Vec<i16> = Vec::new();
    let mut bad_in_a_row = 0u32;
    let mut last_error: Option<String> = None;
    loop {
        // Also between packets of other tracks: a video's sound track may be
        // a few packets among millions of pictures.
        watch.check()?;
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            // A chained Ogg stream goes on with another piece; the first
            // is the one fingerprinted.
            Err(SymphoniaError::ResetRequired) => break,
            // Cut short, or the container turns to garbage: keep what decoded.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::DecodeError(msg)) => {
                last_error = Some(msg.to_owned());
                break;
            }
            Err(e) => return Err(from_symphonia("reading the container failed", e)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let buffer = match decoder.decode(&packet) {
            Ok(buffer) => buffer,
            Err(SymphoniaError::DecodeError(msg)) => {
                last_error = Some(msg.to_owned());
                bad_in_a_row += 1;
                if bad_in_a_row > MAX_BAD_PACKETS_IN_A_ROW {
                    break;
                }
                continue;
            }
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                last_error = Some(e.to_string());
                bad_in_a_row += 1;
                if bad_in_a_row > MAX_BAD_PACKETS_IN_A_ROW {
                    break;
                }
                continue;
            }
            Err(e) => return Err(from_symphonia("decoding failed", e)),
        };
        bad_in_a_row = 0;
        let spec = buffer.spec();
        if spec.rate() != sample_rate || spec.channels().count() != channels {
            // The fingerprinter cannot change format mid-stream; what came
            // before the change is fingerprinted, like a stream cut short.
            break;
        }
        frames += buffer.frames() as u64;
        if frames > max_frames {
            return Err(FingerprintError::LimitExceeded(format!(
                "the audio runs past the limit of {} s",
                limits.max_duration_seconds
            )));
        }
        buffer.copy_to_vec_interleaved(&mut samples);
        for piece in samples.chunks(MAX_FRAMES_PER_FEED * channels) {
            watch.check()?;
            sink.consume(piece);
        }
    }
    if frames == 0 {
        return Err(FingerprintError::AudioDecode(match last_error {
            Some(error) => format!("no audio could be decoded: {error}"),
            None => "the audio track is empty".to_owned(),
        }));
    }
    Ok(Decoded {
        sample_rate,
        frames,
    })
}

/// An audio track ready to decode: everything its headers say, and nothing
/// decoded yet.
pub(crate) struct Opened {
    /// The container, positioned before its first packet.
    pub(crate) format: Box<dyn FormatReader>,
    /// The track to decode.
    pub(crate) track_id: u32,
    /// Its decoder.
    pub(crate) decoder: Box<dyn AudioDecoder>,
    /// Its sample rate, in Hz (checked to be in range).
    pub(crate) sample_rate: u32,
    /// Its channel count (checked to be in range).
    pub(crate) channels: usize,
    /// The duration its header declares, in seconds, if it declares one.
    pub(crate) declared_seconds: Option<f64>,
    /// The most frames one packet of it decodes to, if the codec says.
    pub(crate) max_frames_per_packet: Option<u64>,
}

/// Probes the container in `reader` and opens the track [`decode`] decodes,
/// refusing by `limits` what its header declares. Reads only headers (for
/// MP4, the whole `moov` box, which symphonia parses).
pub(crate) fn open<R>(reader: R, limits: &Limits) -> Result<Opened>
where
    R: Read + Seek + Send + Sync + 'static,
{
    let source = Source::new(reader).map_err(FingerprintError::Io)?;
    let stream = MediaSourceStream::new(Box::new(source), Default::default());
    let format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            stream,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| from_symphonia("the container is not recognised", e))?;

    let (track_id, decoder) = open_track(format.as_ref(), limits)?;
    let params = decoder.codec_params();
    let sample_rate = params.sample_rate.unwrap_or(0);
    let channels = params.channels.as_ref().map_or(0, |c| c.count());
    let max_frames_per_packet = params.max_frames_per_packet;
    check_format(sample_rate, channels)?;
    let declared_seconds = format
        .tracks()
        .iter()
        .find(|t| t.id == track_id)
        .and_then(|track| declared_seconds(track, Some(sample_rate)));
    Ok(Opened {
        format,
        track_id,
        decoder,
        sample_rate,
        channels,
        declared_seconds,
        max_frames_per_packet,
    })
}

/// Picks the first audio track a decoder can be made for (the one marked
/// default first), after checking its declared duration against `limits`.
fn open_track(format: &dyn FormatReader, limits: &Limits) -> Result<(u32, Box<dyn AudioDecoder>)> {
    let mut tracks: Vec<&Track> = format
        .tracks()
        .iter()
        .filter(|t| t.codec_params.as_ref().is_some_and(|p| p.is_audio()))
        .collect();
    if let Some(default) = format.default_track(TrackType::Audio) {
        tracks.retain(|t| t.id != default.id);
        tracks.insert(0, default);
    }
    let mut last_error = None;
    for track in tracks {
        let Some(params) = track.codec_params.as_ref().and_then(|p| p.audio()) else {
            continue;
        };
        if let Some(seconds) = declared_seconds(track, params.sample_rate)
            && seconds > limits.max_duration_seconds
        {
            return Err(FingerprintError::LimitExceeded(format!(
                "the audio declares {seconds:.0} s, more than the limit of {} s",
                limits.max_duration_seconds
            )));
        }
        match symphonia::default::get_codecs()
            .make_audio_decoder(params, &AudioDecoderOptions::default())
        {
            Ok(decoder) => return Ok((track.id, decoder)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(match last_error {
        Some(e) => from_symphonia("the audio codec is not supported", e),
        None => FingerprintError::AudioDecode("the file has no audio track".to_owned()),
    })
}

/// The duration a track's header declares, in seconds, if it declares one.
fn declared_seconds(track: &Track, sample_rate: Option<u32>) -> Option<f64> {
    if let (Some(frames), Some(rate)) = (track.num_frames, sample_rate)
        && rate > 0
    {
        return Some(frames as f64 / f64::from(rate));
    }
    let (duration, time_base) = (track.duration?, track.time_base?);
    Some(
        duration.get() as f64 * f64::from(time_base.numer.get()) / f64::from(time_base.denom.get()),
    )
}

/// Refuses formats outside what we fingerprint.
fn check_format(sample_rate: u32, channels: usize) -> Result<()> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(FingerprintError::AudioDecode(format!(
            "sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz"
        )));
    }
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(FingerprintError::AudioDecode(format!(
            "{channels} channels is outside the supported 1 to {MAX_CHANNELS}"
        )));
    }
    Ok(())
}

/// Our error for a symphonia error met while doing `what`.
fn from_symphonia(what: &str, error: SymphoniaError) -> FingerprintError {
    match error {
        SymphoniaError::LimitError(limit) => {
            FingerprintError::LimitExceeded(format!("{what}: the decoder's limit on {limit}"))
        }
        SymphoniaError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            FingerprintError::Io(e)
        }
        SymphoniaError::IoError(_) => {
            FingerprintError::AudioDecode(format!("{what}: the file ends too early"))
        }
        other => FingerprintError::AudioDecode(format!("{what}: {other}")),
    }
}

/// The caller's reader as a symphonia media source. Positions are relative to
/// where the reader stood when handed over, so media that starts part-way into
/// a reader still seeks correctly.
struct Source<R> {
    inner: R,
    start: u64,
    len: Option<u64>,
}

impl<R: Seek> Source<R> {
    fn new(mut inner: R) -> io::Result<Self> {
        let start = inner.stream_position()?;
        let end = inner.seek(SeekFrom::End(0))?;
        inner.seek(SeekFrom::Start(start))?;
        Ok(Self {
            inner,
            start,
            len: end.checked_sub(start),
        })
    }
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for Source<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let pos = match pos {
            SeekFrom::Start(offset) => SeekFrom::Start(self.start.saturating_add(offset)),
            other => other,
        };
        let absolute = self.inner.seek(pos)?;
        absolute.checked_sub(self.start).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to before the start of the media",
            )
        })
    }
}

impl<R: Read + Seek + Send + Sync> MediaSource for Source<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Counts what it is given.
    #[derive(Default)]
    struct Counter {
        format: Option<(u32, usize)>,
        samples: usize,
    }

    impl AudioSink for Counter {
        fn start(&mut self, sample_rate: u32, channels: usize) -> Result<()> {
            self.format = Some((sample_rate, channels));
            Ok(())
        }

        fn consume(&mut self, interleaved: &[i16]) {
            self.samples += interleaved.len();
        }
    }

    /// A 16-bit PCM WAV of `frames` frames of silence.
    pub(crate) fn wav(sample_rate: u32, channels: u16, frames: u32) -> Vec<u8> {
        let samples = vec![0i16; frames as usize * usize::from(channels)];
        crate::test_support::wav(sample_rate, channels, &samples)
    }

    /// Every frame of a WAV reaches the sink, with the header's format.
    #[test]
    fn wav_frames_reach_the_sink() {
        let mut sink = Counter::default();
        let decoded = decode(
            Cursor::new(wav(8000, 2, 12_345)),
            &Limits::default(),
            &Watch::none(),
            &mut sink,
        )
        .expect("decode");
        assert_eq!(sink.format, Some((8000, 2)));
        assert_eq!(decoded.frames, 12_345);
        assert_eq!(sink.samples, 2 * 12_345);
    }

    /// Media that starts part-way into the reader decodes the same.
    #[test]
    fn media_may_start_inside_the_reader() {
        let mut bytes = vec![0xffu8; 1000];
        bytes.extend(wav(8000, 1, 8000));
        let mut reader = Cursor::new(bytes);
        reader.set_position(1000);
        let mut sink = Counter::default();
        let decoded =
            decode(reader, &Limits::default(), &Watch::none(), &mut sink).expect("decode");
        assert_eq!(decoded.frames, 8000);
    }

    /// A header declaring more than the duration limit is refused before decoding.
    #[test]
    fn declared_duration_over_the_limit_is_refused() {
        let limits = Limits {
            max_duration_seconds: 1.0,
            ..Limits::default()
        };
        let mut sink = Counter::default();
        let error = decode(
            Cursor::new(wav(8000, 1, 8001)),
            &limits,
            &Watch::none(),
            &mut sink,
        )
        .expect_err("over the limit");
        assert!(
            matches!(error, FingerprintError::LimitExceeded(_)),
            "{error}"
        );
        assert_eq!(sink.format, None, "refused before decoding");
    }

    /// A header that understates its length is caught while decoding.
    #[test]
    fn lying_header_is_caught_while_decoding() {
        let limits = Limits {
            max_duration_seconds: 1.0,
            ..Limits::default()
        };
        let mut bytes = wav(8000, 1, 4000);
        // Append more data than the header declares and claim an unknown
        // length, as streaming writers do.
        bytes.extend(std::iter::repeat_n(0u8, 2 * 20_000));
        bytes[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        let error = decode(
            Cursor::new(bytes),
            &limits,
            &Watch::none(),
            &mut Counter::default(),
        )
        .expect_err("over the limit");
        assert!(
            matches!(error, FingerprintError::LimitExceeded(_)),
            "{error}"
        );
    }

    /// Sample rates and channel counts out of range are refused with a reason.
    #[test]
    fn absurd_formats_are_refused() {
        for (rate, channels) in [(1000, 1), (1_000_000, 1)] {
            let error = decode(
                Cursor::new(wav(rate, channels, 100)),
                &Limits::default(),
                &Watch::none(),
                &mut Counter::default(),
            )
            .expect_err("refused");
            assert!(error.to_string().contains("sample rate"), "{error}");
        }
        assert!(check_format(44_100, 33).is_err());
        assert!(check_format(44_100, 0).is_err());
        assert!(check_format(44_100, 2).is_ok());
    }

    /// Bytes that are no audio container give a decode error.
    #[test]
    fn garbage_is_an_error() {
        let error = decode(
            Cursor::new(vec![0x5au8; 4096]),
            &Limits::default(),
            &Watch::none(),
            &mut Counter::default(),
        )
        .expect_err("not audio");
        assert!(matches!(error, FingerprintError::AudioDecode(_)), "{error}");
    }
}
