//! What the public pages and `/metrics` read: the archive of sent issues with their tallies, and the totals of
//! messages, the queue, opens and votes.

use anyhow::Context;

use super::votes::Tally;
use crate::store::{Store, on_pool};

/// A sent issue as the archive lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveEntry {
    pub number: i64,
    pub subject: String,
    pub period: String,
    /// When sending finished (or began, for an issue sent before that was recorded), in milliseconds.
    pub sent_at: Option<i64>,
    pub tally: Tally,
}

/// Totals for `/metrics`. Test sends are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WebCounts {
    /// Deliveries accepted by the relay.
    pub sent: i64,
    /// Deliveries given up on or hard-bounced.
    pub failed: i64,
    /// Deliveries not yet settled (queued, sending, waiting to retry, ambiguous).
    pub queue_depth: i64,
    /// Every open pixel hit recorded (unverified: image prefetching inflates it).
    pub opens: i64,
    /// Subscriber and issue pairs with at least one open.
    pub unique_opens: i64,
    /// Genuine votes, one per subscriber and issue.
    pub votes: i64,
    /// Votes that looked automated, kept apart.
    pub flagged_votes: i64,
}

impl Store {
    /// The sent issues of a list, newest number first, at most `limit`, each with its tally.
    pub async fn archive(&self, list_id: i64, limit: u32) -> anyhow::Result<Vec<ArchiveEntry>> {
        let sql = "SELECT i.number, i.subject, i.period, COALESCE(i.finished_at, i.started_at), \
                   COALESCE(v.votes, 0), COALESCE(v.stars, 0) FROM issues i \
                   LEFT JOIN (SELECT issue_id, COUNT(*) AS votes, CAST(SUM(stars) AS BIGINT) AS stars FROM votes \
                   WHERE flagged = false GROUP BY issue_id) v ON v.issue_id = i.id \
                   WHERE i.list_id = $1 AND i.status = 'sent' ORDER BY i.number DESC LIMIT $2";
        let rows: Vec<(i64, String, String, Option<i64>, i64, i64)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(list_id)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)
        .context("cannot read the archive")?;
        Ok(rows
            .into_iter()
            .map(|(number, subject, period, sent_at, votes, stars)| ArchiveEntry {
                number,
                subject,
                period,
                sent_at,
                tally: Tally { votes, stars },
            })
            .collect())
    }

    /// The totals `/metrics` reports, in one round trip.
    pub async fn web_counts(&self) -> anyhow::Result<WebCounts> {
        let sql = "SELECT \
                   (SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND is_test = false), \
                   (SELECT COUNT(*) FROM deliveries WHERE status IN ('failed', 'bounced') AND is_test = false), \
                   (SELECT COUNT(*) FROM deliveries WHERE status IN ('queued', 'sending', 'retry_wait', 'ambiguous') \
                    AND is_test = false), \
                   (SELECT CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM opens), \
                   (SELECT COUNT(*) FROM opens), \
                   (SELECT COUNT(*) FROM votes WHERE flagged = false), \
                   (SELECT COUNT(*) FROM votes WHERE flagged = true)";
        let row: (i64, i64, i64, i64, i64, i64, i64) =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await).context("cannot count for metrics")?;
        let (sent, failed, queue_depth, opens, unique_opens, votes, flagged_votes) = row;
        Ok(WebCounts { sent, failed, queue_depth, opens, unique_opens, votes, flagged_votes })
    }
}
