//! Settings: what `config/default.toml` documents, loaded in layers and checked before anything runs.
//!
//! This is the only module that reads the environment (for `TIDINGS_*` variables and `TIDINGS_CONFIG`).
//! Secrets are `SecretString`s, so `Debug` output and logs show `[REDACTED]` instead of them.

mod explain;
mod invocation;
mod load;
mod secret;
mod ses;
mod webhooks;

use std::collections::BTreeMap;
use std::path::PathBuf;

use jiff::SignedDuration;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::{BounceAddress, LinkBuilder, LinkKeys, ListSlug, ListSpec, WeeklySlot};

pub use explain::{Entry, Explained, Layer, REDACTED, explain, explain_layers};
pub use invocation::invocation;
pub use load::{ConfigError, load, load_layers};
pub use ses::SesSettings;
pub use webhooks::{MailgunSettings, PostmarkSettings, SendgridSettings, WebhookSettings};

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
    pub bounces: BounceSettings,
    pub webhooks: WebhookSettings,
    pub doctor: DoctorSettings,
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
    /// A PEM file of certificates trusted besides the Mozilla roots (a relay with a private CA); empty: none.
    #[serde(default)]
    pub ca_file: String,
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
    /// The longest an idle daemon sleeps when no timer is due and nothing wakes it (a wake-up from the command
    /// line and every known timer end the sleep sooner).
    pub idle_poll: SignedDuration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub bind: String,
    /// Empty: derived from `bind` by [`Settings::base_url`].
    pub base_url: String,
    /// Requests per minute per client address to the pages behind email links, the archive and the forms;
    /// 0: no limit. The open pixel, `/healthz` and `/metrics` are exempt.
    pub rate_limit_per_minute: u32,
    /// Requests a client may make at once before `rate_limit_per_minute` paces it.
    pub rate_limit_burst: u32,
    /// Subscribe requests (form and JSON) per hour per client address, after a burst of up to 5 at once
    /// (fewer when this is below 5); 0: no limit.
    pub subscribe_per_hour: u32,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// A header in which a reverse proxy passes the client's address (its last entry is used, and only on
    /// connections from `trusted_proxies`); empty: the connection's own address.
    pub client_ip_header: String,
    /// How long a connection may take to send a request head, from opening or from its previous response.
    pub header_timeout: SignedDuration,
    /// How long a request's body may take to arrive whole.
    pub body_timeout: SignedDuration,
    /// Open connections at most; 0: derived from the open-file limit (see `http::server`).
    pub max_connections: u32,
    /// Open connections per client address at most; 0: no per-address cap.
    pub max_connections_per_address: u32,
    /// How long requests in progress may go on after a shutdown signal before their connections are dropped.
    pub shutdown_timeout: SignedDuration,
    /// The addresses or networks (`10.0.0.0/8`) of the reverse proxies whose `client_ip_header` is believed.
    pub trusted_proxies: Vec<String>,
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

/// `[bounces]`: signed return paths, the inbound listener and what reports may change. Empty `address`: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BounceSettings {
    /// The bounce address, e.g. `bounces@news.example.com`; every message's return path is `local+TOKEN@domain`.
    pub address: String,
    /// Where feedback loops send complaints (ARF), accepted by the listener as it is; empty: none.
    pub complaint_address: String,
    /// `HOST:PORT` of the inbound listener inside `tidings serve`; empty: no listener.
    pub listen: String,
    /// `smtp` or `lmtp`.
    pub protocol: InboundProtocol,
    /// The largest message the listener and `bounce ingest` take, in bytes (552 past it).
    pub max_message_bytes: usize,
    /// Connections the listener serves at once, in all and per client address.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Messages one client address may deliver per minute (451 past it, so the sender retries later).
    pub per_client_per_minute: u32,
    /// How long the listener waits for a command or a chunk of data before it closes the connection.
    pub idle_timeout: SignedDuration,
    /// A soft bounce adds 1 to the subscriber's score, a hard one suppresses at once; the score starts again
    /// from 0 after `soft_window` without a soft bounce, or after a delivered notice. At this score the
    /// address is suppressed.
    pub soft_threshold: f64,
    pub soft_window: SignedDuration,
    /// Guardrails while an issue sends: past this share of complaints, or of hard bounces, among its delivered
    /// messages (counted from `min_deliveries` on), the issue pauses with the reason.
    pub max_complaint_rate: f64,
    pub max_bounce_rate: f64,
    pub min_deliveries: u32,
    /// Stored reports keep at most this many bytes of the raw message.
    pub keep_raw_bytes: usize,
    /// The mailbox the daemon polls for reports.
    pub imap: ImapSettings,
}

/// `[bounces.imap]`: a mailbox that receives bounces and complaints, polled by `tidings serve`. Empty `host`: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    /// A PEM file of certificates trusted besides the Mozilla roots (a private CA); empty: none.
    pub ca_file: String,
    pub username: String,
    /// Set through `TIDINGS_BOUNCES__IMAP__PASSWORD`; resolved with `password_file` by [`Settings::imap_password`].
    #[serde(default)]
    pub password: Option<SecretString>,
    pub password_file: String,
    /// The folder polled, e.g. `INBOX`.
    pub mailbox: String,
    /// Where a report is moved once it is stored and applied (created when missing); `/` separates levels.
    pub processed_folder: String,
    /// Where a message that could not be parsed or matched is moved; empty: it stays where it is.
    pub unparsed_folder: String,
    /// The pause between two polls; after a failed poll the pause doubles up to `retry_max`.
    pub poll_interval: SignedDuration,
    pub retry_max: SignedDuration,
    /// Limit for connecting and for each IMAP command.
    pub timeout: SignedDuration,
    /// Messages taken in one poll at most (the rest waits for the next).
    pub max_per_poll: u32,
}

/// How the IMAP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Wrapper,
    /// STARTTLS on the plain port (143), refusing to log in without it.
    Starttls,
    /// Plaintext, allowed only to a loopback host.
    None,
}

/// `[doctor]`: how `tidings doctor` looks things up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorSettings {
    /// `IP:PORT` of the DNS server asked about the sender's records; empty: the system's (`/etc/resolv.conf`).
    pub nameserver: String,
    /// Limit for each DNS question; the relay check keeps `[smtp]`'s own timeouts, as sending does.
    pub timeout: SignedDuration,
}

/// The inbound listener's protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboundProtocol {
    Smtp,
    Lmtp,
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

    /// The IMAP password of `[bounces.imap]` from the environment or its 0600 file; `None` when neither is set.
    pub fn imap_password(&self) -> Result<Option<SecretString>, ConfigError> {
        let imap = &self.bounces.imap;
        secret::resolve("bounces.imap.password", imap.password.as_ref(), &imap.password_file)
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

    /// Builds the links of every email from [`Settings::base_url`] and the link signing keys.
    pub fn link_builder(&self) -> Result<LinkBuilder, ConfigError> {
        LinkBuilder::new(&self.base_url(), self.link_keys()?)
            .map_err(|e| ConfigError::new(format!("http.base_url: {e}")))
    }

    /// The public base URL of links: `http.base_url`, or when it is empty `http://HOST:PORT` of `http.bind` (a
    /// wildcard address becomes the loopback address of its family). A `bind` that is not an address is left
    /// for `serve` to report; links then use it as it is.
    pub fn base_url(&self) -> String {
        let configured = self.http.base_url.trim();
        if !configured.is_empty() {
            return configured.to_owned();
        }
        match self.http.bind.trim().parse::<std::net::SocketAddr>() {
            Ok(address) => local_url(address),
            Err(_) => format!("http://{}", self.http.bind.trim()),
        }
    }
}

/// `http://HOST:PORT` for a listening address, with a wildcard address replaced by loopback.
pub fn local_url(address: std::net::SocketAddr) -> String {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    let ip = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", std::net::SocketAddr::new(ip, address.port()))
}

impl Settings {
    /// The DKIM private key (PEM) from the environment or its 0600 file; `None` when neither is set.
    pub fn dkim_private_key(&self) -> Result<Option<SecretString>, ConfigError> {
        secret::resolve("dkim.private_key", self.dkim.private_key.as_ref(), &self.dkim.key_file)
    }

    /// `[bounces] address`, checked; `None` when it is empty (signed return paths are off).
    pub fn bounce_address(&self) -> Result<Option<BounceAddress>, ConfigError> {
        let address = self.bounces.address.trim();
        if address.is_empty() {
            return Ok(None);
        }
        BounceAddress::parse(address)
            .map(Some)
            .map_err(|e| ConfigError::new(format!("bounces.address: `{address}` is not usable: {e}")))
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
