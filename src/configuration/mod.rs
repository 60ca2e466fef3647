//! Settings: what `config/default.toml` documents, loaded in layers and checked before anything runs.
//!
//! This is the only module that reads the environment (for `TIDINGS_*` variables and `TIDINGS_CONFIG`).
//! Secrets are `SecretString`s, so `Debug` output and logs show `[REDACTED]` instead of them.

mod explain;
mod invocation;
mod load;
mod secret;

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::SignedDuration;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{LinkBuilder, LinkKeys, ListSlug, ListSpec, WeeklySlot};

pub use explain::{Entry, Explained, Layer, REDACTED, explain, explain_layers};
pub use invocation::invocation;
pub use load::{ConfigError, load, load_layers};

/// Every setting. Field docs give the meaning; `config/default.toml` gives the defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// The list commands use when they are given no `--list`.
    pub default_list: String,
    pub database: DatabaseSettings,
    pub transport: TransportSettings,
    pub outbox: OutboxSettings,
    pub smtp: SmtpSettings,
    pub delivery: DeliverySettings,
    pub http: HttpSettings,
    pub sender: SenderSettings,
    pub links: LinkSettings,
    pub dkim: DkimSettings,
    pub render: RenderSettings,
    pub tracking: TrackingSettings,
    pub subscribe: SubscribeSettings,
    pub admin: AdminSettings,
    pub log: LogSettings,
    /// Lists by short name.
    pub lists: BTreeMap<String, ListSettings>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://...`; the scheme picks the backend.
    pub url: String,
    pub max_connections: u32,
    pub busy_timeout: SignedDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Smtp,
    Outbox,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransportSettings {
    pub kind: TransportKind,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxSettings {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Required,
    Wrapper,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    /// Empty: no authentication.
    pub username: String,
    /// Set through `TIDINGS_SMTP__PASSWORD`; resolved with `password_file` by [`Settings::smtp_password`].
    #[serde(default)]
    pub password: Option<SecretString>,
    pub password_file: String,
    pub pool_size: u32,
    pub connect_timeout: SignedDuration,
    pub command_timeout: SignedDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub batch_size: u32,
    /// Messages per second, hour and day per relay; 0: no limit.
    pub per_second: u32,
    pub per_hour: u32,
    pub per_day: u32,
    pub max_attempts: u32,
    pub retry_initial: SignedDuration,
    pub retry_max: SignedDuration,
    pub max_age: SignedDuration,
    pub max_late: SignedDuration,
    pub lease: SignedDuration,
    pub dead_after: SignedDuration,
    pub resend_ambiguous: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    pub base_url: String,
    /// Requests per minute per client address to the pages behind email links, the archive and the forms;
    /// 0: no limit. The open pixel, `/healthz` and `/metrics` are exempt.
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once before `rate_limit_per_minute` paces it.
    pub rate_limit_burst: u32,
    /// Subscribe requests (form and JSON) per hour per client address; 0: no limit.
    pub subscribe_per_hour: u32,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A header in which a reverse proxy on the same machine passes the client's address (its last entry is
    /// used, and only on connections from a loopback address); empty: the connection's own address.
    pub client_ip_header: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeSettings {
    /// How long a double opt-in confirmation link stays valid.
    pub pending_expiry: SignedDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    pub from: String,
    pub reply_to: String,
    pub organization: String,
    pub postal_address: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSettings {
    /// Set through `TIDINGS_LINKS__SIGNING_KEYS`; resolved with `signing_keys_file` by [`Settings::link_keys`].
    #[serde(default)]
    pub signing_keys: Option<SecretString>,
    pub signing_keys_file: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum DkimAlgorithm {
    #[serde(rename = "rsa-sha256")]
    RsaSha256,
    #[serde(rename = "ed25519-sha256")]
    Ed25519Sha256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimSettings {
    pub enabled: bool,
    pub domain: String,
    pub selector: String,
    pub algorithm: DkimAlgorithm,
    /// Set through `TIDINGS_DKIM__PRIVATE_KEY`; resolved with `key_file` by [`Settings::dkim_private_key`].
    #[serde(default)]
    pub private_key: Option<SecretString>,
    pub key_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderSettings {
    /// Empty: the built-in templates.
    pub templates_dir: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrackingSettings {
    pub opens: bool,
    pub clicks: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Where notices for the editor go; empty: none.
    pub email: String,
    /// How long before a slot with an empty queue the notice goes out.
    pub notice_before: SignedDuration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSettings {
    pub name: String,
    pub time_zone: String,
    /// "Day HH:MM" in `time_zone`; empty: no cadence.
    #[serde(default)]
    pub weekly: String,
    #[serde(default)]
    pub local_time: bool,
}

impl Settings {
    /// The SMTP password from the environment or its 0600 file; `None` when neither is set.
    pub fn smtp_password(&self) -> Result<Option<SecretString>, ConfigError> {
        secret::resolve("smtp.password", self.smtp.password.as_ref(), &self.smtp.password_file)
    }

    /// The link signing keys. Missing or short keys are an error naming how to set them: `serve` stops on it.
    pub fn link_keys(&self) -> Result<LinkKeys, ConfigError> {
        let spec =
            secret::resolve("links.signing_keys", self.links.signing_keys.as_ref(), &self.links.signing_keys_file)?;
        let Some(spec) = spec else {
            return Err(ConfigError::new(
                "links.signing_keys: no link signing key is set; set TIDINGS_LINKS__SIGNING_KEYS or name a 0600 file \
                 in links.signing_keys_file, e.g. \"1:$(openssl rand -base64 32)\"",
            ));
        };
        use secrecy::ExposeSecret;
        LinkKeys::parse(spec.expose_secret()).map_err(|e| ConfigError::new(format!("links.signing_keys: {e}")))
    }

    /// Builds the links of every email from `http.base_url` and the link signing keys.
    pub fn link_builder(&self) -> Result<LinkBuilder, ConfigError> {
        LinkBuilder::new(&self.http.base_url, self.link_keys()?)
            .map_err(|e| ConfigError::new(format!("http.base_url: {e}")))
    }

    /// The DKIM private key (PEM) from the environment or its 0600 file; `None` when neither is set.
    pub fn dkim_private_key(&self) -> Result<Option<SecretString>, ConfigError> {
        secret::resolve("dkim.private_key", self.dkim.private_key.as_ref(), &self.dkim.key_file)
    }

    /// The lists from `[lists]`, checked: short names, time zones and the default list.
    pub fn list_specs(&self) -> Result<Vec<ListSpec>, ConfigError> {
        let mut specs = Vec::with_capacity(self.lists.len());
        for (slug, list) in &self.lists {
            let slug = ListSlug::parse(slug).map_err(|e| ConfigError::new(format!("lists.{slug}: {e}")))?;
            jiff::tz::TimeZone::get(&list.time_zone).map_err(|_| {
                ConfigError::new(format!("lists.{slug}.time_zone: `{}` is not an IANA time zone", list.time_zone))
            })?;
            let weekly = (!list.weekly.trim().is_empty()).then(|| list.weekly.trim().to_owned());
            if let Some(weekly) = &weekly {
                WeeklySlot::parse(weekly).map_err(|e| ConfigError::new(format!("lists.{slug}.weekly: {e}")))?;
            }
            specs.push(ListSpec {
                slug,
                name: list.name.clone(),
                time_zone: list.time_zone.clone(),
                weekly,
                local_time: list.local_time,
            });
        }
        if !specs.iter().any(|s| s.slug.as_str() == self.default_list) {
            return Err(ConfigError::new(format!(
                "default_list: `{}` is not one of the lists under [lists]",
                self.default_list
            )));
        }
        Ok(specs)
    }
}
