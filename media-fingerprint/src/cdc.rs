//! The ISCC Data-Code over a stream, with our own content-defined chunking.
//!
//! This module exists because iscc-lib's chunker is serial: its gear rolling
//! hash waits for each byte's shift-and-add before the next, two cycles a
//! byte whatever the CPU, and with xxh32 and BLAKE3 beside it the Data-Code
//! and Instance-Code together stayed below our target of 1 GB/s on one core
//! (docs/BENCHMARKS.md). Its `DataHasher` also copies every update into a
//! buffer of its own and chunks the carried tail again on every call.
//!
//! [`DataCodeHasher`] finds exactly the chunks of iscc-lib's `alg_cdc_chunks`
//! (average 1024) over the whole stream, however the stream is split into
//! updates, hashes each with xxh32 (seed 0) as iscc-lib does, and leaves the
//! MinHash and the encoding to iscc-lib. The result is the Data-Code of
//! `iscc_lib::gen_data_code_v0` for the concatenated bytes.
//!
//! # How the chunks are found
//!
//! A chunk starting at `c` is found by iscc-lib's rule: the gear pattern
//! `p = (p >> 1) + GEAR[byte]` starts at 0 and is fed the bytes from
//! `c + MIN_SIZE` on; the chunk ends after the first byte where `p & 2047 ==
//! 0` (while the chunk is at most `CENTRE_SIZE` long), `p & 511 == 0` (after),
//! or at `MAX_SIZE`. Where the next chunk ends depends only on where it starts
//! and on the bytes, so two chunkers that once cut at the same place cut at
//! the same places from then on.
//!
//! 1. *Lanes.* Each batch is cut into `LANES` segments, and one chunker runs
//!    over each, all in one interleaved loop (independent dependency chains,
//!    so the CPU overlaps them). The first lane continues the stream's open
//!    chunk, so its cuts are the true ones. Each other lane starts `OVERLAP`
//!    bytes before its segment as if a chunk began there; its cuts are the
//!    true ones from the first cut it shares with the true chunking.
//! 2. *Splicing.* The true chunking is followed from lane to lane: where its
//!    open chunk at the end of a segment starts at a cut of the next lane (or
//!    at that lane's assumed start), the next lane's later cuts are taken as
//!    they are. Otherwise the true chunking runs on alone, byte by byte, until
//!    it cuts where the next lane cut.
//!
//! On random data every lane agrees with the true chunking within the
//! overlap. On data where they never agree (a run of one byte, cut only at
//! `MAX_SIZE`, keeps any other start out of step) the true chunking runs byte
//! by byte, and the following batches skip the lanes (see `MAX_BACKOFF`), so
//! such data is chunked at about iscc-lib's speed.

use iscc_lib::codec::{MainType, SubType, Version, encode_component};
use xxhash_rust::xxh32::{Xxh32, xxh32};

use crate::error::{FingerprintError, Result};

/// No chunk is shorter than this (except the last); the pattern starts here.
const MIN_SIZE: usize = 256;
/// Chunks up to this length end only where the strict mask matches.
const CENTRE_SIZE: usize = 640;
/// Chunks are cut at this length if no mask matched.
const MAX_SIZE: usize = 8192;
/// Cut mask for chunks of at most `CENTRE_SIZE` bytes.
const MASK_STRICT: u32 = (1 << 11) - 1;
/// Cut mask for longer chunks.
const MASK_RELAXED: u32 = (1 << 9) - 1;

/// Chunkers run side by side over a batch. Four keep the core's load and
/// integer units busy (each is a two-cycle shift-add chain with two loads a
/// byte) and still fit the loop in the registers.
const LANES: usize = 4;
const _: () = assert!(
    LANES == 4,
    "chunk_in_lanes dispatches run_lanes for 1 to 4 lanes"
);
/// Bytes a lane starts before its segment, to fall in step with the true
/// chunking (on random data it nearly always has within two or three chunks).
const OVERLAP: usize = 4 * 1024;
/// Bytes of one lane's segment in a full batch.
const SEG: usize = 64 * 1024;
/// Bytes chunked at a time. Updates are cut into batches of exactly this size
/// (what does not fill one is gathered until it does), so the lanes' overlap
/// is paid once per 256 KiB, and a batch stays in the core's cache for the
/// xxh32 pass after.
pub(crate) const BATCH: usize = LANES * SEG;
/// A last batch shorter than this is chunked byte by byte: the lanes would not
/// pay for their overlap.
const LANES_FROM: usize = 16 * 1024;
/// After a batch where a lane never fell in step, this many batches at most
/// are chunked byte by byte before the lanes are tried again (1, 2, 4, ...
/// after each further miss). Data that keeps the lanes out of step (long runs
/// of one byte) then costs what iscc-lib's chunker costs, not that plus the
/// lanes' wasted work.
const MAX_BACKOFF: u32 = 64;

/// The gear table of iscc-core (`cdc_gear`), as in iscc-lib. Every entry is
/// below 2^31, so `(p >> 1) + GEAR[b]` never overflows a `u32`.
static GEAR: [u32; 256] = [
    1553318008, 574654857, 759734804, 310648967, 1393527547, 1195718329, 694400241, 1154184075,
    1319583805, 1298164590, 122602963, 989043992, 1918895050, 933636724, 1369634190, 1963341198,
    1565176104, 1296753019, 1105746212, 1191982839, 1195494369, 29065008, 1635524067, 722221599,
    1355059059, 564669751, 1620421856, 1100048288, 1018120624, 1087284781, 1723604070, 1415454125,
    737834957, 1854265892, 1605418437, 1697446953, 973791659, 674750707, 1669838606, 320299026,
    1130545851, 1725494449, 939321396, 748475270, 554975894, 1651665064, 1695413559, 671470969,
    992078781, 1935142196, 1062778243, 1901125066, 1935811166, 1644847216, 744420649, 2068980838,
    1988851904, 1263854878, 1979320293, 111370182, 817303588, 478553825, 694867320, 685227566,
    345022554, 2095989693, 1770739427, 165413158, 1322704750, 46251975, 710520147, 700507188,
    2104251000, 1350123687, 1593227923, 1756802846, 1179873910, 1629210470, 358373501, 807118919,
    751426983, 172199468, 174707988, 1951167187, 1328704411, 2129871494, 1242495143, 1793093310,
    1721521010, 306195915, 1609230749, 1992815783, 1790818204, 234528824, 551692332, 1930351755,
    110996527, 378457918, 638641695, 743517326, 368806918, 1583529078, 1767199029, 182158924,
    1114175764, 882553770, 552467890, 1366456705, 934589400, 1574008098, 1798094820, 1548210079,
    821697741, 601807702, 332526858, 1693310695, 136360183, 1189114632, 506273277, 397438002,
    620771032, 676183860, 1747529440, 909035644, 142389739, 1991534368, 272707803, 1905681287,
    1210958911, 596176677, 1380009185, 1153270606, 1150188963, 1067903737, 1020928348, 978324723,
    962376754, 1368724127, 1133797255, 1367747748, 1458212849, 537933020, 1295159285, 2104731913,
    1647629177, 1691336604, 922114202, 170715530, 1608833393, 62657989, 1140989235, 381784875,
    928003604, 449509021, 1057208185, 1239816707, 525522922, 476962140, 102897870, 132620570,
    419788154, 2095057491, 1240747817, 1271689397, 973007445, 1380110056, 1021668229, 12064370,
    1186917580, 1017163094, 597085928, 2018803520, 1795688603, 1722115921, 2015264326, 506263638,
    1002517905, 1229603330, 1376031959, 763839898, 1970623926, 1109937345, 524780807, 1976131071,
    905940439, 1313298413, 772929676, 1578848328, 1108240025, 577439381, 1293318580, 1512203375,
    371003697, 308046041, 320070446, 1252546340, 568098497, 1341794814, 1922466690, 480833267,
    1060838440, 969079660, 1836468543, 2049091118, 2023431210, 383830867, 2112679659, 231203270,
    1551220541, 1377927987, 275637462, 2110145570, 1700335604, 738389040, 1688841319, 1506456297,
    1243730675, 258043479, 599084776, 41093802, 792486733, 1897397356, 28077829, 1520357900,
    361516586, 1119263216, 209458355, 45979201, 363681532, 477245280, 2107748241, 601938891,
    244572459, 1689418013, 1141711990, 1485744349, 1181066840, 1950794776, 410494836, 1445347454,
    2137242950, 852679640, 1014566730, 1999335993, 1871390758, 1736439305, 231222289, 603972436,
    783045542, 370384393, 184356284, 709706295, 1453549767, 591603172, 768512391, 854125182,
];

/// One chunker's place in a batch: the open chunk and the next byte to feed.
#[derive(Clone, Copy, Debug)]
struct Lane {
    /// Which segment this lane chunks, indexing `Chunker::lane_cuts`.
    id: usize,
    /// Batch offset of the open chunk's first byte; negative when the chunk
    /// began in an earlier batch.
    start: isize,
    /// Next byte to feed to the pattern; at least `start + MIN_SIZE`, and
    /// past `end` when the open chunk's minimum runs beyond it.
    pos: usize,
    /// The gear pattern of the open chunk after the bytes before `pos`.
    pattern: u32,
    /// The lane stops before feeding the byte at this offset.
    end: usize,
}

impl Lane {
    /// A lane whose open chunk starts at `start`, stopping before `end`.
    fn at_chunk_start(id: usize, start: isize, end: usize) -> Self {
        Self {
            id,
            start,
            // An open chunk that began more than MIN_SIZE bytes before the
            // batch is fed from the batch start.
            pos: (start + MIN_SIZE as isize).max(0) as usize,
            pattern: 0,
            end,
        }
    }

    /// Length of the open chunk up to `pos`.
    fn len(&self) -> usize {
        (self.pos as isize - self.start) as usize
    }

    /// Ends the open chunk before `pos` and starts the next one there.
    fn cut(&mut self) -> usize {
        let cut = self.pos;
        *self = Self::at_chunk_start(self.id, cut as isize, self.end);
        cut
    }

    /// Feeds bytes one at a time until the open chunk ends (returning the cut)
    /// or the lane reaches `end` (returning `None`).
    fn next_cut(&mut self, data: &[u8]) -> Option<usize> {
        while self.pos < self.end {
            let (mask, phase_end) = if self.len() < CENTRE_SIZE {
                (MASK_STRICT, CENTRE_SIZE)
            } else {
                (MASK_RELAXED, MAX_SIZE)
            };
            let stop = ((self.start + phase_end as isize) as usize).min(self.end);
            for (offset, &byte) in data[self.pos..stop].iter().enumerate() {
                self.pattern = (self.pattern >> 1).wrapping_add(GEAR[usize::from(byte)]);
                if self.pattern & mask == 0 {
                    self.pos += offset + 1;
                    return Some(self.cut());
                }
            }
            self.pos = stop;
            if self.len() == MAX_SIZE {
                return Some(self.cut());
            }
        }
        None
    }
}

/// Content-defined chunking of a stream into iscc-lib's Data-Code chunks.
pub(crate) struct Chunker {
    /// Bytes of the current, unfinished chunk seen in earlier calls.
    chunk_len: usize,
    /// The gear pattern of the current chunk: 0 until the chunk is longer
    /// than `MIN_SIZE`, then fed every byte from offset `MIN_SIZE` on.
    pattern: u32,
    /// Per lane, the cuts it found in the last batch, in order.
    lane_cuts: [Vec<usize>; LANES],
    /// Batches still to chunk byte by byte after lanes fell out of step.
    serial_batches: u32,
    /// The run of byte-by-byte batches to start after the next miss.
    backoff: u32,
    /// End offsets, within the batch of the last `cuts` call, of the chunks
    /// that ended in it.
    cuts: Vec<usize>,
    /// Bytes the true chunking was fed alone, between lanes (tests check the
    /// lanes carry the bulk of random data).
    #[cfg(test)]
    serial_bytes: usize,
}

impl Chunker {
    /// A chunker at the start of a stream.
    pub(crate) fn new() -> Self {
        Self {
            chunk_len: 0,
            pattern: 0,
            lane_cuts: std::array::from_fn(|_| Vec::new()),
            serial_batches: 0,
            backoff: 1,
            cuts: Vec::new(),
            #[cfg(test)]
            serial_bytes: 0,
        }
    }

    /// Bytes of the stream after the last cut.
    pub(crate) fn pending_len(&self) -> usize {
        self.chunk_len
    }

    /// Continues the stream with `batch` and returns the end offsets, within
    /// `batch`, of the chunks that end in it, in order. The chunk still open
    /// at the end is carried into the next call.
    pub(crate) fn cuts(&mut self, batch: &[u8]) -> &[usize] {
        let n = batch.len();
        let start = -(self.chunk_len as isize);
        let mut truth = Lane::at_chunk_start(0, start, n);
        if self.chunk_len > MIN_SIZE {
            truth.pattern = self.pattern;
        }
        self.cuts.clear();
        if n < LANES_FROM || self.serial_batches > 0 {
            self.serial_batches = self.serial_batches.saturating_sub(1);
            while let Some(cut) = truth.next_cut(batch) {
                self.cuts.push(cut);
            }
        } else {
            let in_step;
            (truth, in_step) = self.chunk_in_lanes(batch, truth);
            if in_step {
                self.backoff = 1;
            } else {
                self.serial_batches = self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
        self.chunk_len = (n as isize - truth.start) as usize;
        self.pattern = truth.pattern;
        &self.cuts
    }

    /// Chunks `batch` in lanes and splices their cuts into `cuts`, starting
    /// from `truth` (the stream's open chunk at the batch start). Returns the
    /// true chunking's state at the end of the batch, and whether every lane
    /// fell in step with it.
    fn chunk_in_lanes(&mut self, batch: &[u8], truth: Lane) -> (Lane, bool) {
        let n = batch.len();
        let seg = n / LANES;
        let overlap = OVERLAP.min(seg / 2);
        let segment_end = |id: usize| if id + 1 == LANES { n } else { (id + 1) * seg };
        let mut lanes: [Lane; LANES] = std::array::from_fn(|id| {
            if id == 0 {
                Lane {
                    end: segment_end(0),
                    ..truth
                }
            } else {
                Lane::at_chunk_start(id, (id * seg - overlap) as isize, segment_end(id))
            }
        });
        for list in &mut self.lane_cuts {
            list.clear();
        }

        // Run the lanes together, dropping each as it reaches its end.
        let mut finished = lanes;
        let mut active = LANES;
        while active > 0 {
            match active {
                4 => run_lanes::<4>(batch, &mut lanes, &mut self.lane_cuts),
                3 => run_lanes::<3>(batch, &mut lanes, &mut self.lane_cuts),
                2 => run_lanes::<2>(batch, &mut lanes, &mut self.lane_cuts),
                _ => run_lanes::<1>(batch, &mut lanes, &mut self.lane_cuts),
            }
            let mut still = 0;
            for i in 0..active {
                let lane = lanes[i];
                if lane.pos < lane.end {
                    lanes[still] = lane;
                    still += 1;
                } else {
                    finished[lane.id] = lane;
                }
            }
            active = still;
        }

        // Follow the true chunking through the lanes.
        self.cuts.extend_from_slice(&self.lane_cuts[0]);
        let mut truth = finished[0];
        let mut in_step = true;
        for (lane, lane_cuts) in finished.iter().zip(&self.lane_cuts).skip(1) {
            let assumed_start = (lane.id * seg - overlap) as isize;
            let shared = |start: isize| {
                if start == assumed_start {
                    Some(0)
                } else {
                    let start = usize::try_from(start).ok()?;
                    lane_cuts.binary_search(&start).ok().map(|i| i + 1)
                }
            };
            let mut from = shared(truth.start);
            truth.end = lane.end;
            while from.is_none() {
                #[cfg(test)]
                let before = truth.pos;
                let cut = truth.next_cut(batch);
                #[cfg(test)]
                {
                    self.serial_bytes += cut.unwrap_or(truth.pos).saturating_sub(before);
                }
                let Some(cut) = cut else { break };
                self.cuts.push(cut);
                from = shared(cut as isize);
            }
            if let Some(from) = from {
                self.cuts.extend_from_slice(&lane_cuts[from..]);
                truth = *lane;
            } else {
                in_step = false;
            }
        }
        (truth, in_step)
    }
}

/// Runs the first `K` of `lanes` side by side until one of them reaches its
/// end, pushing each lane's cuts to `cuts[lane.id]`.
///
/// Each round feeds every lane the same number of bytes, as many as none of
/// them can end a chunk by `MAX_SIZE` or reach its end in, and stops at the
/// first byte where a lane's pattern matches `MASK_RELAXED` (one in 512). The
/// loop itself only shifts, adds and tests, so the patterns and the lanes'
/// positions stay in registers; whether the match is a cut is decided after.
fn run_lanes<const K: usize>(
    data: &[u8],
    lanes: &mut [Lane; LANES],
    cuts: &mut [Vec<usize>; LANES],
) {
    let Some((lanes, _)) = lanes.split_first_chunk_mut::<K>() else {
        unreachable!("run_lanes is called with K <= LANES");
    };
    loop {
        let steps = lanes
            .iter()
            .map(|lane| (MAX_SIZE - lane.len()).min(lane.end.saturating_sub(lane.pos)))
            .min()
            .unwrap_or(0);
        let bytes: [&[u8]; K] = std::array::from_fn(|j| &data[lanes[j].pos..][..steps]);
        let mut patterns: [u32; K] = std::array::from_fn(|j| lanes[j].pattern);
        // The first byte (`at`) and lane (`matched`) where a pattern matched.
        let mut at = steps;
        let mut matched = K;
        'bytes: for i in 0..steps {
            for j in 0..K {
                let p = (patterns[j] >> 1).wrapping_add(GEAR[usize::from(bytes[j][i])]);
                patterns[j] = p;
                if p & MASK_RELAXED == 0 {
                    (at, matched) = (i, j);
                    break 'bytes;
                }
            }
        }
        let mut done = false;
        for (j, lane) in lanes.iter_mut().enumerate() {
            // Lanes up to `matched` were fed byte `at`, the others not.
            lane.pos += at + usize::from(j <= matched && matched < K);
            lane.pattern = patterns[j];
            let cut = j == matched && (lane.len() > CENTRE_SIZE || lane.pattern & MASK_STRICT == 0);
            if cut || lane.len() == MAX_SIZE {
                cuts[lane.id].push(lane.cut());
            }
            done |= lane.pos >= lane.end;
        }
        if done {
            return;
        }
    }
}

/// Incremental ISCC Data-Code, equal to `iscc_lib::gen_data_code_v0` of the
/// concatenated updates however they are split.
///
/// Updates are chunked in place in batches of 256 KiB; only what does not
/// fill a batch is copied aside until the next update completes it. Each chunk
/// is hashed where it lies, and one that spans batches is hashed as it streams
/// past. Memory is at most 256 KiB plus one 4-byte feature per chunk (about 4
/// bytes per KiB of stream).
pub struct DataCodeHasher {
    chunker: Chunker,
    /// Bytes waiting for a full batch; always shorter than `BATCH`.
    stash: Vec<u8>,
    /// xxh32 of the bytes of the open chunk seen so far.
    partial: Xxh32,
    /// xxh32 of every finished chunk, the MinHash input.
    features: Vec<u32>,
    /// The length of every finished chunk, for the tests to compare with
    /// iscc-lib's chunk list.
    #[cfg(test)]
    lengths: Vec<usize>,
}

impl DataCodeHasher {
    /// Starts a Data-Code of an empty stream.
    pub fn new() -> Self {
        Self {
            chunker: Chunker::new(),
            stash: Vec::new(),
            partial: Xxh32::new(0),
            features: Vec::new(),
            #[cfg(test)]
            lengths: Vec::new(),
        }
    }

    /// Appends `data` to the stream. Any size, including empty, is fine.
    pub fn update(&mut self, mut data: &[u8]) {
        if !self.stash.is_empty() {
            let take = data.len().min(BATCH - self.stash.len());
            self.stash.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.stash.len() < BATCH {
                return;
            }
            let stash = std::mem::take(&mut self.stash);
            self.consume(&stash);
            self.stash = stash;
            self.stash.clear();
        }
        let mut batches = data.chunks_exact(BATCH);
        for batch in &mut batches {
            self.consume(batch);
        }
        self.stash.extend_from_slice(batches.remainder());
    }

    /// Chunks `batch` and hashes the chunks that end in it.
    fn consume(&mut self, batch: &[u8]) {
        let carried = self.chunker.pending_len();
        let cuts = self.chunker.cuts(batch);
        let mut start = 0;
        for &end in cuts {
            let chunk = &batch[start..end];
            let feature = if start == 0 && carried > 0 {
                self.partial.update(chunk);
                let feature = self.partial.digest();
                self.partial.reset(0);
                feature
            } else {
                xxh32(chunk, 0)
            };
            self.features.push(feature);
            #[cfg(test)]
            self.lengths
                .push(end - start + if start == 0 { carried } else { 0 });
            start = end;
        }
        self.partial.update(&batch[start..]);
    }

    /// Finishes the stream and returns its Data-Code of `bits` bits (64, 128,
    /// 192 or 256) in canonical `ISCC:...` form.
    pub fn finish(mut self, bits: u32) -> Result<String> {
        let stash = std::mem::take(&mut self.stash);
        self.consume(&stash);
        if self.chunker.pending_len() > 0 {
            self.features.push(self.partial.digest());
        } else if self.features.is_empty() {
            // The empty stream is one empty chunk, as in iscc-lib.
            self.features.push(xxh32(b"", 0));
        }
        let digest = iscc_lib::alg_minhash_256(&self.features);
        let component = encode_component(MainType::Data, SubType::None, Version::V0, bits, &digest)
            .map_err(FingerprintError::Iscc)?;
        Ok(format!("ISCC:{component}"))
    }
}

impl Default for DataCodeHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DataCodeHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataCodeHasher")
            .field("chunks", &self.features.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift64), so failures reproduce.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// `len` pseudo-random bytes, the same for the same `seed`.
    fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed);
        (0..len).map(|_| rng.next() as u8).collect()
    }

    /// `len` bytes repeating `pattern`.
    fn repeating(pattern: &[u8], len: usize) -> Vec<u8> {
        pattern.iter().copied().cycle().take(len).collect()
    }

    /// Random stretches between runs of one byte and short repeating
    /// patterns, of many lengths: data where the true pattern and the lanes'
    /// may take long to meet, or never do before the next cut.
    fn mixed(len: usize, seed: u64) -> Vec<u8> {
        let mut rng = Rng(seed);
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            match rng.below(3) {
                0 => {
                    let n = 1 + rng.below(5000);
                    out.extend((0..n).map(|_| rng.next() as u8));
                }
                1 => {
                    let byte = rng.next() as u8;
                    out.extend(std::iter::repeat_n(byte, 1 + rng.below(20_000)));
                }
                _ => {
                    let pattern = random_bytes(1 + rng.below(300), rng.next());
                    out.extend(repeating(&pattern, 1 + rng.below(20_000)));
                }
            }
        }
        out.truncate(len);
        out
    }

    /// Ways to split a stream into updates: each list of sizes is cycled
    /// until the stream is used up (`usize::MAX` is the whole stream at once).
    /// They straddle the lanes' threshold and the internal batches in every way.
    const CHUNKINGS: &[&[usize]] = &[
        &[usize::MAX],
        &[1],
        &[7],
        &[LANES_FROM - 1],
        &[LANES_FROM],
        &[BATCH - 1],
        &[BATCH + 1],
        &[3 * BATCH + 5],
        &[
            0,
            1,
            BATCH - 1,
            2,
            BATCH,
            3 * BATCH + 5,
            10,
            0,
            LANES_FROM + 3,
            4095,
        ],
    ];

    /// `data` split into updates of `sizes`, cycled.
    fn pieces<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
        assert!(sizes.iter().any(|&size| size > 0), "sizes must progress");
        let mut out = Vec::new();
        let mut rest = data;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(size.min(rest.len()));
            out.push(piece);
            rest = tail;
        }
        out
    }

    /// The chunk lengths of iscc-lib's own chunker, the reference.
    fn expected_lengths(data: &[u8]) -> Vec<usize> {
        iscc_lib::alg_cdc_chunks(data, false, 1024)
            .expect("1024 is a valid average")
            .iter()
            .map(|chunk| chunk.len())
            .collect()
    }

    /// The chunk lengths (in iscc-lib's form: the empty stream is one empty
    /// chunk) and the Data-Code of `bits` bits of `pieces`, streamed.
    fn stream(pieces: &[&[u8]], bits: u32) -> (Vec<usize>, String) {
        let mut hasher = DataCodeHasher::new();
        for piece in pieces {
            hasher.update(piece);
        }
        // What `finish` does first, so the last batch's chunks are counted.
        let stash = std::mem::take(&mut hasher.stash);
        hasher.consume(&stash);
        let mut lengths = hasher.lengths.clone();
        let open = hasher.chunker.pending_len();
        if open > 0 || lengths.is_empty() {
            lengths.push(open);
        }
        let total: usize = pieces.iter().map(|piece| piece.len()).sum();
        assert_eq!(
            lengths.iter().sum::<usize>(),
            total,
            "chunks cover the stream"
        );
        (lengths, hasher.finish(bits).expect("valid bit length"))
    }

    /// Checks chunk lists and Data-Codes (64 and 256 bits) of `data` against
    /// iscc-lib under every chunking in `CHUNKINGS`, naming `what` on failure.
    fn assert_matches_iscc_lib(what: &str, data: &[u8]) {
        let expected = expected_lengths(data);
        let codes: Vec<String> = [64, 256]
            .map(|bits| {
                iscc_lib::gen_data_code_v0(data, bits)
                    .expect("valid bit length")
                    .iscc
            })
            .into();
        for sizes in CHUNKINGS {
            let pieces = pieces(data, sizes);
            let (got, code_64) = stream(&pieces, 64);
            if got != expected {
                let at = got
                    .iter()
                    .zip(&expected)
                    .take_while(|(a, b)| a == b)
                    .count();
                panic!(
                    "{what} ({} bytes) in updates of {sizes:?}: chunk {at} is {:?}, iscc-lib's is {:?}",
                    data.len(),
                    got.get(at),
                    expected.get(at)
                );
            }
            assert_eq!(code_64, codes[0], "{what} in updates of {sizes:?}, 64 bits");
            let code_256 = stream(&pieces, 256).1;
            assert_eq!(
                code_256, codes[1],
                "{what} in updates of {sizes:?}, 256 bits"
            );
        }
    }

    /// On random data, spanning many batches and ending mid-batch, every
    /// chunking gives iscc-lib's chunks and Data-Code.
    #[test]
    fn random_data_matches_iscc_lib() {
        assert_matches_iscc_lib("random", &random_bytes(5 * BATCH + 40_000, 1));
    }

    /// All-zero data, where every chunk runs to the maximum size, gives
    /// iscc-lib's chunks and Data-Code under every chunking.
    #[test]
    fn zeros_match_iscc_lib() {
        let data = vec![0u8; 3 * BATCH + 77];
        assert!(
            expected_lengths(&data).contains(&MAX_SIZE),
            "max-size cuts tested"
        );
        assert_matches_iscc_lib("zeros", &data);
    }

    /// Short repeating patterns (one byte, odd periods, periods around the
    /// checkpoint and lane sizes) give iscc-lib's chunks and Data-Code:
    /// cuts there come from the maximum size or from a pattern cycle, and the
    /// true pattern may never meet the lanes'.
    #[test]
    fn repeating_patterns_match_iscc_lib() {
        for period in [1, 2, 3, 5, 16, 17, 64, 255, 256, 1000, 4099] {
            let pattern = random_bytes(period, period as u64);
            let data = repeating(&pattern, 2 * BATCH + 17_777);
            assert_matches_iscc_lib(&format!("period {period}"), &data);
        }
        let counting: Vec<u8> = (0..=255).collect();
        assert_matches_iscc_lib("0..=255", &repeating(&counting, 2 * BATCH + 5));
    }

    /// Random data broken by runs of one byte and repeating patterns of many
    /// lengths gives iscc-lib's chunks and Data-Code under every chunking.
    #[test]
    fn mixed_data_matches_iscc_lib() {
        for seed in 1..=3 {
            assert_matches_iscc_lib(&format!("mixed {seed}"), &mixed(4 * BATCH + 29_999, seed));
        }
    }

    /// Streams around the minimum, centre and maximum chunk sizes and the
    /// lanes' threshold, including empty and shorter than the minimum, give
    /// iscc-lib's chunks and Data-Code.
    #[test]
    fn short_streams_match_iscc_lib() {
        let lengths = [
            0,
            1,
            2,
            100,
            MIN_SIZE - 1,
            MIN_SIZE,
            MIN_SIZE + 1,
            CENTRE_SIZE,
            CENTRE_SIZE + 1,
            MAX_SIZE - 1,
            MAX_SIZE,
            MAX_SIZE + 1,
            LANES_FROM - 1,
            LANES_FROM,
            LANES_FROM + 1,
            BATCH / 2 + 3,
            BATCH - 1,
            BATCH,
            BATCH + 1,
        ];
        for len in lengths {
            assert_matches_iscc_lib(&format!("random {len}"), &random_bytes(len, 7));
            assert_matches_iscc_lib(&format!("zeros {len}"), &vec![0; len]);
        }
    }

    /// Updates of random sizes (0 to a few batches) over mixed data give
    /// iscc-lib's chunks and Data-Code, however the cuts fall against the
    /// update and batch boundaries.
    #[test]
    fn random_update_sizes_match_iscc_lib() {
        let data = mixed(3 * BATCH, 42);
        let expected = expected_lengths(&data);
        let code = iscc_lib::gen_data_code_v0(&data, 64).expect("valid").iscc;
        let mut rng = Rng(99);
        for round in 0..40 {
            let sizes: Vec<usize> = (0..16)
                .map(|_| match rng.below(4) {
                    0 => rng.below(16),
                    1 => rng.below(MAX_SIZE),
                    2 => rng.below(BATCH + 1),
                    _ => rng.below(3 * BATCH),
                })
                .chain([1])
                .collect();
            let (lengths, got) = stream(&pieces(&data, &sizes), 64);
            assert_eq!(lengths, expected, "round {round}: {sizes:?}");
            assert_eq!(got, code, "round {round}: {sizes:?}");
        }
    }

    /// On random data every lane falls in step with the true chunking within
    /// its overlap: under 1 % of the bytes are chunked alone between lanes.
    /// Fails if the fast path silently stops being taken.
    #[test]
    fn lanes_carry_random_data() {
        let data = random_bytes(8 * BATCH, 3);
        let mut chunker = Chunker::new();
        for batch in data.chunks(BATCH) {
            chunker.cuts(batch);
        }
        assert!(
            chunker.serial_bytes * 100 < data.len(),
            "{} of {} bytes chunked alone",
            chunker.serial_bytes,
            data.len()
        );
    }

    /// On all-zero data the lanes never fall in step (every chunk is
    /// `MAX_SIZE`, counted from a different start), so the byte-by-byte
    /// fallback that `zeros_match_iscc_lib` checks is really exercised; the
    /// next batch is then chunked byte by byte, and the one after by lanes
    /// again, which miss again and back off for two batches.
    #[test]
    fn zeros_take_the_fallback() {
        let zeros = vec![0u8; BATCH];
        let mut chunker = Chunker::new();
        chunker.cuts(&zeros);
        assert!(chunker.serial_bytes > BATCH / 2, "{}", chunker.serial_bytes);
        assert_eq!((chunker.serial_batches, chunker.backoff), (1, 2));
        chunker.cuts(&zeros);
        assert_eq!((chunker.serial_batches, chunker.backoff), (0, 2));
        chunker.cuts(&zeros);
        assert_eq!((chunker.serial_batches, chunker.backoff), (2, 4));
    }

    /// A bit length iscc-lib does not support is an error, not a panic.
    #[test]
    fn unsupported_bit_length_is_an_error() {
        let result = DataCodeHasher::new().finish(65);
        assert!(matches!(result, Err(FingerprintError::Iscc(_))));
    }
}
