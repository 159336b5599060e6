//! Frame signatures in the form of the MPEG-7 video signature tool (ISO/IEC
//! 15938-3 Amd 4): 380 ternary elements per frame, each the quantised
//! difference between the mean luminance of two sub-regions of a 32x32 grid of
//! blocks laid over the frame.
//!
//! Written from the published descriptions of the tool (Paschalakis et al.,
//! "The MPEG-7 Video Signature Tools for Content Identification", IEEE TCSVT
//! 2012; Iwamoto et al., FIT 2011; NEC's patents on the image signature): the
//! frame's luminance is averaged over a 32x32 grid; each element compares two
//! sub-regions "configured at a variety of scales, shapes and positions"; the
//! differences are quantised to three values with a threshold per element
//! type, chosen from the frame's own differences so that about a third of the
//! elements of each type are "no significant difference". Values are written
//! as 0, 1, 2 with 1 meaning "no significant difference", as ffmpeg's
//! `signature` filter writes them and as iscc-sdk feeds them to the
//! Video-Code.
//!
//! The standard's own table of the 380 region pairs is not in any published
//! description we could obtain (it is in the ISO text and in GPL code we may
//! not use), so [`layout`] defines our own 380 pairs with the published
//! structure. Signatures from this module therefore compare with each other,
//! not element for element with other implementations of the standard.

use std::sync::OnceLock;

/// Elements in one frame signature.
pub(crate) const ELEMENTS: usize = 380;
/// Blocks per side of the luminance grid.
pub(crate) const GRID: usize = 32;

/// Value of an element whose two regions do not differ significantly.
pub(crate) const SAME: i8 = 1;

/// A rectangle of grid blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rect {
    /// Left block column.
    x: u8,
    /// Top block row.
    y: u8,
    /// Width in blocks.
    w: u8,
    /// Height in blocks.
    h: u8,
}

impl Rect {
    /// A `w`x`h` rectangle at block (`x`, `y`).
    const fn new(x: usize, y: usize, w: usize, h: usize) -> Self {
        // Every rectangle lies in the 32x32 grid, so the casts are lossless.
        Self {
            x: x as u8,
            y: y as u8,
            w: w as u8,
            h: h as u8,
        }
    }

    /// Number of blocks covered.
    fn area(self) -> i64 {
        i64::from(self.w) * i64::from(self.h)
    }
}

/// A sub-region: a rectangle, optionally with a rectangular hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    /// The outer rectangle.
    rect: Rect,
    /// Blocks of `rect` left out (a ring when set).
    hole: Option<Rect>,
}

impl Region {
    /// A plain rectangular region.
    const fn rect(x: usize, y: usize, w: usize, h: usize) -> Self {
        Self {
            rect: Rect::new(x, y, w, h),
            hole: None,
        }
    }

    /// Number of blocks covered.
    fn area(self) -> i64 {
        self.rect.area() - self.hole.map_or(0, Rect::area)
    }
}

/// One element: the difference between the mean luminance of `a` and `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    /// First region.
    a: Region,
    /// Second region.
    b: Region,
}

/// The elements in signature order, and where each type (group quantised
/// with one threshold) ends. All elements of a type have regions of the same
/// areas, so their differences are on one scale.
struct Layout {
    /// The 380 elements.
    elements: Vec<Element>,
    /// End index (exclusive) of each type, in order.
    type_ends: Vec<usize>,
}

/// Our layout of the 380 elements, built once.
///
/// Coarse to fine: halves and quadrants of the frame; neighbouring and
/// diagonal 8x8-block squares; neighbouring 4x4-block squares; horizontal and
/// vertical bands; a 4x4-block square against the ring around it; and
/// neighbouring 2x2-block squares on a sparse lattice of rows and columns.
fn layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| {
        let mut elements = Vec::with_capacity(ELEMENTS);
        let mut type_ends = Vec::new();
        let end_type = |elements: &Vec<Element>, ends: &mut Vec<usize>| ends.push(elements.len());
        let pair = |a: Region, b: Region| Element { a, b };

        // Squares of side `s` blocks on an n x n lattice: right and down
        // neighbours, and with `diagonals` both diagonal neighbours.
        let lattice = |elements: &mut Vec<Element>, s: usize, diagonals: bool| {
            let n = GRID / s;
            for y in 0..n {
                for x in 0..n {
                    let here = Region::rect(x * s, y * s, s, s);
                    if x + 1 < n {
                        elements.push(pair(here, Region::rect((x + 1) * s, y * s, s, s)));
                    }
                    if y + 1 < n {
                        elements.push(pair(here, Region::rect(x * s, (y + 1) * s, s, s)));
                    }
                    if diagonals && x + 1 < n && y + 1 < n {
                        elements.push(pair(here, Region::rect((x + 1) * s, (y + 1) * s, s, s)));
                        elements.push(pair(
                            Region::rect((x + 1) * s, y * s, s, s),
                            Region::rect(x * s, (y + 1) * s, s, s),
                        ));
                    }
                }
            }
        };

        // Type 0: 16x16-block quadrants, neighbours and diagonals (6).
        lattice(&mut elements, 16, true);
        end_type(&elements, &mut type_ends);
        // Type 1: 8x8-block squares, neighbours and diagonals (42).
        lattice(&mut elements, 8, true);
        end_type(&elements, &mut type_ends);
        // Type 2: 4x4-block squares, neighbours (112).
        lattice(&mut elements, 4, false);
        end_type(&elements, &mut type_ends);
        // Type 3: neighbouring 4-block-wide bands across the frame (14).
        for i in 0..7 {
            elements.push(pair(
                Region::rect(0, i * 4, GRID, 4),
                Region::rect(0, i * 4 + 4, GRID, 4),
            ));
            elements.push(pair(
                Region::rect(i * 4, 0, 4, GRID),
                Region::rect(i * 4 + 4, 0, 4, GRID),
            ));
        }
        end_type(&elements, &mut type_ends);
        // Type 4: neighbouring 2-block-wide bands across the frame (30).
        for i in 0..15 {
            elements.push(pair(
                Region::rect(0, i * 2, GRID, 2),
                Region::rect(0, i * 2 + 2, GRID, 2),
            ));
            elements.push(pair(
                Region::rect(i * 2, 0, 2, GRID),
                Region::rect(i * 2 + 2, 0, 2, GRID),
            ));
        }
        end_type(&elements, &mut type_ends);
        // Type 5: a 4x4-block square against the 12x12 ring around it, for
        // the 36 squares of the 8x8 lattice that have a full ring.
        for y in 1..7 {
            for x in 1..7 {
                let centre = Rect::new(x * 4, y * 4, 4, 4);
                let ring = Region {
                    rect: Rect::new(x * 4 - 4, y * 4 - 4, 12, 12),
                    hole: Some(centre),
                };
                elements.push(pair(
                    Region {
                        rect: centre,
                        hole: None,
                    },
                    ring,
                ));
            }
        }
        end_type(&elements, &mut type_ends);
        // Type 6: 2x2-block squares on rows and columns 1, 4, 7, 10 and 13 of
        // the 16x16 lattice, against their right (or lower) neighbour,
        // leaving out the pairs at the frame's edge (140).
        for &line in &[1usize, 4, 7, 10, 13] {
            for along in 1..15 {
                elements.push(pair(
                    Region::rect(along * 2, line * 2, 2, 2),
                    Region::rect(along * 2 + 2, line * 2, 2, 2),
                ));
            }
        }
        for &line in &[1usize, 4, 7, 10, 13] {
            for along in 1..15 {
                elements.push(pair(
                    Region::rect(line * 2, along * 2, 2, 2),
                    Region::rect(line * 2, along * 2 + 2, 2, 2),
                ));
            }
        }
        end_type(&elements, &mut type_ends);
        Layout {
            elements,
            type_ends,
        }
    })
}

/// Mean luminance of each block of the 32x32 grid, in 1/256ths of a level.
pub(crate) type BlockMeans = [[i64; GRID]; GRID];

/// Averages a luma plane (`width` x `height` visible samples, rows `stride`
/// bytes apart) over the 32x32 grid. Block edges fall at `i * size / 32`, so
/// every pixel belongs to exactly one block whatever the frame size.
pub(crate) fn block_means(luma: &[u8], width: usize, height: usize, stride: usize) -> BlockMeans {
    let mut sums = [[0u64; GRID]; GRID];
    let mut means = [[0i64; GRID]; GRID];
    if width < GRID || height < GRID {
        return means;
    }
    // Column boundaries of the blocks.
    let mut edges = [0usize; GRID + 1];
    for (i, edge) in edges.iter_mut().enumerate() {
        *edge = i * width / GRID;
    }
    for row in 0..height {
        let Some(line) = luma.get(row * stride..row * stride + width) else {
            break;
        };
        let block_row = &mut sums[row * GRID / height];
        for (bx, sum) in block_row.iter_mut().enumerate() {
            *sum += line[edges[bx]..edges[bx + 1]]
                .iter()
                .map(|&p| u64::from(p))
                .sum::<u64>();
        }
    }
    for by in 0..GRID {
        let rows = ((by + 1) * height / GRID - by * height / GRID) as u64;
        for bx in 0..GRID {
            let count = rows * (edges[bx + 1] - edges[bx]) as u64;
            // count > 0 because width and height are at least GRID; the
            // quotient is at most 255 * 256.
            means[by][bx] = i64::try_from((sums[by][bx] << 8) / count.max(1)).unwrap_or(0);
        }
    }
    means
}

/// The frame signature of a frame with these block means.
pub(crate) fn frame_signature(means: &BlockMeans) -> Vec<i8> {
    // Summed-area table: sat[y][x] is the sum of blocks above and left of (x, y).
    let mut sat = [[0i64; GRID + 1]; GRID + 1];
    for y in 0..GRID {
        for x in 0..GRID {
            sat[y + 1][x + 1] = means[y][x] + sat[y][x + 1] + sat[y + 1][x] - sat[y][x];
        }
    }
    let rect_sum = |r: Rect| {
        let (x0, y0) = (usize::from(r.x), usize::from(r.y));
        let (x1, y1) = (x0 + usize::from(r.w), y0 + usize::from(r.h));
        sat[y1][x1] - sat[y0][x1] - sat[y1][x0] + sat[y0][x0]
    };
    let region_sum = |r: Region| rect_sum(r.rect) - r.hole.map_or(0, rect_sum);

    let layout = layout();
    // Cross-multiplied mean difference: mean(a) - mean(b) scaled by
    // area(a) * area(b), exact in integers and on one scale within a type.
    let diffs: Vec<i64> = layout
        .elements
        .iter()
        .map(|e| region_sum(e.a) * e.b.area() - region_sum(e.b) * e.a.area())
        .collect();

    let mut signature = vec![SAME; ELEMENTS];
    let mut start = 0;
    let mut magnitudes = Vec::with_capacity(ELEMENTS);
    for &end in &layout.type_ends {
        magnitudes.clear();
        magnitudes.extend(diffs[start..end].iter().map(|d| d.abs()));
        magnitudes.sort_unstable();
        // A third of the type's elements (those with the smallest
        // differences) become "no significant difference"; the others split
        // by sign, so the three values come out about equally often.
        let threshold = magnitudes[(end - start) / 3];
        for (value, &d) in signature[start..end].iter_mut().zip(&diffs[start..end]) {
            *value = if d > threshold {
                2
            } else if d < -threshold {
                0
            } else {
                SAME
            };
        }
        start = end;
    }
    signature
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout has exactly 380 elements, every region inside the grid,
    /// and one pair of region areas per type (one scale per threshold).
    #[test]
    fn layout_is_well_formed() {
        let layout = layout();
        assert_eq!(layout.elements.len(), ELEMENTS);
        assert_eq!(layout.type_ends.last(), Some(&ELEMENTS));
        let inside = |r: Rect| usize::from(r.x + r.w) <= GRID && usize::from(r.y + r.h) <= GRID;
        let mut start = 0;
        for &end in &layout.type_ends {
            let first = layout.elements[start];
            for e in &layout.elements[start..end] {
                assert!(inside(e.a.rect) && inside(e.b.rect));
                assert_eq!((e.a.area(), e.b.area()), (first.a.area(), first.b.area()));
                assert_ne!(e.a, e.b);
            }
            start = end;
        }
    }

    /// A flat frame has no differences: every element is "same".
    #[test]
    fn flat_frame_is_all_same() {
        let luma = vec![128u8; 64 * 48];
        let means = block_means(&luma, 64, 48, 64);
        assert!(frame_signature(&means).iter().all(|&v| v == SAME));
    }

    /// On a textured frame the three values each take roughly a third.
    #[test]
    fn values_are_balanced() {
        let (w, h) = (320usize, 240usize);
        let luma: Vec<u8> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                ((x * 7 + y * 13 + (x * y) % 97) % 256) as u8
            })
            .collect();
        let signature = frame_signature(&block_means(&luma, w, h, w));
        for value in 0..3 {
            let count = signature.iter().filter(|&&v| v == value).count();
            assert!((90..=170).contains(&count), "value {value}: {count}");
        }
    }

    /// Block means do not depend on the stride padding, a frame scaled to
    /// another size gives a nearly equal signature and another picture a
    /// very different one.
    #[test]
    fn signature_survives_resizing() {
        let make = |w: usize, h: usize, stride: usize, phase: f64| {
            let mut luma = vec![0u8; stride * h];
            for y in 0..h {
                for x in 0..w {
                    let (u, v) = (x as f64 / w as f64, y as f64 / h as f64);
                    let value = 128.0 + 60.0 * (u * 9.0 + phase).sin() * (v * 7.0).cos() + 40.0 * u
                        - 30.0 * v;
                    luma[y * stride + x] = value.clamp(0.0, 255.0) as u8;
                }
            }
            frame_signature(&block_means(&luma, w, h, stride))
        };
        let differing = |x: &[i8], y: &[i8]| x.iter().zip(y).filter(|(a, b)| a != b).count();
        let big = make(1280, 720, 1344, 0.0);
        let small = make(640, 360, 640, 0.0);
        let resized = differing(&big, &small);
        // Elements whose difference sits at a threshold may flip.
        assert!(resized < 60, "{resized} of 380 elements differ");
        let other = differing(&big, &make(1280, 720, 1280, 2.0));
        assert!(other > 150, "{other} of 380 elements differ");
    }
}
