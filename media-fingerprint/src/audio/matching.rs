//! Aligning two Chromaprint vectors: where one sits in the other, and how many
//! of their bits differ there.
//!
//! Like Chromaprint's own matcher, items are compared by the popcount of their
//! XOR. Every relative offset with enough overlap is tried. When both vectors
//! are long, a coarse pass estimates each offset's bit error rate from a
//! sample of the overlapping items and the best few candidates are then
//! measured exactly, so the cost stays bounded for hours-long audio.

/// Least overlap, in items, for an offset to be considered (about 5 s). Over
/// fewer items an unrelated pair finds chance agreement too easily. Prints
/// shorter than this are compared over their whole length.
pub(super) const MIN_OVERLAP_ITEMS: usize = 40;

/// Item comparisons the coarse pass may spend over all offsets (about 10 ms);
/// below it the coarse pass is exact. Two 9-minute prints fit.
const COARSE_BUDGET: usize = 20_000_000;

/// Least items sampled per offset in the coarse pass, so short overlaps are
/// not judged on one or two items.
const MIN_COARSE_SAMPLES: usize = 32;

/// Offsets from the coarse pass measured exactly.
const CANDIDATES: usize = 8;

/// How `b` lines up best with `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Alignment {
    /// `b[i]` lines up with `a[i + offset]`.
    pub(super) offset: isize,
    /// `offset` refined to a fraction of an item from the error rates of its
    /// neighbours.
    pub(super) fine_offset: f64,
    /// Fraction of differing bits over the overlap.
    pub(super) bit_error_rate: f64,
    /// Items that overlap at `offset`.
    pub(super) overlap: usize,
}

/// The offset at which `b` agrees best with `a`, or `None` when either is empty.
pub(super) fn align(a: &[u32], b: &[u32]) -> Option<Alignment> {
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let min_overlap = MIN_OVERLAP_ITEMS.min(a.len()).min(b.len());
    // Offsets run from `b` starting (len_b - min_overlap) items before `a`
    // to `b` starting (len_a - min_overlap) items into `a`.
    let lowest = -(isize_of(b.len()) - isize_of(min_overlap));
    let highest = isize_of(a.len()) - isize_of(min_overlap);

    let stride = (a.len().saturating_mul(b.len()) / COARSE_BUDGET).max(1);
    let best = if stride == 1 {
        (lowest..=highest)
            .map(|k| exact(a, b, k))
            .min_by(|x, y| x.1.total_cmp(&y.1))
    } else {
        let mut coarse: Vec<(isize, f64)> = (lowest..=highest)
            .map(|k| (k, sampled(a, b, k, stride)))
            .collect();
        coarse.sort_by(|x, y| x.1.total_cmp(&y.1));
        coarse
            .iter()
            .take(CANDIDATES)
            .flat_map(|&(k, _)| (k - 2..=k + 2).filter(|k| (lowest..=highest).contains(k)))
            .map(|k| exact(a, b, k))
            .min_by(|x, y| x.1.total_cmp(&y.1))
    }?;
    let (offset, bit_error_rate, overlap) = best;

    let neighbour = |k: isize| (lowest..=highest).contains(&k).then(|| exact(a, b, k).1);
    let fine_offset = match (neighbour(offset - 1), neighbour(offset + 1)) {
        (Some(before), Some(after)) => offset as f64 + vertex(before, bit_error_rate, after),
        _ => offset as f64,
    };
    Some(Alignment {
        offset,
        fine_offset,
        bit_error_rate,
        overlap,
    })
}

/// Where the minimum of a parabola through three equally spaced points lies,
/// relative to the middle one, within half a step either way.
fn vertex(before: f64, middle: f64, after: f64) -> f64 {
    let curvature = before - 2.0 * middle + after;
    if curvature <= f64::EPSILON {
        return 0.0;
    }
    (0.5 * (before - after) / curvature).clamp(-0.5, 0.5)
}

/// The range of `b`'s indices that overlap `a` at offset `k`.
fn overlap_range(a_len: usize, b_len: usize, k: isize) -> std::ops::Range<usize> {
    let start = usize::try_from(-k).unwrap_or(0);
    let end = if k >= 0 {
        b_len.min(a_len.saturating_sub(k.unsigned_abs()))
    } else {
        b_len.min(a_len.saturating_add(k.unsigned_abs()))
    };
    start..end.max(start)
}

/// Offset, bit error rate and overlap at offset `k`, over every overlapping item.
fn exact(a: &[u32], b: &[u32], k: isize) -> (isize, f64, usize) {
    let range = overlap_range(a.len(), b.len(), k);
    let n = range.len();
    if n == 0 {
        return (k, 1.0, 0);
    }
    let a_start = range.start.wrapping_add_signed(k);
    let bits: u64 = a[a_start..a_start + n]
        .iter()
        .zip(&b[range])
        .map(|(x, y)| u64::from((x ^ y).count_ones()))
        .sum();
    (k, rate(bits, n), n)
}

/// Bit error rate at offset `k` estimated from every `stride`-th overlapping
/// item (more densely on short overlaps).
fn sampled(a: &[u32], b: &[u32], k: isize, stride: usize) -> f64 {
    let range = overlap_range(a.len(), b.len(), k);
    let step = stride.min(range.len() / MIN_COARSE_SAMPLES).max(1);
    let mut bits = 0u64;
    let mut items = 0usize;
    for i in range.step_by(step) {
        bits += u64::from((a[i.wrapping_add_signed(k)] ^ b[i]).count_ones());
        items += 1;
    }
    rate(bits, items)
}

fn rate(bits: u64, items: usize) -> f64 {
    if items == 0 {
        return 1.0;
    }
    bits as f64 / (32.0 * items as f64)
}

/// Vector lengths fit in `isize`: no allocation can be longer.
fn isize_of(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random print.
    fn noise(len: usize, seed: u32) -> Vec<u32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                state
            })
            .collect()
    }

    /// An excerpt is found at its offset with no bit errors, in both directions.
    #[test]
    fn excerpt_is_found_at_its_offset() {
        let a = noise(1000, 1);
        let b = a[300..500].to_vec();
        let found = align(&a, &b).expect("aligned");
        assert_eq!(found.offset, 300);
        assert_eq!(found.bit_error_rate, 0.0);
        assert_eq!(found.overlap, 200);
        let back = align(&b, &a).expect("aligned");
        assert_eq!(back.offset, -300);
        assert_eq!(back.bit_error_rate, 0.0);
    }

    /// Unrelated prints are about half their bits apart.
    #[test]
    fn unrelated_prints_are_far_apart() {
        let found = align(&noise(500, 1), &noise(400, 2)).expect("aligned");
        assert!(found.bit_error_rate > 0.4, "{found:?}");
    }

    /// Long prints take the sampled path and still find the exact offset.
    #[test]
    fn long_prints_are_aligned_by_sampling() {
        let a = noise(12_000, 3);
        let mut b = a[5_000..11_000].to_vec();
        // Flip one bit in each item, as a light re-encode would.
        for (i, item) in b.iter_mut().enumerate() {
            *item ^= 1 << (i % 10 * 3);
        }
        assert!(
            a.len() * b.len() / COARSE_BUDGET > 0,
            "takes the sampled path"
        );
        let found = align(&a, &b).expect("aligned");
        assert_eq!(found.offset, 5_000);
        assert!((found.bit_error_rate - 1.0 / 32.0).abs() < 1e-9);
    }

    /// Empty prints cannot be aligned; tiny ones are compared whole.
    #[test]
    fn empty_and_tiny_prints() {
        assert_eq!(align(&[], &[1, 2, 3]), None);
        let found = align(&[7, 8, 9], &[8]).expect("aligned");
        assert_eq!(found.offset, 1);
        assert_eq!(found.bit_error_rate, 0.0);
    }

    /// The overlap range is right for offsets on both sides and past the ends.
    #[test]
    fn overlap_ranges() {
        assert_eq!(overlap_range(10, 4, 0), 0..4);
        assert_eq!(overlap_range(10, 4, 8), 0..2);
        assert_eq!(overlap_range(10, 4, -2), 2..4);
        assert_eq!(overlap_range(10, 4, 20), 0..0);
        assert_eq!(overlap_range(10, 4, -20), 20..20);
    }
}
