//! `IssueNumber`: the editor's number for one edition of a list, as in `emails/issues/122.md`.
//!
//! This file owns the rule that an issue number is a whole number from 1 up; it performs no I/O.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;

/// Why a value is not an issue number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssueNumberError {
    #[error("an issue number starts at 1, not 0")]
    Zero,
    #[error("`{0}` is not an issue number: use a whole number from 1 to 4294967295")]
    NotANumber(String),
}

/// The number of an issue, 1 or more. Serialized as a plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct IssueNumber(NonZeroU32);

impl IssueNumber {
    /// Parses decimal digits, as typed on the command line (`issue show 122`).
    pub fn parse(input: &str) -> Result<Self, IssueNumberError> {
        let digits = input.trim();
        let value: u32 = digits.parse().map_err(|_| IssueNumberError::NotANumber(digits.to_owned()))?;
        Self::try_from(value)
    }

    pub fn get(self) -> u32 {
        self.0.get()
    }
}

impl TryFrom<u32> for IssueNumber {
    type Error = IssueNumberError;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        NonZeroU32::new(value).map(Self).ok_or(IssueNumberError::Zero)
    }
}

/// TOML and JSON numbers arrive as `i64`; negative and oversized values are refused, not wrapped.
impl TryFrom<i64> for IssueNumber {
    type Error = IssueNumberError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        let value = u32::try_from(value).map_err(|_| IssueNumberError::NotANumber(value.to_string()))?;
        Self::try_from(value)
    }
}

impl From<IssueNumber> for u32 {
    fn from(number: IssueNumber) -> u32 {
        number.get()
    }
}

impl FromStr for IssueNumber {
    type Err = IssueNumberError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Self::parse(input)
    }
}

impl fmt::Display for IssueNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_numbers_start_at_one() {
        assert_eq!(IssueNumber::parse("122").map(IssueNumber::get), Ok(122));
        assert_eq!(IssueNumber::parse(" 1 ").map(IssueNumber::get), Ok(1));
        assert_eq!(IssueNumber::parse("0"), Err(IssueNumberError::Zero));
        assert_eq!(IssueNumber::try_from(0_u32), Err(IssueNumberError::Zero));
    }

    #[test]
    fn negative_fractional_and_oversized_numbers_are_refused() {
        for input in ["-3", "1.5", "4294967296", "twelve", ""] {
            assert!(matches!(IssueNumber::parse(input), Err(IssueNumberError::NotANumber(_))), "{input}");
        }
        assert!(IssueNumber::try_from(-1_i64).is_err());
        assert!(IssueNumber::try_from(i64::from(u32::MAX) + 1).is_err());
    }

    #[test]
    fn an_issue_number_round_trips_through_json_as_a_plain_number() {
        let number = IssueNumber::parse("122").unwrap();
        assert_eq!(serde_json::to_string(&number).unwrap(), "122");
        assert_eq!(serde_json::from_str::<IssueNumber>("122").unwrap(), number);
        assert!(serde_json::from_str::<IssueNumber>("0").is_err());
    }

    #[test]
    fn an_issue_number_displays_as_its_digits() {
        assert_eq!(IssueNumber::parse("7").unwrap().to_string(), "7");
    }
}
