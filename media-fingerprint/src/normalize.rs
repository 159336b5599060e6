//! Turning a decoded image into the 32×32 grayscale pixels the ISCC Image-Code
//! hashes, the same way the ISCC reference SDK does.
//!
//! iscc-sdk (`iscc_sdk/image.py`, `image_normalize`) works on a Pillow image in
//! this order, and so do we:
//!
//! 1. apply the EXIF orientation (`ImageOps.exif_transpose`);
//! 2. fill transparency with white, giving RGB (`image_fill_transparency`);
//! 3. trim a near-uniform border (`image_trim_tolerant`, iscc-sdk's default
//!    since it replaced the exact `image_trim_border`): see [`trim_border`];
//! 4. convert to grayscale with ITU-R 601-2 luma (`convert("L")`);
//! 5. resize to 32×32 with Pillow's bicubic filter (`resize(..., BICUBIC)`).
//!
//! Steps 2, 4 and 5 reproduce Pillow's integer arithmetic exactly (rounding
//! included), so the same decoded pixels give the same 1024 values and thus the
//! same Image-Code as iscc-sdk. The tests check this against codes from
//! iscc-sdk 0.9.7 on Pillow 13 for every shared test image and for synthetic
//! images covering each step. JPEG decoders may still round differently from
//! Pillow's libjpeg-turbo on other files, moving a code by a bit or two.
//!
//! Step 1 is applied after step 2 here: filling is per pixel and orientation
//! only moves pixels, so the order does not change the result, and filling
//! first lets the rotation work on 3 rather than 4 bytes per pixel (1 for gray
//! images, which stay gray: see [`Opaque`]).
//!
//! Steps 4 and 5 run fused, one row of the trimmed content at a time (see
//! [`reduce_content`]): the row's luma goes into a small buffer, which Pillow's
//! horizontal bicubic pass turns into 32 samples and which also feeds the box
//! sums of the small copy the crops are cut from. The full-size gray image is
//! never built; only 32 samples per row are kept for the vertical pass. The
//! inner loops are written so that the compiler vectorises them for baseline
//! x86-64 (see [`luma_block`] and [`dot`]); they compute the same integers as
//! the straightforward code, which the tests keep as their reference.
//!
//! Known differences from iscc-sdk under Pillow, all for unusual files:
//! - 16-bit images are scaled to 8 bits; Pillow clips 16-bit grayscale to 255.
//! - A PNG whose transparency is a `tRNS` colour key on an RGB or grayscale
//!   image is filled with white here; Pillow keeps the keyed colour.

use ::image::metadata::Orientation;
use ::image::{ColorType, DynamicImage, GrayImage, RgbImage};

use crate::error::Result;
use crate::kernels::{DOT_BLOCK, Kernels};
use crate::limits::Watch;

/// Side of the square the Image-Code hashes.
pub(crate) const CODE_SIDE: usize = 32;

/// Runs the whole normalisation: `image` as decoded, `orientation` from its
/// EXIF data. Returns `CODE_SIDE * CODE_SIDE` gray values, row by row.
///
/// `image` must have at least one pixel. Besides `image`, this allocates at
/// most one buffer of its size (less for 16-bit or alpha images) plus, for a
/// rotating orientation, one copy of that buffer at a time.
#[cfg(test)]
pub(crate) fn normalize(image: DynamicImage, orientation: Orientation) -> Vec<u8> {
    let mut views = normalize_with_crops(image, orientation, &[], &Watch::none())
        .expect("a watch that never stops lets normalisation finish");
    views.swap_remove(0)
}

/// Like [`normalize`], and also the normalised pixels of centred crops of
/// the trimmed content, each keeping `fraction` of its width and height. The
/// first result is the whole image, then one per fraction.
///
/// Looks at `watch` between steps, each of which passes over the pixels once
/// (a few hundred milliseconds at most for the largest images the limits
/// allow), and fails with its error if the job was stopped.
pub(crate) fn normalize_with_crops(
    image: DynamicImage,
    orientation: Orientation,
    fractions: &[f64],
    watch: &Watch,
) -> Result<Vec<Vec<u8>>> {
    let mut flat = fill_transparency(image);
    watch.check()?;
    flat.apply_orientation(orientation);
    watch.check()?;
    let opaque = Opaque::new(flat);
    watch.check()?;
    let content = trim_border(&opaque);
    watch.check()?;
    // The crops' codes are ours, not ISO 24138's, so they need not follow
    // Pillow's full-resolution arithmetic: cutting them from a small
    // area-averaged copy costs a fraction of another full resize.
    let crop_base = (!fractions.is_empty()).then_some(CROP_BASE_SIDE);
    let (whole, small) = reduce_content(&opaque, content, crop_base);
    drop(opaque);
    watch.check()?;
    let mut views = vec![whole];
    if let Some(small) = small {
        for &fraction in fractions {
            views.push(resize_bicubic(
                &center_crop(&small, fraction),
                CODE_SIDE,
                CODE_SIDE,
            ));
        }
    }
    Ok(views)
}

/// Longest side of the reduced copy the crops are cut from.
const CROP_BASE_SIDE: usize = 256;

/// The fused steps 4 and 5 over the `area` of `image`: its 601-2 luma resized
/// to `CODE_SIDE`×`CODE_SIDE` with Pillow's bicubic filter, and, if
/// `crop_base` is given, the luma box-reduced as [`box_reduce`] would reduce
/// it to at most that many pixels a side.
///
/// Gives exactly what [`luma_601`] followed by [`resize_bicubic`] and
/// [`box_reduce`] give, reading each pixel of `image` once.
pub(crate) fn reduce_content(
    image: &Opaque,
    area: Rect,
    crop_base: Option<usize>,
) -> (Vec<u8>, Option<Gray>) {
    let (width, height) = (area.right - area.left, area.bottom - area.top);
    let mut resize = Resize::new(width, height, CODE_SIDE, CODE_SIDE);
    let mut reduce = crop_base.map(|side| BoxReduce::new(width, height, side));
    let kernels = Kernels::detect();
    kernels.run(ReduceRows {
        kernels,
        image,
        area,
        resize: &mut resize,
        reduce: reduce.as_mut(),
    });
    (resize.finish(), reduce.map(BoxReduce::finish))
}

/// The row loop of [`reduce_content`], run by [`Kernels::run`] so that the
/// loops inlined into it are compiled for the kernels' instruction set too.
struct ReduceRows<'a> {
    kernels: Kernels,
    image: &'a Opaque,
    area: Rect,
    resize: &'a mut Resize,
    reduce: Option<&'a mut BoxReduce>,
}

impl pulp::WithSimd for ReduceRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        let Self {
            kernels,
            image,
            area,
            resize,
            mut reduce,
        } = self;
        for y in area.top..area.bottom {
            if y + 1 < area.bottom {
                kernels.prefetch(image.row(y + 1, area.left, area.right));
            }
            let luma = resize.next_row();
            luma_601_row(
                kernels,
                image.row(y, area.left, area.right),
                image.channels,
                luma,
            );
            if let Some(reduce) = &mut reduce {
                reduce.push_row(luma);
            }
            resize.push_row(kernels);
        }
    }
}

/// Averages `factor`×`factor` blocks, the factor chosen so the longer side
/// is at most `max_side`; an image already that small is returned as is.
/// Rows and columns left over at the right and bottom edges are dropped.
///
/// The straightforward form of what [`BoxReduce`] computes row by row.
#[cfg(test)]
pub(crate) fn box_reduce(image: &Gray, max_side: usize) -> Gray {
    let factor = image.width.max(image.height).div_ceil(max_side);
    if factor <= 1 {
        return image.clone();
    }
    let (width, height) = (
        (image.width / factor).max(1),
        (image.height / factor).max(1),
    );
    let (fx, fy) = (factor.min(image.width), factor.min(image.height));
    let mut sums = vec![0u32; width];
    let mut pixels = Vec::with_capacity(width * height);
    for block_row in image.pixels.chunks_exact(image.width * fy).take(height) {
        sums.iter_mut().for_each(|s| *s = 0);
        for row in block_row.chunks_exact(image.width) {
            for (sum, block) in sums.iter_mut().zip(row.chunks_exact(fx)) {
                *sum += block.iter().map(|&p| u32::from(p)).sum::<u32>();
            }
        }
        let area = (fx * fy) as u32;
        // Cannot truncate: an average of bytes is at most 255.
        pixels.extend(sums.iter().map(|&s| ((s + area / 2) / area) as u8));
    }
    Gray {
        width,
        height,
        pixels,
    }
}

/// [`box_reduce`] fed one row at a time.
///
/// Each row is added into per-column sums (16-bit, so the additions
/// vectorise well); those are folded into the blocks' 32-bit sums at the end
/// of each block row, or every [`COLUMN_SUM_ROWS`] rows, before they can
/// overflow.
enum BoxReduce {
    /// The image is small enough already: its rows are kept as they are.
    Keep(Gray),
    /// Blocks of `fx`×`fy` pixels are averaged into `out.pixels`.
    Average {
        fx: usize,
        fy: usize,
        /// Per-column sums of the rows added since the last fold.
        columns: Vec<u16>,
        /// Sums of the blocks of the current block row.
        blocks: Vec<u32>,
        /// Rows in `columns`.
        pending: usize,
        /// Rows of the current block row seen so far.
        rows_in_block: usize,
        /// Block rows to make; rows after them are dropped.
        out_height: usize,
        /// The reduced image, growing one row per block row.
        out: Gray,
    },
}

/// Rows of bytes a 16-bit column sum holds without overflowing (257 · 255 = 65535).
const COLUMN_SUM_ROWS: usize = 257;

impl BoxReduce {
    fn new(width: usize, height: usize, max_side: usize) -> Self {
        let factor = width.max(height).div_ceil(max_side);
        if factor <= 1 {
            return Self::Keep(Gray {
                width,
                height: 0,
                pixels: Vec::with_capacity(width * height),
            });
        }
        let (out_width, out_height) = ((width / factor).max(1), (height / factor).max(1));
        let fx = factor.min(width);
        Self::Average {
            fx,
            fy: factor.min(height),
            columns: vec![0; out_width * fx],
            blocks: vec![0; out_width],
            pending: 0,
            rows_in_block: 0,
            out_height,
            out: Gray {
                width: out_width,
                height: 0,
                pixels: Vec::with_capacity(out_width * out_height),
            },
        }
    }

    /// Adds the next row of luma values (each 0..=255).
    #[inline(always)]
    fn push_row(&mut self, row: &[i16]) {
        match self {
            Self::Keep(gray) => {
                // Cannot truncate: luma values are bytes.
                gray.pixels.extend(row.iter().map(|&v| v as u8));
                gray.height += 1;
            }
            Self::Average {
                fx,
                fy,
                columns,
                blocks,
                pending,
                rows_in_block,
                out_height,
                out,
            } => {
                if out.height == *out_height {
                    return; // below the last whole block row
                }
                for (sum, &v) in columns.iter_mut().zip(row) {
                    // Cannot truncate: luma values are bytes.
                    *sum = sum.wrapping_add(v as u16);
                }
                *pending += 1;
                *rows_in_block += 1;
                if *pending == COLUMN_SUM_ROWS || *rows_in_block == *fy {
                    for (block, sums) in blocks.iter_mut().zip(columns.chunks_exact(*fx)) {
                        *block += sums.iter().map(|&s| u32::from(s)).sum::<u32>();
                    }
                    columns.fill(0);
                    *pending = 0;
                }
                if *rows_in_block == *fy {
                    let area = (*fx * *fy) as u32;
                    // Cannot truncate: an average of bytes is at most 255.
                    out.pixels
                        .extend(blocks.iter().map(|&s| ((s + area / 2) / area) as u8));
                    out.height += 1;
                    blocks.fill(0);
                    *rows_in_block = 0;
                }
            }
        }
    }

    fn finish(self) -> Gray {
        match self {
            Self::Keep(gray) | Self::Average { out: gray, .. } => gray,
        }
    }
}
/// The centred part of `image` that keeps `fraction` of each dimension (at
/// least one pixel).
pub(crate) fn center_crop(image: &Gray, fraction: f64) -> Gray {
    let keep = |side: usize| ((side as f64 * fraction).round() as usize).clamp(1, side);
    let (width, height) = (keep(image.width), keep(image.height));
    let (left, top) = ((image.width - width) / 2, (image.height - height) / 2);
    let mut pixels = Vec::with_capacity(width * height);
    for row in image
        .pixels
        .chunks_exact(image.width)
        .skip(top)
        .take(height)
    {
        pixels.extend_from_slice(&row[left..left + width]);
    }
    Gray {
        width,
        height,
        pixels,
    }
}

/// A rectangle of pixels: `left..right` × `top..bottom`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rect {
    pub(crate) left: usize,
    pub(crate) top: usize,
    pub(crate) right: usize,
    pub(crate) bottom: usize,
}

/// An 8-bit grayscale image, row by row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gray {
    pub(crate) width: usize,
    pub(crate) height: usize,
    pub(crate) pixels: Vec<u8>,
}

/// An opaque 8-bit image with one (gray) or three (RGB) samples per pixel,
/// row by row.
///
/// iscc-sdk turns every image into RGB before trimming. Keeping gray images
/// gray gives the same result (a gray pixel `v` is RGB `(v, v, v)`, whose
/// channel differences and 601-2 luma are `v`'s own) with a third of the memory.
pub(crate) struct Opaque {
    width: usize,
    channels: usize,
    samples: Vec<u8>,
}

impl Opaque {
    /// Takes over the buffer of an 8-bit gray image, or converts to 8-bit RGB.
    pub(crate) fn new(image: DynamicImage) -> Self {
        let width = image.width() as usize;
        match image {
            DynamicImage::ImageLuma8(gray) => Self {
                width,
                channels: 1,
                samples: gray.into_raw(),
            },
            other => Self {
                width,
                channels: 3,
                samples: other.into_rgb8().into_raw(),
            },
        }
    }

    fn stride(&self) -> usize {
        self.width * self.channels
    }

    fn height(&self) -> usize {
        self.samples.len().checked_div(self.stride()).unwrap_or(0)
    }

    /// The samples of the pixels `left..right` in row `y`.
    fn row(&self, y: usize, left: usize, right: usize) -> &[u8] {
        let start = y * self.stride();
        &self.samples[start + left * self.channels..start + right * self.channels]
    }
}

/// Composites any transparency onto white; returns an 8-bit gray image for
/// gray input and an 8-bit RGB image for everything else.
///
/// Uses Pillow's `paste` arithmetic: `(c·a + 255·(255 − a)) / 255`, rounded.
pub(crate) fn fill_transparency(image: DynamicImage) -> DynamicImage {
    let gray = matches!(
        image.color(),
        ColorType::L8 | ColorType::L16 | ColorType::La8 | ColorType::La16
    );
    match (gray, image.color().has_alpha()) {
        (true, false) => DynamicImage::ImageLuma8(image.into_luma8()),
        (false, false) => DynamicImage::ImageRgb8(image.into_rgb8()),
        (true, true) => {
            let with_alpha = image.into_luma_alpha8();
            let (width, height) = with_alpha.dimensions();
            let samples = composite_onto_white(&with_alpha, 1);
            let gray = GrayImage::from_raw(width, height, samples)
                .expect("compositing keeps one gray sample per pixel");
            DynamicImage::ImageLuma8(gray)
        }
        (false, true) => {
            let with_alpha = image.into_rgba8();
            let (width, height) = with_alpha.dimensions();
            let samples = composite_onto_white(&with_alpha, 3);
            let rgb = RgbImage::from_raw(width, height, samples)
                .expect("compositing keeps three colour samples per pixel");
            DynamicImage::ImageRgb8(rgb)
        }
    }
}

/// Drops the alpha sample that follows every `channels` colour samples,
/// blending the colour onto white by that alpha.
fn composite_onto_white(samples: &[u8], channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() / (channels + 1) * channels);
    for pixel in samples.chunks_exact(channels + 1) {
        let (colour, alpha) = pixel.split_at(channels);
        let alpha = u32::from(alpha[0]);
        out.extend(
            colour
                .iter()
                .map(|&c| div255(u32::from(c) * alpha + 255 * (255 - alpha))),
        );
    }
    out
}

/// `x / 255` rounded to nearest, exactly as Pillow's `DIV255` macro computes it
/// (valid for `x <= 255 * 255`).
fn div255(x: u32) -> u8 {
    let t = x + 128;
    // Cannot truncate: for x <= 65025 the result is at most 255.
    (((t >> 8) + t) >> 8) as u8
}

/// Per-channel difference up to which a pixel still counts as border colour
/// (iscc-sdk's `image_trim_tolerant` default).
const TRIM_TOLERANCE: u8 = 16;

/// At most this many trimming passes (iscc-sdk's `TRIM_MAX_PASSES`).
const TRIM_MAX_PASSES: usize = 16;

/// The part of `image` left after trimming near-uniform borders, or the whole
/// image if it has none.
///
/// iscc-sdk's tolerant trim: each pass takes the top-left pixel of what is
/// left as the border colour and crops to the box of all pixels differing from
/// it by more than [`TRIM_TOLERANCE`] in some channel. A pass that would cut
/// only one side must cut a flat band (the box is the same at half the
/// tolerance), so a smooth gradient such as a sky is not eaten away. Passes
/// repeat until one crops nothing, at most [`TRIM_MAX_PASSES`] times.
pub(crate) fn trim_border(image: &Opaque) -> Rect {
    let mut area = Rect {
        left: 0,
        top: 0,
        right: image.width,
        bottom: image.height(),
    };
    for _ in 0..TRIM_MAX_PASSES {
        let Some(content) = differing_box(image, area, TRIM_TOLERANCE) else {
            break; // all one colour: nothing to tell border from content
        };
        if content == area {
            break;
        }
        let sides_cut = [
            content.left > area.left,
            content.top > area.top,
            content.right < area.right,
            content.bottom < area.bottom,
        ]
        .into_iter()
        .filter(|&cut| cut)
        .count();
        if sides_cut == 1 && differing_box(image, area, TRIM_TOLERANCE / 2) != Some(content) {
            break;
        }
        area = content;
    }
    area
}

/// The box, within `area` of `image`, of the pixels that differ from the
/// top-left pixel of `area` by more than `tolerance` in some channel; `None`
/// if there are none.
pub(crate) fn differing_box(image: &Opaque, area: Rect, tolerance: u8) -> Option<Rect> {
    if area.left >= area.right || area.top >= area.bottom {
        return None;
    }
    let border = Border::new(image.row(area.top, area.left, area.left + 1), tolerance);
    let mut found: Option<Rect> = None;
    for y in area.top..area.bottom {
        let row = |left: usize, right: usize| image.row(y, left, right);
        let rect = match found {
            None => {
                let Some(first) = border.first_differing(row(area.left, area.right)) else {
                    continue;
                };
                let left = area.left + first;
                let last = border
                    .last_differing(row(left, area.right))
                    .expect("the first differing pixel is one");
                Rect {
                    left,
                    top: y,
                    right: left + last + 1,
                    bottom: y + 1,
                }
            }
            // Only pixels outside the box so far can widen it; the row
            // extends it downwards if any of its pixels differs.
            Some(rect) => {
                let left = border
                    .first_differing(row(area.left, rect.left))
                    .map(|first| area.left + first);
                let right = border
                    .last_differing(row(rect.right, area.right))
                    .map(|last| rect.right + last + 1);
                if left.is_none()
                    && right.is_none()
                    && border.first_differing(row(rect.left, rect.right)).is_none()
                {
                    continue;
                }
                Rect {
                    left: left.unwrap_or(rect.left),
                    top: rect.top,
                    right: right.unwrap_or(rect.right),
                    bottom: y + 1,
                }
            }
        };
        found = Some(rect);
    }
    found
}

/// Pixels per block of [`Border`]'s vectorised comparison.
const BORDER_BLOCK: usize = 16;

/// A border colour and the tolerance within which a pixel matches it.
struct Border {
    /// Samples per pixel.
    channels: usize,
    /// The border colour repeated for a block of pixels.
    pattern: [u8; 3 * BORDER_BLOCK],
    tolerance: u8,
}

impl Border {
    fn new(pixel: &[u8], tolerance: u8) -> Self {
        let mut pattern = [0; 3 * BORDER_BLOCK];
        for (sample, &value) in pattern.iter_mut().zip(pixel.iter().cycle()) {
            *sample = value;
        }
        Self {
            channels: pixel.len(),
            pattern,
            tolerance,
        }
    }

    /// Whether any pixel of `samples` (whole pixels, at most a block)
    /// differs by more than the tolerance in some channel.
    fn any_differs(&self, samples: &[u8]) -> bool {
        samples
            .iter()
            .zip(&self.pattern)
            .fold(false, |any, (&value, &border)| {
                any | (value.abs_diff(border) > self.tolerance)
            })
    }

    /// The index of the first pixel of `samples` that differs.
    fn first_differing(&self, samples: &[u8]) -> Option<usize> {
        let block = self.channels * BORDER_BLOCK;
        samples
            .chunks(block)
            .enumerate()
            .find(|(_, chunk)| self.any_differs(chunk))
            .and_then(|(index, chunk)| {
                let pixels = chunk.chunks_exact(self.channels);
                let at = pixels
                    .map(|pixel| self.any_differs(pixel))
                    .position(|differs| differs)?;
                Some(index * BORDER_BLOCK + at)
            })
    }

    /// The index of the last pixel of `samples` that differs.
    fn last_differing(&self, samples: &[u8]) -> Option<usize> {
        let block = self.channels * BORDER_BLOCK;
        let pixels = samples.len() / self.channels;
        // Blocks counted from the end, so each is whole but the last one.
        samples
            .rchunks(block)
            .enumerate()
            .find(|(_, chunk)| self.any_differs(chunk))
            .and_then(|(index, chunk)| {
                let at = chunk
                    .chunks_exact(self.channels)
                    .map(|pixel| self.any_differs(pixel))
                    .rposition(|differs| differs)?;
                Some(pixels - index * BORDER_BLOCK - chunk.len() / self.channels + at)
            })
    }
}

/// Grayscale of the `area` of `image`, with Pillow's `convert("L")`
/// arithmetic: ITU-R 601-2 luma `L = R·299/1000 + G·587/1000 + B·114/1000` in
/// 16-bit fixed point, rounded. Gray images are copied as they are.
///
/// The straightforward form of what [`luma_601_row`] computes row by row.
#[cfg(test)]
pub(crate) fn luma_601(image: &Opaque, area: Rect) -> Gray {
    let width = area.right - area.left;
    let height = area.bottom - area.top;
    let mut pixels = Vec::with_capacity(width * height);
    for y in area.top..area.bottom {
        let row = image.row(y, area.left, area.right);
        if image.channels == 1 {
            pixels.extend_from_slice(row);
            continue;
        }
        pixels.extend(row.chunks_exact(3).map(crate::kernels::luma_of));
    }
    Gray {
        width,
        height,
        pixels,
    }
}

/// The luma of one row of `channels`-sample pixels (1: gray, 3: RGB) into
/// `out`, one value per pixel, as [`luma_601`] computes it.
#[inline(always)]
fn luma_601_row(kernels: Kernels, samples: &[u8], channels: usize, out: &mut [i16]) {
    if channels == 1 {
        for (value, &gray) in out.iter_mut().zip(samples) {
            *value = i16::from(gray);
        }
        return;
    }
    kernels.luma_rgb(samples, out);
}

/// Fraction bits of Pillow's fixed-point filter weights for 8-bit images.
const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's bicubic kernel (Keys, a = −0.5) with support 2.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Fixed-point filter weights for resampling one axis from `in_size` to
/// `out_size` samples.
pub(crate) struct Weights {
    /// First input sample used for each output sample.
    pub(crate) starts: Vec<usize>,
    /// Number of input samples used for each output sample.
    pub(crate) lens: Vec<usize>,
    /// Room for each output's weights in `fixed`: the longest `lens`.
    pub(crate) stride: usize,
    /// Output `i`'s weights are `fixed[i * stride..][..lens[i]]`.
    pub(crate) fixed: Vec<i32>,
}

impl Weights {
    /// Output `i`'s weights, from input sample `starts[i]` on.
    pub(crate) fn of(&self, i: usize) -> &[i32] {
        &self.fixed[i * self.stride..][..self.lens[i]]
    }
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`: when
/// shrinking, the kernel is widened by the scale factor so every input pixel
/// contributes (an area-averaging, antialiased resize).
pub(crate) fn precompute_weights(in_size: usize, out_size: usize) -> Weights {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filter_scale = scale.max(1.0);
    let support = SUPPORT * filter_scale;
    // Pillow multiplies by the reciprocal rather than dividing.
    let inverse_scale = 1.0 / filter_scale;
    let stride = (support.ceil() as usize) * 2 + 1;
    let mut weights = Weights {
        starts: Vec::with_capacity(out_size),
        lens: Vec::with_capacity(out_size),
        stride,
        fixed: vec![0; stride * out_size],
    };
    let mut raw = Vec::with_capacity(stride);
    for out in 0..out_size {
        let center = (out as f64 + 0.5) * scale;
        // `as` truncates toward zero like C's `(int)` cast, which Pillow relies on.
        let start = ((center - support + 0.5) as i64).max(0) as usize;
        let end = ((center + support + 0.5) as i64).min(in_size as i64).max(0) as usize;
        raw.clear();
        raw.extend((start..end).map(|x| bicubic((x as f64 - center + 0.5) * inverse_scale)));
        let total: f64 = raw.iter().sum();
        for (fixed, &w) in weights.fixed[out * stride..].iter_mut().zip(&raw) {
            let w = if total == 0.0 { w } else { w / total };
            let scaled = w * f64::from(1u32 << PRECISION_BITS);
            *fixed = (if scaled < 0.0 {
                scaled - 0.5
            } else {
                scaled + 0.5
            }) as i32;
        }
        weights.starts.push(start);
        weights.lens.push(raw.len());
    }
    weights
}

/// Rounds a fixed-point sum back to 8 bits, clamping like Pillow's `clip8`.
fn clip8(sum: i32) -> u8 {
    if sum <= 0 {
        0
    } else if sum >= 1 << (PRECISION_BITS + 8) {
        255
    } else {
        // Cannot truncate: the sum is below 256 << PRECISION_BITS.
        (sum >> PRECISION_BITS) as u8
    }
}

/// Where a 22-bit weight is split into two 16-bit halves.
const WEIGHT_SPLIT: u32 = 11;

/// Pillow's horizontal pass for 8-bit images, laid out for [`dot`].
///
/// A weight has 22 fraction bits, too many for the 16-bit multiplies that
/// vectorise well (`pmaddwd`), so each is split as `high · 2^11 + low` with
/// `0 <= low < 2^11`, and a window's sum is `(Σ p·high) · 2^11 + Σ p·low`.
/// The sums are taken modulo 2^32 (wrapping) in any order; Pillow's own sum
/// fits an `i32`, so the result is Pillow's exactly.
struct Horizontal {
    /// First input sample of each output's window.
    starts: Vec<usize>,
    /// Length of every window, padded with zero weights to a multiple of
    /// `DOT_BLOCK`.
    taps: usize,
    /// High halves of the weights, `taps` per output.
    high: Vec<i16>,
    /// Low halves of the weights, `taps` per output.
    low: Vec<i16>,
}

impl Horizontal {
    fn new(in_size: usize, out_size: usize) -> Self {
        let weights = precompute_weights(in_size, out_size);
        let taps = weights
            .lens
            .iter()
            .max()
            .copied()
            .unwrap_or(0)
            .next_multiple_of(DOT_BLOCK);
        let mut high = vec![0; taps * out_size];
        let mut low = vec![0; taps * out_size];
        for out in 0..out_size {
            let range = out * taps..(out + 1) * taps;
            for ((&w, h), l) in weights
                .of(out)
                .iter()
                .zip(&mut high[range.clone()])
                .zip(&mut low[range])
            {
                // Cannot truncate: |w| < 2^23, so the high half is below
                // 2^12 in magnitude and the low half below 2^11.
                *h = (w >> WEIGHT_SPLIT) as i16;
                *l = (w & ((1 << WEIGHT_SPLIT) - 1)) as i16;
            }
        }
        Self {
            starts: weights.starts,
            taps,
            high,
            low,
        }
    }

    /// Input samples a row buffer needs so every window can be read whole.
    fn span(&self) -> usize {
        self.starts
            .iter()
            .max()
            .map_or(0, |&start| start + self.taps)
    }

    /// Filters `row` (at least [`Self::span`] samples, each 0..=255) into `out`.
    #[inline(always)]
    fn apply(&self, kernels: Kernels, row: &[i16], out: &mut Vec<u8>) {
        let half = 1i32 << (PRECISION_BITS - 1);
        let windows = self
            .high
            .chunks_exact(self.taps)
            .zip(self.low.chunks_exact(self.taps));
        for (&start, (high, low)) in self.starts.iter().zip(windows) {
            let (high_sum, low_sum) = kernels.dot(&row[start..start + self.taps], high, low);
            let sum = (high_sum << WEIGHT_SPLIT)
                .wrapping_add(low_sum)
                .wrapping_add(half);
            out.push(clip8(sum));
        }
    }
}

/// Pillow's two-pass bicubic resize of an 8-bit grayscale image, fed one
/// input row at a time: each row is filtered horizontally as it arrives and
/// only the filtered rows are kept for the vertical pass.
struct Resize {
    in_width: usize,
    in_height: usize,
    out_height: usize,
    /// `None` when the width is already the target one (Pillow skips the pass).
    horizontal: Option<Horizontal>,
    /// The next input row, padded with zeros for the filter's windows.
    row: Vec<i16>,
    /// The horizontally filtered rows so far.
    rows: Vec<u8>,
    /// Width of the rows in `rows`.
    mid_width: usize,
}

impl Resize {
    fn new(in_width: usize, in_height: usize, out_width: usize, out_height: usize) -> Self {
        let horizontal = (in_width != out_width).then(|| Horizontal::new(in_width, out_width));
        let padded = horizontal
            .as_ref()
            .map_or(in_width, |h| h.span().max(in_width));
        let mid_width = if horizontal.is_some() {
            out_width
        } else {
            in_width
        };
        Self {
            in_width,
            in_height,
            out_height,
            horizontal,
            row: vec![0; padded],
            rows: Vec::with_capacity(mid_width * in_height),
            mid_width,
        }
    }

    /// The buffer for the next input row, to be filled with its samples
    /// (0..=255) and handed over with [`Self::push_row`].
    fn next_row(&mut self) -> &mut [i16] {
        &mut self.row[..self.in_width]
    }

    /// Filters the row written into [`Self::next_row`].
    #[inline(always)]
    fn push_row(&mut self, kernels: Kernels) {
        match &self.horizontal {
            Some(horizontal) => horizontal.apply(kernels, &self.row, &mut self.rows),
            // Cannot truncate: the samples are bytes.
            None => self
                .rows
                .extend(self.row[..self.in_width].iter().map(|&v| v as u8)),
        }
    }

    /// The vertical pass (skipped, as by Pillow, when the height is already
    /// the target one); returns the resized image row by row.
    fn finish(self) -> Vec<u8> {
        if self.in_height == self.out_height {
            return self.rows;
        }
        let width = self.mid_width;
        let weights = precompute_weights(self.in_height, self.out_height);
        let half = 1i32 << (PRECISION_BITS - 1);
        let mut sums = vec![0i32; width];
        let mut pixels = Vec::with_capacity(width * self.out_height);
        for (out, &start) in weights.starts.iter().enumerate() {
            sums.fill(half);
            for (y, &w) in weights.of(out).iter().enumerate() {
                let row = &self.rows[(start + y) * width..][..width];
                for (sum, &p) in sums.iter_mut().zip(row) {
                    *sum = sum.wrapping_add(i32::from(p).wrapping_mul(w));
                }
            }
            pixels.extend(sums.iter().map(|&sum| clip8(sum)));
        }
        pixels
    }
}

/// Resizes `image` to `out_width`×`out_height` exactly as Pillow's
/// `resize(size, BICUBIC)` does for an 8-bit grayscale image: a horizontal
/// pass, rounded to 8 bits, then a vertical pass. An axis already of the target
/// size is left alone, as Pillow leaves it.
pub(crate) fn resize_bicubic(image: &Gray, out_width: usize, out_height: usize) -> Vec<u8> {
    let mut resize = Resize::new(image.width, image.height, out_width, out_height);
    let kernels = Kernels::detect();
    kernels.run(ResizeRows {
        kernels,
        image,
        resize: &mut resize,
    });
    resize.finish()
}

/// The row loop of [`resize_bicubic`], run by [`Kernels::run`].
struct ResizeRows<'a> {
    kernels: Kernels,
    image: &'a Gray,
    resize: &'a mut Resize,
}

impl pulp::WithSimd for ResizeRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) {
        for row in self.image.pixels.chunks_exact(self.image.width) {
            for (sample, &p) in self.resize.next_row().iter_mut().zip(row) {
                *sample = i16::from(p);
            }
            self.resize.push_row(self.kernels);
        }
    }
}

#[cfg(test)]
mod tests {
    use ::image::{GrayAlphaImage, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;

    /// `rgb` as normalisation holds it.
    fn opaque(rgb: &RgbImage) -> Opaque {
        Opaque::new(DynamicImage::ImageRgb8(rgb.clone()))
    }

    /// `div255` rounds to nearest over its whole domain.
    #[test]
    fn div255_rounds_to_nearest() {
        for x in 0..=255 * 255u32 {
            let exact = f64::from(x) / 255.0;
            assert_eq!(u32::from(div255(x)), exact.round() as u32, "x = {x}");
        }
    }

    /// Opaque pixels keep their colour, transparent ones become white, and half
    /// transparency blends halfway, giving what Pillow 13's paste-with-mask gives.
    #[test]
    fn fill_transparency_composites_onto_white() {
        let mut rgba = RgbaImage::new(3, 1);
        rgba.put_pixel(0, 0, Rgba([10, 20, 30, 255]));
        rgba.put_pixel(1, 0, Rgba([10, 20, 30, 0]));
        rgba.put_pixel(2, 0, Rgba([0, 100, 255, 128]));
        let rgb = fill_transparency(DynamicImage::ImageRgba8(rgba)).into_rgb8();
        assert_eq!(rgb.get_pixel(0, 0), &Rgb([10, 20, 30]));
        assert_eq!(rgb.get_pixel(1, 0), &Rgb([255, 255, 255]));
        // (0·128 + 255·127)/255 = 127; (100·128 + 255·127)/255 = 177.2; 255.
        assert_eq!(rgb.get_pixel(2, 0), &Rgb([127, 177, 255]));
    }

    /// Gray images with alpha are composited in gray, to the values the RGB
    /// path gives for the same gray levels.
    #[test]
    fn gray_alpha_composites_like_rgb() {
        let mut gray_alpha = GrayAlphaImage::new(256, 4);
        for (x, y, pixel) in gray_alpha.enumerate_pixels_mut() {
            *pixel = LumaA([x as u8, (y * 85) as u8]);
        }
        let rgba = DynamicImage::ImageLumaA8(gray_alpha.clone()).into_rgba8();
        let gray = fill_transparency(DynamicImage::ImageLumaA8(gray_alpha));
        let rgb = fill_transparency(DynamicImage::ImageRgba8(rgba)).into_rgb8();
        let gray = gray.as_luma8().expect("gray input stays gray");
        for (g, c) in gray.pixels().zip(rgb.pixels()) {
            assert_eq!([g[0]; 3], c.0);
        }
    }

    /// A gray image normalises to exactly what the same image as RGB
    /// normalises to, borders, rotation and all.
    #[test]
    fn gray_images_normalise_like_their_rgb_form() {
        let mut gray = ::image::GrayImage::from_pixel(90, 70, ::image::Luma([250]));
        for y in 10..60 {
            for x in 20..85 {
                gray.put_pixel(x, y, ::image::Luma([((x * 3 + y * 5) % 256) as u8]));
            }
        }
        let rgb = DynamicImage::ImageLuma8(gray.clone()).into_rgb8();
        for orientation in [Orientation::NoTransforms, Orientation::Rotate90FlipH] {
            assert_eq!(
                normalize(DynamicImage::ImageLuma8(gray.clone()), orientation),
                normalize(DynamicImage::ImageRgb8(rgb.clone()), orientation),
            );
        }
    }

    /// The differing box is exact at tolerance 0, and ignores differences up
    /// to the tolerance otherwise.
    #[test]
    fn differing_box_honours_the_tolerance() {
        let mut rgb = RgbImage::from_pixel(10, 8, Rgb([200, 200, 200]));
        rgb.put_pixel(2, 3, Rgb([0, 0, 0]));
        rgb.put_pixel(6, 5, Rgb([200, 200, 201]));
        let whole = Rect {
            left: 0,
            top: 0,
            right: 10,
            bottom: 8,
        };
        let exact = Rect {
            left: 2,
            top: 3,
            right: 7,
            bottom: 6,
        };
        let tolerant = Rect {
            left: 2,
            top: 3,
            right: 3,
            bottom: 4,
        };
        assert_eq!(differing_box(&opaque(&rgb), whole, 0), Some(exact));
        assert_eq!(differing_box(&opaque(&rgb), whole, 16), Some(tolerant));
        assert_eq!(
            differing_box(&opaque(&rgb), tolerant, 0),
            None,
            "one pixel has no border"
        );
    }

    /// A frame of near-uniform noise (within the tolerance) around a picture
    /// is trimmed on all four sides, over as many passes as it takes.
    #[test]
    fn trim_border_removes_a_noisy_frame() {
        let mut rgb = RgbImage::new(40, 30);
        for (x, y, pixel) in rgb.enumerate_pixels_mut() {
            let noise = ((x * 7 + y * 13) % 11) as u8;
            *pixel = Rgb([240 + noise, 240, 245 - noise]);
        }
        for y in 10..20 {
            for x in 5..30 {
                rgb.put_pixel(x, y, Rgb([(x * 8) as u8, 0, (y * 10) as u8]));
            }
        }
        assert_eq!(
            trim_border(&opaque(&rgb)),
            Rect {
                left: 5,
                top: 10,
                right: 30,
                bottom: 20
            }
        );
    }

    /// An image of one colour, and one whose content reaches every edge, are
    /// left whole.
    #[test]
    fn trim_border_keeps_whole_images() {
        let whole = Rect {
            left: 0,
            top: 0,
            right: 4,
            bottom: 3,
        };
        let uniform = RgbImage::from_pixel(4, 3, Rgb([7, 7, 7]));
        assert_eq!(trim_border(&opaque(&uniform)), whole);
        let mut framed_by_content = uniform.clone();
        framed_by_content.put_pixel(3, 2, Rgb([200, 0, 0]));
        framed_by_content.put_pixel(1, 0, Rgb([200, 0, 0]));
        framed_by_content.put_pixel(0, 1, Rgb([200, 0, 0]));
        assert_eq!(trim_border(&opaque(&framed_by_content)), whole);
    }

    /// A one-sided band that is a gentle gradient (like a sky) is kept,
    /// while a flat one-sided band is cut.
    #[test]
    fn trim_border_keeps_one_sided_gradients() {
        let picture = |band: &dyn Fn(u32) -> u8| {
            let mut rgb = RgbImage::new(20, 20);
            for (x, y, pixel) in rgb.enumerate_pixels_mut() {
                *pixel = if y < 10 {
                    let v = band(x);
                    Rgb([v, v, v])
                } else {
                    Rgb([((x * 37 + y * 11) % 256) as u8, 0, 0])
                };
            }
            rgb
        };
        // Values 100..=115 along x: all within 16 of the corner, but not within 8.
        let gradient = picture(&|x| 100 + (x as u8).min(15));
        assert_eq!(trim_border(&opaque(&gradient)).top, 0);
        let flat = picture(&|_| 100);
        assert_eq!(trim_border(&opaque(&flat)).top, 10);
    }

    /// Luma uses the 601-2 weights with rounding: primaries and grays map to
    /// the values Pillow 13's convert("L") gives.
    #[test]
    fn luma_matches_pillow() {
        let mut rgb = RgbImage::new(5, 1);
        for (x, colour) in [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [128, 128, 128],
            [255, 255, 255],
        ]
        .into_iter()
        .enumerate()
        {
            rgb.put_pixel(x as u32, 0, Rgb(colour));
        }
        let area = Rect {
            left: 0,
            top: 0,
            right: 5,
            bottom: 1,
        };
        assert_eq!(
            luma_601(&opaque(&rgb), area).pixels,
            [76, 150, 29, 128, 255]
        );
    }

    /// Resizing a flat image keeps it flat, in both directions.
    #[test]
    fn resize_keeps_flat_images_flat() {
        for (width, height) in [(100, 70), (5, 3), (32, 200), (1, 1)] {
            let flat = Gray {
                width,
                height,
                pixels: vec![93; width * height],
            };
            assert_eq!(
                resize_bicubic(&flat, 32, 32),
                vec![93; 32 * 32],
                "{width}x{height}"
            );
        }
    }

    /// A 32×32 image is returned unchanged, as Pillow returns a copy.
    #[test]
    fn resize_to_same_size_is_identity() {
        let image = Gray {
            width: 32,
            height: 32,
            pixels: (0..1024).map(|i| (i * 7 % 256) as u8).collect(),
        };
        assert_eq!(resize_bicubic(&image, 32, 32), image.pixels);
    }

    /// Halving a 64-wide step edge gives exactly what Pillow 13 gives for
    /// `Image.new("L", (64, 1))` with the right half white, resized to (32, 1)
    /// bicubic (the kernel's overshoot is clipped at 0 and 255).
    #[test]
    fn resize_step_edge_matches_pillow() {
        let mut pixels = vec![0u8; 64];
        pixels[32..].fill(255);
        let step = Gray {
            width: 64,
            height: 1,
            pixels,
        };
        let mut expected = vec![0u8; 15];
        expected.extend([17, 238]);
        expected.extend([255; 15]);
        assert_eq!(resize_bicubic(&step, 32, 1), expected);
    }
}

#[cfg(test)]
mod crop_tests {
    use super::*;

    /// Box reduction averages blocks and bounds the longer side.
    #[test]
    fn box_reduce_averages_blocks() {
        let image = Gray {
            width: 4,
            height: 2,
            pixels: vec![0, 2, 10, 20, 4, 6, 30, 40],
        };
        let small = box_reduce(&image, 2);
        assert_eq!((small.width, small.height), (2, 1));
        assert_eq!(small.pixels, vec![3, 25]);
        let big = Gray {
            width: 1000,
            height: 10,
            pixels: vec![7; 10_000],
        };
        let reduced = box_reduce(&big, 256);
        assert!(reduced.width <= 256 && reduced.height >= 1);
        assert!(reduced.pixels.iter().all(|&p| p == 7));
    }

    /// A centred crop keeps the middle and at least one pixel.
    #[test]
    fn center_crop_keeps_the_middle() {
        let image = Gray {
            width: 4,
            height: 4,
            pixels: (0..16).collect(),
        };
        let c = center_crop(&image, 0.5);
        assert_eq!((c.width, c.height), (2, 2));
        assert_eq!(c.pixels, vec![5, 6, 9, 10]);
        assert_eq!(center_crop(&image, 0.0).pixels.len(), 1);
    }
}

#[cfg(test)]
mod fused_tests {
    use ::image::{GrayAlphaImage, GrayImage, LumaA, Rgb, RgbImage, Rgba, RgbaImage};

    use super::*;
    use crate::test_support::noise;

    /// Pillow's bicubic resize written the plain way: i64 sums, one
    /// weight vector per output, every index checked.
    fn reference_resize(image: &Gray, out_width: usize, out_height: usize) -> Vec<u8> {
        let convolve = |source: &[u8], start: usize, stride: usize, weights: &[i32]| {
            let sum = weights
                .iter()
                .enumerate()
                .fold(1i64 << (PRECISION_BITS - 1), |sum, (i, &w)| {
                    sum + i64::from(source[start + i * stride]) * i64::from(w)
                });
            sum.clamp(0, (255 << PRECISION_BITS) + 1) as u64 >> PRECISION_BITS
        };
        let clip = |v: u64| v.min(255) as u8;
        let horizontal = if image.width == out_width {
            image.clone()
        } else {
            let weights = precompute_weights(image.width, out_width);
            let mut pixels = Vec::new();
            for row in image.pixels.chunks_exact(image.width) {
                for (out, &start) in weights.starts.iter().enumerate() {
                    pixels.push(clip(convolve(row, start, 1, weights.of(out))));
                }
            }
            Gray {
                width: out_width,
                height: image.height,
                pixels,
            }
        };
        if horizontal.height == out_height {
            return horizontal.pixels;
        }
        let weights = precompute_weights(horizontal.height, out_height);
        let mut pixels = Vec::new();
        for (out, &start) in weights.starts.iter().enumerate() {
            for x in 0..horizontal.width {
                pixels.push(clip(convolve(
                    &horizontal.pixels,
                    start * horizontal.width + x,
                    horizontal.width,
                    weights.of(out),
                )));
            }
        }
        pixels
    }

    /// The normalisation step by step, each step over the whole image:
    /// what [`normalize_with_crops`] computes in one pass.
    fn reference_views(image: DynamicImage, fractions: &[f64]) -> Vec<Vec<u8>> {
        let opaque = Opaque::new(fill_transparency(image));
        let gray = luma_601(&opaque, trim_border(&opaque));
        let mut views = vec![reference_resize(&gray, CODE_SIDE, CODE_SIDE)];
        let small = box_reduce(&gray, CROP_BASE_SIDE);
        for &fraction in fractions {
            views.push(reference_resize(
                &center_crop(&small, fraction),
                CODE_SIDE,
                CODE_SIDE,
            ));
        }
        views
    }

    /// Sizes around the edge cases of the fast paths: 1, below and above
    /// 32 (the code side, also the luma block), odd, just past the crop
    /// base, and wide or tall enough for long windows and many box blocks.
    const SIZES: [(u32, u32); 14] = [
        (1, 1),
        (1, 40),
        (7, 3),
        (31, 33),
        (32, 32),
        (32, 45),
        (45, 32),
        (33, 97),
        (97, 61),
        (257, 13),
        (300, 511),
        (613, 259),
        (2049, 35),
        (37, 1541),
    ];

    /// The fused pass gives exactly the step-by-step results, crops
    /// included, for gray, gray+alpha, RGB and RGBA images of odd sizes
    /// filled with noise, with and without a border to trim.
    #[test]
    fn fused_normalisation_matches_the_step_by_step_one() {
        let fractions = [0.95, 0.9];
        for (index, &(width, height)) in SIZES.iter().enumerate() {
            let mut next = noise(index as u64 + 1);
            let framed = |x: u32, y: u32| x < width / 8 || y < height / 8;
            let rgb = RgbImage::from_fn(width, height, |x, y| {
                if framed(x, y) {
                    Rgb([250, 251, 249])
                } else {
                    Rgb([next(), next(), next()])
                }
            });
            let rgba = RgbaImage::from_fn(width, height, |x, y| {
                let Rgb([r, g, b]) = *rgb.get_pixel(x, y);
                Rgba([r, g, b, if framed(x, y) { 0 } else { next() }])
            });
            let gray = GrayImage::from_fn(width, height, |x, y| {
                ::image::Luma([if framed(x, y) { 3 } else { next() }])
            });
            let gray_alpha = GrayAlphaImage::from_fn(width, height, |x, y| {
                LumaA([gray.get_pixel(x, y)[0], next()])
            });
            for image in [
                DynamicImage::ImageRgb8(rgb.clone()),
                DynamicImage::ImageRgba8(rgba),
                DynamicImage::ImageLuma8(gray.clone()),
                DynamicImage::ImageLumaA8(gray_alpha),
            ] {
                let kind = format!("{:?} {width}x{height}", image.color());
                assert_eq!(
                    normalize_with_crops(
                        image.clone(),
                        Orientation::NoTransforms,
                        &fractions,
                        &Watch::none()
                    )
                    .expect("not stopped"),
                    reference_views(image, &fractions),
                    "{kind}"
                );
            }
        }
    }

    /// The resize alone gives the plain computation's pixels for noise,
    /// hard edges and flat areas, at sizes from 1 to 5000 wide: the long
    /// windows of wide images exercise the split weights' wrapping sums.
    #[test]
    fn resize_matches_the_plain_computation() {
        let mut sizes: Vec<(usize, usize)> = SIZES
            .iter()
            .map(|&(w, h)| (w as usize, h as usize))
            .collect();
        sizes.extend([(5000, 3), (3, 5000), (64, 64), (16, 2), (100, 100)]);
        for (index, (width, height)) in sizes.into_iter().enumerate() {
            let mut next = noise(100 + index as u64);
            let pixels = (0..width * height)
                .map(|i| match i % 7 {
                    0 | 1 => 255,
                    2 => 0,
                    _ => next(),
                })
                .collect();
            let image = Gray {
                width,
                height,
                pixels,
            };
            for (out_width, out_height) in [(32, 32), (32, 1), (1, 32), (7, 40)] {
                assert_eq!(
                    resize_bicubic(&image, out_width, out_height),
                    reference_resize(&image, out_width, out_height),
                    "{width}x{height} to {out_width}x{out_height}"
                );
            }
        }
    }

    /// The differing box computed the plain way: every row scanned whole,
    /// pixel by pixel.
    fn reference_differing_box(image: &Opaque, area: Rect, tolerance: u8) -> Option<Rect> {
        if area.left >= area.right || area.top >= area.bottom {
            return None;
        }
        let reference = image.row(area.top, area.left, area.left + 1);
        let differs = |pixel: &[u8]| {
            pixel
                .iter()
                .zip(reference)
                .any(|(value, border)| value.abs_diff(*border) > tolerance)
        };
        let mut found: Option<Rect> = None;
        for y in area.top..area.bottom {
            let pixels: Vec<&[u8]> = image
                .row(y, area.left, area.right)
                .chunks_exact(image.channels)
                .collect();
            let Some(first) = pixels.iter().position(|p| differs(p)) else {
                continue;
            };
            let last = pixels.iter().rposition(|p| differs(p)).expect("first");
            let (left, right) = (area.left + first, area.left + last + 1);
            found = Some(match found {
                None => Rect {
                    left,
                    top: y,
                    right,
                    bottom: y + 1,
                },
                Some(rect) => Rect {
                    left: rect.left.min(left),
                    top: rect.top,
                    right: rect.right.max(right),
                    bottom: y + 1,
                },
            });
        }
        found
    }

    /// The block-wise differing box equals the plain scan's, for gray and RGB
    /// images of odd sizes with sparse, clustered and edge-touching content,
    /// over whole images and inner areas, at tolerances 0, 8 and 16.
    #[test]
    fn differing_box_matches_the_plain_scan() {
        let mut next = noise(99);
        for &(width, height) in &SIZES {
            for density in [0u8, 1, 20, 255] {
                let rgb = RgbImage::from_fn(width, height, |x, y| {
                    let base = 100 + ((x + y) % 20) as u8;
                    if next() < density || (x * 7 + y * 3) % 101 == 0 {
                        Rgb([next(), base, next()])
                    } else {
                        Rgb([base, base, base])
                    }
                });
                let gray = DynamicImage::ImageRgb8(rgb.clone()).into_luma8();
                let (w, h) = (width as usize, height as usize);
                let areas = [
                    Rect {
                        left: 0,
                        top: 0,
                        right: w,
                        bottom: h,
                    },
                    Rect {
                        left: w / 3,
                        top: h / 4,
                        right: w - w / 5,
                        bottom: h - h / 7,
                    },
                ];
                for image in [
                    Opaque::new(DynamicImage::ImageRgb8(rgb)),
                    Opaque::new(DynamicImage::ImageLuma8(gray)),
                ] {
                    for area in areas {
                        for tolerance in [0, 8, 16] {
                            assert_eq!(
                                differing_box(&image, area, tolerance),
                                reference_differing_box(&image, area, tolerance),
                                "{width}x{height}, {} channels, density {density}, {area:?}, tolerance {tolerance}",
                                image.channels
                            );
                        }
                    }
                }
            }
        }
    }
}
