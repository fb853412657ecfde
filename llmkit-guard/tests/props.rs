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
use llmkit_guard::output::schema::extract_json;
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

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-zA-Z0-9 .,:@+()-]{0,40}",
        prop::sample::select(VALUES).prop_map(str::to_owned),
    ]
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
        let _ = extract_json(&text);
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
}
