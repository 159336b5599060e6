//! The crate's single error type.

/// Everything that can go wrong while hashing or fingerprinting media.
///
/// Each message is written to be shown to the person who uploaded the file:
/// [`crate::content_fingerprint`] copies it into
/// [`MissingFingerprint::reason`](crate::MissingFingerprint::reason).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// The bytes are not in an image format this crate decodes.
    #[error(
        "image format not recognised or not supported (supported: JPEG, PNG, WebP, TIFF, GIF, BMP)"
    )]
    UnsupportedImageFormat,

    /// Decoding would cost more than [`Limits`](crate::Limits) allow; nothing
    /// was allocated for the pixels.
    #[error("refused by decoding limits: {0}")]
    LimitExceeded(String),

    /// The audio could not be decoded (unsupported codec, corrupt or
    /// truncated stream, no audio track).
    #[error("could not decode audio: {0}")]
    AudioDecode(String),

    /// The video could not be decoded (unsupported container or codec,
    /// corrupt or truncated stream, no video track).
    #[error("could not decode video: {0}")]
    VideoDecode(String),

    /// The image has a zero width or height, so it has no content to fingerprint.
    #[error("image has no pixels ({width}x{height})")]
    EmptyImage {
        /// Width the decoder reported.
        width: u32,
        /// Height the decoder reported.
        height: u32,
    },

    /// The file ends before the image does: an upload cut short.
    #[error("image file is truncated: the image data ends before the image is complete")]
    TruncatedImage,

    /// The decoder rejected the bytes (truncated, corrupt or unsupported variant).
    // The inner error is part of the message rather than a `#[source]`, so that
    // `to_string()` alone, which becomes `MissingFingerprint::reason`, says what
    // went wrong, and error-chain printers do not repeat it.
    #[error("could not decode image: {0}")]
    Decode(::image::ImageError),

    /// The image decoder panicked on this input. That is a decoder bug; it is
    /// caught so one hostile upload cannot take down the caller's thread.
    #[error("image decoder failed unexpectedly: {0}")]
    DecoderPanic(String),

    /// Decoding ran past [`Limits::max_decode_time`](crate::Limits::max_decode_time)
    /// and was stopped.
    #[error(
        "decoding took longer than the {limit_seconds} s allowed for one file; \
         the file may be too long or too complex to fingerprint"
    )]
    TimedOut {
        /// The time bound, in seconds.
        limit_seconds: f64,
    },

    /// The caller cancelled the decode through
    /// [`Limits::cancel`](crate::Limits::cancel), e.g. because the uploader
    /// went away.
    #[error("decoding was cancelled before it finished")]
    Cancelled,

    /// Reading the input failed.
    #[error("could not read input: {0}")]
    Io(std::io::Error),

    /// iscc-lib refused to generate or decode an ISCC code.
    #[error("ISCC error: {0}")]
    Iscc(iscc_lib::IsccError),

    /// A code given to [`image_code_distance`](crate::image_code_distance) is
    /// not an ISCC Image-Code.
    #[error("{code} is not an ISCC Image-Code")]
    NotImageCode {
        /// The code as given.
        code: String,
    },
}

impl FingerprintError {
    /// Whether this error means the decode was stopped from outside (time
    /// bound or cancellation) rather than that the media could not be
    /// fingerprinted.
    pub fn is_stop(&self) -> bool {
        matches!(self, Self::TimedOut { .. } | Self::Cancelled)
    }
}

/// Result type of this crate.
pub type Result<T, E = FingerprintError> = std::result::Result<T, E>;

/// The message of a caught panic, when it has one. Decoders of untrusted
/// bytes run under `catch_unwind`; this turns what they panicked with into
/// the reason an upload's fingerprint is missing.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic without a message".to_owned()
    }
}
