//! Report reading benchmark: parsing and classifying every message of the corpus in `tests/reports/` (DSNs,
//! ARF complaints, plain bounces, auto-replies, malformed ones) once per iteration. Criterion prints the
//! throughput in reports per second (`elem/s`). Run with `cargo bench --bench reports`.
//!
//! Target: at least 5,000 reports/s on the 2-core development machine.

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

fn reports(c: &mut Criterion) {
    let corpus = corpus();
    let mut group = c.benchmark_group("reports");
    group.throughput(Throughput::Elements(corpus.len() as u64));
    group.bench_function("read_report_corpus", |b| {
        b.iter(|| {
            let mut recipients = 0;
            for raw in &corpus {
                if let Ok(report) = read_report(black_box(raw)) {
                    recipients += report.recipients.len();
                }
            }
            recipients
        })
    });
    group.finish();
}

criterion_group!(benches, reports);
criterion_main!(benches);
