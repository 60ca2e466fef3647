//! `SubscriberEmail`: an email address parsed once, in the one form the store keys on.
//!
//! Built on lettre's `Address` so that what we accept is exactly what the mailer can send to. The domain is
//! stored lowercased (international domains in their Unicode form). The local part keeps the case it was given,
//! but addresses are compared case-insensitively on the whole address through [`SubscriberEmail::normalised`]:
//! RFC 5321 allows a case-sensitive mailbox, yet virtually every provider ignores case, and one person must not
//! become two subscribers (and get every issue twice) because a list spelled them `Ana@` and `ana@`.

use std::fmt;
use std::str::FromStr;

use lettre::Address;

/// The longest address SMTP can carry in a forward path (RFC 5321, 4.5.3.1.3).
const MAX_LEN: usize = 254;

/// Why a string is not a subscriber email address; the `Display` text is shown to users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("the email address is empty")]
    Empty,
    #[error("the email address is longer than {MAX_LEN} characters")]
    TooLong,
    #[error("the email address contains a line break or another control character")]
    ControlCharacter,
    #[error("`{0}` has no `@` separating the mailbox from the domain")]
    MissingAt(String),
    #[error("`{0}` has no mailbox name before the `@`")]
    MissingUser(String),
    #[error("`{0}` has no domain after the `@`")]
    MissingDomain(String),
    #[error("`{0}` is not a valid mailbox name before the `@`")]
    InvalidUser(String),
    #[error("`{0}` is not a valid domain after the `@`")]
    InvalidDomain(String),
    #[error("`{0}` is not a valid email address")]
    Invalid(String),
}

/// A valid email address in canonical form: trimmed, domain lowercased and in Unicode form. Two addresses are
/// equal when their [`normalised`](SubscriberEmail::normalised) forms are.
#[derive(Clone)]
pub struct SubscriberEmail(Address);

impl PartialEq for SubscriberEmail {
    fn eq(&self, other: &Self) -> bool {
        self.normalised() == other.normalised()
    }
}

impl Eq for SubscriberEmail {}

impl std::hash::Hash for SubscriberEmail {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.normalised().hash(state);
    }
}

impl SubscriberEmail {
    /// Parses user input: surrounding whitespace is ignored, anything else invalid is refused with the reason.
    pub fn parse(input: &str) -> Result<Self, EmailError> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(EmailError::Empty);
        }
        if trimmed.chars().any(char::is_control) {
            return Err(EmailError::ControlCharacter);
        }
        if trimmed.chars().count() > MAX_LEN {
            return Err(EmailError::TooLong);
        }
        let Some((user, domain)) = trimmed.rsplit_once('@') else {
            return Err(EmailError::MissingAt(trimmed.to_owned()));
        };
        if user.is_empty() {
            return Err(EmailError::MissingUser(trimmed.to_owned()));
        }
        if domain.is_empty() {
            return Err(EmailError::MissingDomain(trimmed.to_owned()));
        }
        let domain = canonical_domain(domain).ok_or_else(|| EmailError::InvalidDomain(domain.to_owned()))?;
        let address = Address::new(user, &domain).map_err(|e| match e {
            lettre::address::AddressError::InvalidUser => EmailError::InvalidUser(user.to_owned()),
            lettre::address::AddressError::InvalidDomain => EmailError::InvalidDomain(domain.clone()),
            _ => EmailError::Invalid(trimmed.to_owned()),
        })?;
        Ok(Self(address))
    }

    /// The address as stored and shown, e.g. `Ana@example.com`.
    pub fn as_str(&self) -> &str {
        self.0.as_ref()
    }

    /// The lettre address, for the mailer's envelope.
    pub fn address(&self) -> &Address {
        &self.0
    }

    /// The domain part, lowercased.
    pub fn domain(&self) -> &str {
        self.0.domain()
    }

    /// The form addresses are compared and looked up by (`subscribers.email_normalised`): the whole address
    /// with ASCII letters lowercased (the domain already is). Only ASCII is folded, exactly as SQL's `lower()`
    /// in SQLite does, so the migration that filled the column for existing rows computed the same value.
    pub fn normalised(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }

    /// A one-way digest of the address for the suppression list, which must outlive the address itself
    /// (erasure keeps it). The whole address is lowercased first, so a suppressed `Ana@x` also stops `ana@x`.
    /// This is the digest of the [`normalised`](Self::normalised) form for every ASCII address; it lowercases
    /// Unicode too, as it always has, so every hash stored before stays valid.
    pub fn suppression_hash(&self) -> String {
        super::sha256_hex(&[b"tidings-suppression-v1:", self.as_str().to_lowercase().as_bytes()])
    }
}

/// Lowercases an ASCII domain; maps an international one (Unicode or punycode) to its lowercase Unicode form,
/// so both spellings of one domain compare equal. `None` when IDNA processing rejects it.
fn canonical_domain(domain: &str) -> Option<String> {
    if domain.starts_with('[') {
        // An address literal such as `[192.0.2.1]`: lettre checks it; there is no case to fold.
        return Some(domain.to_owned());
    }
    if domain.is_ascii() && !domain.to_ascii_lowercase().split('.').any(|label| label.starts_with("xn--")) {
        return Some(domain.to_ascii_lowercase());
    }
    let (unicode, result) = idna::domain_to_unicode(domain);
    result.ok().map(|()| unicode)
}

impl FromStr for SubscriberEmail {
    type Err = EmailError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for SubscriberEmail {
    type Error = EmailError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Debug output never shows the address: it would end up in logs.
impl fmt::Debug for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubscriberEmail(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        let email = SubscriberEmail::parse("  ana@example.com\t").unwrap();
        assert_eq!(email.as_str(), "ana@example.com");
    }

    #[test]
    fn the_whole_address_is_compared_case_insensitively_and_kept_as_given() {
        let a = SubscriberEmail::parse("Ana@Example.COM").unwrap();
        let b = SubscriberEmail::parse("Ana@example.com").unwrap();
        let c = SubscriberEmail::parse("ana@example.com").unwrap();
        let d = SubscriberEmail::parse("anna@example.com").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_ne!(a, d);
        assert_eq!(a.as_str(), "Ana@example.com");
        assert_eq!(a.normalised(), "ana@example.com");
        assert_eq!(SubscriberEmail::parse("GOOD1@BAD.EXAMPLE").unwrap().normalised(), "good1@bad.example");
    }

    #[test]
    fn the_suppression_hash_is_the_digest_of_the_normalised_form_as_it_always_was() {
        // The value stored by every earlier version for this address: a hash computed then still matches.
        let email = SubscriberEmail::parse("GOOD1@BAD.EXAMPLE").unwrap();
        let before = crate::domain::sha256_hex(&[b"tidings-suppression-v1:", b"good1@bad.example"]);
        assert_eq!(email.suppression_hash(), before);
        assert_eq!(
            email.suppression_hash(),
            crate::domain::sha256_hex(&[b"tidings-suppression-v1:", email.normalised().as_bytes()])
        );
    }

    #[test]
    fn international_domains_are_accepted_in_either_spelling() {
        let unicode = SubscriberEmail::parse("jürgen@Bücher.example").unwrap();
        let punycode = SubscriberEmail::parse("jürgen@xn--bcher-kva.example").unwrap();
        assert_eq!(unicode, punycode);
        assert_eq!(unicode.domain(), "bücher.example");
    }

    #[test]
    fn invalid_addresses_are_refused_with_the_reason() {
        assert_eq!(SubscriberEmail::parse("  "), Err(EmailError::Empty));
        assert!(matches!(SubscriberEmail::parse("ana.example.com"), Err(EmailError::MissingAt(_))));
        assert!(matches!(SubscriberEmail::parse("@example.com"), Err(EmailError::MissingUser(_))));
        assert!(matches!(SubscriberEmail::parse("ana@"), Err(EmailError::MissingDomain(_))));
        assert!(matches!(SubscriberEmail::parse("ana@exa mple.com"), Err(EmailError::InvalidDomain(_))));
        assert!(matches!(SubscriberEmail::parse("an a@example.com"), Err(EmailError::InvalidUser(_))));
        assert_eq!(SubscriberEmail::parse("ana@example.com\r\nBcc: x@y.z"), Err(EmailError::ControlCharacter));
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(SubscriberEmail::parse(&long), Err(EmailError::TooLong));
    }

    #[test]
    fn debug_output_hides_the_address() {
        let email = SubscriberEmail::parse("secret@example.com").unwrap();
        assert!(!format!("{email:?}").contains("secret"));
    }

    #[test]
    fn the_suppression_hash_ignores_case_and_hides_the_address() {
        let a = SubscriberEmail::parse("Ana@example.com").unwrap();
        let b = SubscriberEmail::parse("ana@EXAMPLE.com").unwrap();
        assert_eq!(a.suppression_hash(), b.suppression_hash());
        assert_eq!(a.suppression_hash().len(), 64);
        assert!(!a.suppression_hash().contains("ana"));
    }
}
