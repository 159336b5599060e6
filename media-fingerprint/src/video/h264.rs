//! The little of H.264 we read ourselves: NAL unit headers, the picture size
//! in a sequence parameter set, and the conversion of MP4's length-prefixed
//! samples to the Annex B byte stream the decoder takes.
//!
//! The picture size is read before anything reaches the decoder, so a forged
//! SPS promising a gigantic picture is refused before the decoder allocates
//! for it (ITU-T H.264 section 7.3.2.1.1 gives the syntax).

use crate::error::{FingerprintError, Result};

/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;
/// NAL unit type of a coded slice of a non-IDR picture.
const NAL_SLICE: u8 = 1;
/// NAL unit type of a coded slice of an IDR picture.
const NAL_SLICE_IDR: u8 = 5;

/// The Annex B start code put before every NAL unit.
const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// What converting one sample found in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SampleInfo {
    /// Whether a slice in it may be used as a reference by other pictures
    /// (`nal_ref_idc != 0`). A picture without one is disposable: nothing
    /// else is predicted from it, so it can be left undecoded.
    pub(crate) is_reference: bool,
    /// Whether it holds any coded slice at all.
    pub(crate) has_slice: bool,
}

/// Rewrites one MP4 sample (NAL units each preceded by a big-endian length of
/// `length_size` bytes) as Annex B into `out`, calling `on_sps` with every
/// in-band SPS so its picture size can be checked before decoding.
///
/// A length running past the end of the sample means a corrupt or truncated
/// sample: the units before it are kept, the rest is dropped.
pub(crate) fn sample_to_annex_b(
    sample: &[u8],
    length_size: usize,
    out: &mut Vec<u8>,
    mut on_sps: impl FnMut(&[u8]) -> Result<()>,
) -> Result<SampleInfo> {
    out.clear();
    let mut info = SampleInfo::default();
    let mut rest = sample;
    while rest.len() >= length_size {
        let (len_bytes, tail) = rest.split_at(length_size);
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len == 0 {
            rest = tail;
            continue;
        }
        let Some(nal) = tail.get(..len) else { break };
        let header = nal[0];
        let nal_type = header & 0x1f;
        if nal_type == NAL_SPS {
            on_sps(nal)?;
        }
        if nal_type == NAL_SLICE || nal_type == NAL_SLICE_IDR {
            info.has_slice = true;
            info.is_reference |= header >> 5 != 0;
        }
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(nal);
        rest = &tail[len..];
    }
    Ok(info)
}

/// Appends parameter sets (SPS or PPS NAL units) to `out` in Annex B form.
pub(crate) fn append_annex_b(units: &[Vec<u8>], out: &mut Vec<u8>) {
    for unit in units {
        out.extend_from_slice(&START_CODE);
        out.extend_from_slice(unit);
    }
}

/// Decoded picture size, in luma samples, that an SPS declares (before
/// cropping, which only makes it smaller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PictureSize {
    /// Width in luma samples.
    pub(crate) width: u32,
    /// Height in luma samples.
    pub(crate) height: u32,
    /// `max_num_ref_frames`: openh264 allocates two pictures more than this.
    pub(crate) ref_frames: u32,
}

/// Reads the picture size from an SPS NAL unit (header byte included).
pub(crate) fn sps_picture_size(nal: &[u8]) -> Result<PictureSize> {
    let rbsp = unescape(nal.get(1..).unwrap_or_default());
    let mut bits = BitReader::new(&rbsp);
    let profile_idc = bits.bits(8)?;
    bits.skip(16)?; // constraint flags, reserved bits, level_idc
    bits.ue()?; // seq_parameter_set_id
    if matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        let chroma_format_idc = bits.ue()?;
        if chroma_format_idc == 3 {
            bits.skip(1)?; // separate_colour_plane_flag
        }
        bits.ue()?; // bit_depth_luma_minus8
        bits.ue()?; // bit_depth_chroma_minus8
        bits.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if bits.bits(1)? == 1 {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if bits.bits(1)? == 1 {
                    skip_scaling_list(&mut bits, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    bits.ue()?; // log2_max_frame_num_minus4
    match bits.ue()? {
        0 => {
            bits.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            bits.skip(1)?; // delta_pic_order_always_zero_flag
            bits.se()?; // offset_for_non_ref_pic
            bits.se()?; // offset_for_top_to_bottom_field
            let cycle = bits.ue()?;
            if cycle > 255 {
                return Err(corrupt_sps("num_ref_frames_in_pic_order_cnt_cycle"));
            }
            for _ in 0..cycle {
                bits.se()?;
            }
        }
        _ => {}
    }
    let ref_frames = bits.ue()?;
    bits.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(bits.ue()?) + 1;
    let height_map_units = u64::from(bits.ue()?) + 1;
    let frame_mbs_only = bits.bits(1)?;
    let height_mbs = height_map_units * if frame_mbs_only == 1 { 1 } else { 2 };
    let width = u32::try_from(width_mbs * 16).map_err(|_| corrupt_sps("width"))?;
    let height = u32::try_from(height_mbs * 16).map_err(|_| corrupt_sps("height"))?;
    Ok(PictureSize {
        width,
        height,
        ref_frames,
    })
}

/// Skips one `scaling_list()` of `size` coefficients (H.264 7.3.2.1.1.1).
fn skip_scaling_list(bits: &mut BitReader<'_>, size: usize) -> Result<()> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(bits.se()?);
            next = (last + delta + 256) % 256;
        }
        last = if next == 0 { last } else { next };
    }
    Ok(())
}

/// The error for an SPS that cannot be read.
fn corrupt_sps(what: &str) -> FingerprintError {
    FingerprintError::VideoDecode(format!("corrupt H.264 sequence parameter set ({what})"))
}

/// Removes emulation prevention bytes (`00 00 03` becomes `00 00`).
fn unescape(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut zeros = 0;
    for &byte in data {
        if zeros >= 2 && byte == 3 {
            zeros = 0;
            continue;
        }
        zeros = if byte == 0 { zeros + 1 } else { 0 };
        out.push(byte);
    }
    out
}

/// Reads bits and Exp-Golomb codes, most significant bit first.
struct BitReader<'a> {
    /// The RBSP bytes.
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader at the first bit of `data`.
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next bit.
    fn bit(&mut self) -> Result<u32> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or_else(|| corrupt_sps("ends early"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    /// The next `n` (at most 32) bits as an unsigned number.
    fn bits(&mut self, n: u32) -> Result<u32> {
        let mut value = 0u32;
        for _ in 0..n {
            value = (value << 1) | self.bit()?;
        }
        Ok(value)
    }

    /// Skips `n` bits.
    fn skip(&mut self, n: u32) -> Result<()> {
        self.bits(n).map(|_| ())
    }

    /// An unsigned Exp-Golomb code, `ue(v)`.
    fn ue(&mut self) -> Result<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            // No syntax element we read needs more than 31 bits; more leading
            // zeros can only come from corrupt data.
            if zeros > 31 {
                return Err(corrupt_sps("Exp-Golomb code too long"));
            }
        }
        let rest = self.bits(zeros)?;
        // (1 << 31) - 1 + rest fits in u64 and is checked before narrowing.
        let value = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(value).map_err(|_| corrupt_sps("Exp-Golomb value too large"))
    }

    /// A signed Exp-Golomb code, `se(v)`.
    fn se(&mut self) -> Result<i32> {
        let code = i64::from(self.ue()?);
        let value = if code % 2 == 1 {
            (code + 1) / 2
        } else {
            -(code / 2)
        };
        i32::try_from(value).map_err(|_| corrupt_sps("signed Exp-Golomb value too large"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPS x264 wrote for the shared High profile clips give their sizes
    /// (720 lines are 45 macroblock rows exactly; 360 need 23, cropped).
    #[test]
    fn reads_picture_size_of_high_profile_sps() {
        // SPS of clip_a_720p_high.mp4, from its avcC box.
        let sps = hex::decode("6764001facd9405005bb011000000300100000030320f1831960").expect("hex");
        let size = sps_picture_size(&sps).expect("valid SPS");
        assert_eq!(
            size,
            PictureSize {
                width: 1280,
                height: 720,
                // x264's default: 3 references, one more for B-pyramid.
                ref_frames: 4,
            }
        );
        // And the 640x360 re-encode: 23 macroblock rows, 368 lines before cropping.
        let sps = hex::decode("6764001eacd940a02ff97011000003000100000300320f162d96").expect("hex");
        let size = sps_picture_size(&sps).expect("valid SPS");
        assert_eq!((size.width, size.height), (640, 368));
    }

    /// A truncated SPS is an error, not a panic.
    #[test]
    fn truncated_sps_is_an_error() {
        assert!(sps_picture_size(&[0x67, 0x64]).is_err());
        assert!(sps_picture_size(&[]).is_err());
    }

    /// Emulation prevention bytes are removed.
    #[test]
    fn unescape_removes_emulation_prevention() {
        assert_eq!(unescape(&[0, 0, 3, 1, 0, 0, 3]), vec![0, 0, 1, 0, 0]);
    }

    /// Length-prefixed NAL units become start-code-prefixed ones; reference
    /// and disposable slices are told apart; a length past the end stops the
    /// conversion without panicking.
    #[test]
    fn converts_samples_to_annex_b() {
        let mut out = Vec::new();
        // A disposable non-IDR slice (nal_ref_idc 0, type 1), then a length
        // that runs past the end.
        let sample = [0, 0, 0, 2, 0x01, 0xaa, 0, 0, 0, 9, 0x41];
        let info = sample_to_annex_b(&sample, 4, &mut out, |_| Ok(())).expect("converts");
        assert_eq!(out, vec![0, 0, 0, 1, 0x01, 0xaa]);
        assert!(info.has_slice);
        assert!(!info.is_reference);

        let sample = [0, 0, 0, 1, 0x65];
        let info = sample_to_annex_b(&sample, 4, &mut out, |_| Ok(())).expect("converts");
        assert!(info.is_reference);
    }
}
