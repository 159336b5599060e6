//! MP4/MOV demuxing: finds the H.264 video track and walks its samples in
//! decode order, reading each one by offset so the media data (`mdat`) is
//! never loaded whole.
//!
//! Only the `moov` box is read into memory, and only up to
//! [`MAX_MOOV_BYTES`]. Its box tree is checked (every child inside its parent)
//! and cut down to the video tracks without their metadata before the `mp4`
//! crate parses it: that bounds every allocation the crate makes by the size
//! of what we hand it, and keeps QuickTime metadata or audio descriptions the
//! crate does not understand from failing a file whose video is fine. The
//! sample tables are then walked here, in one linear pass, rather than through
//! `Mp4Track::read_sample`, which allocates whatever size a sample table
//! claims and rescans tables for every sample.

use std::io::{Cursor, Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mp4::{BoxType, MoovBox, ReadBox};

use crate::error::{FingerprintError, Result};

/// Largest `moov` box read into memory. Six hours of 60 fps video with its
/// sound track needs about 30 MB of sample tables.
const MAX_MOOV_BYTES: u64 = 64 * 1024 * 1024;

/// Largest single video sample (one coded picture) accepted. An intra frame
/// of 8K video at very high quality stays well below this.
pub(crate) const MAX_SAMPLE_BYTES: u32 = 32 * 1024 * 1024;

/// Most top-level boxes walked looking for `moov`. A plain MP4 has three or
/// four; a fragmented one two per fragment, and fragments are refused anyway.
const MAX_TOP_LEVEL_BOXES: usize = 65_536;

/// Size of a box header without the 64-bit size extension.
const HEADER_LEN: u64 = 8;

/// The H.264 video track of a file, with everything needed to decode it.
pub(crate) struct VideoTrack {
    /// Units per second of the track's timestamps.
    pub(crate) timescale: u32,
    /// Duration declared in the media header, in `timescale` units.
    pub(crate) declared_duration: u64,
    /// Width declared in the sample description.
    pub(crate) width: u16,
    /// Height declared in the sample description.
    pub(crate) height: u16,
    /// Bytes in each NAL unit length prefix (1, 2 or 4).
    pub(crate) nal_length_size: usize,
    /// Sequence parameter sets from the `avcC` box.
    pub(crate) sps: Vec<Vec<u8>>,
    /// Picture parameter sets from the `avcC` box.
    pub(crate) pps: Vec<Vec<u8>>,
    /// The sample tables.
    tables: Tables,
    /// Where the file starts in the reader (offsets in the tables are from here).
    base: u64,
    /// Length of the file from `base`.
    file_len: u64,
}

/// The sample tables of a track, taken out of the `mp4` crate's types
/// (which it does not export by name).
#[derive(Debug, Default)]
struct Tables {
    /// Time-to-sample (`stts`): runs of (sample count, duration).
    stts: Vec<(u32, u32)>,
    /// Composition offsets (`ctts`): runs of (sample count, offset).
    ctts: Vec<(u32, i32)>,
    /// Sample-to-chunk (`stsc`): (first chunk, 1-based; samples per chunk).
    stsc: Vec<(u32, u32)>,
    /// Size of every sample when they are all the same size, else 0.
    sample_size: u32,
    /// Size of each sample when `sample_size` is 0.
    sample_sizes: Vec<u32>,
    /// Number of samples.
    sample_count: u32,
    /// File offset of each chunk (`stco` or `co64`).
    chunk_offsets: Vec<u64>,
}

/// One sample (coded picture) of the track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Byte offset in the file.
    pub(crate) offset: u64,
    /// Size in bytes.
    pub(crate) size: u32,
    /// Composition (presentation) time, in track timescale units.
    pub(crate) cts: i64,
    /// Duration until the next sample's decode time, in timescale units.
    pub(crate) duration: u32,
}

impl VideoTrack {
    /// Number of samples the tables declare.
    pub(crate) fn sample_count(&self) -> u32 {
        self.tables.sample_count
    }

    /// The samples in decode order. Entries whose bytes lie past the end of
    /// the file (a truncated upload) end the iteration.
    pub(crate) fn samples(&self) -> SampleIter<'_> {
        SampleIter {
            tables: &self.tables,
            file_len: self.file_len,
            index: 0,
            stts_entry: 0,
            stts_left: self.tables.stts.first().map_or(0, |e| e.0),
            dts: 0,
            ctts_entry: 0,
            ctts_left: self.tables.ctts.first().map_or(0, |e| e.0),
            stsc_entry: 0,
            chunk: 0,
            left_in_chunk: 0,
            offset: 0,
        }
    }

    /// Reads one sample's bytes into `buf` (reusing its allocation).
    pub(crate) fn read_sample<R: Read + Seek>(
        &self,
        reader: &mut R,
        sample: &Sample,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        let size = usize::try_from(sample.size)
            .map_err(|_| corrupt("sample larger than this machine can address"))?;
        buf.clear();
        buf.resize(size, 0);
        reader
            .seek(SeekFrom::Start(self.base + sample.offset))
            .and_then(|_| reader.read_exact(buf))
            .map_err(|e| FingerprintError::VideoDecode(format!("could not read a sample: {e}")))
    }
}

/// Finds and parses the first H.264 video track of the MP4/MOV in `reader`,
/// which must be positioned at the start of the file.
pub(crate) fn open_video_track<R: Read + Seek>(reader: &mut R) -> Result<VideoTrack> {
    let base = reader.stream_position().map_err(FingerprintError::Io)?;
    let end = reader
        .seek(SeekFrom::End(0))
        .map_err(FingerprintError::Io)?;
    let file_len = end.saturating_sub(base);
    let (moov_offset, moov_len, fragmented) = find_moov(reader, base, file_len)?;
    if moov_len > MAX_MOOV_BYTES {
        return Err(FingerprintError::LimitExceeded(format!(
            "the MP4 header (moov box) is {moov_len} bytes, more than the {MAX_MOOV_BYTES} accepted"
        )));
    }
    // Bounded by MAX_MOOV_BYTES just above, so the cast cannot truncate.
    let mut moov = vec![0u8; moov_len as usize];
    reader
        .seek(SeekFrom::Start(base + moov_offset))
        .and_then(|_| reader.read_exact(&mut moov))
        .map_err(|e| corrupt(&format!("could not read the moov box: {e}")))?;

    let mut unsupported = None;
    for trak in child_boxes(&moov, header_len(&moov))? {
        let trak = trak?;
        if trak.kind != *b"trak" || handler_type(trak.bytes)? != Some(*b"vide") {
            continue;
        }
        let mut parsed = parse_video_trak(&moov, trak.bytes)?;
        let Some(trak) = parsed.traks.first_mut() else {
            return Err(corrupt("the video track vanished while parsing"));
        };
        let stbl = &mut trak.mdia.minf.stbl;
        let Some(avc1) = stbl.stsd.avc1.as_ref() else {
            unsupported = Some(if stbl.stsd.hev1.is_some() {
                "H.265/HEVC"
            } else if stbl.stsd.vp09.is_some() {
                "VP9"
            } else {
                "not H.264"
            });
            continue;
        };
        if stbl.stsz.sample_count == 0 && fragmented {
            return Err(FingerprintError::VideoDecode(
                "fragmented MP4 is not supported".into(),
            ));
        }
        let avcc = &avc1.avcc;
        let nal_length_size = usize::from(avcc.length_size_minus_one & 3) + 1;
        if nal_length_size == 3 {
            return Err(corrupt("NAL length size of 3 bytes is not allowed"));
        }
        let timescale = trak.mdia.mdhd.timescale;
        if timescale == 0 {
            return Err(corrupt("track timescale is zero"));
        }
        let sps = avcc
            .sequence_parameter_sets
            .iter()
            .map(|n| n.bytes.clone())
            .collect();
        let pps = avcc
            .picture_parameter_sets
            .iter()
            .map(|n| n.bytes.clone())
            .collect();
        let (width, height) = (avc1.width, avc1.height);
        let chunk_offsets = match (stbl.co64.as_mut(), stbl.stco.as_mut()) {
            (Some(co64), _) => std::mem::take(&mut co64.entries),
            (None, Some(stco)) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
            (None, None) => Vec::new(),
        };
        let tables = Tables {
            stts: stbl
                .stts
                .entries
                .iter()
                .map(|e| (e.sample_count, e.sample_delta))
                .collect(),
            ctts: stbl.ctts.as_ref().map_or_else(Vec::new, |c| {
                c.entries
                    .iter()
                    .map(|e| (e.sample_count, e.sample_offset))
                    .collect()
            }),
            stsc: stbl
                .stsc
                .entries
                .iter()
                .map(|e| (e.first_chunk, e.samples_per_chunk))
                .collect(),
            sample_size: stbl.stsz.sample_size,
            sample_sizes: std::mem::take(&mut stbl.stsz.sample_sizes),
            sample_count: stbl.stsz.sample_count,
            chunk_offsets,
        };
        return Ok(VideoTrack {
            timescale,
            declared_duration: trak.mdia.mdhd.duration,
            width,
            height,
            nal_length_size,
            sps,
            pps,
            tables,
            base,
            file_len,
        });
    }
    Err(FingerprintError::VideoDecode(match unsupported {
        Some(codec) => format!("video codec {codec} is not supported (only H.264)"),
        None => "no video track".into(),
    }))
}

/// What the movie header says about the tracks that
/// [`content_fingerprint`](crate::content_fingerprint) decodes, read box by
/// box with seeks: only box headers and a few small boxes, never the sample
/// tables of the `moov` as a whole.
#[derive(Debug, Default)]
pub(crate) struct HeaderProbe {
    /// Length of the `moov` box, which the decoders read into memory whole.
    pub(crate) moov_len: u64,
    /// The track [`open_video_track`] would pick, if its header reads.
    pub(crate) video: Option<VideoHeader>,
}

/// The header of an H.264 video track.
#[derive(Debug, Default)]
pub(crate) struct VideoHeader {
    /// Units per second of the track's timestamps.
    pub(crate) timescale: u32,
    /// Declared duration in `timescale` units.
    pub(crate) duration: u64,
    /// Width declared in the sample description.
    pub(crate) width: u16,
    /// Height declared in the sample description.
    pub(crate) height: u16,
    /// Sequence parameter sets from the `avcC` box.
    pub(crate) sps: Vec<Vec<u8>>,
    /// Number of samples (`stsz`).
    pub(crate) sample_count: u32,
    /// Largest sample, in bytes (`stsz`).
    pub(crate) max_sample_size: u32,
    /// Upper bound of the presentation span in `timescale` units, from the
    /// sample tables: the sum of the sample durations (`stts`) plus the
    /// spread of the composition offsets (`ctts`). `None` when the tables
    /// are larger than the probe reads.
    pub(crate) span: Option<u64>,
}

/// Most children read from one box while probing. Real files have a handful;
/// more means a file built to make the probe slow.
const MAX_PROBED_CHILDREN: usize = 4096;

/// Largest sample description read while probing; the first entry, all that
/// is read of it, comes well before this.
const MAX_PROBED_STSD: u64 = 1 << 20;

/// Reads what [`HeaderProbe`] holds from the MP4/MOV in `reader`, which
/// must be positioned at its start. Fails as [`open_video_track`] would when
/// there is no `moov` or it is larger than the decoders accept; a track whose
/// header does not read is left out.
pub(crate) fn probe_header<R: Read + Seek>(reader: &mut R) -> Result<HeaderProbe> {
    let base = reader.stream_position().map_err(FingerprintError::Io)?;
    let end = reader
        .seek(SeekFrom::End(0))
        .map_err(FingerprintError::Io)?;
    let file_len = end.saturating_sub(base);
    let (moov_offset, moov_len, _) = find_moov(reader, base, file_len)?;
    if moov_len > MAX_MOOV_BYTES {
        return Err(FingerprintError::LimitExceeded(format!(
            "the MP4 header (moov box) is {moov_len} bytes, more than the {MAX_MOOV_BYTES} accepted"
        )));
    }
    let mut probe = HeaderProbe {
        moov_len,
        ..HeaderProbe::default()
    };
    let moov_start = base + moov_offset;
    let moov = ProbedBox::read(reader, moov_start, moov_start + moov_len)?;
    for trak in children(reader, &moov)? {
        if trak.kind != *b"trak" {
            continue;
        }
        // A track that does not read is one the decoder would not decode.
        if let Ok(Some(video)) = probe_video_trak(reader, &trak) {
            probe.video = Some(video);
            break;
        }
    }
    Ok(probe)
}

/// A box found while probing: where it is in the reader.
#[derive(Debug, Clone, Copy)]
struct ProbedBox {
    kind: [u8; 4],
    /// Where its payload starts.
    body: u64,
    /// Where it ends.
    end: u64,
}

impl ProbedBox {
    /// The box at `at`, which must end by `limit`.
    fn read<R: Read + Seek>(reader: &mut R, at: u64, limit: u64) -> Result<Self> {
        let mut head = [0u8; 16];
        reader
            .seek(SeekFrom::Start(at))
            .and_then(|_| reader.read_exact(&mut head[..8]))
            .map_err(|e| corrupt(&format!("could not read a box header: {e}")))?;
        let kind = [head[4], head[5], head[6], head[7]];
        let (size, header) = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => (limit.saturating_sub(at), HEADER_LEN),
            1 => {
                reader
                    .read_exact(&mut head[8..16])
                    .map_err(|e| corrupt(&format!("could not read a box header: {e}")))?;
                let mut large = [0u8; 8];
                large.copy_from_slice(&head[8..16]);
                (u64::from_be_bytes(large), 2 * HEADER_LEN)
            }
            n => (u64::from(n), HEADER_LEN),
        };
        let end = at.checked_add(size).filter(|&end| end <= limit);
        match end {
            Some(end) if size >= header => Ok(Self {
                kind,
                body: at + header,
                end,
            }),
            _ => Err(corrupt("a box larger than its parent")),
        }
    }

    /// The first `max` bytes of its payload.
    fn payload<R: Read + Seek>(&self, reader: &mut R, max: u64) -> Result<Vec<u8>> {
        // At most `max`, which callers keep small.
        let len = (self.end - self.body).min(max) as usize;
        let mut bytes = vec![0u8; len];
        reader
            .seek(SeekFrom::Start(self.body))
            .and_then(|_| reader.read_exact(&mut bytes))
            .map_err(|e| corrupt(&format!("could not read a box: {e}")))?;
        Ok(bytes)
    }
}

/// The children of a container box (at most [`MAX_PROBED_CHILDREN`]).
fn children<R: Read + Seek>(reader: &mut R, parent: &ProbedBox) -> Result<Vec<ProbedBox>> {
    let mut found = Vec::new();
    let mut at = parent.body;
    while parent.end.saturating_sub(at) >= HEADER_LEN {
        if found.len() == MAX_PROBED_CHILDREN {
            return Err(corrupt("a box with too many children"));
        }
        let child = ProbedBox::read(reader, at, parent.end)?;
        at = child.end;
        found.push(child);
    }
    Ok(found)
}

/// The child of `parent` of the given kind.
fn child<R: Read + Seek>(
    reader: &mut R,
    parent: &ProbedBox,
    kind: &[u8; 4],
) -> Result<Option<ProbedBox>> {
    Ok(children(reader, parent)?
        .into_iter()
        .find(|child| child.kind == *kind))
}

/// Probes one `trak`: its handler, media header and first sample
/// description; `None` unless it is H.264 video.
fn probe_video_trak<R: Read + Seek>(
    reader: &mut R,
    trak: &ProbedBox,
) -> Result<Option<VideoHeader>> {
    let missing = || corrupt("a track without its media boxes");
    let mdia = child(reader, trak, b"mdia")?.ok_or_else(missing)?;
    let hdlr = child(reader, &mdia, b"hdlr")?.ok_or_else(missing)?;
    // Version and flags, pre_defined, then the handler type.
    let handler = hdlr.payload(reader, 12)?;
    let handler = handler.get(8..12).ok_or_else(missing)?;
    let mdhd = child(reader, &mdia, b"mdhd")?.ok_or_else(missing)?;
    let header = mdhd.payload(reader, 32)?;
    // Version 1 has 64-bit times and duration, version 0 32-bit ones.
    let (timescale, duration) = match header.first() {
        Some(1) => (be_u32(&header, 20), be_u64(&header, 24)),
        _ => (be_u32(&header, 12), be_u32(&header, 16).map(u64::from)),
    };
    let (timescale, duration) = (
        timescale.ok_or_else(missing)?,
        duration.ok_or_else(missing)?,
    );
    let minf = child(reader, &mdia, b"minf")?.ok_or_else(missing)?;
    let stbl = child(reader, &minf, b"stbl")?.ok_or_else(missing)?;
    let stsd = child(reader, &stbl, b"stsd")?.ok_or_else(missing)?;
    let descriptions = stsd.payload(reader, MAX_PROBED_STSD)?;
    // Version and flags, entry count, then the entries as boxes; the first
    // one is all the decoders look at.
    let entry = descriptions.get(8..).ok_or_else(missing)?;
    let entry_kind = entry.get(4..8).ok_or_else(missing)?;
    if handler != b"vide" || entry_kind != b"avc1" {
        return Ok(None);
    }
    let mut video = VideoHeader {
        timescale,
        duration,
        ..VideoHeader::default()
    };
    // VisualSampleEntry: 6 reserved, data reference index, 16 bytes of
    // pre-defined and reserved fields, then width and height.
    let body = entry.get(8..).ok_or_else(missing)?;
    video.width = be_u16(body, 24).ok_or_else(missing)?;
    video.height = be_u16(body, 26).ok_or_else(missing)?;
    // Its child boxes follow the 78 bytes of fixed fields.
    let entry_len = be_u32(entry, 0).map_or(0, |n| n as usize);
    let entry = entry.get(..entry_len).unwrap_or(entry);
    for avcc in child_boxes(entry, 8 + 78)? {
        let avcc = avcc?;
        if avcc.kind == *b"avcC" {
            video.sps = avcc_sps(&avcc.bytes[header_len(avcc.bytes)..]);
        }
    }
    let stsz = child(reader, &stbl, b"stsz")?.ok_or_else(missing)?;
    let sizes = stsz.payload(reader, 12)?;
    let sample_size = be_u32(&sizes, 4).ok_or_else(missing)?;
    video.sample_count = be_u32(&sizes, 8).ok_or_else(missing)?;
    video.max_sample_size = if sample_size != 0 {
        sample_size
    } else {
        let mut max = 0;
        scan_entries(
            reader,
            &stsz,
            12,
            4,
            u64::from(video.sample_count),
            |size| {
                max = max.max(be_u32(size, 0).unwrap_or(0));
            },
        )?;
        max
    };
    video.span = table_span(reader, &stbl)?;
    Ok(Some(video))
}

/// The sequence parameter sets of an `avcC` payload.
fn avcc_sps(avcc: &[u8]) -> Vec<Vec<u8>> {
    // Version, profile, compatibility, level, length size, then the count
    // of SPS in the low five bits, each preceded by its 16-bit length.
    let count = avcc.get(5).map_or(0, |n| n & 0x1f);
    let mut rest = avcc.get(6..).unwrap_or_default();
    let mut sps = Vec::new();
    for _ in 0..count {
        let Some(len) = be_u16(rest, 0) else { break };
        let Some(unit) = rest.get(2..2 + usize::from(len)) else {
            break;
        };
        sps.push(unit.to_vec());
        rest = &rest[2 + usize::from(len)..];
    }
    sps
}

/// Most entries of one table read while probing: as many as the frame
/// limit allows samples, so a table the decode would accept is read whole.
const MAX_PROBED_ENTRIES: u64 = 6 * 3600 * 60;

/// Calls `each` with every entry of `size` bytes of a table box whose
/// entries start `skip` bytes into its payload, at most `count` of them and
/// no more than the box holds, reading a block at a time. Fails when there
/// are more than [`MAX_PROBED_ENTRIES`].
fn scan_entries<R: Read + Seek>(
    reader: &mut R,
    table: &ProbedBox,
    skip: u64,
    size: usize,
    count: u64,
    mut each: impl FnMut(&[u8]),
) -> Result<()> {
    let mut left = count.min((table.end - table.body).saturating_sub(skip) / size as u64);
    if left > MAX_PROBED_ENTRIES {
        return Err(corrupt("a sample table longer than the probe reads"));
    }
    reader
        .seek(SeekFrom::Start(table.body + skip))
        .map_err(FingerprintError::Io)?;
    let mut block = vec![0u8; 4096 * size];
    while left > 0 {
        // At most the block's 4096 entries.
        let entries = left.min(4096) as usize;
        let bytes = &mut block[..entries * size];
        reader
            .read_exact(bytes)
            .map_err(|e| corrupt(&format!("could not read a sample table: {e}")))?;
        bytes.chunks_exact(size).for_each(&mut each);
        left -= entries as u64;
    }
    Ok(())
}

/// The presentation span bound of [`VideoHeader::span`].
fn table_span<R: Read + Seek>(reader: &mut R, stbl: &ProbedBox) -> Result<Option<u64>> {
    let Some(stts) = child(reader, stbl, b"stts")? else {
        return Ok(None);
    };
    let count = stts.payload(reader, 8)?;
    let count = be_u32(&count, 4).map_or(0, u64::from);
    let mut total = 0u64;
    // Entries: sample count, sample duration.
    if scan_entries(reader, &stts, 8, 8, count, |entry| {
        let samples = be_u32(entry, 0).map_or(0, u64::from);
        let duration = be_u32(entry, 4).map_or(0, u64::from);
        total = total.saturating_add(samples.saturating_mul(duration));
    })
    .is_err()
    {
        return Ok(None);
    }
    let (mut low, mut high) = (0i64, 0i64);
    if let Some(ctts) = child(reader, stbl, b"ctts")? {
        let count = ctts.payload(reader, 8)?;
        let count = be_u32(&count, 4).map_or(0, u64::from);
        // Entries: sample count, offset, read as signed as the decode
        // reads them (the `mp4` crate's `CttsEntry`).
        let scanned = scan_entries(reader, &ctts, 8, 8, count, |entry| {
            let offset = i64::from(be_u32(entry, 4).unwrap_or(0).cast_signed());
            low = low.min(offset);
            high = high.max(offset);
        });
        if scanned.is_err() {
            return Ok(None);
        }
    }
    Ok(Some(total.saturating_add(high.abs_diff(low))))
}

/// The big-endian number at `at`, if `bytes` reaches that far.
fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// The big-endian number at `at`, if `bytes` reaches that far.
fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// The big-endian number at `at`, if `bytes` reaches that far.
fn be_u64(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// Walks the top-level boxes; returns the offset and length of `moov` and
/// whether the file has movie fragments (`moof`).
fn find_moov<R: Read + Seek>(reader: &mut R, base: u64, file_len: u64) -> Result<(u64, u64, bool)> {
    let mut pos = 0u64;
    let mut moov = None;
    let mut fragmented = false;
    let mut boxes = 0usize;
    // `pos` saturates on a box claiming a size near 2^64; compare without
    // adding to it.
    while file_len.saturating_sub(pos) >= HEADER_LEN {
        // Each box costs a seek and a read; a file of millions of empty
        // boxes would keep this loop busy for seconds before any decoding.
        boxes += 1;
        if boxes > MAX_TOP_LEVEL_BOXES {
            return Err(corrupt("too many top-level boxes before the movie header"));
        }
        reader
            .seek(SeekFrom::Start(base + pos))
            .map_err(FingerprintError::Io)?;
        let mut head = [0u8; 16];
        reader
            .read_exact(&mut head[..8])
            .map_err(FingerprintError::Io)?;
        let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
        let size = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
            0 => file_len - pos,
            1 => {
                reader
                    .read_exact(&mut head[8..16])
                    .map_err(FingerprintError::Io)?;
                let mut large = [0u8; 8];
                large.copy_from_slice(&head[8..16]);
                u64::from_be_bytes(large)
            }
            n => u64::from(n),
        };
        if size < HEADER_LEN {
            return Err(corrupt("box with an impossible size"));
        }
        match &kind {
            b"moov" if moov.is_none() => {
                // A moov cut short by truncation is still worth parsing: the
                // check below would refuse it, so clamp it to what is there.
                moov = Some((pos, size.min(file_len - pos)));
            }
            b"moof" => fragmented = true,
            _ => {}
        }
        // Samples live in mdat and are read by offset later; moof after moov
        // only matters for the flag above, so stop at the first one.
        if moov.is_some() && (fragmented || kind == *b"mdat") {
            break;
        }
        pos = pos.saturating_add(size);
    }
    let (offset, len) = moov.ok_or_else(|| {
        FingerprintError::VideoDecode(
            "not an MP4/MOV file, or its header (moov box) is missing".into(),
        )
    })?;
    Ok((offset, len, fragmented))
}

/// One box found inside a buffer.
struct RawBox<'a> {
    /// Four-character type.
    kind: [u8; 4],
    /// The whole box, header included.
    bytes: &'a [u8],
}

/// Header length of the box at the start of `bytes` (8, or 16 with a 64-bit
/// size). The caller has already checked the header is there.
fn header_len(bytes: &[u8]) -> usize {
    if bytes.get(..4) == Some(&[0, 0, 0, 1][..]) {
        16
    } else {
        8
    }
}

/// The child boxes of a container whose payload starts at `start` in `bytes`,
/// each checked to lie inside the parent.
fn child_boxes(bytes: &[u8], start: usize) -> Result<impl Iterator<Item = Result<RawBox<'_>>>> {
    let mut rest = bytes
        .get(start..)
        .ok_or_else(|| corrupt("box shorter than its header"))?;
    Ok(std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let item = (|| {
            let head = rest
                .get(..8)
                .ok_or_else(|| corrupt("box header cut short"))?;
            let kind = [head[4], head[5], head[6], head[7]];
            let size = match u32::from_be_bytes([head[0], head[1], head[2], head[3]]) {
                0 => rest.len() as u64,
                1 => {
                    let large = rest
                        .get(8..16)
                        .ok_or_else(|| corrupt("box header cut short"))?;
                    let mut be = [0u8; 8];
                    be.copy_from_slice(large);
                    u64::from_be_bytes(be)
                }
                n => u64::from(n),
            };
            let size = usize::try_from(size)
                .ok()
                .filter(|&s| s >= header_len(rest) && s <= rest.len())
                .ok_or_else(|| corrupt("a box does not fit inside its parent"))?;
            let (this, tail) = rest.split_at(size);
            rest = tail;
            Ok(RawBox { kind, bytes: this })
        })();
        if item.is_err() {
            rest = &[];
        }
        Some(item)
    }))
}

/// The handler type (`vide`, `soun`, ...) of a `trak` box, from `mdia/hdlr`.
fn handler_type(trak: &[u8]) -> Result<Option<[u8; 4]>> {
    for child in child_boxes(trak, header_len(trak))? {
        let child = child?;
        if child.kind != *b"mdia" {
            continue;
        }
        for inner in child_boxes(child.bytes, header_len(child.bytes))? {
            let inner = inner?;
            if inner.kind == *b"hdlr" {
                // Header, version and flags, pre_defined (QuickTime's
                // component type), then the handler type.
                let at = header_len(inner.bytes) + 8;
                return Ok(inner
                    .bytes
                    .get(at..at + 4)
                    .map(|t| [t[0], t[1], t[2], t[3]]));
            }
        }
    }
    Ok(None)
}

/// Containers whose children are checked before the `mp4` crate reads them.
const CONTAINERS: [&[u8; 4]; 6] = [b"trak", b"mdia", b"minf", b"stbl", b"dinf", b"edts"];

/// Checks that every box in the tree under `bytes` fits inside its parent
/// and states its size. A size field of 0 ("to the end of the file") is
/// meaningful only at the top level, and the `mp4` crate takes it inside a
/// container as a box of no bytes, seeking back onto the same header
/// forever.
fn check_tree(bytes: &[u8]) -> Result<()> {
    for child in child_boxes(bytes, header_len(bytes))? {
        let child = child?;
        if child.bytes.starts_with(&[0; 4]) {
            return Err(corrupt("a box inside the movie header has no size"));
        }
        if CONTAINERS.contains(&&child.kind) {
            check_tree(child.bytes)?;
        }
    }
    Ok(())
}

/// Parses one video `trak` with the `mp4` crate, inside a `moov` cut down
/// to that track and the movie header, after dropping the track's metadata
/// boxes (`udta`, `meta`), which the video does not need.
fn parse_video_trak(moov: &[u8], trak: &[u8]) -> Result<MoovBox> {
    let mut kept = Vec::with_capacity(trak.len() + 256);
    kept.extend_from_slice(&[0; 4]); // moov size, written below
    kept.extend_from_slice(b"moov");
    for child in child_boxes(moov, header_len(moov))? {
        let child = child?;
        if child.kind == *b"mvhd" {
            kept.extend_from_slice(child.bytes);
        }
    }
    let trak_start = kept.len();
    kept.extend_from_slice(&[0; 4]); // trak size, written below
    kept.extend_from_slice(b"trak");
    for child in child_boxes(trak, header_len(trak))? {
        let child = child?;
        if child.kind != *b"udta" && child.kind != *b"meta" {
            kept.extend_from_slice(child.bytes);
        }
    }
    // Both came out of a moov no larger than MAX_MOOV_BYTES, so their sizes
    // fit the 32-bit header field.
    let trak_size =
        u32::try_from(kept.len() - trak_start).map_err(|_| corrupt("trak too large"))?;
    kept[trak_start..trak_start + 4].copy_from_slice(&trak_size.to_be_bytes());
    let moov_size = u32::try_from(kept.len()).map_err(|_| corrupt("moov too large"))?;
    kept[..4].copy_from_slice(&moov_size.to_be_bytes());

    // The movie header box was copied in as it came; check it and the
    // track together, as the `mp4` crate will read them.
    check_tree(&kept)?;
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        let mut cursor = Cursor::new(&kept[..]);
        let header = mp4::BoxHeader::read(&mut cursor)?;
        if header.name != BoxType::MoovBox {
            return Err(mp4::Error::InvalidData("not a moov box"));
        }
        MoovBox::read_box(&mut cursor, header.size)
    }))
    .map_err(|_| corrupt("the MP4 parser failed on this track"))?;
    parsed.map_err(|e| corrupt(&format!("could not parse the video track: {e}")))
}

/// Walks the sample tables in step: time-to-sample (`stts`), composition
/// offsets (`ctts`), sample-to-chunk (`stsc`), sizes (`stsz`) and chunk
/// offsets (`stco`/`co64`).
pub(crate) struct SampleIter<'a> {
    /// The tables.
    tables: &'a Tables,
    /// File length, to stop at samples past the end.
    file_len: u64,
    /// Index of the next sample (0-based).
    index: u32,
    /// Current `stts` entry and samples left in it.
    stts_entry: usize,
    /// Samples left in the current `stts` entry.
    stts_left: u32,
    /// Decode time of the next sample.
    dts: i64,
    /// Current `ctts` entry.
    ctts_entry: usize,
    /// Samples left in the current `ctts` entry.
    ctts_left: u32,
    /// Current `stsc` entry.
    stsc_entry: usize,
    /// Current chunk (0-based), valid while `left_in_chunk > 0`.
    chunk: u32,
    /// Samples left in the current chunk.
    left_in_chunk: u32,
    /// File offset of the next sample in the current chunk.
    offset: u64,
}

impl SampleIter<'_> {
    /// The next sample, or `None` at the end of the tables or of the file.
    fn step(&mut self) -> Result<Option<Sample>> {
        let tables = self.tables;
        if self.index >= tables.sample_count {
            return Ok(None);
        }
        let size = if tables.sample_size > 0 {
            tables.sample_size
        } else {
            *tables
                .sample_sizes
                .get(self.index as usize)
                .ok_or_else(|| corrupt("sample size table too short"))?
        };

        // Duration from stts: advance past exhausted entries.
        while self.stts_left == 0 {
            self.stts_entry += 1;
            let entry = tables
                .stts
                .get(self.stts_entry)
                .ok_or_else(|| corrupt("time-to-sample table too short"))?;
            self.stts_left = entry.0;
        }
        let duration = tables.stts[self.stts_entry].1;
        self.stts_left -= 1;

        // Composition offset from ctts (absent: presentation = decode order).
        while self.ctts_left == 0 && self.ctts_entry + 1 < tables.ctts.len() {
            self.ctts_entry += 1;
            self.ctts_left = tables.ctts[self.ctts_entry].0;
        }
        let mut composition_offset = 0i64;
        if self.ctts_left > 0 {
            composition_offset = i64::from(tables.ctts[self.ctts_entry].1);
            self.ctts_left -= 1;
        }

        // Offset from stsc and the chunk offsets.
        if self.left_in_chunk == 0 {
            if self.index > 0 {
                self.chunk += 1;
            }
            while let Some(next) = tables.stsc.get(self.stsc_entry + 1) {
                if next.0.saturating_sub(1) <= self.chunk {
                    self.stsc_entry += 1;
                } else {
                    break;
                }
            }
            let entry = tables
                .stsc
                .get(self.stsc_entry)
                .ok_or_else(|| corrupt("sample-to-chunk table is empty"))?;
            if entry.1 == 0 {
                return Err(corrupt("chunk with no samples"));
            }
            self.left_in_chunk = entry.1;
            self.offset = *tables
                .chunk_offsets
                .get(self.chunk as usize)
                .ok_or_else(|| corrupt("chunk offset table too short"))?;
        }
        let offset = self.offset;
        self.left_in_chunk -= 1;
        self.offset = self.offset.saturating_add(u64::from(size));
        let cts = self.dts.saturating_add(composition_offset);
        self.dts = self.dts.saturating_add(i64::from(duration));
        self.index += 1;

        if offset.saturating_add(u64::from(size)) > self.file_len {
            // Truncated upload: everything from here on is missing.
            self.index = tables.sample_count;
            return Ok(None);
        }
        Ok(Some(Sample {
            offset,
            size,
            cts,
            duration,
        }))
    }
}

impl Iterator for SampleIter<'_> {
    type Item = Result<Sample>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(sample) => sample.map(Ok),
            Err(e) => {
                // Stop after the first error so callers cannot loop on it.
                self.index = self.tables.sample_count;
                Some(Err(e))
            }
        }
    }
}

/// The error for a structurally broken MP4.
fn corrupt(what: &str) -> FingerprintError {
    FingerprintError::VideoDecode(format!("corrupt MP4: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::shared_path;

    /// The shared High profile clip has one 1280x720 H.264 track of 500
    /// samples whose sample walk matches its declared tables.
    #[test]
    fn opens_the_shared_clip() {
        let mut file = std::fs::File::open(shared_path("media/video/clip_a_720p_high.mp4"))
            .expect("open clip");
        let track = open_video_track(&mut file).expect("video track");
        assert_eq!((track.width, track.height), (1280, 720));
        assert_eq!(track.sample_count(), 500);
        assert_eq!(track.nal_length_size, 4);
        let samples: Vec<Sample> = track.samples().collect::<Result<_>>().expect("samples");
        assert_eq!(samples.len(), 500);
        // B-frames: presentation order differs from decode order.
        assert!(samples.windows(2).any(|w| w[1].cts < w[0].cts));
        let mut cts: Vec<i64> = samples.iter().map(|s| s.cts).collect();
        cts.sort_unstable();
        cts.dedup();
        assert_eq!(cts.len(), 500, "every picture has its own time");
    }

    /// A fast-start file cut in half yields the samples before the cut and
    /// no error.
    #[test]
    fn truncated_file_ends_the_samples() {
        let bytes = std::fs::read(shared_path("media/video/clip_a_720p_high.mp4")).expect("read");
        let bytes = super::super::tests::faststart(&bytes);
        let mut cursor = Cursor::new(bytes[..bytes.len() / 2].to_vec());
        let track = open_video_track(&mut cursor).expect("moov is at the start");
        let count = track
            .samples()
            .collect::<Result<Vec<_>>>()
            .expect("samples")
            .len();
        assert!(count > 100 && count < 500, "{count} samples before the cut");
    }

    /// Bytes that are not an MP4 are refused with an error.
    #[test]
    fn refuses_non_mp4() {
        let mut cursor = Cursor::new(b"definitely not a video file".to_vec());
        assert!(open_video_track(&mut cursor).is_err());
        let mut cursor = Cursor::new(Vec::new());
        assert!(open_video_track(&mut cursor).is_err());
    }

    /// A box claiming to be larger than its parent is refused before the
    /// `mp4` crate sees it.
    #[test]
    fn refuses_a_child_larger_than_its_parent() {
        let mut trak = Vec::new();
        trak.extend_from_slice(&24u32.to_be_bytes());
        trak.extend_from_slice(b"trak");
        trak.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
        trak.extend_from_slice(b"mdia");
        trak.extend_from_slice(&[0; 8]);
        assert!(check_tree(&trak).is_err());
        assert!(parse_video_trak(&[], &trak).is_err());
    }

    /// A top-level box claiming a 64-bit size near 2^64 ends the walk with
    /// "no moov", not an arithmetic overflow (found by fuzzing).
    #[test]
    fn huge_top_level_box_is_not_an_overflow() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(b"free");
        bytes.extend_from_slice(&(u64::MAX - 4).to_be_bytes());
        bytes.extend_from_slice(&[0; 64]);
        let mut cursor = Cursor::new(bytes);
        assert!(open_video_track(&mut cursor).is_err());
    }

    /// A box with a size field of 0 inside the track (a fuzzer found one
    /// as the last box of `stbl`, which sent the `mp4` crate into an endless
    /// loop) is refused before the crate sees it, wherever it sits.
    #[test]
    fn refuses_a_sizeless_box_inside_the_track() {
        let boxed = |kind: &[u8; 4], body: &[u8]| {
            let mut b = u32::try_from(body.len() + 8)
                .expect("small")
                .to_be_bytes()
                .to_vec();
            b.extend_from_slice(kind);
            b.extend_from_slice(body);
            b
        };
        let sizeless = [&[0u8; 4][..], b"free", &[0; 8]].concat();
        let stbl = boxed(
            b"stbl",
            &[boxed(b"stts", &[0; 8]), sizeless.clone()].concat(),
        );
        let trak = boxed(b"trak", &boxed(b"mdia", &boxed(b"minf", &stbl)));
        assert!(check_tree(&trak).is_err());
        assert!(parse_video_trak(&[], &trak).is_err());
        // Also a movie header without a size, copied in beside the track.
        let mvhd = [&[0u8; 4][..], b"mvhd", &[0; 100]].concat();
        let moov = boxed(b"moov", &mvhd);
        let fine = boxed(b"trak", &boxed(b"tkhd", &[0; 8]));
        assert!(check_tree(&fine).is_ok());
        assert!(parse_video_trak(&moov, &fine).is_err());
    }
}
