//! How a duration reads for people: rounded to its two largest units ("2h 36m", "1m 05s", "3d 4h", "45s").
//!
//! The one place every message, status line and notice formats a duration, so none prints
//! "2h 35m 34s 603ms 863µs 972ns". Pure formatting: no clock, no I/O.

use std::fmt;

use jiff::SignedDuration;

/// A duration shown for people: `format!("{}", ForPeople(duration))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForPeople(pub SignedDuration);

/// The units, largest first, in seconds, with their suffixes.
const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];

impl fmt::Display for ForPeople {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0.is_negative() { "-" } else { "" };
        let millis = self.0.as_millis().unsigned_abs();
        // The largest unit the duration reaches once rounded to the unit below it.
        for pair in UNITS.windows(2) {
            let ((big, big_name), (small, small_name)) = (pair[0], pair[1]);
            let small_millis = small as u128 * 1_000;
            let small_units = (millis + small_millis / 2) / small_millis;
            let per_big = (big / small) as u128;
            if small_units >= per_big {
                let (whole, rest) = (small_units / per_big, small_units % per_big);
                return match small_name {
                    "h" => write!(f, "{sign}{whole}{big_name} {rest}{small_name}"),
                    _ => write!(f, "{sign}{whole}{big_name} {rest:02}{small_name}"),
                };
            }
        }
        write!(f, "{sign}{}s", (millis + 500) / 1_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(millis: i64) -> String {
        ForPeople(SignedDuration::from_millis(millis)).to_string()
    }

    #[test]
    fn durations_round_to_their_two_largest_units() {
        let long = SignedDuration::new(2 * 3_600 + 35 * 60 + 34, 603_863_972);
        assert_eq!(ForPeople(long).to_string(), "2h 36m");
        assert_eq!(shown(65_000), "1m 05s");
        assert_eq!(shown(45_400), "45s");
        assert_eq!(shown(400), "0s");
        assert_eq!(shown(0), "0s");
        assert_eq!(shown(3_600_000), "1h 00m");
        assert_eq!(shown(59_600), "1m 00s");
        assert_eq!(shown(3 * 86_400_000 + 4 * 3_600_000 + 20 * 60_000), "3d 4h");
        assert_eq!(shown(86_400_000 - 1_000), "1d 0h");
        assert_eq!(shown(-90_000), "-1m 30s");
    }
}
