//! Report reading benchmark: parsing and classifying every message of the corpus in `tests/reports/` (DSNs,
//! ARF complaints, plain bounces, auto-replies, malformed ones) once per iteration. Criterion prints the
//! throughput in reports per second (`elem/s`). Run with `cargo bench --bench reports`.
//!
//! Target: at least 5,000 reports/s on the 2-core development machine. `read_report_typical` leaves out the one
//! message with a 200 KB header, which `read_report_huge` measures alone.
//!
//! Measured 2026-11-30 on the 2-core machine under a load average of about 24 (six agents building), with
//! tidings and mail-parser at opt-level 3 over the dev profile's dependencies: typical 13,500 reports/s
//! (74 µs each), whole corpus of 62 7,400/s, the 200 KB header 1.6 ms.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tidings::reports::read_report;

fn corpus() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reports");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the corpus directory is readable")
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    files.sort();
    files.iter().map(|path| std::fs::read(path).expect("a corpus file is readable")).collect()
}

/// Reads every message of `messages` once; the number of recipient outcomes, so nothing is optimised away.
fn read_all(messages: &[Vec<u8>]) -> usize {
    messages.iter().filter_map(|raw| read_report(black_box(raw)).ok()).map(|report| report.recipients.len()).sum()
}

fn reports(c: &mut Criterion) {
    let corpus = corpus();
    // Real reports are a few KB; the corpus also holds one message with a 200 KB header, measured on its own.
    let (huge, typical): (Vec<Vec<u8>>, Vec<Vec<u8>>) = corpus.iter().cloned().partition(|raw| raw.len() > 64 * 1024);
    let mut group = c.benchmark_group("reports");
    for (name, messages) in
        [("read_report_corpus", &corpus), ("read_report_typical", &typical), ("read_report_huge", &huge)]
    {
        group.throughput(Throughput::Elements(messages.len() as u64));
        group.bench_function(name, |b| b.iter(|| read_all(messages)));
    }
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
