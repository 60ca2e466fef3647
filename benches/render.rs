//! Rendering benchmarks: compiling the sample issue once (the per-issue cost) and personalising it for one
//! recipient (the per-delivery cost). Run with `cargo bench --bench render`; add `-- --quick` for a fast look.
//! `TIDINGS_BENCH_TEMPLATES=DIR` compiles with the templates of DIR instead of the built-in ones, to compare
//! two versions of the templates with one build.
//!
//! Targets: `compile_issue` at most 1 ms, `personalise` at most 2 µs. `html()` and `write_html` show what
//! building the message body costs on top, which is dominated by copying about 20 KB.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tidings::render::{Branding, Recipient, Templates, compile_issue, parse_issue};

const SAMPLE: &str = include_str!("../emails/issues/122.md");

fn branding() -> Branding {
    Branding {
        list_name: "So, what's up in China?".to_owned(),
        organization: "Example Insights Ltd".to_owned(),
        postal_address: "1 Example Road, 200000 Shanghai, China".to_owned(),
        sender_email: "digest@example.com".to_owned(),
    }
}

fn recipient() -> Recipient<'static> {
    Recipient {
        name: "Ana <Lopez> & Co",
        unsubscribe_url: "https://tidings.example/u/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ",
        rate_urls: [
            "https://tidings.example/rate/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ?stars=1",
            "https://tidings.example/rate/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ?stars=2",
            "https://tidings.example/rate/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ?stars=3",
            "https://tidings.example/rate/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ?stars=4",
            "https://tidings.example/rate/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ?stars=5",
        ],
        pixel_url: Some("https://tidings.example/o/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ.gif"),
        view_url: "https://tidings.example/v/AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGQ",
    }
}

fn render(c: &mut Criterion) {
    let templates = match std::env::var_os("TIDINGS_BENCH_TEMPLATES") {
        Some(dir) => Templates::from_dir(std::path::Path::new(&dir)).expect("the templates load"),
        None => Templates::embedded(),
    };
    let branding = branding();
    let source = parse_issue("emails/issues/122.md", SAMPLE).expect("the sample parses");
    let issue = compile_issue(&templates, &source, &branding).expect("the sample compiles");
    let recipient = recipient();

    c.bench_function("templates_embedded", |b| b.iter(Templates::embedded));
    c.bench_function("parse_issue", |b| b.iter(|| parse_issue("122.md", black_box(SAMPLE))));
    c.bench_function("compile_issue", |b| {
        b.iter(|| compile_issue(&templates, black_box(&source), &branding).expect("compiles"))
    });
    c.bench_function("personalise", |b| b.iter(|| black_box(&issue).personalise(black_box(&recipient))));
    c.bench_function("personalise_html", |b| b.iter(|| black_box(&issue).personalise(&recipient).html()));
    c.bench_function("personalise_text", |b| b.iter(|| black_box(&issue).personalise(&recipient).text()));
    let mut buffer = Vec::with_capacity(64 * 1024);
    c.bench_function("personalise_write_html", |b| {
        b.iter(|| {
            buffer.clear();
            issue.personalise(&recipient).write_html(&mut buffer).expect("write to a Vec");
            buffer.len()
        })
    });
}

criterion_group!(benches, render);
criterion_main!(benches);
