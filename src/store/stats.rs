//! The figures behind `tidings stats` and `tidings report`: what happened to each issue after it started.
//!
//! Everything is aggregated in the database (`GROUP BY`, and time buckets as integer division of milliseconds),
//! so a list with a million deliveries costs a few index scans and never a million rows in memory. Test sends
//! (`deliveries.is_test`) are never counted, and flagged votes never enter an average or a distribution: they are
//! counted apart.
//!
//! The overview counts deliveries per issue and status from the `(issue_id, status)` index alone (no table
//! reads) and takes away the few test sends found through a small partial index; the ambiguous ones also have
//! one (`migrations/*/0003_stats_indexes.sql`).

use std::collections::HashMap;

use anyhow::Context;
use serde::Serialize;

use super::{DeliveryCounts, Store, Tally, on_pool};

/// How many reasons a breakdown keeps; the rest are added up as one "other" line.
const MAX_REASONS: usize = 10;

/// One issue's line in `tidings stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueSummary {
    pub issue_id: i64,
    pub number: i64,
    pub subject: String,
    pub status: String,
    /// When sending began, in milliseconds.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub deliveries: DeliveryCounts,
    /// Unsubscribes made through this issue's links (its unsubscribe page or its one-click header).
    pub unsubscribed: i64,
    /// Subscribers who loaded the open pixel at least once (unverified: image prefetching inflates it).
    pub unique_opens: i64,
    /// Genuine votes.
    pub tally: Tally,
    /// Votes that looked automated, left out of the tally.
    pub flagged_votes: i64,
    /// What came back after sending (bounces and complaints reported later).
    pub reports: ReportCounts,
}

/// What came back after the relay accepted an issue's messages: for each kind of report, how many of the
/// issue's deliveries one was about (several reports about one delivery count once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReportCounts {
    /// Hard bounces reported later (also counted in `bounced`).
    pub hard: i64,
    /// Soft bounces (mailbox full, a temporary failure that finally failed).
    pub soft: i64,
    /// Refusals for policy or reputation: the sender's problem, nobody suppressed.
    pub policy: i64,
    /// Spam complaints from feedback loops.
    pub complaints: i64,
    pub auto_replies: i64,
    pub delayed: i64,
}

impl ReportCounts {
    fn add(&mut self, kind: &str, count: i64) {
        match kind {
            "hard" => self.hard += count,
            "soft" => self.soft += count,
            "policy" => self.policy += count,
            "complaint" => self.complaints += count,
            "auto-reply" => self.auto_replies += count,
            "delayed" => self.delayed += count,
            _ => {}
        }
    }
}

/// Reports per issue and kind, counted once per delivery.
const REPORTS_BY_KIND: &str = "SELECT issue_id, kind, COUNT(DISTINCT delivery_id) FROM bounce_reports \
     WHERE {WHERE} AND is_test = false AND delivery_id IS NOT NULL GROUP BY issue_id, kind";

/// How many deliveries ended with one reason (an SMTP reply, addresses already scrubbed to `<recipient>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: i64,
}

/// Counts per time bucket: bucket `i` holds what happened in `[origin + i * width, origin + (i + 1) * width)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets {
    /// The start of bucket 0, in milliseconds.
    pub origin: i64,
    /// The width of a bucket, in milliseconds.
    pub width: i64,
    /// One count per bucket, the empty ones included.
    pub counts: Vec<i64>,
}

impl Buckets {
    pub fn total(&self) -> i64 {
        self.counts.iter().sum()
    }
}

/// Star votes per number of stars; index 0 is one star.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StarCounts(pub [i64; 5]);

impl StarCounts {
    pub fn votes(&self) -> i64 {
        self.0.iter().sum()
    }

    pub fn tally(&self) -> Tally {
        let stars = self.0.iter().zip(1..).map(|(count, stars)| count * stars).sum();
        Tally { votes: self.votes(), stars }
    }
}

/// The in-depth figures of one issue for `tidings stats N` and the report.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueDetail {
    pub deliveries: DeliveryCounts,
    /// Deliveries per number of attempts made (`(attempts, deliveries)`, fewest attempts first).
    pub attempts: Vec<(i64, i64)>,
    pub bounce_reasons: Vec<ReasonCount>,
    pub failure_reasons: Vec<ReasonCount>,
    /// Messages accepted by the relay, by the time they were.
    pub delivered_over_time: Buckets,
    /// Unique opens by the time of each subscriber's first open, hourly over the first 72 hours.
    pub opens_first_72h: Buckets,
    pub unique_opens: i64,
    /// Every pixel load counted, repeats included.
    pub opens: i64,
    pub stars: StarCounts,
    pub flagged_stars: StarCounts,
    /// Unsubscribes through this issue's links, per day after the start.
    pub unsubscribes_per_day: Buckets,
    /// Tracked clicks per link of the issue, in the order of the links (recorded only with
    /// `tracking.clicks = true`).
    pub clicks: Vec<LinkClicks>,
    /// What came back after sending.
    pub reports: ReportCounts,
}

/// The tracked clicks on one link of an issue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkClicks {
    /// The link's number in the issue (`issue_links.position`).
    pub position: i64,
    pub url: String,
    /// Subscribers who followed it.
    pub people: i64,
    /// Every click, repeats included.
    pub clicks: i64,
}

impl Store {
    /// Every issue of a list that has started sending, by number, with its figures.
    pub async fn issue_summaries(&self, list_id: i64) -> anyhow::Result<Vec<IssueSummary>> {
        self.summaries(list_id, i64::MAX, i64::MAX).await
    }

    /// The last `count` issues of a list numbered up to `up_to` that have started sending, by number, with
    /// their figures (what the report compares an issue with).
    pub async fn recent_issue_summaries(
        &self,
        list_id: i64,
        up_to: i64,
        count: i64,
    ) -> anyhow::Result<Vec<IssueSummary>> {
        self.summaries(list_id, up_to, count).await
    }

    /// The issues numbered up to `up_to` that have started, the last `count` of them.
    async fn summaries(&self, list_id: i64, up_to: i64, count: i64) -> anyhow::Result<Vec<IssueSummary>> {
        let scope = "SELECT id FROM issues WHERE list_id = $1 AND started_at IS NOT NULL AND number <= $2 \
                     ORDER BY number DESC LIMIT $3";
        let issues = format!(
            "SELECT id, number, subject, status, started_at, finished_at FROM issues \
             WHERE id IN ({scope}) AND started_at IS NOT NULL ORDER BY number"
        );
        // Each reads one index in (issue_id, ...) order: with the list's issues as an IN list, the rows arrive
        // grouped, with no sort. Every delivery comes from the (issue_id, status) index alone; the few test sends
        // are taken away below.
        let of_list = format!("issue_id IN ({scope})");
        let of_list = of_list.as_str();
        let deliveries =
            format!("SELECT issue_id, status, COUNT(*) FROM deliveries WHERE {of_list} GROUP BY issue_id, status");
        let tests = format!(
            "SELECT issue_id, status, COUNT(*) FROM deliveries WHERE {of_list} AND is_test = true GROUP BY issue_id, status"
        );
        let ambiguous = format!(
            "SELECT issue_id, 'ever_ambiguous', COUNT(*) FROM deliveries \
             WHERE {of_list} AND ambiguous_at IS NOT NULL AND is_test = false GROUP BY issue_id"
        );
        let opens = format!("SELECT issue_id, COUNT(*) FROM opens WHERE {of_list} GROUP BY issue_id");
        let unsubscribes =
            format!("SELECT issue_id, COUNT(*) FROM events WHERE {of_list} AND kind = 'unsubscribe' GROUP BY issue_id");
        let votes = format!(
            "SELECT issue_id, flagged, COUNT(*), CAST(SUM(stars) AS BIGINT) FROM votes WHERE {of_list} \
             GROUP BY issue_id, flagged"
        );
        let reports = REPORTS_BY_KIND.replace("{WHERE}", of_list);
        type IssueLine = (i64, i64, String, String, Option<i64>, Option<i64>);
        type Counted = Vec<(i64, String, i64)>;
        let reports: Counted =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(reports)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await)
                .context("cannot read the issues' reports")?;
        let mut report_counts: HashMap<i64, ReportCounts> = HashMap::new();
        for (issue_id, kind, count) in reports {
            report_counts.entry(issue_id).or_default().add(&kind, count);
        }
        let (issues, deliveries, tests, ambiguous, opens, unsubscribes, votes) = on_pool!(self, pool => {
            let issues: Vec<IssueLine> = sqlx::query_as(sqlx::AssertSqlSafe(issues)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let deliveries: Counted = sqlx::query_as(sqlx::AssertSqlSafe(deliveries)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let tests: Counted = sqlx::query_as(sqlx::AssertSqlSafe(tests)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let ambiguous: Counted = sqlx::query_as(sqlx::AssertSqlSafe(ambiguous)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let opens: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(opens)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let unsubscribes: Vec<(i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(unsubscribes)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            let votes: Vec<(i64, bool, i64, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(votes)).bind(list_id).bind(up_to).bind(count).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((issues, deliveries, tests, ambiguous, opens, unsubscribes, votes))
        })
        .context("cannot read the issues' figures")?;

        let mut counts: HashMap<i64, DeliveryCounts> = HashMap::new();
        for (rows, sign) in [(deliveries, 1), (tests, -1), (ambiguous, 1)] {
            for (issue_id, status, count) in rows {
                add_status(counts.entry(issue_id).or_default(), &status, sign * count);
            }
        }
        let opens: HashMap<i64, i64> = opens.into_iter().collect();
        let unsubscribes: HashMap<i64, i64> = unsubscribes.into_iter().collect();
        let mut tallies: HashMap<i64, (Tally, i64)> = HashMap::new();
        for (issue_id, flagged, count, stars) in votes {
            let entry = tallies.entry(issue_id).or_default();
            if flagged {
                entry.1 += count;
            } else {
                entry.0 = Tally { votes: count, stars };
            }
        }
        Ok(issues
            .into_iter()
            .map(|(issue_id, number, subject, status, started_at, finished_at)| {
                let (tally, flagged_votes) = tallies.get(&issue_id).copied().unwrap_or_default();
                let deliveries = counts.remove(&issue_id).unwrap_or_default().for_issue(&status);
                IssueSummary {
                    issue_id,
                    number,
                    subject,
                    status,
                    started_at,
                    finished_at,
                    deliveries,
                    unsubscribed: unsubscribes.get(&issue_id).copied().unwrap_or(0),
                    unique_opens: opens.get(&issue_id).copied().unwrap_or(0),
                    tally,
                    flagged_votes,
                    reports: report_counts.get(&issue_id).copied().unwrap_or_default(),
                }
            })
            .collect())
    }

    /// What came back about one issue's messages.
    pub async fn issue_report_counts(&self, issue_id: i64) -> anyhow::Result<ReportCounts> {
        let sql = REPORTS_BY_KIND.replace("{WHERE}", "issue_id = $1");
        let rows: Vec<(i64, String, i64)> =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(issue_id).fetch_all(pool).await)
                .context("cannot read the issue's reports")?;
        let mut counts = ReportCounts::default();
        for (_, kind, count) in rows {
            counts.add(&kind, count);
        }
        Ok(counts)
    }

    /// The first and last time a message of the issue was accepted by the relay, in milliseconds.
    pub async fn delivered_span(&self, issue_id: i64) -> anyhow::Result<Option<(i64, i64)>> {
        let sql = "SELECT MIN(sent_at), MAX(sent_at) FROM deliveries \
                   WHERE issue_id = $1 AND is_test = false AND status = 'sent'";
        let (first, last): (Option<i64>, Option<i64>) =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_one(pool).await)
                .context("cannot read when the issue was delivered")?;
        Ok(first.zip(last))
    }

    /// The in-depth figures of one issue. Time buckets start at `origin` (when sending began); deliveries are
    /// counted in buckets `delivered_width` milliseconds wide, opens hourly for 72 hours, unsubscribes daily.
    pub async fn issue_detail(&self, issue_id: i64, origin: i64, delivered_width: i64) -> anyhow::Result<IssueDetail> {
        const HOUR: i64 = 3_600_000;
        const DAY: i64 = 24 * HOUR;
        let attempts = "SELECT attempts, COUNT(*) FROM deliveries WHERE issue_id = $1 AND is_test = false \
                        GROUP BY attempts ORDER BY attempts";
        let reasons = "SELECT status, COALESCE(last_error, ''), COUNT(*) FROM deliveries \
                       WHERE issue_id = $1 AND is_test = false AND status IN ('bounced', 'failed') \
                       GROUP BY status, last_error ORDER BY COUNT(*) DESC, COALESCE(last_error, '')";
        let delivered = "SELECT (sent_at - $2) / $3, COUNT(*) FROM deliveries \
                         WHERE issue_id = $1 AND is_test = false AND status = 'sent' AND sent_at >= $2 \
                         GROUP BY 1";
        let opens = "SELECT COUNT(*), CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM opens WHERE issue_id = $1";
        let first_opens = "SELECT (first_at - $2) / $3, COUNT(*) FROM opens \
                           WHERE issue_id = $1 AND first_at >= $2 AND first_at < $2 + 72 * $3 \
                           GROUP BY 1";
        let stars = "SELECT stars, flagged, COUNT(*) FROM votes WHERE issue_id = $1 GROUP BY stars, flagged";
        // An unsubscribe through a test send's links can come before the start: it counts on the first day.
        let unsubscribes = "SELECT CASE WHEN created_at < $2 THEN 0 ELSE (created_at - $2) / $3 END, COUNT(*) \
                            FROM events WHERE issue_id = $1 AND kind = 'unsubscribe' GROUP BY 1";
        let clicks = "SELECT l.position, l.url, COUNT(c.position), CAST(COALESCE(SUM(c.count), 0) AS BIGINT) \
                      FROM issue_links l LEFT JOIN clicks c ON c.issue_id = l.issue_id AND c.position = l.position \
                      WHERE l.issue_id = $1 GROUP BY l.position, l.url ORDER BY l.position";
        let width = delivered_width.max(1);
        let deliveries = self.delivery_counts(issue_id).await?;
        let reports = self.issue_report_counts(issue_id).await?;
        type Bucketed = Vec<(i64, i64)>;
        let (attempts, reasons, delivered, (unique_opens, opens), first_opens, stars, unsubscribes, clicks) =
            on_pool!(self, pool => {
                let attempts: Vec<(i64, i64)> = sqlx::query_as(attempts).bind(issue_id).fetch_all(pool).await?;
                let reasons: Vec<(String, String, i64)> = sqlx::query_as(reasons).bind(issue_id).fetch_all(pool).await?;
                let delivered: Bucketed =
                    sqlx::query_as(delivered).bind(issue_id).bind(origin).bind(width).fetch_all(pool).await?;
                let opens: (i64, i64) = sqlx::query_as(opens).bind(issue_id).fetch_one(pool).await?;
                let first_opens: Bucketed =
                    sqlx::query_as(first_opens).bind(issue_id).bind(origin).bind(HOUR).fetch_all(pool).await?;
                let stars: Vec<(i64, bool, i64)> = sqlx::query_as(stars).bind(issue_id).fetch_all(pool).await?;
                let unsubscribes: Bucketed =
                    sqlx::query_as(unsubscribes).bind(issue_id).bind(origin).bind(DAY).fetch_all(pool).await?;
                let clicks: Vec<(i64, String, i64, i64)> = sqlx::query_as(clicks).bind(issue_id).fetch_all(pool).await?;
                Ok::<_, sqlx::Error>((attempts, reasons, delivered, opens, first_opens, stars, unsubscribes, clicks))
            })
            .context("cannot read the issue's figures")?;

        let (mut genuine, mut flagged) = (StarCounts::default(), StarCounts::default());
        for (stars, is_flagged, count) in stars {
            let Some(index) = usize::try_from(stars - 1).ok().filter(|i| *i < 5) else { continue };
            let counts = if is_flagged { &mut flagged } else { &mut genuine };
            counts.0[index] += count;
        }
        let reasons_of = |status: &str| {
            group_reasons(reasons.iter().filter(|(s, _, _)| s == status).map(|(_, reason, count)| (reason, *count)))
        };
        Ok(IssueDetail {
            deliveries,
            attempts,
            bounce_reasons: reasons_of("bounced"),
            failure_reasons: reasons_of("failed"),
            delivered_over_time: dense(origin, width, &delivered, None),
            opens_first_72h: dense(origin, HOUR, &first_opens, Some(72)),
            unique_opens,
            opens,
            stars: genuine,
            flagged_stars: flagged,
            unsubscribes_per_day: dense(origin, DAY, &unsubscribes, None),
            clicks: clicks
                .into_iter()
                .map(|(position, url, people, clicks)| LinkClicks { position, url, people, clicks })
                .collect(),
            reports,
        })
    }
}

/// Adds `count` deliveries in `status` (or `ever_ambiguous`) to `counts`.
fn add_status(counts: &mut DeliveryCounts, status: &str, count: i64) {
    let field = match status {
        "queued" => &mut counts.queued,
        "sending" => &mut counts.sending,
        "sent" => &mut counts.sent,
        "retry_wait" => &mut counts.retry_wait,
        "failed" => &mut counts.failed,
        "bounced" => &mut counts.bounced,
        "suppressed" => &mut counts.suppressed,
        "ambiguous" => &mut counts.ambiguous,
        "ever_ambiguous" => {
            counts.ever_ambiguous += count;
            return;
        }
        _ => return,
    };
    *field += count;
    counts.total += count;
}

/// The most frequent reasons, at most [`MAX_REASONS`], with the rest added up as one last line.
fn group_reasons<'a>(rows: impl Iterator<Item = (&'a String, i64)>) -> Vec<ReasonCount> {
    let mut grouped: Vec<ReasonCount> = Vec::new();
    for (reason, count) in rows {
        let reason = readable_reason(reason);
        match grouped.iter_mut().find(|r| r.reason == reason) {
            Some(existing) => existing.count += count,
            None => grouped.push(ReasonCount { reason: reason.to_owned(), count }),
        }
    }
    grouped.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));
    if grouped.len() > MAX_REASONS {
        let rest: i64 = grouped.drain(MAX_REASONS - 1..).map(|r| r.count).sum();
        grouped.push(ReasonCount { reason: "(other reasons)".to_owned(), count: rest });
    }
    grouped
}

/// A stored reason as people read it. A bounce is stored as `550 5.1.1: ` followed by the whole reply, which
/// usually repeats that code; the repetition goes.
fn readable_reason(stored: &str) -> &str {
    let stored = stored.trim();
    if stored.is_empty() {
        return "(no reply recorded)";
    }
    match stored.split_once(": ") {
        Some((prefix, reply)) if reply.starts_with(prefix) => reply,
        _ => stored,
    }
}

/// Sparse `(bucket, count)` rows as one count per bucket from 0 to the last one (or `len` buckets).
fn dense(origin: i64, width: i64, rows: &[(i64, i64)], len: Option<usize>) -> Buckets {
    let last = rows.iter().filter(|(bucket, _)| *bucket >= 0).map(|(bucket, _)| *bucket + 1).max().unwrap_or(0);
    // Bucket widths are chosen so that there are a few dozen; the cap only guards against a bad width.
    let len = len.unwrap_or_else(|| usize::try_from(last).unwrap_or(0).min(10_000));
    let mut counts = vec![0; len];
    for (bucket, count) in rows {
        if let Some(slot) = usize::try_from(*bucket).ok().and_then(|b| counts.get_mut(b)) {
            *slot += count;
        }
    }
    Buckets { origin, width, counts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_buckets_are_filled_with_zeros_up_to_the_last_one() {
        let buckets = dense(1_000, 10, &[(0, 2), (3, 5)], None);
        assert_eq!(buckets.counts, vec![2, 0, 0, 5]);
        assert_eq!(dense(0, 10, &[(1, 1)], Some(3)).counts, vec![0, 1, 0]);
        assert!(dense(0, 10, &[], None).counts.is_empty());
    }

    #[test]
    fn reasons_beyond_the_tenth_are_added_up_as_one_line() {
        let reasons: Vec<(String, i64)> = (0..12).map(|i| (format!("550 5.1.1 reason {i:02}"), 20 - i)).collect();
        let grouped = group_reasons(reasons.iter().map(|(r, c)| (r, *c)));
        assert_eq!(grouped.len(), 10);
        assert_eq!(grouped[0], ReasonCount { reason: "550 5.1.1 reason 00".to_owned(), count: 20 });
        assert_eq!(grouped[9], ReasonCount { reason: "(other reasons)".to_owned(), count: 11 + 10 + 9 });
    }

    #[test]
    fn a_bounce_reason_says_its_code_once() {
        assert_eq!(readable_reason("550 5.1.1: 550 5.1.1 no such user"), "550 5.1.1 no such user");
        assert_eq!(readable_reason("550 : 550 no such user"), "550 no such user");
        assert_eq!(readable_reason("550 5.1.1: mailbox gone: really"), "550 5.1.1: mailbox gone: really");
        assert_eq!(readable_reason(" "), "(no reply recorded)");
    }

    #[test]
    fn star_counts_make_the_tally() {
        let stars = StarCounts([0, 1, 1, 2, 1]);
        assert_eq!(stars.tally(), Tally { votes: 5, stars: 2 + 3 + 8 + 5 });
    }
}
