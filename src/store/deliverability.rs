//! The figures behind `tidings stats --deliverability`: per list and recipient domain, what became of the
//! messages first tried in a window (delivered, hard-bounced, failed, ambiguous), how many of them someone
//! complained about through a feedback loop, and how many were opened (unverified).
//!
//! Two `GROUP BY` queries, each the same text on both backends, aggregate in the database: nothing here loads
//! a row per delivery. The domain is cut from `subscribers.email_normalised` in SQL (after its last `@`, with
//! `rtrim` and `replace`, which SQLite and PostgreSQL both have), so a list with 100,000 deliveries returns one
//! row per list, domain and status. Which domain belongs to which mailbox provider is decided in `stats`.

use std::collections::HashMap;

use anyhow::Context;

use super::{Store, on_pool};

/// The domain of the subscriber's normalised address (everything after the last `@`), `''` for a delivery
/// whose subscriber was erased.
const DOMAIN: &str = "COALESCE(substr(s.email_normalised, \
     length(rtrim(s.email_normalised, replace(s.email_normalised, '@', ''))) + 1), '')";

/// The deliveries counted: real sends (no test sends) first tried at or after `$1`, of the list `$2` (or of
/// every list when `$2` is NULL).
const COUNTED: &str =
    "d.is_test = false AND d.first_attempt_at >= $1 AND (CAST($2 AS BIGINT) IS NULL OR i.list_id = $2)";

/// What became of the messages of one list to one recipient domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DomainCounts {
    pub list_id: i64,
    /// Lowercase, as in the normalised address; empty for deliveries whose subscriber was erased.
    pub domain: String,
    /// Accepted by the relay and not reported back as bounced since.
    pub delivered: i64,
    /// Hard bounces: refused at once, or reported later (the address does not exist).
    pub bounced: i64,
    /// Refused or given up on for another reason (soft bounces, policy refusals).
    pub failed: i64,
    /// Handed over without knowing whether the relay took it.
    pub ambiguous: i64,
    /// Deliveries someone complained about (feedback-loop reports), once per delivery.
    pub complained: i64,
    /// Deliveries whose open pixel was loaded (unverified: image prefetching inflates it).
    pub opened: i64,
}

impl DomainCounts {
    /// Every message that was tried and settled: delivered, bounced, failed or ambiguous.
    pub fn attempted(&self) -> i64 {
        self.delivered + self.bounced + self.failed + self.ambiguous
    }
}

impl Store {
    /// Per list and recipient domain, what became of the messages first tried at or after `since`
    /// (milliseconds), for one list or every list; ordered by list and domain.
    pub async fn deliverability(&self, since: i64, list_id: Option<i64>) -> anyhow::Result<Vec<DomainCounts>> {
        // Deliveries and their opens are counted per subscriber first, so the domain is cut once per subscriber
        // rather than once per delivery (a third of the CPU time on 100,000 deliveries).
        let outcomes = format!(
            "SELECT g.list_id, {DOMAIN}, g.status, CAST(SUM(g.messages) AS BIGINT), CAST(SUM(g.opened) AS BIGINT) \
             FROM (SELECT i.list_id, d.subscriber_id, d.status, COUNT(*) AS messages, COUNT(o.issue_id) AS opened \
                   FROM deliveries d JOIN issues i ON i.id = d.issue_id \
                   LEFT JOIN opens o ON o.issue_id = d.issue_id AND o.subscriber_id = d.subscriber_id \
                   WHERE {COUNTED} AND d.status IN ('sent', 'bounced', 'failed', 'ambiguous') GROUP BY 1, 2, 3) g \
             LEFT JOIN subscribers s ON s.id = g.subscriber_id GROUP BY 1, 2, 3"
        );
        // Reports are few; each reaches its delivery by primary key.
        let complaints = format!(
            "SELECT i.list_id, {DOMAIN}, COUNT(DISTINCT d.id) FROM bounce_reports r \
             JOIN deliveries d ON d.id = r.delivery_id JOIN issues i ON i.id = d.issue_id \
             LEFT JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE r.kind = 'complaint' AND r.is_test = false AND {COUNTED} \
             AND d.status IN ('sent', 'bounced', 'failed', 'ambiguous') GROUP BY 1, 2"
        );
        type Statuses = Vec<(i64, String, String, i64, i64)>;
        type Counted = Vec<(i64, String, i64)>;
        let (outcomes, complaints) = on_pool!(self, pool => {
            let outcomes: Statuses =
                sqlx::query_as(sqlx::AssertSqlSafe(outcomes)).bind(since).bind(list_id).fetch_all(pool).await?;
            let complaints: Counted =
                sqlx::query_as(sqlx::AssertSqlSafe(complaints)).bind(since).bind(list_id).fetch_all(pool).await?;
            Ok::<_, sqlx::Error>((outcomes, complaints))
        })
        .context("cannot read the deliverability figures")?;

        let mut rows: HashMap<(i64, String), DomainCounts> = HashMap::new();
        for (list_id, domain, status, count, opened) in outcomes {
            let entry = rows.entry((list_id, domain.clone())).or_insert_with(|| new_row(list_id, domain));
            entry.opened += opened;
            match status.as_str() {
                "sent" => entry.delivered += count,
                "bounced" => entry.bounced += count,
                "failed" => entry.failed += count,
                _ => entry.ambiguous += count,
            }
        }
        for (list_id, domain, count) in complaints {
            rows.entry((list_id, domain.clone())).or_insert_with(|| new_row(list_id, domain)).complained += count;
        }
        let mut rows: Vec<DomainCounts> = rows.into_values().collect();
        rows.sort_by(|a, b| (a.list_id, &a.domain).cmp(&(b.list_id, &b.domain)));
        Ok(rows)
    }
}

fn new_row(list_id: i64, domain: String) -> DomainCounts {
    DomainCounts { list_id, domain, ..Default::default() }
}
