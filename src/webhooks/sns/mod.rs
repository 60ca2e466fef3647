//! Amazon SNS over HTTPS: a POST body in, a verified [`SnsMessage`] out, or an [`SnsError`] naming what was wrong.
//!
//! [`SnsVerifier::verify`] reads the body (`message.rs`), checks the `TopicArn` against the configured list, checks
//! that `SigningCertURL` is https on an allowed host (`allow.rs`) before anything is fetched, takes the signing
//! key from the cache or fetches the certificate (`fetch.rs`: bounded size and time, TLS verified against the
//! Mozilla roots plus the configured extra roots) and checks the signature over the canonical string
//! (`cert.rs`). Only then does anyone read the `Message`. [`SnsVerifier::confirm_subscription`] visits the
//! `SubscribeURL` of a verified `SubscriptionConfirmation`, under the same host rule.
//!
//! No message content, token, subscribe URL or address is logged or shown by `Debug`.

mod allow;
mod cert;
mod fetch;
mod message;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

pub use allow::{HostPattern, UrlRefusal};
pub use fetch::FetchError;
pub use message::{SignatureVersion, SnsType};

use crate::configuration::{ConfigError, SesSettings};
use allow::allowed_url;
use cert::KeyCache;
use fetch::Fetcher;
use message::Envelope;

/// The largest signing certificate fetched, in bytes (AWS's are under 2 KiB).
pub const MAX_CERT_BYTES: usize = 16 * 1024;
/// The largest answer to a subscription confirmation read, in bytes (AWS answers with a short XML document).
pub const MAX_CONFIRM_BYTES: usize = 16 * 1024;
/// How long one fetch may take, connection and TLS included.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// How many signing keys are kept, by certificate URL (AWS rotates its certificate rarely).
pub const CACHE_ENTRIES: usize = 16;

/// Why a POST body was refused, or a subscription could not be confirmed. Each variant is one reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnsError {
    #[error("the body is not an SNS message: {0}")]
    Malformed(String),
    #[error("the SNS message Type `{0}` is not Notification, SubscriptionConfirmation or UnsubscribeConfirmation")]
    UnknownType(String),
    #[error("SignatureVersion `{0}` is not supported (1: SHA1withRSA, 2: SHA256withRSA)")]
    SignatureVersion(String),
    #[error("the Signature is not base64")]
    SignatureEncoding,
    #[error("TopicArn `{0}` is not one of webhooks.ses.topic_arns")]
    TopicNotAllowed(String),
    #[error("{field} is not a URL without credentials")]
    NotAUrl { field: &'static str },
    #[error("{field} is {scheme}, not https: refused without fetching it")]
    NotHttps { field: &'static str, scheme: String },
    #[error("{field} is on host `{host}`, which matches none of webhooks.ses.cert_hosts: refused without fetching it")]
    HostNotAllowed { field: &'static str, host: String },
    #[error("the signing certificate could not be fetched: {0}")]
    CertificateFetch(FetchError),
    #[error("the signing certificate is over the limit of {0} bytes")]
    CertificateTooLarge(usize),
    #[error("the signing certificate is unreadable: {0}")]
    Certificate(String),
    #[error("the signing certificate's key is not an RSA key")]
    NotRsa,
    #[error("the Signature does not match the message and the signing certificate")]
    SignatureMismatch,
    #[error("a {0} is not a SubscriptionConfirmation: nothing to confirm")]
    NotASubscription(&'static str),
    #[error("the subscription could not be confirmed: {0}")]
    Confirm(FetchError),
}

/// What a verifier allows and trusts. [`SnsConfig::from_settings`] builds it from `[webhooks.ses]`.
#[derive(Debug, Clone)]
pub struct SnsConfig {
    /// Hosts the signing certificate and the SubscribeURL may come from.
    pub cert_hosts: Vec<HostPattern>,
    /// Roots the certificate's HTTPS server is verified against (the Mozilla roots plus extra ones).
    pub trust_roots: rustls::RootCertStore,
    /// Topics accepted; empty: any.
    pub topic_arns: Vec<String>,
    pub max_cert_bytes: usize,
    pub timeout: Duration,
    /// How far a message's signed Timestamp may be from now (checked by `ses::receive`, which is given now).
    pub tolerance: jiff::SignedDuration,
}

impl SnsConfig {
    pub fn from_settings(ses: &SesSettings) -> Result<Self, ConfigError> {
        let cert_hosts = ses
            .cert_hosts
            .iter()
            .map(|p| HostPattern::parse(p).map_err(|e| ConfigError::new(format!("webhooks.ses.cert_hosts: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        if cert_hosts.is_empty() {
            return Err(ConfigError::new("webhooks.ses.cert_hosts: name at least one host pattern"));
        }
        let mut trust_roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        let file = ses.extra_roots_file.trim();
        if !file.is_empty() {
            add_roots(&mut trust_roots, file)?;
        }
        let topic_arns = ses.topic_arns.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
        if ses.tolerance.is_negative() || ses.tolerance.is_zero() {
            return Err(ConfigError::new("webhooks.ses.tolerance: must be more than 0"));
        }
        Ok(Self {
            cert_hosts,
            trust_roots,
            topic_arns,
            max_cert_bytes: MAX_CERT_BYTES,
            timeout: FETCH_TIMEOUT,
            tolerance: ses.tolerance,
        })
    }
}

/// Adds every certificate of the PEM file `file` to `roots`.
fn add_roots(roots: &mut rustls::RootCertStore, file: &str) -> Result<(), ConfigError> {
    let field = "webhooks.ses.extra_roots_file";
    let pem = std::fs::read(file).map_err(|e| ConfigError::new(format!("{field}: cannot read {file}: {e}")))?;
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| ConfigError::new(format!("{field}: {file}: {e}")))?;
        roots.add(cert).map_err(|e| ConfigError::new(format!("{field}: {file}: a certificate is unusable: {e}")))?;
        added += 1;
    }
    if added == 0 {
        return Err(ConfigError::new(format!("{field}: {file} holds no PEM certificate")));
    }
    Ok(())
}

/// A message whose signature verified. Built only by [`SnsVerifier::verify`].
#[derive(Clone)]
pub struct SnsMessage(Envelope);

impl SnsMessage {
    pub fn kind(&self) -> SnsType {
        self.0.kind
    }

    /// SNS's id of this message: the same when SNS retries it.
    pub fn message_id(&self) -> &str {
        &self.0.message_id
    }

    pub fn topic_arn(&self) -> &str {
        &self.0.topic_arn
    }

    /// The payload: for SES, the notification as JSON (read it with `webhooks::ses::read_notification`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    pub fn timestamp(&self) -> &str {
        &self.0.timestamp
    }

    pub fn subject(&self) -> Option<&str> {
        self.0.subject.as_deref()
    }
}

impl fmt::Debug for SnsMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnsMessage")
            .field("kind", &self.0.kind)
            .field("message_id", &self.0.message_id)
            .field("topic_arn", &self.0.topic_arn)
            .finish_non_exhaustive()
    }
}

/// Verifies SNS messages and confirms subscriptions. Cheap to share behind an `Arc`; the key cache is inside.
pub struct SnsVerifier {
    config: SnsConfig,
    fetcher: Fetcher,
    keys: KeyCache,
}

impl SnsVerifier {
    pub fn new(config: SnsConfig) -> Result<Self, ConfigError> {
        let fetcher = Fetcher::new(config.trust_roots.clone(), config.timeout, config.max_cert_bytes)
            .map_err(|e| ConfigError::new(format!("webhooks.ses: TLS client: {e}")))?;
        Ok(Self { config, fetcher, keys: KeyCache::new(CACHE_ENTRIES) })
    }

    /// Reads and verifies one POST body. Nothing is fetched unless the topic is accepted and the certificate
    /// URL is https on an allowed host; a key fetched once is reused for the same URL.
    pub async fn verify(&self, body: &[u8]) -> Result<SnsMessage, SnsError> {
        let envelope = Envelope::parse(body)?;
        if !self.config.topic_arns.is_empty() && !self.config.topic_arns.contains(&envelope.topic_arn) {
            return Err(SnsError::TopicNotAllowed(envelope.topic_arn.chars().take(256).collect()));
        }
        let key = self.signing_key(&envelope.signing_cert_url).await?;
        cert::check(&key, envelope.version, envelope.string_to_sign().as_bytes(), &envelope.signature)?;
        Ok(SnsMessage(envelope))
    }

    /// Confirms a verified `SubscriptionConfirmation` by visiting its `SubscribeURL` (https, allowed host).
    pub async fn confirm_subscription(&self, message: &SnsMessage) -> Result<(), SnsError> {
        if message.kind() != SnsType::SubscriptionConfirmation {
            return Err(SnsError::NotASubscription(message.kind().as_str()));
        }
        let url = message.0.subscribe_url.as_deref().unwrap_or_default();
        let url = self.allowed("SubscribeURL", url)?;
        let fetcher = self.fetcher.with_max_bytes(MAX_CONFIRM_BYTES);
        fetcher.get(&url).await.map_err(SnsError::Confirm)?;
        tracing::info!(topic = %message.topic_arn(), "SNS subscription confirmed");
        Ok(())
    }

    /// How many signing keys the cache holds.
    pub fn tolerance(&self) -> jiff::SignedDuration {
        self.config.tolerance
    }

    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }

    async fn signing_key(&self, cert_url: &str) -> Result<Arc<rsa::RsaPublicKey>, SnsError> {
        let url = self.allowed("SigningCertURL", cert_url)?;
        if let Some(key) = self.keys.get(url.as_str()) {
            return Ok(key);
        }
        let pem = self.fetcher.get(&url).await.map_err(|e| match e {
            FetchError::TooLarge(limit) => SnsError::CertificateTooLarge(limit),
            other => SnsError::CertificateFetch(other),
        })?;
        let key = Arc::new(cert::signing_key(&pem)?);
        self.keys.insert(url.as_str(), Arc::clone(&key));
        tracing::info!(host = url.host_str().unwrap_or_default(), "SNS signing certificate fetched and cached");
        Ok(key)
    }

    fn allowed(&self, field: &'static str, value: &str) -> Result<url::Url, SnsError> {
        allowed_url(value, &self.config.cert_hosts).map_err(|refusal| match refusal {
            UrlRefusal::NotAUrl => SnsError::NotAUrl { field },
            UrlRefusal::NotHttps(scheme) => SnsError::NotHttps { field, scheme },
            UrlRefusal::HostNotAllowed(host) => SnsError::HostNotAllowed { field, host },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(cert_hosts: &[&str], extra_roots_file: &str) -> SesSettings {
        SesSettings {
            enabled: true,
            cert_hosts: cert_hosts.iter().map(|h| h.to_string()).collect(),
            extra_roots_file: extra_roots_file.to_owned(),
            topic_arns: vec![" arn:aws:sns:eu-west-1:1:t ".to_owned(), String::new()],
            tolerance: jiff::SignedDuration::from_hours(1),
        }
    }

    #[test]
    fn the_default_settings_give_a_verifier_of_regional_sns_hosts() {
        let config = SnsConfig::from_settings(&settings(&["sns.*.amazonaws.com"], "")).unwrap();
        assert_eq!(config.topic_arns, ["arn:aws:sns:eu-west-1:1:t"]);
        assert!(SnsVerifier::new(config).is_ok());
    }

    #[test]
    fn each_bad_setting_is_refused_with_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here").unwrap();
        let empty = empty.display().to_string();
        let cases = [
            (settings(&[], ""), "webhooks.ses.cert_hosts: name at least one"),
            (settings(&["*.com"], ""), "webhooks.ses.cert_hosts: `*.com`"),
            (settings(&["localhost"], "/nonexistent/roots.pem"), "webhooks.ses.extra_roots_file: cannot read"),
            (settings(&["localhost"], &empty), "holds no PEM certificate"),
        ];
        for (settings, expected) in cases {
            let err = SnsConfig::from_settings(&settings).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }
}
