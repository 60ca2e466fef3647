//! The only reader of the current time. Everything else gets `now` from a `Clock`, so tests drive time by hand
//! and never sleep. `clippy.toml` forbids the system clock anywhere else.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// Wall-clock time for the daemon and the CLI, or a manual clock that tests set and advance.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<Mutex<Timestamp>>),
}

impl Clock {
    pub fn system() -> Self {
        Clock::System
    }

    /// A clock that stands still at `start` until it is advanced.
    pub fn manual(start: Timestamp) -> Self {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    #[allow(clippy::disallowed_methods)]
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Manual(now) => *now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()),
        }
    }

    /// Moves a manual clock forward; the system clock cannot be moved, so this does nothing to it.
    pub fn advance(&self, by: SignedDuration) {
        if let Clock::Manual(now) = self {
            let mut now = now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            *now = now.saturating_add(by).unwrap_or(*now);
        }
    }

    /// A monotonic instant for measuring rates and durations (progress, ETA), never stored.
    #[allow(clippy::disallowed_methods)]
    pub fn instant(&self) -> std::time::Instant {
        std::time::Instant::now()
    }
}

/// Milliseconds since the Unix epoch: how the store keeps timestamps on both backends.
pub fn to_millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

/// The inverse of [`to_millis`]; out-of-range values (never written by Tidings) clamp to the nearest bound.
pub fn from_millis(millis: i64) -> Timestamp {
    Timestamp::from_millisecond(millis).unwrap_or(if millis < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_advanced() {
        let start: Timestamp = "2026-12-07T08:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_mins(90));
        assert_eq!(clock.now().to_string(), "2026-12-07T09:30:00Z");
        assert_eq!(from_millis(to_millis(clock.now())), clock.now());
    }
}
