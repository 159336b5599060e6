//! Licence scope: where ([`Territories`]), how ([`Media`]) and when
//! ([`Term`]) a licence applies, and the set arithmetic that conflict and
//! sublicence checks need.
//!
//! Everything here is pure and deterministic: the Raft state machine calls it
//! while applying entries, so two replicas must always reach the same answer.
//! That is why the list of territory codes is pinned ([`TerritorySet`]) rather
//! than whatever a dependency update brings.
//!
//! Input comes from anyone who can sign an intent, so every constructor
//! refuses what it does not understand rather than guessing: unknown or
//! lower-case codes, duplicates, empty lists, backwards terms.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use time::Date;

use crate::{RegistryError, Result};

/// The include-only pseudo-code for every territory in the set.
pub const WORLD: &str = "WORLD";

/// A versioned list of the territory codes a scope may name.
///
/// The list is part of what a ledger entry means: `WORLD` minus `US` covers a
/// different set of countries if a code is added. So the list never changes
/// under an existing version; a later ledger entry version that needs a newer
/// list adds a variant here and names it explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum TerritorySet {
    /// The 249 officially assigned ISO 3166-1 alpha-2 codes, as listed by
    /// the `isocountry` crate at exactly version 0.3.2 (pinned with `=` in
    /// the workspace manifest). No alpha-2 code has been assigned or
    /// withdrawn since SS in 2011, so this is the standard's current list.
    /// User-assigned codes (`XK` for Kosovo, `EU`, `ZZ`...) are not in it.
    V1,
}

impl TerritorySet {
    /// The set new scopes are read with.
    pub const CURRENT: TerritorySet = TerritorySet::V1;

    /// The version number recorded alongside scopes that use this set.
    pub fn version(self) -> u32 {
        match self {
            TerritorySet::V1 => 1,
        }
    }

    /// Every code in the set, sorted, upper case.
    pub fn codes(self) -> &'static [&'static str] {
        match self {
            TerritorySet::V1 => &V1_CODES,
        }
    }

    /// The set's own spelling of `code`, if `code` is in it (exact,
    /// upper-case match).
    pub fn code(self, code: &str) -> Option<&'static str> {
        self.index(code).map(|i| self.codes()[i])
    }

    /// Position of `code` in [`codes`](Self::codes).
    fn index(self, code: &str) -> Option<usize> {
        self.codes().binary_search(&code).ok()
    }
}

/// [`TerritorySet::V1`], read once from the pinned crate.
static V1_CODES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut codes: Vec<&'static str> = isocountry::CountryCode::iter()
        .map(|c| c.alpha2())
        .collect();
    // The crate documents its arrays as sorted; sorting here keeps
    // binary_search correct even if a release reordered them (and the
    // snapshot test would catch any change of content).
    codes.sort_unstable();
    codes.dedup();
    codes
});

/// Checks one territory code against the current set, for query parameters
/// such as "which licences cover FR?". `WORLD` is not a code and is refused.
pub fn territory_code(code: &str) -> Result<&'static str> {
    check_code(TerritorySet::CURRENT, code).map_err(|r| RegistryError::invalid("territory", r))
}

/// Validates one code of `set`, with a message a client can act on.
fn check_code(set: TerritorySet, code: &str) -> std::result::Result<&'static str, String> {
    if let Some(known) = set.code(code) {
        return Ok(known);
    }
    let upper = code.to_ascii_uppercase();
    if upper != code && set.code(&upper).is_some() {
        Err(format!("territory codes are upper case: {code:?}"))
    } else {
        Err(format!(
            "{code:?} is not an officially assigned ISO 3166-1 alpha-2 code (territory set v{})",
            set.version()
        ))
    }
}

/// A set of territories of one [`TerritorySet`], as a bitmap over its
/// sorted codes: the effective coverage of a [`Territories`] value.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CodeSet {
    set: TerritorySet,
    /// Bit `i` is the set's code `i`; 256 bits hold the 249 codes.
    bits: [u64; 4],
}

impl CodeSet {
    /// No territory.
    pub fn empty(set: TerritorySet) -> Self {
        Self { set, bits: [0; 4] }
    }

    /// Every territory of `set`.
    pub fn world(set: TerritorySet) -> Self {
        let mut all = Self::empty(set);
        for i in 0..set.codes().len() {
            all.insert_index(i);
        }
        all
    }

    fn insert_index(&mut self, i: usize) {
        self.bits[i / 64] |= 1 << (i % 64);
    }

    fn remove_index(&mut self, i: usize) {
        self.bits[i / 64] &= !(1 << (i % 64));
    }

    fn has_index(&self, i: usize) -> bool {
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// The territory list these codes are positions in.
    pub fn territory_set(&self) -> TerritorySet {
        self.set
    }

    /// Whether `code` (exact, upper case) is in the set.
    pub fn contains(&self, code: &str) -> bool {
        self.set.index(code).is_some_and(|i| self.has_index(i))
    }

    /// How many territories are in the set.
    pub fn len(&self) -> usize {
        self.bits.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set holds no territory.
    pub fn is_empty(&self) -> bool {
        self.bits == [0; 4]
    }

    /// The codes in the set, sorted.
    pub fn codes(&self) -> Vec<&'static str> {
        let codes = self.set.codes();
        (0..codes.len())
            .filter(|&i| self.has_index(i))
            .map(|i| codes[i])
            .collect()
    }

    /// `other`'s bits laid out over `self`'s code list. With one list
    /// version this is `other.bits`; the general path keeps set arithmetic
    /// right once a second version exists.
    fn aligned(&self, other: &CodeSet) -> [u64; 4] {
        if self.set == other.set {
            return other.bits;
        }
        let mut out = Self::empty(self.set);
        for code in other.codes() {
            if let Some(i) = self.set.index(code) {
                out.insert_index(i);
            }
        }
        out.bits
    }

    /// The territories in both sets.
    pub fn intersection(&self, other: &CodeSet) -> CodeSet {
        let theirs = self.aligned(other);
        let mut bits = self.bits;
        for (mine, theirs) in bits.iter_mut().zip(theirs) {
            *mine &= theirs;
        }
        CodeSet {
            set: self.set,
            bits,
        }
    }

    /// Whether every territory of `self` is also in `other`.
    pub fn is_subset(&self, other: &CodeSet) -> bool {
        let theirs = other.aligned(self);
        other
            .bits
            .iter()
            .zip(theirs)
            .all(|(outer, inner)| inner & !outer == 0)
    }

    /// The shortest [`Territories`] spelling of this set: `WORLD` minus the
    /// missing codes when that list is shorter than the present ones, for
    /// readable conflict reports. `None` for the empty set.
    pub fn to_territories(&self) -> Option<Territories> {
        if self.is_empty() {
            return None;
        }
        let present = self.codes();
        let total = self.set.codes().len();
        let (include, exclude) = if total - present.len() < present.len() {
            let missing = self
                .set
                .codes()
                .iter()
                .copied()
                .filter(|c| !self.contains(c))
                .collect();
            (vec![WORLD], missing)
        } else {
            (present, Vec::new())
        };
        Some(Territories {
            include,
            exclude,
            effective: *self,
        })
    }
}

impl fmt::Debug for CodeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.codes()).finish()
    }
}

/// Where a licence applies: codes to include (or `WORLD`) minus codes to
/// exclude.
///
/// Both lists are kept sorted, which is the stored spelling; the signed
/// intent keeps the client's own order. Rules, all enforced by
/// [`Territories::new`]:
/// - codes are officially assigned ISO 3166-1 alpha-2, upper case;
/// - `include` is not empty; `WORLD` appears only in `include`, and alone
///   there (`["WORLD", "FR"]` says the same thing twice);
/// - no code appears twice in one list;
/// - every excluded code is covered by `include`;
/// - the result covers at least one territory.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TerritoriesWire", into = "TerritoriesWire")]
pub struct Territories {
    include: Vec<&'static str>,
    exclude: Vec<&'static str>,
    effective: CodeSet,
}

/// The JSON form of [`Territories`]: both members required.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TerritoriesWire {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl TryFrom<TerritoriesWire> for Territories {
    type Error = String;
    fn try_from(wire: TerritoriesWire) -> std::result::Result<Self, String> {
        // V1, not CURRENT: JSON carries no set version, and what a recorded
        // scope means must not change when CURRENT does. An entry version
        // using a later set reads its scopes with `new_in`.
        Self::build(TerritorySet::V1, &wire.include, &wire.exclude)
    }
}

impl From<Territories> for TerritoriesWire {
    fn from(t: Territories) -> Self {
        Self {
            include: t.include.iter().map(|c| c.to_string()).collect(),
            exclude: t.exclude.iter().map(|c| c.to_string()).collect(),
        }
    }
}

impl Territories {
    /// Reads include and exclude lists against [`TerritorySet::CURRENT`].
    pub fn new(include: &[impl AsRef<str>], exclude: &[impl AsRef<str>]) -> Result<Self> {
        Self::new_in(TerritorySet::CURRENT, include, exclude)
    }

    /// Reads include and exclude lists against a given territory set, for
    /// entries recorded under an older one.
    pub fn new_in(
        set: TerritorySet,
        include: &[impl AsRef<str>],
        exclude: &[impl AsRef<str>],
    ) -> Result<Self> {
        Self::build(set, include, exclude).map_err(|r| RegistryError::invalid("territories", r))
    }

    fn build(
        set: TerritorySet,
        include: &[impl AsRef<str>],
        exclude: &[impl AsRef<str>],
    ) -> std::result::Result<Self, String> {
        if include.is_empty() {
            return Err("include is empty: name at least one territory, or WORLD".into());
        }
        let mut inc = Vec::with_capacity(include.len());
        let mut world = false;
        for code in include {
            let code = code.as_ref();
            if code == WORLD {
                world = true;
                inc.push(WORLD);
            } else {
                inc.push(check_code(set, code).map_err(|r| format!("include: {r}"))?);
            }
        }
        if world && inc.len() > 1 {
            return Err("include: WORLD must be the only entry when present".into());
        }
        inc.sort_unstable();
        if let Some(dup) = first_duplicate(&inc) {
            return Err(format!("include: {dup} is listed twice"));
        }

        let mut effective = if world {
            CodeSet::world(set)
        } else {
            let mut s = CodeSet::empty(set);
            for code in &inc {
                if let Some(i) = set.index(code) {
                    s.insert_index(i);
                }
            }
            s
        };
        let included = effective;

        let mut exc = Vec::with_capacity(exclude.len());
        for code in exclude {
            let code = code.as_ref();
            if code == WORLD {
                return Err("exclude: WORLD cannot be excluded".into());
            }
            exc.push(check_code(set, code).map_err(|r| format!("exclude: {r}"))?);
        }
        exc.sort_unstable();
        if let Some(dup) = first_duplicate(&exc) {
            return Err(format!("exclude: {dup} is listed twice"));
        }
        for code in &exc {
            if !included.contains(code) {
                return Err(format!("exclude: {code} is not covered by include"));
            }
            if let Some(i) = set.index(code) {
                effective.remove_index(i);
            }
        }
        if effective.is_empty() {
            return Err("the exclusions leave no territory".into());
        }
        Ok(Self {
            include: inc,
            exclude: exc,
            effective,
        })
    }

    /// The included codes (or `["WORLD"]`), sorted.
    pub fn include(&self) -> &[&'static str] {
        &self.include
    }

    /// The excluded codes, sorted.
    pub fn exclude(&self) -> &[&'static str] {
        &self.exclude
    }

    /// Every territory covered: include minus exclude.
    pub fn effective(&self) -> CodeSet {
        self.effective
    }

    /// Whether `code` is covered. An unknown code is covered by nothing.
    pub fn covers(&self, code: &str) -> bool {
        self.effective.contains(code)
    }

    /// The territories both cover (empty when they do not overlap).
    pub fn overlap(&self, other: &Territories) -> CodeSet {
        self.effective.intersection(&other.effective)
    }

    /// Whether `inner` covers nothing outside `self` (the sublicence rule).
    pub fn contains(&self, inner: &Territories) -> bool {
        inner.effective.is_subset(&self.effective)
    }
}

/// The first value of a sorted slice that equals its successor.
fn first_duplicate<T: PartialEq + Copy>(sorted: &[T]) -> Option<T> {
    sorted.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// A way of exploiting content. The list is flat: no medium includes
/// another (`svod` does not cover `online`), so overlap is set intersection.
///
/// Variants are declared in the alphabetical order of their names, so the
/// derived order, the stored order and a plain string sort agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Medium {
    /// Advertising-supported video on demand.
    Avod,
    /// Catch-up television.
    CatchUpTv,
    /// DVD, Blu-ray and other physical home video.
    HomeVideo,
    /// Exhibition on board aircraft and ships.
    InFlight,
    /// Scheduled linear television.
    LinearTv,
    /// Other online exploitation.
    Online,
    /// Public performance outside cinemas.
    PublicPerformance,
    /// Radio.
    Radio,
    /// Subscription video on demand.
    Svod,
    /// Cinema exhibition.
    Theatrical,
    /// Transactional (rental or purchase) video on demand.
    Tvod,
}

impl Medium {
    /// Every medium, in order.
    pub const ALL: [Medium; 11] = [
        Medium::Avod,
        Medium::CatchUpTv,
        Medium::HomeVideo,
        Medium::InFlight,
        Medium::LinearTv,
        Medium::Online,
        Medium::PublicPerformance,
        Medium::Radio,
        Medium::Svod,
        Medium::Theatrical,
        Medium::Tvod,
    ];

    /// The wire name, e.g. `catch_up_tv`.
    pub fn as_str(self) -> &'static str {
        match self {
            Medium::Avod => "avod",
            Medium::CatchUpTv => "catch_up_tv",
            Medium::HomeVideo => "home_video",
            Medium::InFlight => "in_flight",
            Medium::LinearTv => "linear_tv",
            Medium::Online => "online",
            Medium::PublicPerformance => "public_performance",
            Medium::Radio => "radio",
            Medium::Svod => "svod",
            Medium::Theatrical => "theatrical",
            Medium::Tvod => "tvod",
        }
    }
}

impl fmt::Display for Medium {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Medium {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        Medium::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| RegistryError::invalid("media", unknown_medium(s)))
    }
}

fn unknown_medium(s: &str) -> String {
    let known: Vec<&str> = Medium::ALL.iter().map(|m| m.as_str()).collect();
    format!("unknown medium {s:?}; expected one of {}", known.join(", "))
}

/// The media a licence covers: at least one, none twice. Stored sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<Medium>")]
pub struct Media(BTreeSet<Medium>);

impl TryFrom<Vec<String>> for Media {
    type Error = String;
    fn try_from(names: Vec<String>) -> std::result::Result<Self, String> {
        let mut set = BTreeSet::new();
        if names.is_empty() {
            return Err("media is empty: name at least one medium".into());
        }
        for name in &names {
            let medium = Medium::ALL
                .into_iter()
                .find(|m| m.as_str() == name)
                .ok_or_else(|| unknown_medium(name))?;
            if !set.insert(medium) {
                return Err(format!("medium {medium} is listed twice"));
            }
        }
        Ok(Media(set))
    }
}

impl From<Media> for Vec<Medium> {
    fn from(m: Media) -> Self {
        m.0.into_iter().collect()
    }
}

impl Media {
    /// Reads a list of media, refusing an empty list and duplicates.
    pub fn new(media: &[Medium]) -> Result<Self> {
        let mut set = BTreeSet::new();
        if media.is_empty() {
            return Err(RegistryError::invalid("media", "name at least one medium"));
        }
        for &m in media {
            if !set.insert(m) {
                return Err(RegistryError::invalid(
                    "media",
                    format!("medium {m} is listed twice"),
                ));
            }
        }
        Ok(Media(set))
    }

    /// The media, sorted.
    pub fn iter(&self) -> impl Iterator<Item = Medium> + '_ {
        self.0.iter().copied()
    }

    /// Whether `medium` is covered.
    pub fn covers(&self, medium: Medium) -> bool {
        self.0.contains(&medium)
    }

    /// The media both cover, or `None` if they share none.
    pub fn overlap(&self, other: &Media) -> Option<Media> {
        let both: BTreeSet<Medium> = self.0.intersection(&other.0).copied().collect();
        (!both.is_empty()).then_some(Media(both))
    }

    /// Whether `inner` names no medium outside `self`.
    pub fn contains(&self, inner: &Media) -> bool {
        inner.0.is_subset(&self.0)
    }
}

/// Reads a UTC calendar date spelled exactly `YYYY-MM-DD`.
///
/// Written out rather than left to a format description so that no sign,
/// short year or other spelling the parser might tolerate gets through: one
/// date has one spelling.
pub fn parse_date(s: &str) -> Result<Date> {
    parse_date_str(s).map_err(|r| RegistryError::invalid("date", r))
}

fn parse_date_str(s: &str) -> std::result::Result<Date, String> {
    let b = s.as_bytes();
    let shaped = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shaped {
        return Err(format!("{s:?} is not a date of the form YYYY-MM-DD"));
    }
    // The shape check makes these all ASCII digits, so the sums cannot
    // overflow and the slices are on character boundaries.
    let num =
        |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |n, c| n * 10 + u32::from(c - b'0'));
    let year = num(0..4) as i32;
    let month = time::Month::try_from(num(5..7) as u8)
        .map_err(|_| format!("{s:?} has no month {}", num(5..7)))?;
    Date::from_calendar_date(year, month, num(8..10) as u8)
        .map_err(|_| format!("{s:?} is not a calendar date"))
}

/// Formats a date as `YYYY-MM-DD`.
fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// When a licence applies: from `start` (inclusive) to `end` (exclusive),
/// UTC calendar days. A term ending on 2027-01-01 covers all of 2026 and
/// not a minute of 2027, so a renewal starting that day does not overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "TermWire", into = "TermWire")]
pub struct Term {
    start: Date,
    end: Date,
}

/// The JSON form of [`Term`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TermWire {
    start: String,
    end: String,
}

impl TryFrom<TermWire> for Term {
    type Error = String;
    fn try_from(w: TermWire) -> std::result::Result<Self, String> {
        let start = parse_date_str(&w.start).map_err(|r| format!("start: {r}"))?;
        let end = parse_date_str(&w.end).map_err(|r| format!("end: {r}"))?;
        Term::build(start, end)
    }
}

impl From<Term> for TermWire {
    fn from(t: Term) -> Self {
        Self {
            start: format_date(t.start),
            end: format_date(t.end),
        }
    }
}

impl Term {
    /// A term from `start` (inclusive) to `end` (exclusive); `start` must be
    /// before `end`.
    pub fn new(start: Date, end: Date) -> Result<Self> {
        Self::build(start, end).map_err(|r| RegistryError::invalid("term", r))
    }

    /// Reads a term from two `YYYY-MM-DD` strings.
    pub fn parse(start: &str, end: &str) -> Result<Self> {
        Self::try_from(TermWire {
            start: start.to_owned(),
            end: end.to_owned(),
        })
        .map_err(|r| RegistryError::invalid("term", r))
    }

    fn build(start: Date, end: Date) -> std::result::Result<Self, String> {
        if start >= end {
            return Err(format!(
                "start {} must be before end {} (end is exclusive)",
                format_date(start),
                format_date(end)
            ));
        }
        Ok(Self { start, end })
    }

    /// The first day covered.
    pub fn start(&self) -> Date {
        self.start
    }

    /// The first day no longer covered.
    pub fn end(&self) -> Date {
        self.end
    }

    /// Whether `date` falls within the term.
    pub fn covers(&self, date: Date) -> bool {
        self.start <= date && date < self.end
    }

    /// The days both terms cover, or `None`; terms that merely touch (one
    /// ends the day the other starts) do not overlap.
    pub fn overlap(&self, other: &Term) -> Option<Term> {
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        (start < end).then_some(Term { start, end })
    }

    /// Whether `inner` lies wholly within `self`.
    pub fn contains(&self, inner: &Term) -> bool {
        self.start <= inner.start && inner.end <= self.end
    }
}

/// A licence's whole scope. Two scopes conflict only where all three
/// dimensions overlap at once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Where.
    pub territories: Territories,
    /// How.
    pub media: Media,
    /// When.
    pub term: Term,
}

/// Where, how and when two scopes coincide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    /// Territories both cover (never empty).
    pub territories: CodeSet,
    /// Media both cover.
    pub media: Media,
    /// First day both cover.
    pub start: Date,
    /// First day after the shared period (exclusive).
    pub end: Date,
}

impl Scope {
    /// Where, how and when both scopes apply, or `None` if they are
    /// disjoint in any one dimension.
    pub fn overlap(&self, other: &Scope) -> Option<Overlap> {
        let territories = self.territories.overlap(&other.territories);
        if territories.is_empty() {
            return None;
        }
        let media = self.media.overlap(&other.media)?;
        let term = self.term.overlap(&other.term)?;
        Some(Overlap {
            territories,
            media,
            start: term.start,
            end: term.end,
        })
    }

    /// Whether `inner` stays within `self` in every dimension: what a
    /// sublicence must do relative to its parent.
    pub fn contains(&self, inner: &Scope) -> bool {
        self.territories.contains(&inner.territories)
            && self.media.contains(&inner.media)
            && self.term.contains(&inner.term)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(include: &[&str], exclude: &[&str]) -> Territories {
        Territories::new(include, exclude).unwrap()
    }

    fn t_err(include: &[&str], exclude: &[&str]) -> String {
        match Territories::new(include, exclude) {
            Err(RegistryError::Invalid { field, reason }) => {
                assert_eq!(field, "territories");
                reason
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn d(s: &str) -> Date {
        parse_date(s).unwrap()
    }

    fn term(start: &str, end: &str) -> Term {
        Term::parse(start, end).unwrap()
    }

    fn media(m: &[Medium]) -> Media {
        Media::new(m).unwrap()
    }

    /// The pinned list is exactly the 249 officially assigned codes: a
    /// crate update that changed it would change what `WORLD` means in
    /// recorded licences, so it must fail here and be made deliberately.
    #[test]
    fn territory_set_v1_is_pinned() {
        let codes = TerritorySet::V1.codes();
        assert_eq!(codes.len(), 249);
        assert_eq!(
            codes.join(" "),
            "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
             CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR \
             GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP \
             KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT \
             MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
             SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG \
             UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
        );
        assert_eq!(TerritorySet::CURRENT.version(), 1);
    }

    /// Codes are exact: upper case only, officially assigned only, and the
    /// message says which rule was broken.
    #[test]
    fn territory_codes_are_checked() {
        assert_eq!(territory_code("FR").unwrap(), "FR");
        for (bad, says) in [
            ("fr", "upper case"),
            ("Fr", "upper case"),
            ("XK", "not an officially assigned"),
            ("UK", "not an officially assigned"),
            ("EU", "not an officially assigned"),
            ("FRA", "not an officially assigned"),
            ("", "not an officially assigned"),
            ("WORLD", "not an officially assigned"),
        ] {
            let err = territory_code(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad:?}: {err}");
        }
        assert!(t_err(&["fr"], &[]).contains("upper case"));
        assert!(t_err(&["FR", "XX"], &[]).contains("include: \"XX\""));
    }

    /// Each structural rule of include/exclude is enforced with its own
    /// message.
    #[test]
    fn territories_rules() {
        let none: [&str; 0] = [];
        assert!(t_err(&none, &none).contains("include is empty"));
        assert!(t_err(&["FR", "DE", "FR"], &[]).contains("FR is listed twice"));
        assert!(t_err(&["WORLD"], &["US", "US"]).contains("exclude: US is listed twice"));
        assert!(t_err(&["WORLD", "FR"], &[]).contains("WORLD must be the only"));
        assert!(t_err(&["WORLD", "WORLD"], &[]).contains("WORLD must be the only"));
        assert!(t_err(&["WORLD"], &["WORLD"]).contains("WORLD cannot be excluded"));
        assert!(t_err(&["FR"], &["WORLD"]).contains("WORLD cannot be excluded"));
        assert!(t_err(&["FR", "DE"], &["US"]).contains("US is not covered by include"));
        assert!(t_err(&["FR"], &["FR"]).contains("leave no territory"));
        // Exclusions covered by an explicit include are allowed.
        let de = t(&["FR", "DE"], &["FR"]);
        assert_eq!(de.effective().codes(), ["DE"]);
    }

    /// Lists are stored sorted whatever order the client used, and the JSON
    /// form round-trips.
    #[test]
    fn territories_normalise_and_round_trip() {
        let a = t(&["GB", "DE", "FR"], &["FR"]);
        assert_eq!(a.include(), ["DE", "FR", "GB"]);
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, r#"{"include":["DE","FR","GB"],"exclude":["FR"]}"#);
        let back: Territories = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
        let w: Territories =
            serde_json::from_str(r#"{"include":["WORLD"],"exclude":["US","CA"]}"#).unwrap();
        assert_eq!(w.exclude(), ["CA", "US"]);
        for bad in [
            r#"{"include":["WORLD"]}"#,
            r#"{"include":["WORLD"],"exclude":[],"also":[]}"#,
            r#"{"include":["fr"],"exclude":[]}"#,
        ] {
            assert!(serde_json::from_str::<Territories>(bad).is_err(), "{bad}");
        }
    }

    /// WORLD minus exclusions covers everything but the exclusions.
    #[test]
    fn world_minus_exclusions() {
        let w = t(&["WORLD"], &["US", "CA"]);
        assert_eq!(w.effective().len(), 247);
        assert!(w.covers("FR"));
        assert!(!w.covers("US"));
        assert!(!w.covers("CA"));
        assert!(!w.covers("XK"));
        assert!(!w.covers("fr"));
        assert!(t(&["WORLD"], &[]).covers("AQ"));
    }

    /// Overlap is the exact intersection, including the cases where one side
    /// is WORLD minus exclusions and where the only overlap is outside
    /// anyone's explicit list.
    #[test]
    fn territory_overlap() {
        let world_but_us = t(&["WORLD"], &["US"]);
        let north_america = t(&["US", "CA", "MX"], &[]);
        assert_eq!(world_but_us.overlap(&north_america).codes(), ["CA", "MX"]);
        // US only vs world-but-US: disjoint.
        assert!(world_but_us.overlap(&t(&["US"], &[])).is_empty());
        // Two exclude-only scopes overlap on everything neither excludes.
        let world_but_fr = t(&["WORLD"], &["FR"]);
        let both = world_but_us.overlap(&world_but_fr);
        assert_eq!(both.len(), 247);
        assert!(!both.contains("US") && !both.contains("FR") && both.contains("DE"));
        // Their compact spelling is WORLD minus the two.
        let compact = both.to_territories().unwrap();
        assert_eq!(compact.include(), [WORLD]);
        assert_eq!(compact.exclude(), ["FR", "US"]);
        // A small set is spelt as an include list.
        let small = world_but_us
            .overlap(&north_america)
            .to_territories()
            .unwrap();
        assert_eq!(small.include(), ["CA", "MX"]);
        assert!(small.exclude().is_empty());
        assert!(CodeSet::empty(TerritorySet::V1).to_territories().is_none());
        // Overlap is symmetric.
        assert_eq!(
            north_america.overlap(&world_but_us),
            world_but_us.overlap(&north_america)
        );
    }

    /// Containment: WORLD-minus contains a list that avoids the exclusions,
    /// and not one that touches them; a list never contains WORLD.
    #[test]
    fn territory_contains() {
        let world_but_us = t(&["WORLD"], &["US"]);
        assert!(world_but_us.contains(&t(&["FR", "DE"], &[])));
        assert!(!world_but_us.contains(&t(&["FR", "US"], &[])));
        assert!(!world_but_us.contains(&t(&["WORLD"], &[])));
        assert!(t(&["WORLD"], &[]).contains(&world_but_us));
        assert!(world_but_us.contains(&t(&["WORLD"], &["US", "CA"])));
        assert!(!t(&["FR", "DE"], &[]).contains(&t(&["WORLD"], &["US"])));
        assert!(world_but_us.contains(&world_but_us));
        assert!(t(&["FR", "DE"], &[]).contains(&t(&["FR", "DE"], &["DE"])));
    }

    /// Media names are the snake_case wire names; unknown, empty and
    /// duplicate lists are refused.
    #[test]
    fn media_rules() {
        for m in Medium::ALL {
            assert_eq!(m.as_str().parse::<Medium>().unwrap(), m);
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.as_str())
            );
        }
        // ALL is sorted by name, so derived order is string order.
        let mut names: Vec<&str> = Medium::ALL.iter().map(|m| m.as_str()).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            Medium::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );
        let parsed: Media = serde_json::from_str(r#"["svod","avod"]"#).unwrap();
        assert_eq!(
            serde_json::to_string(&parsed).unwrap(),
            r#"["avod","svod"]"#
        );
        for (bad, says) in [
            ("[]", "media is empty"),
            (r#"["svod","svod"]"#, "svod is listed twice"),
            (r#"["SVOD"]"#, "unknown medium"),
            (r#"["vod"]"#, "unknown medium"),
        ] {
            let err = serde_json::from_str::<Media>(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(Media::new(&[]).is_err());
        assert!(Media::new(&[Medium::Radio, Medium::Radio]).is_err());
    }

    /// Media are flat: overlap is intersection and containment is subset.
    #[test]
    fn media_overlap_and_contains() {
        let a = media(&[Medium::Svod, Medium::Avod, Medium::Tvod]);
        let b = media(&[Medium::Svod, Medium::Online]);
        assert_eq!(a.overlap(&b).unwrap(), media(&[Medium::Svod]));
        assert!(a.overlap(&media(&[Medium::Online])).is_none());
        assert!(a.contains(&media(&[Medium::Avod, Medium::Svod])));
        assert!(!a.contains(&b));
        assert!(!media(&[Medium::Online]).contains(&media(&[Medium::Svod])));
        assert!(a.covers(Medium::Tvod) && !a.covers(Medium::Radio));
    }

    /// Dates have exactly one spelling and must exist.
    #[test]
    fn dates_are_strict() {
        assert_eq!(
            d("2024-02-29"),
            Date::from_calendar_date(2024, time::Month::February, 29).unwrap()
        );
        for bad in [
            "2023-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-01-00",
            "2026-1-01",
            "26-01-01",
            "+2026-01-01",
            "2026-01-01T00:00:00Z",
            "2026/01/01",
            "２０２６-01-01",
            "",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    /// A term needs start < end; it covers start and not end.
    #[test]
    fn term_bounds() {
        assert!(Term::parse("2026-01-01", "2026-01-01").is_err());
        assert!(Term::parse("2026-01-02", "2026-01-01").is_err());
        let y = term("2026-01-01", "2027-01-01");
        assert!(y.covers(d("2026-01-01")));
        assert!(y.covers(d("2026-12-31")));
        assert!(!y.covers(d("2027-01-01")));
        assert!(!y.covers(d("2025-12-31")));
        let json = serde_json::to_string(&y).unwrap();
        assert_eq!(json, r#"{"start":"2026-01-01","end":"2027-01-01"}"#);
        assert_eq!(serde_json::from_str::<Term>(&json).unwrap(), y);
        assert!(
            serde_json::from_str::<Term>(r#"{"start":"2026-01-01","end":"2027-01-01","x":"1"}"#)
                .is_err()
        );
        let err = serde_json::from_str::<Term>(r#"{"start":"2026-01-01","end":"2026-01-01"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be before end"), "{err}");
    }

    /// Adjacent terms (one ends the day the other starts) do not overlap;
    /// a one-day overlap is found exactly.
    #[test]
    fn term_overlap_and_contains() {
        let a = term("2026-01-01", "2027-01-01");
        let b = term("2027-01-01", "2028-01-01");
        assert!(a.overlap(&b).is_none());
        assert!(b.overlap(&a).is_none());
        let c = term("2026-12-31", "2027-06-01");
        assert_eq!(a.overlap(&c).unwrap(), term("2026-12-31", "2027-01-01"));
        assert!(a.contains(&term("2026-03-01", "2026-04-01")));
        assert!(a.contains(&a));
        assert!(!a.contains(&c));
        assert!(!term("2026-03-01", "2026-04-01").contains(&a));
    }

    fn scope(inc: &[&str], exc: &[&str], m: &[Medium], start: &str, end: &str) -> Scope {
        Scope {
            territories: t(inc, exc),
            media: media(m),
            term: term(start, end),
        }
    }

    /// Scopes overlap only when territories, media and term all do, and the
    /// overlap reports each dimension's intersection.
    #[test]
    fn scope_overlap_needs_all_three() {
        let a = scope(
            &["WORLD"],
            &["US"],
            &[Medium::Svod, Medium::Avod],
            "2026-01-01",
            "2027-01-01",
        );
        let b = scope(
            &["US", "CA"],
            &[],
            &[Medium::Svod],
            "2026-06-01",
            "2028-01-01",
        );
        let o = a.overlap(&b).unwrap();
        assert_eq!(o.territories.codes(), ["CA"]);
        assert_eq!(o.media, media(&[Medium::Svod]));
        assert_eq!((o.start, o.end), (d("2026-06-01"), d("2027-01-01")));
        // Disjoint in one dimension each.
        let other_place = scope(&["US"], &[], &[Medium::Svod], "2026-06-01", "2028-01-01");
        let other_medium = scope(&["CA"], &[], &[Medium::Radio], "2026-06-01", "2028-01-01");
        let later = scope(&["CA"], &[], &[Medium::Svod], "2027-01-01", "2028-01-01");
        assert!(a.overlap(&other_place).is_none());
        assert!(a.overlap(&other_medium).is_none());
        assert!(a.overlap(&later).is_none());
    }

    /// A sublicence scope must lie within its parent in every dimension.
    #[test]
    fn scope_contains_every_dimension() {
        let parent = scope(
            &["WORLD"],
            &["US"],
            &[Medium::Svod, Medium::Avod],
            "2026-01-01",
            "2027-01-01",
        );
        let ok = scope(
            &["FR", "DE"],
            &[],
            &[Medium::Svod],
            "2026-02-01",
            "2026-03-01",
        );
        assert!(parent.contains(&ok));
        assert!(parent.contains(&parent));
        let too_wide = scope(
            &["FR", "US"],
            &[],
            &[Medium::Svod],
            "2026-02-01",
            "2026-03-01",
        );
        let wrong_medium = scope(&["FR"], &[], &[Medium::Tvod], "2026-02-01", "2026-03-01");
        let too_long = scope(&["FR"], &[], &[Medium::Svod], "2026-02-01", "2027-01-02");
        assert!(!parent.contains(&too_wide));
        assert!(!parent.contains(&wrong_medium));
        assert!(!parent.contains(&too_long));
    }

    /// A scope's JSON form has exactly the three members.
    #[test]
    fn scope_json() {
        let s: Scope = serde_json::from_str(
            r#"{"territories":{"include":["FR"],"exclude":[]},"media":["radio"],"term":{"start":"2026-01-01","end":"2026-02-01"}}"#,
        )
        .unwrap();
        assert!(s.territories.covers("FR"));
        assert!(
            serde_json::from_str::<Scope>(
                r#"{"territories":{"include":["FR"],"exclude":[]},"media":["radio"],"term":{"start":"2026-01-01","end":"2026-02-01"},"x":1}"#,
            )
            .is_err()
        );
    }
}
