//! Frame signatures of the MPEG-7 video signature tool (ISO/IEC 15938-3
//! Amd 4): 380 ternary elements per frame, computed from the mean luminance
//! of a 32x32 grid of blocks laid over the frame.
//!
//! How a signature is made (Paschalakis et al., "The MPEG-7 Video Signature
//! Tools for Content Identification", IEEE TCSVT 2012):
//! - the luma plane is cut into 32x32 blocks (block edges at
//!   `ceil(i * size / 32)`) and each block's mean is taken;
//! - each element is either an *average* element, the mean of one region of
//!   blocks against mid-gray (128), or a *difference* element, the mean of
//!   one region minus the mean of another (a region is the mean of its
//!   blocks' means, every block weighing the same);
//! - the elements fall into ten types; within a type the third of the
//!   elements with the smallest magnitudes (`ceil(n / 3)` of `n`, and any
//!   tied with the largest of them) become 1, "no significant difference",
//!   the others 2 where positive and 0 where negative.
//!
//! The region layout of the 380 elements, in standard order, is in
//! [`LAYOUT`]. It was measured from the output of ffmpeg's `signature`
//! filter, run as an outside reference on probe frames (one block brighter
//! or darker than the rest, then random frames of several sizes):
//! `scripts/measure-signature-layout.py` repeats the measurement and checks
//! the whole computation described here against ffmpeg element for element.
//! No ffmpeg source was read or used. Values are exact: block means are
//! scaled to a common denominator and every comparison is made in integers,
//! so ties break as in the reference, and decoded frames give the same
//! signatures as ffmpeg's filter (see the tests).

/// Elements in one frame signature.
pub(crate) const ELEMENTS: usize = 380;
/// Blocks per side of the luminance grid.
pub(crate) const GRID: usize = 32;

/// Value of an element whose regions do not differ significantly.
pub(crate) const SAME: i8 = 1;

/// Mid-gray, the level average elements are measured against.
const MID_GRAY: i128 = 128;

/// Where each of the ten element types ends (exclusive), in element order.
const TYPE_ENDS: [usize; 10] = [20, 32, 148, 173, 209, 239, 301, 310, 360, 380];

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
    /// Number of blocks covered.
    const fn area(self) -> i128 {
        self.w as i128 * self.h as i128
    }
}

/// A region of blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// One rectangle.
    One(Rect),
    /// Two disjoint rectangles.
    Two(Rect, Rect),
    /// A rectangle without the rectangle inside it.
    Ring {
        /// The outer rectangle.
        outer: Rect,
        /// The blocks left out.
        hole: Rect,
    },
}

impl Region {
    /// Number of blocks covered.
    const fn area(self) -> i128 {
        match self {
            Region::One(r) => r.area(),
            Region::Two(a, b) => a.area() + b.area(),
            Region::Ring { outer, hole } => outer.area() - hole.area(),
        }
    }
}

/// One element: region `a` against region `b`, or against mid-gray when
/// `b` is `None` (an average element).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Element {
    /// The region whose being brighter gives 2.
    a: Region,
    /// The region it is compared with.
    b: Option<Region>,
}

/// A `w`x`h` rectangle of blocks at column `x`, row `y`.
const fn r(x: u8, y: u8, w: u8, h: u8) -> Rect {
    Rect { x, y, w, h }
}

/// An average element.
const fn avg(a: Rect) -> Element {
    Element {
        a: Region::One(a),
        b: None,
    }
}

/// A rectangle against a rectangle.
const fn pair(a: Rect, b: Rect) -> Element {
    Element {
        a: Region::One(a),
        b: Some(Region::One(b)),
    }
}

/// Two rectangles against two rectangles.
const fn pair2(a: [Rect; 2], b: [Rect; 2]) -> Element {
    Element {
        a: Region::Two(a[0], a[1]),
        b: Some(Region::Two(b[0], b[1])),
    }
}

/// Two rectangles against one.
const fn pair21(a: [Rect; 2], b: Rect) -> Element {
    Element {
        a: Region::Two(a[0], a[1]),
        b: Some(Region::One(b)),
    }
}

/// The ring around `inner` within `outer` against `inner`.
const fn ring(outer: Rect, inner: Rect) -> Element {
    Element {
        a: Region::Ring { outer, hole: inner },
        b: Some(Region::One(inner)),
    }
}

/// The 380 elements in signature order, as measured (see the module docs).
const LAYOUT: [Element; ELEMENTS] = [
    // Type 0: elements 0 to 19.
    avg(r(0, 0, 8, 8)),
    avg(r(8, 0, 8, 8)),
    avg(r(0, 8, 8, 8)),
    avg(r(8, 8, 8, 8)),
    avg(r(16, 0, 8, 8)),
    avg(r(24, 0, 8, 8)),
    avg(r(16, 8, 8, 8)),
    avg(r(24, 8, 8, 8)),
    avg(r(0, 16, 8, 8)),
    avg(r(8, 16, 8, 8)),
    avg(r(0, 24, 8, 8)),
    avg(r(8, 24, 8, 8)),
    avg(r(16, 16, 8, 8)),
    avg(r(24, 16, 8, 8)),
    avg(r(16, 24, 8, 8)),
    avg(r(24, 24, 8, 8)),
    avg(r(0, 0, 16, 16)),
    avg(r(16, 0, 16, 16)),
    avg(r(0, 16, 16, 16)),
    avg(r(16, 16, 16, 16)),
    // Type 1: elements 20 to 31.
    avg(r(2, 2, 8, 8)),
    avg(r(12, 2, 8, 8)),
    avg(r(22, 2, 8, 8)),
    avg(r(2, 12, 8, 8)),
    avg(r(12, 12, 8, 8)),
    avg(r(22, 12, 8, 8)),
    avg(r(2, 22, 8, 8)),
    avg(r(12, 22, 8, 8)),
    avg(r(22, 22, 8, 8)),
    avg(r(9, 9, 14, 14)),
    avg(r(6, 6, 20, 20)),
    avg(r(3, 3, 26, 26)),
    // Type 2: elements 32 to 147.
    pair(r(0, 0, 2, 4), r(2, 0, 2, 4)),
    pair(r(4, 0, 4, 2), r(4, 2, 4, 2)),
    pair(r(0, 6, 4, 2), r(0, 4, 4, 2)),
    pair(r(6, 4, 2, 4), r(4, 4, 2, 4)),
    pair(r(8, 0, 2, 4), r(10, 0, 2, 4)),
    pair(r(12, 0, 4, 2), r(12, 2, 4, 2)),
    pair(r(8, 6, 4, 2), r(8, 4, 4, 2)),
    pair(r(14, 4, 2, 4), r(12, 4, 2, 4)),
    pair(r(0, 8, 2, 4), r(2, 8, 2, 4)),
    pair(r(4, 8, 4, 2), r(4, 10, 4, 2)),
    pair(r(0, 14, 4, 2), r(0, 12, 4, 2)),
    pair(r(6, 12, 2, 4), r(4, 12, 2, 4)),
    pair(r(8, 8, 2, 4), r(10, 8, 2, 4)),
    pair(r(12, 8, 4, 2), r(12, 10, 4, 2)),
    pair(r(8, 14, 4, 2), r(8, 12, 4, 2)),
    pair(r(14, 12, 2, 4), r(12, 12, 2, 4)),
    pair(r(16, 0, 4, 2), r(16, 2, 4, 2)),
    pair(r(22, 0, 2, 4), r(20, 0, 2, 4)),
    pair(r(16, 4, 2, 4), r(18, 4, 2, 4)),
    pair(r(20, 6, 4, 2), r(20, 4, 4, 2)),
    pair(r(24, 0, 4, 2), r(24, 2, 4, 2)),
    pair(r(30, 0, 2, 4), r(28, 0, 2, 4)),
    pair(r(24, 4, 2, 4), r(26, 4, 2, 4)),
    pair(r(28, 6, 4, 2), r(28, 4, 4, 2)),
    pair(r(16, 8, 4, 2), r(16, 10, 4, 2)),
    pair(r(22, 8, 2, 4), r(20, 8, 2, 4)),
    pair(r(16, 12, 2, 4), r(18, 12, 2, 4)),
    pair(r(20, 14, 4, 2), r(20, 12, 4, 2)),
    pair(r(24, 8, 4, 2), r(24, 10, 4, 2)),
    pair(r(30, 8, 2, 4), r(28, 8, 2, 4)),
    pair(r(24, 12, 2, 4), r(26, 12, 2, 4)),
    pair(r(28, 14, 4, 2), r(28, 12, 4, 2)),
    pair(r(0, 16, 4, 2), r(0, 18, 4, 2)),
    pair(r(6, 16, 2, 4), r(4, 16, 2, 4)),
    pair(r(0, 20, 2, 4), r(2, 20, 2, 4)),
    pair(r(4, 22, 4, 2), r(4, 20, 4, 2)),
    pair(r(8, 16, 4, 2), r(8, 18, 4, 2)),
    pair(r(14, 16, 2, 4), r(12, 16, 2, 4)),
    pair(r(8, 20, 2, 4), r(10, 20, 2, 4)),
    pair(r(12, 22, 4, 2), r(12, 20, 4, 2)),
    pair(r(0, 24, 4, 2), r(0, 26, 4, 2)),
    pair(r(6, 24, 2, 4), r(4, 24, 2, 4)),
    pair(r(0, 28, 2, 4), r(2, 28, 2, 4)),
    pair(r(4, 30, 4, 2), r(4, 28, 4, 2)),
    pair(r(8, 24, 4, 2), r(8, 26, 4, 2)),
    pair(r(14, 24, 2, 4), r(12, 24, 2, 4)),
    pair(r(8, 28, 2, 4), r(10, 28, 2, 4)),
    pair(r(12, 30, 4, 2), r(12, 28, 4, 2)),
    pair(r(16, 16, 2, 4), r(18, 16, 2, 4)),
    pair(r(20, 16, 4, 2), r(20, 18, 4, 2)),
    pair(r(16, 22, 4, 2), r(16, 20, 4, 2)),
    pair(r(22, 20, 2, 4), r(20, 20, 2, 4)),
    pair(r(24, 16, 2, 4), r(26, 16, 2, 4)),
    pair(r(28, 16, 4, 2), r(28, 18, 4, 2)),
    pair(r(24, 22, 4, 2), r(24, 20, 4, 2)),
    pair(r(30, 20, 2, 4), r(28, 20, 2, 4)),
    pair(r(16, 24, 2, 4), r(18, 24, 2, 4)),
    pair(r(20, 24, 4, 2), r(20, 26, 4, 2)),
    pair(r(16, 30, 4, 2), r(16, 28, 4, 2)),
    pair(r(22, 28, 2, 4), r(20, 28, 2, 4)),
    pair(r(24, 24, 2, 4), r(26, 24, 2, 4)),
    pair(r(28, 24, 4, 2), r(28, 26, 4, 2)),
    pair(r(24, 30, 4, 2), r(24, 28, 4, 2)),
    pair(r(30, 28, 2, 4), r(28, 28, 2, 4)),
    pair(r(2, 2, 2, 4), r(4, 2, 2, 4)),
    pair(r(6, 2, 4, 2), r(6, 4, 4, 2)),
    pair(r(2, 8, 4, 2), r(2, 6, 4, 2)),
    pair(r(8, 6, 2, 4), r(6, 6, 2, 4)),
    pair(r(12, 2, 2, 4), r(14, 2, 2, 4)),
    pair(r(16, 2, 4, 2), r(16, 4, 4, 2)),
    pair(r(12, 8, 4, 2), r(12, 6, 4, 2)),
    pair(r(18, 6, 2, 4), r(16, 6, 2, 4)),
    pair(r(22, 2, 2, 4), r(24, 2, 2, 4)),
    pair(r(26, 2, 4, 2), r(26, 4, 4, 2)),
    pair(r(22, 8, 4, 2), r(22, 6, 4, 2)),
    pair(r(28, 6, 2, 4), r(26, 6, 2, 4)),
    pair(r(2, 12, 2, 4), r(4, 12, 2, 4)),
    pair(r(6, 12, 4, 2), r(6, 14, 4, 2)),
    pair(r(2, 18, 4, 2), r(2, 16, 4, 2)),
    pair(r(8, 16, 2, 4), r(6, 16, 2, 4)),
    pair(r(12, 12, 4, 2), r(12, 14, 4, 2)),
    pair(r(16, 12, 4, 2), r(16, 14, 4, 2)),
    pair(r(12, 18, 4, 2), r(12, 16, 4, 2)),
    pair(r(16, 18, 4, 2), r(16, 16, 4, 2)),
    pair(r(22, 12, 2, 4), r(24, 12, 2, 4)),
    pair(r(26, 12, 4, 2), r(26, 14, 4, 2)),
    pair(r(22, 18, 4, 2), r(22, 16, 4, 2)),
    pair(r(28, 16, 2, 4), r(26, 16, 2, 4)),
    pair(r(2, 22, 2, 4), r(4, 22, 2, 4)),
    pair(r(6, 22, 4, 2), r(6, 24, 4, 2)),
    pair(r(2, 28, 4, 2), r(2, 26, 4, 2)),
    pair(r(8, 26, 2, 4), r(6, 26, 2, 4)),
    pair(r(12, 22, 2, 4), r(14, 22, 2, 4)),
    pair(r(16, 22, 4, 2), r(16, 24, 4, 2)),
    pair(r(12, 28, 4, 2), r(12, 26, 4, 2)),
    pair(r(18, 26, 2, 4), r(16, 26, 2, 4)),
    pair(r(22, 22, 2, 4), r(24, 22, 2, 4)),
    pair(r(26, 22, 4, 2), r(26, 24, 4, 2)),
    pair(r(22, 28, 4, 2), r(22, 26, 4, 2)),
    pair(r(28, 26, 2, 4), r(26, 26, 2, 4)),
    pair(r(7, 7, 4, 2), r(7, 9, 4, 2)),
    pair(r(11, 7, 2, 4), r(13, 7, 2, 4)),
    pair(r(7, 11, 2, 4), r(9, 11, 2, 4)),
    pair(r(11, 11, 4, 2), r(11, 13, 4, 2)),
    pair(r(17, 7, 4, 2), r(17, 9, 4, 2)),
    pair(r(21, 7, 2, 4), r(23, 7, 2, 4)),
    pair(r(17, 11, 2, 4), r(19, 11, 2, 4)),
    pair(r(21, 11, 4, 2), r(21, 13, 4, 2)),
    pair(r(7, 17, 4, 2), r(7, 19, 4, 2)),
    pair(r(11, 17, 2, 4), r(13, 17, 2, 4)),
    pair(r(7, 21, 2, 4), r(9, 21, 2, 4)),
    pair(r(11, 21, 4, 2), r(11, 23, 4, 2)),
    pair(r(17, 17, 4, 2), r(17, 19, 4, 2)),
    pair(r(21, 17, 2, 4), r(23, 17, 2, 4)),
    pair(r(17, 21, 2, 4), r(19, 21, 2, 4)),
    pair(r(21, 21, 4, 2), r(21, 23, 4, 2)),
    // Type 3: elements 148 to 172.
    pair2(
        [r(0, 0, 4, 4), r(4, 4, 4, 4)],
        [r(4, 0, 4, 4), r(0, 4, 4, 4)],
    ),
    pair2(
        [r(8, 0, 4, 4), r(12, 4, 4, 4)],
        [r(12, 0, 4, 4), r(8, 4, 4, 4)],
    ),
    pair2(
        [r(16, 0, 4, 4), r(20, 4, 4, 4)],
        [r(20, 0, 4, 4), r(16, 4, 4, 4)],
    ),
    pair2(
        [r(24, 0, 4, 4), r(28, 4, 4, 4)],
        [r(28, 0, 4, 4), r(24, 4, 4, 4)],
    ),
    pair2(
        [r(0, 8, 4, 4), r(4, 12, 4, 4)],
        [r(4, 8, 4, 4), r(0, 12, 4, 4)],
    ),
    pair2(
        [r(8, 8, 4, 4), r(12, 12, 4, 4)],
        [r(12, 8, 4, 4), r(8, 12, 4, 4)],
    ),
    pair2(
        [r(16, 8, 4, 4), r(20, 12, 4, 4)],
        [r(20, 8, 4, 4), r(16, 12, 4, 4)],
    ),
    pair2(
        [r(24, 8, 4, 4), r(28, 12, 4, 4)],
        [r(28, 8, 4, 4), r(24, 12, 4, 4)],
    ),
    pair2(
        [r(0, 16, 4, 4), r(4, 20, 4, 4)],
        [r(4, 16, 4, 4), r(0, 20, 4, 4)],
    ),
    pair2(
        [r(8, 16, 4, 4), r(12, 20, 4, 4)],
        [r(12, 16, 4, 4), r(8, 20, 4, 4)],
    ),
    pair2(
        [r(16, 16, 4, 4), r(20, 20, 4, 4)],
        [r(20, 16, 4, 4), r(16, 20, 4, 4)],
    ),
    pair2(
        [r(24, 16, 4, 4), r(28, 20, 4, 4)],
        [r(28, 16, 4, 4), r(24, 20, 4, 4)],
    ),
    pair2(
        [r(0, 24, 4, 4), r(4, 28, 4, 4)],
        [r(4, 24, 4, 4), r(0, 28, 4, 4)],
    ),
    pair2(
        [r(8, 24, 4, 4), r(12, 28, 4, 4)],
        [r(12, 24, 4, 4), r(8, 28, 4, 4)],
    ),
    pair2(
        [r(16, 24, 4, 4), r(20, 28, 4, 4)],
        [r(20, 24, 4, 4), r(16, 28, 4, 4)],
    ),
    pair2(
        [r(24, 24, 4, 4), r(28, 28, 4, 4)],
        [r(28, 24, 4, 4), r(24, 28, 4, 4)],
    ),
    pair2(
        [r(4, 4, 4, 4), r(8, 8, 4, 4)],
        [r(8, 4, 4, 4), r(4, 8, 4, 4)],
    ),
    pair2(
        [r(12, 4, 4, 4), r(16, 8, 4, 4)],
        [r(16, 4, 4, 4), r(12, 8, 4, 4)],
    ),
    pair2(
        [r(20, 4, 4, 4), r(24, 8, 4, 4)],
        [r(24, 4, 4, 4), r(20, 8, 4, 4)],
    ),
    pair2(
        [r(4, 12, 4, 4), r(8, 16, 4, 4)],
        [r(8, 12, 4, 4), r(4, 16, 4, 4)],
    ),
    pair2(
        [r(12, 12, 4, 4), r(16, 16, 4, 4)],
        [r(16, 12, 4, 4), r(12, 16, 4, 4)],
    ),
    pair2(
        [r(20, 12, 4, 4), r(24, 16, 4, 4)],
        [r(24, 12, 4, 4), r(20, 16, 4, 4)],
    ),
    pair2(
        [r(4, 20, 4, 4), r(8, 24, 4, 4)],
        [r(8, 20, 4, 4), r(4, 24, 4, 4)],
    ),
    pair2(
        [r(12, 20, 4, 4), r(16, 24, 4, 4)],
        [r(16, 20, 4, 4), r(12, 24, 4, 4)],
    ),
    pair2(
        [r(20, 20, 4, 4), r(24, 24, 4, 4)],
        [r(24, 20, 4, 4), r(20, 24, 4, 4)],
    ),
    // Type 4: elements 173 to 208.
    pair(r(1, 1, 10, 10), r(11, 1, 10, 10)),
    pair(r(1, 1, 10, 10), r(21, 1, 10, 10)),
    pair(r(1, 1, 10, 10), r(1, 11, 10, 10)),
    pair(r(1, 1, 10, 10), r(11, 11, 10, 10)),
    pair(r(1, 1, 10, 10), r(21, 11, 10, 10)),
    pair(r(1, 1, 10, 10), r(1, 21, 10, 10)),
    pair(r(1, 1, 10, 10), r(11, 21, 10, 10)),
    pair(r(1, 1, 10, 10), r(21, 21, 10, 10)),
    pair(r(11, 1, 10, 10), r(21, 1, 10, 10)),
    pair(r(11, 1, 10, 10), r(1, 11, 10, 10)),
    pair(r(11, 1, 10, 10), r(11, 11, 10, 10)),
    pair(r(11, 1, 10, 10), r(21, 11, 10, 10)),
    pair(r(11, 1, 10, 10), r(1, 21, 10, 10)),
    pair(r(11, 1, 10, 10), r(11, 21, 10, 10)),
    pair(r(11, 1, 10, 10), r(21, 21, 10, 10)),
    pair(r(21, 1, 10, 10), r(1, 11, 10, 10)),
    pair(r(21, 1, 10, 10), r(11, 11, 10, 10)),
    pair(r(21, 1, 10, 10), r(21, 11, 10, 10)),
    pair(r(21, 1, 10, 10), r(1, 21, 10, 10)),
    pair(r(21, 1, 10, 10), r(11, 21, 10, 10)),
    pair(r(21, 1, 10, 10), r(21, 21, 10, 10)),
    pair(r(1, 11, 10, 10), r(11, 11, 10, 10)),
    pair(r(1, 11, 10, 10), r(21, 11, 10, 10)),
    pair(r(1, 11, 10, 10), r(1, 21, 10, 10)),
    pair(r(1, 11, 10, 10), r(11, 21, 10, 10)),
    pair(r(1, 11, 10, 10), r(21, 21, 10, 10)),
    pair(r(11, 11, 10, 10), r(21, 11, 10, 10)),
    pair(r(11, 11, 10, 10), r(1, 21, 10, 10)),
    pair(r(11, 11, 10, 10), r(11, 21, 10, 10)),
    pair(r(11, 11, 10, 10), r(21, 21, 10, 10)),
    pair(r(21, 11, 10, 10), r(1, 21, 10, 10)),
    pair(r(21, 11, 10, 10), r(11, 21, 10, 10)),
    pair(r(21, 11, 10, 10), r(21, 21, 10, 10)),
    pair(r(1, 21, 10, 10), r(11, 21, 10, 10)),
    pair(r(1, 21, 10, 10), r(21, 21, 10, 10)),
    pair(r(11, 21, 10, 10), r(21, 21, 10, 10)),
    // Type 5: elements 209 to 238.
    pair(r(7, 13, 6, 6), r(19, 13, 6, 6)),
    pair(r(13, 7, 6, 6), r(13, 19, 6, 6)),
    pair(r(7, 7, 6, 6), r(19, 19, 6, 6)),
    pair(r(19, 7, 6, 6), r(7, 19, 6, 6)),
    pair(r(13, 7, 6, 6), r(19, 13, 6, 6)),
    pair(r(19, 13, 6, 6), r(13, 19, 6, 6)),
    pair(r(13, 19, 6, 6), r(7, 13, 6, 6)),
    pair(r(7, 13, 6, 6), r(13, 7, 6, 6)),
    pair(r(7, 7, 6, 6), r(19, 7, 6, 6)),
    pair(r(19, 7, 6, 6), r(19, 19, 6, 6)),
    pair(r(19, 19, 6, 6), r(7, 19, 6, 6)),
    pair(r(7, 19, 6, 6), r(7, 7, 6, 6)),
    pair(r(13, 13, 6, 6), r(13, 1, 6, 6)),
    pair(r(13, 13, 6, 6), r(25, 13, 6, 6)),
    pair(r(13, 13, 6, 6), r(13, 25, 6, 6)),
    pair(r(13, 13, 6, 6), r(1, 13, 6, 6)),
    pair(r(13, 1, 6, 6), r(13, 25, 6, 6)),
    pair(r(1, 13, 6, 6), r(25, 13, 6, 6)),
    pair(r(7, 1, 6, 6), r(19, 1, 6, 6)),
    pair(r(7, 25, 6, 6), r(19, 25, 6, 6)),
    pair(r(1, 7, 6, 6), r(1, 19, 6, 6)),
    pair(r(25, 7, 6, 6), r(25, 19, 6, 6)),
    pair(r(7, 1, 6, 6), r(1, 7, 6, 6)),
    pair(r(19, 1, 6, 6), r(25, 7, 6, 6)),
    pair(r(25, 19, 6, 6), r(19, 25, 6, 6)),
    pair(r(1, 19, 6, 6), r(7, 25, 6, 6)),
    pair(r(1, 1, 6, 6), r(25, 1, 6, 6)),
    pair(r(25, 1, 6, 6), r(25, 25, 6, 6)),
    pair(r(25, 25, 6, 6), r(1, 25, 6, 6)),
    pair(r(1, 25, 6, 6), r(1, 1, 6, 6)),
    // Type 6: elements 239 to 300.
    ring(r(1, 1, 10, 10), r(4, 4, 4, 4)),
    ring(r(11, 1, 10, 10), r(14, 4, 4, 4)),
    ring(r(21, 1, 10, 10), r(24, 4, 4, 4)),
    ring(r(1, 11, 10, 10), r(4, 14, 4, 4)),
    ring(r(11, 11, 10, 10), r(14, 14, 4, 4)),
    ring(r(21, 11, 10, 10), r(24, 14, 4, 4)),
    ring(r(1, 21, 10, 10), r(4, 24, 4, 4)),
    ring(r(11, 21, 10, 10), r(14, 24, 4, 4)),
    ring(r(21, 21, 10, 10), r(24, 24, 4, 4)),
    ring(r(6, 6, 10, 10), r(9, 9, 4, 4)),
    ring(r(16, 6, 10, 10), r(19, 9, 4, 4)),
    ring(r(6, 16, 10, 10), r(9, 19, 4, 4)),
    ring(r(16, 16, 10, 10), r(19, 19, 4, 4)),
    ring(r(6, 1, 10, 10), r(9, 4, 4, 4)),
    ring(r(16, 1, 10, 10), r(19, 4, 4, 4)),
    ring(r(1, 6, 10, 10), r(4, 9, 4, 4)),
    ring(r(11, 6, 10, 10), r(14, 9, 4, 4)),
    ring(r(21, 6, 10, 10), r(24, 9, 4, 4)),
    ring(r(6, 11, 10, 10), r(9, 14, 4, 4)),
    ring(r(16, 11, 10, 10), r(19, 14, 4, 4)),
    ring(r(1, 16, 10, 10), r(4, 19, 4, 4)),
    ring(r(11, 16, 10, 10), r(14, 19, 4, 4)),
    ring(r(21, 16, 10, 10), r(24, 19, 4, 4)),
    ring(r(6, 21, 10, 10), r(9, 24, 4, 4)),
    ring(r(16, 21, 10, 10), r(19, 24, 4, 4)),
    ring(r(2, 2, 13, 13), r(7, 7, 3, 3)),
    ring(r(7, 2, 13, 13), r(12, 7, 3, 3)),
    ring(r(12, 2, 13, 13), r(17, 7, 3, 3)),
    ring(r(17, 2, 13, 13), r(22, 7, 3, 3)),
    ring(r(2, 7, 13, 13), r(7, 12, 3, 3)),
    ring(r(7, 7, 13, 13), r(12, 12, 3, 3)),
    ring(r(12, 7, 13, 13), r(17, 12, 3, 3)),
    ring(r(17, 7, 13, 13), r(22, 12, 3, 3)),
    ring(r(2, 12, 13, 13), r(7, 17, 3, 3)),
    ring(r(7, 12, 13, 13), r(12, 17, 3, 3)),
    ring(r(12, 12, 13, 13), r(17, 17, 3, 3)),
    ring(r(17, 12, 13, 13), r(22, 17, 3, 3)),
    ring(r(2, 17, 13, 13), r(7, 22, 3, 3)),
    ring(r(7, 17, 13, 13), r(12, 22, 3, 3)),
    ring(r(12, 17, 13, 13), r(17, 22, 3, 3)),
    ring(r(17, 17, 13, 13), r(22, 22, 3, 3)),
    ring(r(8, 3, 6, 6), r(10, 5, 2, 2)),
    ring(r(13, 3, 6, 6), r(15, 5, 2, 2)),
    ring(r(18, 3, 6, 6), r(20, 5, 2, 2)),
    ring(r(3, 8, 6, 6), r(5, 10, 2, 2)),
    ring(r(8, 8, 6, 6), r(10, 10, 2, 2)),
    ring(r(13, 8, 6, 6), r(15, 10, 2, 2)),
    ring(r(18, 8, 6, 6), r(20, 10, 2, 2)),
    ring(r(23, 8, 6, 6), r(25, 10, 2, 2)),
    ring(r(3, 13, 6, 6), r(5, 15, 2, 2)),
    ring(r(8, 13, 6, 6), r(10, 15, 2, 2)),
    ring(r(13, 13, 6, 6), r(15, 15, 2, 2)),
    ring(r(18, 13, 6, 6), r(20, 15, 2, 2)),
    ring(r(23, 13, 6, 6), r(25, 15, 2, 2)),
    ring(r(3, 18, 6, 6), r(5, 20, 2, 2)),
    ring(r(8, 18, 6, 6), r(10, 20, 2, 2)),
    ring(r(13, 18, 6, 6), r(15, 20, 2, 2)),
    ring(r(18, 18, 6, 6), r(20, 20, 2, 2)),
    ring(r(23, 18, 6, 6), r(25, 20, 2, 2)),
    ring(r(8, 23, 6, 6), r(10, 25, 2, 2)),
    ring(r(13, 23, 6, 6), r(15, 25, 2, 2)),
    ring(r(18, 23, 6, 6), r(20, 25, 2, 2)),
    // Type 7: elements 301 to 309.
    pair2(
        [r(3, 5, 2, 6), r(11, 5, 2, 6)],
        [r(5, 3, 6, 2), r(5, 11, 6, 2)],
    ),
    pair2(
        [r(11, 5, 2, 6), r(19, 5, 2, 6)],
        [r(13, 3, 6, 2), r(13, 11, 6, 2)],
    ),
    pair2(
        [r(19, 5, 2, 6), r(27, 5, 2, 6)],
        [r(21, 3, 6, 2), r(21, 11, 6, 2)],
    ),
    pair2(
        [r(3, 13, 2, 6), r(11, 13, 2, 6)],
        [r(5, 11, 6, 2), r(5, 19, 6, 2)],
    ),
    pair2(
        [r(11, 13, 2, 6), r(19, 13, 2, 6)],
        [r(13, 11, 6, 2), r(13, 19, 6, 2)],
    ),
    pair2(
        [r(19, 13, 2, 6), r(27, 13, 2, 6)],
        [r(21, 11, 6, 2), r(21, 19, 6, 2)],
    ),
    pair2(
        [r(3, 21, 2, 6), r(11, 21, 2, 6)],
        [r(5, 19, 6, 2), r(5, 27, 6, 2)],
    ),
    pair2(
        [r(11, 21, 2, 6), r(19, 21, 2, 6)],
        [r(13, 19, 6, 2), r(13, 27, 6, 2)],
    ),
    pair2(
        [r(19, 21, 2, 6), r(27, 21, 2, 6)],
        [r(21, 19, 6, 2), r(21, 27, 6, 2)],
    ),
    // Type 8: elements 310 to 359.
    pair21([r(0, 4, 4, 4), r(8, 4, 4, 4)], r(4, 4, 4, 4)),
    pair21([r(4, 0, 4, 4), r(4, 8, 4, 4)], r(4, 4, 4, 4)),
    pair21([r(5, 4, 4, 4), r(13, 4, 4, 4)], r(9, 4, 4, 4)),
    pair21([r(9, 0, 4, 4), r(9, 8, 4, 4)], r(9, 4, 4, 4)),
    pair21([r(10, 4, 4, 4), r(18, 4, 4, 4)], r(14, 4, 4, 4)),
    pair21([r(14, 0, 4, 4), r(14, 8, 4, 4)], r(14, 4, 4, 4)),
    pair21([r(15, 4, 4, 4), r(23, 4, 4, 4)], r(19, 4, 4, 4)),
    pair21([r(19, 0, 4, 4), r(19, 8, 4, 4)], r(19, 4, 4, 4)),
    pair21([r(20, 4, 4, 4), r(28, 4, 4, 4)], r(24, 4, 4, 4)),
    pair21([r(24, 0, 4, 4), r(24, 8, 4, 4)], r(24, 4, 4, 4)),
    pair21([r(0, 9, 4, 4), r(8, 9, 4, 4)], r(4, 9, 4, 4)),
    pair21([r(4, 5, 4, 4), r(4, 13, 4, 4)], r(4, 9, 4, 4)),
    pair21([r(5, 9, 4, 4), r(13, 9, 4, 4)], r(9, 9, 4, 4)),
    pair21([r(9, 5, 4, 4), r(9, 13, 4, 4)], r(9, 9, 4, 4)),
    pair21([r(10, 9, 4, 4), r(18, 9, 4, 4)], r(14, 9, 4, 4)),
    pair21([r(14, 5, 4, 4), r(14, 13, 4, 4)], r(14, 9, 4, 4)),
    pair21([r(15, 9, 4, 4), r(23, 9, 4, 4)], r(19, 9, 4, 4)),
    pair21([r(19, 5, 4, 4), r(19, 13, 4, 4)], r(19, 9, 4, 4)),
    pair21([r(20, 9, 4, 4), r(28, 9, 4, 4)], r(24, 9, 4, 4)),
    pair21([r(24, 5, 4, 4), r(24, 13, 4, 4)], r(24, 9, 4, 4)),
    pair21([r(0, 14, 4, 4), r(8, 14, 4, 4)], r(4, 14, 4, 4)),
    pair21([r(4, 10, 4, 4), r(4, 18, 4, 4)], r(4, 14, 4, 4)),
    pair21([r(5, 14, 4, 4), r(13, 14, 4, 4)], r(9, 14, 4, 4)),
    pair21([r(9, 10, 4, 4), r(9, 18, 4, 4)], r(9, 14, 4, 4)),
    pair21([r(10, 14, 4, 4), r(18, 14, 4, 4)], r(14, 14, 4, 4)),
    pair21([r(14, 10, 4, 4), r(14, 18, 4, 4)], r(14, 14, 4, 4)),
    pair21([r(15, 14, 4, 4), r(23, 14, 4, 4)], r(19, 14, 4, 4)),
    pair21([r(19, 10, 4, 4), r(19, 18, 4, 4)], r(19, 14, 4, 4)),
    pair21([r(20, 14, 4, 4), r(28, 14, 4, 4)], r(24, 14, 4, 4)),
    pair21([r(24, 10, 4, 4), r(24, 18, 4, 4)], r(24, 14, 4, 4)),
    pair21([r(0, 19, 4, 4), r(8, 19, 4, 4)], r(4, 19, 4, 4)),
    pair21([r(4, 15, 4, 4), r(4, 23, 4, 4)], r(4, 19, 4, 4)),
    pair21([r(5, 19, 4, 4), r(13, 19, 4, 4)], r(9, 19, 4, 4)),
    pair21([r(9, 15, 4, 4), r(9, 23, 4, 4)], r(9, 19, 4, 4)),
    pair21([r(10, 19, 4, 4), r(18, 19, 4, 4)], r(14, 19, 4, 4)),
    pair21([r(14, 15, 4, 4), r(14, 23, 4, 4)], r(14, 19, 4, 4)),
    pair21([r(15, 19, 4, 4), r(23, 19, 4, 4)], r(19, 19, 4, 4)),
    pair21([r(19, 15, 4, 4), r(19, 23, 4, 4)], r(19, 19, 4, 4)),
    pair21([r(20, 19, 4, 4), r(28, 19, 4, 4)], r(24, 19, 4, 4)),
    pair21([r(24, 15, 4, 4), r(24, 23, 4, 4)], r(24, 19, 4, 4)),
    pair21([r(0, 24, 4, 4), r(8, 24, 4, 4)], r(4, 24, 4, 4)),
    pair21([r(4, 20, 4, 4), r(4, 28, 4, 4)], r(4, 24, 4, 4)),
    pair21([r(5, 24, 4, 4), r(13, 24, 4, 4)], r(9, 24, 4, 4)),
    pair21([r(9, 20, 4, 4), r(9, 28, 4, 4)], r(9, 24, 4, 4)),
    pair21([r(10, 24, 4, 4), r(18, 24, 4, 4)], r(14, 24, 4, 4)),
    pair21([r(14, 20, 4, 4), r(14, 28, 4, 4)], r(14, 24, 4, 4)),
    pair21([r(15, 24, 4, 4), r(23, 24, 4, 4)], r(19, 24, 4, 4)),
    pair21([r(19, 20, 4, 4), r(19, 28, 4, 4)], r(19, 24, 4, 4)),
    pair21([r(20, 24, 4, 4), r(28, 24, 4, 4)], r(24, 24, 4, 4)),
    pair21([r(24, 20, 4, 4), r(24, 28, 4, 4)], r(24, 24, 4, 4)),
    // Type 9: elements 360 to 379.
    pair(r(0, 0, 8, 4), r(0, 4, 8, 4)),
    pair(r(8, 0, 4, 8), r(12, 0, 4, 8)),
    pair(r(0, 8, 4, 8), r(4, 8, 4, 8)),
    pair(r(8, 8, 8, 4), r(8, 12, 8, 4)),
    pair(r(16, 0, 4, 8), r(20, 0, 4, 8)),
    pair(r(24, 0, 8, 4), r(24, 4, 8, 4)),
    pair(r(16, 8, 8, 4), r(16, 12, 8, 4)),
    pair(r(24, 8, 4, 8), r(28, 8, 4, 8)),
    pair(r(0, 16, 4, 8), r(4, 16, 4, 8)),
    pair(r(8, 16, 8, 4), r(8, 20, 8, 4)),
    pair(r(0, 24, 8, 4), r(0, 28, 8, 4)),
    pair(r(8, 24, 4, 8), r(12, 24, 4, 8)),
    pair(r(16, 16, 8, 4), r(16, 20, 8, 4)),
    pair(r(24, 16, 4, 8), r(28, 16, 4, 8)),
    pair(r(16, 24, 4, 8), r(20, 24, 4, 8)),
    pair(r(24, 24, 8, 4), r(24, 28, 8, 4)),
    pair(r(0, 0, 8, 16), r(8, 0, 8, 16)),
    pair(r(16, 0, 16, 8), r(16, 8, 16, 8)),
    pair(r(0, 16, 16, 8), r(0, 24, 16, 8)),
    pair(r(16, 16, 8, 16), r(24, 16, 8, 16)),
];

/// Per type, a common multiple of its regions' areas, so that the mean
/// differences of one type are compared as integers on one scale.
const TYPE_SCALES: [i128; TYPE_ENDS.len()] = type_scales();

const fn gcd(mut a: i128, mut b: i128) -> i128 {
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

const fn lcm(a: i128, b: i128) -> i128 {
    a / gcd(a, b) * b
}

const fn type_scales() -> [i128; TYPE_ENDS.len()] {
    let mut scales = [1; TYPE_ENDS.len()];
    let (mut t, mut e) = (0, 0);
    while e < ELEMENTS {
        if e == TYPE_ENDS[t] {
            t += 1;
        }
        let element = LAYOUT[e];
        scales[t] = lcm(scales[t], element.a.area());
        if let Some(b) = element.b {
            scales[t] = lcm(scales[t], b.area());
        }
        e += 1;
    }
    scales
}

/// Mean luminance of each block of the 32x32 grid, exactly: each value is
/// the block's mean times `scale`, a common multiple of the block sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockMeans {
    /// Block means times `scale`, row by row.
    scaled: [[i128; GRID]; GRID],
    /// The common denominator.
    scale: i128,
}

/// Averages a luma plane (`width` x `height` visible samples, rows `stride`
/// bytes apart) over the 32x32 grid, block edges at `ceil(i * size / 32)`.
/// A plane narrower or lower than 32 samples gives a flat grid.
pub(crate) fn block_means(luma: &[u8], width: usize, height: usize, stride: usize) -> BlockMeans {
    let mut means = BlockMeans {
        scaled: [[0; GRID]; GRID],
        scale: 1,
    };
    if width < GRID || height < GRID {
        return means;
    }
    let edges =
        |size: usize| -> [usize; GRID + 1] { std::array::from_fn(|i| (i * size).div_ceil(GRID)) };
    let (columns, rows) = (edges(width), edges(height));
    let mut sums = [[0u64; GRID]; GRID];
    for (y, line) in luma.chunks(stride).take(height).enumerate() {
        let Some(line) = line.get(..width) else {
            break;
        };
        // Rows map to block rows monotonically; `y < height` keeps the
        // index below GRID.
        let by = rows.partition_point(|&edge| edge <= y) - 1;
        for (bx, sum) in sums[by].iter_mut().enumerate() {
            *sum += line[columns[bx]..columns[bx + 1]]
                .iter()
                .map(|&p| u64::from(p))
                .sum::<u64>();
        }
    }
    // Block sides take at most two values per axis (floor and ceiling of
    // size / 32), so the product of the sides' common multiples is a
    // multiple of every block's pixel count, and below 2^50 for any frame
    // within an i32 of pixels a side: every product below stays far from
    // i128's range.
    let side_lcm = |e: &[usize; GRID + 1]| {
        e.windows(2)
            .fold(1, |acc, w| lcm(acc, (w[1] - w[0]) as i128))
    };
    let (lw, lh) = (side_lcm(&columns), side_lcm(&rows));
    means.scale = lw * lh;
    for by in 0..GRID {
        let h = (rows[by + 1] - rows[by]) as i128;
        for bx in 0..GRID {
            let w = (columns[bx + 1] - columns[bx]) as i128;
            means.scaled[by][bx] = i128::from(sums[by][bx]) * (lw / w) * (lh / h);
        }
    }
    means
}

/// The frame signature of a frame with these block means.
pub(crate) fn frame_signature(means: &BlockMeans) -> Vec<i8> {
    // Summed-area table: sat[y][x] is the sum of the blocks above and left
    // of (x, y).
    let mut sat = [[0i128; GRID + 1]; GRID + 1];
    for y in 0..GRID {
        for x in 0..GRID {
            sat[y + 1][x + 1] = means.scaled[y][x] + sat[y][x + 1] + sat[y + 1][x] - sat[y][x];
        }
    }
    let rect_sum = |r: Rect| {
        let (x0, y0) = (usize::from(r.x), usize::from(r.y));
        let (x1, y1) = (x0 + usize::from(r.w), y0 + usize::from(r.h));
        sat[y1][x1] - sat[y0][x1] - sat[y1][x0] + sat[y0][x0]
    };
    let region_sum = |region: Region| match region {
        Region::One(r) => rect_sum(r),
        Region::Two(a, b) => rect_sum(a) + rect_sum(b),
        Region::Ring { outer, hole } => rect_sum(outer) - rect_sum(hole),
    };

    let mut signature = vec![SAME; ELEMENTS];
    let mut values = [0i128; ELEMENTS];
    let mut magnitudes = Vec::with_capacity(ELEMENTS);
    let mut start = 0;
    for (&end, &scale) in TYPE_ENDS.iter().zip(&TYPE_SCALES) {
        // Each value is (mean of a - mean of b) * scale * means.scale,
        // exact: `scale` is a multiple of every area in the type.
        for (value, element) in values[start..end].iter_mut().zip(&LAYOUT[start..end]) {
            let a = region_sum(element.a) * (scale / element.a.area());
            let b = match element.b {
                Some(b) => region_sum(b) * (scale / b.area()),
                None => MID_GRAY * scale * means.scale,
            };
            *value = a - b;
        }
        magnitudes.clear();
        magnitudes.extend(values[start..end].iter().map(|v| v.abs()));
        magnitudes.sort_unstable();
        let threshold = magnitudes[(end - start).div_ceil(3) - 1];
        for (out, &value) in signature[start..end].iter_mut().zip(&values[start..end]) {
            *out = if value > threshold {
                2
            } else if value < -threshold {
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

    /// Blocks covered by a region, as a 32x32 mask.
    fn cells(region: Region) -> [[bool; GRID]; GRID] {
        let mut mask = [[false; GRID]; GRID];
        let mut paint = |r: Rect, on: bool| {
            for row in &mut mask[usize::from(r.y)..usize::from(r.y + r.h)] {
                for cell in &mut row[usize::from(r.x)..usize::from(r.x + r.w)] {
                    *cell = on;
                }
            }
        };
        match region {
            Region::One(r) => paint(r, true),
            Region::Two(a, b) => {
                paint(a, true);
                paint(b, true);
            }
            Region::Ring { outer, hole } => {
                paint(outer, true);
                paint(hole, false);
            }
        }
        mask
    }

    /// Every region lies in the grid, its rectangles do not overlap (so
    /// its area is its block count), and the two regions of a difference
    /// element are disjoint.
    #[test]
    fn layout_is_well_formed() {
        let inside = |r: Rect| usize::from(r.x + r.w) <= GRID && usize::from(r.y + r.h) <= GRID;
        let count = |m: &[[bool; GRID]; GRID]| m.iter().flatten().filter(|&&c| c).count() as i128;
        for (e, element) in LAYOUT.iter().enumerate() {
            let regions = [Some(element.a), element.b];
            for region in regions.into_iter().flatten() {
                let rects = match region {
                    Region::One(r) => vec![r],
                    Region::Two(a, b) => vec![a, b],
                    Region::Ring { outer, hole } => vec![outer, hole],
                };
                assert!(rects.into_iter().all(inside), "element {e}");
                assert_eq!(count(&cells(region)), region.area(), "element {e}");
            }
            if let Some(b) = element.b {
                let (a, b) = (cells(element.a), cells(b));
                let overlap = (0..GRID).any(|y| (0..GRID).any(|x| a[y][x] && b[y][x]));
                assert!(!overlap, "element {e}");
            }
        }
        assert_eq!(TYPE_ENDS.last(), Some(&ELEMENTS));
        // Average elements are exactly the first two types.
        assert!(LAYOUT.iter().take(32).all(|e| e.b.is_none()));
        assert!(LAYOUT.iter().skip(32).all(|e| e.b.is_some()));
    }

    /// SHA-256 of ffmpeg's frame signatures of the frames [`fixture_frame`]
    /// makes (6 per size; one line per frame, values separated by spaces),
    /// printed by `scripts/measure-signature-layout.py` (Debian ffmpeg 5.1.9).
    const FFMPEG_FIXTURES: [(usize, usize, &str); 4] = [
        (
            32,
            32,
            "850ca46fcc40364fa4164c1563ed54c488a97af99d4b13e398a7fa77fce746cd",
        ),
        (
            33,
            47,
            "240f0d2a2d22d000c7395d62221037680331e707a06457e68f99179ccfde13e8",
        ),
        (
            330,
            250,
            "e12407e9298f69435c4b5fed1355e662ff4ca6b16f40bdc1c6172f3aeb6b2e18",
        ),
        (
            1280,
            720,
            "189bab4fa42015ac8cfc1c98d38d6e6cfd4a186311318baf587df1f08bb41e58",
        ),
    ];

    /// The script's fixture frames: splitmix64 bytes seeded by size and
    /// index; odd frames have a flat band over their top third, so that
    /// magnitudes tie at the thresholds.
    fn fixture_frame(width: usize, height: usize, index: usize) -> Vec<u8> {
        let seed = (width as u64 * 1_000_003)
            .wrapping_add(height as u64 * 7_919)
            .wrapping_add(index as u64);
        let mut frame: Vec<u8> = (1..=(width * height) as u64)
            .map(|i| {
                let mut z = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15));
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                ((z ^ (z >> 31)) >> 56) as u8
            })
            .collect();
        if index % 2 == 1 {
            frame[..height / 3 * width].fill(16);
        }
        frame
    }

    /// Random frames of several sizes, odd ones included, give ffmpeg's
    /// signatures element for element: block edges, region layout, exact
    /// arithmetic and tie handling all agree with the reference.
    #[test]
    fn random_frames_match_ffmpeg() {
        for (width, height, expected) in FFMPEG_FIXTURES {
            let mut text = String::new();
            for index in 0..6 {
                let frame = fixture_frame(width, height, index);
                let values: Vec<String> =
                    frame_signature(&block_means(&frame, width, height, width))
                        .iter()
                        .map(i8::to_string)
                        .collect();
                text.push_str(&values.join(" "));
                text.push('\n');
            }
            let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
            assert_eq!(hex::encode(digest.as_ref()), expected, "{width}x{height}");
        }
    }

    /// A flat frame, whatever its level, has no significant differences.
    #[test]
    fn flat_frames_are_all_same() {
        for level in [0u8, 16, 128, 235, 255] {
            let luma = vec![level; 64 * 48];
            let means = block_means(&luma, 64, 48, 64);
            assert!(
                frame_signature(&means).iter().all(|&v| v == SAME),
                "{level}"
            );
        }
    }

    /// Each type turns exactly `ceil(n / 3)` elements into "same" when no
    /// magnitudes tie, and splits the rest by sign.
    #[test]
    fn a_third_of_each_type_is_same() {
        let (w, h) = (320usize, 240usize);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let luma: Vec<u8> = (0..w * h)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let signature = frame_signature(&block_means(&luma, w, h, w));
        let mut start = 0;
        for end in TYPE_ENDS {
            let same = signature[start..end].iter().filter(|&&v| v == SAME).count();
            assert_eq!(same, (end - start).div_ceil(3), "type ending at {end}");
            start = end;
        }
    }

    /// Block edges fall at `ceil(i * size / 32)`: on a 33-pixel-wide frame
    /// the second block starts at column 2, so a bright column 1 lies in
    /// block 0 and makes the top-left average element brighter.
    #[test]
    fn block_edges_round_up() {
        let (w, h) = (33usize, 32usize);
        let mut luma = vec![128u8; w * h];
        for y in 0..h {
            luma[y * w + 1] = 255;
        }
        let means = block_means(&luma, w, h, w);
        // Block 0 holds columns 0 and 1, block 1 only column 2.
        assert!(means.scaled[0][0] > means.scaled[0][1]);
        assert_eq!(means.scaled[0][1], means.scaled[0][2]);
    }

    /// Stride padding is ignored, and a frame scaled to another size gives
    /// a nearly equal signature while another picture gives a very
    /// different one.
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
        assert_eq!(big, make(1280, 720, 1280, 0.0));
        let small = make(640, 360, 640, 0.0);
        let resized = differing(&big, &small);
        // Elements whose difference sits at a threshold may flip.
        assert!(resized < 60, "{resized} of 380 elements differ");
        let other = differing(&big, &make(1280, 720, 1280, 2.0));
        assert!(other > 150, "{other} of 380 elements differ");
    }
}
