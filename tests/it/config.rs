//! Configuration errors through the binary: one line naming the key or file and the layer, exit status 1,
//! never a panic or a backtrace.

use crate::helpers::{CommandOutput, tidings_with_env};

fn run_with(args: &[&str], env: &[(&str, &str)], files: &[(&str, &str)]) -> CommandOutput {
    let dir = tempfile::tempdir().expect("temporary folder");
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).expect("write config");
    }
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let mut env = env.to_vec();
    env.push(("TIDINGS_DATABASE__URL", &url));
    tidings_with_env(args, &env, dir.path())
}

fn assert_one_line_error(run: &CommandOutput, needles: &[&str]) {
    assert_eq!(run.code, Some(1), "stderr: {}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected, got: {}", run.stderr);
    for needle in needles {
        assert!(lines[0].contains(needle), "`{needle}` missing from: {}", lines[0]);
    }
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("backtrace"));
}

/// How serde ends every unknown-key message about `[smtp]`.
const SMTP_KEYS: &str = "expected one of `host`, `port`, `tls`, `username`, `password`, `password_file`, `ca_file`, \
                         `pool_size`, `connect_timeout`, `command_timeout` for key `smtp`";

#[test]
fn an_unknown_key_in_the_config_file_is_named_once_with_the_file() {
    let run = run_with(&["--config", "bad.toml", "migrate"], &[], &[("bad.toml", "[smtp]\nhots = \"x\"\n")]);
    assert_one_line_error(&run, &[]);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "tidings: configuration error: config file bad.toml (from --config): smtp.hots: unknown key (unknown \
             field `hots`, {SMTP_KEYS})"
        )
    );
}

#[test]
fn an_unknown_key_in_the_environment_names_the_variable_that_was_set() {
    let run = run_with(&["migrate"], &[("TIDINGS_SMTP__HOTS", "x")], &[]);
    assert_one_line_error(&run, &[]);
    assert_eq!(
        run.stderr.trim_end(),
        format!(
            "tidings: configuration error: the environment: smtp.hots (variable TIDINGS_SMTP__HOTS): unknown key \
             (unknown field `hots`, {SMTP_KEYS})"
        )
    );
}

#[test]
fn an_unknown_section_in_the_environment_keeps_the_whole_key() {
    let run = run_with(&["migrate"], &[("TIDINGS_NOPE__X", "1")], &[]);
    assert_one_line_error(&run, &[]);
    assert!(
        run.stderr.starts_with(
            "tidings: configuration error: the environment: nope.x (variable TIDINGS_NOPE__X): unknown key (unknown \
             field `nope`, expected one of `default_list`,"
        ),
        "{}",
        run.stderr
    );
}

#[test]
fn a_wrong_type_in_the_config_file_is_named_with_the_key() {
    let run =
        run_with(&["--config", "bad.toml", "migrate"], &[], &[("bad.toml", "[delivery]\nper_second = \"fast\"\n")]);
    assert_one_line_error(&run, &["delivery.per_second", "bad.toml"]);
}

#[test]
fn a_missing_config_file_named_by_the_environment_is_named() {
    let run = run_with(&["migrate"], &[("TIDINGS_CONFIG", "/nonexistent/tidings.toml")], &[]);
    assert_one_line_error(&run, &["/nonexistent/tidings.toml", "TIDINGS_CONFIG", "cannot read"]);
}

#[test]
fn a_wrong_type_in_the_environment_names_the_variable() {
    let run = run_with(&["migrate"], &[("TIDINGS_SMTP__PORT", "lots")], &[]);
    assert_one_line_error(&run, &["TIDINGS_SMTP__PORT", "the environment"]);
}

#[test]
fn a_toml_syntax_error_is_one_line() {
    let run = run_with(&["--config", "bad.toml", "migrate"], &[], &[("bad.toml", "[smtp\nport = 1\n")]);
    assert_one_line_error(&run, &["bad.toml"]);
}

#[test]
fn an_unsupported_database_url_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let run = tidings_with_env(&["migrate"], &[("TIDINGS_DATABASE__URL", "mysql://x@y/z")], dir.path());
    assert_eq!(run.code, Some(1));
    assert!(run.stderr.contains("must start with sqlite:// or postgres://"), "{}", run.stderr);
}

#[test]
fn help_exits_0_with_an_example_and_bad_usage_exits_2() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let help = tidings_with_env(&["subscriber", "import", "--help"], &[], dir.path());
    assert_eq!(help.code, Some(0));
    assert!(help.stdout.contains("Example:"), "{}", help.stdout);
    let usage = tidings_with_env(&["subscriber", "frobnicate"], &[], dir.path());
    assert_eq!(usage.code, Some(2));
}
