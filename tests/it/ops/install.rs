//! What `cargo install --path .` gives: a binary that works from any folder, with no clone beside it. The test
//! runs the built binary in an empty temporary folder (no `emails/`, no `config/`): `demo`, then each command
//! it prints as printed, `issue add` of a file written by hand, `stats` and `serve`.

use std::io::BufReader;

use super::{KEYS, http_get, port_in, read_until, spawn_tidings, terminate};
use crate::helpers::tidings_with_env;

const HAND_WRITTEN: &str = "+++
number = 123
subject = \"Issue 123, written by hand\"
preheader = \"One story\"
period = \"5 – 11 April 2022\"
+++

One story this week.

## A headline
A paragraph about it.

[The source](https://example.com/story)
";

#[test]
fn the_binary_runs_the_demo_a_hand_written_issue_serve_and_stats_from_an_empty_folder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path();
    assert!(!folder.join("emails").exists() && !folder.join("config").exists());

    // The demo: sample files written, the issue sent into ./outbox, the links served until SIGTERM.
    let mut demo = spawn_tidings(&["demo"], &[("TIDINGS_HTTP__BIND", "127.0.0.1:0")], folder);
    let mut stdout = BufReader::new(demo.stdout.take().expect("stdout"));
    let printed = read_until(&mut stdout, "Ctrl-C stops the demo.").concat();
    assert!(printed.contains("50 new subscribers"), "{printed}");
    assert!(printed.contains("4. 50 messages sent"), "{printed}");
    let written = std::fs::read_dir(folder.join("outbox")).expect("the outbox").count();
    assert_eq!(written, 50);
    let serving = printed.lines().find(|l| l.contains("serves http://127.0.0.1:")).expect("the address line");
    let (code, archive) = http_get(port_in(serving), "/archive");
    assert_eq!(code, 200);
    assert!(archive.contains("Issue 122"), "{archive}");
    terminate(demo);

    // Every command the demo prints works as printed (the binary is not on PATH here, so it prints its path).
    let line = printed.lines().find(|l| l.contains("what happened")).expect("the stats hint");
    let hint = line.split_once("): ").expect("a command").1;
    for command in hint.split("; ") {
        let words: Vec<&str> = command.split_whitespace().collect();
        let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_tidings")).expect("the binary");
        assert!(words[0] == binary.display().to_string() || words[0] == "tidings", "{line}");
        let output = tidings_with_env(&words[1..], &[], folder);
        assert_eq!(output.code, Some(0), "`{command}`: {}", output.stderr);
    }
    assert!(folder.join("report.html").exists());

    // An issue file written by hand, then stats.
    std::fs::write(folder.join("123.md"), HAND_WRITTEN).expect("write the issue");
    let added = tidings_with_env(&["issue", "add", "123.md"], &[], folder);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let listed = tidings_with_env(&["issue", "list", "--json"], &[], folder);
    assert!(listed.stdout.contains("Issue 123, written by hand"), "{}", listed.stdout);
    let stats = tidings_with_env(&["stats"], &[], folder);
    assert_eq!(stats.code, Some(0), "{}", stats.stderr);
    assert!(stats.stdout.contains("122"), "{}", stats.stdout);

    // serve: ready and answering, then a clean stop.
    let env = [("TIDINGS_HTTP__BIND", "127.0.0.1:0"), ("TIDINGS_LINKS__SIGNING_KEYS", KEYS)];
    let mut serve = spawn_tidings(&["serve"], &env, folder);
    let mut stdout = BufReader::new(serve.stdout.take().expect("stdout"));
    let line = read_until(&mut stdout, "tidings serves").concat();
    let (code, body) = http_get(port_in(&line), "/readyz");
    assert_eq!(code, 200, "{body}");
    terminate(serve);
}
