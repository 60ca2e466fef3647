//! Link tokens: signed, per-subscriber, per-purpose capabilities carried in the URLs of every email.
//!
//! A token names a purpose, a list, a subscriber and (optionally) an issue, and carries an HMAC-SHA256 tag over
//! them made with one of the link signing keys. It holds ids only, never an email address. The key id travels in
//! the token so keys can rotate: new tokens use the newest key and tokens made with older keys still verify.
//! This module performs no I/O.
//!
//! Layout before base64url (no padding): `key id (1 byte) | purpose (1 byte) | list id | subscriber id |
//! issue id + 1 (0: none)`, the ids as LEB128 varints, then the first 16 bytes of the tag. A typical token is
//! about 32 characters.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the HMAC tag kept in a token: 128 bits, beyond any online guessing.
const TAG_LEN: usize = 16;
/// The shortest signing key accepted, in bytes.
pub const MIN_KEY_LEN: usize = 32;
/// Separates link tags from any other use of the same key.
const DOMAIN: &[u8] = b"tidings-link-v1\0";
/// No valid token is longer than this many characters; longer input is refused before decoding.
const MAX_TOKEN_CHARS: usize = 96;

/// What a link lets its holder do. The byte values are part of the token format: never renumber them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Unsubscribe = 1,
    Rate = 2,
    Open = 3,
    View = 4,
    Confirm = 5,
    Click = 6,
    /// A return path or trace header: names the delivery a bounce or complaint is about (`return_path.rs`).
    Bounce = 7,
}

impl Purpose {
    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => Self::Unsubscribe,
            2 => Self::Rate,
            3 => Self::Open,
            4 => Self::View,
            5 => Self::Confirm,
            6 => Self::Click,
            7 => Self::Bounce,
            _ => return None,
        })
    }
}

/// What a token says, once its signature has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkClaims {
    pub purpose: Purpose,
    pub list_id: i64,
    pub subscriber_id: i64,
    pub issue_id: Option<i64>,
}

/// Why a token was refused. The web answers every variant with the same 404, so a prober learns nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not well formed")]
    Malformed,
    #[error("the token was signed with a key that is not configured")]
    UnknownKey,
    #[error("the token's signature does not match")]
    BadSignature,
    #[error("the token was made for another purpose")]
    WrongPurpose,
}

/// Why a signing key specification was refused. Never includes key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySpecError {
    #[error("no link signing key is set")]
    Missing,
    #[error("entry {0} is not of the form ID:SECRET (ID a number from 1 to 255)")]
    BadEntry(usize),
    #[error("key {0} is shorter than {MIN_KEY_LEN} bytes; generate one with `openssl rand -base64 32`")]
    TooShort(u8),
    #[error("key id {0} appears twice")]
    DuplicateId(u8),
}

/// The link signing keys, newest first. `Debug` shows the key ids only.
#[derive(Clone)]
pub struct LinkKeys {
    /// (key id, keyed HMAC state with the domain prefix already absorbed); the first signs new tokens.
    keys: Vec<(u8, HmacSha256)>,
}

impl LinkKeys {
    /// Parses `ID:SECRET` entries separated by whitespace or commas, newest first, e.g. `2:... 1:...`.
    pub fn parse(spec: &str) -> Result<Self, KeySpecError> {
        let mut keys: Vec<(u8, HmacSha256)> = Vec::new();
        let entries = spec.split(|c: char| c.is_whitespace() || c == ',').filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let (id, secret) = entry.split_once(':').ok_or(KeySpecError::BadEntry(index + 1))?;
            let id: u8 = id.parse().ok().filter(|id| *id > 0).ok_or(KeySpecError::BadEntry(index + 1))?;
            if secret.len() < MIN_KEY_LEN {
                return Err(KeySpecError::TooShort(id));
            }
            if keys.iter().any(|(known, _)| *known == id) {
                return Err(KeySpecError::DuplicateId(id));
            }
            keys.push((id, keyed_state(secret.as_bytes())));
        }
        if keys.is_empty() {
            return Err(KeySpecError::Missing);
        }
        Ok(Self { keys })
    }

    /// The id of the key that signs new tokens.
    pub fn current_key_id(&self) -> u8 {
        self.keys[0].0
    }

    /// Makes a token for `claims` with the newest key.
    pub fn sign(&self, claims: &LinkClaims) -> String {
        URL_SAFE_NO_PAD.encode(self.sign_bytes(claims))
    }

    /// The token's bytes before any text encoding: links use base64url, return paths a case-insensitive base32.
    pub(crate) fn sign_bytes(&self, claims: &LinkClaims) -> Vec<u8> {
        let (id, state) = &self.keys[0];
        let mut bytes = Vec::with_capacity(2 + 3 * 10 + TAG_LEN);
        bytes.push(*id);
        bytes.push(claims.purpose as u8);
        put_varint(&mut bytes, claims.list_id as u64);
        put_varint(&mut bytes, claims.subscriber_id as u64);
        put_varint(&mut bytes, claims.issue_id.map_or(0, |issue| (issue as u64).wrapping_add(1)));
        let mut mac = state.clone();
        mac.update(&bytes);
        let tag = mac.finalize().into_bytes();
        bytes.extend_from_slice(&tag[..TAG_LEN]);
        bytes
    }

    /// Checks a token's signature (in constant time) and its purpose, and returns what it says.
    pub fn verify(&self, token: &str, expected: Purpose) -> Result<LinkClaims, TokenError> {
        if token.len() > MAX_TOKEN_CHARS {
            return Err(TokenError::Malformed);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| TokenError::Malformed)?;
        self.verify_bytes(&bytes, expected)
    }

    /// `verify` on the token's bytes.
    pub(crate) fn verify_bytes(&self, bytes: &[u8], expected: Purpose) -> Result<LinkClaims, TokenError> {
        if bytes.len() < 2 + 3 + TAG_LEN {
            return Err(TokenError::Malformed);
        }
        let (payload, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let state = self.keys.iter().find(|(id, _)| *id == payload[0]).map(|(_, state)| state);
        let mut mac = state.ok_or(TokenError::UnknownKey)?.clone();
        mac.update(payload);
        mac.verify_truncated_left(tag).map_err(|_| TokenError::BadSignature)?;

        let purpose = Purpose::from_byte(payload[1]).ok_or(TokenError::Malformed)?;
        let mut rest = &payload[2..];
        let list_id = take_varint(&mut rest)? as i64;
        let subscriber_id = take_varint(&mut rest)? as i64;
        let issue = take_varint(&mut rest)?;
        if !rest.is_empty() {
            return Err(TokenError::Malformed);
        }
        if purpose != expected {
            return Err(TokenError::WrongPurpose);
        }
        let issue_id = issue.checked_sub(1).map(|issue| issue as i64);
        Ok(LinkClaims { purpose, list_id, subscriber_id, issue_id })
    }
}

impl fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<u8> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("LinkKeys").field("key_ids", &ids).field("secrets", &"<redacted>").finish()
    }
}

fn keyed_state(secret: &[u8]) -> HmacSha256 {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(DOMAIN);
    mac
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads one LEB128 varint in its shortest encoding; anything else is malformed.
fn take_varint(input: &mut &[u8]) -> Result<u64, TokenError> {
    let mut value: u64 = 0;
    for (index, byte) in input.iter().enumerate().take(10) {
        let bits = u64::from(byte & 0x7f);
        if index == 9 && bits > 1 {
            return Err(TokenError::Malformed);
        }
        value |= bits << (7 * index);
        if byte & 0x80 == 0 {
            if index > 0 && *byte == 0 {
                return Err(TokenError::Malformed);
            }
            *input = &input[index + 1..];
            return Ok(value);
        }
    }
    Err(TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &str = "2:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn claims(purpose: Purpose) -> LinkClaims {
        LinkClaims { purpose, list_id: 1, subscriber_id: 123_456, issue_id: Some(122) }
    }

    #[test]
    fn a_token_round_trips_and_is_short_and_url_safe() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        for issue_id in [None, Some(0), Some(122), Some(i64::MAX)] {
            let claims = LinkClaims { issue_id, ..claims(Purpose::Rate) };
            let token = keys.sign(&claims);
            assert_eq!(keys.verify(&token, Purpose::Rate), Ok(claims));
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
        }
        let token = keys.sign(&claims(Purpose::Unsubscribe));
        assert!(token.len() <= 40, "{} characters", token.len());
    }

    #[test]
    fn every_altered_character_is_rejected() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let token = keys.sign(&claims(Purpose::Unsubscribe));
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for position in 0..token.len() {
            for &replacement in alphabet {
                let mut altered = token.clone().into_bytes();
                if altered[position] == replacement {
                    continue;
                }
                altered[position] = replacement;
                let altered = String::from_utf8(altered).unwrap();
                assert!(keys.verify(&altered, Purpose::Unsubscribe).is_err(), "accepted {altered}");
            }
        }
    }

    #[test]
    fn every_altered_byte_is_rejected() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(keys.sign(&claims(Purpose::Rate))).unwrap();
        for position in 0..bytes.len() {
            for flip in 0..8 {
                let mut altered = bytes.clone();
                altered[position] ^= 1 << flip;
                let token = URL_SAFE_NO_PAD.encode(&altered);
                assert!(keys.verify(&token, Purpose::Rate).is_err(), "byte {position} bit {flip}");
            }
        }
    }

    #[test]
    fn truncated_extended_and_garbage_tokens_are_rejected() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let token = keys.sign(&claims(Purpose::Open));
        for cut in 0..token.len() {
            assert!(keys.verify(&token[..cut], Purpose::Open).is_err());
        }
        assert!(keys.verify(&format!("{token}A"), Purpose::Open).is_err());
        assert!(keys.verify("not a token!", Purpose::Open).is_err());
        assert!(keys.verify(&"A".repeat(10_000), Purpose::Open).is_err());
    }

    #[test]
    fn a_token_for_another_purpose_is_rejected() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let token = keys.sign(&claims(Purpose::Rate));
        assert_eq!(keys.verify(&token, Purpose::Unsubscribe), Err(TokenError::WrongPurpose));
        assert_eq!(keys.verify(&token, Purpose::Confirm), Err(TokenError::WrongPurpose));
    }

    #[test]
    fn a_token_from_another_key_is_rejected() {
        let a = LinkKeys::parse(KEY_A).unwrap();
        let other = LinkKeys::parse("1:cccccccccccccccccccccccccccccccccccccccc").unwrap();
        let token = other.sign(&claims(Purpose::View));
        assert_eq!(a.verify(&token, Purpose::View), Err(TokenError::BadSignature));
    }

    #[test]
    fn after_rotation_old_tokens_verify_and_new_tokens_use_the_newest_key() {
        let old = LinkKeys::parse(KEY_A).unwrap();
        let old_token = old.sign(&claims(Purpose::Unsubscribe));
        let rotated = LinkKeys::parse(&format!("{KEY_B} {KEY_A}")).unwrap();
        assert_eq!(rotated.current_key_id(), 2);
        assert_eq!(rotated.verify(&old_token, Purpose::Unsubscribe), Ok(claims(Purpose::Unsubscribe)));
        let new_token = rotated.sign(&claims(Purpose::Unsubscribe));
        assert_eq!(URL_SAFE_NO_PAD.decode(&new_token).unwrap()[0], 2);
        assert_eq!(old.verify(&new_token, Purpose::Unsubscribe), Err(TokenError::UnknownKey));
        let retired = LinkKeys::parse(KEY_B).unwrap();
        assert_eq!(retired.verify(&old_token, Purpose::Unsubscribe), Err(TokenError::UnknownKey));
    }

    #[test]
    fn tokens_hold_no_email_address_and_differ_per_subscriber() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let a = keys.sign(&claims(Purpose::Rate));
        let b = keys.sign(&LinkClaims { subscriber_id: 123_457, ..claims(Purpose::Rate) });
        assert_ne!(a, b);
        let decoded = URL_SAFE_NO_PAD.decode(&a).unwrap();
        assert!(!decoded.contains(&b'@'));
    }

    #[test]
    fn bad_key_specifications_are_refused_without_showing_the_secret() {
        assert_eq!(LinkKeys::parse("  ").unwrap_err(), KeySpecError::Missing);
        assert_eq!(LinkKeys::parse("1:short").unwrap_err(), KeySpecError::TooShort(1));
        assert_eq!(LinkKeys::parse("nocolonhere").unwrap_err(), KeySpecError::BadEntry(1));
        assert_eq!(LinkKeys::parse(&format!("0:{}", "x".repeat(40))).unwrap_err(), KeySpecError::BadEntry(1));
        assert_eq!(LinkKeys::parse(&format!("{KEY_A},{KEY_A}")).unwrap_err(), KeySpecError::DuplicateId(1));
        let message = LinkKeys::parse("1:short-secret-value").unwrap_err().to_string();
        assert!(!message.contains("short-secret-value"));
        let debug = format!("{:?}", LinkKeys::parse(KEY_A).unwrap());
        assert!(!debug.contains("aaaa"), "{debug}");
    }
}
