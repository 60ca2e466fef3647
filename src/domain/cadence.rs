//! Weekly cadence: a list's slot ("Mon 08:00" in its home zone) and the wall-clock rules that turn a local date
//! and time into an instant, daylight-saving changes included.
//!
//! The rules, for every local time Tidings resolves (slots, `issue schedule --at`, a subscriber's local hour):
//! a time skipped by a spring-forward change runs at the first valid instant after the gap (02:30 on the night
//! clocks jump from 02:00 to 03:00 runs at 03:00); a time repeated by a fall-back change runs once, at the
//! earlier instant. jiff knows the zones and their transitions; nothing here adds offsets by hand.

use std::fmt;

use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{Timestamp, ToSpan};

/// The largest offset ahead of UTC any zone uses (Pacific/Kiritimati, UTC+14): a local hour is first reached
/// there, so a local-time send starts this long before that hour is reached in UTC.
pub const EARLIEST_OFFSET_HOURS: i64 = 14;

/// A weekly slot: a day of the week and a time of day, in some zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeeklySlot {
    pub weekday: Weekday,
    pub time: Time,
}

impl WeeklySlot {
    /// Parses "Mon 08:00" (also "monday 8:00"): an English weekday name or its three-letter abbreviation, then
    /// a 24-hour time.
    pub fn parse(input: &str) -> Result<Self, String> {
        let fail = |why: &str| format!("`{input}` is not a weekly slot like \"Mon 08:00\": {why}");
        let mut parts = input.split_whitespace();
        let (Some(day), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(fail("give a day and a time"));
        };
        let weekday = parse_weekday(day).ok_or_else(|| fail(&format!("`{day}` is not a day of the week")))?;
        let (hour, minute) = time.split_once(':').ok_or_else(|| fail("the time is HH:MM"))?;
        let hour: i8 = hour.parse().ok().filter(|h| (0..24).contains(h)).ok_or_else(|| fail("the hour is 0 to 23"))?;
        let minute: i8 =
            minute.parse().ok().filter(|m| (0..60).contains(m)).ok_or_else(|| fail("the minute is 0 to 59"))?;
        let time = Time::new(hour, minute, 0, 0).map_err(|e| fail(&e.to_string()))?;
        Ok(Self { weekday, time })
    }

    /// The first slot strictly after `after`, as a local date and time in `zone` and the instant it runs.
    pub fn next_after(&self, zone: &TimeZone, after: Timestamp) -> SlotTime {
        let mut date = after.to_zoned_datetime(zone.clone()).date();
        // At most eight candidate days: today's slot may already have passed.
        for _ in 0..16 {
            if date.weekday() == self.weekday {
                let local = date.to_datetime(self.time);
                let at = resolve(zone, local);
                if at > after {
                    return SlotTime { local, at };
                }
            }
            date = next_day(date);
        }
        // Unreachable for real zones (a week always holds the weekday); fall back a week on.
        let local = date.to_datetime(self.time);
        SlotTime { local, at: resolve(zone, local) }
    }
}

impl fmt::Display for WeeklySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = match self.weekday {
            Weekday::Monday => "Mon",
            Weekday::Tuesday => "Tue",
            Weekday::Wednesday => "Wed",
            Weekday::Thursday => "Thu",
            Weekday::Friday => "Fri",
            Weekday::Saturday => "Sat",
            Weekday::Sunday => "Sun",
        };
        write!(f, "{day} {:02}:{:02}", self.time.hour(), self.time.minute())
    }
}

/// A list's cadence: its weekly slot in its home zone, and whether the slot means that hour in each
/// subscriber's own zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    pub slot: WeeklySlot,
    pub zone: TimeZone,
    pub zone_name: String,
    pub local_time: bool,
}

impl Cadence {
    pub fn new(weekly: &str, zone_name: &str, local_time: bool) -> Result<Self, String> {
        let slot = WeeklySlot::parse(weekly)?;
        let zone = check_time_zone(zone_name)?;
        Ok(Self { slot, zone, zone_name: zone_name.to_owned(), local_time })
    }

    /// The first slot strictly after `after` (slots are keyed by their instant in the list's zone).
    pub fn next_after(&self, after: Timestamp) -> SlotTime {
        self.slot.next_after(&self.zone, after)
    }

    /// When the daemon acts on a slot: at the slot, or for local time when the first zone on Earth reaches it.
    pub fn trigger(&self, slot: &SlotTime) -> Timestamp {
        if self.local_time { earliest_instant(slot.local).min(slot.at) } else { slot.at }
    }

    /// The slot in words: "Mon 08:00 Europe/London" (", at each subscriber's local time").
    pub fn describe(&self) -> String {
        let local = if self.local_time { ", at each subscriber's local time" } else { "" };
        format!("every {} {}{local}", self.slot, self.zone_name)
    }
}

/// One occurrence of a slot: the wall-clock date and time in the list's zone, and the instant it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotTime {
    pub local: DateTime,
    pub at: Timestamp,
}

fn parse_weekday(day: &str) -> Option<Weekday> {
    let day = day.to_ascii_lowercase();
    let days = [
        ("mon", "monday", Weekday::Monday),
        ("tue", "tuesday", Weekday::Tuesday),
        ("wed", "wednesday", Weekday::Wednesday),
        ("thu", "thursday", Weekday::Thursday),
        ("fri", "friday", Weekday::Friday),
        ("sat", "saturday", Weekday::Saturday),
        ("sun", "sunday", Weekday::Sunday),
    ];
    days.iter().find(|(short, long, _)| day == *short || day == *long).map(|(_, _, weekday)| *weekday)
}

fn next_day(date: Date) -> Date {
    date.checked_add(1.day()).unwrap_or(date)
}

/// The instant a local date and time in `zone` runs at: the first valid instant after a spring-forward gap,
/// the earlier of the two instants in a fall-back overlap.
pub fn resolve(zone: &TimeZone, local: DateTime) -> Timestamp {
    let ambiguous = zone.to_ambiguous_timestamp(local);
    match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } | AmbiguousOffset::Fold { before: offset, .. } => {
            offset.to_timestamp(local).unwrap_or(Timestamp::MAX)
        }
        AmbiguousOffset::Gap { before, .. } => {
            // Read with the offset in force before the gap, the time lands after the transition; the transition
            // just before that instant is where the gap ends, the first valid instant after it.
            let past_gap = before.to_timestamp(local).unwrap_or(Timestamp::MAX);
            zone.preceding(past_gap).next().map_or(past_gap, |transition| transition.timestamp())
        }
    }
}

/// When a local-time send of `local` (a wall-clock date and time) starts: the moment that hour is first
/// reached anywhere on Earth, so that every subscriber's own hour is still ahead.
pub fn earliest_instant(local: DateTime) -> Timestamp {
    let as_utc = resolve(&TimeZone::UTC, local);
    as_utc.checked_sub(jiff::SignedDuration::from_hours(EARLIEST_OFFSET_HOURS)).unwrap_or(as_utc)
}

/// Checks an IANA zone name given as input (a CSV column, a form field, `--tz`): the reason when it is not one.
pub fn check_time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("`{}` is not an IANA time zone, e.g. Europe/Berlin", name.escape_debug()));
    }
    TimeZone::get(name).map_err(|_| format!("`{name}` is not an IANA time zone, e.g. Europe/Berlin"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn slots_parse_with_names_or_abbreviations_and_refuse_nonsense_with_the_reason() {
        let slot = WeeklySlot::parse("Mon 08:00").unwrap();
        assert_eq!((slot.weekday, slot.time), (Weekday::Monday, Time::new(8, 0, 0, 0).unwrap()));
        assert_eq!(WeeklySlot::parse("sunday 2:30").unwrap().to_string(), "Sun 02:30");
        for (bad, why) in [
            ("Mon", "give a day and a time"),
            ("Mun 08:00", "`Mun` is not a day"),
            ("Mon 24:00", "hour"),
            ("Mon 08:61", "minute"),
            ("Mon 0800", "HH:MM"),
            ("Mon 08:00 UTC", "give a day and a time"),
        ] {
            let error = WeeklySlot::parse(bad).unwrap_err();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn the_next_slot_is_strictly_after_the_given_instant() {
        let slot = WeeklySlot::parse("Mon 08:00").unwrap();
        let london = zone("Europe/London");
        // 2026-12-07 is a Monday; London is on UTC in December.
        assert_eq!(slot.next_after(&london, ts("2026-12-01T00:00:00Z")).at, ts("2026-12-07T08:00:00Z"));
        assert_eq!(slot.next_after(&london, ts("2026-12-07T07:59:59Z")).at, ts("2026-12-07T08:00:00Z"));
        assert_eq!(slot.next_after(&london, ts("2026-12-07T08:00:00Z")).at, ts("2026-12-14T08:00:00Z"));
        // In summer the same wall-clock slot is an hour earlier in UTC.
        assert_eq!(slot.next_after(&london, ts("2026-06-30T00:00:00Z")).at, ts("2026-07-06T07:00:00Z"));
    }

    #[test]
    fn a_slot_in_a_spring_forward_gap_runs_at_the_first_valid_instant_after_it() {
        // Berlin, 2027-03-28 (last Sunday of March): 02:00 CET becomes 03:00 CEST at 01:00 UTC.
        let slot = WeeklySlot::parse("Sun 02:30").unwrap();
        let berlin = zone("Europe/Berlin");
        let next = slot.next_after(&berlin, ts("2027-03-22T00:00:00Z"));
        assert_eq!(next.at, ts("2027-03-28T01:00:00Z"));
        assert_eq!(next.at.to_zoned_datetime(berlin.clone()).time(), Time::new(3, 0, 0, 0).unwrap());
        // Only once: the following slot is a week on, at 02:30 CEST.
        assert_eq!(slot.next_after(&berlin, next.at).at, ts("2027-04-04T00:30:00Z"));
    }

    #[test]
    fn a_slot_in_a_fall_back_overlap_runs_once_at_the_earlier_instant() {
        // Berlin, 2027-10-31 (last Sunday of October): 03:00 CEST becomes 02:00 CET at 01:00 UTC, so 02:30
        // happens at 00:30 UTC and again at 01:30 UTC.
        let slot = WeeklySlot::parse("Sun 02:30").unwrap();
        let berlin = zone("Europe/Berlin");
        let next = slot.next_after(&berlin, ts("2027-10-25T00:00:00Z"));
        assert_eq!(next.at, ts("2027-10-31T00:30:00Z"));
        // The second 02:30 is not another slot.
        assert_eq!(slot.next_after(&berlin, next.at).at, ts("2027-11-07T01:30:00Z"));
    }

    #[test]
    fn a_local_hour_is_first_reached_fourteen_hours_ahead_of_utc() {
        let local: DateTime = "2026-12-07T08:00".parse().unwrap();
        assert_eq!(earliest_instant(local), ts("2026-12-06T18:00:00Z"));
        assert_eq!(resolve(&zone("Pacific/Kiritimati"), local), earliest_instant(local));
    }

    #[test]
    fn time_zones_are_checked_with_the_reason() {
        assert!(check_time_zone("Asia/Shanghai").is_ok());
        assert!(check_time_zone("Mars/Olympus").unwrap_err().contains("Mars/Olympus"));
        assert!(check_time_zone("Europe/Berlin\r\nX: y").unwrap_err().contains("not an IANA time zone"));
        assert!(check_time_zone("").is_err());
    }
}
