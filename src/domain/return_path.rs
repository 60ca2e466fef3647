//! Signed return paths (VERP) and trace values: how a bounce or a complaint that arrives days later maps back to
//! exactly the message it is about.
//!
//! Every message's envelope sender is `<local>+<token>@<bounce domain>`, built from `[bounces] address`, and the
//! same token travels in the message's `X-Tidings-Ref` header. The token is a link token of purpose `Bounce`
//! (signed with the link keys, so key rotation applies) written in lowercase base32 with the extended-hex
//! alphabet: mail systems may change the case of a local part, and this encoding reads back the same either way.
//! A forged or altered token, or an address of another domain, maps to nothing.
//! This module performs no I/O.

use std::fmt;

use data_encoding::BASE32_DNSSEC;

use super::token::{LinkClaims, LinkKeys, Purpose, TokenError};

/// The separator between the local part and the token, as in Postfix's `recipient_delimiter = +`.
pub const RETURN_PATH_DELIMITER: char = '+';
/// The longest local part accepted for `[bounces] address`: the token adds up to 44 characters, and RFC 5321
/// allows 64 in all.
pub const MAX_BOUNCE_LOCAL_LEN: usize = 19;
/// No valid token is longer than this many characters; longer input is refused before decoding.
const MAX_TOKEN_CHARS: usize = 80;

/// What a return path names: the kind of message it was on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnPathFor {
    /// An issue's delivery to one subscriber of a list.
    Delivery { list_id: i64, subscriber_id: i64, issue_id: i64 },
    /// A test send of an issue (to an address that is nobody's subscription).
    TestSend { list_id: i64, issue_id: i64 },
    /// A double opt-in confirmation email to a (pending) subscriber of a list.
    Confirmation { list_id: i64, subscriber_id: i64 },
    /// A notice to the admin (an empty weekly queue).
    Notice,
}

impl ReturnPathFor {
    fn claims(self) -> LinkClaims {
        let (list_id, subscriber_id, issue_id) = match self {
            Self::Delivery { list_id, subscriber_id, issue_id } => (list_id, subscriber_id, Some(issue_id)),
            Self::TestSend { list_id, issue_id } => (list_id, 0, Some(issue_id)),
            Self::Confirmation { list_id, subscriber_id } => (list_id, subscriber_id, None),
            Self::Notice => (0, 0, None),
        };
        LinkClaims { purpose: Purpose::Bounce, list_id, subscriber_id, issue_id }
    }

    fn from_claims(claims: LinkClaims) -> Self {
        match (claims.list_id, claims.subscriber_id, claims.issue_id) {
            (0, 0, None) => Self::Notice,
            (list_id, 0, Some(issue_id)) => Self::TestSend { list_id, issue_id },
            (list_id, subscriber_id, Some(issue_id)) => Self::Delivery { list_id, subscriber_id, issue_id },
            (list_id, subscriber_id, None) => Self::Confirmation { list_id, subscriber_id },
        }
    }
}

/// Why an address or a trace value maps to nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReturnPathError {
    #[error("the address is not of the bounce domain or has no signed token")]
    NotOurs,
    #[error("the return-path token is not valid: {0}")]
    Token(#[from] TokenError),
}

/// Why `[bounces] address` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BounceAddressError {
    #[error("it is not of the form local@domain")]
    Form,
    #[error("its local part must be 1 to {MAX_BOUNCE_LOCAL_LEN} letters, digits, '.', '-' or '_' (no '+')")]
    Local,
    #[error("its domain is not a valid domain name")]
    Domain,
}

/// `[bounces] address`, split and checked: the base every return path is built on. `Debug` shows it: it is the
/// operator's own address, not a person's.
#[derive(Clone, PartialEq, Eq)]
pub struct BounceAddress {
    local: String,
    domain: String,
}

impl BounceAddress {
    pub fn parse(address: &str) -> Result<Self, BounceAddressError> {
        let (local, domain) = address.trim().rsplit_once('@').ok_or(BounceAddressError::Form)?;
        let local_ok = !local.is_empty()
            && local.len() <= MAX_BOUNCE_LOCAL_LEN
            && local.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        if !local_ok {
            return Err(BounceAddressError::Local);
        }
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            });
        if !domain_ok {
            return Err(BounceAddressError::Domain);
        }
        Ok(Self { local: local.to_ascii_lowercase(), domain: domain.to_ascii_lowercase() })
    }

    /// The plain address, e.g. `bounces@news.example.com` (also accepted by the listener as a recipient).
    pub fn plain(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The signed return path for a message, e.g. `bounces+0k2f...@news.example.com`.
    pub fn return_path(&self, keys: &LinkKeys, what: ReturnPathFor) -> String {
        self.with_trace(&trace_value(keys, what))
    }

    /// The return path that carries an already computed trace value.
    pub fn with_trace(&self, trace: &str) -> String {
        format!("{}{RETURN_PATH_DELIMITER}{trace}@{}", self.local, self.domain)
    }

    /// What a return-path address names. The local part and domain compare case-insensitively.
    pub fn read(&self, keys: &LinkKeys, address: &str) -> Result<ReturnPathFor, ReturnPathError> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        let (local, domain) = address.rsplit_once('@').ok_or(ReturnPathError::NotOurs)?;
        if !domain.eq_ignore_ascii_case(&self.domain) {
            return Err(ReturnPathError::NotOurs);
        }
        let (base, token) = local.split_once(RETURN_PATH_DELIMITER).ok_or(ReturnPathError::NotOurs)?;
        if !base.eq_ignore_ascii_case(&self.local) {
            return Err(ReturnPathError::NotOurs);
        }
        read_trace(keys, token)
    }

    /// Whether `address` is exactly the plain bounce address (no token).
    pub fn is_plain(&self, address: &str) -> bool {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>');
        address.eq_ignore_ascii_case(&self.plain())
    }
}

impl fmt::Debug for BounceAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BounceAddress({}@{})", self.local, self.domain)
    }
}

/// The token alone, as carried by the `X-Tidings-Ref` header: lowercase base32, about 41 characters.
pub fn trace_value(keys: &LinkKeys, what: ReturnPathFor) -> String {
    BASE32_DNSSEC.encode(&keys.sign_bytes(&what.claims()))
}

/// What a trace value (or the token part of a return path) names. Case does not matter.
pub fn read_trace(keys: &LinkKeys, value: &str) -> Result<ReturnPathFor, ReturnPathError> {
    let value = value.trim();
    if value.is_empty() || value.len() > MAX_TOKEN_CHARS {
        return Err(TokenError::Malformed.into());
    }
    let bytes = BASE32_DNSSEC.decode(value.as_bytes()).map_err(|_| TokenError::Malformed)?;
    let claims = keys.verify_bytes(&bytes, Purpose::Bounce)?;
    Ok(ReturnPathFor::from_claims(claims))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "1:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const KEY_B: &str = "2:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn address() -> BounceAddress {
        BounceAddress::parse("Bounces@News.Example.com").unwrap()
    }

    const ALL: [ReturnPathFor; 4] = [
        ReturnPathFor::Delivery { list_id: 1, subscriber_id: 4711, issue_id: 122 },
        ReturnPathFor::TestSend { list_id: 1, issue_id: 122 },
        ReturnPathFor::Confirmation { list_id: 2, subscriber_id: 99 },
        ReturnPathFor::Notice,
    ];

    #[test]
    fn every_kind_of_return_path_round_trips_whatever_the_case() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        for what in ALL {
            let path = address().return_path(&keys, what);
            assert!(path.starts_with("bounces+") && path.ends_with("@news.example.com"), "{path}");
            assert!(path.split('@').next().unwrap().len() <= 64, "{path}");
            assert_eq!(address().read(&keys, &path), Ok(what));
            assert_eq!(address().read(&keys, &path.to_ascii_uppercase()), Ok(what));
            assert_eq!(address().read(&keys, &format!("<{path}>")), Ok(what));
            let trace = trace_value(&keys, what);
            assert_eq!(read_trace(&keys, &trace), Ok(what));
        }
    }

    #[test]
    fn a_long_subscriber_id_still_fits_in_a_local_part() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let what = ReturnPathFor::Delivery { list_id: 1_000, subscriber_id: 100_000_000, issue_id: 1_000_000 };
        let long = BounceAddress::parse(&format!("{}@example.com", "b".repeat(MAX_BOUNCE_LOCAL_LEN))).unwrap();
        let path = long.return_path(&keys, what);
        assert!(path.split('@').next().unwrap().len() <= 64, "{path}");
    }

    #[test]
    fn every_altered_character_maps_to_nothing() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let path = address().return_path(&keys, ALL[0]);
        let (local, domain) = path.split_once('@').unwrap();
        let start = "bounces+".len();
        for position in start..local.len() {
            for replacement in "0123456789abcdefghijklmnopqrstuvwxyz".chars() {
                let mut altered: Vec<char> = local.chars().collect();
                if altered[position].eq_ignore_ascii_case(&replacement) {
                    continue;
                }
                altered[position] = replacement;
                let altered: String = altered.into_iter().collect();
                let result = address().read(&keys, &format!("{altered}@{domain}"));
                assert!(result.is_err(), "accepted {altered}");
            }
        }
    }

    #[test]
    fn other_domains_other_locals_and_garbage_map_to_nothing() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let path = address().return_path(&keys, ALL[0]);
        let token = path.split_once('+').unwrap().1.split_once('@').unwrap().0;
        for bad in [
            format!("bounces+{token}@other.example"),
            format!("other+{token}@news.example.com"),
            format!("bounces-{token}@news.example.com"),
            "bounces@news.example.com".to_owned(),
            "bounces+@news.example.com".to_owned(),
            format!("bounces+{}@news.example.com", "0".repeat(500)),
            "no at sign".to_owned(),
            String::new(),
        ] {
            assert!(address().read(&keys, &bad).is_err(), "{bad}");
        }
        assert!(address().is_plain("<BOUNCES@news.example.com>"));
    }

    #[test]
    fn a_link_token_of_another_purpose_is_no_return_path() {
        let keys = LinkKeys::parse(KEY_A).unwrap();
        let claims = LinkClaims { purpose: Purpose::Unsubscribe, list_id: 1, subscriber_id: 2, issue_id: Some(3) };
        let other = BASE32_DNSSEC.encode(&keys.sign_bytes(&claims));
        assert_eq!(read_trace(&keys, &other), Err(ReturnPathError::Token(TokenError::WrongPurpose)));
    }

    #[test]
    fn key_rotation_applies_to_return_paths() {
        let old = LinkKeys::parse(KEY_A).unwrap();
        let path = address().return_path(&old, ALL[0]);
        let rotated = LinkKeys::parse(&format!("{KEY_B} {KEY_A}")).unwrap();
        assert_eq!(address().read(&rotated, &path), Ok(ALL[0]));
        let retired = LinkKeys::parse(KEY_B).unwrap();
        assert!(address().read(&retired, &path).is_err());
    }

    #[test]
    fn bad_bounce_addresses_are_refused_with_the_reason() {
        assert_eq!(BounceAddress::parse("nobody"), Err(BounceAddressError::Form));
        assert_eq!(BounceAddress::parse("a+b@example.com"), Err(BounceAddressError::Local));
        assert_eq!(BounceAddress::parse(&format!("{}@example.com", "x".repeat(30))), Err(BounceAddressError::Local));
        assert_eq!(BounceAddress::parse("bounces@exa mple.com"), Err(BounceAddressError::Domain));
        assert_eq!(BounceAddress::parse("bounces@-bad.com"), Err(BounceAddressError::Domain));
        assert_eq!(address().plain(), "bounces@news.example.com");
    }
}
