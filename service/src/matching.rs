//! Finding registered content that is the same as, or similar to, an upload.
//!
//! Candidates come from indexes only, never from a scan: the SHA-256 index,
//! the banded index of 64-bit ISCC units, and the sampled-item index of audio
//! fingerprints (which finds excerpts). Audio and video candidates are then
//! aligned with the stored fingerprints to measure the distance and offset.

use std::collections::HashMap;

use media_fingerprint::audio::compare_audio;
use media_fingerprint::video::compare_video;
use media_fingerprint::{
    Comparison, ContentFingerprint, IMAGE_SIMILAR_BITS, MediaKind, Verdict, image_verdict,
};
use registry::{CodeKind, Prints};
use serde::Serialize;

use crate::error::ApiResult;
use crate::limits::Caller;
use crate::register::fingerprint;
use crate::state::AppState;
use crate::upload::Received;
use crate::views::ContentView;

/// Most matches returned.
const MAX_MATCHES: usize = 20;
/// Most excerpt candidates aligned per query.
const MAX_EXCERPT_CANDIDATES: usize = 10;
/// Fewest shared sampled items for an excerpt candidate to be aligned.
const MIN_ITEM_VOTES: u32 = 2;

/// The answer to a match query.
#[derive(Debug, Serialize)]
pub struct MatchResponse {
    /// SHA-256 of the uploaded file.
    pub sha256: String,
    /// What the upload was sniffed as.
    pub media_kind: MediaKind,
    /// Registered content that is the same or similar, best first.
    pub matches: Vec<MatchView>,
}

/// One registered item that matches.
#[derive(Debug, Serialize)]
pub struct MatchView {
    /// How alike: `same` or `similar`.
    pub verdict: Verdict,
    /// Distance on the scale of `basis`: bits for ISCC units, bit error
    /// rate (0 to 1) for audio and video alignment, 0 for identical bytes.
    pub distance: f64,
    /// What was compared: `sha256`, `iscc_image`, `iscc_audio`,
    /// `iscc_video`, `iscc_data`, `audio` or `video`.
    pub basis: &'static str,
    /// For audio and video: where the upload starts within the registered
    /// item, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset_seconds: Option<f64>,
    /// The registered item.
    pub content: ContentView,
}

/// A candidate before it is looked up: where it came from and how close.
struct Candidate {
    comparison: Comparison,
    basis: &'static str,
    /// Distance scaled to 0..1, to rank matches of different bases.
    rank: f64,
}

/// Finds registered content matching the upload.
pub async fn find_matches(
    state: &AppState,
    upload: Received,
    caller: Caller,
) -> ApiResult<MatchResponse> {
    let sha256 = hex::encode(upload.exact.sha256);
    let sniffed = media_fingerprint::sniff(&upload.head, upload.declared_type.as_deref());
    let fingerprint = fingerprint(state, &upload, &sniffed, caller).await?;
    let mut found: HashMap<String, Candidate> = HashMap::new();

    if let Some(content) = crate::views::content_by_sha256(&state.registry, &sha256).await? {
        let exact = Comparison {
            distance: 0.0,
            verdict: Verdict::Same,
            offset_seconds: None,
        };
        offer(&mut found, content.content_id, exact, "sha256", 0.0);
    }

    for (kind, basis, unit) in units(&upload, &fingerprint) {
        let Ok(code) = media_fingerprint::iscc::unit_bits64(unit) else {
            continue;
        };
        for m in state
            .registry
            .codes_within(kind, code, IMAGE_SIMILAR_BITS)
            .await?
        {
            let comparison = Comparison {
                distance: f64::from(m.distance),
                verdict: image_verdict(m.distance),
                offset_seconds: None,
            };
            offer(
                &mut found,
                m.content_id,
                comparison,
                basis,
                f64::from(m.distance) / 64.0,
            );
        }
    }

    // Audio and video: align with the stored fingerprints. Whole-file
    // candidates come from the unit index above; excerpts from the items.
    let mut to_align: Vec<String> = found.keys().cloned().collect();
    if let Some(audio) = &fingerprint.audio {
        for (content_id, votes) in state
            .registry
            .audio_item_votes(&audio.chromaprint, MAX_EXCERPT_CANDIDATES)
            .await?
        {
            if votes >= MIN_ITEM_VOTES && !to_align.contains(&content_id) {
                to_align.push(content_id);
            }
        }
    }
    if fingerprint.audio.is_some() || fingerprint.video.is_some() {
        for content_id in to_align {
            let Some(prints) = state.registry.prints(&content_id).await? else {
                continue;
            };
            // Alignment measures what the 64-bit codes only estimate, and
            // finds the offset: its verdict replaces theirs, unless it finds
            // nothing (then a close code still counts) or the bytes are
            // identical anyway.
            if let Some((basis, comparison)) = align(&fingerprint, &prints)
                .into_iter()
                .find(|(_, c)| c.verdict != Verdict::Different)
            {
                let keep_exact = found.get(&content_id).is_some_and(|c| c.basis == "sha256");
                if !keep_exact {
                    let rank = comparison.distance;
                    found.insert(
                        content_id.clone(),
                        Candidate {
                            comparison,
                            basis,
                            rank,
                        },
                    );
                }
            }
        }
    }

    let mut ranked: Vec<(String, Candidate)> = found
        .into_iter()
        .filter(|(_, c)| c.comparison.verdict != Verdict::Different)
        .collect();
    ranked.sort_by(|a, b| {
        verdict_order(a.1.comparison.verdict)
            .cmp(&verdict_order(b.1.comparison.verdict))
            .then(a.1.rank.total_cmp(&b.1.rank))
            .then_with(|| a.0.cmp(&b.0))
    });
    ranked.truncate(MAX_MATCHES);

    let mut matches = Vec::with_capacity(ranked.len());
    for (content_id, candidate) in ranked {
        let Some(content) = crate::views::content_by_id(&state.registry, &content_id).await? else {
            continue;
        };
        matches.push(MatchView {
            verdict: candidate.comparison.verdict,
            distance: candidate.comparison.distance,
            basis: candidate.basis,
            offset_seconds: candidate.comparison.offset_seconds,
            content,
        });
    }
    Ok(MatchResponse {
        sha256,
        media_kind: sniffed.kind,
        matches,
    })
}

/// The 64-bit ISCC units of the upload that the unit index covers.
fn units<'a>(
    upload: &'a Received,
    fingerprint: &'a ContentFingerprint,
) -> Vec<(CodeKind, &'static str, &'a str)> {
    let mut units = vec![(CodeKind::Data, "iscc_data", upload.exact.data_code.as_str())];
    for (kind, basis, unit) in [
        (CodeKind::Image, "iscc_image", &fingerprint.image_code),
        (CodeKind::Audio, "iscc_audio", &fingerprint.audio_code),
        (CodeKind::Video, "iscc_video", &fingerprint.video_code),
    ] {
        if let Some(unit) = unit {
            units.push((kind, basis, unit.as_str()));
        }
    }
    // The crops of the upload meet registered originals of which the upload
    // is a crop's worth wider; registered crops (indexed with the codes)
    // meet uploads that are crops of a registered image.
    for crop in &fingerprint.image_crop_codes {
        units.push((CodeKind::Image, "iscc_image", crop.as_str()));
    }
    units
}

/// Aligns the upload's audio and video fingerprints with a registered item's:
/// video first, as the picture identifies a video better than its music.
fn align(fingerprint: &ContentFingerprint, prints: &Prints) -> Vec<(&'static str, Comparison)> {
    let mut out = Vec::new();
    if let (Some(ours), Some(theirs)) = (&fingerprint.video, &prints.video) {
        out.push(("video", compare_video(theirs, ours)));
    }
    if let (Some(ours), Some(theirs)) = (&fingerprint.audio, &prints.audio) {
        out.push(("audio", compare_audio(theirs, ours)));
    }
    out
}

/// Keeps the better of two findings for the same item.
fn offer(
    found: &mut HashMap<String, Candidate>,
    content_id: String,
    comparison: Comparison,
    basis: &'static str,
    rank: f64,
) {
    let better = |old: &Candidate| {
        (verdict_order(comparison.verdict), rank) < (verdict_order(old.comparison.verdict), old.rank)
            // A Different from alignment must not hide a match on a unit.
            && comparison.verdict != Verdict::Different
    };
    match found.get(&content_id) {
        Some(old) if !better(old) => {}
        _ => {
            found.insert(
                content_id,
                Candidate {
                    comparison,
                    basis,
                    rank,
                },
            );
        }
    }
}

fn verdict_order(v: Verdict) -> u8 {
    match v {
        Verdict::Same => 0,
        Verdict::Similar => 1,
        Verdict::Different => 2,
    }
}
