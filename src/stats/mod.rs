//! Stats and reports: what happened to each issue, as the editor reads it the day after a send. The store counts
//! (`store/stats.rs`); this module turns its figures into a terminal table, a terminal page with histograms,
//! JSON for scripts (`terminal.rs`, here) and a self-contained HTML report with SVG charts (`report.rs`,
//! `chart.rs`).
//!
//! It performs no I/O and reads no clock: the same figures always give the same text, JSON and HTML.
//!
//! Definitions, also in the README and in the JSON field names:
//! - `delivered`: accepted by the relay; `failed`: given up on; `bounced`: the address does not exist;
//!   `ambiguous`: an attempt's outcome was unknown, so the subscriber may have the issue twice (whatever the
//!   delivery's status now); `delivery_rate`: delivered out of the deliveries meant to go out (all but the
//!   suppressed ones, whose subscriber left or was suppressed before the message went out).
//! - `unsubscribed_via_issue`: unsubscribes made through this issue's own links (its unsubscribe page or the
//!   one-click header of this issue's message), whenever they happened.
//! - `unique_opens_unverified`: subscribers who loaded the open pixel; image prefetching inflates it.
//! - Ratings count genuine votes only; votes that looked automated are `flagged_votes`, apart.
//! - `complaints`: deliveries someone complained about through a feedback loop; `complaint_rate`: complaints
//!   out of `delivered`; `reported_later`: what came back after the relay's 250, per kind, once per delivery
//!   (a hard bounce reported later is also in `bounced`, and no longer in `delivered`).
//! - Rates are out of `delivered`: `open_rate_unverified` (unique opens), `unsubscribe_rate` (unsubscribed via
//!   the issue), `vote_participation` (genuine votes), `complaint_rate`.
//! - `compared`: each key figure beside the median of the list's 8 issues before this one, and its values over
//!   the last 12 issues (`compare.rs`); `subscribers`: the list when the issue started (`store/audience.rs`).
//! - Test sends are never counted.

mod chart;
mod compare;
mod deliverability;
mod history;
mod report;
mod terminal;

pub use compare::{Comparison, IssueFigures, TREND_OF, compare};
pub use deliverability::{ListDeliverability, Window, deliverability_html, deliverability_json, deliverability_text};
pub use history::render_list_report;
pub use report::render_report;
pub use terminal::{detail_text, overview_text};

use jiff::tz::TimeZone;
use serde_json::{Value, json};

use crate::clock::from_millis;
use crate::store::{Audience, Buckets, DeliveryCounts, IssueDetail, IssueSummary, ReasonCount, StarCounts};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60_000;

/// Everything a detailed view shows about one issue.
#[derive(Debug, Clone)]
pub struct IssueReport {
    pub list_slug: String,
    pub list_name: String,
    /// The list's home zone, in which dates are shown to people (JSON has UTC).
    pub zone: TimeZone,
    pub number: i64,
    pub subject: String,
    pub status: String,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub detail: IssueDetail,
    /// The list's deliverability section of the report (`deliverability.rs`), when it was loaded.
    pub deliverability: Option<(Window, ListDeliverability)>,
    /// The list when the issue started.
    pub audience: Option<Audience>,
    /// This issue against the previous ones.
    pub comparison: Comparison,
    /// Whether `tracking.clicks` is on (else no click is recorded).
    pub click_tracking: bool,
}

impl IssueReport {
    /// Unsubscribes through this issue's links.
    pub fn unsubscribed(&self) -> i64 {
        self.detail.unsubscribes_per_day.total()
    }

    /// The figures the overview line of this issue has.
    pub fn summary(&self) -> IssueSummary {
        let d = &self.detail;
        IssueSummary {
            issue_id: 0,
            number: self.number,
            subject: self.subject.clone(),
            status: self.status.clone(),
            started_at: self.started_at,
            finished_at: self.finished_at,
            deliveries: d.deliveries.clone(),
            unsubscribed: self.unsubscribed(),
            unique_opens: d.unique_opens,
            tally: d.stars.tally(),
            flagged_votes: d.flagged_stars.votes(),
            reports: d.reports,
        }
    }
}

/// The width of the buckets of "deliveries over time" for a send that took `span` milliseconds: the smallest
/// round width that draws it in at most 48 bars; a send that lasted seconds is counted in seconds.
pub fn delivery_bucket_width(span: i64) -> i64 {
    if span < MINUTE {
        return if span < 48 * SECOND { SECOND } else { 2 * SECOND };
    }
    const WIDTHS: [i64; 11] = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440];
    for minutes in WIDTHS {
        if span < minutes * MINUTE * 48 {
            return minutes * MINUTE;
        }
    }
    let day = 1440 * MINUTE;
    (span / 48 / day + 1) * day
}

/// Deliveries meant to go out that were accepted, from 0 to 1; `None` before any was meant to.
pub fn delivery_rate(counts: &DeliveryCounts) -> Option<f64> {
    let meant = counts.total - counts.suppressed;
    (meant > 0).then(|| counts.sent as f64 / meant as f64)
}

/// Complaints out of the messages delivered, from 0 to 1; `None` before any was delivered. Gmail and Yahoo
/// ask bulk senders to stay under 0.001 and never reach 0.003.
pub fn complaint_rate(summary: &IssueSummary) -> Option<f64> {
    let delivered = summary.deliveries.sent;
    (delivered > 0).then(|| summary.reports.complaints as f64 / delivered as f64)
}

/// `part` out of `delivered`, from 0 to 1; `None` before anything was delivered.
fn per_delivered(summary: &IssueSummary, part: i64) -> Option<f64> {
    let delivered = summary.deliveries.sent;
    (delivered > 0).then(|| part as f64 / delivered as f64)
}

/// Unique opens out of the delivered (unverified: image prefetching inflates it).
pub fn open_rate(summary: &IssueSummary) -> Option<f64> {
    per_delivered(summary, summary.unique_opens)
}

/// Unsubscribes through the issue's links out of the delivered.
pub fn unsubscribe_rate(summary: &IssueSummary) -> Option<f64> {
    per_delivered(summary, summary.unsubscribed)
}

/// Genuine voters out of the delivered.
pub fn vote_participation(summary: &IssueSummary) -> Option<f64> {
    per_delivered(summary, summary.tally.votes)
}

/// How long a send lasted, as people say it: `in 12 seconds` under a minute, else `2h 36m`-style.
fn lasted(start: i64, end: i64) -> String {
    let millis = (end - start).max(0);
    if millis < MINUTE {
        let seconds = (millis + SECOND / 2) / SECOND;
        return match seconds {
            0 => "in under a second".to_owned(),
            1 => "in 1 second".to_owned(),
            n => format!("in {n} seconds"),
        };
    }
    format!("in {}", crate::domain::ForPeople(jiff::SignedDuration::from_millis(millis)))
}

/// When an issue was sent, for a heading: `Sent on 2026-12-07 08:00 GMT in 12 seconds`, or from and to.
fn sent_when(report: &IssueReport) -> String {
    let zone = &report.zone;
    match (report.started_at, report.finished_at) {
        (Some(start), Some(end)) if end - start < MINUTE => {
            format!("Sent on {} {}", local(start, zone), lasted(start, end))
        }
        (Some(start), Some(end)) => {
            format!("Sent from {} to {} ({})", local(start, zone), local(end, zone), lasted(start, end))
        }
        (Some(start), None) => format!("Sending since {} ({})", local(start, zone), report.status),
        _ => format!("Not sent yet ({})", report.status),
    }
}

/// A link as the report names it: its host (`example.com`), never its path or query; `an email address` for
/// a mailto link.
pub fn link_label(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "mailto" => "an email address".to_owned(),
        Ok(parsed) => parsed.host_str().map_or_else(|| "(a link without a host)".to_owned(), str::to_owned),
        Err(_) => "(an unreadable link)".to_owned(),
    }
}

/// A stored timestamp as `2026-12-07T08:00:00Z`.
fn iso(millis: i64) -> String {
    from_millis(millis).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A stored timestamp in `zone`, e.g. `2026-12-07 08:00 GMT`.
fn local(millis: i64, zone: &TimeZone) -> String {
    from_millis(millis).to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string()
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// One issue's line in `stats --json`; the same keys start `stats N --json`.
pub fn summary_json(summary: &IssueSummary) -> Value {
    let c = &summary.deliveries;
    json!({
        "number": summary.number,
        "subject": summary.subject,
        "status": summary.status,
        "started_at": summary.started_at.map(iso),
        "finished_at": summary.finished_at.map(iso),
        "total": c.total,
        "delivered": c.sent,
        "failed": c.failed,
        "bounced": c.bounced,
        "suppressed": c.suppressed,
        "pending": c.pending(),
        "cancelled": c.cancelled,
        "ambiguous": c.ever_ambiguous,
        "delivery_rate": delivery_rate(c).map(|rate| round(rate, 4)),
        "open_rate_unverified": open_rate(summary).map(|rate| round(rate, 4)),
        "unsubscribe_rate": unsubscribe_rate(summary).map(|rate| round(rate, 4)),
        "vote_participation": vote_participation(summary).map(|rate| round(rate, 4)),
        "unsubscribed_via_issue": summary.unsubscribed,
        "unique_opens_unverified": summary.unique_opens,
        "rating_average": summary.tally.average().map(|average| round(average, 2)),
        "votes": summary.tally.votes,
        "flagged_votes": summary.flagged_votes,
        "complaints": summary.reports.complaints,
        "complaint_rate": complaint_rate(summary).map(|rate| round(rate, 5)),
        "reported_later": {
            "hard_bounces": summary.reports.hard,
            "soft_bounces": summary.reports.soft,
            "policy_refusals": summary.reports.policy,
            "complaints": summary.reports.complaints,
            "auto_replies": summary.reports.auto_replies,
            "delayed": summary.reports.delayed,
        },
    })
}

fn buckets_json(buckets: &Buckets) -> Value {
    let minutes = if buckets.width % MINUTE == 0 {
        json!(buckets.width / MINUTE)
    } else {
        json!(round(buckets.width as f64 / MINUTE as f64, 4))
    };
    json!({
        "from": iso(buckets.origin),
        "bucket_minutes": minutes,
        "bucket_seconds": buckets.width / SECOND,
        "counts": buckets.counts,
    })
}

fn stars_json(stars: &StarCounts) -> Value {
    json!({ "1": stars.0[0], "2": stars.0[1], "3": stars.0[2], "4": stars.0[3], "5": stars.0[4] })
}

fn reasons_json(reasons: &[ReasonCount]) -> Value {
    json!(reasons)
}

/// `stats N --json`: the overview's keys, then every section in depth.
pub fn detail_json(report: &IssueReport) -> Value {
    let d = &report.detail;
    let mut value = summary_json(&report.summary());
    let retried: i64 = d.attempts.iter().filter(|(attempts, _)| *attempts > 1).map(|(_, count)| count).sum();
    let retries: i64 = d.attempts.iter().map(|(attempts, count)| (attempts - 1).max(0) * count).sum();
    let extra = json!({
        "list": report.list_slug,
        "deliveries_by_status": d.deliveries,
        "retries": {
            "retried_deliveries": retried,
            "retry_attempts": retries,
            "by_attempts": d.attempts.iter().map(|(attempts, count)| json!({ "attempts": attempts, "deliveries": count })).collect::<Vec<_>>(),
        },
        "bounce_reasons": reasons_json(&d.bounce_reasons),
        "failure_reasons": reasons_json(&d.failure_reasons),
        "delivered_over_time": buckets_json(&d.delivered_over_time),
        "unsubscribes_per_day": buckets_json(&d.unsubscribes_per_day),
        "opens_unverified": {
            "unique": d.unique_opens,
            "total": d.opens,
            "first_72_hours": buckets_json(&d.opens_first_72h),
        },
        "click_tracking": report.click_tracking,
        "clicks": d.clicks.iter().map(|link| json!({
            "position": link.position,
            "link": link_label(&link.url),
            "people": link.people,
            "clicks": link.clicks,
        })).collect::<Vec<_>>(),
        "subscribers": report.audience,
        "compared": comparison_json(&report.comparison),
        "rating": {
            "average": d.stars.tally().average().map(|average| round(average, 2)),
            "votes": d.stars.votes(),
            "out_of_delivered": report.detail.deliveries.sent,
            "distribution": stars_json(&d.stars),
            "flagged_votes": d.flagged_stars.votes(),
            "flagged_distribution": stars_json(&d.flagged_stars),
        },
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut value, extra) {
        map.extend(more);
    }
    value
}

/// The comparison with the previous issues: per figure, this issue's value, the median and the trend.
fn comparison_json(comparison: &Comparison) -> Value {
    let figures: serde_json::Map<String, Value> = comparison
        .figures
        .iter()
        .map(|f| {
            let number = |v: &Option<f64>| match (f.kind, v) {
                (compare::Kind::Count, Some(v)) if v.fract() == 0.0 => json!(*v as i64),
                (_, v) => json!(v),
            };
            let trend: Vec<Value> = f.trend.iter().map(number).collect();
            (f.key.to_owned(), json!({ "value": number(&f.value), "median": number(&f.median), "trend": trend }))
        })
        .collect();
    json!({
        "median_of_issues": comparison.median_of,
        "trend_of_issues": comparison.trend_of,
        "figures": figures,
    })
}

/// `1234567` as `1,234,567`.
fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `part` of `whole` as `66.7 %`, or `-` when the whole is nothing.
fn percent(part: i64, whole: i64) -> String {
    if whole <= 0 { "-".to_owned() } else { format!("{:.1} %", part as f64 * 100.0 / whole as f64) }
}

/// A span of time after the start as people say it, in the largest unit that divides it and is no larger than
/// `unit` (so that the labels of one axis share a unit): `+45 min`, `+36 h`, `+2 d`.
fn offset_label(millis: i64, unit: i64) -> String {
    let minutes = millis / MINUTE;
    if millis < SECOND {
        return "start".to_owned();
    }
    if unit < MINUTE {
        return format!("+{} s", millis / SECOND);
    }
    let unit = unit / MINUTE;
    if minutes == 0 {
        "start".to_owned()
    } else if unit >= 1440 && minutes % 1440 == 0 {
        format!("+{} d", minutes / 1440)
    } else if unit >= 60 && minutes % 60 == 0 {
        format!("+{} h", minutes / 60)
    } else {
        format!("+{minutes} min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_drawn_in_at_most_48_round_buckets() {
        assert_eq!(delivery_bucket_width(0), SECOND, "a send that lasted seconds is counted in seconds");
        assert_eq!(delivery_bucket_width(50 * SECOND), 2 * SECOND);
        assert_eq!(delivery_bucket_width(MINUTE), MINUTE);
        assert_eq!(delivery_bucket_width(47 * MINUTE), MINUTE);
        assert_eq!(delivery_bucket_width(3 * 60 * MINUTE), 5 * MINUTE);
        assert_eq!(delivery_bucket_width(23 * 60 * MINUTE), 30 * MINUTE);
        assert_eq!(delivery_bucket_width(30 * 1440 * MINUTE), 1440 * MINUTE);
        assert_eq!(delivery_bucket_width(100 * 1440 * MINUTE), 3 * 1440 * MINUTE);
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_000), "-1,000");
        assert_eq!(percent(2, 3), "66.7 %");
        assert_eq!(percent(1, 0), "-");
        let (hour, day) = (60 * MINUTE, 1440 * MINUTE);
        assert_eq!(offset_label(0, hour), "start");
        assert_eq!(offset_label(12 * SECOND, SECOND), "+12 s");
        assert_eq!(lasted(0, 12_300), "in 12 seconds");
        assert_eq!(lasted(0, 1_000), "in 1 second");
        assert_eq!(lasted(0, 150 * MINUTE), "in 2h 30m");
        assert_eq!(link_label("https://www.example.com/a?utm_source=x&token=1"), "www.example.com");
        assert_eq!(link_label("mailto:editor@example.com"), "an email address");
        assert_eq!(offset_label(90 * MINUTE, day), "+90 min");
        assert_eq!(offset_label(180 * MINUTE, day), "+3 h");
        assert_eq!(offset_label(2880 * MINUTE, day), "+2 d");
        assert_eq!(offset_label(2880 * MINUTE, hour), "+48 h", "an hourly axis counts in hours");
    }

    #[test]
    fn the_delivery_rate_leaves_out_suppressed_deliveries() {
        let counts = DeliveryCounts { sent: 8, failed: 1, bounced: 1, suppressed: 2, total: 12, ..Default::default() };
        assert_eq!(delivery_rate(&counts), Some(0.8));
        assert_eq!(delivery_rate(&DeliveryCounts::default()), None);
    }
}
