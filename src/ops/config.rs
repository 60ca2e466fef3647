//! `tidings config show` and `tidings config check`: the effective configuration with the layer of every value
//! (secrets redacted by `configuration::explain`), and every check `serve` makes before it opens the database.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use anyhow::anyhow;
use serde_json::json;

use crate::configuration::{self, Explained, Settings};

/// Prints every setting as `key = value  # layer`, or as JSON.
pub(super) fn show(config_file: Option<&Path>, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let explained = configuration::explain(config_file).map_err(|e| anyhow!("configuration error: {e}"))?;
    if json {
        let entries: Vec<_> = explained
            .entries
            .iter()
            .map(|entry| {
                json!({
                    "key": entry.key,
                    "value": json_value(&entry.value),
                    "layer": entry.layer.kind(),
                    "origin": entry.layer.origin(),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut *out, &entries)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let width = explained.entries.iter().map(|e| e.key.len() + e.value.len() + 3).max().unwrap_or(0).min(56);
    writeln!(out, "# The effective configuration; secrets are shown as {}.", configuration::REDACTED)?;
    writeln!(out, "# Each value's layer: default, file PATH, or environment VARIABLE.")?;
    for entry in &explained.entries {
        let line = format!("{} = {}", entry.key, entry.value);
        writeln!(out, "{line:<width$}  # {}", entry.layer)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// A value as TOML writes it, as JSON (a string when it does not parse, which it always should).
fn json_value(toml_value: &str) -> serde_json::Value {
    toml::from_str::<toml::Table>(&format!("v = {toml_value}"))
        .ok()
        .and_then(|table| table.get("v").and_then(|value| serde_json::to_value(value).ok()))
        .unwrap_or_else(|| serde_json::Value::String(toml_value.to_owned()))
}

/// Loads and checks the configuration as `serve` would, without opening the database. Each problem is printed
/// on stderr with its key and layer; any problem makes the exit status 1.
pub(super) fn check(config_file: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let explained = configuration::explain(config_file).map_err(|e| anyhow!("configuration error: {e}"))?;
    let problems: Vec<String> = problems(&explained.settings).iter().map(|p| with_layer(&explained, p)).collect();
    for problem in &problems {
        eprintln!("tidings: configuration error: {problem}");
    }
    if !problems.is_empty() {
        anyhow::bail!("the configuration has {} problem(s); nothing was opened", problems.len());
    }
    let from_file = explained.entries.iter().filter(|e| e.layer.kind() == "file").count();
    let from_env = explained.entries.iter().filter(|e| e.layer.kind() == "environment").count();
    writeln!(
        out,
        "the configuration is valid: {} settings, {from_file} from a file and {from_env} from the environment",
        explained.entries.len()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Every check `serve` makes on the settings before it touches the database, each failure as `key: reason`.
fn problems(settings: &Settings) -> Vec<String> {
    let checks: Vec<anyhow::Result<()>> = vec![
        settings.list_specs().map(drop).map_err(Into::into),
        settings.link_builder().map(drop).map_err(Into::into),
        settings.smtp_password().map(drop).map_err(Into::into),
        crate::startup::sender_identity(settings).map(drop),
        crate::startup::admin_mailbox(settings).map(drop),
        crate::startup::dkim_signer(settings).map(drop),
        settings
            .http
            .bind
            .parse::<SocketAddr>()
            .map(drop)
            .map_err(|_| anyhow!("http.bind: `{}` is not an address like 127.0.0.1:8080", settings.http.bind)),
        database_url(&settings.database.url),
        tracing_subscriber::EnvFilter::try_new(&settings.log.level)
            .map(drop)
            .map_err(|e| anyhow!("log.level: `{}` is not a valid filter ({e})", settings.log.level)),
        templates(settings),
        crate::webhooks::check_settings(settings).map_err(Into::into),
    ];
    checks.into_iter().filter_map(Result::err).map(|e| format!("{e:#}")).collect()
}

fn database_url(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    Err(anyhow!("database.url: it must start with sqlite:// or postgres://"))
}

fn templates(settings: &Settings) -> anyhow::Result<()> {
    match settings.render.templates_dir.trim() {
        "" => Ok(()),
        dir => crate::render::Templates::from_dir(Path::new(dir))
            .map(drop)
            .map_err(|e| anyhow!("render.templates_dir: {e}")),
    }
}

/// `key: reason` (or `key `...) -> `key (LAYER): reason`, naming the layer that set the key (or its `_file`).
fn with_layer(explained: &Explained, problem: &str) -> String {
    let end = problem.find([':', ' ']).unwrap_or(problem.len());
    let (key, rest) = problem.split_at(end);
    let layer = explained
        .layer_of(key)
        .or_else(|| key.strip_suffix("_file").and_then(|k| explained.layer_of(k)))
        .or_else(|| explained.layer_of(&format!("{key}_file")).filter(|l| l.kind() != "default"))
        .map_or_else(|| "not set".to_owned(), ToString::to_string);
    format!("{key} ({layer}){rest}")
}
