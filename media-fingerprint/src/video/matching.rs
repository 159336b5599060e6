//! Finding where one video sits in another by aligning their frame
//! signature sequences.
//!
//! Two frames are compared by the fraction of the 380 ternary elements that
//! differ. Frames of unrelated content agree on about a third of the
//! elements by chance (each value is about equally likely), so their distance
//! is near 0.67; the same frame after re-encoding or scaling differs in a
//! few percent of elements. Two sequences are compared at every relative
//! offset: first on a few dozen frames spread over the second sequence, then
//! over the whole overlap for the best few offsets.

use super::signature::{ELEMENTS, SAME};

/// Words of one bit plane of a packed signature.
const WORDS: usize = ELEMENTS.div_ceil(64);

/// Frames of the shorter sequence used in the coarse search.
const COARSE_FRAMES: usize = 48;

/// Best coarse offsets refined over the full overlap.
const REFINED_OFFSETS: usize = 8;

/// Added to the distance of an offset for each share of the possible
/// overlap it leaves out, so that among near-equal fits the one covering
/// more wins. Without it, content that repeats (a slow pan that loops every
/// few seconds, as in the shared clips) can align on a short overlap at the
/// ends as well as on the whole: at the same distance, by a hair's breadth.
const UNCOVERED_PENALTY: f64 = 0.05;

/// Overlap needed before an offset counts, in frames (5 s at 5 fps), unless
/// one of the sequences is shorter than that, in which case all of it must
/// overlap. Short overlaps between unrelated videos can look alike by chance.
pub(crate) const MIN_OVERLAP_FRAMES: usize = 25;

/// A frame signature packed into two bit planes: "greater" and "less".
/// Two signatures agree on an element when both planes agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Packed {
    /// Elements with value 2.
    greater: [u64; WORDS],
    /// Elements with value 0.
    less: [u64; WORDS],
}

impl Packed {
    /// Packs a signature of [`ELEMENTS`] values in 0..=2; other lengths are
    /// packed as far as they go (a malformed stored print then matches
    /// poorly rather than panicking).
    pub(crate) fn new(signature: &[i8]) -> Self {
        let mut packed = Self {
            greater: [0; WORDS],
            less: [0; WORDS],
        };
        for (i, &value) in signature.iter().take(ELEMENTS).enumerate() {
            let bit = 1u64 << (i % 64);
            if value > SAME {
                packed.greater[i / 64] |= bit;
            } else if value < SAME {
                packed.less[i / 64] |= bit;
            }
        }
        packed
    }

    /// Number of elements on which the two signatures differ.
    pub(crate) fn mismatches(&self, other: &Self) -> u32 {
        (0..WORDS)
            .map(|w| {
                ((self.greater[w] ^ other.greater[w]) | (self.less[w] ^ other.less[w])).count_ones()
            })
            .sum()
    }
}

/// The best alignment of `b` against `a`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Alignment {
    /// Index in `a` of `b`'s first frame (negative if `b` starts earlier).
    pub(crate) offset: i64,
    /// Mean fraction of differing elements over the overlap, 0 to 1.
    pub(crate) distance: f64,
    /// Frames that overlap at this offset.
    pub(crate) overlap: usize,
}

/// Finds the offset of `b` in `a` with the smallest mean frame distance
/// (nudged towards larger overlaps by [`UNCOVERED_PENALTY`]), or `None` when
/// the sequences cannot overlap enough.
pub(crate) fn align(a: &[Packed], b: &[Packed]) -> Option<Alignment> {
    let needed = MIN_OVERLAP_FRAMES.min(a.len()).min(b.len());
    if needed == 0 {
        return None;
    }
    // Offsets o with an overlap of at least `needed`: b[j] faces a[o + j].
    let lowest = needed as i64 - b.len() as i64;
    let highest = a.len() as i64 - needed as i64;

    let possible = a.len().min(b.len()) as f64;
    let score = |distance: f64, overlap: usize| {
        distance + UNCOVERED_PENALTY * (1.0 - overlap as f64 / possible)
    };

    // Coarse pass: frames of b spread evenly, compared at every offset.
    let step = (b.len() / COARSE_FRAMES).max(1);
    let probes: Vec<usize> = (0..b.len()).step_by(step).collect();
    let mut coarse: Vec<(f64, i64)> = (lowest..=highest)
        .filter_map(|offset| {
            let distance = mean_distance(a, b, offset, probes.iter().copied())?;
            let overlap = overlap_range(a.len(), b.len(), offset).len();
            Some((score(distance, overlap), offset))
        })
        .collect();
    coarse.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));

    // Fine pass: all overlapping frames, at the best coarse offsets. Every
    // offset was tried above, so no neighbours need trying here.
    let mut best: Option<(f64, Alignment)> = None;
    for &(_, offset) in coarse.iter().take(REFINED_OFFSETS) {
        let overlap = overlap_range(a.len(), b.len(), offset);
        let Some(distance) = mean_distance(a, b, offset, overlap.clone()) else {
            continue;
        };
        let candidate = Alignment {
            offset,
            distance,
            overlap: overlap.len(),
        };
        let candidate_score = score(distance, candidate.overlap);
        if best.is_none_or(|(s, _)| candidate_score < s) {
            best = Some((candidate_score, candidate));
        }
    }
    best.map(|(_, alignment)| alignment)
}

/// Indices `j` of `b` that face a frame of `a` at `offset`.
fn overlap_range(a_len: usize, b_len: usize, offset: i64) -> std::ops::Range<usize> {
    let start = (-offset).max(0) as usize;
    let end = (a_len as i64 - offset).clamp(0, b_len as i64) as usize;
    start..end.max(start)
}

/// Mean fraction of differing elements between `b[j]` and `a[offset + j]`
/// over the `js` that face a frame of `a`.
fn mean_distance(
    a: &[Packed],
    b: &[Packed],
    offset: i64,
    js: impl Iterator<Item = usize>,
) -> Option<f64> {
    let mut total = 0u64;
    let mut count = 0u64;
    for j in js {
        let i = offset + j as i64;
        if i < 0 {
            continue;
        }
        let (Some(x), Some(y)) = (a.get(i as usize), b.get(j)) else {
            continue;
        };
        total += u64::from(x.mismatches(y));
        count += 1;
    }
    (count > 0).then(|| total as f64 / (count as f64 * ELEMENTS as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pseudo-random signature from a seed.
    fn signature(seed: u64) -> Vec<i8> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..ELEMENTS)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) % 3) as i8
            })
            .collect()
    }

    /// Packing keeps exactly the differences between two signatures.
    #[test]
    fn packed_mismatches_count_differing_elements() {
        let x = signature(1);
        let mut y = x.clone();
        y[0] = (y[0] + 1) % 3;
        y[379] = (y[379] + 2) % 3;
        assert_eq!(Packed::new(&x).mismatches(&Packed::new(&x)), 0);
        assert_eq!(Packed::new(&x).mismatches(&Packed::new(&y)), 2);
        let z = signature(2);
        let random = Packed::new(&x).mismatches(&Packed::new(&z));
        assert!((200..300).contains(&random), "{random}");
    }

    /// An excerpt is found at its offset with distance zero; unrelated
    /// sequences are far apart.
    #[test]
    fn finds_an_excerpt() {
        let a: Vec<Packed> = (0..200).map(|i| Packed::new(&signature(i))).collect();
        let b = a[70..130].to_vec();
        let found = align(&a, &b).expect("overlaps");
        assert_eq!(found.offset, 70);
        assert_eq!(found.overlap, 60);
        assert!(found.distance.abs() < f64::EPSILON);

        let c: Vec<Packed> = (1000..1100).map(|i| Packed::new(&signature(i))).collect();
        let unrelated = align(&a, &c).expect("overlaps");
        assert!(unrelated.distance > 0.5, "{}", unrelated.distance);
    }

    /// Empty sequences have no alignment.
    #[test]
    fn empty_sequences_do_not_align() {
        let a = vec![Packed::new(&signature(1))];
        assert_eq!(align(&a, &[]), None);
        assert_eq!(align(&[], &a), None);
    }
}
