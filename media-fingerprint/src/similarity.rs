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
