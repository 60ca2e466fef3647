//! Lists (newsletters): `ListSlug`, the short name used on the command line, in config and in `List-Id`, and
//! `ListSpec`, a list as configured.

use std::fmt;

/// Lowercase ASCII letters, digits and `-`, 1 to 64 characters, starting with a letter or digit.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListSlug(String);

impl ListSlug {
    pub fn parse(input: &str) -> Result<Self, String> {
        let valid = !input.is_empty()
            && input.len() <= 64
            && !input.starts_with('-')
            && input.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if valid {
            Ok(Self(input.to_owned()))
        } else {
            Err(format!(
                "`{input}` is not a list name: use 1 to 64 lowercase letters, digits and `-`, not starting with `-`"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ListSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A list as configured under `[lists]`, checked: the store keeps its lists in step with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSpec {
    pub slug: ListSlug,
    pub name: String,
    /// IANA name of the list's home time zone.
    pub time_zone: String,
    /// The weekly slot, "Day HH:MM" in `time_zone`; `None`: no cadence.
    pub weekly: Option<String>,
    /// The slot means that hour in each subscriber's own zone.
    pub local_time: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words() {
        assert!(ListSlug::parse("weekly").is_ok());
        assert!(ListSlug::parse("china-digest-2").is_ok());
        assert!(ListSlug::parse("Weekly").is_err());
        assert!(ListSlug::parse("-x").is_err());
        assert!(ListSlug::parse("").is_err());
        assert!(ListSlug::parse("a b").is_err());
    }
}
