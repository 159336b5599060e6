//! Truncation check for JPEG, which the `image` crate's decoder does not make.
//!
//! The `image` crate runs zune-jpeg in its lenient mode, which decodes a JPEG
//! cut off mid-scan without complaint and fills the missing part with gray.
//! Hashing that would register a fingerprint of a picture nobody made, and the
//! ISCC reference SDK (Pillow) refuses such files as truncated, so we refuse
//! them too: a complete JPEG has an End Of Image marker after its scan data.
//!
//! Also reads the frame header, which says how much the decoder will hold:
//! a progressive JPEG keeps every DCT coefficient until its last scan.

use std::io::{self, BufRead, Seek, SeekFrom};

use crate::error::{FingerprintError, Result};

/// Marker bytes (each follows a 0xFF) that matter here (ITU T.81, Table B.1).
const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const TEM: u8 = 0x01;
const RST0: u8 = 0xD0;
const RST7: u8 = 0xD7;

/// Fails with [`FingerprintError::TruncatedImage`] unless the JPEG in `reader`
/// has scan data followed by an End Of Image marker. Leaves `reader` where it
/// was.
pub(crate) fn ensure_complete<R: BufRead + Seek>(reader: &mut R) -> Result<()> {
    let start = reader.stream_position().map_err(FingerprintError::Io)?;
    let complete = ends_after_scan(reader);
    reader
        .seek(SeekFrom::Start(start))
        .map_err(FingerprintError::Io)?;
    if complete.map_err(FingerprintError::Io)? {
        Ok(())
    } else {
        Err(FingerprintError::TruncatedImage)
    }
}

/// What the frame header (SOFn) of a JPEG says about decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Whether the scans are progressive (SOF2, SOF6, SOF10, SOF14), so the
    /// decoder holds all coefficients of the image at once.
    pub(crate) progressive: bool,
    /// DCT coefficients per pixel of the image, in eighths: the sum over the
    /// components of their share of the samples (4:2:0 YCbCr: 8 + 2 + 2).
    pub(crate) samples_per_pixel_eighths: u32,
}

/// Reads marker segments up to the first frame header (which comes before any
/// scan), leaving `reader` wherever that is. `None` when there is none
/// before the bytes or the segments run out.
pub(crate) fn frame_header<R: BufRead>(reader: &mut R) -> io::Result<Option<Frame>> {
    loop {
        let Some(marker) = next_marker(reader)? else {
            return Ok(None);
        };
        match marker {
            SOI | TEM | RST0..=RST7 => continue,
            EOI | SOS => return Ok(None),
            _ => {}
        }
        let Some(length) = read_u16(reader)? else {
            return Ok(None);
        };
        let body = usize::from(length).saturating_sub(2);
        // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if !is_frame {
            if !skip(reader, body)? {
                return Ok(None);
            }
            continue;
        }
        // Precision (1), height (2), width (2), component count (1), then
        // per component: id (1), sampling factors (1), table (1).
        let mut header = [0u8; 6];
        for byte in &mut header {
            let Some(value) = read_u8(reader)? else {
                return Ok(None);
            };
            *byte = value;
        }
        let mut factors = Vec::new();
        for _ in 0..header[5] {
            let mut component = [0u8; 3];
            for byte in &mut component {
                let Some(value) = read_u8(reader)? else {
                    return Ok(None);
                };
                *byte = value;
            }
            let (h, v) = (u32::from(component[1] >> 4), u32::from(component[1] & 15));
            factors.push((h.max(1), v.max(1)));
        }
        let h_max = factors.iter().map(|f| f.0).max().unwrap_or(1);
        let v_max = factors.iter().map(|f| f.1).max().unwrap_or(1);
        // Rounded up, so a share never counts for less than it is.
        let samples_per_pixel_eighths = factors
            .iter()
            .map(|&(h, v)| (8 * h * v).div_ceil(h_max * v_max))
            .sum();
        return Ok(Some(Frame {
            progressive: matches!(marker, 0xC2 | 0xC6 | 0xCA | 0xCE),
            samples_per_pixel_eighths,
        }));
    }
}

/// Walks the JPEG's marker segments and entropy-coded data; true when an EOI
/// follows at least one scan before the bytes run out.
///
/// Lenient like the decoder: bytes between segments that are not a marker are
/// skipped rather than rejected.
fn ends_after_scan<R: BufRead>(reader: &mut R) -> io::Result<bool> {
    let mut seen_scan = false;
    let mut in_scan = false;
    loop {
        let marker = if in_scan {
            next_marker_in_scan(reader)?
        } else {
            next_marker(reader)?
        };
        let Some(marker) = marker else {
            return Ok(false);
        };
        match marker {
            EOI => return Ok(seen_scan),
            SOI | TEM | RST0..=RST7 => {}
            _ => {
                // Every other marker starts a segment with a 16-bit length that
                // counts itself; the scan data follows SOS's segment.
                let Some(length) = read_u16(reader)? else {
                    return Ok(false);
                };
                if !skip(reader, usize::from(length).saturating_sub(2))? {
                    return Ok(false);
                }
                in_scan = marker == SOS;
                seen_scan |= in_scan;
            }
        }
    }
}

/// The next marker outside scan data: skips to a 0xFF, then over fill bytes.
fn next_marker<R: BufRead>(reader: &mut R) -> io::Result<Option<u8>> {
    loop {
        match read_u8(reader)? {
            None => return Ok(None),
            Some(0xFF) => loop {
                match read_u8(reader)? {
                    None => return Ok(None),
                    Some(0xFF) => {}
                    Some(marker) => return Ok(Some(marker)),
                }
            },
            Some(_) => {}
        }
    }
}

/// The next marker inside entropy-coded data, where 0xFF 0x00 is a stuffed
/// data byte and restart markers belong to the scan.
fn next_marker_in_scan<R: BufRead>(reader: &mut R) -> io::Result<Option<u8>> {
    loop {
        // Skip data bytes a buffer at a time; only 0xFF can start a marker.
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        match memchr::memchr(0xFF, buffer) {
            None => {
                let length = buffer.len();
                reader.consume(length);
                continue;
            }
            Some(at) => reader.consume(at + 1),
        }
        let mut next = read_u8(reader)?;
        while next == Some(0xFF) {
            next = read_u8(reader)?;
        }
        match next {
            None => return Ok(None),
            Some(0x00 | RST0..=RST7) => {}
            Some(marker) => return Ok(Some(marker)),
        }
    }
}

fn read_u8<R: BufRead>(reader: &mut R) -> io::Result<Option<u8>> {
    let buffer = reader.fill_buf()?;
    let Some(&byte) = buffer.first() else {
        return Ok(None);
    };
    reader.consume(1);
    Ok(Some(byte))
}

fn read_u16<R: BufRead>(reader: &mut R) -> io::Result<Option<u16>> {
    let (Some(high), Some(low)) = (read_u8(reader)?, read_u8(reader)?) else {
        return Ok(None);
    };
    Ok(Some(u16::from_be_bytes([high, low])))
}

/// Skips `count` bytes; false if the bytes ran out first.
fn skip<R: BufRead>(reader: &mut R, mut count: usize) -> io::Result<bool> {
    while count > 0 {
        let available = reader.fill_buf()?.len();
        if available == 0 {
            return Ok(false);
        }
        let step = available.min(count);
        reader.consume(step);
        count -= step;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::io::{BufReader, Cursor};

    use super::*;
    use crate::test_support::shared_path;

    /// Every JPEG in the shared media is complete, and the reader is rewound.
    #[test]
    fn shared_jpegs_are_complete() {
        for file in [
            "rocket.jpg",
            "flower.jpg",
            "fallen_leaf_2560x1600.jpg",
            "fallen_leaf_thumbnail.jpg",
            "path_2560x1600.jpg",
            "path_thumbnail.jpg",
        ] {
            let path = shared_path("media/images").join(file);
            let mut reader = BufReader::new(std::fs::File::open(&path).expect("open"));
            ensure_complete(&mut reader).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(reader.stream_position().expect("position"), 0, "{file}");
        }
    }

    /// Any cut through the scan data, or one that drops only the final EOI, is
    /// reported as truncated.
    #[test]
    fn cut_jpegs_are_truncated() {
        let bytes =
            std::fs::read(shared_path("media/images/fallen_leaf_thumbnail.jpg")).expect("read");
        let mut cuts: Vec<usize> = (0..bytes.len()).step_by(997).collect();
        cuts.push(bytes.len() - 2);
        cuts.push(bytes.len() - 1);
        for cut in cuts {
            let result = ensure_complete(&mut Cursor::new(&bytes[..cut]));
            assert!(
                matches!(result, Err(FingerprintError::TruncatedImage)),
                "cut at {cut} of {}: {result:?}",
                bytes.len()
            );
        }
    }

    /// The frame header of a baseline 4:2:0 JPEG says so; the same header
    /// marked progressive (SOF2) is read as progressive; garbage has none.
    #[test]
    fn frame_header_reads_progressive_and_sampling() {
        let bytes = std::fs::read(shared_path("media/images/rocket.jpg")).expect("read");
        let frame = frame_header(&mut Cursor::new(&bytes))
            .expect("read")
            .expect("a frame header");
        assert!(!frame.progressive);
        let sof = bytes
            .windows(2)
            .position(|pair| pair == [0xFF, 0xC0])
            .expect("rocket.jpg is baseline");
        let mut progressive = bytes.clone();
        progressive[sof + 1] = 0xC2;
        let again = frame_header(&mut Cursor::new(&progressive))
            .expect("read")
            .expect("a frame header");
        assert!(again.progressive);
        assert_eq!(
            again.samples_per_pixel_eighths,
            frame.samples_per_pixel_eighths
        );
        assert!(
            (8..=24).contains(&frame.samples_per_pixel_eighths),
            "{frame:?}"
        );
        assert_eq!(
            frame_header(&mut Cursor::new(vec![0x5a; 100])).expect("read"),
            None
        );
        assert_eq!(
            frame_header(&mut Cursor::new(&bytes[..sof + 4])).expect("read"),
            None
        );
    }

    /// Bytes after the EOI (camera trailers) do not make a JPEG incomplete.
    #[test]
    fn trailing_bytes_after_eoi_are_fine() {
        let mut bytes = std::fs::read(shared_path("media/images/rocket.jpg")).expect("read");
        bytes.extend_from_slice(b"trailer appended by some camera \xFF\x00\xFF");
        assert!(ensure_complete(&mut Cursor::new(bytes)).is_ok());
    }
}
