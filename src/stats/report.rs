//! `tidings report N --out FILE.html`: one self-contained page (inline CSS and SVG, no script, no external
//! asset, a Content-Security-Policy that forbids loading anything) with the key figures on top, then deliveries
//! over time, opens over the first 72 hours, the star distribution, and unsubscribes and bounces.
//!
//! The template (`report.html`) is rendered by minijinja with HTML auto-escaping, so the subject and every
//! reason text are escaped; the charts come from `chart.rs`, which escapes its own text. Every number drawn
//! is also in the page as text and as a `data-value`, the same numbers `tidings stats N --json` prints.

use jiff::Timestamp;
use minijinja::value::Value;
use minijinja::{Environment, context};

use super::chart::{self, Bar};
use super::{IssueReport, MINUTE, delivery_rate, local, offset_label, percent, round, thousands};
use crate::store::{Buckets, ReasonCount};

const TEMPLATE: &str = include_str!("report.html");

/// The report of one issue as an HTML document; `generated_at` is printed in its footer.
/// The complaint rate beside the providers' thresholds, and what else came back later.
fn complaint_note(report: &IssueReport) -> String {
    let r = &report.detail.reports;
    let rate = super::complaint_rate(&report.summary())
        .map_or("no rate yet".to_owned(), |rate| format!("{:.2} % of the delivered", rate * 100.0));
    format!(
        "{rate} (keep under 0.1 %); later: {} hard and {} soft bounces, {} policy refusals",
        thousands(r.hard),
        thousands(r.soft),
        thousands(r.policy)
    )
}

pub fn render_report(report: &IssueReport, generated_at: Timestamp) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)?;
    let d = &report.detail;
    let c = &d.deliveries;
    let tally = d.stars.tally();
    let rate = delivery_rate(c);
    let figures = vec![
        figure("delivered", c.sent.to_string(), thousands(c.sent), "delivered", &format!("of {}", thousands(c.total))),
        figure(
            "delivery_rate",
            rate.map_or(String::new(), |r| round(r, 4).to_string()),
            rate.map_or("-".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            "delivery rate",
            "of those meant to go out",
        ),
        figure(
            "bounced",
            c.bounced.to_string(),
            thousands(c.bounced),
            "bounced",
            &format!("{} failed", thousands(c.failed)),
        ),
        figure(
            "unique_opens",
            d.unique_opens.to_string(),
            thousands(d.unique_opens),
            "unique opens",
            "unverified: image prefetching inflates them",
        ),
        figure(
            "rating_average",
            tally.average().map_or(String::new(), |a| round(a, 2).to_string()),
            tally.average().map_or("-".to_owned(), |a| format!("{a:.1}/5")),
            "rating",
            &format!("{} votes, {} flagged left out", thousands(tally.votes), thousands(d.flagged_stars.votes())),
        ),
        figure(
            "unsubscribed",
            report.unsubscribed().to_string(),
            thousands(report.unsubscribed()),
            "unsubscribed",
            "through this issue's links",
        ),
        figure(
            "complaints",
            d.reports.complaints.to_string(),
            thousands(d.reports.complaints),
            "complaints",
            &complaint_note(report),
        ),
    ];
    let delivered = &d.delivered_over_time;
    let delivered_chart = over_time("delivered-chart", "Messages delivered over time", delivered, "delivered");
    let opens_chart =
        over_time("opens-chart", "Unique first opens per hour, first 72 hours", &d.opens_first_72h, "opened");
    let unsubscribes_chart =
        over_time("unsubscribes-chart", "Unsubscribes per day after the send", &d.unsubscribes_per_day, "unsubscribed");
    let star_bars: Vec<Bar> = (1..=5).rev().map(|s| Bar { label: format!("{s} ★"), value: d.stars.0[s - 1] }).collect();
    let stars_chart = chart::rows("stars-chart", "Votes per number of stars", &star_bars, tally.votes);
    let when = match (report.started_at, report.finished_at) {
        (Some(start), Some(end)) => {
            format!("Sent from {} to {}", local(start, &report.zone), local(end, &report.zone))
        }
        (Some(start), None) => format!("Sending since {} ({})", local(start, &report.zone), report.status),
        _ => format!("Not sent yet ({})", report.status),
    };
    let page = env.get_template("report.html")?.render(context! {
        list_name => &report.list_name,
        number => report.number,
        subject => &report.subject,
        when,
        figures,
        ambiguous => thousands(c.ever_ambiguous),
        pending => thousands(c.pending()),
        cancelled => thousands(c.cancelled),
        is_cancelled => c.cancelled > 0,
        suppressed => thousands(c.suppressed),
        delivered_chart => Value::from_safe_string(delivered_chart),
        delivered_minutes => delivered.width / MINUTE,
        delivered_total => delivered.total(),
        delivered_caption => caption(delivered, "delivered", report),
        opens_chart => Value::from_safe_string(opens_chart),
        opens_total => d.opens_first_72h.total(),
        unique_opens => thousands(d.unique_opens),
        pixel_loads => thousands(d.opens),
        stars_chart => Value::from_safe_string(stars_chart),
        votes => tally.votes,
        rating => tally.to_string(),
        flagged_votes => d.flagged_stars.votes(),
        unsubscribes_chart => Value::from_safe_string(unsubscribes_chart),
        unsubscribed => report.unsubscribed(),
        bounced => c.bounced,
        failed => c.failed,
        bounce_reasons => reasons(&d.bounce_reasons, c.bounced),
        failure_reasons => reasons(&d.failure_reasons, c.failed),
        generated => local(crate::clock::to_millis(generated_at), &report.zone),
        deliverability => Value::from_safe_string(match &report.deliverability {
            Some((window, list)) => super::deliverability_html(window, list)?,
            None => String::new(),
        }),
    })?;
    Ok(page)
}

fn figure(key: &str, value: String, shown: String, label: &str, note: &str) -> Value {
    context! { key, value, shown, label, note }
}

/// A column chart of buckets, labelled by time since the start at a few round places.
fn over_time(id: &str, title: &str, buckets: &Buckets, verb: &str) -> String {
    let bars: Vec<Bar> = buckets
        .counts
        .iter()
        .enumerate()
        .map(|(index, count)| {
            let from = index as i64 * buckets.width;
            let (start, end) = (offset_label(from, buckets.width), offset_label(from + buckets.width, buckets.width));
            Bar { label: format!("{start} to {end}: {verb}"), value: *count }
        })
        .collect();
    // About six labels, on whole buckets, from the start to the end of the axis.
    let n = bars.len();
    let wanted = n.div_ceil(6).max(1);
    let step = [1, 2, 3, 4, 6, 12, 24].into_iter().find(|s| *s >= wanted).unwrap_or(wanted);
    let ticks: Vec<(usize, String)> =
        (0..=n).step_by(step).map(|index| (index, offset_label(index as i64 * buckets.width, buckets.width))).collect();
    chart::columns(id, title, &bars, &ticks)
}

fn caption(buckets: &Buckets, what: &str, report: &IssueReport) -> String {
    let minutes = buckets.width / MINUTE;
    let width = if minutes % 1440 == 0 {
        format!("{}-day", minutes / 1440)
    } else if minutes % 60 == 0 {
        format!("{}-hour", minutes / 60)
    } else {
        format!("{minutes}-minute")
    };
    format!(
        "{} {what} in all, counted in {width} intervals from the start ({}).",
        thousands(buckets.total()),
        local(buckets.origin, &report.zone)
    )
}

fn reasons(reasons: &[ReasonCount], whole: i64) -> Vec<Value> {
    reasons
        .iter()
        .map(|r| {
            let share = if whole > 0 { r.count as f64 * 100.0 / whole as f64 } else { 0.0 };
            context! { reason => &r.reason, count => r.count, shown => thousands(r.count), share => percent(r.count, whole), width => format!("{share:.1}") }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DeliveryCounts, IssueDetail, StarCounts};

    fn buckets(width: i64, counts: Vec<i64>) -> Buckets {
        Buckets { origin: 1_796_630_400_000, width, counts }
    }

    fn report(subject: &str, reason: &str) -> IssueReport {
        IssueReport {
            list_slug: "weekly".to_owned(),
            list_name: "Weekly <News>".to_owned(),
            zone: jiff::tz::TimeZone::UTC,
            number: 7,
            subject: subject.to_owned(),
            status: "sent".to_owned(),
            started_at: Some(1_796_630_400_000),
            finished_at: Some(1_796_634_000_000),
            detail: IssueDetail {
                deliveries: DeliveryCounts { sent: 9, bounced: 1, total: 10, ..DeliveryCounts::default() },
                attempts: vec![(1, 10)],
                bounce_reasons: vec![ReasonCount { reason: reason.to_owned(), count: 1 }],
                failure_reasons: Vec::new(),
                delivered_over_time: buckets(MINUTE, vec![9]),
                opens_first_72h: buckets(60 * MINUTE, vec![0; 72]),
                unique_opens: 0,
                opens: 0,
                stars: StarCounts([0, 0, 0, 1, 1]),
                flagged_stars: StarCounts::default(),
                unsubscribes_per_day: buckets(1440 * MINUTE, Vec::new()),
                clicks: Vec::new(),
                reports: Default::default(),
            },
            deliverability: None,
        }
    }

    #[test]
    fn text_from_the_issue_and_from_replies_is_escaped() {
        let html = render_report(
            &report("<script>alert(1)</script> & \"more\"", "550 <img src=x onerror=alert(1)>"),
            Timestamp::UNIX_EPOCH,
        )
        .expect("render");
        assert!(!html.contains("<script") && !html.contains("<img"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; &quot;more&quot;"), "{html}");
        assert!(html.contains("Weekly &lt;News&gt;"));
    }

    #[test]
    fn a_report_has_its_key_figures_and_no_external_reference() {
        let html = render_report(&report("Issue 7", "550 5.1.1 no such user"), Timestamp::UNIX_EPOCH).expect("render");
        assert!(html.contains(r#"data-figure="delivered" data-value="9""#), "{html}");
        assert!(html.contains(r#"data-figure="delivery_rate" data-value="0.9""#), "{html}");
        assert!(html.contains(r#"data-figure="rating_average" data-value="4.5""#), "{html}");
        assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("url("));
    }
}
