//! Loading settings in layers: built-in defaults, then a file, then `TIDINGS_*` environment variables.
//!
//! Each layer is checked on its own before the next is added, so an error names the layer it came from (and the
//! key, through `serde_path_to_error`) in one line.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};

use super::Settings;

/// `config/default.toml`, built into the binary so that Tidings runs without any file.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Environment variables with this prefix are configuration.
pub(super) const ENV_PREFIX: &str = "TIDINGS_";
/// Names the config file when `--config` is not given; not itself a setting.
pub(super) const CONFIG_VAR: &str = "TIDINGS_CONFIG";
/// Keys that hold secrets, which may not sit in a file that others can read.
pub(super) const SECRET_KEYS: [&str; 6] = [
    "smtp.password",
    "links.signing_keys",
    "dkim.private_key",
    "bounces.imap.password",
    "webhooks.postmark.password",
    "webhooks.mailgun.signing_key",
];

/// A configuration problem, as one line that names the key or file and the layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Loads the settings for this process: `cli_file` (from `--config`) or else `TIDINGS_CONFIG`, then the
/// `TIDINGS_*` environment.
pub fn load(cli_file: Option<&Path>) -> Result<Settings, ConfigError> {
    let (file, env) = process_sources(cli_file);
    load_layers(file.as_ref().map(|(path, origin)| (path.as_path(), *origin)), &env)
}

/// The layers of this process: the config file (`cli_file`, else `TIDINGS_CONFIG`) with the name of what named
/// it, and the `TIDINGS_*` variables.
pub(super) fn process_sources(cli_file: Option<&Path>) -> (Option<(PathBuf, &'static str)>, HashMap<String, String>) {
    let env: HashMap<String, String> = std::env::vars_os()
        .filter_map(|(key, value)| Some((key.into_string().ok()?, value.into_string().ok()?)))
        .filter(|(key, _)| key.starts_with(ENV_PREFIX))
        .collect();
    let file = match (cli_file, env.get(CONFIG_VAR)) {
        (Some(path), _) => Some((path.to_path_buf(), "--config")),
        (None, Some(path)) if !path.is_empty() => Some((PathBuf::from(path), CONFIG_VAR)),
        _ => None,
    };
    (file, env)
}

/// Loads defaults, then `file` (with the name of the option that named it), then `env` (`TIDINGS_*` variables).
pub fn load_layers(file: Option<(&Path, &str)>, env: &HashMap<String, String>) -> Result<Settings, ConfigError> {
    let mut builder = Config::builder().add_source(File::from_str(DEFAULTS, FileFormat::Toml));
    check(builder.clone(), "the built-in defaults", |key| key.to_owned())?;

    if let Some((path, origin)) = file {
        let layer = format!("config file {} (from {origin})", path.display());
        let text = fs::read_to_string(path).map_err(|e| ConfigError(format!("{layer}: cannot read it: {e}")))?;
        refuse_readable_secrets(path, &text, &layer)?;
        builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
        check(builder.clone(), &layer, |key| key.to_owned())?;
    }

    let settings: HashMap<String, String> =
        env.iter().filter(|(key, _)| key.as_str() != CONFIG_VAR).map(|(k, v)| (k.clone(), v.clone())).collect();
    if settings.is_empty() {
        return check(builder, "the configuration", |key| key.to_owned());
    }
    let variables: Vec<(String, String)> =
        settings.keys().filter_map(|name| Some((env_key(name)?, name.clone()))).collect();
    builder = builder.add_source(
        Environment::with_prefix("TIDINGS")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            // The lists a variable may hold, comma-separated: `TIDINGS_HTTP__TRUSTED_PROXIES=10.0.0.5,10.0.1.0/24`.
            .list_separator(",")
            .with_list_parse_key("http.trusted_proxies")
            .with_list_parse_key("webhooks.ses.cert_hosts")
            .with_list_parse_key("webhooks.ses.topic_arns")
            .source(Some(settings)),
    );
    check(builder, "the environment", |key| {
        // serde stops at the first unknown level (`nope` for `TIDINGS_NOPE__X`): name the variable's whole key.
        let found = variables.iter().filter(|(full, _)| full == key || full.starts_with(&format!("{key}."))).min();
        match found {
            Some((full, name)) => format!("{full} (variable {name})"),
            None => format!("{key} (variable {})", env_name(key)),
        }
    })
}

/// Builds and deserializes the layers so far; an error names `layer` and the key as `show_key` spells it.
fn check(
    builder: config::ConfigBuilder<config::builder::DefaultState>,
    layer: &str,
    show_key: impl Fn(&str) -> String,
) -> Result<Settings, ConfigError> {
    let config = builder.build().map_err(|e| ConfigError(format!("{layer}: {}", one_line(&e.to_string()))))?;
    serde_path_to_error::deserialize::<_, Settings>(config.clone()).map_err(|e| {
        let path = e.path().to_string();
        let inner = one_line(&e.inner().to_string());
        // An unknown key is reported by serde at its parent; name the key itself.
        let (key, reason) = match unknown_field(&inner) {
            Some(field) => (unknown_key(&path, field), format!("unknown key ({inner})")),
            None if inner.contains(JIFF_DURATION_ERROR) => {
                let value = config.get_string(&path).unwrap_or_default();
                (path, format!("`{value}` is not a duration: {DURATION_UNITS}"))
            }
            None => (path, inner),
        };
        ConfigError(format!("{layer}: {}: {reason}", show_key(&key)))
    })
}

/// How jiff's errors for a duration it cannot parse begin; they end with advice for programmers ("try parsing
/// into a jiff::Span"), which is replaced by [`DURATION_UNITS`].
const JIFF_DURATION_ERROR: &str = "duration format";

/// What a duration setting accepts (jiff's "friendly" format, units up to hours, or ISO 8601).
const DURATION_UNITS: &str = "write a number and a unit from milliseconds to hours, like \"500ms\", \"30s\", \"15m\", \
                              \"2h\" or \"1h 30m\" (days and weeks are not accepted: write \"48h\")";

/// The field name in serde's "unknown field `x`, expected ..." message.
fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split_once('`').map(|(field, _)| field)
}

/// The dotted key of an unknown `field` that serde reported at `path`: the path may stop at the parent
/// (`smtp`) or already name the field (`smtp.hots`), depending on where the deserializer noticed it.
fn unknown_key(path: &str, field: &str) -> String {
    if path == "." || path.is_empty() {
        return field.to_owned();
    }
    if path == field || path.ends_with(&format!(".{field}")) {
        return path.to_owned();
    }
    format!("{path}.{field}")
}

/// `TIDINGS_SMTP__PORT` -> `smtp.port`, as the `config` crate reads the variable; `None` for other names.
fn env_key(name: &str) -> Option<String> {
    let rest = name.strip_prefix(ENV_PREFIX)?;
    Some(rest.split("__").map(str::to_lowercase).collect::<Vec<_>>().join("."))
}

/// `smtp.port` -> `TIDINGS_SMTP__PORT`.
fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.split('.').map(str::to_uppercase).collect::<Vec<_>>().join("__"))
}

/// Error texts from TOML parsing span several lines with a source excerpt; the CLI shows one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A secret in a config file is allowed only when the file is private (mode 0600 or stricter).
fn refuse_readable_secrets(path: &Path, text: &str, layer: &str) -> Result<(), ConfigError> {
    let Ok(config) = Config::builder().add_source(File::from_str(text, FileFormat::Toml)).build() else {
        return Ok(()); // Syntax errors are reported with their position by `check`.
    };
    let mode = fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0o644);
    for key in SECRET_KEYS {
        if config.get_string(key).is_ok() && mode & 0o077 != 0 {
            return Err(ConfigError(format!(
                "{layer}: {key}: a secret in a file others can read (mode {mode:o}); move it to {} or a 0600 file \
                 named by {key}_file",
                env_name(key)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn the_built_in_defaults_load_and_use_sqlite_and_the_outbox() {
        let settings = load_layers(None, &HashMap::new()).unwrap();
        assert_eq!(settings.database.url, "sqlite://tidings.db");
        assert_eq!(settings.transport.kind, super::super::TransportKind::Outbox);
        assert_eq!(settings.list_specs().unwrap().len(), 1);
    }

    #[test]
    fn a_file_overrides_the_defaults_and_the_environment_overrides_the_file() {
        let file = config_file("[smtp]\nhost = \"relay.example.com\"\nport = 2525\n");
        let settings = load_layers(Some((file.path(), "--config")), &HashMap::new()).unwrap();
        assert_eq!((settings.smtp.host.as_str(), settings.smtp.port), ("relay.example.com", 2525));
        let settings = load_layers(Some((file.path(), "--config")), &env(&[("TIDINGS_SMTP__PORT", "465")])).unwrap();
        assert_eq!((settings.smtp.host.as_str(), settings.smtp.port), ("relay.example.com", 465));
    }

    /// serde's list of the `[smtp]` keys, as it ends every unknown-key message about that section.
    const SMTP_KEYS: &str = "expected one of `host`, `port`, `tls`, `username`, `password`, `password_file`, `ca_file`, \
                             `pool_size`, `connect_timeout`, `command_timeout` for key `smtp`";

    #[test]
    fn an_unknown_key_in_a_file_names_the_key_once_and_the_file() {
        let file = config_file("[smtp]\nhots = \"x\"\n");
        let err = load_layers(Some((file.path(), "--config")), &HashMap::new()).unwrap_err().to_string();
        let layer = format!("config file {} (from --config)", file.path().display());
        assert_eq!(err, format!("{layer}: smtp.hots: unknown key (unknown field `hots`, {SMTP_KEYS})"));
    }

    #[test]
    fn an_unknown_key_in_the_environment_names_the_key_and_the_variable_that_exists() {
        let err = load_layers(None, &env(&[("TIDINGS_SMTP__HOTS", "x")])).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "the environment: smtp.hots (variable TIDINGS_SMTP__HOTS): unknown key (unknown field `hots`, \
                 {SMTP_KEYS})"
            )
        );
    }

    #[test]
    fn an_unknown_section_in_the_environment_names_the_whole_key_and_its_variable() {
        let err = load_layers(None, &env(&[("TIDINGS_NOPE__X", "1")])).unwrap_err().to_string();
        assert_eq!(
            err,
            "the environment: nope.x (variable TIDINGS_NOPE__X): unknown key (unknown field `nope`, expected one \
             of `default_list`, `database`, `transport`, `outbox`, `smtp`, `delivery`, `http`, `sender`, `links`, \
             `dkim`, `render`, `tracking`, `subscribe`, `admin`, `log`, `bounces`, `webhooks`, `doctor`, `lists`)"
        );
    }

    #[test]
    fn a_wrong_type_in_the_environment_names_the_variable() {
        let err = load_layers(None, &env(&[("TIDINGS_SMTP__PORT", "many")])).unwrap_err().to_string();
        assert_eq!(
            err,
            "the environment: smtp.port (variable TIDINGS_SMTP__PORT): invalid type: string \"many\", expected an \
             integer for key `smtp.port` in the environment"
        );
    }

    #[test]
    fn a_duration_in_days_or_without_a_unit_says_which_units_are_accepted() {
        let file = config_file("[delivery]\nmax_age = \"2d\"\n");
        let err = load_layers(Some((file.path(), "--config")), &HashMap::new()).unwrap_err().to_string();
        assert!(err.ends_with(&format!("delivery.max_age: `2d` is not a duration: {DURATION_UNITS}")), "{err}");
        assert!(!err.contains("jiff"), "{err}");
        let err = load_layers(None, &env(&[("TIDINGS_DELIVERY__LEASE", "fast")])).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "the environment: delivery.lease (variable TIDINGS_DELIVERY__LEASE): `fast` is not a duration: \
                     {DURATION_UNITS}"
            )
        );
    }

    #[test]
    fn a_missing_file_and_a_syntax_error_are_one_line_each() {
        let err = load_layers(Some((Path::new("/nonexistent.toml"), "TIDINGS_CONFIG")), &HashMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent.toml") && err.contains("TIDINGS_CONFIG"), "{err}");
        let file = config_file("[smtp\nhost = 1\n");
        let err = load_layers(Some((file.path(), "--config")), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains(&file.path().display().to_string()) && !err.contains('\n'), "{err}");
    }

    #[test]
    fn a_secret_in_a_readable_file_is_refused_and_not_shown() {
        let file = config_file("[smtp]\npassword = \"hunter2hunter2\"\n");
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_layers(Some((file.path(), "--config")), &HashMap::new()).unwrap_err().to_string();
        assert!(err.contains("smtp.password") && err.contains("TIDINGS_SMTP__PASSWORD"), "{err}");
        assert!(!err.contains("hunter2"));
        fs::set_permissions(file.path(), fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load_layers(Some((file.path(), "--config")), &HashMap::new()).is_ok());
    }

    #[test]
    fn secrets_from_the_environment_are_redacted_in_debug_output() {
        let settings = load_layers(
            None,
            &env(&[
                ("TIDINGS_SMTP__PASSWORD", "hunter2hunter2"),
                ("TIDINGS_LINKS__SIGNING_KEYS", &format!("1:{}", "k".repeat(40))),
            ]),
        )
        .unwrap();
        let debug = format!("{settings:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("kkkk"), "{debug}");
        assert!(settings.link_keys().is_ok());
    }

    #[test]
    fn missing_or_short_link_keys_are_refused_with_a_way_to_fix_it() {
        let settings = load_layers(None, &HashMap::new()).unwrap();
        let err = settings.link_keys().unwrap_err().to_string();
        assert!(err.contains("TIDINGS_LINKS__SIGNING_KEYS"), "{err}");
        let settings = load_layers(None, &env(&[("TIDINGS_LINKS__SIGNING_KEYS", "1:tooshort")])).unwrap();
        let err = settings.link_keys().unwrap_err().to_string();
        assert!(err.contains("shorter than 32 bytes") && !err.contains("tooshort"), "{err}");
    }

    #[test]
    fn an_unknown_time_zone_or_default_list_is_named() {
        let settings = load_layers(None, &env(&[("TIDINGS_LISTS__WEEKLY__TIME_ZONE", "Mars/Olympus")])).unwrap();
        let err = settings.list_specs().unwrap_err().to_string();
        assert!(err.contains("lists.weekly.time_zone") && err.contains("Mars/Olympus"), "{err}");
        let settings = load_layers(None, &env(&[("TIDINGS_DEFAULT_LIST", "monthly")])).unwrap();
        assert!(settings.list_specs().unwrap_err().to_string().contains("default_list"));
    }
}
