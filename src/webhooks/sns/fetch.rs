//! One HTTPS GET, bounded: the TLS server is verified against the Mozilla roots plus any configured extra
//! roots, redirects are not followed (a redirect could leave the allowed host), the body is cut off past a size
//! and the whole exchange past a timeout.
//!
//! Only `allow::allowed_url` decides which URLs reach this file. hyper speaks HTTP/1.1 over tokio-rustls; no
//! HTTP client with its own TLS stack is needed for one GET. The URL is never logged (a SubscribeURL carries a
//! confirmation token); only its host is.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::header::{CONTENT_LENGTH, HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tracing::Instrument;
use url::Url;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot connect to {host}: {reason}")]
    Connect { host: String, reason: String },
    #[error("TLS with {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("HTTP failed: {0}")]
    Http(String),
    #[error("the server answered {0}, not 200")]
    Status(u16),
    #[error("the body is over the limit of {0} bytes")]
    TooLarge(usize),
}

/// A bounded HTTPS client for single GETs.
#[derive(Clone)]
pub(crate) struct Fetcher {
    tls: TlsConnector,
    timeout: Duration,
    max_bytes: usize,
}

impl Fetcher {
    pub(crate) fn new(roots: rustls::RootCertStore, timeout: Duration, max_bytes: usize) -> Result<Self, String> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { tls: TlsConnector::from(Arc::new(config)), timeout, max_bytes })
    }

    /// The same client with another body limit.
    pub(crate) fn with_max_bytes(&self, max_bytes: usize) -> Self {
        Self { max_bytes, ..self.clone() }
    }

    /// The body of a 200 answer to `GET url`.
    pub(crate) async fn get(&self, url: &Url) -> Result<Bytes, FetchError> {
        let host = url.host_str().unwrap_or_default().to_owned();
        let span = tracing::info_span!("https_get", host = %host);
        tokio::time::timeout(self.timeout, self.exchange(url, host))
            .instrument(span)
            .await
            .map_err(|_| FetchError::Timeout(self.timeout))?
    }

    async fn exchange(&self, url: &Url, host: String) -> Result<Bytes, FetchError> {
        let port = url.port_or_known_default().unwrap_or(443);
        // url gives IPv6 hosts in brackets; the socket and the TLS name want them bare.
        let bare = host.trim_start_matches('[').trim_end_matches(']').to_owned();
        let tcp = TcpStream::connect((bare.as_str(), port))
            .await
            .map_err(|e| FetchError::Connect { host: host.clone(), reason: e.to_string() })?;
        let name =
            ServerName::try_from(bare).map_err(|e| FetchError::Tls { host: host.clone(), reason: e.to_string() })?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| FetchError::Tls { host: host.clone(), reason: e.to_string() })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| FetchError::Http(e.to_string()))?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.clone(),
        };
        let path = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let request = Request::get(path)
            .header(HOST, authority)
            .header(USER_AGENT, concat!("tidings/", env!("CARGO_PKG_VERSION")))
            .body(Empty::<Bytes>::new())
            .map_err(|e| FetchError::Http(e.to_string()))?;
        // The connection is driven here, beside the exchange, not in a task of its own: when the caller's timeout
        // drops this future, the socket goes with it.
        let exchange = async { self.read(sender.send_request(request).await).await };
        tokio::pin!(connection);
        tokio::select! {
            result = exchange => result,
            Err(e) = &mut connection => Err(FetchError::Http(e.to_string())),
        }
    }

    async fn read(
        &self,
        response: Result<hyper::Response<hyper::body::Incoming>, hyper::Error>,
    ) -> Result<Bytes, FetchError> {
        let response = response.map_err(|e| FetchError::Http(e.to_string()))?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let declared = response.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.max_bytes as u64) {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let body = Limited::new(response.into_body(), self.max_bytes).collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                FetchError::TooLarge(self.max_bytes)
            } else {
                FetchError::Http(e.to_string())
            }
        })?;
        Ok(body.to_bytes())
    }
}
