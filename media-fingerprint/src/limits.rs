//! Bounds on what decoding an upload may cost.

use crate::error::{FingerprintError, Result};

/// Hard bounds on what decoding may cost (pixels, bytes), so a decompression
/// bomb or forged header fails fast.
///
/// Both bounds are checked against the dimensions in the file's header before
/// any pixel buffer is allocated. `max_decoded_bytes` is also handed to the
/// decoder as its allocation budget. Normalising a decoded image allocates at
/// most one more buffer no larger than the decoded one (plus a few small ones),
/// so peak memory stays below about twice `max_decoded_bytes`.
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
}

impl Default for Limits {
    /// 100 megapixels and 512 MiB: an 8-bit RGBA image of 100 megapixels
    /// (400 MB) fits, a 16-bit RGB one of the same size does not. Six hours of
    /// audio or video, and as many frames as six hours at 60 fps.
    fn default() -> Self {
        Self {
            max_pixels: 100_000_000,
            max_decoded_bytes: 512 * 1024 * 1024,
            max_duration_seconds: 6.0 * 3600.0,
            max_frames: 6 * 3600 * 60,
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
