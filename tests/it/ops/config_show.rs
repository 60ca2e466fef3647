//! `tidings config show` and `config check`: every secret, set through every layer (a 0600 config file, the
//! environment, a `*_file`, a systemd credential), never appears in what they print; each value names its layer;
//! and `check` names the key and layer of a problem without opening the database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::helpers::{CommandOutput, tidings_with_env};

const PASSWORD: &str = "smtp-pass-Zq81xv0Lk";
const SIGNING: &str = "1:sign-key-Hh3kT9wQ0pXyZ7mN2vB5cD8fG1jK4lR";
const DKIM: &str =
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIdkimsecretdkimsecretdkimsecret00\n-----END PRIVATE KEY-----";
const DB_PASSWORD: &str = "db-pass-Wm4uYt7Re";

fn private_file(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

/// Runs `config show`, `config show --json` and `config check` and returns their outputs.
fn show_all(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<CommandOutput> {
    let mut runs = Vec::new();
    for command in [&["config", "show"][..], &["config", "show", "--json"], &["config", "check"]] {
        let mut all: Vec<&str> = args.to_vec();
        all.extend_from_slice(command);
        runs.push(tidings_with_env(&all, env, dir));
    }
    runs
}

fn assert_no_secret(runs: &[CommandOutput], what: &str) {
    for run in runs {
        for secret in
            [PASSWORD, SIGNING, "sign-key-Hh3kT9wQ0pXyZ7mN2vB5cD8fG1jK4lR", DB_PASSWORD, "dkimsecretdkimsecret"]
        {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{what}: a secret was printed:\n{}{}",
                run.stdout,
                run.stderr
            );
        }
    }
    assert_eq!(runs[0].code, Some(0), "{what}: {}", runs[0].stderr);
    assert!(runs[0].stdout.contains("[REDACTED]"), "{what}: {}", runs[0].stdout);
}

#[test]
fn config_show_never_prints_a_secret_set_through_any_layer() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path();
    let db_url = format!("postgres://tidings:{DB_PASSWORD}@127.0.0.1/tidings");

    // The environment.
    let env = [
        ("TIDINGS_SMTP__PASSWORD", PASSWORD),
        ("TIDINGS_LINKS__SIGNING_KEYS", SIGNING),
        ("TIDINGS_DKIM__PRIVATE_KEY", DKIM),
        ("TIDINGS_DATABASE__URL", db_url.as_str()),
    ];
    let runs = show_all(folder, &[], &env);
    assert_no_secret(&runs, "environment");
    assert!(runs[0].stdout.contains("# environment TIDINGS_SMTP__PASSWORD"), "{}", runs[0].stdout);
    assert!(runs[0].stdout.contains("postgres://tidings:[REDACTED]@127.0.0.1/tidings"), "{}", runs[0].stdout);
    let json: serde_json::Value = serde_json::from_str(&runs[1].stdout).expect("JSON");
    let password = json.as_array().expect("array").iter().find(|e| e["key"] == "smtp.password").expect("the key");
    assert_eq!(password["layer"], "environment");
    assert_eq!(password["origin"], "TIDINGS_SMTP__PASSWORD");
    assert_eq!(password["value"], "[REDACTED]");

    // A 0600 config file.
    let toml = format!(
        "[database]\nurl = \"{db_url}\"\n[smtp]\npassword = \"{PASSWORD}\"\n[links]\nsigning_keys = \"{SIGNING}\"\n\
         [dkim]\nprivate_key = \"\"\"\n{DKIM}\"\"\"\n"
    );
    let file = private_file(folder, "tidings.toml", &toml);
    let runs = show_all(folder, &["--config", &file], &[]);
    assert_no_secret(&runs, "config file");
    assert!(runs[0].stdout.contains(&format!("# file {file}")), "{}", runs[0].stdout);

    // `*_file` keys, from the environment and from a file, one of them a systemd credential.
    let credentials = folder.join("credentials");
    std::fs::create_dir(&credentials).expect("mkdir");
    private_file(&credentials, "smtp-password", PASSWORD);
    let keys = private_file(folder, "signing-keys", SIGNING);
    let dkim = private_file(folder, "dkim.key", DKIM);
    let file = private_file(
        folder,
        "files.toml",
        &format!("[links]\nsigning_keys_file = \"{keys}\"\n[dkim]\nkey_file = \"{dkim}\"\n"),
    );
    let credentials = credentials.display().to_string();
    let env = [
        ("TIDINGS_SMTP__PASSWORD_FILE", "$CREDENTIALS_DIRECTORY/smtp-password"),
        ("CREDENTIALS_DIRECTORY", credentials.as_str()),
    ];
    let runs = show_all(folder, &["--config", &file], &env);
    for run in &runs {
        for secret in [PASSWORD, SIGNING, "dkimsecretdkimsecret"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "*_file: {}{}",
                run.stdout,
                run.stderr
            );
        }
    }
    assert_eq!(runs[2].code, Some(0), "the credentials resolve: {}", runs[2].stderr);
    assert!(runs[0].stdout.contains("smtp.password_file = \"$CREDENTIALS_DIRECTORY/smtp-password\""));
}

#[test]
fn config_check_names_the_key_and_its_layer_and_opens_no_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let folder = dir.path();
    let keys = ("TIDINGS_LINKS__SIGNING_KEYS", SIGNING);

    let bad_zone =
        tidings_with_env(&["config", "check"], &[keys, ("TIDINGS_LISTS__WEEKLY__TIME_ZONE", "Mars/Olympus")], folder);
    assert_eq!(bad_zone.code, Some(1));
    assert!(
        bad_zone.stderr.contains("lists.weekly.time_zone (environment TIDINGS_LISTS__WEEKLY__TIME_ZONE)"),
        "{}",
        bad_zone.stderr
    );

    let file = private_file(folder, "bad.toml", "[sender]\nfrom = \"not a mailbox\"\n[smtp]\nhots = \"x\"\n");
    let unknown = tidings_with_env(&["--config", &file, "config", "check"], &[keys], folder);
    assert_eq!(unknown.code, Some(1));
    assert!(unknown.stderr.contains("smtp.hots") && unknown.stderr.contains(&file), "{}", unknown.stderr);

    let file = private_file(folder, "from.toml", "[sender]\nfrom = \"not a mailbox\"\n");
    let bad_from = tidings_with_env(&["--config", &file, "config", "check"], &[], folder);
    assert_eq!(bad_from.code, Some(1));
    assert!(bad_from.stderr.contains(&format!("sender.from (file {file})")), "{}", bad_from.stderr);
    assert!(bad_from.stderr.contains("links.signing_keys (not set)"), "{}", bad_from.stderr);

    let good = tidings_with_env(&["config", "check"], &[keys], folder);
    assert_eq!(good.code, Some(0), "{}", good.stderr);
    assert!(good.stdout.contains("the configuration is valid"), "{}", good.stdout);
    assert!(!folder.join("tidings.db").exists(), "config check opened the database");
}
