//! One SMTP connection's worth of sending: the `[smtp]` settings ([`SmtpConfig`], checked once) and
//! [`SmtpSender`], which owns one connection (opened lazily by `connect.rs`), runs one mail transaction per
//! message (`transaction.rs`), and decides whether the connection is kept, closed politely or dropped.
//!
//! The sender never refuses to try: every failure comes back as a classified [`SendOutcome`]. It reads no
//! clock (timeouts are durations handed to tokio) and never logs an address or a reply text.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::extension::ClientId;
use secrecy::SecretString;
use tracing::Instrument;

use super::classify::Stage;
use super::connect::{Opened, TlsSetup, open, open_traced};
use super::probe::{ProbeFailure, ProbeStep, RelayProbe};
use super::transaction::{Next, quit, transaction};
use super::{BuiltMessage, Gate, SendOutcome, delivery_part};

/// How the connection to the relay is secured (`smtp.tls`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, refusing to send anything in plaintext when the server does not offer it (port 587).
    Required,
    /// TLS from the first byte (port 465).
    Wrapper,
    /// Plaintext; allowed only to a loopback host (a local relay, a test server).
    None,
}

/// Where and how to connect; the `[smtp]` settings, checked by [`SmtpSender::new`]. `Debug` shows whether a
/// username and password are set, never what they are.
#[derive(Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// `None`: no authentication.
    pub username: Option<String>,
    pub password: Option<SecretString>,
    /// Limit for opening the TCP connection and for the TLS handshake of `Wrapper`.
    pub connect_timeout: Duration,
    /// Limit for each command's reply, including the reply to the final dot.
    pub command_timeout: Duration,
    /// The name given in EHLO; `None`: this machine's host name.
    pub hello_name: Option<String>,
    /// A PEM file of certificates trusted besides the Mozilla roots (a relay with a private CA); `None`: none.
    pub ca_file: Option<PathBuf>,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username.as_ref().map(|_| "<set>"))
            .field("password", &self.password.as_ref().map(|_| "<set>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("hello_name", &self.hello_name)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// An `[smtp]` setting that cannot work; the text names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SmtpConfigError(String);

/// One connection to the relay, owned by one task. Not `Clone`: two tasks must not share a conversation.
pub struct SmtpSender {
    config: SmtpConfig,
    tls: TlsSetup,
    hello: ClientId,
    /// The open connection (boxed inside: lettre's holds its TLS state inline, over a kilobyte), with what its
    /// relay offers.
    connection: Option<Opened>,
    /// Whether the relay takes 8-bit bodies (8BITMIME): assumed until a connection says otherwise.
    eight_bit: bool,
}

impl fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSender")
            .field("config", &self.config)
            .field("connected", &self.connection.is_some())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Checks the settings and prepares TLS; connects on the first [`send`](Self::send).
    pub fn new(mut config: SmtpConfig) -> Result<Self, SmtpConfigError> {
        let error = |message: String| Err(SmtpConfigError(message));
        config.host = config.host.trim().trim_start_matches('[').trim_end_matches(']').to_owned();
        let host = config.host.as_str();
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return error(format!("smtp.host: `{host}` is not a host name or address"));
        }
        if config.port == 0 {
            return error("smtp.port: 0 is not a port".to_owned());
        }
        if config.tls == SmtpTls::None && !is_loopback(host) {
            return error(format!(
                "smtp.tls = \"none\" would send mail and passwords in plaintext, so it is only allowed to a loopback \
                 host (127.0.0.0/8, ::1, localhost), not `{host}`: use \"required\" (STARTTLS, port 587) or \
                 \"wrapper\" (TLS, port 465)"
            ));
        }
        config.username = config.username.filter(|name| !name.trim().is_empty());
        match (&config.username, &config.password) {
            (Some(_), None) => return error("smtp.password: smtp.username is set but no password is".to_owned()),
            (None, Some(_)) => return error("smtp.username: a password is set but no username".to_owned()),
            _ => {}
        }
        for (key, value) in [("connect_timeout", config.connect_timeout), ("command_timeout", config.command_timeout)] {
            if value.is_zero() {
                return error(format!("smtp.{key} must be longer than zero"));
            }
        }
        let hello = match config.hello_name.as_deref().map(str::trim) {
            None => ClientId::default(),
            Some(name) if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                return error(format!("smtp.hello_name: `{name}` is not a host name"));
            }
            Some(name) => match name.parse::<IpAddr>() {
                Ok(IpAddr::V4(ip)) => ClientId::Ipv4(ip),
                Ok(IpAddr::V6(ip)) => ClientId::Ipv6(ip),
                Err(_) => ClientId::Domain(name.to_owned()),
            },
        };
        let tls = TlsSetup::new(config.tls, &config.host, config.ca_file.as_deref()).map_err(SmtpConfigError)?;
        Ok(Self { config, tls, hello, connection: None, eight_bit: true })
    }

    /// Sends one message, connecting first when needed. A connection the relay closed while it sat idle is
    /// replaced once, transparently; any other failure is the outcome.
    pub async fn send(&mut self, message: &BuiltMessage) -> SendOutcome {
        self.send_gated(message, &mut Gate::open()).await
    }

    /// Sends one message, awaiting `gate` after the relay's answer to DATA, just before the final dot.
    pub async fn send_gated(&mut self, message: &BuiltMessage, gate: &mut Gate<'_>) -> SendOutcome {
        let span = tracing::debug_span!("smtp_send", message = delivery_part(&message.message_id));
        self.send_unlogged(message, gate).instrument(span).await
    }

    async fn send_unlogged(&mut self, message: &BuiltMessage, gate: &mut Gate<'_>) -> SendOutcome {
        let limit = self.config.command_timeout;
        let (mut opened, reused) = match self.connection.take() {
            Some(opened) => (opened, true),
            None => match open(&self.config, &self.tls, &self.hello).await {
                Ok(opened) => (opened, false),
                Err(outcome) => return outcome,
            },
        };
        self.eight_bit = opened
            .connection
            .server_info()
            .supports_feature(lettre::transport::smtp::extension::Extension::EightBitMime);
        let mut attempt = transaction(&mut opened.connection, message, limit, gate, opened.pipelining).await;
        if reused && attempt.stale {
            // Relays close idle connections (Postfix says 421 after 300 s); nothing was sent, so try a fresh one.
            tracing::debug!("the relay had closed the kept connection; reconnecting");
            opened = match open(&self.config, &self.tls, &self.hello).await {
                Ok(opened) => opened,
                Err(outcome) => return outcome,
            };
            attempt = transaction(&mut opened.connection, message, limit, gate, opened.pipelining).await;
        }
        match attempt.next {
            Next::Keep => self.connection = Some(opened),
            Next::Quit => quit(opened.connection, limit).await,
            Next::Drop => {}
        }
        tracing::debug!(outcome = %attempt.outcome, "message handed over");
        attempt.outcome
    }

    /// Whether messages for this relay may carry 8-bit bodies (see [`crate::mailer::Outgoing::eight_bit`]).
    pub fn accepts_8bit(&self) -> bool {
        self.eight_bit
    }

    /// Opens a connection as sending would (TCP, EHLO, STARTTLS or TLS, AUTH), then QUIT: no message is sent.
    /// For `tidings doctor`.
    pub async fn probe(&mut self) -> Result<RelayProbe, ProbeFailure> {
        let mut stage = Stage::Connect;
        match open_traced(&self.config, &self.tls, &self.hello, &mut stage, None).await {
            Ok(connection) => {
                quit(connection, self.config.command_timeout).await;
                let encrypted = !matches!(self.tls, TlsSetup::Plain);
                Ok(RelayProbe { encrypted, authenticated: self.config.username.is_some() })
            }
            Err(outcome) => Err(ProbeFailure { step: ProbeStep::from_stage(stage), outcome }),
        }
    }

    /// Ends the conversation politely (QUIT), if there is one.
    pub async fn close(&mut self) {
        if let Some(opened) = self.connection.take() {
            quit(opened.connection, self.config.command_timeout).await;
        }
    }
}

/// Whether `host` is a loopback address or `localhost`, decided without DNS (a name could resolve anywhere).
fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4: Ipv4Addr| v4.is_loopback()),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(host: &str, tls: SmtpTls) -> SmtpConfig {
        SmtpConfig {
            host: host.to_owned(),
            port: 2525,
            tls,
            username: None,
            password: None,
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(5),
            hello_name: Some("tidings.test".to_owned()),
            ca_file: None,
        }
    }

    #[test]
    fn plaintext_is_allowed_to_loopback_hosts_only() {
        for host in ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST", "::ffff:127.0.0.1"] {
            assert!(SmtpSender::new(config(host, SmtpTls::None)).is_ok(), "{host}");
        }
        for host in ["10.0.0.1", "192.168.1.2", "mail.example.com", "localhost.example.com", "::2"] {
            let error = SmtpSender::new(config(host, SmtpTls::None)).unwrap_err().to_string();
            assert!(error.starts_with("smtp.tls = \"none\"") && error.contains(host), "{error}");
        }
    }

    #[test]
    fn half_set_credentials_are_refused_by_key() {
        let password = Some(SecretString::from("hunter2-hunter2".to_owned()));
        let no_user = SmtpConfig { password: password.clone(), ..config("127.0.0.1", SmtpTls::None) };
        assert!(SmtpSender::new(no_user).unwrap_err().to_string().starts_with("smtp.username"));
        let no_password = SmtpConfig { username: Some("user".into()), ..config("127.0.0.1", SmtpTls::None) };
        assert!(SmtpSender::new(no_password).unwrap_err().to_string().starts_with("smtp.password"));
        let both =
            SmtpConfig { username: Some("user".into()), password, ..config("mail.example.com", SmtpTls::Wrapper) };
        let sender = SmtpSender::new(both).unwrap();
        assert!(!format!("{sender:?}").contains("hunter2"));
    }
}
