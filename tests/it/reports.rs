//! Bounce and complaint reports: every message of the corpus in `tests/reports/` reads as its manifest
//! (`expected.toml`) says, and no truncated or damaged variant of any of them makes the reader panic.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tidings::reports::{BounceKind, ReportError, ReportForm, read_report, scrub_addresses};

#[derive(Deserialize)]
struct Manifest {
    report: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    file: String,
    form: String,
    error: Option<String>,
    #[serde(default)]
    kinds: Vec<String>,
    statuses: Option<Vec<String>>,
    #[serde(default)]
    recipients: Vec<String>,
    #[serde(default)]
    trace_refs: Vec<String>,
    feedback_type: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reports")
}

fn manifest() -> Manifest {
    let text = std::fs::read_to_string(corpus_dir().join("expected.toml")).expect("the manifest is readable");
    toml::from_str(&text).expect("the manifest is valid TOML")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    manifest()
        .report
        .into_iter()
        .map(|e| {
            let bytes = std::fs::read(corpus_dir().join(&e.file)).expect("a corpus file is readable");
            (e.file, bytes)
        })
        .collect()
}

/// What a message reads as, against what the manifest says; `None` when they agree.
fn mismatch(expected: &Expected, raw: &[u8]) -> Option<String> {
    let file = &expected.file;
    let report = match (read_report(raw), expected.error.as_deref()) {
        (Err(ReportError::Empty), Some("empty")) | (Err(ReportError::NoHeaders), Some("no-headers")) => return None,
        (Err(ReportError::NoMessageHeaders), Some("no-headers")) => return None,
        (Err(error), _) => return Some(format!("{file}: {error}")),
        (Ok(report), Some(error)) => return Some(format!("{file}: read as {:?}, expected error {error}", report.form)),
        (Ok(report), None) => report,
    };
    let mut problems = Vec::new();
    let form = ReportForm::parse(&expected.form).expect("the manifest names a known form");
    if report.form != form {
        problems.push(format!("form {:?}, expected {form:?}", report.form));
    }
    let kinds: Vec<&str> = report.recipients.iter().map(|r| r.kind.as_str()).collect();
    if kinds != expected.kinds {
        problems.push(format!("kinds {kinds:?}, expected {:?}", expected.kinds));
    }
    if let Some(statuses) = &expected.statuses {
        let found: Vec<&str> = report.recipients.iter().map(|r| r.status.as_deref().unwrap_or("")).collect();
        if &found != statuses {
            problems.push(format!("statuses {found:?}, expected {statuses:?}"));
        }
    }
    let recipients: Vec<&str> = report.recipients.iter().map(|r| r.recipient.as_deref().unwrap_or("")).collect();
    if recipients != expected.recipients {
        problems.push(format!("recipients {recipients:?}, expected {:?}", expected.recipients));
    }
    if report.trace_refs != expected.trace_refs {
        problems.push(format!("trace refs {:?}, expected {:?}", report.trace_refs, expected.trace_refs));
    }
    if report.feedback_type != expected.feedback_type {
        problems.push(format!("feedback type {:?}, expected {:?}", report.feedback_type, expected.feedback_type));
    }
    let reasons: Vec<&str> = report.recipients.iter().map(|r| r.reason.as_str()).collect();
    (!problems.is_empty()).then(|| format!("{file}: {} (reasons: {reasons:?})", problems.join("; ")))
}

#[test]
fn every_message_of_the_corpus_reads_as_its_manifest_says() {
    let manifest = manifest();
    assert!(manifest.report.len() >= 40, "the corpus holds at least 40 messages");
    let failures: Vec<String> = manifest
        .report
        .iter()
        .filter_map(|expected| {
            let raw = std::fs::read(corpus_dir().join(&expected.file)).expect("a corpus file is readable");
            mismatch(expected, &raw)
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} messages differ:\n{}",
        failures.len(),
        manifest.report.len(),
        failures.join("\n")
    );
}

#[test]
fn every_message_in_the_corpus_directory_is_in_the_manifest() {
    let listed: BTreeSet<String> = manifest().report.into_iter().map(|e| e.file).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(corpus_dir())
        .expect("the corpus directory is readable")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".eml"))
        .collect();
    assert_eq!(listed, on_disk);
}

#[test]
fn the_corpus_covers_every_form_and_every_kind_that_a_report_can_give() {
    let mut forms = BTreeSet::new();
    let mut kinds = BTreeSet::new();
    for (_, raw) in corpus() {
        if let Ok(report) = read_report(&raw) {
            forms.insert(report.form.as_str());
            kinds.extend(report.recipients.iter().map(|r| r.kind.as_str()));
        }
    }
    assert_eq!(forms.len(), 5, "{forms:?}");
    let missing: Vec<&str> =
        BounceKind::ALL.iter().map(|k| k.as_str()).filter(|k| !kinds.contains(k) && *k != "unclassified").collect();
    assert!(missing.is_empty(), "no corpus message gives {missing:?}");
}

/// A cheap deterministic generator (xorshift), so the damaged variants are the same on every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Every result is a report or an error whose message names no address, and nothing panicked inside (which
/// `read_report` would turn into `Unreadable`).
fn read_safely(raw: &[u8]) -> bool {
    match read_report(raw) {
        Ok(report) => !format!("{report:?}").contains('@'),
        Err(ReportError::Unreadable) => false,
        Err(error) => !error.to_string().contains('@'),
    }
}

#[test]
fn no_truncated_prefix_of_any_corpus_message_makes_the_reader_panic() {
    let mut read = 0;
    for (file, raw) in corpus() {
        let step = (raw.len() / 97).max(1);
        for end in (0..raw.len()).step_by(step) {
            assert!(read_safely(&raw[..end]), "{file} cut at {end}");
            read += 1;
        }
    }
    assert!(read > 4000, "{read} prefixes read");
}

#[test]
fn no_damaged_variant_of_any_corpus_message_makes_the_reader_panic() {
    let mut random = Bytes(0x2545_f491_4f6c_dd1d);
    let specials = [b'\n', b'\r', b'-', b':', b';', b'"', b'=', b'@', 0, 0xff, b'<', b'>'];
    let mut read = 0;
    for (file, raw) in corpus() {
        if raw.is_empty() {
            continue;
        }
        for round in 0..60 {
            let mut damaged = raw.clone();
            for _ in 0..1 + round % 8 {
                let at = (random.next() % damaged.len() as u64) as usize;
                damaged[at] = match random.next() % 3 {
                    0 => damaged[at] ^ (1 << (random.next() % 8)),
                    1 => specials[(random.next() % specials.len() as u64) as usize],
                    _ => b'\n',
                };
            }
            if round % 5 == 0 {
                let at = (random.next() % damaged.len() as u64) as usize;
                damaged.truncate(at);
            }
            assert!(read_safely(&damaged), "{file}, damaged in round {round}");
            read += 1;
        }
    }
    assert!(read > 3000, "{read} variants read");
}

#[test]
fn a_message_nested_ten_thousand_levels_deep_is_read_without_overflowing_the_stack() {
    let mut raw = String::from("From: MAILER-DAEMON@mail.example.net\nSubject: Undelivered Mail\n");
    raw.push_str("Content-Type: message/rfc822\n\n");
    for level in 0..10_000 {
        raw.push_str(&format!("Subject: level {level}\nContent-Type: message/rfc822\n\n"));
    }
    raw.push_str("Subject: bottom\n\nbody\n");
    let report = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || read_report(raw.as_bytes()).map(|r| r.form))
        .expect("a thread starts")
        .join()
        .expect("the reader does not panic or overflow");
    assert!(report.is_ok());
}

#[test]
fn a_large_message_is_read_and_its_report_found() {
    let mut raw = std::fs::read(corpus_dir().join("qmail.eml")).expect("readable");
    let filler = "All work and no play makes a very long newsletter body line. ".repeat(16);
    while raw.len() < 8 * 1024 * 1024 {
        raw.extend_from_slice(filler.as_bytes());
        raw.push(b'\n');
    }
    let report = read_report(&raw).expect("a large message is still a message");
    assert_eq!(report.form, ReportForm::PlainBounce);
    assert_eq!(report.recipients[0].kind, BounceKind::Hard);
}

#[test]
fn a_report_shows_no_address_in_its_debug_output() {
    for (file, raw) in corpus() {
        if let Ok(report) = read_report(&raw) {
            assert!(!format!("{report:?}").contains('@'), "{file}");
        }
    }
}

#[test]
fn a_stored_report_can_be_scrubbed_down_to_the_one_subscriber_it_is_about() {
    let raw = std::fs::read(corpus_dir().join("postfix-several-recipients.eml")).expect("readable");
    let text = String::from_utf8_lossy(&raw);
    let scrubbed = scrub_addresses(&text, |address| address.eq_ignore_ascii_case("bob@example.com"));
    assert!(scrubbed.contains("bob@example.com"));
    for other in ["carol@example.org", "dave@example.net", "digest@news.example.com"] {
        assert!(!scrubbed.contains(other), "{other} was kept");
    }
    let erased = scrub_addresses(&text, |_| false);
    assert!(!erased.contains("bob@example.com"));
    assert!(erased.contains("[address removed]"));
}
