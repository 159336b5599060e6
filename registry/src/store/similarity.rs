//! The similarity indexes: banded 64-bit ISCC codes and sampled audio items.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, Row};

use super::{Param, Registry, insert_rows, to_i64};
use crate::entry::{ClaimedIscc, IsccCodes, Prints};
use crate::{RegistryError, Result};

/// Bands per 64-bit code. Probing each band and its one-bit neighbours finds
/// every code within `2 * BANDS - 1` bits, which is [`MAX_INDEXED_DISTANCE`].
/// Four 16-bit bands keep the candidates per probe near N / 65536.
const BANDS: u32 = 4;
/// Codes within this many bits of a query are always found.
pub const MAX_INDEXED_DISTANCE: u32 = 2 * BANDS - 1;

/// Which ISCC unit a code is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    /// Image-Code.
    Image,
    /// Audio-Code.
    Audio,
    /// Video-Code.
    Video,
    /// Data-Code.
    Data,
}

impl CodeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Data => "data",
        }
    }
}

/// A registered code near a query code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeMatch {
    /// The registration it belongs to.
    pub content_id: String,
    /// Hamming distance in bits.
    pub distance: u32,
}

/// Bit ranges of the bands: as even as 64 bits allow.
fn band_ranges() -> impl Iterator<Item = (u32, u32, u32)> {
    let base = 64 / BANDS;
    let extra = 64 % BANDS;
    (0..BANDS).scan(0u32, move |start, band| {
        let width = base + u32::from(band < extra);
        let range = (band, *start, width);
        *start += width;
        Some(range)
    })
}

fn band_value(code: u64, start: u32, width: u32) -> u64 {
    (code >> (64 - start - width)) & ((1u64 << width) - 1)
}

/// The 64-bit code of each ISCC unit present, by kind.
pub(crate) fn codes_of(iscc: &IsccCodes) -> Result<Vec<(CodeKind, u64)>> {
    indexed_codes([
        iscc.image.as_deref(),
        iscc.audio.as_deref(),
        iscc.video.as_deref(),
        Some(iscc.data.as_str()),
    ])
}

/// The 64-bit code of each unit a registrant claimed, by kind; every unit
/// given, indexed or not, must decode.
pub(crate) fn claimed_codes(iscc: &ClaimedIscc) -> Result<Vec<(CodeKind, u64)>> {
    for unit in [&iscc.meta, &iscc.instance].into_iter().flatten() {
        media_fingerprint::iscc::unit_bits64(unit)
            .map_err(|e| RegistryError::invalid("iscc", format!("{unit}: {e}")))?;
    }
    if let Some(code) = &iscc.code {
        media_fingerprint::iscc::encode_sequence(&[code.as_str()])
            .and_then(|bytes| media_fingerprint::iscc::decode_sequence(&bytes))
            .ok()
            .filter(|_| code.starts_with("ISCC:"))
            .ok_or_else(|| {
                RegistryError::invalid("iscc.code", format!("{code} is not an ISCC code"))
            })?;
    }
    indexed_codes([
        iscc.image.as_deref(),
        iscc.audio.as_deref(),
        iscc.video.as_deref(),
        iscc.data.as_deref(),
    ])
}

/// Decodes the units the index covers: image, audio, video and data, in
/// that order, each if present.
fn indexed_codes(units: [Option<&str>; 4]) -> Result<Vec<(CodeKind, u64)>> {
    [
        CodeKind::Image,
        CodeKind::Audio,
        CodeKind::Video,
        CodeKind::Data,
    ]
    .into_iter()
    .zip(units)
    .filter_map(|(kind, unit)| unit.map(|u| (kind, u)))
    .map(|(kind, unit)| {
        media_fingerprint::iscc::unit_bits64(unit)
            .map(|code| (kind, code))
            .map_err(|e| RegistryError::invalid("iscc", format!("{unit}: {e}")))
    })
    .collect()
}

/// Checks that every unit a registrant claimed decodes, as apply will.
pub fn validate_claimed_iscc(iscc: &ClaimedIscc) -> Result<()> {
    claimed_codes(iscc).map(|_| ())
}

/// The 64-bit codes of the crop Image-Codes in a registration's prints.
pub(crate) fn crop_codes(crops: &[String]) -> Result<Vec<u64>> {
    crops
        .iter()
        .map(|unit| {
            media_fingerprint::iscc::unit_bits64(unit)
                .map_err(|e| RegistryError::invalid("image_crops", format!("{unit}: {e}")))
        })
        .collect()
}

/// Rows of the similarity indexes waiting to be written, so that the rows
/// of many entries go to the database in a few statements.
#[derive(Debug, Default)]
pub(super) struct IndexRows {
    bands: Vec<(&'static str, i64, i64, i64, i64)>,
    prints: Vec<(String, String)>,
    audio: Vec<(i64, i64, String)>,
}

impl IndexRows {
    /// Writes the rows; `content` rows they refer to must be written first.
    pub(super) async fn flush(&mut self, conn: &mut AnyConnection) -> Result<()> {
        let mut params = Vec::with_capacity(5 * self.bands.len());
        for (kind, band, value, code, idx) in &self.bands {
            params.extend([
                Param::Text(kind),
                Param::Int(*band),
                Param::Int(*value),
                Param::Int(*code),
                Param::Int(*idx),
            ]);
        }
        insert_rows(
            conn,
            "insert into code_band (kind, band, value, code, ledger_idx)",
            5,
            &params,
        )
        .await?;
        let mut params = Vec::with_capacity(2 * self.prints.len());
        for (content_id, json) in &self.prints {
            params.extend([Param::Text(content_id), Param::Text(json)]);
        }
        insert_rows(
            conn,
            "insert into content_print (content_id, prints)",
            2,
            &params,
        )
        .await?;
        let mut params = Vec::with_capacity(3 * self.audio.len());
        for (value, position, content_id) in &self.audio {
            params.extend([
                Param::Int(*value),
                Param::Int(*position),
                Param::Text(content_id),
            ]);
        }
        insert_rows(
            conn,
            "insert into audio_item (value, position, content_id)",
            3,
            &params,
        )
        .await?;
        *self = Self::default();
        Ok(())
    }
}

/// Adds the index rows of a registration's codes and its prints to `rows`.
pub(super) fn index(
    rows: &mut IndexRows,
    content_id: &str,
    ledger_idx: u64,
    codes: &[(CodeKind, u64)],
    prints: Option<(&str, &Prints)>,
) -> Result<()> {
    let crops = prints.map_or(&[][..], |(_, p)| p.image_crops.as_slice());
    let crops = crop_codes(crops)?;
    let all = codes
        .iter()
        .copied()
        .chain(crops.into_iter().map(|code| (CodeKind::Image, code)));
    let ledger_idx = to_i64(ledger_idx)?;
    for (kind, code) in all {
        for (band, start, width) in band_ranges() {
            rows.bands.push((
                kind.as_str(),
                i64::from(band),
                band_value(code, start, width) as i64,
                code as i64,
                ledger_idx,
            ));
        }
    }
    if let Some((json, prints)) = prints {
        rows.prints.push((content_id.to_owned(), json.to_owned()));
        if let Some(audio) = &prints.audio {
            for (position, &item) in (0u64..).zip(&audio.chromaprint) {
                if is_sampled(item) {
                    rows.audio
                        .push((i64::from(item), to_i64(position)?, content_id.to_owned()));
                }
            }
        }
    }
    Ok(())
}

/// Which Chromaprint items the excerpt index keeps: one in eight, chosen by
/// value so an excerpt and its source keep the same ones.
pub fn is_sampled(item: u32) -> bool {
    item & 0b111 == 0
}

impl Registry {
    /// Registered codes of `kind` within `max_distance` bits of `code`, best
    /// first. Every code within [`MAX_INDEXED_DISTANCE`] is found; larger
    /// distances are clipped to it.
    pub async fn codes_within(
        &self,
        kind: CodeKind,
        code: u64,
        max_distance: u32,
    ) -> Result<Vec<CodeMatch>> {
        let max_distance = max_distance.min(MAX_INDEXED_DISTANCE);
        // One indexed range lookup per band, glued with UNION ALL: an OR of
        // the bands would let the planner fall back to scanning the table.
        let mut selects = Vec::new();
        let mut binds: Vec<i64> = Vec::new();
        for (band, start, width) in band_ranges() {
            let value = band_value(code, start, width);
            let mut values = vec![value];
            values.extend((0..width).map(|bit| value ^ (1 << bit)));
            let first = binds.len() + 2;
            let placeholders: Vec<String> = (0..values.len())
                .map(|i| format!("${}", first + 1 + i))
                .collect();
            selects.push(format!(
                "select ledger_idx, code from code_band where kind = $1 and band = ${first} and value in ({})",
                placeholders.join(", ")
            ));
            binds.push(i64::from(band));
            binds.extend(values.into_iter().map(|v| v as i64));
        }
        let sql = selects.join(" union all ");
        let mut query = sqlx::query(&sql).bind(kind.as_str());
        for value in binds {
            query = query.bind(value);
        }
        let rows = query.fetch_all(&self.pool).await?;
        // Best distance per registration: a code close on several bands comes
        // back once per band, and an image's crops share its leaf.
        let mut best: HashMap<i64, u32> = HashMap::new();
        for row in rows {
            let found: i64 = row.try_get(1)?;
            let distance = (code ^ found as u64).count_ones();
            if distance <= max_distance {
                let idx: i64 = row.try_get(0)?;
                let entry = best.entry(idx).or_insert(distance);
                *entry = (*entry).min(distance);
            }
        }
        let mut matches = Vec::with_capacity(best.len());
        if !best.is_empty() {
            let placeholders: Vec<String> = (1..=best.len()).map(|i| format!("${i}")).collect();
            // Registrations by upload and claims by hash both index codes.
            let sql = format!(
                "select ledger_idx, content_id from content where ledger_idx in ({0}) union all select ledger_idx, content_id from content_claim where ledger_idx in ({0})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for idx in best.keys() {
                query = query.bind(*idx);
            }
            for row in query.fetch_all(&self.pool).await? {
                let idx: i64 = row.try_get(0)?;
                let Some(&distance) = best.get(&idx) else {
                    continue;
                };
                matches.push(CodeMatch {
                    content_id: row.try_get(1)?,
                    distance,
                });
            }
        }
        matches.sort_by(|a, b| {
            a.distance
                .cmp(&b.distance)
                .then_with(|| a.content_id.cmp(&b.content_id))
        });
        Ok(matches)
    }

    /// Registrations sharing sampled Chromaprint items with `items`, with how
    /// many items each shares, most first, at most `limit`.
    pub async fn audio_item_votes(
        &self,
        items: &[u32],
        limit: usize,
    ) -> Result<Vec<(String, u32)>> {
        let mut sampled: Vec<i64> = items
            .iter()
            .copied()
            .filter(|&i| is_sampled(i))
            .map(i64::from)
            .collect();
        sampled.sort_unstable();
        sampled.dedup();
        let mut votes: HashMap<String, u32> = HashMap::new();
        // Bounded batches keep each statement under every engine's
        // parameter limit.
        for batch in sampled.chunks(500) {
            let placeholders: Vec<String> = (1..=batch.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "select content_id from audio_item where value in ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for &value in batch {
                query = query.bind(value);
            }
            for row in query.fetch_all(&self.pool).await? {
                *votes.entry(row.try_get(0)?).or_default() += 1;
            }
        }
        let mut ranked: Vec<(String, u32)> = votes.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        ranked.truncate(limit);
        Ok(ranked)
    }

    /// The fingerprints stored beside a registration.
    pub async fn prints(&self, content_id: &str) -> Result<Option<Prints>> {
        let row = sqlx::query("select prints from content_print where content_id = $1")
            .bind(content_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let json: String = row.try_get(0)?;
        serde_json::from_str(&json)
            .map(Some)
            .map_err(|e| RegistryError::Corrupt(format!("stored prints of {content_id}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bands cover all 64 bits exactly once.
    #[test]
    fn bands_cover_the_code() {
        let widths: u32 = band_ranges().map(|(_, _, w)| w).sum();
        assert_eq!(widths, 64);
        let code = 0x0123_4567_89ab_cdefu64;
        let mut rebuilt = 0u64;
        for (_, start, width) in band_ranges() {
            rebuilt = (rebuilt << width) | band_value(code, start, width);
        }
        assert_eq!(rebuilt, code);
    }
}
