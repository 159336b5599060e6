//! The two inner loops of image normalisation, the 601-2 luma of a row and
//! the fixed-point dot product of Pillow's horizontal bicubic pass, in a
//! portable form and, where the CPU has AVX2, an AVX2 form chosen at run
//! time through `pulp` (safe wrappers over the intrinsics).
//!
//! Both forms are exact integer arithmetic and give the same results; the
//! tests below hold them to each other and to the per-pixel formulas.

/// Which form of the kernels runs.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Kernels {
    /// Plain Rust, vectorised by the compiler for baseline x86-64 (SSE2) or
    /// whatever the target is.
    Portable,
    /// AVX2, on x86-64 CPUs that have it.
    #[cfg(target_arch = "x86_64")]
    Avx2(pulp::x86::V3),
}

impl Kernels {
    /// The fastest form this CPU runs.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if let Some(simd) = pulp::x86::V3::try_new() {
            return Self::Avx2(simd);
        }
        Self::Portable
    }

    /// Runs `op` compiled for these kernels' instruction set, so that the
    /// loops around the kernels are vectorised for it too.
    pub(crate) fn run<Op: pulp::WithSimd>(self, op: Op) -> Op::Output {
        match self {
            Self::Portable => op.with_simd(pulp::Scalar::new()),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(simd) => pulp::Simd::vectorize(simd, op),
        }
    }

    /// The 601-2 luma of `out.len()` RGB pixels read from `samples` (three
    /// bytes each, at least `3 * out.len()` of them), as [`luma_of`] computes it.
    #[inline(always)]
    pub(crate) fn luma_rgb(self, samples: &[u8], out: &mut [i16]) {
        let done = match self {
            Self::Portable => 0,
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(simd) => avx2::luma_rgb(simd, samples, out),
        };
        portable::luma_rgb(&samples[3 * done..], &mut out[done..]);
    }

    /// Asks the CPU to start loading `bytes` into cache, for data the next
    /// step reads: the decoded image, read once row by row, is mostly out of
    /// cache, and fetching the next row while this one is computed hides the
    /// wait. Only a hint; it changes no result.
    #[inline(always)]
    pub(crate) fn prefetch(self, bytes: &[u8]) {
        match self {
            Self::Portable => {}
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(simd) => {
                for line in bytes.chunks(64) {
                    simd.sse
                        ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast());
                }
            }
        }
    }

    /// `(Σ s·high, Σ s·low)` modulo 2^32, for three slices of one length, a
    /// multiple of [`DOT_BLOCK`].
    #[inline(always)]
    pub(crate) fn dot(self, samples: &[i16], high: &[i16], low: &[i16]) -> (i32, i32) {
        match self {
            Self::Portable => portable::dot(samples, high, low),
            #[cfg(target_arch = "x86_64")]
            Self::Avx2(simd) => avx2::dot(simd, samples, high, low),
        }
    }
}

/// Samples per block of [`Kernels::dot`]: one AVX2 vector, two SSE2 ones.
pub(crate) const DOT_BLOCK: usize = 16;

/// Pillow's 601-2 luma of one RGB pixel: `L = R·299/1000 + G·587/1000 +
/// B·114/1000` in 16-bit fixed point, rounded.
pub(crate) fn luma_of(pixel: &[u8]) -> u8 {
    let luma = u32::from(pixel[0]) * 19595
        + u32::from(pixel[1]) * 38470
        + u32::from(pixel[2]) * 7471
        + 0x8000;
    // Cannot truncate: the weights sum to 65536, so luma >> 16 <= 255.
    (luma >> 16) as u8
}

mod portable {
    use super::{DOT_BLOCK, luma_of};

    /// Pixels per block of the vectorised luma conversion.
    const LUMA_BLOCK: usize = 32;

    #[inline(always)]
    pub(super) fn luma_rgb(samples: &[u8], out: &mut [i16]) {
        let mut outs = out.chunks_exact_mut(LUMA_BLOCK);
        let mut blocks = samples.chunks_exact(3 * LUMA_BLOCK);
        for (out, block) in (&mut outs).zip(&mut blocks) {
            let block: &[u8; 3 * LUMA_BLOCK] = block
                .try_into()
                .expect("chunks_exact yields blocks of 32 pixels");
            luma_block(block, out);
        }
        for (value, pixel) in outs
            .into_remainder()
            .iter_mut()
            .zip(blocks.remainder().chunks_exact(3))
        {
            *value = i16::from(luma_of(pixel));
        }
    }

    /// The luma of 32 interleaved RGB pixels.
    ///
    /// Baseline x86-64 (SSE2) has no byte shuffle, so a loop over RGB
    /// triples stays scalar. Interleaving the two halves of the block byte by
    /// byte (`punpcklbw`/`punpckhbw`) moves byte `k` to `2k mod 95`; five
    /// such shuffles move byte `3i + c` to `32c + i` (as `32 · 3 ≡ 1 mod
    /// 95`), which splits the block into its red, green and blue planes. The
    /// arithmetic on planes then vectorises, and is [`luma_of`]'s exactly.
    #[inline(always)]
    fn luma_block(block: &[u8; 3 * LUMA_BLOCK], out: &mut [i16]) {
        // Written out rather than looped, so that the compiler keeps the
        // block in registers instead of copying it between passes.
        let (mut planes, mut shuffled) = ([0u8; 3 * LUMA_BLOCK], [0u8; 3 * LUMA_BLOCK]);
        interleave_halves(block, &mut shuffled);
        interleave_halves(&shuffled, &mut planes);
        interleave_halves(&planes, &mut shuffled);
        interleave_halves(&shuffled, &mut planes);
        interleave_halves(&planes, &mut shuffled);
        let planes = shuffled;
        let (red, rest) = planes.split_at(LUMA_BLOCK);
        let (green, blue) = rest.split_at(LUMA_BLOCK);
        for (i, value) in out.iter_mut().enumerate().take(LUMA_BLOCK) {
            let luma = u32::from(red[i]) * 19595
                + u32::from(green[i]) * 38470
                + u32::from(blue[i]) * 7471
                + 0x8000;
            // Cannot truncate: the weights sum to 65536, so luma >> 16 <= 255.
            *value = (luma >> 16) as i16;
        }
    }

    /// `out` = the bytes of the first and second half of `block`, alternately.
    #[inline(always)]
    fn interleave_halves(block: &[u8; 3 * LUMA_BLOCK], out: &mut [u8; 3 * LUMA_BLOCK]) {
        let (first, second) = block.split_at(3 * LUMA_BLOCK / 2);
        for (pair, (&a, &b)) in out.chunks_exact_mut(2).zip(first.iter().zip(second)) {
            pair[0] = a;
            pair[1] = b;
        }
    }

    /// Summing each block of 32 on its own is what lets the compiler use
    /// `pmaddwd` (eight 16-bit products summed in pairs) on baseline x86-64;
    /// a single running sum would keep one accumulator per lane and multiply
    /// half as fast. A last block of 16 is summed the same way.
    #[inline(always)]
    pub(super) fn dot(samples: &[i16], high: &[i16], low: &[i16]) -> (i32, i32) {
        fn block_dot(a: &[i16], b: &[i16]) -> i32 {
            a.iter().zip(b).fold(0i32, |sum, (&x, &y)| {
                sum.wrapping_add(i32::from(x) * i32::from(y))
            })
        }
        const PAIR: usize = 2 * DOT_BLOCK;
        let (mut high_sum, mut low_sum) = (0i32, 0i32);
        let blocks = samples
            .chunks_exact(PAIR)
            .zip(high.chunks_exact(PAIR).zip(low.chunks_exact(PAIR)));
        for (s, (h, l)) in blocks {
            high_sum = high_sum.wrapping_add(block_dot(s, h));
            low_sum = low_sum.wrapping_add(block_dot(s, l));
        }
        let done = samples.len() / PAIR * PAIR;
        if samples.len() > done {
            let last = done..samples.len();
            let s = &samples[last.clone()];
            high_sum = high_sum.wrapping_add(block_dot(s, &high[last.clone()]));
            low_sum = low_sum.wrapping_add(block_dot(s, &low[last]));
        }
        (high_sum, low_sum)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::__m256i;

    use pulp::x86::V3;

    use super::DOT_BLOCK;

    /// Bytes one step of [`luma_rgb`] reads: two loads of 32 bytes, the
    /// second 24 bytes after the first.
    const LUMA_READ: usize = 24 + 32;

    /// Pixels one step of [`luma_rgb`] converts.
    const LUMA_STEP: usize = 16;

    /// Converts whole steps of 16 pixels while a step's reads stay inside
    /// `samples`; returns how many pixels it converted, the rest being left
    /// to the portable loop.
    #[inline(always)]
    pub(super) fn luma_rgb(simd: V3, samples: &[u8], out: &mut [i16]) -> usize {
        let mut done = 0;
        for out in out.chunks_exact_mut(LUMA_STEP) {
            let Some(bytes) = samples.get(3 * done..3 * done + LUMA_READ) else {
                break;
            };
            let first = luma8(simd, &bytes[..32]);
            let second = luma8(simd, &bytes[24..]);
            // `packs` works within 128-bit halves, giving the 64-bit groups
            // first[0..4], second[0..4], first[4..8], second[4..8]; the
            // permute puts them in order. The values are 0..=255, so the
            // saturation never applies.
            let packed = simd.avx2._mm256_permute4x64_epi64::<0b11_01_10_00>(
                simd.avx2._mm256_packs_epi32(first, second),
            );
            let values: [i16; LUMA_STEP] = pulp::cast(packed);
            out.copy_from_slice(&values);
            done += LUMA_STEP;
        }
        done
    }

    /// The luma of the 8 pixels in the first 24 of `bytes` (32 long), one
    /// per 32-bit lane.
    ///
    /// The dword permute gives each 128-bit half four whole pixels; byte
    /// shuffles within the halves then form 16-bit pairs `(R, G)` and
    /// `(G, B)` per pixel, and `pmaddwd` with `(19595, 19235)` and
    /// `(19235, 7471)` sums them to `19595 R + 38470 G + 7471 B` (38470
    /// itself does not fit a signed 16-bit weight).
    #[inline(always)]
    fn luma8(simd: V3, bytes: &[u8]) -> __m256i {
        const Z: i8 = -128; // a shuffle index with the top bit set gives 0
        let bytes: [u8; 32] = bytes.try_into().expect("32 bytes");
        let v: __m256i = pulp::cast(bytes);
        let halves = simd.avx2._mm256_permutevar8x32_epi32(
            v,
            pulp::cast::<[i32; 8], __m256i>([0, 1, 2, 3, 3, 4, 5, 6]),
        );
        let rg_index: [i8; 16] = [0, Z, 1, Z, 3, Z, 4, Z, 6, Z, 7, Z, 9, Z, 10, Z];
        let gb_index: [i8; 16] = [1, Z, 2, Z, 4, Z, 5, Z, 7, Z, 8, Z, 10, Z, 11, Z];
        let both = |index: [i8; 16]| -> __m256i {
            let mut full = [0i8; 32];
            full[..16].copy_from_slice(&index);
            full[16..].copy_from_slice(&index);
            pulp::cast(full)
        };
        let rg = simd.avx2._mm256_shuffle_epi8(halves, both(rg_index));
        let gb = simd.avx2._mm256_shuffle_epi8(halves, both(gb_index));
        let sum = simd.avx2._mm256_add_epi32(
            simd.avx2._mm256_madd_epi16(rg, pairs(19595, 19235)),
            simd.avx2._mm256_madd_epi16(gb, pairs(19235, 7471)),
        );
        let rounded = simd
            .avx2
            ._mm256_add_epi32(sum, pulp::cast::<[i32; 8], __m256i>([0x8000; 8]));
        simd.avx2._mm256_srli_epi32::<16>(rounded)
    }

    /// The pair of 16-bit weights `(a, b)` repeated over a vector.
    #[inline(always)]
    fn pairs(a: i16, b: i16) -> __m256i {
        pulp::cast::<[i16; 16], __m256i>(std::array::from_fn(|i| if i % 2 == 0 { a } else { b }))
    }

    /// One `pmaddwd` and one add per 16 samples and weights; the 32-bit lanes
    /// are added up once at the end. The products are below 2^20 and the
    /// pair sums below 2^21, so no lane sum differs from the portable one
    /// modulo 2^32.
    #[inline(always)]
    pub(super) fn dot(simd: V3, samples: &[i16], high: &[i16], low: &[i16]) -> (i32, i32) {
        let load = |block: &[i16]| -> __m256i {
            let block: [i16; DOT_BLOCK] = block.try_into().expect("blocks of 16");
            pulp::cast(block)
        };
        let zero: __m256i = pulp::cast([0i32; 8]);
        let (mut high_sum, mut low_sum) = (zero, zero);
        let blocks = samples.chunks_exact(DOT_BLOCK).zip(
            high.chunks_exact(DOT_BLOCK)
                .zip(low.chunks_exact(DOT_BLOCK)),
        );
        for (s, (h, l)) in blocks {
            let s = load(s);
            high_sum = simd
                .avx2
                ._mm256_add_epi32(high_sum, simd.avx2._mm256_madd_epi16(s, load(h)));
            low_sum = simd
                .avx2
                ._mm256_add_epi32(low_sum, simd.avx2._mm256_madd_epi16(s, load(l)));
        }
        let total = |lanes: __m256i| {
            let lanes: [i32; 8] = pulp::cast(lanes);
            lanes.iter().fold(0i32, |sum, &x| sum.wrapping_add(x))
        };
        (total(high_sum), total(low_sum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::noise;

    /// Every form of the kernels this machine runs, the portable one first.
    fn all_kernels() -> Vec<Kernels> {
        let mut all = vec![Kernels::Portable];
        match Kernels::detect() {
            Kernels::Portable => {
                println!("no AVX2 on this CPU: only the portable kernels are tested");
            }
            #[cfg(target_arch = "x86_64")]
            avx2 => all.push(avx2),
        }
        all
    }

    /// The luma of every row length up to 100, from rows that end exactly
    /// at the last pixel, equals the per-pixel formula in every form.
    #[test]
    fn luma_rows_equal_the_formula() {
        let mut next = noise(7);
        for kernels in all_kernels() {
            for len in 0..100 {
                let samples: Vec<u8> = (0..3 * len).map(|_| next()).collect();
                let mut out = vec![-1i16; len];
                kernels.luma_rgb(&samples, &mut out);
                let expected: Vec<i16> = samples
                    .chunks_exact(3)
                    .map(|p| i16::from(luma_of(p)))
                    .collect();
                assert_eq!(out, expected, "{kernels:?}, {len} pixels");
            }
        }
    }

    /// Extreme pixels (black, white, pure colours) convert exactly too.
    #[test]
    fn luma_of_extremes() {
        let pixels: [[u8; 3]; 8] = [
            [0, 0, 0],
            [255, 255, 255],
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 0],
            [0, 255, 255],
            [255, 0, 255],
        ];
        // Pillow's `convert("L")` of these colours.
        let expected: [i16; 8] = [0, 255, 76, 150, 29, 226, 179, 105];
        for (pixel, &luma) in pixels.iter().zip(&expected) {
            assert_eq!(i16::from(luma_of(pixel)), luma, "{pixel:?}");
        }
        let samples: Vec<u8> = pixels.iter().cycle().take(64).flatten().copied().collect();
        for kernels in all_kernels() {
            let mut out = vec![0i16; 64];
            kernels.luma_rgb(&samples, &mut out);
            for (value, (pixel, &luma)) in out.iter().zip(pixels.iter().zip(&expected).cycle()) {
                assert_eq!(*value, luma, "{kernels:?} {pixel:?}");
            }
        }
    }

    /// The dot products equal the plain sums for weights over the whole
    /// range the horizontal pass uses (high halves to ±2^12, low to 2^11).
    #[test]
    fn dots_equal_the_plain_sums() {
        let mut next = noise(11);
        let mut weight = |range: i32| {
            let x = i32::from(next()) << 8 | i32::from(next());
            (x % (2 * range)) - range
        };
        for kernels in all_kernels() {
            for blocks in 0..30 {
                let len = blocks * DOT_BLOCK;
                let samples: Vec<i16> = (0..len).map(|i| ((i * 37) % 256) as i16).collect();
                let high: Vec<i16> = (0..len).map(|_| weight(1 << 12) as i16).collect();
                let low: Vec<i16> = (0..len).map(|_| weight(1 << 11).abs() as i16).collect();
                let plain = |weights: &[i16]| {
                    samples.iter().zip(weights).fold(0i32, |sum, (&s, &w)| {
                        sum.wrapping_add(i32::from(s) * i32::from(w))
                    })
                };
                assert_eq!(
                    kernels.dot(&samples, &high, &low),
                    (plain(&high), plain(&low)),
                    "{kernels:?}, {len} samples"
                );
            }
        }
    }
}
