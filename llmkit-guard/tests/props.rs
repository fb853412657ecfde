#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests: no detector, guard, parser or marker panics on arbitrary Unicode, and
//! redaction never leaves a detected value in its output.

use llmkit_guard::input::charset::CharPolicy;
use llmkit_guard::input::checksum::{iban_valid, luhn_valid};
use llmkit_guard::input::pii::{PiiDetector, PiiGuard, Vault, redact};
use llmkit_guard::input::secrets::{SecretDetector, SecretGuard};
use llmkit_guard::input::size::SizeLimit;
use llmkit_guard::output::urls::{UrlGuard, host_of};
use llmkit_guard::{
    Action, Guard, GuardContext, InjectionGuard, InjectionScorer, Provenance, Spotlight,
    UntrustedDoc, Verdict, apply_edits,
};
use proptest::prelude::*;

const VALUES: &[&str] = &[
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "123-45-6789",
    "192.168.1.20",
    "2001:db8::8a2e:370:7334",
    "AKIAIOSFODNN7EXAMPLE",
    "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
];

/// An IPv6 address in one of its text forms: compressed (RFC 5952), full, full without
/// leading zeros, IPv4-mapped, or with a zone id.
fn ipv6_text() -> impl Strategy<Value = String> {
    let groups = any::<[u16; 8]>().prop_filter("`::` alone is no address", |g| g != &[0; 8]);
    (groups, any::<[u8; 4]>(), 0..5u8).prop_map(|(g, v4, form)| {
        let addr = std::net::Ipv6Addr::from(g);
        match form {
            0 => addr.to_string(),
            1 => g
                .iter()
                .map(|x| format!("{x:04x}"))
                .collect::<Vec<_>>()
                .join(":"),
            2 => g
                .iter()
                .map(|x| format!("{x:x}"))
                .collect::<Vec<_>>()
                .join(":"),
            3 => std::net::Ipv4Addr::from(v4).to_ipv6_mapped().to_string(),
            _ => format!("{addr}%eth{}", g[0] % 10),
        }
    })
}

/// A personal value of any detected kind, in the shape the detectors look for.
fn pii_value() -> impl Strategy<Value = String> {
    prop_oneof![
        ipv6_text(),
        any::<[u8; 4]>()
            .prop_filter("not a version-like 0.x", |o| o[0] > 0)
            .prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
        prop::sample::select(&VALUES[..8]).prop_map(str::to_owned),
    ]
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 .,:@+()-]{0,40}",
        prop::sample::select(VALUES).prop_map(str::to_owned),
        ipv6_text(),
    ]
}

/// Prose words that are neither personal data nor version words.
fn prose() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(
            &[
                "from", "the", "host", "at", "and", "port", "ok", "via", "is",
            ][..],
        ),
        0..4,
    )
    .prop_map(|w| w.join(" "))
}

fn mixed_text() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 0..8).prop_map(|v| v.join(" "))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nothing_panics_on_arbitrary_unicode(text in mixed_text()) {
        let _ = PiiDetector::new().detect(&text);
        let _ = SecretDetector::new().detect(&text);
        let report = InjectionScorer::new().score(&text);
        for s in &report.signals {
            prop_assert!(text.get(s.range.clone()).is_some(), "signal range off a char boundary");
        }
        let _ = CharPolicy::new().findings(&text);
        let _ = luhn_valid(&text);
        let _ = iban_valid(&text);
        let _ = host_of(&text);
        let _ = UrlGuard::new(["example.com"]).findings(&text);
        for mark in [Spotlight::delimit(), Spotlight::datamark(), Spotlight::encode()] {
            let _ = mark.mark(&UntrustedDoc::retrieved("d", text.clone()));
        }
        rt().block_on(async {
            let ctx = GuardContext::input(Provenance::Retrieved);
            let guards: Vec<Box<dyn Guard>> = vec![
                Box::new(InjectionGuard::new().action(Action::Redact)),
                Box::new(CharPolicy::new().action(Action::Redact)),
                Box::new(SizeLimit::new().max_chars(7).action(Action::Redact)),
                Box::new(SecretGuard::new()),
                Box::new(PiiGuard::new()),
            ];
            for g in guards {
                let d = g.check(&text, &ctx).await;
                if let Verdict::Transform { edits, .. } = &d.verdict {
                    for e in edits {
                        assert!(text.get(e.range.clone()).is_some(), "{} edit off a boundary", g.name());
                    }
                    let _ = apply_edits(&text, edits);
                }
            }
        });
    }

    #[test]
    fn redaction_leaves_no_detected_value(text in mixed_text()) {
        let detected: Vec<String> = PiiDetector::new()
            .detect(&text)
            .iter()
            .map(|m| text[m.range.clone()].to_owned())
            .collect();
        let out = redact(&text, None);
        prop_assert!(PiiDetector::new().detect(&out).is_empty(), "{out:?} still has pii");
        for v in &detected {
            // A value may legitimately survive as part of a longer undetected run only if it
            // was also present there in the input; values we inserted are delimited by spaces.
            if VALUES.contains(&v.as_str()) {
                prop_assert!(!out.contains(v.as_str()), "{v} left in {out:?}");
            }
        }
        let secrets = rt().block_on(async {
            let ctx = GuardContext::input(Provenance::User);
            let d = SecretGuard::new().check(&text, &ctx).await;
            match &d.verdict {
                Verdict::Transform { edits, .. } => apply_edits(&text, edits),
                _ => text.clone(),
            }
        });
        prop_assert!(SecretDetector::new().detect(&secrets).iter().all(|m| m.kind == "high_entropy"),
            "{secrets:?} still has a known secret");
    }

    #[test]
    fn vault_round_trip_restores_the_original(text in mixed_text()) {
        // Placeholder-shaped text in the input would be restored too; skip such inputs.
        prop_assume!(!text.contains('['));
        let vault = Vault::new();
        let out = redact(&text, Some(&vault));
        prop_assert_eq!(vault.restore(&out), text);
    }

    /// A value of every PII kind, between prose, is detected as one span covering all of it,
    /// and redaction replaces exactly that span (issue 18: a compressed IPv6 address kept its
    /// last groups in clear).
    #[test]
    fn a_detected_value_is_redacted_whole(pre in prose(), value in pii_value(), post in prose()) {
        let text = format!("{pre} {value} {post}");
        let start = pre.len() + 1;
        let found = PiiDetector::new().detect(&text);
        let span = found
            .iter()
            .find(|m| m.range.start <= start && start + value.len() <= m.range.end);
        prop_assert!(span.is_some(), "{value} not covered in {text:?}: {found:?}");
        let out = redact(&text, None);
        prop_assert!(!out.contains(&value), "{value} left in {out:?}");
        let tag = span.map(|m| m.kind.tag()).unwrap_or("");
        prop_assert_eq!(out, format!("{pre} [{tag}] {post}"));
    }

    /// For every detector (each PII kind and every secret shape): no byte of a detected span
    /// survives redaction, and no byte outside the spans is changed.
    #[test]
    fn no_byte_of_a_detected_span_survives(text in mixed_text()) {
        let found = PiiDetector::new().detect(&text);
        let mut expected = String::new();
        let mut at = 0;
        for m in &found {
            expected.push_str(&text[at..m.range.start]);
            expected.push_str(&format!("[{}]", m.kind.tag()));
            at = m.range.end;
        }
        expected.push_str(&text[at..]);
        prop_assert_eq!(redact(&text, None), expected);

        let secrets = SecretDetector::new().detect(&text);
        let edits = rt().block_on(async {
            let ctx = GuardContext::input(Provenance::User);
            match SecretGuard::new().check(&text, &ctx).await.verdict {
                Verdict::Transform { edits, .. } => edits,
                _ => Vec::new(),
            }
        });
        for m in &secrets {
            prop_assert!(
                edits.iter().any(|e| e.range.start <= m.range.start && m.range.end <= e.range.end),
                "secret {:?} not covered by {edits:?}", m.range
            );
        }
    }
}
