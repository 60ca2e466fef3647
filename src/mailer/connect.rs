//! Opening one SMTP connection: TCP with TCP_NODELAY, implicit TLS or STARTTLS, EHLO, and AUTH.
//!
//! This file owns the setup of a connection and its TLS configuration; `smtp.rs` owns what is sent over it. We
//! open the socket ourselves because lettre never sets TCP_NODELAY, and Nagle's algorithm then holds the final
//! dot back until the server's delayed ACK: 20 to 50 messages a second instead of thousands. A connection that
//! fails anywhere here is dropped, never reused: after a failed STARTTLS lettre's connection is in a state
//! where the next write panics in debug builds. This file never sends in plaintext what `smtp.tls` forbids.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::ExposeSecret;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

use super::SendOutcome;
use super::classify::{Stage, classify_failure};
use super::smtp::{SmtpConfig, SmtpTls};
use super::transaction::step;

/// The mechanisms we speak: PLAIN takes one round trip, LOGIN is for servers that offer nothing else. Both send
/// the password as it is, which is why AUTH only happens over TLS or to a loopback host.
const MECHANISMS: [Mechanism; 2] = [Mechanism::Plain, Mechanism::Login];

/// How a connection is secured, prepared once per sender (loading the root certificates is not free).
pub(crate) enum TlsSetup {
    /// STARTTLS after the first EHLO, refusing to go on without it.
    Starttls(TlsParameters),
    /// TLS from the first byte (port 465).
    Implicit { connector: TlsConnector, server_name: ServerName<'static> },
    /// Plaintext, to a loopback host only (checked by `SmtpSender::new`).
    Plain,
}

impl TlsSetup {
    /// Prepares the TLS configuration for `host`, verified against the Mozilla roots (webpki-roots), as lettre's
    /// own rustls setup does, plus the certificates of `smtp.ca_file` when one is named (a private CA).
    pub(crate) fn new(mode: SmtpTls, host: &str, ca_file: Option<&Path>) -> Result<Self, String> {
        let invalid = |e: &dyn std::fmt::Display| format!("smtp.host: `{host}` cannot be used for TLS: {e}");
        let extra = match (mode, ca_file) {
            (SmtpTls::None, _) | (_, None) => Vec::new(),
            (_, Some(path)) => ca_certificates(path)?,
        };
        match mode {
            SmtpTls::None => Ok(Self::Plain),
            SmtpTls::Required => {
                let mut builder = TlsParameters::builder(host.to_owned());
                for cert in &extra {
                    let cert = Certificate::from_der(cert.to_vec()).map_err(|e| invalid(&e))?;
                    builder = builder.add_root_certificate(cert);
                }
                Ok(Self::Starttls(builder.build_rustls().map_err(|e| invalid(&e))?))
            }
            SmtpTls::Wrapper => {
                let provider = rustls::crypto::CryptoProvider::get_default()
                    .cloned()
                    .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
                let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
                for cert in extra {
                    roots.add(cert).map_err(|e| format!("smtp.ca_file: a certificate is unusable: {e}"))?;
                }
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| invalid(&e))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                let server_name = ServerName::try_from(host.to_owned()).map_err(|e| invalid(&e))?;
                Ok(Self::Implicit { connector: TlsConnector::from(Arc::new(config)), server_name })
            }
        }
    }
}

/// The certificates of a PEM file, at least one.
fn ca_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let pem = std::fs::read(path).map_err(|e| format!("smtp.ca_file: cannot read {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("smtp.ca_file: {shown}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("smtp.ca_file: {shown} holds no PEM certificate"));
    }
    Ok(certs)
}

/// An open connection, and whether its relay takes pipelined commands (RFC 2920).
pub(crate) struct Opened {
    pub connection: Box<AsyncSmtpConnection>,
    pub pipelining: bool,
}

/// Opens, secures and authenticates one connection for sending, and learns whether the relay offers
/// PIPELINING; a failure is already classified.
pub(crate) async fn open(config: &SmtpConfig, tls: &TlsSetup, hello: &ClientId) -> Result<Opened, SendOutcome> {
    let mut pipelining = false;
    let connection = open_traced(config, tls, hello, &mut Stage::Connect, Some(&mut pipelining)).await?;
    Ok(Opened { connection, pipelining })
}

/// Says EHLO once more and reads the extensions lettre does not keep: lettre's `ServerInfo` drops PIPELINING.
/// Said before AUTH (a new EHLO resets only the transaction, RFC 5321 4.1.4), so the session is as lettre left it.
async fn offers_pipelining(
    connection: &mut AsyncSmtpConnection,
    hello: &ClientId,
    limit: std::time::Duration,
) -> Result<bool, SendOutcome> {
    let response =
        step(Stage::Hello, limit, connection.command(Ehlo::new(hello.clone()))).await.map_err(|f| f.outcome)?;
    Ok(response
        .message()
        .skip(1)
        .any(|line| line.split_whitespace().next().is_some_and(|keyword| keyword.eq_ignore_ascii_case("PIPELINING"))))
}

/// [`open`], keeping in `stage` the step it reached, so a failure can be told apart by where it happened
/// (`tidings doctor` reports reachability, TLS and AUTH separately).
pub(crate) async fn open_traced(
    config: &SmtpConfig,
    tls: &TlsSetup,
    hello: &ClientId,
    stage: &mut Stage,
    pipelining: Option<&mut bool>,
) -> Result<Box<AsyncSmtpConnection>, SendOutcome> {
    let relay = format!("{}:{}", config.host, config.port);
    *stage = Stage::Connect;
    let stream = tcp(config, &relay).await?;
    if matches!(tls, TlsSetup::Implicit { .. }) {
        *stage = Stage::Tls;
    }
    let stream: Box<dyn AsyncTokioStream> = match tls {
        TlsSetup::Implicit { connector, server_name } => {
            match timeout(config.connect_timeout, connector.connect(server_name.clone(), stream)).await {
                Ok(Ok(stream)) => Box::new(ImplicitTls(stream)),
                Ok(Err(e)) => return Err(classify_failure(Stage::Tls, &format!("{relay}: {e}"))),
                Err(_) => {
                    let what = format!("{relay}: no TLS handshake within {:?}", config.connect_timeout);
                    return Err(classify_failure(Stage::Tls, &what));
                }
            }
        }
        TlsSetup::Starttls(_) | TlsSetup::Plain => Box::new(stream),
    };
    let limit = config.command_timeout;
    *stage = Stage::Hello;
    let mut connection = step(Stage::Hello, limit, AsyncSmtpConnection::connect_with_transport(stream, hello))
        .await
        .map_err(|f| f.outcome)?;
    if let TlsSetup::Starttls(parameters) = tls {
        *stage = Stage::Tls;
        if !connection.can_starttls() {
            // Nothing but EHLO was said, so a polite QUIT gives nothing away.
            let _ = timeout(limit, connection.quit()).await;
            let reason = format!("smtp.tls is \"required\" but {relay} does not offer STARTTLS; nothing was sent");
            return Err(SendOutcome::Fatal { reason });
        }
        step(Stage::Tls, limit, connection.starttls(parameters.clone(), hello)).await.map_err(|f| f.outcome)?;
    }
    if let Some(pipelining) = pipelining {
        *stage = Stage::Hello;
        *pipelining = offers_pipelining(&mut connection, hello, limit).await?;
    }
    *stage = Stage::Auth;
    authenticate(&mut connection, config, &relay).await?;
    tracing::debug!(%relay, encrypted = !matches!(tls, TlsSetup::Plain), "connected to the relay");
    Ok(Box::new(connection))
}

/// The TCP connection, with TCP_NODELAY set.
async fn tcp(config: &SmtpConfig, relay: &str) -> Result<TcpStream, SendOutcome> {
    let stream = match timeout(config.connect_timeout, TcpStream::connect((config.host.as_str(), config.port))).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Err(classify_failure(Stage::Connect, &format!("{relay}: {e}"))),
        Err(_) => {
            let what = format!("{relay}: no connection within {:?}", config.connect_timeout);
            return Err(classify_failure(Stage::Connect, &what));
        }
    };
    stream.set_nodelay(true).map_err(|e| classify_failure(Stage::Connect, &format!("{relay}: TCP_NODELAY: {e}")))?;
    Ok(stream)
}

/// AUTH, when a username is configured. A relay that offers no mechanism we speak is a configuration problem.
async fn authenticate(
    connection: &mut AsyncSmtpConnection,
    config: &SmtpConfig,
    relay: &str,
) -> Result<(), SendOutcome> {
    let (Some(username), Some(password)) = (&config.username, &config.password) else { return Ok(()) };
    let limit = config.command_timeout;
    if connection.server_info().get_auth_mechanism(&MECHANISMS).is_none() {
        let _ = timeout(limit, connection.quit()).await;
        let reason = format!("smtp.username is set but {relay} offers neither AUTH PLAIN nor AUTH LOGIN");
        return Err(SendOutcome::Fatal { reason });
    }
    // The credentials live only as long as this call; lettre's `Credentials` has no Debug output.
    let credentials = Credentials::new(username.clone(), password.expose_secret().to_owned());
    step(Stage::Auth, limit, connection.auth(&MECHANISMS, &credentials)).await.map_err(|f| f.outcome)?;
    Ok(())
}

/// A TLS stream that lettre can drive as if it were a plain socket: lettre only wraps streams it opened
/// itself in TLS, and then without TCP_NODELAY.
#[derive(Debug)]
struct ImplicitTls(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for ImplicitTls {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ImplicitTls {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl AsyncTokioStream for ImplicitTls {
    fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
