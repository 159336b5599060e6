//! Validation and normalisation of registrant-supplied metadata.
//!
//! Identifiers are checked for structure (and the ISWC check digit, which is
//! unambiguous) and stored in one canonical spelling, so that a query for
//! `US-RC1-76-07839` and one for `USRC17607839` find the same work.
//!
//! Everything here reads input from anyone who can reach the API, so no
//! string, however odd its UTF-8, may make it panic: it is refused instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::{Holder, Metadata, RegistryError, Result};

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 1000;
/// Most `derived_from` references one registration may carry.
pub const MAX_DERIVED_FROM: usize = 64;
/// Most first holders one registration may name.
pub const MAX_HOLDERS: usize = 64;
/// The whole of a content item's ownership, in basis points.
pub const WHOLE_BP: u32 = 10_000;
/// Identifier schemes the registry understands.
pub const IDENTIFIER_SCHEMES: [&str; 4] = ["isrc", "iswc", "isan", "eidr"];

/// Reads a registrant's metadata document (JSON) and normalises it.
///
/// Stricter than [`Metadata`]'s own `Deserialize`, which also reads ledger
/// leaves: the document must be a JSON object (serde would otherwise read
/// `["a title"]` as the struct in sequence form), and an identifier scheme
/// named twice is refused rather than one value silently kept.
pub fn from_json(json: &[u8]) -> Result<Metadata> {
    let Submitted(metadata) = serde_json::from_slice(json)
        .map_err(|e| RegistryError::invalid("metadata", e.to_string()))?;
    normalise(metadata)
}

/// [`Metadata`] read only from a JSON object.
struct Submitted(Metadata);

/// The fields of a submitted document, read with [`identifiers_once`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubmittedFields {
    #[serde(default)]
    title: Option<String>,
    #[serde(default, deserialize_with = "identifiers_once")]
    identifiers: BTreeMap<String, String>,
    #[serde(default)]
    derived_from: Vec<String>,
    #[serde(default)]
    holders: Vec<Holder>,
}

impl<'de> Deserialize<'de> for Submitted {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnly;
        impl<'de> Visitor<'de> for ObjectOnly {
            type Value = SubmittedFields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a JSON object with `title`, `identifiers`, `derived_from` or `holders`",
                )
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                SubmittedFields::deserialize(MapAccessDeserializer::new(map))
            }
        }
        let fields = deserializer.deserialize_map(ObjectOnly)?;
        Ok(Submitted(Metadata {
            title: fields.title,
            identifiers: fields.identifiers,
            derived_from: fields.derived_from,
            holders: fields.holders,
        }))
    }
}

/// The `identifiers` object, refusing a key given twice: a plain map keeps
/// the last value and the client never learns the first was dropped.
/// (Keys differing only in case are caught by [`normalise`].)
fn identifiers_once<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Once;
    impl<'de> Visitor<'de> for Once {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of identifiers by scheme")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut identifiers = BTreeMap::new();
            while let Some((scheme, value)) = map.next_entry::<String, String>()? {
                if identifiers.contains_key(&scheme) {
                    return Err(de::Error::custom(format_args!(
                        "the identifier scheme {scheme:?} is given twice"
                    )));
                }
                identifiers.insert(scheme, value);
            }
            Ok(identifiers)
        }
    }
    deserializer.deserialize_map(Once)
}

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
            let name = scheme.to_uppercase();
            let reason = if value.chars().any(|c| !c.is_ascii() && !c.is_whitespace()) {
                format!("{value:?} is not a valid {name}: identifiers are ASCII letters and digits")
            } else {
                format!("{value:?} is not a valid {name}")
            };
            RegistryError::invalid("metadata.identifiers", reason)
        })?;
        // `isrc` and `ISRC` are one scheme; keeping either value silently
        // would record something the registrant may not have meant.
        if identifiers.contains_key(&scheme) {
            return Err(RegistryError::invalid(
                "metadata.identifiers",
                format!("the {} identifier is given twice", scheme.to_uppercase()),
            ));
        }
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

    let mut holders: Vec<Holder> = metadata
        .holders
        .into_iter()
        .map(|h| Holder {
            party_id: h.party_id.trim().to_ascii_lowercase(),
            share_bp: h.share_bp,
        })
        .collect();
    holders.sort();
    check_holders(&holders).map_err(|reason| RegistryError::invalid("metadata.holders", reason))?;

    Ok(Metadata {
        title,
        identifiers,
        derived_from,
        holders,
    })
}

/// The rules of first holders, in their stored form: at most
/// [`MAX_HOLDERS`], each a party id once, in ascending order, each share 1
/// to 10,000 basis points, together the whole (or no holders at all).
pub fn check_holders(holders: &[Holder]) -> std::result::Result<(), String> {
    if holders.is_empty() {
        return Ok(());
    }
    if holders.len() > MAX_HOLDERS {
        return Err(format!("at most {MAX_HOLDERS} holders"));
    }
    for holder in holders {
        if !is_content_id(&holder.party_id) {
            return Err(format!("{:?} is not a party id", holder.party_id));
        }
        if holder.share_bp == 0 || u32::from(holder.share_bp) > WHOLE_BP {
            return Err(format!(
                "the share of {} must be 1 to {WHOLE_BP} basis points",
                holder.party_id
            ));
        }
    }
    if let Some(pair) = holders.windows(2).find(|w| w[0].party_id >= w[1].party_id) {
        return Err(if pair[0].party_id == pair[1].party_id {
            format!("{} is listed twice", pair[0].party_id)
        } else {
            "holders must be in ascending order of party id".into()
        });
    }
    let total: u32 = holders.iter().map(|h| u32::from(h.share_bp)).sum();
    if total != WHOLE_BP {
        return Err(format!(
            "the shares add up to {total} basis points, not {WHOLE_BP}"
        ));
    }
    Ok(())
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
/// `None` if anything but ASCII is left: every scheme here is ASCII, and
/// the parsers below index and slice by byte, which would panic inside a
/// multi-byte character.
fn compact(value: &str, drop: &[char]) -> Option<String> {
    let v: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !drop.contains(c))
        .collect();
    v.is_ascii().then(|| v.to_ascii_uppercase())
}

/// ISRC (ISO 3901): country, registrant, year, designation: `CCXXXYYNNNNN`.
fn isrc(value: &str) -> Option<String> {
    let v = compact(value.strip_prefix("ISRC").unwrap_or(value), &['-'])?;
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
    let v = compact(value, &['-', '.'])?;
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
    let v = compact(value.trim().strip_prefix("ISAN").unwrap_or(value), &['-'])?;
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
    let v = compact(rest, &['-'])?;
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

    fn assert_refused_identifier(result: Result<Metadata>, what: &str) {
        match result {
            Err(RegistryError::Invalid {
                field: "metadata.identifiers",
                ..
            }) => {}
            other => panic!("{what}: expected an identifier error, got {other:?}"),
        }
    }

    /// The non-ASCII identifiers that panicked validation in issue 10 are
    /// refused with an error that says identifiers are ASCII.
    #[test]
    fn non_ascii_identifiers_from_the_issue_are_refused() {
        for (scheme, value) in [
            ("isan", "aéééééééé"),
            ("eidr", "10.5240/aéééééééééé"),
            ("isan", "0123456789ABCDEF01éééé"),
        ] {
            let err = with_identifier(scheme, value).unwrap_err();
            assert!(err.to_string().contains("ASCII"), "{scheme} {value}: {err}");
            assert_refused_identifier(Err(err), &format!("{scheme} {value:?}"));
        }
    }

    /// No string with multi-byte characters panics any scheme's parser, at
    /// any length: each is every prefix of a valid identifier (so a
    /// multi-byte character lands on every byte offset the parsers index
    /// or slice at), then one of several multi-byte characters, then
    /// pseudo-random filler of mixed ASCII and multi-byte characters.
    #[test]
    fn multi_byte_identifiers_never_panic() {
        const VALID: [&str; 6] = [
            "USRC17607839",
            "T-034.524.680-1",
            "ISAN 0000-0000-3A8D-0000-Z-0000-0000-6",
            "0123456789ABCDEF0123456789",
            "10.5240/7791-8534-2C23-9030-8610-5",
            "10.5240/7791853423C2390308610",
        ];
        // 2-, 3- and 4-byte characters, a combining mark, a right-to-left
        // mark, and non-ASCII whitespace (which compaction drops).
        const WIDE: [char; 8] = [
            'é', '€', '𝄞', '\u{301}', '\u{200f}', 'ß', '\u{a0}', '\u{3000}',
        ];
        const FILLER: [char; 10] = ['0', 'A', 'f', '-', '.', ' ', 'é', '€', '𝄞', '\u{a0}'];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            // xorshift64: deterministic, so a failure reproduces.
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut tried = 0;
        for valid in VALID {
            for cut in 0..=valid.len() {
                for wide in WIDE {
                    for _ in 0..4 {
                        let mut value: String = valid[..cut].to_owned();
                        value.push(wide);
                        // At least one non-ASCII character that is not
                        // whitespace, so no value can be valid.
                        value.push(WIDE[(next() % 6) as usize]);
                        for _ in 0..next() % 12 {
                            value.push(FILLER[(next() % FILLER.len() as u64) as usize]);
                        }
                        for scheme in IDENTIFIER_SCHEMES {
                            let result =
                                std::panic::catch_unwind(|| with_identifier(scheme, &value))
                                    .unwrap_or_else(|_| panic!("{scheme} {value:?} panicked"));
                            assert_refused_identifier(result, &format!("{scheme} {value:?}"));
                            tried += 1;
                        }
                    }
                }
            }
        }
        assert!(tried > 10_000, "only {tried} cases");
    }

    /// A metadata document must be a JSON object: an array (which serde
    /// would read as the struct in sequence form, its first item the
    /// title) or any other JSON value is refused.
    #[test]
    fn metadata_json_must_be_an_object() {
        let ok =
            from_json(br#"{"title":" Path ","identifiers":{"ISRC":"us-rc1-76-07839"}}"#).unwrap();
        assert_eq!(ok.title.as_deref(), Some("Path"));
        assert_eq!(ok.identifiers["isrc"], "USRC17607839");
        assert_eq!(from_json(b"{}").unwrap(), Metadata::default());
        for bad in [
            r#"["a title"]"#,
            r#"["a title", {"isrc": "USRC17607839"}, []]"#,
            "[]",
            r#""a title""#,
            "42",
            "null",
            r#"{"identifiers":[["isrc","USRC17607839"]]}"#,
            r#"{"titel":"typo"}"#,
            "not json",
        ] {
            match from_json(bad.as_bytes()) {
                Err(RegistryError::Invalid {
                    field: "metadata", ..
                }) => {}
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    /// An identifier scheme given twice, whether spelled the same or in
    /// another case, is refused instead of one value being kept.
    #[test]
    fn an_identifier_scheme_given_twice_is_refused() {
        for doc in [
            r#"{"identifiers":{"isrc":"USRC17607839","ISRC":"GBAYE0601498"}}"#,
            r#"{"identifiers":{"Isrc":"USRC17607839","isrc":"USRC17607839"}}"#,
            r#"{"identifiers":{"isrc":"USRC17607839","isrc":"GBAYE0601498"}}"#,
        ] {
            let err = from_json(doc.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("twice"), "{doc}: {err}");
        }
        // The same through `Metadata::normalised`, which other callers use.
        let err = normalise(Metadata {
            identifiers: [
                ("isrc".to_owned(), "USRC17607839".to_owned()),
                ("ISRC".to_owned(), "GBAYE0601498".to_owned()),
            ]
            .into(),
            ..Metadata::default()
        })
        .unwrap_err();
        assert_refused_identifier(Err(err), "isrc and ISRC");
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

    /// First holders are sorted by party id; each is a party id once with 1
    /// to 10,000 basis points, and together they hold the whole.
    #[test]
    fn holders() {
        let a = "0192f0c1-0000-7000-8000-00000000000a";
        let b = "0192f0c1-0000-7000-8000-00000000000b";
        let holder = |party_id: &str, share_bp| Holder {
            party_id: party_id.to_owned(),
            share_bp,
        };
        let ok = from_json(
            format!(r#"{{"holders":[{{"party_id":"{}","share_bp":2500}},{{"party_id":"{a}","share_bp":7500}}]}}"#, b.to_uppercase())
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.holders, vec![holder(a, 7500), holder(b, 2500)]);
        for (bad, why) in [
            (vec![holder(a, 5000)], "add up to 5000"),
            (vec![holder(a, 5000), holder(a, 5000)], "twice"),
            (vec![holder(a, 0), holder(b, 10_000)], "1 to 10000"),
            (vec![holder("nope", 10_000)], "not a party id"),
        ] {
            let err = normalise(Metadata {
                holders: bad,
                ..Metadata::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        let err = from_json(br#"{"holders":[{"party_id":"x","share_bp":1.5}]}"#).unwrap_err();
        assert!(err.to_string().contains("metadata"), "{err}");
    }
}
