//! PII detection and redaction, with reversible placeholders.
//!
//! [`PiiDetector`] finds e-mail addresses, phone numbers in international (`+CC`, `00CC`) and
//! North American formats, payment cards (validated with Luhn), IBANs (validated with mod-97),
//! US social security numbers (structural rules), IPv4 and IPv6 addresses, dates of birth (a
//! date next to "born", "DOB", "date of birth", "geboren", "né le", ...) and postal addresses
//! where a pattern is reliable (US street lines, German street names, UK postcodes). Every
//! pattern is compiled once per process.
//!
//! [`PiiGuard`] blocks, flags or redacts. Redaction writes `[EMAIL]`-style tags, or — when the
//! application hands it a [`Vault`] — numbered placeholders (`[EMAIL_1]`) whose originals the
//! vault keeps, so the application can restore them in the model's answer
//! ([`Vault::restore`]). The vault lives in the application; nothing leaves the process.
//!
//! ```
//! use llmkit_guard::input::pii::{PiiDetector, PiiKind, Vault, redact};
//!
//! let text = "Mail jane.doe@example.com or call +44 20 7946 0958.";
//! let found = PiiDetector::new().detect(text);
//! assert_eq!(found[0].kind, PiiKind::Email);
//!
//! let vault = Vault::new();
//! let safe = redact(text, Some(&vault));
//! assert_eq!(safe, "Mail [EMAIL_1] or call [PHONE_1].");
//! assert_eq!(vault.restore(&safe), text);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv6Addr;
use std::ops::Range;
use std::str::FromStr;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::guard::{
    Action, Decision, Finding, Guard, GuardContext, PatternError, apply_edits, ascii_pattern,
    compile_scan,
};
use crate::input::checksum::{iban_valid, luhn_valid, ssn_valid};
use crate::scan::PatternScan;

/// A kind of personal data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PiiKind {
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A payment card number that passes Luhn.
    CreditCard,
    /// An IBAN that passes mod-97.
    Iban,
    /// A US social security number.
    UsSsn,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// A date of birth (a date next to a birth keyword).
    DateOfBirth,
    /// A postal address line or postcode.
    PostalAddress,
}

impl PiiKind {
    /// Every kind.
    pub const ALL: [PiiKind; 8] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::CreditCard,
        PiiKind::Iban,
        PiiKind::UsSsn,
        PiiKind::IpAddress,
        PiiKind::DateOfBirth,
        PiiKind::PostalAddress,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::CreditCard => "credit_card",
            PiiKind::Iban => "iban",
            PiiKind::UsSsn => "us_ssn",
            PiiKind::IpAddress => "ip_address",
            PiiKind::DateOfBirth => "date_of_birth",
            PiiKind::PostalAddress => "postal_address",
        }
    }

    /// The placeholder tag (`EMAIL`, `PHONE`, `CARD`, `IBAN`, `SSN`, `IP`, `DOB`, `ADDRESS`).
    pub fn tag(self) -> &'static str {
        match self {
            PiiKind::Email => "EMAIL",
            PiiKind::Phone => "PHONE",
            PiiKind::CreditCard => "CARD",
            PiiKind::Iban => "IBAN",
            PiiKind::UsSsn => "SSN",
            PiiKind::IpAddress => "IP",
            PiiKind::DateOfBirth => "DOB",
            PiiKind::PostalAddress => "ADDRESS",
        }
    }
}

/// One detected value: kind, byte range and confidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PiiMatch {
    /// What it is.
    pub kind: PiiKind,
    /// Byte range in the text.
    pub range: Range<usize>,
    /// Confidence: 0.95 for checksum-validated values, lower for pattern-only ones.
    pub score: f32,
}

const EMAIL: &str = r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}\b";
const PHONE_INTL: &str =
    r"(?:\+|\b00)[1-9]\d{0,2}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,8}(?:[ .-]\d{1,8}){0,6}\b";
const PHONE_NANP: &str = r"(?:\(\d{3}\)\s?|\b\d{3}[ .-])\d{3}[ .-]\d{4}\b";
const CARD: &str = r"\b\d(?:[ -]?\d){12,}\b";
const IBAN: &str = r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b";
const SSN: &str = r"\b(\d{3})[- ](\d{2})[- ](\d{4})\b";
const IPV4: &str =
    r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b";
/// IPv6 candidates in every RFC 5952 / RFC 4291 text form: full, `::`-compressed, with an IPv4
/// tail (`::ffff:192.0.2.1`) and with a zone id (`fe80::1%eth0`). The pattern only finds the
/// longest run of colon groups; [`ipv6_at`] decides with the standard library's parser, so a
/// compressed address is never cut at its `::` (which left its last groups in clear).
const IPV6: &str = r"(?i)[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:%[0-9a-z](?:[0-9a-z._-]*[0-9a-z])?)?";
const DOB: &str = r"(?i)\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on)?|geboren(?: am)?|geburtsdatum|n[ée]e? le|date de naissance|fecha de nacimiento|nacid[oa] el|data di nascita|nato il|nata il)\s*[:\-]?\s*((?:\d{1,2}[./-]\d{1,2}[./-](?:\d{4}|\d{2})|\d{4}-\d{2}-\d{2}|\d{1,2}\.? (?:jan|feb|m[aä]r|apr|ma[iy]|jun|jul|aug|sep|o[ck]t|nov|de[cz])[a-zé]*\.? \d{4}|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4}))";
const ADDRESS_US: &str = r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Highway|Hwy)\b\.?(?:,?\s+(?:Apt|Suite|Unit|Ste)\.?\s*#?\w+)?";
const ADDRESS_DE: &str = r"\b[A-ZÄÖÜ][a-zäöüß]+(?:straße|strasse|str\.|weg|platz|allee|gasse|damm|ring)\s+\d{1,4}[a-z]?\b";
const POSTCODE_UK: &str = r"\b(?:[A-Z]{1,2}\d[A-Z\d]?) ?\d[ABD-HJLNP-UW-Z]{2}\b";

/// Every detector pattern by rule name: the one list the one-pass scan and the benchmark's
/// baseline are built from. `PiiDetector::detect` reads the scan's results by these indices.
const TABLE: [(&str, &str); 12] = [
    ("email", EMAIL),
    ("phone_intl", PHONE_INTL),
    ("phone_nanp", PHONE_NANP),
    ("card", CARD),
    ("iban", IBAN),
    ("ssn", SSN),
    ("ipv4", IPV4),
    ("ipv6", IPV6),
    ("dob", DOB),
    ("address_us", ADDRESS_US),
    ("address_de", ADDRESS_DE),
    ("postcode_uk", POSTCODE_UK),
];

/// The detector patterns, for the benchmark's `RegexSet` baseline.
pub fn patterns() -> Vec<String> {
    TABLE.iter().map(|(_, p)| ascii_pattern(p)).collect()
}

/// Indices into `TABLE` (and into the scan's results).
const EMAIL_I: usize = 0;
const PHONE_INTL_I: usize = 1;
const PHONE_NANP_I: usize = 2;
const CARD_I: usize = 3;
const IBAN_I: usize = 4;
const SSN_I: usize = 5;
const IPV4_I: usize = 6;
const IPV6_I: usize = 7;
const DOB_I: usize = 8;
const ADDRESS_I: [usize; 3] = [9, 10, 11];

/// Every pattern compiled into one [`PatternScan`], or the first that does not compile
/// (surfaced by [`PiiDetector::try_new`]; never a pattern silently skipped).
static PATTERNS: LazyLock<Result<PatternScan, PatternError>> =
    LazyLock::new(|| compile_scan("pii", TABLE));

/// The compiled table, for the one-pass equivalence tests.
#[cfg(test)]
pub(crate) fn pattern_scan() -> Option<&'static PatternScan> {
    PATTERNS.as_ref().ok()
}

fn digits(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// Valid card numbers inside a run of digit groups. The pattern is greedy, so a card next to
/// another number matches as one run; every contiguous span of groups is tried, leftmost and
/// longest first.
fn cards_in(run: &str, reject: impl Fn(&Range<usize>) -> bool) -> Vec<Range<usize>> {
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut start = None;
    for (i, b) in run.bytes().enumerate() {
        if b.is_ascii_digit() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            groups.push(s..i);
        }
    }
    if let Some(s) = start {
        groups.push(s..run.len());
    }
    let mut out = Vec::new();
    let mut i = 0;
    'outer: while i < groups.len() {
        for j in (i..groups.len()).rev() {
            let (Some(first), Some(last)) = (groups.get(i), groups.get(j)) else {
                continue;
            };
            let span = first.start..last.end;
            let s = run.get(span.clone()).unwrap_or("");
            let n = digits(s);
            let lead = s.bytes().next().unwrap_or(b'0');
            if (13..=19).contains(&n)
                && matches!(lead, b'2'..=b'6')
                && !reject(&span)
                && luhn_valid(s)
            {
                out.push(span);
                i = j + 1;
                continue 'outer;
            }
        }
        i += 1;
    }
    out
}

/// Whether the bytes around `r` continue a dotted or digit run (a version number such as
/// `1.2.3.4.5`, or a longer number), which makes an IPv4 match a near miss.
fn embedded_in_number(text: &str, r: &Range<usize>) -> bool {
    let b = text.as_bytes();
    let before = r.start.checked_sub(1).and_then(|i| b.get(i)).copied();
    let before2 = r.start.checked_sub(2).and_then(|i| b.get(i)).copied();
    let after = b.get(r.end).copied();
    let after2 = b.get(r.end + 1).copied();
    let is_digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    (before == Some(b'.') && is_digit(before2))
        || (after == Some(b'.') && is_digit(after2))
        || matches!(before, Some(b'v' | b'V'))
}

/// Words that, right before a dotted quad, make it a version number ("version 10.2.3.4",
/// "firmware 2.0.1.7", "v1.2.3.4") rather than an address.
const VERSION_WORDS: &[&str] = &[
    "version", "ver", "ver.", "v", "v.", "release", "rel", "build", "firmware", "fw", "revision",
    "rev", "patch", "update", "sdk", "driver", "bios",
];

/// Whether the word before `start` (skipping spaces and `:`, `=`, `-`, `#`) is a version word.
fn version_context(text: &str, start: usize) -> bool {
    let before = text.get(..start).unwrap_or("");
    let before = before.trim_end_matches([' ', '\t', ':', '=', '-', '#']);
    let word_start = before
        .rfind(|c: char| !(c.is_alphanumeric() || c == '.'))
        .map_or(0, |i| i + 1);
    let word = before.get(word_start..).unwrap_or("").to_ascii_lowercase();
    VERSION_WORDS.contains(&word.as_str())
}

/// The IPv6 address a candidate match at `m` holds, as a byte range, or `None` when it is no
/// address. The candidate must stand alone (no letter, digit, `_` or `:` on either side:
/// `std::vec` and `Foo::bar` are paths) and, without its zone id and any trailing `:` or `.`,
/// must parse.
fn ipv6_at(text: &str, m: &Range<usize>) -> Option<Range<usize>> {
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    let before = text.get(..m.start).and_then(|t| t.chars().next_back());
    if before.is_some_and(word) {
        return None;
    }
    let s = text.get(m.clone())?.trim_end_matches([':', '.']);
    let after = text.get(m.start + s.len()..).and_then(|t| t.chars().next());
    if after.is_some_and(|c| c.is_alphanumeric() || c == '_') || s.len() <= 2 {
        return None;
    }
    let addr = s.split('%').next().unwrap_or(s);
    Ipv6Addr::from_str(addr).ok()?;
    Some(m.start..m.start + s.len())
}

/// Finds personal data. Defaults: every [`PiiKind`].
#[derive(Debug, Clone)]
#[must_use]
pub struct PiiDetector {
    kinds: Vec<PiiKind>,
}

impl Default for PiiDetector {
    fn default() -> Self {
        PiiDetector::new()
    }
}

impl PiiDetector {
    /// A detector for every kind. Compiles the patterns now (once per process), so the first
    /// request pays nothing; [`PiiDetector::try_new`] also reports a pattern that does not
    /// compile.
    pub fn new() -> Self {
        PiiDetector {
            kinds: PiiKind::ALL.to_vec(),
        }
        .compiled()
    }

    /// [`PiiDetector::new`], or the pattern that does not compile.
    pub fn try_new() -> Result<Self, PatternError> {
        let detector = PiiDetector::new();
        match PATTERNS.as_ref() {
            Ok(_) => Ok(detector),
            Err(e) => Err(e.clone()),
        }
    }

    /// A detector for these kinds only.
    pub fn only(kinds: impl IntoIterator<Item = PiiKind>) -> Self {
        PiiDetector {
            kinds: kinds.into_iter().collect(),
        }
        .compiled()
    }

    /// Forces the patterns (construction, not the first request, pays for compiling).
    fn compiled(self) -> Self {
        LazyLock::force(&PATTERNS);
        self
    }

    fn wants(&self, k: PiiKind) -> bool {
        self.kinds.contains(&k)
    }

    /// Every match, sorted by position, non-overlapping (checksum-validated and longer matches
    /// win over pattern-only ones that overlap them).
    pub fn detect(&self, text: &str) -> Vec<PiiMatch> {
        let Ok(scan) = PATTERNS.as_ref() else {
            return Vec::new();
        };
        let mut out: Vec<PiiMatch> = Vec::new();
        let mut push = |kind: PiiKind, range: Range<usize>, score: f32| {
            out.push(PiiMatch { kind, range, score });
        };
        // One pass finds every pattern's matches (indices as in `TABLE`); the order of the
        // pushes below is the order ties are resolved in by `finish`, so it stays as it was.
        let found = scan.find_all(text);
        let hits = |i: usize| found.get(i).map_or(&[][..], Vec::as_slice);
        let slice = |r: &Range<usize>| text.get(r.clone()).unwrap_or("");
        let has_digit = text.bytes().any(|b| b.is_ascii_digit());
        if self.wants(PiiKind::Email) && text.contains('@') {
            for m in hits(EMAIL_I) {
                push(PiiKind::Email, m.clone(), 0.9);
            }
        }
        if !has_digit {
            if self.wants(PiiKind::IpAddress) && text.contains("::") {
                for m in hits(IPV6_I) {
                    if let Some(r) = ipv6_at(text, m) {
                        push(PiiKind::IpAddress, r, 0.75);
                    }
                }
            }
            return finish(out);
        }
        // Digits inside an IBAN-shaped run (valid or not) are account numbers, not cards.
        let iban_shaped = hits(IBAN_I);
        let in_iban = |m: &Range<usize>| {
            iban_shaped
                .iter()
                .any(|r| r.start < m.end && m.start < r.end)
        };
        if self.wants(PiiKind::CreditCard) {
            for m in hits(CARD_I) {
                let overlaps_iban = |r: &Range<usize>| {
                    let (a, b) = (m.start + r.start, m.start + r.end);
                    iban_shaped.iter().any(|i| i.start < b && a < i.end)
                };
                for r in cards_in(slice(m), overlaps_iban) {
                    push(
                        PiiKind::CreditCard,
                        m.start + r.start..m.start + r.end,
                        0.95,
                    );
                }
            }
        }
        if self.wants(PiiKind::Iban) {
            for r in iban_shaped {
                if iban_valid(slice(r)) {
                    push(PiiKind::Iban, r.clone(), 0.95);
                }
            }
        }
        if self.wants(PiiKind::UsSsn)
            && let Some(re) = scan.regex(SSN_I)
        {
            for m in hits(SSN_I) {
                // The groups of the match found at `m.start` (the same match: leftmost-first
                // from its own start).
                let Some(c) = re.captures_at(text, m.start) else {
                    continue;
                };
                let (Some(all), Some(a), Some(g), Some(s)) =
                    (c.get(0), c.get(1), c.get(2), c.get(3))
                else {
                    continue;
                };
                if ssn_valid(a.as_str(), g.as_str(), s.as_str()) {
                    push(PiiKind::UsSsn, all.range(), 0.85);
                }
            }
        }
        if self.wants(PiiKind::DateOfBirth)
            && let Some(re) = scan.regex(DOB_I)
        {
            for m in hits(DOB_I) {
                if let Some(d) = re.captures_at(text, m.start).and_then(|c| c.get(1)) {
                    push(PiiKind::DateOfBirth, d.range(), 0.85);
                }
            }
        }
        if self.wants(PiiKind::Phone) {
            for m in hits(PHONE_INTL_I).iter().chain(hits(PHONE_NANP_I)) {
                if in_iban(m) {
                    continue;
                }
                // E.164 allows at most 15 digits: a longer run is a number followed by other
                // numbers, so drop trailing groups until it fits.
                let mut s = slice(m);
                while digits(s) > 15 {
                    match s.rfind([' ', '.', '-']) {
                        Some(i) => s = s.get(..i).unwrap_or(""),
                        None => break,
                    }
                }
                if (7..=15).contains(&digits(s)) {
                    push(PiiKind::Phone, m.start..m.start + s.len(), 0.75);
                }
            }
        }
        if self.wants(PiiKind::IpAddress) {
            for m in hits(IPV4_I) {
                if !embedded_in_number(text, m) && !version_context(text, m.start) {
                    push(PiiKind::IpAddress, m.clone(), 0.75);
                }
            }
            // Times like 12:30:45 and MAC addresses do not parse as IPv6.
            if text.contains(':') {
                for m in hits(IPV6_I) {
                    if let Some(r) = ipv6_at(text, m) {
                        push(PiiKind::IpAddress, r, 0.75);
                    }
                }
            }
        }
        if self.wants(PiiKind::PostalAddress) {
            for i in ADDRESS_I {
                for m in hits(i) {
                    push(PiiKind::PostalAddress, m.clone(), 0.6);
                }
            }
        }
        finish(out)
    }
}

/// Sorts by start and merges overlapping matches into one covering their union, labelled with
/// the most confident kind. Dropping the weaker of two overlapping matches would leave its
/// non-overlapping part in the text after redaction (a phone number running into an SSN).
fn finish(mut out: Vec<PiiMatch>) -> Vec<PiiMatch> {
    out.sort_by_key(|m| m.range.start);
    let mut kept: Vec<PiiMatch> = Vec::with_capacity(out.len());
    for m in out {
        match kept.last_mut() {
            Some(last) if m.range.start < last.range.end => {
                last.range.end = last.range.end.max(m.range.end);
                if m.score > last.score {
                    last.kind = m.kind;
                    last.score = m.score;
                }
            }
            _ => kept.push(m),
        }
    }
    kept
}

#[derive(Default)]
struct VaultInner {
    by_value: HashMap<(&'static str, String), String>,
    by_placeholder: HashMap<String, String>,
    counters: HashMap<&'static str, usize>,
}

/// Keeps the originals behind numbered placeholders (`[EMAIL_1]`), so redaction can be undone
/// in the model's answer. The same value always gets the same placeholder within one vault.
/// Cheap to clone (shared). `Debug` shows only the number of entries, never a value.
///
/// Use one vault per conversation; it grows with every distinct value it sees.
#[derive(Clone, Default)]
pub struct Vault {
    inner: Arc<Mutex<VaultInner>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("entries", &self.len())
            .finish()
    }
}

static PLACEHOLDER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[[A-Z][A-Z_]*_\d+\]").ok());

impl Vault {
    /// An empty vault.
    pub fn new() -> Self {
        Vault::default()
    }

    fn lock(&self) -> MutexGuard<'_, VaultInner> {
        // A poisoned lock only means another thread panicked mid-insert; the maps stay valid.
        llmkit_core::sync::lock(&self.inner)
    }

    /// The placeholder for `value` of this tag, allocating `[TAG_n]` on first sight.
    pub fn placeholder(&self, tag: &'static str, value: &str) -> String {
        let mut g = self.lock();
        if let Some(p) = g.by_value.get(&(tag, value.to_owned())) {
            return p.clone();
        }
        let n = {
            let c = g.counters.entry(tag).or_insert(0);
            *c += 1;
            *c
        };
        let p = format!("[{tag}_{n}]");
        g.by_value.insert((tag, value.to_owned()), p.clone());
        g.by_placeholder.insert(p.clone(), value.to_owned());
        p
    }

    /// The original behind a placeholder.
    pub fn reveal(&self, placeholder: &str) -> Option<String> {
        self.lock().by_placeholder.get(placeholder).cloned()
    }

    /// Replaces every known placeholder in `text` with its original; unknown ones stay.
    pub fn restore(&self, text: &str) -> String {
        let Some(re) = PLACEHOLDER.as_ref() else {
            return text.to_owned();
        };
        let g = self.lock();
        re.replace_all(text, |c: &regex::Captures<'_>| {
            let p = c.get(0).map(|m| m.as_str()).unwrap_or("");
            g.by_placeholder
                .get(p)
                .cloned()
                .unwrap_or_else(|| p.to_owned())
        })
        .into_owned()
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        self.lock().by_placeholder.len()
    }

    /// Whether the vault is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Redacts every kind of PII in `text`: `[EMAIL]`-style tags, or numbered placeholders kept in
/// `vault` when one is given.
pub fn redact(text: &str, vault: Option<&Vault>) -> String {
    let findings = findings(&PiiDetector::new(), text, vault);
    let edits: Vec<_> = findings.iter().map(Finding::redaction).collect();
    apply_edits(text, &edits)
}

fn findings(detector: &PiiDetector, text: &str, vault: Option<&Vault>) -> Vec<Finding> {
    detector
        .detect(text)
        .into_iter()
        .map(|m| {
            let replacement = match vault {
                Some(v) => v.placeholder(m.kind.tag(), text.get(m.range.clone()).unwrap_or("")),
                None => format!("[{}]", m.kind.tag()),
            };
            Finding::new(m.kind.as_str(), m.range, m.score).with_replacement(replacement)
        })
        .collect()
}

/// The PII guard. Defaults: every kind, action [`Action::Redact`], threshold 0.5, no vault
/// (tags without numbers).
#[derive(Debug, Clone)]
#[must_use]
pub struct PiiGuard {
    detector: PiiDetector,
    action: Action,
    threshold: f32,
    vault: Option<Vault>,
}

impl Default for PiiGuard {
    fn default() -> Self {
        PiiGuard::new()
    }
}

impl PiiGuard {
    /// The defaults.
    pub fn new() -> Self {
        PiiGuard {
            detector: PiiDetector::new(),
            action: Action::Redact,
            threshold: 0.5,
            vault: None,
        }
    }

    /// Uses this detector (e.g. [`PiiDetector::only`]).
    pub fn detector(mut self, detector: PiiDetector) -> Self {
        self.detector = detector;
        self
    }

    /// Sets the action.
    pub fn action(mut self, action: Action) -> Self {
        self.action = action;
        self
    }

    /// Sets the minimum match confidence that counts (default 0.5; 0.7 skips pattern-only
    /// postal addresses).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Redacts into numbered placeholders kept in `vault`.
    pub fn vault(mut self, vault: Vault) -> Self {
        self.vault = Some(vault);
        self
    }
}

#[async_trait]
impl Guard for PiiGuard {
    fn name(&self) -> &str {
        "pii"
    }

    async fn check(&self, text: &str, _ctx: &GuardContext<'_>) -> Decision {
        // Only allocate vault entries when they will be used.
        let vault = if self.action == Action::Redact {
            self.vault.as_ref()
        } else {
            None
        };
        Decision::from_findings(
            "pii",
            self.action,
            self.threshold,
            findings(&self.detector, text, vault),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<PiiKind> {
        PiiDetector::new()
            .detect(text)
            .into_iter()
            .map(|m| m.kind)
            .collect()
    }

    #[test]
    fn positives() {
        use PiiKind::*;
        let cases: &[(&str, PiiKind)] = &[
            ("write to john.smith+tag@mail.example.co.uk", Email),
            ("call +1 415 555 2671 today", Phone),
            ("ruf an: +49 30 901820", Phone),
            ("0044 20 7946 0958", Phone),
            ("(415) 555-2671", Phone),
            ("card 4111 1111 1111 1111 exp", CreditCard),
            ("5500-0000-0000-0004", CreditCard),
            ("IBAN DE89 3704 0044 0532 0130 00", Iban),
            ("ssn 123-45-6789", UsSsn),
            ("from 192.168.10.4 port", IpAddress),
            ("ip 2001:db8::8a2e:370:7334", IpAddress),
            ("DOB: 04/07/1985", DateOfBirth),
            ("born on March 3, 1990", DateOfBirth),
            ("geboren am 12.03.1978", DateOfBirth),
            ("lives at 1600 Pennsylvania Avenue in DC", PostalAddress),
            ("Hauptstraße 5, Berlin", PostalAddress),
            ("London SW1A 1AA", PostalAddress),
        ];
        for (text, kind) in cases {
            assert!(kinds(text).contains(kind), "{text}: {:?}", kinds(text));
        }
    }

    #[test]
    fn table_compiles() {
        assert_eq!(PATTERNS.as_ref().map(PatternScan::len), Ok(TABLE.len()));
    }

    #[test]
    fn near_misses() {
        for text in [
            "order 4111 1111 1111 1112 shipped",
            "IBAN DE89 3704 0044 0532 0130 01",
            "ssn 000-12-3456",
            "version 1.2.3.4.5",
            "meet at 12:30:45",
            "released in 2019, sold 1,000,000 copies",
            "email me at name at example dot com",
            "ticket #123456",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
    }

    /// Every IPv6 text form is redacted whole (issue 18: a compressed address kept its last
    /// groups in clear, an IPv4 tail and a zone id were cut off).
    #[test]
    fn ipv6_every_form_fully_redacted() {
        for addr in [
            "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
            "2001:db8:85a3::8a2e:370:7334",
            "2001:db8::8a2e:370:7334",
            "2001:db8::1",
            "2001:db8:0:0:1::1",
            "::ffff:192.0.2.1",
            "::ffff:c000:201",
            "64:ff9b::192.0.2.33",
            "0:0:0:0:0:ffff:192.0.2.1",
            "fe80::1%eth0",
            "fe80::a00:27ff:fe4e:66a1%enp0s3",
            "FE80::1FF:FE23:4567:890A",
            "dead::beef",
            "::1",
        ] {
            for text in [
                format!("from {addr} port 22"),
                format!("[{addr}]:443"),
                format!("ip={addr}."),
            ] {
                let out = redact(&text, None);
                let expected = text.replace(addr, "[IP]");
                assert_eq!(out, expected, "{text}");
            }
        }
    }

    /// Dotted version numbers and code paths are not addresses; real ones still are.
    #[test]
    fn versions_and_paths_are_not_addresses() {
        for text in [
            "version 10.2.3.4",
            "Version: 10.2.3.4 is out",
            "upgrade to v1.2.3.4 today",
            "firmware 2.0.1.7 fixes it",
            "build 4.1.0.12",
            "use std::collections::HashMap;",
            "call Foo::bar() then Vec::new()",
            "MAC 00:1a:2b:3c:4d:5e",
            "at 12:30:45 sharp",
        ] {
            assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
        }
        for text in ["server 10.2.3.4 is down", "from 192.168.10.4, port 22"] {
            assert_eq!(kinds(text), vec![PiiKind::IpAddress], "{text}");
        }
    }

    #[test]
    fn vault_round_trip_and_numbering() {
        let v = Vault::new();
        let text = "a@x.io, b@y.io, a@x.io";
        let r = redact(text, Some(&v));
        assert_eq!(r, "[EMAIL_1], [EMAIL_2], [EMAIL_1]");
        assert_eq!(v.restore(&r), text);
        assert_eq!(v.reveal("[EMAIL_2]").as_deref(), Some("b@y.io"));
        assert_eq!(v.restore("[EMAIL_9] stays"), "[EMAIL_9] stays");
        assert!(!format!("{v:?}").contains("x.io"));
        assert_eq!(redact(text, None), "[EMAIL], [EMAIL], [EMAIL]");
    }
}
