//! DKIM signing (RFC 6376, RFC 8463) through lettre's signer, configured the one way independent verifiers
//! accept: relaxed/relaxed canonicalization over the headers that identify the message and its list, never
//! over Content-Type (signatures covering lettre's multipart Content-Type failed independent verification).
//!
//! This file owns reading the private key (RSA as PKCS#1 or PKCS#8 PEM; Ed25519 as PKCS#8 PEM or lettre's raw
//! base64 seed) and the DNS record that publishes its public half. It performs no I/O, and neither its errors
//! nor its `Debug` output contain key material.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use lettre::Message;
use lettre::message::dkim::{
    DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey,
};
use lettre::message::header::HeaderName;
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

/// The signed headers. Missing ones (Reply-To when none is configured) are signed as absent, so nobody can add
/// them later without breaking the signature.
const SIGNED_HEADERS: [&str; 11] = [
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "MIME-Version",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
];
/// RFC 8301: verifiers must not accept signatures with RSA keys shorter than 1024 bits.
const MIN_RSA_BITS: usize = 1024;
/// A PKCS#8 Ed25519 private key is this DER prefix followed by the 32-byte seed (RFC 8410).
const ED25519_PKCS8_PREFIX: [u8; 16] = [0x30, 0x2e, 2, 1, 0, 0x30, 5, 6, 3, 0x2b, 0x65, 0x70, 4, 0x22, 4, 0x20];
/// The object identifier of Ed25519 (1.3.101.112) as DER, to say what a mismatched key is.
const ED25519_OID: [u8; 5] = [6, 3, 0x2b, 0x65, 0x70];

/// The signing algorithm, as `dkim.algorithm` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    /// `rsa-sha256`: understood everywhere; use a 2048-bit key.
    RsaSha256,
    /// `ed25519-sha256` (RFC 8463): small keys, but not every receiver verifies it yet.
    Ed25519Sha256,
}

/// Why a DKIM signer cannot be made. The text names the setting and never shows the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DkimError {
    #[error("dkim.domain: `{0}` is not a domain name (use ASCII, or punycode for an international domain)")]
    Domain(String),
    #[error("dkim.selector: `{0}` is not a selector (letters, digits, hyphens, dots)")]
    Selector(String),
    #[error("dkim.private_key: {0}")]
    Key(String),
}

/// Signs messages for one domain and selector. `Debug` shows the domain, selector and algorithm only.
pub struct DkimSigner {
    config: DkimConfig,
    domain: String,
    selector: String,
    algorithm: DkimAlgorithm,
    /// The public key as the DNS record's `p=` value (base64).
    public_key: String,
}

impl fmt::Debug for DkimSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DkimSigner")
            .field("domain", &self.domain)
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

impl DkimSigner {
    /// Reads the private key and checks that it fits `algorithm`. RSA keys come as PKCS#1 (`BEGIN RSA PRIVATE
    /// KEY`) or PKCS#8 (`BEGIN PRIVATE KEY`, what `openssl genrsa` writes today) PEM; Ed25519 keys as PKCS#8 PEM
    /// (`openssl genpkey -algorithm ed25519`) or as the base64 of the 32-byte seed.
    pub fn new(
        domain: &str,
        selector: &str,
        algorithm: DkimAlgorithm,
        private_key_pem: &str,
    ) -> Result<Self, DkimError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        if !is_dns_name(&domain) || !domain.contains('.') {
            return Err(DkimError::Domain(domain));
        }
        let selector = selector.trim().to_owned();
        if !is_dns_name(&selector) {
            return Err(DkimError::Selector(selector));
        }
        let (key, public_key) = match algorithm {
            DkimAlgorithm::RsaSha256 => rsa_key(private_key_pem)?,
            DkimAlgorithm::Ed25519Sha256 => ed25519_key(private_key_pem)?,
        };
        let headers = SIGNED_HEADERS.iter().map(|name| HeaderName::new_from_ascii_str(name)).collect();
        let relaxed =
            DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
        let config = DkimConfig::new(selector.clone(), domain.clone(), key, headers, relaxed);
        Ok(Self { config, domain, selector, algorithm, public_key })
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    pub fn algorithm(&self) -> DkimAlgorithm {
        self.algorithm
    }

    /// Where the public key must be published: `<selector>._domainkey.<domain>`.
    pub fn dns_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The TXT record to publish at [`dns_name`](Self::dns_name), e.g. `v=DKIM1; k=rsa; p=MIIB...`.
    pub fn dns_record(&self) -> String {
        let kind = match self.algorithm {
            DkimAlgorithm::RsaSha256 => "rsa",
            DkimAlgorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={kind}; p={}", self.public_key)
    }

    /// Adds the DKIM-Signature header. Call it last: any header added afterwards may break the signature.
    pub(crate) fn sign(&self, message: &mut Message) {
        message.sign(&self.config);
    }
}

/// Letters, digits and hyphens in dot-separated labels, as DNS names and selectors are written.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The label of a PEM block (`RSA PRIVATE KEY`) and its decoded contents; `None` when the text is not PEM.
fn pem(text: &str) -> Option<Result<(&str, Vec<u8>), DkimError>> {
    let text = text.trim();
    let label = text.strip_prefix("-----BEGIN ")?.split_once("-----")?.0;
    let body: String = text.lines().filter(|line| !line.starts_with("-----")).map(str::trim).collect();
    Some(
        STANDARD
            .decode(body)
            .map(|der| (label, der))
            .map_err(|_| DkimError::Key(format!("the {label} PEM block is not valid base64"))),
    )
}

fn refuse_label(label: &str) -> DkimError {
    DkimError::Key(match label {
        "ENCRYPTED PRIVATE KEY" => "the key is encrypted; decrypt it first (`openssl pkey -in KEY -out PLAIN.pem`) \
                                    and keep the file at mode 0600"
            .to_owned(),
        label if label.contains("PUBLIC KEY") => "this is a public key; signing needs the private key".to_owned(),
        label => format!("a `{label}` PEM block is not a private key Tidings can read (use PKCS#8 or PKCS#1 PEM)"),
    })
}

/// Reads an RSA key; returns lettre's signing key and the DER public key in base64.
fn rsa_key(text: &str) -> Result<(DkimSigningKey, String), DkimError> {
    let invalid = |e: &dyn fmt::Display| DkimError::Key(format!("the RSA private key cannot be read: {e}"));
    let key = match pem(text) {
        None => return Err(DkimError::Key("the key is not PEM (-----BEGIN PRIVATE KEY-----)".to_owned())),
        Some(Err(e)) => return Err(e),
        Some(Ok(("RSA PRIVATE KEY", der))) => RsaPrivateKey::from_pkcs1_der(&der).map_err(|e| invalid(&e))?,
        Some(Ok(("PRIVATE KEY", der))) if der.windows(ED25519_OID.len()).any(|w| w == ED25519_OID) => {
            return Err(DkimError::Key("this is an Ed25519 key but dkim.algorithm is rsa-sha256".to_owned()));
        }
        Some(Ok(("PRIVATE KEY", der))) => RsaPrivateKey::from_pkcs8_der(&der).map_err(|e| invalid(&e))?,
        Some(Ok((label, _))) => return Err(refuse_label(label)),
    };
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(DkimError::Key(format!(
            "an RSA key of {bits} bits is too weak: receivers ignore it (use 2048 bits)"
        )));
    }
    // lettre reads PKCS#1 only, so a PKCS#8 key is handed over in that form.
    let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| invalid(&e))?;
    let signing = DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa).map_err(|e| invalid(&e))?;
    let public = RsaPublicKey::from(&key).to_public_key_der().map_err(|e| invalid(&e))?;
    Ok((signing, STANDARD.encode(public.as_bytes())))
}

/// Reads an Ed25519 key; returns lettre's signing key and the raw public key in base64 (RFC 8463).
fn ed25519_key(text: &str) -> Result<(DkimSigningKey, String), DkimError> {
    let seed: [u8; 32] = match pem(text) {
        Some(Err(e)) => return Err(e),
        Some(Ok(("PRIVATE KEY", der))) if der.len() == 48 && der.starts_with(&ED25519_PKCS8_PREFIX) => {
            der[16..].try_into().map_err(|_| DkimError::Key("the Ed25519 key has the wrong length".to_owned()))?
        }
        Some(Ok(("PRIVATE KEY" | "RSA PRIVATE KEY", _))) => {
            return Err(DkimError::Key(
                "this is not an Ed25519 key (an RSA key?) but dkim.algorithm is ed25519-sha256".to_owned(),
            ));
        }
        Some(Ok((label, _))) => return Err(refuse_label(label)),
        None => STANDARD.decode(text.trim()).ok().and_then(|raw| raw.try_into().ok()).ok_or_else(|| {
            DkimError::Key("the Ed25519 key is neither PKCS#8 PEM nor the base64 of a 32-byte seed".to_owned())
        })?,
    };
    let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key().to_bytes();
    let signing = DkimSigningKey::new(&STANDARD.encode(seed), DkimSigningAlgorithm::Ed25519)
        .map_err(|e| DkimError::Key(format!("the Ed25519 key cannot be read: {e}")))?;
    Ok((signing, STANDARD.encode(public)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ed25519 key from RFC 8032's first test vector, in PKCS#8 PEM.
    const ED25519_PEM: &str = "-----BEGIN PRIVATE KEY-----\n\
        MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n-----END PRIVATE KEY-----\n";

    #[test]
    fn an_ed25519_key_gives_the_public_key_of_its_test_vector() {
        let signer = DkimSigner::new("Example.COM.", "s1", DkimAlgorithm::Ed25519Sha256, ED25519_PEM).unwrap();
        // RFC 8032, test 1: the public key d75a9801...0f1a in base64.
        assert_eq!(signer.dns_record(), "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
        assert_eq!(signer.dns_name(), "s1._domainkey.example.com");
    }

    #[test]
    fn the_raw_base64_seed_lettre_uses_is_accepted_too() {
        let seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
        let signer = DkimSigner::new("example.com", "s1", DkimAlgorithm::Ed25519Sha256, seed).unwrap();
        assert!(signer.dns_record().ends_with("p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="));
    }

    #[test]
    fn a_key_of_the_other_algorithm_is_refused_by_name() {
        let error = DkimSigner::new("example.com", "s1", DkimAlgorithm::RsaSha256, ED25519_PEM).unwrap_err();
        assert!(error.to_string().contains("Ed25519 key but dkim.algorithm is rsa-sha256"), "{error}");
    }

    #[test]
    fn bad_keys_and_names_are_refused_without_showing_the_key() {
        let cases = [
            ("example.com", "s1", "not a key at all"),
            ("example.com", "s1", "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"),
            ("example.com", "s1", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            ("example.com", "s1", "-----BEGIN RSA PRIVATE KEY-----\nMIIBAAAA\n-----END RSA PRIVATE KEY-----"),
            ("not a domain", "s1", ED25519_PEM),
            ("example.com", "bad selector", ED25519_PEM),
        ];
        for (domain, selector, key) in cases {
            let error = DkimSigner::new(domain, selector, DkimAlgorithm::RsaSha256, key).unwrap_err().to_string();
            assert!(error.starts_with("dkim."), "{error}");
            assert!(!error.contains("AAAA") && !error.contains("MC4C"), "{error}");
        }
    }
}
