//! The terminal views: `tidings stats` (one line per issue) and `tidings stats N` (one issue in depth, with
//! histograms of plain Unicode block bars). No colour and no terminal control codes, so the text reads the same
//! on a terminal, in a pipe and in a file.

use std::fmt::Write;

use jiff::tz::TimeZone;

use super::compare::Comparison;
use super::{IssueReport, delivery_rate, link_label, local, percent, thousands};
use crate::clock::from_millis;
use crate::store::{Buckets, IssueSummary, ReasonCount, StarCounts};

/// The widest bar, in character cells.
const BAR_CELLS: usize = 30;

/// `tidings stats`: a header, one line per issue, and what the columns mean.
pub fn overview_text(list_slug: &str, summaries: &[IssueSummary], not_started: usize, zone: &TimeZone) -> String {
    let mut out = String::new();
    if summaries.is_empty() {
        let _ = writeln!(out, "no issue of `{list_slug}` has been sent yet; `tidings issue send N` sends one");
    } else {
        let _ = writeln!(
            out,
            "{:>6}  {:<10}  {:>9}  {:>6}  {:>7}  {:>5}  {:>6}  {:>10}  {:>7}  {:<19}  SUBJECT",
            "ISSUE", "SENT", "DELIVERED", "FAILED", "BOUNCED", "AMBIG", "UNSUBS", "COMPLAINTS", "OPENS*", "RATING"
        );
        for s in summaries {
            let sent = s.started_at.map_or("-".to_owned(), |at| date(at, zone));
            let c = &s.deliveries;
            let rating = if s.tally.votes == 0 { "-".to_owned() } else { s.tally.to_string() };
            let _ = writeln!(
                out,
                "{:>6}  {:<10}  {:>9}  {:>6}  {:>7}  {:>5}  {:>6}  {:>10}  {:>7}  {:<19}  {}{}",
                s.number,
                sent,
                thousands(c.sent),
                thousands(c.failed),
                thousands(c.bounced),
                thousands(c.ever_ambiguous),
                thousands(s.unsubscribed),
                complaints(s),
                thousands(s.unique_opens),
                rating,
                s.subject,
                if s.status == "sent" { String::new() } else { format!(" ({})", s.status) },
            );
        }
        let _ = writeln!(
            out,
            "* unique opens (unverified: image prefetching inflates them). AMBIG: possibly received twice. \
             UNSUBS: through the issue's own links. COMPLAINTS: spam complaints from feedback loops, with their \
             share of the delivered (keep it under 0.1 %). Ratings leave out flagged votes; test sends never count."
        );
    }
    if not_started > 0 {
        let noun = if not_started == 1 { "issue has" } else { "issues have" };
        let _ = writeln!(out, "{not_started} more {noun} not been sent yet (draft, queued or scheduled).");
    }
    out
}

/// The complaints of an issue with their share of the delivered, e.g. `2 (0.04%)`.
fn complaints(summary: &IssueSummary) -> String {
    match super::complaint_rate(summary) {
        Some(rate) if summary.reports.complaints > 0 => {
            format!("{} ({:.2}%)", thousands(summary.reports.complaints), rate * 100.0)
        }
        _ => thousands(summary.reports.complaints),
    }
}

/// `tidings stats N`: every section of one issue.
pub fn detail_text(report: &IssueReport) -> String {
    let d = &report.detail;
    let c = &d.deliveries;
    let mut out = String::new();
    let _ = writeln!(out, "issue {} of `{}`: {}", report.number, report.list_slug, report.subject);
    let mut when = format!("  status {}", report.status);
    if let Some(at) = report.started_at {
        let _ = write!(when, ", started {}", local(at, &report.zone));
    }
    if let Some(at) = report.finished_at {
        let _ = write!(when, ", finished {}", local(at, &report.zone));
        if let Some(start) = report.started_at {
            let _ = write!(when, " (sent {})", super::lasted(start, at));
        }
    }
    let _ = writeln!(out, "{when}");
    if report.started_at.is_none() {
        let _ = writeln!(out, "  not sent yet: there is nothing to count");
        return out;
    }

    let _ = writeln!(out, "\ndeliveries                 {:>9}", thousands(c.total));
    let meant = c.total - c.suppressed;
    for (label, count) in [("delivered", c.sent), ("failed", c.failed), ("bounced", c.bounced)] {
        let _ = writeln!(out, "  {label:<24} {:>9}  {:>7}", thousands(count), percent(count, meant));
    }
    let _ =
        writeln!(out, "  {:<24} {:>9}  (left or suppressed before it went out)", "suppressed", thousands(c.suppressed));
    if c.cancelled > 0 {
        let _ = writeln!(
            out,
            "  {:<24} {:>9}  (the issue was cancelled before they went out)",
            "cancelled, never sent",
            thousands(c.cancelled)
        );
    }
    if report.status != "cancelled" || c.pending() > 0 {
        let _ = writeln!(
            out,
            "  {:<24} {:>9}  (queued {}, sending {}, waiting to retry {}, ambiguous {})",
            "not settled yet",
            thousands(c.pending()),
            c.queued,
            c.sending,
            c.retry_wait,
            c.ambiguous
        );
    }
    let _ = writeln!(
        out,
        "  {:<24} {:>9}  (an attempt's outcome was unknown: possibly received twice)",
        "ambiguous",
        thousands(c.ever_ambiguous)
    );
    let rate = delivery_rate(c).map_or("-".to_owned(), |rate| format!("{:.1} %", rate * 100.0));
    let _ =
        writeln!(out, "  {:<24} {rate:>9}  (delivered of the {} meant to go out)", "delivery rate", thousands(meant));

    if let Some(a) = report.audience {
        let since = |n: Option<i64>| n.map_or("-".to_owned(), thousands);
        let _ = writeln!(
            out,
            "\nthe list: {} active at send; since the previous issue {} new, {} lost",
            thousands(a.active_at_send),
            since(a.new_since_previous),
            since(a.lost_since_previous)
        );
    }
    compared(&mut out, &report.comparison);

    let _ = writeln!(out, "\nattempts per delivery");
    let retried: i64 = d.attempts.iter().filter(|(a, _)| *a > 1).map(|(_, n)| n).sum();
    let retries: i64 = d.attempts.iter().map(|(a, n)| (a - 1).max(0) * n).sum();
    for (attempts, count) in &d.attempts {
        let noun = if *attempts == 1 { "attempt" } else { "attempts" };
        let _ = writeln!(out, "  {:<24} {:>9}", format!("{attempts} {noun}"), thousands(*count));
    }
    let _ = writeln!(out, "  {} deliveries retried, {} retries in all", thousands(retried), thousands(retries));

    let r = &d.reports;
    let _ = writeln!(out, "\ncame back after the relay accepted it (bounce and complaint reports)");
    for (label, count, note) in [
        ("hard bounces", r.hard, "(also counted as bounced above; the address is suppressed)"),
        ("soft bounces", r.soft, "(mailbox full or a temporary failure that finally failed)"),
        ("policy refusals", r.policy, "(blocked as spam or by policy: the sender's problem, nobody suppressed)"),
        ("complaints", r.complaints, "(marked as spam: unsubscribed and suppressed)"),
        ("auto-replies", r.auto_replies, "(counted only)"),
        ("delayed notices", r.delayed, "(counted only)"),
    ] {
        let _ = writeln!(out, "  {label:<24} {:>9}  {note}", thousands(count));
    }
    let rate = super::complaint_rate(&report.summary()).map_or("-".to_owned(), |rate| format!("{:.2} %", rate * 100.0));
    let _ = writeln!(
        out,
        "  {:<24} {rate:>9}  (complaints of the delivered; keep under 0.1 %, never 0.3 %)",
        "complaint rate"
    );

    reasons(&mut out, "bounce reasons", &d.bounce_reasons);
    reasons(&mut out, "failure reasons", &d.failure_reasons);

    let _ = writeln!(
        out,
        "\nunsubscribed via this issue's links: {} ({} of the delivered)",
        thousands(report.unsubscribed()),
        percent(report.unsubscribed(), c.sent)
    );
    for (day, count) in d.unsubscribes_per_day.counts.iter().enumerate() {
        let _ = writeln!(out, "  day {:<3} {:>7}", day + 1, thousands(*count));
    }

    let _ = writeln!(out, "\nopens (unverified: image prefetching inflates them)");
    let _ = writeln!(
        out,
        "  unique opens {}, pixel loads {}; open rate {} of the delivered; first opens in the first 72 hours, \
         per 6 hours:",
        thousands(d.unique_opens),
        thousands(d.opens),
        percent(d.unique_opens, c.sent)
    );
    histogram(&mut out, &six_hourly(&d.opens_first_72h), d.unique_opens);

    let clicked: Vec<_> = d.clicks.iter().filter(|link| link.clicks > 0).collect();
    if clicked.is_empty() && !report.click_tracking {
        let _ = writeln!(out, "\nclicks: click tracking is off (tracking.clicks = false), so none were recorded");
    } else if clicked.is_empty() {
        let _ = writeln!(out, "\nclicks: none recorded yet");
    } else {
        let _ = writeln!(out, "\nclicks per link (people, then every click; the link's host)");
        for link in clicked {
            // A host is letters, digits, dots and dashes: nothing that could steer a terminal.
            let _ = writeln!(
                out,
                "  {:>3}. {:>7} {:>7}  {}",
                link.position,
                thousands(link.people),
                thousands(link.clicks),
                link_label(&link.url)
            );
        }
    }

    let tally = d.stars.tally();
    let _ = writeln!(out, "\nrating {}", tally);
    let noun = if tally.votes == 1 { "voter" } else { "voters" };
    let _ = writeln!(
        out,
        "  {} {noun} of {} delivered ({})",
        thousands(tally.votes),
        thousands(c.sent),
        percent(tally.votes, c.sent)
    );
    stars(&mut out, &d.stars);
    let flagged = d.flagged_stars.votes();
    if flagged > 0 {
        let by_stars: Vec<String> = (1..=5)
            .rev()
            .filter(|s| d.flagged_stars.0[s - 1] > 0)
            .map(|s| format!("{s}★ {}", d.flagged_stars.0[s - 1]))
            .collect();
        let _ = writeln!(out, "  flagged votes (looked automated, left out): {} ({})", flagged, by_stars.join(", "));
    } else {
        let _ = writeln!(out, "  flagged votes (looked automated, left out): 0");
    }
    out
}

/// Each key figure beside the median of the issues before it, with its trend as a line of block characters.
fn compared(out: &mut String, comparison: &Comparison) {
    if comparison.figures.is_empty() {
        return;
    }
    let range = |n: &[i64]| match (n.first(), n.last()) {
        (Some(a), Some(b)) if a != b => format!("issues {a} to {b}"),
        (Some(a), _) => format!("issue {a}"),
        _ => "no earlier issue".to_owned(),
    };
    let _ = writeln!(
        out,
        "\nagainst the previous issues (median of {}; trend over {}, this one last)",
        range(&comparison.median_of),
        range(&comparison.trend_of)
    );
    for f in &comparison.figures {
        let _ = writeln!(
            out,
            "  {:<28} {:>9}  median {:>9}  {}",
            f.label,
            f.kind.shown(f.value),
            f.kind.shown(f.median),
            spark(&f.trend)
        );
    }
}

/// Values as a line of eighth-high blocks, lowest to highest; a space for no value.
fn spark(values: &[Option<f64>]) -> String {
    const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let known = values.iter().flatten();
    let (low, high) = known.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    values
        .iter()
        .map(|value| match value {
            None => ' ',
            Some(_) if high <= low => LEVELS[3],
            Some(v) => LEVELS[(((v - low) / (high - low)) * 7.0).round() as usize],
        })
        .collect()
}

fn date(millis: i64, zone: &TimeZone) -> String {
    from_millis(millis).to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d").to_string()
}

fn reasons(out: &mut String, title: &str, reasons: &[ReasonCount]) {
    if reasons.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    for reason in reasons {
        let _ = writeln!(out, "  {:>9}  {}", thousands(reason.count), reason.reason);
    }
}

/// Hourly buckets added up per 6 hours, labelled by the hours they cover.
fn six_hourly(hourly: &Buckets) -> Vec<(String, i64)> {
    hourly
        .counts
        .chunks(6)
        .enumerate()
        .map(|(index, chunk)| (format!("{}-{} h", index * 6, index * 6 + chunk.len()), chunk.iter().sum()))
        .collect()
}

/// One line per row: label, bar, count and share of `whole`.
fn histogram(out: &mut String, rows: &[(String, i64)], whole: i64) {
    let max = rows.iter().map(|(_, count)| *count).max().unwrap_or(0);
    for (label, count) in rows {
        let _ = writeln!(
            out,
            "  {label:<9} {:<width$} {:>7}  {:>7}",
            bar(*count, max),
            thousands(*count),
            percent(*count, whole),
            width = BAR_CELLS
        );
    }
}

fn stars(out: &mut String, stars: &StarCounts) {
    let rows: Vec<(String, i64)> = (1..=5).rev().map(|s| (format!("{s} ★"), stars.0[s - 1])).collect();
    histogram(out, &rows, stars.votes());
}

/// A bar `count / max` of [`BAR_CELLS`] cells long, in eighths of a cell; at least a sliver for any count.
fn bar(count: i64, max: i64) -> String {
    const PARTS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    if count <= 0 || max <= 0 {
        return String::new();
    }
    let eighths = ((count as f64 / max as f64) * (BAR_CELLS * 8) as f64).round().max(1.0) as usize;
    let mut bar = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        bar.push(PARTS[eighths % 8 - 1]);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trend_reads_from_lowest_to_highest_with_gaps() {
        assert_eq!(spark(&[Some(0.0), Some(0.5), None, Some(1.0)]), "▁▅ █");
        assert_eq!(spark(&[Some(2.0), Some(2.0)]), "▄▄");
    }

    #[test]
    fn bars_are_proportional_in_eighths_of_a_cell() {
        assert_eq!(bar(10, 10).chars().count(), BAR_CELLS);
        assert_eq!(bar(5, 10), "█".repeat(BAR_CELLS / 2));
        assert_eq!(bar(1, 1_000_000), "▏", "any count shows");
        assert_eq!(bar(0, 10), "");
        assert_eq!(bar(1, 16), "█▉");
    }

    #[test]
    fn a_star_histogram_prints_counts_and_shares_from_five_stars_down() {
        let mut out = String::new();
        stars(&mut out, &StarCounts([0, 1, 1, 2, 1]));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("  5 ★") && lines[0].ends_with("1   20.0 %"), "{out}");
        assert!(lines[1].contains(&"█".repeat(BAR_CELLS)) && lines[1].ends_with("2   40.0 %"), "{out}");
        assert!(lines[4].starts_with("  1 ★") && lines[4].ends_with("0    0.0 %"), "{out}");
    }
}
