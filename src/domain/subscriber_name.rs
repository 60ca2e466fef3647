//! `SubscriberName`: the optional display name, safe to put in a header or a page.

use std::fmt;

/// Longest name we keep, in characters.
const MAX_CHARS: usize = 200;

/// Why a string is not a usable subscriber name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("the name contains a line break or another control character")]
    ControlCharacter,
    #[error("the name is longer than {MAX_CHARS} characters")]
    TooLong,
}

/// A trimmed name without control characters (so never a CR/LF that could split a header). May be empty.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SubscriberName(String);

impl SubscriberName {
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let trimmed = input.trim();
        if trimmed.chars().any(char::is_control) {
            return Err(NameError::ControlCharacter);
        }
        if trimmed.chars().count() > MAX_CHARS {
            return Err(NameError::TooLong);
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AsRef<str> for SubscriberName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Names are personal data: Debug output does not show them.
impl fmt::Debug for SubscriberName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubscriberName(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_may_hold_any_printable_text() {
        let name = SubscriberName::parse("  <script>\"Bob\" & Co  ").unwrap();
        assert_eq!(name.as_str(), "<script>\"Bob\" & Co");
    }

    #[test]
    fn a_line_break_inside_a_name_is_refused() {
        assert_eq!(SubscriberName::parse("Bob\r\nBcc: x"), Err(NameError::ControlCharacter));
        assert_eq!(SubscriberName::parse("Bob\nSmith"), Err(NameError::ControlCharacter));
    }

    #[test]
    fn overlong_names_are_refused() {
        assert_eq!(SubscriberName::parse(&"x".repeat(201)), Err(NameError::TooLong));
        assert!(SubscriberName::parse(&"é".repeat(200)).is_ok());
    }
}
