//! `tidings report N --out FILE.html`: one self-contained page (inline CSS and SVG, no script, no external
//! asset, a Content-Security-Policy that forbids loading anything) with the key figures and their rates on top,
//! this issue against the previous ones (medians and trend lines, `compare.html`), the list when it was sent,
//! then deliveries over time, opens over the first 72 hours, the star distribution, clicks per link, and
//! unsubscribes and bounces. `tidings report --list L --last 12` is the same page for a list (`history.rs`).
//!
//! The template (`report.html`) is rendered by minijinja with HTML auto-escaping, so the subject and every
//! reason text are escaped; the charts come from `chart.rs`, which escapes its own text. Every number drawn
//! is also in the page as text and as a `data-value`, the same numbers `tidings stats N --json` prints.

use jiff::Timestamp;
use minijinja::value::Value;
use minijinja::{Environment, context};

use super::chart::{self, Bar};
use super::compare::{IssueFigures, Kind};
use super::history::comparison_context;
use super::{IssueReport, MINUTE, SECOND, delivery_rate, local, offset_label, percent, round, thousands};
use crate::store::{Buckets, ReasonCount};

const TEMPLATE: &str = include_str!("report.html");
const COMPARE: &str = include_str!("compare.html");

pub(super) fn environment() -> anyhow::Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("report.html", TEMPLATE)?;
    env.add_template("compare.html", COMPARE)?;
    Ok(env)
}

/// `value` as a `data-value`: the number the JSON has, or empty for none.
pub(super) fn data(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| v.to_string())
}

/// The providers' threshold for complaints, and what else came back later (the rate is beside the count).
fn complaint_note(report: &IssueReport) -> String {
    let r = &report.detail.reports;
    format!(
        "keep the rate under 0.1 %; later: {} hard and {} soft bounces, {} policy refusals",
        thousands(r.hard),
        thousands(r.soft),
        thousands(r.policy)
    )
}

/// The report of one issue as an HTML document; `generated_at` is printed in its footer.
pub fn render_report(report: &IssueReport, generated_at: Timestamp) -> anyhow::Result<String> {
    let env = environment()?;
    let d = &report.detail;
    let c = &d.deliveries;
    let tally = d.stars.tally();
    let rate = delivery_rate(c);
    let figures_of = IssueFigures { summary: report.summary(), audience: report.audience };
    let figures = vec![
        figure("delivered", c.sent.to_string(), thousands(c.sent), "delivered", &format!("of {}", thousands(c.total)))
            .build(),
        figure(
            "delivery_rate",
            rate.map_or(String::new(), |r| round(r, 4).to_string()),
            rate.map_or("-".to_owned(), |r| format!("{:.1} %", r * 100.0)),
            "delivery rate",
            "of those meant to go out",
        )
        .build(),
        figure(
            "bounced",
            c.bounced.to_string(),
            thousands(c.bounced),
            "bounced",
            &format!("{} failed", thousands(c.failed)),
        )
        .build(),
        figure(
            "unique_opens",
            d.unique_opens.to_string(),
            thousands(d.unique_opens),
            "unique opens",
            "unverified: image prefetching inflates them",
        )
        .with_rate(rate_of(&figures_of, "open_rate_unverified", "opened"))
        .build(),
        figure(
            "rating_average",
            tally.average().map_or(String::new(), |a| round(a, 2).to_string()),
            Kind::Rating.shown(tally.average()),
            "rating",
            &format!("{}, {} flagged left out", votes(tally.votes), thousands(d.flagged_stars.votes())),
        )
        .with_rate(rate_of(&figures_of, "vote_participation", "voted"))
        .build(),
        figure(
            "unsubscribed",
            report.unsubscribed().to_string(),
            thousands(report.unsubscribed()),
            "unsubscribed",
            "through this issue's links",
        )
        .with_rate(rate_of(&figures_of, "unsubscribe_rate", "unsubscribed"))
        .build(),
        figure(
            "complaints",
            d.reports.complaints.to_string(),
            thousands(d.reports.complaints),
            "complaints",
            &complaint_note(report),
        )
        .with_rate(rate_of(&figures_of, "complaint_rate", "complained"))
        .build(),
    ];
    let delivered = &d.delivered_over_time;
    // At least 12 places on the axis: a send that lasted seconds is drawn as the seconds it took.
    let delivered_chart = over_time("delivered-chart", "Messages delivered over time", delivered, "delivered", 12);
    let opens_chart =
        over_time("opens-chart", "Unique first opens per hour, first 72 hours", &d.opens_first_72h, "opened", 1);
    let unsubscribes_chart = over_time(
        "unsubscribes-chart",
        "Unsubscribes per day after the send",
        &d.unsubscribes_per_day,
        "unsubscribed",
        7,
    );
    let star_bars: Vec<Bar> = (1..=5).rev().map(|s| Bar { label: format!("{s} ★"), value: d.stars.0[s - 1] }).collect();
    let stars_chart = chart::rows("stars-chart", "Votes per number of stars", &star_bars, tally.votes)
        + &chart::table("stars", "Votes per number of stars", ("Stars", "Votes"), &star_bars);
    let when = super::sent_when(report);
    let audience = report.audience.map(|a| {
        let since = |n: Option<i64>| n.map_or("-".to_owned(), thousands);
        context! {
            active => a.active_at_send, active_shown => thousands(a.active_at_send),
            new => data(a.new_since_previous.map(|n| n as f64)), new_shown => since(a.new_since_previous),
            lost => data(a.lost_since_previous.map(|n| n as f64)), lost_shown => since(a.lost_since_previous),
        }
    });
    let clicks: Vec<Value> = d
        .clicks
        .iter()
        .map(|l| {
            context! { position => l.position, link => super::link_label(&l.url), people => l.people, clicks => l.clicks,
            people_shown => thousands(l.people), clicks_shown => thousands(l.clicks) }
        })
        .collect();
    let page = env.get_template("report.html")?.render(context! {
        issue_page => true,
        title => format!("Issue {}: {}", report.number, report.subject),
        compare => comparison_context(&report.comparison, "This issue"),
        audience,
        click_tracking => report.click_tracking || d.clicks.iter().any(|l| l.clicks > 0),
        clicks,
        voters => format!("{} of {} delivered ({})", voters(tally.votes), thousands(c.sent), percent(tally.votes, c.sent)),
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

/// `1 vote`, `12 votes`.
fn votes(n: i64) -> String {
    if n == 1 { "1 vote".to_owned() } else { format!("{} votes", thousands(n)) }
}

/// `1 voter`, `12 voters`.
fn voters(n: i64) -> String {
    if n == 1 { "1 voter".to_owned() } else { format!("{} voters", thousands(n)) }
}

/// A key figure's card: its count, and the rate beside it when it has one.
struct Card {
    key: String,
    value: String,
    shown: String,
    label: String,
    note: String,
    rate: Option<Value>,
}

impl Card {
    fn with_rate(mut self, rate: Value) -> Self {
        self.rate = Some(rate);
        self
    }

    fn build(self) -> Value {
        let Card { key, value, shown, label, note, rate } = self;
        context! { key, value, shown, label, note, rate => rate.unwrap_or(Value::from(())) }
    }
}

fn figure(key: &str, value: String, shown: String, label: &str, note: &str) -> Card {
    Card { key: key.to_owned(), value, shown, label: label.to_owned(), note: note.to_owned(), rate: None }
}

/// The rate `key` of an issue as a card shows it beside its count, e.g. `50.0 % opened`, with the JSON's number.
fn rate_of(issue: &IssueFigures, key: &str, words: &str) -> Value {
    let found = super::compare::FIGURES.iter().find(|(k, ..)| *k == key);
    let value = found.and_then(|(_, _, read, kind)| read(issue).map(|v| kind.rounded(v)));
    let shown = found.map_or("-".to_owned(), |(_, _, _, kind)| kind.shown(value));
    context! { key, value => data(value), shown, words }
}

/// A column chart of buckets over at least `slots` places, labelled by time since the start at a few round
/// places, followed by its numbers as a table for screen readers.
fn over_time(id: &str, title: &str, buckets: &Buckets, verb: &str, slots: usize) -> String {
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
    let n = bars.len().max(slots);
    let wanted = n.div_ceil(6).max(1);
    let step = [1, 2, 3, 4, 6, 12, 24].into_iter().find(|s| *s >= wanted).unwrap_or(wanted);
    let ticks: Vec<(usize, String)> =
        (0..=n).step_by(step).map(|index| (index, offset_label(index as i64 * buckets.width, buckets.width))).collect();
    let table_id = id.strip_suffix("-chart").unwrap_or(id);
    chart::columns(id, title, &bars, &ticks, slots) + &chart::table(table_id, title, ("When", "Count"), &bars)
}

fn caption(buckets: &Buckets, what: &str, report: &IssueReport) -> String {
    let minutes = buckets.width / MINUTE;
    let width = if buckets.width < MINUTE {
        let seconds = buckets.width / SECOND;
        if seconds == 1 { "1-second".to_owned() } else { format!("{seconds}-second") }
    } else if minutes % 1440 == 0 {
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
            audience: None,
            comparison: crate::stats::Comparison::default(),
            click_tracking: false,
        }
    }

    #[test]
    fn a_send_that_lasted_seconds_says_so_and_one_vote_is_singular() {
        let mut short = report("Issue 7", "550 5.1.1 no such user");
        short.finished_at = short.started_at.map(|at| at + 12_000);
        short.detail.stars = StarCounts([0, 0, 0, 1, 0]);
        let html = render_report(&short, Timestamp::UNIX_EPOCH).expect("render");
        assert!(html.contains("Sent on 2026-12-07 08:00 UTC in 12 seconds"), "{html}");
        assert!(html.contains("1 vote,") && !html.contains("1 votes"), "{html}");
        assert!(html.contains(">4&#x2f;5<") && !html.contains("4.0&#x2f;5"), "{html}");
    }

    #[test]
    fn a_send_that_lasted_seconds_is_counted_and_drawn_in_seconds() {
        let mut short = report("Issue 7", "550 5.1.1 no such user");
        short.detail.delivered_over_time = buckets(SECOND, vec![5, 4]);
        let html = render_report(&short, Timestamp::UNIX_EPOCH).expect("render");
        assert!(html.contains("9 delivered in all, counted in 1-second intervals"), "{html}");
        // Two columns over twelve places of the axis (310 units wide), labelled in seconds.
        assert!(
            html.contains(r#"width="21.96" height="156.00" data-label="start to +1 s: delivered" data-value="5""#),
            "{html}"
        );
        assert!(html.contains(">+12 s</text>"), "{html}");
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
        assert!(html.contains("4.5&#x2f;5") && html.contains("2 votes, 0 flagged"), "{html}");
        assert!(html.contains("Click tracking is off"), "{html}");
        assert!(html.contains("Sent from 2026-12-07 08:00 UTC to 2026-12-07 09:00 UTC (in 1h 00m)"), "{html}");
        assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("url("));
    }
}
