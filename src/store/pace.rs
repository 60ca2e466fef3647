//! The per-second rate limit as a smooth schedule: GCRA (the generic cell rate algorithm, as the `governor`
//! crate implements it) with one "theoretical arrival time" (TAT) per relay, kept in `relay_pace` so that every
//! daemon sharing the database paces itself by the same clock.
//!
//! Each message is due one emission interval `T = 1 s / per_second` after the one before it. A reservation at
//! `now` is granted only when the TAT has come (`TAT <= now`), and then as many sends as time has earned since
//! (`1 + (now - TAT) / T`, at most `per_second` after a pause); the TAT moves to `now + granted * T`. Any two
//! consecutive grants therefore satisfy `k1 + k2 <= 1 + (t2 - t1) / T`, so the sends of any grants within one
//! second number fewer than `1 s / T + 1`: no sliding one-second window ever holds more than `per_second`
//! submissions, where a fixed window let twice that through across a boundary. Pure arithmetic: no I/O.

/// Microseconds in a second: the TAT is kept in microseconds so that `T` is exact enough at any rate.
const MICROS: i64 = 1_000_000;

/// The pace of one relay: at most `per_second` submissions in any one-second window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pace {
    per_second: i64,
    /// The emission interval, rounded up so that `per_second * interval >= 1 s`.
    interval: i64,
}

/// What a reservation at one instant gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Grant {
    pub granted: i64,
    /// The TAT to store (microseconds since the epoch).
    pub tat: i64,
    /// When a reservation can next get a send (microseconds since the epoch).
    pub next_at: i64,
}

impl Pace {
    /// `None` for no limit (0).
    pub(crate) fn new(per_second: u32) -> Option<Self> {
        let per_second = i64::from(per_second);
        (per_second > 0).then(|| Self { per_second, interval: (MICROS + per_second - 1) / per_second })
    }

    /// Reserves up to `wanted` sends at `now_millis`, given the stored TAT (`None`: never used).
    pub(crate) fn reserve(&self, tat: Option<i64>, now_millis: i64, wanted: i64) -> Grant {
        let now = now_millis.saturating_mul(1_000);
        let tat = tat.unwrap_or(i64::MIN / 2);
        if tat > now || wanted <= 0 {
            return Grant { granted: 0, tat, next_at: tat.max(now) };
        }
        let earned = 1 + (now - tat) / self.interval;
        let granted = wanted.min(self.per_second).min(earned);
        let tat = self.tat_after(now_millis, granted);
        Grant { granted, tat, next_at: tat }
    }

    /// The TAT once `granted` sends go at `now_millis` (which a grant allowed).
    pub(crate) fn tat_after(&self, now_millis: i64, granted: i64) -> i64 {
        now_millis.saturating_mul(1_000) + granted * self.interval
    }

    /// The TAT after giving back `unused` of `granted` sends reserved at `reserved_millis`.
    pub(crate) fn returned(&self, reserved_millis: i64, granted: i64, unused: i64) -> (i64, i64) {
        let at = reserved_millis.saturating_mul(1_000);
        (at + granted * self.interval, at + (granted - unused).max(0) * self.interval)
    }
}

/// Milliseconds (rounded up) for a TAT in microseconds.
pub(crate) fn micros_to_millis(micros: i64) -> i64 {
    micros.div_euclid(1_000) + i64::from(micros.rem_euclid(1_000) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations of `wanted` at each instant (ms), carrying the TAT along; the grants per instant.
    fn run(pace: Pace, wanted: i64, instants: impl IntoIterator<Item = i64>) -> Vec<(i64, i64)> {
        let mut tat = None;
        let mut grants = Vec::new();
        for at in instants {
            let grant = pace.reserve(tat, at, wanted);
            tat = Some(grant.tat);
            if grant.granted > 0 {
                grants.push((at, grant.granted));
            }
        }
        grants
    }

    /// The most submissions any half-open one-second window holds.
    fn busiest_second(grants: &[(i64, i64)]) -> i64 {
        grants
            .iter()
            .map(|(start, _)| grants.iter().filter(|(at, _)| (*start..start + 1_000).contains(at)).map(|g| g.1).sum())
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_burst_after_a_pause_is_at_most_one_second_s_worth() {
        let pace = Pace::new(5).unwrap();
        assert_eq!(pace.reserve(None, 10_000, 200).granted, 5);
        assert_eq!(pace.reserve(None, 10_000, 3).granted, 3);
    }

    #[test]
    fn a_fixed_window_s_boundary_no_longer_lets_twice_the_limit_through() {
        // The fixed window allowed 5 at 999 ms and 5 more at 1,000 ms.
        let pace = Pace::new(5).unwrap();
        let grants = run(pace, 200, [999, 1_000, 1_001, 1_199, 1_200, 1_998, 1_999]);
        assert_eq!(grants, vec![(999, 5), (1_999, 1)]);
    }

    #[test]
    fn no_sliding_second_ever_holds_more_than_the_limit_whatever_the_instants() {
        for per_second in [1, 3, 5, 7, 50] {
            let pace = Pace::new(per_second).unwrap();
            for step in [1, 7, 33, 100, 199, 200, 201, 250, 333, 499, 1_000] {
                for wanted in [1, 2, 5, 200] {
                    let instants = (0..40).map(|i| 5_000 + i * step + (i * i) % 13);
                    let grants = run(pace, wanted, instants);
                    let busiest = busiest_second(&grants);
                    assert!(busiest <= i64::from(per_second), "{per_second}/s, every {step} ms, {wanted}: {busiest}");
                }
            }
        }
    }

    #[test]
    fn the_limit_is_reached_when_reservations_come_as_the_schedule_allows() {
        // Coming back at each `next_at`, a reserver gets the full rate: 5 per second, one every 200 ms.
        let pace = Pace::new(5).unwrap();
        let (mut tat, mut at, mut sent) = (None, 0, 0);
        while at < 10_000 {
            let grant = pace.reserve(tat, at, 200);
            (tat, sent) = (Some(grant.tat), sent + grant.granted);
            at = micros_to_millis(grant.next_at).max(at + 1);
        }
        assert_eq!(sent, 50);
    }

    #[test]
    fn giving_back_unused_sends_moves_the_schedule_back() {
        let pace = Pace::new(5).unwrap();
        let grant = pace.reserve(None, 1_000, 5);
        let (expected, back) = pace.returned(1_000, 5, 3);
        assert_eq!((grant.tat, back), (expected, 1_400_000));
        assert_eq!(micros_to_millis(1_000_001), 1_001);
        assert_eq!(micros_to_millis(1_000_000), 1_000);
    }
}
