//! What the binary prints for people, found from outside: a closed standard output ends a command quietly, an
//! unknown command that means `serve` suggests it, and a duration in days says which units are accepted.

use std::process::{Command, Stdio};

use crate::helpers::{TestDatabase, tidings_with_env};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");

#[tokio::test]
async fn a_reader_that_closed_standard_output_ends_the_command_quietly_with_status_0() {
    let db = TestDatabase::sqlite().await;
    let env = [("TIDINGS_LINKS__SIGNING_KEYS", KEYS)];
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &env).code, Some(0));
    // A pipe whose reading end is already closed, as after `| head -n 1` has read its line.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["issue", "preview", "122", "--out", "prev"])
        .current_dir(db.dir.path())
        .env("TIDINGS_DATABASE__URL", &db.url)
        .env("TIDINGS_LINKS__SIGNING_KEYS", KEYS)
        .env("TIDINGS_LOG__LEVEL", "warn")
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run tidings");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("Broken pipe") && stderr.trim().is_empty(), "{stderr}");
    assert!(db.dir.path().join("prev/122.html").exists(), "the command did its work");
}

#[test]
fn start_suggests_serve() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let run = tidings_with_env(&["start"], &[], dir.path());
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("unrecognized subcommand 'start'"), "{}", run.stderr);
    assert!(run.stderr.contains("'serve'") && !run.stderr.contains("'stats'"), "{}", run.stderr);
}

#[test]
fn a_duration_in_days_says_which_units_are_accepted() {
    let dir = tempfile::tempdir().expect("temporary folder");
    std::fs::write(dir.path().join("bad.toml"), "[delivery]\nmax_age = \"2d\"\n").expect("write config");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let run = tidings_with_env(&["--config", "bad.toml", "migrate"], &[("TIDINGS_DATABASE__URL", &url)], dir.path());
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stderr.trim_end(),
        "tidings: configuration error: config file bad.toml (from --config): delivery.max_age: `2d` is not a \
         duration: write a number and a unit from milliseconds to hours, like \"500ms\", \"30s\", \"15m\", \"2h\" \
         or \"1h 30m\" (days and weeks are not accepted: write \"48h\")"
    );
}

#[test]
fn completions_into_a_closed_pipe_end_quietly_too() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args(["completions", "bash"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .expect("run tidings");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
