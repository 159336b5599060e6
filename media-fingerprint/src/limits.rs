//! Bounds on what decoding an upload may cost: memory and time, and the
//! caller's way to stop a decode early.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::error::{FingerprintError, Result};

/// Hard bounds on what decoding may cost (pixels, bytes, time), so a
/// decompression bomb or forged header fails fast, and a way to stop it.
///
/// Both pixel bounds are checked against the dimensions in the file's header
/// before any pixel buffer is allocated. `max_decoded_bytes` is also handed
/// to the decoder as its allocation budget. Normalising a decoded image
/// allocates at most one more buffer no larger than the decoded one (plus a
/// few small ones), so peak memory stays below about twice
/// `max_decoded_bytes`; [`decode_cost`](crate::decode_cost) says how much a
/// given file will take.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted width × height.
    pub max_pixels: u64,
    /// Largest accepted size of the decoded pixel buffer, in bytes
    /// (width × height × bytes per pixel of the decoder's output).
    pub max_decoded_bytes: u64,
    /// Longest accepted audio or video duration, in seconds, whether declared
    /// in a header or found while decoding.
    pub max_duration_seconds: f64,
    /// Most video frames decoded from one upload.
    pub max_frames: u64,
    /// Longest [`content_fingerprint`](crate::content_fingerprint) may run on
    /// one upload, counted from its start: a video and its sound track share
    /// it. Past it the decode stops with [`FingerprintError::TimedOut`].
    /// `None` means no bound. Decoding loops look at the clock between
    /// packets and pictures; decoding one image is a single call into the
    /// `image` crate, so an image stops between reads of its file and between
    /// stages, and its pixel limits bound the rest.
    pub max_decode_time: Option<Duration>,
    /// Lets another thread stop the decode, e.g. when the uploader has gone:
    /// once it is [cancelled](Cancel::cancel), decoding stops with
    /// [`FingerprintError::Cancelled`].
    pub cancel: Cancel,
}

impl Default for Limits {
    /// 100 megapixels and 512 MiB: an 8-bit RGBA image of 100 megapixels
    /// (400 MB) fits, a 16-bit RGB one of the same size does not. Six hours of
    /// audio or video, and as many frames as six hours at 60 fps. Sixty
    /// seconds of decoding ([`DEFAULT_MAX_DECODE_TIME`]), and a fresh
    /// [`Cancel`] nobody else holds.
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_decoded_bytes: 512 * 1024 * 1024,
            max_duration_seconds: 6.0 * 3600.0,
            max_frames: 6 * 3600 * 60,
            max_decode_time: Some(DEFAULT_MAX_DECODE_TIME),
            cancel: Cancel::new(),
        }
    }
}

/// The default [`Limits::max_decode_time`]: 60 s.
///
/// Measured on one core of the 2-core machine the service runs on (release
/// build, the `decode_memory` example): the 100-megapixel PNG the default
/// pixel limit allows decodes and normalises in 0.7 s; six hours of FLAC in
/// 7.6 s and three-minute Ogg, MP3 and AAC songs in 0.1 to 0.2 s (about
/// 1000 times real time); 720p H.264 at about 16 times real time, so about
/// 15 minutes of 720p video (and 40 minutes of 360p) fit in a minute, and a
/// feature film is stopped rather than holding a core for many minutes.
/// Sixty seconds is also about as long as an uploader waits for a response.
pub const DEFAULT_MAX_DECODE_TIME: Duration = Duration::from_secs(60);

/// A flag that stops a decode from another thread: clone it, hand one copy to
/// [`content_fingerprint`](crate::content_fingerprint) in [`Limits::cancel`],
/// and call [`Cancel::cancel`] on the other when the result is no longer
/// wanted. Clones share the flag; it never resets.
#[derive(Debug, Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// A flag not yet set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every decode holding a clone of this flag to stop. A decode
    /// notices within about the time it takes to decode one packet or
    /// picture.
    pub fn cancel(&self) {
        // Relaxed is enough: the flag carries no data, and a decode that reads
        // it a little late only stops a little later.
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether [`Cancel::cancel`] was called on this flag or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The time bound and the cancel flag of one fingerprint job, started when
/// the job starts, so every stage of it shares one deadline.
#[derive(Debug, Clone)]
pub(crate) struct Watch {
    /// When the job must be done; `None` when there is no bound (or the
    /// bound is so far away that the clock cannot express it).
    deadline: Option<Instant>,
    /// The bound as configured, for the error message.
    limit: Duration,
    /// The caller's flag.
    cancel: Cancel,
}

impl Watch {
    /// Starts the clock for a job under `limits`.
    pub(crate) fn start(limits: &Limits) -> Self {
        let limit = limits.max_decode_time.unwrap_or(Duration::MAX);
        Self {
            deadline: limits
                .max_decode_time
                .and_then(|limit| Instant::now().checked_add(limit)),
            limit,
            cancel: limits.cancel.clone(),
        }
    }

    /// A watch that never stops, for tests of the stages below
    /// [`content_fingerprint`](crate::content_fingerprint).
    #[cfg(test)]
    pub(crate) fn none() -> Self {
        Self::start(&Limits {
            max_decode_time: None,
            ..Limits::default()
        })
    }

    /// Fails with [`FingerprintError::Cancelled`] once the flag is set, or
    /// [`FingerprintError::TimedOut`] once the deadline has passed. Costs an
    /// atomic load and a read of the monotonic clock (tens of nanoseconds),
    /// so loops call it once per packet or picture.
    pub(crate) fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(FingerprintError::Cancelled);
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(FingerprintError::TimedOut {
                limit_seconds: self.limit.as_secs_f64(),
            });
        }
        Ok(())
    }

    /// `error`, unless the job was stopped meanwhile: then why it was. A
    /// decoder interrupted through its reader fails with whatever error it
    /// makes of that; this puts the real reason back.
    pub(crate) fn explain(&self, error: FingerprintError) -> FingerprintError {
        match self.check() {
            Err(stopped) => stopped,
            Ok(()) => error,
        }
    }
}

impl Limits {
    /// The same bounds in the form the `image` crate's decoders enforce.
    pub(crate) fn to_image_limits(&self) -> ::image::Limits {
        // `image::Limits` is non-exhaustive, so start from its default.
        let mut limits = ::image::Limits::default();
        // No side can be longer than the whole pixel budget; this lets decoders
        // that check dimensions themselves refuse absurd headers early.
        let max_side = u32::try_from(self.max_pixels).unwrap_or(u32::MAX);
        limits.max_image_width = Some(max_side);
        limits.max_image_height = Some(max_side);
        limits.max_alloc = Some(self.max_decoded_bytes);
        limits
    }

    /// Refuses an image whose header promises more than these limits allow.
    pub(crate) fn check_image(&self, width: u32, height: u32, decoded_bytes: u64) -> Result<()> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels {
            return Err(FingerprintError::LimitExceeded(format!(
                "{width}x{height} is {pixels} pixels, more than the limit of {}",
                self.max_pixels
            )));
        }
        if decoded_bytes > self.max_decoded_bytes {
            return Err(FingerprintError::LimitExceeded(format!(
                "{width}x{height} decodes to {decoded_bytes} bytes, more than the limit of {}",
                self.max_decoded_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An image exactly at both limits is accepted; one pixel or byte more is refused.
    #[test]
    fn check_image_is_inclusive_at_the_limit() {
        let limits = Limits {
            max_pixels: 100,
            max_decoded_bytes: 300,
            ..Limits::default()
        };
        assert!(limits.check_image(10, 10, 300).is_ok());
        assert!(matches!(
            limits.check_image(101, 1, 303),
            Err(FingerprintError::LimitExceeded(_))
        ));
        assert!(matches!(
            limits.check_image(10, 10, 301),
            Err(FingerprintError::LimitExceeded(_))
        ));
    }

    /// Dimensions whose product overflows `u32` are still compared correctly.
    #[test]
    fn check_image_does_not_overflow() {
        let limits = Limits::default();
        assert!(limits.check_image(u32::MAX, u32::MAX, u64::MAX).is_err());
    }

    /// A fresh watch passes; cancelling any clone of the flag stops it.
    #[test]
    fn watch_sees_the_cancel_flag_of_any_clone() {
        let limits = Limits::default();
        let watch = Watch::start(&limits);
        assert!(watch.check().is_ok());
        let handle = limits.cancel.clone();
        handle.cancel();
        assert!(limits.cancel.is_cancelled());
        assert!(matches!(watch.check(), Err(FingerprintError::Cancelled)));
    }

    /// A zero time bound has passed at once and names itself in the error;
    /// no bound, or one too far away for the clock, never passes.
    #[test]
    fn watch_times_out_at_the_deadline() {
        let zero = Limits {
            max_decode_time: Some(Duration::ZERO),
            ..Limits::default()
        };
        match Watch::start(&zero).check() {
            Err(error @ FingerprintError::TimedOut { .. }) => {
                assert!(error.to_string().contains("0 s"), "{error}");
            }
            other => panic!("expected a time-out, got {other:?}"),
        }
        for max_decode_time in [None, Some(Duration::MAX)] {
            let limits = Limits {
                max_decode_time,
                ..Limits::default()
            };
            assert!(Watch::start(&limits).check().is_ok());
        }
    }

    /// A pixel budget above `u32::MAX` does not wrap the per-side limit.
    #[test]
    fn image_limits_saturate_side_length() {
        let limits = Limits {
            max_pixels: u64::MAX,
            max_decoded_bytes: 1,
            ..Limits::default()
        };
        let image_limits = limits.to_image_limits();
        assert_eq!(image_limits.max_image_width, Some(u32::MAX));
        assert_eq!(image_limits.max_alloc, Some(1));
    }
}
