//! The signing certificate: its RSA public key read from PEM (x509-cert), the signature checked against it (rsa,
//! PKCS#1 v1.5 with SHA-1 or SHA-256), and a small cache of keys by certificate URL.
//!
//! Pure but for the cache's lock: no I/O, no clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use rsa::pkcs8::DecodePublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use x509_cert::Certificate;
use x509_cert::der::{DecodePem, Encode};

use super::SnsError;
use super::message::SignatureVersion;

/// The RSA public key of the first certificate in `pem`.
pub(crate) fn signing_key(pem: &[u8]) -> Result<RsaPublicKey, SnsError> {
    let certificate = Certificate::from_pem(pem).map_err(|e| SnsError::Certificate(e.to_string()))?;
    let spki = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| SnsError::Certificate(e.to_string()))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| SnsError::NotRsa)
}

/// Whether `signature` is `key`'s signature over `signed`, made as `version` says.
pub(crate) fn check(
    key: &RsaPublicKey,
    version: SignatureVersion,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), SnsError> {
    use sha1::Digest as _;
    let verified = match version {
        SignatureVersion::Sha1WithRsa => {
            key.verify(Pkcs1v15Sign::new::<sha1::Sha1>(), &sha1::Sha1::digest(signed), signature)
        }
        SignatureVersion::Sha256WithRsa => {
            key.verify(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), &rsa::sha2::Sha256::digest(signed), signature)
        }
    };
    verified.map_err(|_| SnsError::SignatureMismatch)
}

/// Keys by certificate URL, the most recently added kept, `capacity` at most (the oldest goes first).
pub(crate) struct KeyCache<K = RsaPublicKey> {
    entries: Mutex<VecDeque<(String, Arc<K>)>>,
    capacity: usize,
}

impl<K> KeyCache<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self { entries: Mutex::new(VecDeque::with_capacity(capacity)), capacity: capacity.max(1) }
    }

    pub(crate) fn get(&self, url: &str) -> Option<Arc<K>> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.iter().find(|(u, _)| u == url).map(|(_, key)| Arc::clone(key))
    }

    pub(crate) fn insert(&self, url: &str, key: Arc<K>) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.retain(|(u, _)| u != url);
        if entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((url.to_owned(), key));
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_keeps_at_most_its_capacity_and_drops_the_oldest() {
        let key = Arc::new(7u32);
        let cache = KeyCache::new(2);
        cache.insert("a", Arc::clone(&key));
        cache.insert("b", Arc::clone(&key));
        cache.insert("c", Arc::clone(&key));
        assert_eq!(cache.len(), 2);
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some() && cache.get("c").is_some());
    }

    #[test]
    fn a_pem_that_is_no_certificate_is_refused_as_unreadable() {
        let err = signing_key(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").unwrap_err();
        assert!(matches!(err, SnsError::Certificate(_)), "{err}");
        assert!(matches!(signing_key(b"hello").unwrap_err(), SnsError::Certificate(_)));
    }
}
