//! Validation and normalisation of registrant-supplied metadata.
//!
//! Identifiers are checked for structure (and the ISWC check digit, which is
//! unambiguous) and stored in one canonical spelling, so that a query for
//! `US-RC1-76-07839` and one for `USRC17607839` find the same work.

use std::collections::BTreeMap;

use crate::{Metadata, RegistryError, Result};

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 1000;
/// Most `derived_from` references one registration may carry.
pub const MAX_DERIVED_FROM: usize = 64;
/// Identifier schemes the registry understands.
pub const IDENTIFIER_SCHEMES: [&str; 4] = ["isrc", "iswc", "isan", "eidr"];

pub(crate) fn normalise(metadata: Metadata) -> Result<Metadata> {
    let title = match metadata.title {
        None => None,
        Some(title) => {
            let title = title.trim().to_owned();
            if title.is_empty() {
                return Err(RegistryError::invalid(
                    "metadata.title",
                    "must not be blank",
                ));
            }
            if title.chars().count() > MAX_TITLE_CHARS {
                return Err(RegistryError::invalid(
                    "metadata.title",
                    format!("must be at most {MAX_TITLE_CHARS} characters"),
                ));
            }
            if title.chars().any(char::is_control) {
                return Err(RegistryError::invalid(
                    "metadata.title",
                    "must not contain control characters",
                ));
            }
            Some(title)
        }
    };

    let mut identifiers = BTreeMap::new();
    for (scheme, value) in metadata.identifiers {
        let scheme = scheme.to_ascii_lowercase();
        let canonical = match scheme.as_str() {
            "isrc" => isrc(&value),
            "iswc" => iswc(&value),
            "isan" => isan(&value),
            "eidr" => eidr(&value),
            _ => {
                return Err(RegistryError::invalid(
                    "metadata.identifiers",
                    format!(
                        "unknown identifier scheme {scheme:?}; known schemes are {}",
                        IDENTIFIER_SCHEMES.join(", ")
                    ),
                ));
            }
        }
        .ok_or_else(|| {
            RegistryError::invalid(
                "metadata.identifiers",
                format!("{value:?} is not a valid {}", scheme.to_uppercase()),
            )
        })?;
        identifiers.insert(scheme, canonical);
    }

    if metadata.derived_from.len() > MAX_DERIVED_FROM {
        return Err(RegistryError::invalid(
            "metadata.derived_from",
            format!("at most {MAX_DERIVED_FROM} references"),
        ));
    }
    let mut derived_from: Vec<String> = Vec::with_capacity(metadata.derived_from.len());
    for id in metadata.derived_from {
        let id = id.trim().to_ascii_lowercase();
        if !is_content_id(&id) {
            return Err(RegistryError::invalid(
                "metadata.derived_from",
                format!("{id:?} is not a content id"),
            ));
        }
        if derived_from.contains(&id) {
            return Err(RegistryError::invalid(
                "metadata.derived_from",
                format!("{id} is listed twice"),
            ));
        }
        derived_from.push(id);
    }

    Ok(Metadata {
        title,
        identifiers,
        derived_from,
    })
}

/// Whether `id` has the shape of a content id (a hyphenated lowercase UUID).
pub fn is_content_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
}

/// Letters and digits only, upper-cased: how every scheme here is compared.
fn compact(value: &str, drop: &[char]) -> String {
    value
        .chars()
        .filter(|c| !c.is_whitespace() && !drop.contains(c))
        .collect::<String>()
        .to_ascii_uppercase()
}

/// ISRC (ISO 3901): country, registrant, year, designation: `CCXXXYYNNNNN`.
fn isrc(value: &str) -> Option<String> {
    let v = compact(value.strip_prefix("ISRC").unwrap_or(value), &['-']);
    let b = v.as_bytes();
    let ok = b.len() == 12
        && b[..2].iter().all(u8::is_ascii_uppercase)
        && b[2..5].iter().all(u8::is_ascii_alphanumeric)
        && b[5..].iter().all(u8::is_ascii_digit);
    ok.then_some(v)
}

/// ISWC (ISO 15707): `T` then nine digits and a check digit, written
/// `T-123.456.789-C`.
fn iswc(value: &str) -> Option<String> {
    let v = compact(value, &['-', '.']);
    let digits = v.strip_prefix('T')?;
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    let weighted: u32 = 1 + d[..9].iter().zip(1..).map(|(x, w)| x * w).sum::<u32>();
    let check = (10 - weighted % 10) % 10;
    (check == d[9]).then(|| {
        format!(
            "T-{}.{}.{}-{}",
            &digits[0..3],
            &digits[3..6],
            &digits[6..9],
            &digits[9..]
        )
    })
}

/// ISAN (ISO 15706): 16 hex digits of root and episode, then a check
/// character, optionally followed by 8 hex digits of version and a second
/// check character. Check characters are kept as given (structure only).
fn isan(value: &str) -> Option<String> {
    let v = compact(value.trim().strip_prefix("ISAN").unwrap_or(value), &['-']);
    let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
    let check = |c: u8| c.is_ascii_alphanumeric();
    let b = v.as_bytes();
    match b.len() {
        17 if hex(&v[..16]) && check(b[16]) => Some(format!(
            "ISAN {}-{}-{}-{}-{}",
            &v[0..4],
            &v[4..8],
            &v[8..12],
            &v[12..16],
            &v[16..17]
        )),
        26 if hex(&v[..16]) && check(b[16]) && hex(&v[17..25]) && check(b[25]) => Some(format!(
            "ISAN {}-{}-{}-{}-{}-{}-{}-{}",
            &v[0..4],
            &v[4..8],
            &v[8..12],
            &v[12..16],
            &v[16..17],
            &v[17..21],
            &v[21..25],
            &v[25..26]
        )),
        _ => None,
    }
}

/// EIDR: the DOI prefix `10.5240/`, 20 hex digits in groups of four, and a
/// check character.
fn eidr(value: &str) -> Option<String> {
    let rest = value.trim().strip_prefix("10.5240/")?;
    let v = compact(rest, &['-']);
    let b = v.as_bytes();
    let ok = b.len() == 21
        && v[..20].bytes().all(|c| c.is_ascii_hexdigit())
        && b[20].is_ascii_alphanumeric();
    ok.then(|| {
        format!(
            "10.5240/{}-{}-{}-{}-{}-{}",
            &v[0..4],
            &v[4..8],
            &v[8..12],
            &v[12..16],
            &v[16..20],
            &v[20..21]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_identifier(scheme: &str, value: &str) -> Result<Metadata> {
        normalise(Metadata {
            identifiers: [(scheme.to_owned(), value.to_owned())].into(),
            ..Metadata::default()
        })
    }

    /// Identifiers in their usual spellings normalise to one canonical form.
    #[test]
    fn identifiers_normalise() {
        let cases = [
            ("isrc", "us-rc1-76-07839", "USRC17607839"),
            ("ISRC", "USRC17607839", "USRC17607839"),
            ("iswc", "T-034.524.680-1", "T-034.524.680-1"),
            ("iswc", "T0345246801", "T-034.524.680-1"),
            (
                "isan",
                "ISAN 0000-0000-3A8D-0000-Z",
                "ISAN 0000-0000-3A8D-0000-Z",
            ),
            (
                "isan",
                "0000-0000-3a8d-0000-z-0000-0000-6",
                "ISAN 0000-0000-3A8D-0000-Z-0000-0000-6",
            ),
            (
                "eidr",
                "10.5240/7791-8534-2C23-9030-8610-5",
                "10.5240/7791-8534-2C23-9030-8610-5",
            ),
        ];
        for (scheme, given, want) in cases {
            let m = with_identifier(scheme, given).unwrap();
            assert_eq!(
                m.identifiers[&scheme.to_ascii_lowercase()],
                want,
                "{scheme} {given}"
            );
        }
    }

    /// Malformed identifiers, a wrong ISWC check digit and unknown schemes are
    /// refused with the field named.
    #[test]
    fn bad_identifiers_are_refused() {
        for (scheme, value) in [
            ("isrc", "USRC1760783"),
            ("isrc", "1SRC17607839"),
            ("iswc", "T-034.524.680-2"),
            ("isan", "0000-0000-3A8D"),
            ("eidr", "7791-8534-2C23-9030-8610-5"),
            ("doi", "10.1000/182"),
        ] {
            let err = with_identifier(scheme, value).unwrap_err();
            assert!(
                matches!(
                    err,
                    RegistryError::Invalid {
                        field: "metadata.identifiers",
                        ..
                    }
                ),
                "{scheme} {value}: {err}"
            );
        }
    }

    /// Titles are trimmed; blank, overlong or control-character titles are refused.
    #[test]
    fn titles() {
        let m = normalise(Metadata {
            title: Some("  Coffee  ".into()),
            ..Metadata::default()
        })
        .unwrap();
        assert_eq!(m.title.as_deref(), Some("Coffee"));
        for bad in ["   ", "a\u{0}b", &"x".repeat(MAX_TITLE_CHARS + 1)] {
            assert!(
                normalise(Metadata {
                    title: Some(bad.to_owned()),
                    ..Metadata::default()
                })
                .is_err()
            );
        }
    }

    /// derived_from takes content ids only, each once.
    #[test]
    fn derived_from() {
        let id = "0192f0c1-0000-7000-8000-000000000001";
        let ok = normalise(Metadata {
            derived_from: vec![id.to_uppercase()],
            ..Metadata::default()
        })
        .unwrap();
        assert_eq!(ok.derived_from, vec![id.to_owned()]);
        for bad in [vec!["nope".to_owned()], vec![id.to_owned(), id.to_owned()]] {
            assert!(
                normalise(Metadata {
                    derived_from: bad,
                    ..Metadata::default()
                })
                .is_err()
            );
        }
    }
}
