//! Comparing fingerprints: a distance and a verdict, with documented
//! thresholds per media kind.

use serde::{Deserialize, Serialize};

/// How alike two pieces of content are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The same content, possibly re-encoded, resized or recompressed.
    Same,
    /// Clearly related: a heavier transformation, an excerpt, or a near
    /// duplicate such as another shot of the same scene.
    Similar,
    /// Unrelated.
    Different,
}

/// The result of comparing two fingerprints.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Distance on the scale of the fingerprint compared: bits for 64-bit
    /// ISCC codes, bit error rate (0 to 1) for audio and video signatures.
    pub distance: f64,
    /// What the distance means, by the documented thresholds.
    pub verdict: Verdict,
    /// For audio and video: where the start of the second item sits in the
    /// first, in seconds (negative if the second starts before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_seconds: Option<f64>,
}

/// Image-Codes at most this many bits apart show the same picture
/// (re-encoded, resized, recompressed, cropped a little, grayscale). On the
/// transformed evaluation set (docs/BENCHMARKS.md) every such copy is within
/// 2 bits of its source, counting crops' codes.
pub const IMAGE_SAME_BITS: u32 = 3;
/// Image-Codes at most this many bits apart are similar pictures (a heavier
/// edit, or another shot of the same scene: the shared stereo pair is 4 bits
/// apart). Unrelated pictures sit near 32 bits apart, with a standard
/// deviation of about 4, and the closest unrelated pair in the shared media
/// is 18 bits apart: at 7 bits a chance match is a 6-sigma event.
pub const IMAGE_SIMILAR_BITS: u32 = 7;

/// Compares two Image-Codes (with or without the `ISCC:` prefix).
pub fn compare_image_codes(a: &str, b: &str) -> crate::Result<Comparison> {
    let distance = crate::image_code_distance(a, b)?;
    Ok(Comparison {
        distance: f64::from(distance),
        verdict: image_verdict(distance),
        offset_seconds: None,
    })
}

/// Compares two images by all their Image-Codes (the whole image's and its
/// crops'): the closest pair decides, so a cropped copy meets its original.
pub fn compare_image_code_sets(a: &[&str], b: &[&str]) -> crate::Result<Comparison> {
    let mut best: Option<u32> = None;
    for x in a {
        for y in b {
            let d = crate::image_code_distance(x, y)?;
            best = Some(best.map_or(d, |b| b.min(d)));
        }
    }
    let distance = best.ok_or_else(|| crate::FingerprintError::NotImageCode {
        code: String::new(),
    })?;
    Ok(Comparison {
        distance: f64::from(distance),
        verdict: image_verdict(distance),
        offset_seconds: None,
    })
}

/// The verdict for a distance in bits between two Image-Codes.
pub fn image_verdict(distance: u32) -> Verdict {
    if distance <= IMAGE_SAME_BITS {
        Verdict::Same
    } else if distance <= IMAGE_SIMILAR_BITS {
        Verdict::Similar
    } else {
        Verdict::Different
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::test_support::shared_path;

    fn code(file: &str) -> String {
        let bytes = std::fs::read(shared_path("media/images").join(file)).expect("read");
        crate::image_code::image_code(Cursor::new(bytes), &crate::Limits::default()).expect(file)
    }

    /// On the shared photographs, every natural duplicate pair (the same
    /// photo in other formats, thumbnails of the full-size photos, the
    /// stereo pair) is found and no unrelated pair is.
    #[test]
    fn shared_image_pairs() {
        let files = [
            "astronaut.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coffee.bmp",
            "coffee.gif",
            "coffee.tiff",
            "coffee.webp",
            "fallen_leaf_2560x1600.jpg",
            "fallen_leaf_thumbnail.jpg",
            "flower.jpg",
            "motorcycle_left.png",
            "motorcycle_right.png",
            "path_2560x1600.jpg",
            "path_thumbnail.jpg",
            "rocket.jpg",
        ];
        let group = |f: &str| f.split(['_', '.']).next().unwrap_or(f).to_owned();
        let codes: Vec<(String, String)> = files.iter().map(|f| (f.to_string(), code(f))).collect();
        let mut closest_unrelated = u32::MAX;
        for (i, (fa, ca)) in codes.iter().enumerate() {
            for (fb, cb) in &codes[i + 1..] {
                let c = compare_image_codes(ca, cb).expect("compare");
                let related = group(fa) == group(fb);
                eprintln!("{fa} ~ {fb}: {} bits, {:?}", c.distance, c.verdict);
                if related {
                    assert_ne!(c.verdict, Verdict::Different, "{fa} ~ {fb} should match");
                } else {
                    assert_eq!(
                        c.verdict,
                        Verdict::Different,
                        "{fa} ~ {fb} should not match"
                    );
                    closest_unrelated = closest_unrelated.min(c.distance as u32);
                }
            }
        }
        eprintln!("closest unrelated pair: {closest_unrelated} bits");
    }
}
