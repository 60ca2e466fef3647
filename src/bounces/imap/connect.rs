//! Opening an authenticated IMAP session for `[bounces.imap]`: TCP, then TLS from the first byte (`wrapper`)
//! or after STARTTLS (`starttls`), verified against the Mozilla roots (webpki-roots) plus an optional CA file,
//! or plaintext to a loopback host only (`none`); then LOGIN.
//!
//! The password goes only to LOGIN, only over TLS or to a loopback host, and never into a log line or an error
//! (the async-imap crate's own trace output, which would show it, is switched off in `telemetry`).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

use crate::configuration::{ConfigError, ImapTls, Settings};

/// The connection under a session: plain TCP (loopback only) or TLS.
pub(crate) type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;
/// A logged-in IMAP session.
pub(crate) type Session = async_imap::Session<Stream>;

/// What it takes to open a session, checked once at startup.
#[derive(Clone)]
pub(crate) struct Connector {
    host: String,
    port: u16,
    mode: ImapTls,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    username: String,
    password: SecretString,
    timeout: Duration,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Connector {
    /// Checks `[bounces.imap]`'s connection settings: every error names its key.
    pub(crate) fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let imap = &settings.bounces.imap;
        let host = imap.host.trim().to_owned();
        if imap.port == 0 {
            return Err(ConfigError::new("bounces.imap.port: 0 is not a port"));
        }
        if imap.tls == ImapTls::None && !is_loopback(&host) {
            return Err(ConfigError::new(format!(
                "bounces.imap.tls: \"none\" would send the password in plaintext, so it is only allowed to a loopback \
                 host, not `{host}`; use \"wrapper\" (port 993) or \"starttls\" (port 143)"
            )));
        }
        if imap.username.trim().is_empty() {
            return Err(ConfigError::new("bounces.imap.username: the mailbox's login name is missing"));
        }
        let Some(password) = settings.imap_password()? else {
            return Err(ConfigError::new(
                "bounces.imap.password: no password is set; set TIDINGS_BOUNCES__IMAP__PASSWORD or name a 0600 file \
                 in bounces.imap.password_file",
            ));
        };
        let tls = match imap.tls {
            ImapTls::None => None,
            ImapTls::Wrapper | ImapTls::Starttls => Some(tls_connector(&host, imap.ca_file.trim())?),
        };
        let timeout = Duration::try_from(imap.timeout)
            .ok()
            .filter(|t| !t.is_zero())
            .ok_or_else(|| ConfigError::new("bounces.imap.timeout: must be a positive duration"))?;
        Ok(Self { host, port: imap.port, mode: imap.tls, tls, username: imap.username.clone(), password, timeout })
    }

    /// `host:port`, for log lines.
    pub(crate) fn server(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// `host:port/username`: names the mailbox's account in the cursor table (never logged).
    pub(crate) fn account(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.username)
    }

    /// Connects, secures the connection and logs in; every error names the server.
    pub(crate) async fn open(&self) -> anyhow::Result<Session> {
        self.connect_and_log_in().await.with_context(|| format!("IMAP server {}", self.server()))
    }

    async fn connect_and_log_in(&self) -> anyhow::Result<Session> {
        let address = self.server();
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(&address))
            .await
            .map_err(|_| anyhow!("connecting to {address} timed out"))?
            .with_context(|| format!("cannot connect to {address}"))?;
        let stream = match (&self.tls, self.mode) {
            (None, _) => Either::Left(tcp),
            (Some((connector, name)), ImapTls::Wrapper) => Either::Right(self.handshake(connector, name, tcp).await?),
            (Some((connector, name)), _) => {
                let mut client = async_imap::Client::new(tcp);
                self.greeting(&mut client).await?;
                self.within(client.run_command_and_check_ok("STARTTLS", None))
                    .await?
                    .context("the server refused STARTTLS")?;
                Either::Right(self.handshake(connector, name, client.into_inner()).await?)
            }
        };
        let mut client = async_imap::Client::new(stream);
        if self.mode != ImapTls::Starttls {
            self.greeting(&mut client).await?;
        }
        let login = client.login(&self.username, self.password.expose_secret());
        match self.within(login).await? {
            Ok(session) => Ok(session),
            // The server's words only: the error never carries the password.
            Err((e, _)) => bail!("the IMAP server refused the login of bounces.imap.username: {e}"),
        }
    }

    async fn greeting<T>(&self, client: &mut async_imap::Client<T>) -> anyhow::Result<()>
    where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
    {
        match self.within(client.read_response()).await? {
            Ok(Some(_)) => Ok(()),
            Ok(None) => bail!("the IMAP server closed the connection before its greeting"),
            Err(e) => Err(e).context("cannot read the IMAP server's greeting"),
        }
    }

    async fn handshake(
        &self,
        connector: &TlsConnector,
        name: &ServerName<'static>,
        tcp: TcpStream,
    ) -> anyhow::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        self.within(connector.connect(name.clone(), tcp))
            .await?
            .context("the TLS handshake with the IMAP server failed")
    }

    /// Runs `future` within the command timeout.
    pub(crate) async fn within<F: std::future::Future>(&self, future: F) -> anyhow::Result<F::Output> {
        tokio::time::timeout(self.timeout, future)
            .await
            .map_err(|_| anyhow!("the IMAP server did not answer within {:?}", self.timeout))
    }
}

/// The TLS client for `host`: the Mozilla roots, plus the certificates of `ca_file` when one is named.
fn tls_connector(host: &str, ca_file: &str) -> Result<(TlsConnector, ServerName<'static>), ConfigError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if !ca_file.is_empty() {
        let pem = std::fs::read(ca_file)
            .map_err(|e| ConfigError::new(format!("bounces.imap.ca_file: cannot read {ca_file}: {e}")))?;
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ConfigError::new(format!("bounces.imap.ca_file: {ca_file}: {e}")))?;
            roots.add(cert).map_err(|e| {
                ConfigError::new(format!("bounces.imap.ca_file: {ca_file}: a certificate is unusable: {e}"))
            })?;
            added += 1;
        }
        if added == 0 {
            return Err(ConfigError::new(format!("bounces.imap.ca_file: {ca_file} holds no PEM certificate")));
        }
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let invalid = |e: &dyn std::fmt::Display| ConfigError::new(format!("bounces.imap.host: `{host}`: {e}"));
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(&e))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// Whether `host` is a loopback address or `localhost`, decided without DNS (a name could resolve anywhere).
fn is_loopback(host: &str) -> bool {
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4: Ipv4Addr| v4.is_loopback()),
        Err(_) => host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost."),
    }
}
