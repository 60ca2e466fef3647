//! Where each setting came from, for `tidings config show` and `config check`: the effective value of every key
//! and the layer that set it last (the built-in defaults, a file, or an environment variable).
//!
//! Secrets never leave this module in clear: the secret keys, a password inside a URL, and (as a second guard)
//! any text equal to a resolved secret are replaced by [`REDACTED`] before an entry is built.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

use super::load::{self, CONFIG_VAR, DEFAULTS, ENV_PREFIX, SECRET_KEYS};
use super::{ConfigError, Settings};

/// What a secret is shown as.
pub const REDACTED: &str = "[REDACTED]";

/// The layer a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layer {
    Default,
    /// A config file, with the option that named it (`--config` or `TIDINGS_CONFIG`).
    File {
        path: PathBuf,
        named_by: String,
    },
    /// An environment variable.
    Environment(String),
}

impl Layer {
    /// `default`, `file` or `environment`.
    pub fn kind(&self) -> &'static str {
        match self {
            Layer::Default => "default",
            Layer::File { .. } => "file",
            Layer::Environment(_) => "environment",
        }
    }

    /// The file's path or the variable's name; empty for the defaults.
    pub fn origin(&self) -> String {
        match self {
            Layer::Default => String::new(),
            Layer::File { path, .. } => path.display().to_string(),
            Layer::Environment(variable) => variable.clone(),
        }
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Default => f.write_str("default"),
            Layer::File { path, .. } => write!(f, "file {}", path.display()),
            Layer::Environment(variable) => write!(f, "environment {variable}"),
        }
    }
}

/// One setting: its key (`smtp.port`), its value as TOML would write it (secrets redacted) and its layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub layer: Layer,
}

/// The settings of this process with the origin of every value.
#[derive(Debug)]
pub struct Explained {
    pub settings: Settings,
    pub entries: Vec<Entry>,
}

impl Explained {
    /// The layer that set `key`, if any layer did.
    pub fn layer_of(&self, key: &str) -> Option<&Layer> {
        self.entries.iter().find(|entry| entry.key == key).map(|entry| &entry.layer)
    }
}

/// Loads this process's settings (`--config` FILE, else `TIDINGS_CONFIG`, then `TIDINGS_*`) and explains them.
pub fn explain(cli_file: Option<&Path>) -> Result<Explained, ConfigError> {
    let (file, env) = load::process_sources(cli_file);
    explain_layers(file.as_ref().map(|(path, named_by)| (path.as_path(), *named_by)), &env)
}

/// [`explain`] with the file and the environment given, as [`load::load_layers`] takes them.
pub fn explain_layers(file: Option<(&Path, &str)>, env: &HashMap<String, String>) -> Result<Explained, ConfigError> {
    let settings = load::load_layers(file, env)?;
    let mut values: BTreeMap<String, (String, Layer)> = BTreeMap::new();
    let defaults: toml::Table =
        DEFAULTS.parse().map_err(|e| ConfigError::new(format!("the built-in defaults: {e}")))?;
    flatten("", &defaults, &Layer::Default, &mut values);
    if let Some((path, named_by)) = file {
        let layer = Layer::File { path: path.to_path_buf(), named_by: named_by.to_owned() };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(format!("config file {}: cannot read it: {e}", path.display())))?;
        let table: toml::Table =
            text.parse().map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))?;
        flatten("", &table, &layer, &mut values);
    }
    for (variable, value) in env.iter().filter(|(name, _)| name.as_str() != CONFIG_VAR) {
        let Some(key) = env_key(variable) else { continue };
        values.insert(key, (env_value(value), Layer::Environment(variable.clone())));
    }

    let secrets = resolved_secrets(&settings);
    let entries = values
        .into_iter()
        .map(|(key, (value, layer))| {
            let value = redact(&key, &value, &secrets);
            Entry { key, value, layer }
        })
        .collect();
    Ok(Explained { settings, entries })
}

/// `TIDINGS_LISTS__WEEKLY__TIME_ZONE` -> `lists.weekly.time_zone`.
fn env_key(variable: &str) -> Option<String> {
    let rest = variable.strip_prefix(ENV_PREFIX)?;
    Some(rest.split("__").map(str::to_lowercase).collect::<Vec<_>>().join("."))
}

/// An environment value as TOML would write it: numbers and booleans bare, anything else quoted.
fn env_value(value: &str) -> String {
    if value.parse::<i64>().is_ok() || value.parse::<f64>().is_ok() || value == "true" || value == "false" {
        value.to_owned()
    } else {
        toml::Value::String(value.to_owned()).to_string()
    }
}

/// Every leaf of `table` under `prefix`, as `section.key` -> value.
fn flatten(prefix: &str, table: &toml::Table, layer: &Layer, into: &mut BTreeMap<String, (String, Layer)>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            toml::Value::Table(inner) => flatten(&key, inner, layer, into),
            leaf => {
                into.insert(key, (leaf.to_string(), layer.clone()));
            }
        }
    }
}

/// The secrets this configuration resolves to (from any layer or `*_file`), to be scrubbed wherever they
/// appear. Short ones are left out: scrubbing "1" would garble every number.
fn resolved_secrets(settings: &Settings) -> Vec<SecretString> {
    let mut secrets: Vec<SecretString> =
        [settings.smtp_password(), settings.dkim_private_key(), settings.mailgun_signing_key()]
            .into_iter()
            .filter_map(|secret| secret.ok().flatten())
            .collect();
    secrets.extend(settings.links.signing_keys.clone());
    secrets.extend(settings.postmark_credentials().ok().flatten().map(|(_, password)| password));
    if let Ok(Some(spec)) = super::secret::resolve(
        "links.signing_keys",
        settings.links.signing_keys.as_ref(),
        &settings.links.signing_keys_file,
    ) {
        // Each key's secret on its own too, and each line of a multi-line PEM key.
        let parts: Vec<String> = spec
            .expose_secret()
            .split([',', '\n'])
            .flat_map(|entry| [entry.trim().to_owned(), entry.split_once(':').map_or("", |(_, s)| s).trim().to_owned()])
            .collect();
        secrets.extend(parts.into_iter().map(SecretString::from));
        secrets.push(spec);
    }
    secrets.retain(|secret| secret.expose_secret().len() >= 8);
    secrets
}

/// The value to show for `key`: the secret keys redacted, a URL's password redacted, then any resolved secret
/// (or a line of one) scrubbed.
fn redact(key: &str, value: &str, secrets: &[SecretString]) -> String {
    if SECRET_KEYS.contains(&key) {
        return toml::Value::String(REDACTED.to_owned()).to_string();
    }
    let mut shown = redact_url_password(value);
    for secret in secrets {
        let secret = secret.expose_secret();
        for piece in std::iter::once(secret).chain(secret.lines()).map(str::trim).filter(|p| p.len() >= 8) {
            shown = shown.replace(piece, REDACTED);
        }
    }
    shown
}

/// `postgres://user:secret@host/db` -> `postgres://user:[REDACTED]@host/db`, and `password=...` in a query.
fn redact_url_password(value: &str) -> String {
    let mut shown = value.to_owned();
    if let Some(start) = shown.find("://").map(|i| i + 3) {
        let authority_end = shown[start..].find(['/', '?', '#', '"']).map_or(shown.len(), |i| start + i);
        if let Some(at) = shown[start..authority_end].rfind('@').map(|i| start + i)
            && let Some(colon) = shown[start..at].find(':').map(|i| start + i)
        {
            shown.replace_range(colon + 1..at, REDACTED);
        }
    }
    for marker in ["password=", "sslpassword="] {
        let mut from = 0;
        while let Some(found) = shown[from..].find(marker) {
            let begin = from + found + marker.len();
            let end = shown[begin..].find(['&', '"', ' ']).map_or(shown.len(), |i| begin + i);
            shown.replace_range(begin..end, REDACTED);
            from = begin + REDACTED.len();
        }
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_default_key_is_explained_as_coming_from_the_defaults() {
        let explained = explain_layers(None, &HashMap::new()).unwrap();
        assert_eq!(explained.layer_of("smtp.port"), Some(&Layer::Default));
        assert_eq!(explained.layer_of("lists.weekly.time_zone"), Some(&Layer::Default));
        let url = explained.entries.iter().find(|e| e.key == "database.url").unwrap();
        assert_eq!(url.value, "\"sqlite://tidings.db\"");
    }

    #[test]
    fn a_variable_overrides_the_default_and_is_named() {
        let explained = explain_layers(None, &env(&[("TIDINGS_SMTP__PORT", "2525")])).unwrap();
        let entry = explained.entries.iter().find(|e| e.key == "smtp.port").unwrap();
        assert_eq!(entry.value, "2525");
        assert_eq!(entry.layer, Layer::Environment("TIDINGS_SMTP__PORT".to_owned()));
        assert_eq!(entry.layer.to_string(), "environment TIDINGS_SMTP__PORT");
    }

    #[test]
    fn passwords_in_urls_are_redacted() {
        assert_eq!(redact_url_password("\"postgres://tidings:s3cret@db/t\""), "\"postgres://tidings:[REDACTED]@db/t\"");
        assert_eq!(
            redact_url_password("postgres://db/t?password=s3cret&x=1"),
            "postgres://db/t?password=[REDACTED]&x=1"
        );
        assert_eq!(
            redact_url_password("\"sqlite:///var/lib/tidings/tidings.db\""),
            "\"sqlite:///var/lib/tidings/tidings.db\""
        );
        assert_eq!(redact_url_password("\"postgres://tidings@db/t\""), "\"postgres://tidings@db/t\"");
    }
}
