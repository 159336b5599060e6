#!/usr/bin/env python3
"""Measures the element layout of the MPEG-7 frame signature from ffmpeg's
`signature` filter, run as an outside reference, and checks a model of the
whole computation against it element for element.

Only ffmpeg's output is used; its source is not, and must not be.

    scripts/measure-signature-layout.py            # measure, check, print
    scripts/measure-signature-layout.py --rust     # also print the Rust table

Needs ffmpeg (Debian: apt-get install ffmpeg) and numpy (pip install numpy).

How:
1. Frames of 32x32 pixels make every block of the 32x32 grid one pixel.
   A frame that is one level everywhere but one block (brighter or darker)
   changes only the elements whose regions hold that block; with so few
   elements non-zero the threshold of their type is 0, so each element shows
   whether the block raises it (region a) or lowers it (region b). Four such
   sweeps (on black, white and mid-gray, both ways) give every region.
2. Elements compared with mid-gray (the average elements) respond on a
   mid-gray frame only; the others are differences of two regions.
3. Types (the elements that share one threshold) are the runs of elements of
   which exactly ceil(n / 3) are "same" (1) in every random frame.
4. The model (exact block means with edges at ceil(i * size / 32), region
   means of block means, ternary values by type) is checked against ffmpeg
   on random frames of several sizes: every element must agree.
5. The fixture hashes printed last are what the Rust tests in
   media-fingerprint/src/video/signature.rs expect for the same frames.
"""

import hashlib
import math
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

GRID = 32


def ffmpeg_signatures(frames, width, height):
    """ffmpeg's frame signatures of 8-bit luma frames (chroma mid-gray)."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "signature.xml")
        proc = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p",
             "-s", f"{width}x{height}", "-r", "25", "-i", "-",
             "-vf", f"signature=format=xml:filename={xml}", "-f", "null", "-"],
            stdin=subprocess.PIPE)
        chroma = bytes([128]) * (((width + 1) // 2) * ((height + 1) // 2) * 2)
        for frame in frames:
            assert frame.shape == (height, width) and frame.dtype == np.uint8
            proc.stdin.write(frame.tobytes())
            proc.stdin.write(chroma)
        proc.stdin.close()
        if proc.wait() != 0:
            sys.exit("ffmpeg failed")
        with open(xml) as f:
            text = f.read()
    rows = re.findall(r"<FrameSignature>([^<]*)", text)
    return np.array([[int(v) for v in row.split()] for row in rows])


def block_sweep(background, block):
    """Signatures of 32x32 frames at `background` with one block at `block`,
    for every block in row order: shape (1024, 380)."""
    frames = []
    for i in range(GRID * GRID):
        frame = np.full((GRID, GRID), background, np.uint8)
        frame[i // GRID, i % GRID] = block
        frames.append(frame)
    return ffmpeg_signatures(frames, GRID, GRID)


def rectangles(mask):
    """A 32x32 mask as disjoint rectangles (x, y, w, h), greedily."""
    mask = mask.reshape(GRID, GRID).copy()
    out = []
    while mask.any():
        ys, xs = np.nonzero(mask)
        y, x = ys[0], xs[0]
        w = 1
        while x + w < GRID and mask[y, x + w]:
            w += 1
        h = 1
        while y + h < GRID and mask[y + h, x:x + w].all():
            h += 1
        out.append((int(x), int(y), w, h))
        mask[y:y + h, x:x + w] = False
    return out


def measure_regions():
    """Per element: (mask of region a, mask of region b or None)."""
    raised = block_sweep(0, 255).T - 1        # +1: the block raised it
    lowered = block_sweep(255, 0).T - 1       # -1: the block lowered it
    gray_up = block_sweep(128, 255).T - 1
    gray_down = block_sweep(128, 0).T - 1
    elements = []
    for e in range(raised.shape[0]):
        # On mid-gray an average element only ever moves with the block;
        # a difference element moves against it where the block is in b.
        a = gray_up[e] == 1
        if a.any() and not (gray_up[e] == -1).any() and ((gray_down[e] == -1) == a).all():
            elements.append((a, None))
            continue
        a, b = raised[e] == 1, raised[e] == -1
        if not ((lowered[e] == -1) == a).all() or not ((lowered[e] == 1) == b).all():
            sys.exit(f"element {e}: the sweeps disagree")
        elements.append((a, b))
    return elements


def layout_region(mask, hole=None):
    """A region in the Rust table's terms: ('one', r), ('two', r, s) or
    ('ring', outer, hole)."""
    rects = rectangles(mask)
    if len(rects) == 1:
        return ("one", rects[0])
    if len(rects) == 2:
        return ("two", rects[0], rects[1])
    if hole is not None:
        both = mask | hole
        ys, xs = np.nonzero(both.reshape(GRID, GRID))
        outer = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        filled = np.zeros((GRID, GRID), bool)
        x, y, w, h = outer
        filled[y:y + h, x:x + w] = True
        if (filled.reshape(-1) == both).all() and len(rectangles(hole)) == 1:
            return ("ring", outer, rectangles(hole)[0])
    sys.exit(f"a region of {len(rects)} rectangles that is not a ring")


def weights(elements):
    """Exact integer weights: per element, block weights a/|a| - b/|b| times
    the lcm of all areas, and the mid-gray offset flag."""
    areas = [int(a.sum()) for a, _ in elements] + [int(b.sum()) for _, b in elements if b is not None]
    scale = math.lcm(*areas)
    w = np.zeros((len(elements), GRID * GRID), dtype=object)
    for e, (a, b) in enumerate(elements):
        w[e] = a.astype(np.int64) * (scale // int(a.sum()))
        if b is not None:
            w[e] = w[e] - b.astype(np.int64) * (scale // int(b.sum()))
    return w, scale


def values(elements, weights_scale, block_means_scaled, mean_scale):
    """Element values times a common factor, exactly (Python integers)."""
    w, scale = weights_scale
    v = block_means_scaled.astype(object) @ w.T
    for e, (_, b) in enumerate(elements):
        if b is None:
            v[:, e] -= 128 * scale * mean_scale
    return v


def quantise(v, type_ends):
    out = np.ones(v.shape, int)
    start = 0
    for end in type_ends:
        x = v[:, start:end]
        magnitude = np.abs(x)
        k = -(-(end - start) // 3)
        threshold = np.sort(magnitude, axis=1)[:, k - 1:k]
        out[:, start:end][x > threshold] = 2
        out[:, start:end][x < -threshold] = 0
        start = end
    return out


def block_means_scaled(frame):
    """Block means times one common multiple of the block sizes (exact)."""
    height, width = frame.shape
    cols = [-(-i * width // GRID) for i in range(GRID + 1)]
    rows = [-(-i * height // GRID) for i in range(GRID + 1)]
    lw = math.lcm(*[cols[i + 1] - cols[i] for i in range(GRID)])
    lh = math.lcm(*[rows[i + 1] - rows[i] for i in range(GRID)])
    out = np.zeros(GRID * GRID, dtype=object)
    f = frame.astype(np.int64)
    for by in range(GRID):
        for bx in range(GRID):
            total = int(f[rows[by]:rows[by + 1], cols[bx]:cols[bx + 1]].sum())
            out[by * GRID + bx] = total * (lw // (cols[bx + 1] - cols[bx])) * (lh // (rows[by + 1] - rows[by]))
    return out, lw * lh


def find_types(elements, weights_scale, count=2000):
    """Type ends: the shortest runs whose 'same' count is ceil(n / 3) in
    (nearly) every random frame."""
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 256, (count, GRID, GRID), dtype=np.uint8)
    sig = ffmpeg_signatures(list(frames), GRID, GRID)
    ends, start = [], 0
    while start < len(elements):
        for end in range(start + 1, len(elements) + 1):
            same = (sig[:, start:end] == 1).sum(axis=1)
            if (same == -(-(end - start) // 3)).mean() > 0.5 and (same >= -(-(end - start) // 3)).all():
                break
        ends.append(end)
        start = end
    return ends


def splitmix_frame(width, height, index):
    """The fixture frames, as the Rust tests make them: splitmix64 bytes
    seeded by size and index; odd frames have a flat band over their top
    third, so that ties at the thresholds occur."""
    mask = (1 << 64) - 1
    seed = (width * 1_000_003 + height * 7_919 + index) & mask
    n = width * height
    z = (np.uint64(seed) + np.arange(1, n + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    frame = (z >> np.uint64(56)).astype(np.uint8).reshape(height, width)
    if index % 2 == 1:
        frame[: height // 3, :] = 16
    return frame


FIXTURE_SIZES = [(32, 32), (33, 47), (330, 250), (1280, 720)]
FIXTURE_FRAMES = 6


def main():
    np.seterr(over="ignore")
    elements = measure_regions()
    print(f"{len(elements)} elements, {sum(b is None for _, b in elements)} average elements")
    ws = weights(elements)
    type_ends = find_types(elements, ws)
    print("type ends:", type_ends)

    rng = np.random.default_rng(11)
    for width, height in [(32, 32), (1280, 720), (1000, 563), (426, 240), (47, 95)]:
        count = 400 if width == 32 else 30
        frames = [rng.integers(0, 256, (height, width), dtype=np.uint8) for _ in range(count)]
        theirs = ffmpeg_signatures(frames, width, height)
        ours = []
        for frame in frames:
            means, mean_scale = block_means_scaled(frame)
            ours.append(quantise(values(elements, ws, means[None, :], mean_scale), type_ends)[0])
        agree = (np.array(ours) == theirs).mean()
        print(f"{width}x{height}: {count} random frames, {agree * 100:.4f} % of elements agree")
        if agree != 1.0:
            sys.exit("the model does not reproduce ffmpeg")

    print("fixture SHA-256 of ffmpeg's signatures (one line per frame, values space-separated):")
    for width, height in FIXTURE_SIZES:
        frames = [splitmix_frame(width, height, i) for i in range(FIXTURE_FRAMES)]
        sig = ffmpeg_signatures(frames, width, height)
        text = "".join(" ".join(str(v) for v in row) + "\n" for row in sig)
        print(f"    ({width}, {height}, \"{hashlib.sha256(text.encode()).hexdigest()}\"),")

    if "--rust" in sys.argv:
        def r(t):
            return "r({}, {}, {}, {})".format(*t)
        start = 0
        for t, end in enumerate(type_ends):
            print(f"    // Type {t}: elements {start} to {end - 1}.")
            for a, b in elements[start:end]:
                if b is None:
                    print(f"    avg({r(rectangles(a)[0])}),")
                    continue
                ra, rb = layout_region(a, b), layout_region(b)
                if ra[0] == "ring":
                    print(f"    ring({r(ra[1])}, {r(ra[2])}),")
                elif ra[0] == "one" and rb[0] == "one":
                    print(f"    pair({r(ra[1])}, {r(rb[1])}),")
                elif ra[0] == "two" and rb[0] == "two":
                    print(f"    pair2([{r(ra[1])}, {r(ra[2])}], [{r(rb[1])}, {r(rb[2])}]),")
                elif ra[0] == "two" and rb[0] == "one":
                    print(f"    pair21([{r(ra[1])}, {r(ra[2])}], {r(rb[1])}),")
                else:
                    sys.exit(f"no table form for {ra[0]} against {rb[0]}")
            start = end


if __name__ == "__main__":
    main()
