//! The ISCC Image-Code: decoding an image under [`Limits`] and hashing its
//! normalised pixels.

use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ::image::metadata::Orientation;
use ::image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};
use iscc_lib::codec::{MainType, SubType};

use crate::error::{FingerprintError, Result};
use crate::jpeg;
use crate::limits::{Limits, Watch};
use crate::normalize;

/// Bit length of the Image-Codes the registry stores (the ISCC default).
const IMAGE_CODE_BITS: u32 = 64;

/// Fractions of width and height kept by the centred crops whose Image-Codes
/// are computed beside the whole image's. The Image-Code sees the whole
/// frame, so cutting a few percent off the edges moves it by many bits;
/// comparing crops with crops lets a cropped copy meet its original.
pub(crate) const CROP_FRACTIONS: [f64; 2] = [0.95, 0.90];

/// The Image-Code of the whole image and those of its centred crops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageCodes {
    /// The ISCC Image-Code.
    pub(crate) code: String,
    /// Image-Codes of the crops, in the order of [`CROP_FRACTIONS`].
    pub(crate) crop_codes: Vec<String>,
}

/// Decodes the image and returns its Image-Code and its crops' codes.
/// Stops with [`FingerprintError::TimedOut`] or
/// [`FingerprintError::Cancelled`] when `watch` says so: between reads of
/// the file while decoding, and between the normalisation's passes.
pub(crate) fn image_codes<R: BufRead + Seek>(
    reader: R,
    limits: &Limits,
    watch: &Watch,
) -> Result<ImageCodes> {
    let views = catch_unwind(AssertUnwindSafe(|| {
        decode_views(reader, limits, &CROP_FRACTIONS, watch)
    }))
    .map_err(|panic| {
        FingerprintError::DecoderPanic(crate::error::panic_message(panic.as_ref()))
    })??;
    let mut codes = views
        .iter()
        .map(|pixels| image_code_from_pixels(pixels, IMAGE_CODE_BITS))
        .collect::<Result<Vec<_>>>()?;
    let code = codes.remove(0);
    Ok(ImageCodes {
        code,
        crop_codes: codes,
    })
}

/// Decodes the image `reader` holds and returns its 64-bit ISCC Image-Code in
/// canonical `ISCC:...` form. (Production code takes [`image_codes`], which
/// also gives the crops' codes; tests check the whole-image path alone.)
#[cfg(test)]
///
/// The format is recognised from the bytes. Dimensions are checked against
/// `limits` from the header, before the pixels are decoded.
pub(crate) fn image_code<R: BufRead + Seek>(reader: R, limits: &Limits) -> Result<String> {
    // The decoders are third-party parsers of untrusted bytes; should one of
    // them panic on a hostile file, that becomes a missing fingerprint for this
    // upload instead of a panic in the caller. Nothing is shared with the
    // closure but the reader, which is dropped with it.
    let pixels = catch_unwind(AssertUnwindSafe(|| decode_normalized(reader, limits))).map_err(
        |panic| FingerprintError::DecoderPanic(crate::error::panic_message(panic.as_ref())),
    )??;
    image_code_from_pixels(&pixels, IMAGE_CODE_BITS)
}

/// The Image-Code of `bits` bits for 32×32 normalised gray pixels; the one
/// place our image path and the conformance vectors meet the ISCC algorithm.
///
/// Computes what `iscc_lib::gen_image_code_v0` computes, with the same
/// floating-point operations in the same order (so the same bits), but with
/// the DCT's cosines computed once rather than 5120 times and without its
/// per-step allocations: iscc-lib's version costs about as much as decoding
/// a small PNG. Only the DCT columns the requested bits read are transformed.
/// Inputs iscc-lib refuses go to iscc-lib, for its errors.
pub(crate) fn image_code_from_pixels(pixels: &[u8], bits: u32) -> Result<String> {
    if pixels.len() != DCT_SIZE * DCT_SIZE || bits > 256 {
        return iscc_lib::gen_image_code_v0(pixels, bits)
            .map(|result| result.iscc)
            .map_err(FingerprintError::Iscc);
    }
    let digest = image_hash(pixels, bits);
    iscc_lib::codec::encode_component(
        MainType::Content,
        SubType::Image,
        iscc_lib::codec::Version::V0,
        bits,
        &digest,
    )
    .map(|component| format!("ISCC:{component}"))
    .map_err(FingerprintError::Iscc)
}

/// Side of the pixel square the Image-Code's DCT transforms.
const DCT_SIZE: usize = 32;

/// The Image-Code's hash bits (ISO 24138 5.4.5.2) for 1024 pixels, as
/// iscc-lib's `soft_hash_image_v0` computes them: a 2-D DCT, then for each
/// 8×8 block of the low frequencies (at columns, rows (0, 0), (8, 0), (0, 8),
/// (8, 8)) one bit per coefficient, set when it exceeds the block's median.
fn image_hash(pixels: &[u8], bits: u32) -> Vec<u8> {
    let cosines = DctCosines::new();
    let mut rows = [[0.0f64; DCT_SIZE]; DCT_SIZE];
    for (row, values) in rows.iter_mut().zip(pixels.chunks_exact(DCT_SIZE)) {
        let input: [f64; DCT_SIZE] = std::array::from_fn(|x| f64::from(values[x]));
        cosines.dct(&input, row);
    }
    // Blocks at column 8 are read only from the second block on.
    let columns = if bits > 64 { 16 } else { 8 };
    let mut dct = [[0.0f64; DCT_SIZE]; 16]; // dct[column][row]
    for (x, column) in dct.iter_mut().enumerate().take(columns) {
        let input: [f64; DCT_SIZE] = std::array::from_fn(|y| rows[y][x]);
        cosines.dct(&input, column);
    }
    let mut hash_bits = Vec::with_capacity(256);
    for (col, row) in [(0, 0), (8, 0), (0, 8), (8, 8)] {
        let block: Vec<f64> = (row..row + 8)
            .flat_map(|y| (col..col + 8).map(move |x| (x, y)))
            .map(|(x, y)| dct[x][y])
            .collect();
        let mut sorted = block.clone();
        // As iscc-lib sorts (the coefficients are finite, never NaN).
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let median = (sorted[31] + sorted[32]) / 2.0;
        hash_bits.extend(block.iter().map(|&value| value > median));
        if hash_bits.len() >= bits as usize {
            break;
        }
    }
    hash_bits[..bits as usize]
        .chunks(8)
        .map(|chunk| {
            chunk
                .iter()
                .enumerate()
                .fold(0u8, |byte, (i, &bit)| byte | (u8::from(bit) << (7 - i)))
        })
        .collect()
}

/// The cosines of Nayuki's recursive fast DCT (iscc-core's `dct.py`, which
/// iscc-lib follows) for every length from 32 down to 2.
struct DctCosines {
    /// For a transform of length `n`, `cos((i + 0.5)·π / n)` for
    /// `i < n / 2` is at index `n / 2 - 1 + i`.
    values: [f64; DCT_SIZE - 1],
}

impl DctCosines {
    fn new() -> Self {
        let mut values = [0.0; DCT_SIZE - 1];
        let mut n = DCT_SIZE;
        while n >= 2 {
            for i in 0..n / 2 {
                // The same expression as iscc-lib's, so the same rounding.
                values[n / 2 - 1 + i] = ((i as f64 + 0.5) * std::f64::consts::PI / n as f64).cos();
            }
            n /= 2;
        }
        Self { values }
    }

    /// The DCT of `input` (a power of two long, at most 32) into `output`,
    /// step for step as iscc-lib's `dct_recursive`.
    fn dct(&self, input: &[f64], output: &mut [f64]) {
        let n = input.len();
        if n == 1 {
            output[0] = input[0];
            return;
        }
        let half = n / 2;
        let mut alpha = [0.0f64; DCT_SIZE / 2];
        let mut beta = [0.0f64; DCT_SIZE / 2];
        for i in 0..half {
            alpha[i] = input[i] + input[n - 1 - i];
            beta[i] = (input[i] - input[n - 1 - i]) / self.values[half - 1 + i] / 2.0;
        }
        let mut alpha_out = [0.0f64; DCT_SIZE / 2];
        let mut beta_out = [0.0f64; DCT_SIZE / 2];
        self.dct(&alpha[..half], &mut alpha_out[..half]);
        self.dct(&beta[..half], &mut beta_out[..half]);
        for i in 0..half - 1 {
            output[2 * i] = alpha_out[i];
            output[2 * i + 1] = beta_out[i] + beta_out[i + 1];
        }
        output[n - 2] = alpha_out[half - 1];
        output[n - 1] = beta_out[half - 1];
    }
}

/// Decodes under `limits` and normalises to 32×32 gray pixels.
#[cfg(test)]
fn decode_normalized<R: BufRead + Seek>(reader: R, limits: &Limits) -> Result<Vec<u8>> {
    decode_views(reader, limits, &[], &Watch::none()).map(|mut views| views.swap_remove(0))
}

/// Decodes under `limits` and normalises the whole image and its crops.
fn decode_views<R: BufRead + Seek>(
    reader: R,
    limits: &Limits,
    crops: &[f64],
    watch: &Watch,
) -> Result<Vec<Vec<u8>>> {
    // The decoders run in one call each; the only way to stop one part-way
    // is to fail the reads it makes. Whatever error it then reports, the
    // watch's own reason is the one returned.
    let reader = Watchful {
        inner: reader,
        watch,
    };
    let decoded = open_decoder(reader, limits, true).and_then(|decoder| {
        // A damaged EXIF block must not cost the fingerprint: like Pillow's
        // exif_transpose, treat an unreadable orientation as "none".
        let mut decoder = decoder;
        let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
        let image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
        Ok((image, orientation))
    });
    let (image, orientation) = decoded.map_err(|error| watch.explain(error))?;
    watch.check()?;
    normalize::normalize_with_crops(image, orientation, crops, watch)
}

/// The decoder for the image `reader` holds, after checking what its header
/// promises against `limits`: the first half of [`decode_views`], shared
/// with the header-only cost estimate. `check_complete` refuses a JPEG
/// without an end (which means reading all of it).
pub(crate) fn open_decoder<'a, R: BufRead + Seek + 'a>(
    reader: R,
    limits: &Limits,
    check_complete: bool,
) -> Result<Box<dyn ImageDecoder + 'a>> {
    let mut reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(FingerprintError::Io)?;
    let Some(format) = reader.format() else {
        return Err(FingerprintError::UnsupportedImageFormat);
    };
    if format == ImageFormat::Jpeg && check_complete {
        let mut inner = reader.into_inner();
        jpeg::ensure_complete(&mut inner)?;
        reader = ImageReader::with_format(inner, format);
    }
    reader.limits(limits.to_image_limits());
    let decoder = reader.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    limits.check_image(width, height, decoder.total_bytes())?;
    if width == 0 || height == 0 {
        return Err(FingerprintError::EmptyImage { width, height });
    }
    Ok(Box::new(decoder))
}

/// A reader that fails once its watch says the job is stopped, so that a
/// decoder reading the file stops soon after.
struct Watchful<'w, R> {
    inner: R,
    watch: &'w Watch,
}

impl<R> Watchful<'_, R> {
    fn check(&self) -> io::Result<()> {
        self.watch
            .check()
            .map_err(|stopped| io::Error::other(stopped.to_string()))
    }
}

impl<R: Read> Read for Watchful<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.check()?;
        self.inner.read(buf)
    }
}

impl<R: BufRead> BufRead for Watchful<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.check()?;
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.inner.consume(amount);
    }
}

impl<R: Seek> Seek for Watchful<'_, R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Sorts the `image` crate's errors into ours, so that a limit refusal reads
/// as one whichever layer noticed it.
fn from_image_error(error: ImageError) -> FingerprintError {
    match error {
        ImageError::Limits(limit) => FingerprintError::LimitExceeded(limit.to_string()),
        // Decoders read the file as they go; running out of it means it was cut short.
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            FingerprintError::TruncatedImage
        }
        ImageError::IoError(io) => FingerprintError::Io(io),
        other => FingerprintError::Decode(other),
    }
}

/// Hamming distance between two ISCC Image-Codes: how many of their hash bits
/// differ. 0 means perceptually identical; unrelated images differ in about
/// half of the bits (around 32 of 64).
///
/// Accepts codes with or without the `ISCC:` prefix. When the codes have
/// different lengths, the shorter length is compared (longer Image-Codes extend
/// shorter ones; they do not reorder their bits).
pub fn image_code_distance(a: &str, b: &str) -> Result<u32> {
    let a = image_code_body(a)?;
    let b = image_code_body(b)?;
    Ok(a.iter().zip(&b).map(|(x, y)| (x ^ y).count_ones()).sum())
}

/// The hash bits of an Image-Code, after checking that it is one.
fn image_code_body(code: &str) -> Result<Vec<u8>> {
    let (main_type, sub_type, _version, _length, body) =
        iscc_lib::iscc_decode(code).map_err(FingerprintError::Iscc)?;
    if main_type != MainType::Content as u8 || sub_type != SubType::Image as u8 {
        return Err(FingerprintError::NotImageCode {
            code: code.to_owned(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};
    use std::time::{Duration, Instant};

    use super::*;
    use crate::test_support::{conformance_cases, shared_path};

    /// The Image-Code of a shared test image, with default limits.
    fn code_of(file: &str) -> String {
        let path = shared_path("media/images").join(file);
        let reader = BufReader::new(std::fs::File::open(&path).expect("open image"));
        image_code(reader, &Limits::default()).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// The ISCC conformance vectors for gen_image_code_v0 (64, 128 and 256
    /// bits) pass through the same pixels-to-code step our image path uses.
    #[test]
    fn image_code_conformance_vectors() {
        let cases = conformance_cases("gen_image_code_v0");
        assert!(cases.len() >= 3, "expected the Image-Code vectors");
        for (name, inputs, outputs) in cases {
            let pixels: Vec<u8> = inputs[0]
                .as_array()
                .expect("pixel array")
                .iter()
                .map(|v| u8::try_from(v.as_u64().expect("pixel")).expect("8-bit pixel"))
                .collect();
            let bits = inputs[1].as_u64().expect("bits") as u32;
            let expected = outputs["iscc"].as_str().expect("iscc");
            assert_eq!(
                image_code_from_pixels(&pixels, bits).expect("code"),
                expected,
                "{name}"
            );
        }
    }

    /// Our Image-Code computation gives exactly iscc-lib's codes, at 64, 128
    /// and 256 bits, on random pixels, on images with few distinct values
    /// (many ties at the median), on flat images and on smooth gradients.
    #[test]
    fn image_codes_match_iscc_lib() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut inputs: Vec<Vec<u8>> = Vec::new();
        for levels in [256u64, 16, 3, 2] {
            for _ in 0..40 {
                inputs.push((0..1024).map(|_| (next() % levels) as u8).collect());
            }
        }
        for value in [0u8, 1, 128, 255] {
            inputs.push(vec![value; 1024]);
        }
        inputs.push((0..1024).map(|i| (i % 32 * 8) as u8).collect());
        inputs.push((0..1024).map(|i| (i / 32 * 8) as u8).collect());
        inputs.push((0..1024).map(|i| ((i % 32 + i / 32) * 4) as u8).collect());
        for pixels in &inputs {
            for bits in [64, 128, 256] {
                let expected = iscc_lib::gen_image_code_v0(pixels, bits).expect("iscc-lib");
                assert_eq!(
                    image_code_from_pixels(pixels, bits).expect("ours"),
                    expected.iscc,
                    "{bits} bits for {pixels:?}"
                );
            }
        }
        assert!(image_code_from_pixels(&[0; 1000], 64).is_err());
        assert!(image_code_from_pixels(&[0; 1024], 512).is_err());
    }

    /// Each of the six supported formats decodes and yields a 64-bit
    /// Image-Code in canonical form.
    #[test]
    fn all_six_formats_yield_an_image_code() {
        for file in [
            "coffee.png",
            "rocket.jpg",
            "coffee.webp",
            "coffee.tiff",
            "coffee.gif",
            "coffee.bmp",
        ] {
            let code = code_of(file);
            assert!(code.starts_with("ISCC:EEA"), "{file}: {code}");
            assert_eq!(code.len(), "ISCC:".len() + 16, "{file}: {code}");
        }
    }

    /// coffee.png re-encoded as BMP, TIFF, WebP and 256-colour GIF gives
    /// Image-Codes within a few bits of the PNG's. Lossless containers decode
    /// to the same pixels, so they match exactly.
    #[test]
    fn coffee_in_every_container_is_a_near_duplicate() {
        let png = code_of("coffee.png");
        for (file, max_bits) in [
            ("coffee.bmp", 0),
            ("coffee.tiff", 0),
            ("coffee.webp", 4),
            ("coffee.gif", 6),
        ] {
            let distance = image_code_distance(&png, &code_of(file)).expect("distance");
            eprintln!("coffee.png vs {file}: {distance} bits");
            assert!(distance <= max_bits, "{file}: {distance} bits");
        }
    }

    /// The photographers' 400×250 thumbnails are within 8 bits of their
    /// 2560×1600 originals, while unrelated photographs are far apart.
    #[test]
    fn thumbnails_are_near_duplicates_of_their_originals() {
        let leaf = code_of("fallen_leaf_2560x1600.jpg");
        let leaf_thumb = code_of("fallen_leaf_thumbnail.jpg");
        let path = code_of("path_2560x1600.jpg");
        let path_thumb = code_of("path_thumbnail.jpg");
        let leaf_distance = image_code_distance(&leaf, &leaf_thumb).expect("distance");
        let path_distance = image_code_distance(&path, &path_thumb).expect("distance");
        let unrelated = image_code_distance(&leaf, &path).expect("distance");
        eprintln!(
            "fallen_leaf: {leaf_distance} bits, path: {path_distance} bits, leaf vs path: {unrelated} bits"
        );
        assert!(leaf_distance <= 8, "fallen_leaf: {leaf_distance} bits");
        assert!(path_distance <= 8, "path: {path_distance} bits");
        assert!(unrelated > 16, "unrelated photographs: {unrelated} bits");
    }

    /// A JPEG cut short anywhere is refused as truncated, although the JPEG
    /// decoder alone would accept it and fill the rest with gray.
    #[test]
    fn truncated_jpeg_is_an_error() {
        let bytes = std::fs::read(shared_path("media/images/rocket.jpg")).expect("read");
        for keep in [bytes.len() - 1, bytes.len() / 2, 600, 20, 3] {
            let result = image_code(Cursor::new(&bytes[..keep]), &Limits::default());
            assert!(
                matches!(result, Err(FingerprintError::TruncatedImage)),
                "kept {keep} bytes: {result:?}"
            );
        }
    }

    /// Files of every supported format cut short are errors, not codes; the
    /// formats whose decoders run out of bytes say "truncated".
    #[test]
    fn truncated_files_of_every_format_are_errors() {
        for (file, says_truncated) in [
            ("coffee.png", true),
            ("coffee.tiff", true),
            ("coffee.bmp", true),
            ("coffee.gif", false),
            ("coffee.webp", false),
        ] {
            let bytes = std::fs::read(shared_path("media/images").join(file)).expect("read");
            for keep in [bytes.len() / 2, bytes.len() - bytes.len() / 10] {
                let result = image_code(Cursor::new(&bytes[..keep]), &Limits::default());
                let error = result.expect_err(file);
                eprintln!("{file} cut to {keep} bytes: {error}");
                if says_truncated {
                    assert!(
                        matches!(error, FingerprintError::TruncatedImage),
                        "{file}: {error:?}"
                    );
                }
            }
        }
    }

    /// Bytes in no image format are refused as unsupported.
    #[test]
    fn random_bytes_are_unsupported() {
        // A fixed xorshift sequence, so the test is reproducible.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let bytes: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 56) as u8
            })
            .collect();
        let result = image_code(Cursor::new(bytes), &Limits::default());
        assert!(
            matches!(result, Err(FingerprintError::UnsupportedImageFormat)),
            "{result:?}"
        );
        let result = image_code(Cursor::new(Vec::new()), &Limits::default());
        assert!(matches!(
            result,
            Err(FingerprintError::UnsupportedImageFormat)
        ));
    }

    /// A PNG whose header claims 100000×100000 pixels is refused by the limits
    /// from its header alone, quickly and without allocating the pixels.
    #[test]
    fn forged_huge_png_header_is_refused_quickly() {
        let started = Instant::now();
        let result = image_code(
            Cursor::new(png_claiming(100_000, 100_000)),
            &Limits::default(),
        );
        assert!(
            matches!(&result, Err(FingerprintError::LimitExceeded(_))),
            "{result:?}"
        );
        let message = result.expect_err("refused").to_string();
        assert!(message.contains("100000x100000"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A real JPEG whose frame header is patched to claim 16000×16000 pixels
    /// (256 megapixels) is refused by our limits before its pixels are decoded.
    #[test]
    fn forged_jpeg_dimensions_are_refused_quickly() {
        let mut bytes = std::fs::read(shared_path("media/images/rocket.jpg")).expect("read");
        let sof = bytes
            .windows(2)
            .position(|pair| pair[0] == 0xFF && matches!(pair[1], 0xC0 | 0xC2))
            .expect("rocket.jpg has a SOF0 or SOF2 marker");
        // Marker (2), length (2), precision (1), then height and width.
        bytes[sof + 5..sof + 7].copy_from_slice(&16_000u16.to_be_bytes());
        bytes[sof + 7..sof + 9].copy_from_slice(&16_000u16.to_be_bytes());
        let started = Instant::now();
        let result = image_code(Cursor::new(bytes), &Limits::default());
        let message = match result {
            Err(FingerprintError::LimitExceeded(message)) => message,
            other => panic!("expected a limit refusal, got {other:?}"),
        };
        assert!(message.contains("16000x16000"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// Tight limits refuse a real image that default limits accept, by
    /// pixel count and by decoded size separately.
    #[test]
    fn tight_limits_refuse_real_images() {
        let bytes = std::fs::read(shared_path("media/images/coffee.png")).expect("read");
        let few_pixels = Limits {
            max_pixels: 1000,
            ..Limits::default()
        };
        let few_bytes = Limits {
            max_decoded_bytes: 1000,
            ..Limits::default()
        };
        for limits in [few_pixels, few_bytes] {
            let result = image_code(Cursor::new(&bytes), &limits);
            assert!(
                matches!(result, Err(FingerprintError::LimitExceeded(_))),
                "{limits:?}: {result:?}"
            );
        }
    }

    /// An image rotated by its EXIF orientation gets the code of the upright
    /// image: a JPEG saved sideways with Orientation = 6 (rotate 90° clockwise)
    /// matches the upright original.
    #[test]
    fn exif_orientation_is_applied() {
        let upright = ::image::open(shared_path("media/images/rocket.jpg")).expect("decode");
        let sideways = upright.rotate270();
        let upright_png = encode_png(&upright);
        let sideways_png = with_exif_orientation(&encode_png(&sideways), 6);
        let limits = Limits::default();
        let expected = image_code(Cursor::new(upright_png), &limits).expect("upright");
        let without_exif =
            image_code(Cursor::new(encode_png(&sideways)), &limits).expect("sideways");
        let with_exif = image_code(Cursor::new(sideways_png), &limits).expect("tagged");
        assert_eq!(with_exif, expected);
        assert_ne!(without_exif, expected, "the rotation should matter");
    }

    /// The same picture with and without a plain white frame, or with a
    /// transparent frame, gets the same code: borders are trimmed and
    /// transparency is filled with white before hashing.
    #[test]
    fn borders_and_transparency_do_not_change_the_code() {
        let picture = ::image::open(shared_path("media/images/coffee.png"))
            .expect("decode")
            .into_rgb8();
        let (width, height) = picture.dimensions();
        let mut framed =
            ::image::RgbImage::from_pixel(width + 40, height + 30, ::image::Rgb([255; 3]));
        ::image::imageops::replace(&mut framed, &picture, 25, 10);
        let mut transparent = ::image::RgbaImage::new(width + 40, height + 30);
        ::image::imageops::replace(
            &mut transparent,
            &DynamicImage::ImageRgb8(picture.clone()).into_rgba8(),
            25,
            10,
        );
        let limits = Limits::default();
        let plain = image_code(Cursor::new(encode_png(&picture.into())), &limits).expect("plain");
        let framed = image_code(Cursor::new(encode_png(&framed.into())), &limits).expect("framed");
        let transparent =
            image_code(Cursor::new(encode_png(&transparent.into())), &limits).expect("transparent");
        assert_eq!(framed, plain);
        assert_eq!(transparent, plain);
    }

    /// Every shared test image gets exactly the Image-Code the ISCC reference
    /// SDK gives it: iscc-sdk 0.9.7 `code_image` with default options, on
    /// Pillow 13. JPEGs included, although the two use different decoders.
    #[test]
    fn shared_images_match_the_reference_sdk() {
        let reference = [
            ("astronaut.png", "ISCC:EEA4FESMKUZL3X6I"),
            ("camera.png", "ISCC:EEA374OBYBBU5DF4"),
            ("chelsea.png", "ISCC:EEA3CX7GIZISCF26"),
            ("coffee.bmp", "ISCC:EEA3XAZAG5WA6NRX"),
            ("coffee.gif", "ISCC:EEA3XAZAG5WA6NRX"),
            ("coffee.png", "ISCC:EEA3XAZAG5WA6NRX"),
            ("coffee.tiff", "ISCC:EEA3XAZAG5WA6NRX"),
            ("coffee.webp", "ISCC:EEA3XAZAG5WA6NRX"),
            ("fallen_leaf_2560x1600.jpg", "ISCC:EEAZEOJPYO4ZEIOX"),
            ("fallen_leaf_thumbnail.jpg", "ISCC:EEAZEOJPYO4ZEIOX"),
            ("flower.jpg", "ISCC:EEAZEOJO7OYLHMRE"),
            ("motorcycle_left.png", "ISCC:EEA4KB6GNOJXBKTT"),
            ("motorcycle_right.png", "ISCC:EEA5KB6DNOJXBKST"),
            ("path_2560x1600.jpg", "ISCC:EEA4HWOB2OBZWA4P"),
            ("path_thumbnail.jpg", "ISCC:EEA4HWOB2OBZWA4P"),
            ("rocket.jpg", "ISCC:EEA4ANY35QN6KETH"),
        ];
        for (file, expected) in reference {
            assert_eq!(code_of(file), expected, "{file}");
        }
    }

    /// Synthetic images that exercise each normalisation step get exactly
    /// the Image-Code iscc-sdk 0.9.7 (Pillow 13, default options) gives the
    /// same files. Where the SDK's older exact border trim would give another
    /// code, that code is noted: those cases prove the tolerant trim.
    #[test]
    fn normalisation_matches_the_reference_sdk() {
        let reference = [
            ("framed_white.png", "ISCC:EEA3XAZAG5WA6NRX"),
            // Exact trim: ISCC:EEAZBDYPGFG6YP3Q.
            ("framed_noisy.png", "ISCC:EEA3XAZAG5WA6NRX"),
            ("sky_band.png", "ISCC:EEA3TATQOX6LH4GA"),
            ("flat_band.png", "ISCC:EEA3XAZAG5WA6NRX"),
            // Exact trim: ISCC:EEA7XCVIOZWI2JRS.
            ("transparent.png", "ISCC:EEA7XCVIOJWI2NRS"),
            // Exact trim: ISCC:EEAZ76OBYABQ7HG4.
            ("gray_alpha.png", "ISCC:EEAZ76OBYABQ5HH4"),
            ("gray.png", "ISCC:EEA374OBYBBU5DF4"),
            ("transparent.gif", "ISCC:EEA7TQ7YD3GMSMBS"),
            ("orientation_1.png", "ISCC:EEA3XAZAG5WA6NRX"),
            ("orientation_2.png", "ISCC:EEA65VTVMIMVUYZC"),
            ("orientation_3.png", "ISCC:EEA64KLVREM2KY4Z"),
            ("orientation_4.png", "ISCC:EEA3W7BA3RWPANWI"),
            ("orientation_5.png", "ISCC:EEA4ACF3SOGB7V6V"),
            ("orientation_6.png", "ISCC:EEAZKXPO23MVVAUA"),
            ("orientation_7.png", "ISCC:EEAZLIXGFHM2JAT7"),
            ("orientation_8.png", "ISCC:EEA4B5VTNSGOBVZK"),
        ];
        let cases = compat_cases();
        assert_eq!(cases.len(), reference.len());
        for ((name, bytes), (expected_name, expected)) in cases.into_iter().zip(reference) {
            assert_eq!(name, expected_name);
            let code = image_code(Cursor::new(bytes), &Limits::default()).expect(expected_name);
            assert_eq!(code, expected, "{name}");
        }
    }

    /// The distance helper counts differing bits, accepts codes without the
    /// prefix, and refuses codes that are not Image-Codes.
    #[test]
    fn image_code_distance_counts_bits() {
        let black = "ISCC:EEAQAAAAAAAAAAAA"; // all-black conformance vector: zero body
        let coffee = code_of("coffee.png");
        let (_, _, _, _, body) = iscc_lib::iscc_decode(&coffee).expect("decode");
        let ones: u32 = body.iter().map(|b| b.count_ones()).sum();
        assert_eq!(image_code_distance(black, &coffee).expect("distance"), ones);
        assert_eq!(image_code_distance(&coffee, &coffee).expect("distance"), 0);
        let bare = coffee.trim_start_matches("ISCC:");
        assert_eq!(image_code_distance(bare, &coffee).expect("distance"), 0);

        let data_code = "ISCC:GAAXL2XYM5BQIAZ3";
        assert!(matches!(
            image_code_distance(data_code, &coffee),
            Err(FingerprintError::NotImageCode { .. })
        ));
        assert!(matches!(
            image_code_distance("not a code", &coffee),
            Err(FingerprintError::Iscc(_))
        ));
    }

    /// A 128-bit Image-Code is compared with a 64-bit one over the first 64 bits.
    #[test]
    fn image_code_distance_compares_the_common_prefix() {
        let pixels: Vec<u8> = (0..1024).map(|i| (i * 37 % 251) as u8).collect();
        let short = image_code_from_pixels(&pixels, 64).expect("64");
        let long = image_code_from_pixels(&pixels, 128).expect("128");
        assert_eq!(image_code_distance(&short, &long).expect("distance"), 0);
    }

    /// Synthetic images exercising every normalisation step, as
    /// `(name, encoded bytes)`.
    fn compat_cases() -> Vec<(String, Vec<u8>)> {
        use ::image::{GrayAlphaImage, LumaA, Rgb, RgbImage, Rgba, RgbaImage, imageops};
        let coffee = ::image::open(shared_path("media/images/coffee.png"))
            .expect("decode")
            .into_rgb8();
        let camera = ::image::open(shared_path("media/images/camera.png"))
            .expect("decode")
            .into_luma8();
        let (w, h) = coffee.dimensions();
        let mut cases = Vec::new();

        let mut framed = RgbImage::from_pixel(w + 80, h + 50, Rgb([255, 255, 255]));
        imageops::replace(&mut framed, &coffee, 30, 20);
        cases.push(("framed_white.png".to_owned(), encode_png(&framed.into())));

        let mut noisy = RgbImage::new(w + 80, h + 50);
        for (x, y, pixel) in noisy.enumerate_pixels_mut() {
            let noise = ((x * 7 + y * 13) % 13) as u8;
            *pixel = Rgb([20 + noise, 30 + noise / 2, 25]);
        }
        imageops::replace(&mut noisy, &coffee, 50, 10);
        cases.push(("framed_noisy.png".to_owned(), encode_png(&noisy.into())));

        let mut sky = RgbImage::new(w, h + 60);
        for (x, y, pixel) in sky.enumerate_pixels_mut() {
            let v = 180 + ((x + y) / 60) as u8;
            *pixel = Rgb([v - 40, v - 10, v]);
        }
        imageops::replace(&mut sky, &coffee, 0, 60);
        cases.push(("sky_band.png".to_owned(), encode_png(&sky.into())));

        let mut flat_band = RgbImage::from_pixel(w, h + 60, Rgb([90, 90, 90]));
        imageops::replace(&mut flat_band, &coffee, 0, 60);
        cases.push(("flat_band.png".to_owned(), encode_png(&flat_band.into())));

        let mut transparent = RgbaImage::new(w + 40, h + 40);
        for (x, y, pixel) in transparent.enumerate_pixels_mut() {
            *pixel = Rgba([200, 10, 10, 0]);
            if (20..20 + w).contains(&x) && (20..20 + h).contains(&y) {
                let Rgb([r, g, b]) = *coffee.get_pixel(x - 20, y - 20);
                *pixel = Rgba([r, g, b, ((x * 255) / (w + 40)) as u8]);
            }
        }
        cases.push((
            "transparent.png".to_owned(),
            encode_png(&transparent.into()),
        ));

        let mut gray_alpha = GrayAlphaImage::new(camera.width(), camera.height());
        for (x, y, pixel) in gray_alpha.enumerate_pixels_mut() {
            *pixel = LumaA([camera.get_pixel(x, y)[0], (y % 256) as u8]);
        }
        cases.push(("gray_alpha.png".to_owned(), encode_png(&gray_alpha.into())));
        cases.push(("gray.png".to_owned(), encode_png(&camera.clone().into())));

        let mut gif = Vec::new();
        ::image::codecs::gif::GifEncoder::new(&mut gif)
            .encode(
                &transparent_rgba(&coffee),
                w,
                h,
                ::image::ExtendedColorType::Rgba8,
            )
            .expect("encode GIF");
        cases.push(("transparent.gif".to_owned(), gif));

        let plain = encode_png(&coffee.clone().into());
        for orientation in 1..=8 {
            cases.push((
                format!("orientation_{orientation}.png"),
                with_exif_orientation(&plain, orientation),
            ));
        }
        cases
    }

    /// `picture` as RGBA bytes with its top-left sixth fully transparent.
    fn transparent_rgba(picture: &::image::RgbImage) -> Vec<u8> {
        let (w, h) = picture.dimensions();
        let mut rgba = Vec::with_capacity((w * h * 4) as usize);
        for (x, y, pixel) in picture.enumerate_pixels() {
            let alpha = if x < w / 3 && y < h / 2 { 0 } else { 255 };
            rgba.extend([pixel[0], pixel[1], pixel[2], alpha]);
        }
        rgba
    }

    /// `image` encoded as PNG in memory.
    fn encode_png(image: &DynamicImage) -> Vec<u8> {
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), ::image::ImageFormat::Png)
            .expect("encode PNG");
        bytes
    }

    /// `png` with an eXIf chunk carrying `orientation`, inserted after IHDR.
    fn with_exif_orientation(png: &[u8], orientation: u16) -> Vec<u8> {
        // Big-endian TIFF header, one IFD entry: tag 0x0112 (Orientation), SHORT, count 1.
        let mut exif =
            b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01".to_vec();
        exif.extend(orientation.to_be_bytes());
        exif.extend([0, 0, 0, 0, 0, 0]);
        let ihdr_end = 8 + 8 + 13 + 4;
        let mut out = png[..ihdr_end].to_vec();
        out.extend(png_chunk(b"eXIf", &exif));
        out.extend(&png[ihdr_end..]);
        out
    }

    /// A PNG chunk with its length and CRC.
    fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut chunk = (data.len() as u32).to_be_bytes().to_vec();
        chunk.extend(kind);
        chunk.extend(data);
        chunk.extend(crc32(&chunk[4..]).to_be_bytes());
        chunk
    }

    /// CRC-32 (ISO-HDLC), as PNG chunks use.
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A well-formed PNG claiming `width`×`height` RGB pixels, whose only IDAT
    /// holds a few bytes: all a decompression bomb needs to get past a parser.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend(height.to_be_bytes());
        ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no filter, no interlace
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(png_chunk(b"IHDR", &ihdr));
        // A zlib stream of one empty stored block.
        png.extend(png_chunk(
            b"IDAT",
            &[0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0, 0, 0, 1],
        ));
        png.extend(png_chunk(b"IEND", &[]));
        png
    }
}
