//! Deliveries: claimed under a lease, their subscribers checked per batch, reclaimed after a crash.
//!
//! Claiming marks a batch `sending` with an owner and an expiry; several daemons on PostgreSQL claim disjoint
//! batches with `FOR UPDATE SKIP LOCKED`. Outcomes and intents are written by `recording.rs`. A delivery whose
//! lease expired, or whose daemon stopped sending heartbeats, is reclaimed: as `ambiguous` (sent again) when its
//! intent says its final dot may have been written, back to `queued` otherwise.

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use super::{Backend, Store, on_pool};
use crate::clock::to_millis;

/// Whether a subscriber may still get a message: their subscription to the list and their address's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EligibilityQuestion {
    pub list_id: i64,
    pub subscriber_id: i64,
    pub suppression_hash: String,
}

/// A claimed delivery with what sending it needs.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub issue_id: i64,
    pub list_id: i64,
    pub subscriber_id: Option<i64>,
    pub message_id: String,
    pub attempts: i64,
    pub first_attempt_at: Option<i64>,
    pub ambiguous_at: Option<i64>,
    /// The subscriber's address and name; `None` when the subscriber was erased meanwhile.
    pub email: Option<String>,
    pub name: Option<String>,
}

/// How a delivery's attempt ended, as the store records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Accepted by the relay.
    Sent { code: Option<u16>, reply: String },
    /// A temporary failure: try again at `not_before`.
    Retry { not_before: Timestamp, code: Option<u16>, error: String },
    /// Given up on.
    Failed { code: Option<u16>, error: String },
    /// The address does not exist: the subscription becomes `bounced` and the address is suppressed.
    Bounced { code: u16, error: String },
    /// Not sent: unsubscribed, suppressed or erased before it went out.
    Suppressed { reason: String },
    /// The outcome is unknown; it is sent again from `not_before` (or never, without `resend`).
    Ambiguous { not_before: Timestamp, error: String, resend: bool },
    /// Not attempted (the relay was unavailable, the issue paused, the daemon stopping): back to the queue.
    Released { not_before: Timestamp, error: Option<String> },
}

/// The outcome of one delivery, to record.
#[derive(Debug, Clone)]
pub struct DeliveryResult {
    pub delivery_id: i64,
    pub list_id: i64,
    pub issue_id: i64,
    pub subscriber_id: Option<i64>,
    /// For a bounce: the address's suppression hash.
    pub suppression_hash: Option<String>,
    /// Whether this result comes from a real attempt (it then counts toward `delivery.max_attempts`).
    pub attempted: bool,
    pub settlement: Settlement,
    /// When the outcome became known: the moment of the relay's reply (a sent delivery's `sent_at`).
    pub at: Timestamp,
}

/// Deliveries of an issue per status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub queued: i64,
    pub sending: i64,
    pub sent: i64,
    pub retry_wait: i64,
    pub failed: i64,
    pub bounced: i64,
    pub suppressed: i64,
    pub ambiguous: i64,
    /// Deliveries of a cancelled issue that never went out (they were queued, claimed or waiting to retry when
    /// it was cancelled): they never will.
    pub cancelled: i64,
    /// Deliveries (in any status) of which one attempt had an unknown outcome: possibly received twice.
    pub ever_ambiguous: i64,
    pub total: i64,
}

impl DeliveryCounts {
    /// Deliveries not yet settled.
    pub fn pending(&self) -> i64 {
        self.queued + self.sending + self.retry_wait + self.ambiguous
    }

    /// The counts as people should read them for an issue in `issue_status`: a cancelled issue's unsent
    /// deliveries are not waiting for anything, they are cancelled. Every view of the counts goes through here.
    pub fn for_issue(mut self, issue_status: &str) -> Self {
        if issue_status == "cancelled" {
            self.cancelled += self.queued + self.sending + self.retry_wait;
            (self.queued, self.sending, self.retry_wait) = (0, 0, 0);
        }
        self
    }
}

/// An ambiguous delivery, for `issue status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct AmbiguousDelivery {
    pub delivery_id: i64,
    pub email: Option<String>,
    pub status: String,
    pub ambiguous_at: i64,
    pub last_error: Option<String>,
}

impl Store {
    /// Settles `sending` deliveries whose lease expired, or whose owner stopped beating before `dead_before`:
    /// one with an intent (its final dot may have been written) becomes `ambiguous`, since it may have reached
    /// the relay; one without goes back to the queue as it was never handed over. Returns how many became
    /// ambiguous and how many went back to the queue.
    pub async fn reclaim_abandoned(&self, now: Timestamp, dead_before: Timestamp) -> anyhow::Result<(u64, u64)> {
        // One statement for both kinds, so that the range of `sending` deliveries (which also holds the index
        // entries of every delivery settled since the last vacuum) is read once per step, not twice.
        let sql = "UPDATE deliveries SET \
             status = CASE WHEN in_flight_at IS NULL THEN 'queued' ELSE 'ambiguous' END, \
             ambiguous_at = CASE WHEN in_flight_at IS NULL THEN ambiguous_at ELSE $1 END, \
             not_before = CASE WHEN in_flight_at IS NULL THEN not_before ELSE $1 END, \
             last_error = CASE WHEN in_flight_at IS NULL THEN last_error ELSE \
             'the daemon sending it stopped after its final dot was written, before the reply was recorded' END, \
             in_flight_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
             WHERE status = 'sending' AND (lease_expires_at < $1 \
             OR NOT EXISTS (SELECT 1 FROM daemons WHERE daemons.id = deliveries.lease_owner AND heartbeat_at >= $2)) \
             RETURNING status";
        let settled: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(to_millis(now))
            .bind(to_millis(dead_before))
            .fetch_all(pool)
            .await)?;
        let ambiguous = settled.iter().filter(|(status,)| status == "ambiguous").count() as u64;
        let changed = (ambiguous, settled.len() as u64 - ambiguous);
        Ok(changed)
    }

    /// Claims up to `limit` due deliveries of sending issues for `owner` until `lease_until`.
    pub async fn claim_deliveries(
        &self,
        owner: &str,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> anyhow::Result<Vec<ClaimedDelivery>> {
        // How the claimed ids are picked: on PostgreSQL as an array, so that the claimed rows are found through
        // the primary key (with `id IN (SELECT ...)` the planner hashes the picked ids and reads the whole
        // table for each claim), locked with SKIP LOCKED so that several daemons claim disjoint batches.
        let (pick, picked, lock) = match self.backend() {
            Backend::Sqlite => ("id IN (", ")", ""),
            Backend::Postgres => ("id = ANY(ARRAY(", "))", "FOR UPDATE OF d SKIP LOCKED"),
        };
        // One status at a time, so that each claim is a range of the (status, not_before) index read in order:
        // with `status IN (...)` the database would sort every due row for each batch. Deliveries whose first
        // attempt had an unknown outcome go first, then retries, then the rest. The status is written into the
        // statement (one prepared statement per status): a plan for a status given as a parameter could not
        // use the index, which holds only unsettled deliveries.
        let claim = |status: &str| {
            format!(
                "UPDATE deliveries SET status = 'sending', lease_owner = $1, lease_expires_at = $2, updated_at = $3 \
                 WHERE {pick}SELECT d.id FROM deliveries d JOIN issues i ON i.id = d.issue_id \
                 WHERE d.status = '{status}' AND d.not_before <= $3 AND d.is_test = false \
                 AND i.status = 'sending' ORDER BY d.not_before, d.id LIMIT $4 {lock}{picked} \
                 RETURNING id"
            )
        };
        let details = "SELECT d.id, d.issue_id, i.list_id, d.subscriber_id, d.message_id, d.attempts, d.first_attempt_at, \
                       d.ambiguous_at, s.email, s.name FROM deliveries d JOIN issues i ON i.id = d.issue_id \
                       LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                       WHERE d.lease_owner = $1 AND d.status = 'sending' ORDER BY d.not_before, d.id";
        let result = match self {
            // Each claim returns what sending needs (a data-modifying WITH joined to the issue and subscriber),
            // autocommitted: one statement per status, no second read of the claimed rows.
            Store::Postgres(pool) => {
                let claim_returning = |status: &str| {
                    format!(
                        "WITH c AS ({}, issue_id, subscriber_id, message_id, attempts, first_attempt_at, ambiguous_at, \
                     not_before) \
                     SELECT c.id, c.issue_id, i.list_id, c.subscriber_id, c.message_id, c.attempts, c.first_attempt_at, \
                     c.ambiguous_at, s.email, s.name FROM c JOIN issues i ON i.id = c.issue_id \
                     LEFT JOIN subscribers s ON s.id = c.subscriber_id ORDER BY c.not_before, c.id",
                        claim(status)
                    )
                };
                async {
                    let mut claimed: Vec<ClaimedDelivery> = Vec::new();
                    for status in ["ambiguous", "retry_wait", "queued"] {
                        let wanted = i64::from(limit) - claimed.len() as i64;
                        if wanted <= 0 {
                            break;
                        }
                        let rows: Vec<ClaimedDelivery> = sqlx::query_as(sqlx::AssertSqlSafe(claim_returning(status)))
                            .bind(owner)
                            .bind(to_millis(lease_until))
                            .bind(to_millis(now))
                            .bind(wanted)
                            .fetch_all(pool)
                            .await?;
                        claimed.extend(rows);
                    }
                    Ok::<_, sqlx::Error>(claimed)
                }
                .await
            }
            Store::Sqlite(pool) => {
                async {
                    let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
                    let mut claimed: Vec<(i64,)> = Vec::new();
                    for status in ["ambiguous", "retry_wait", "queued"] {
                        let wanted = i64::from(limit) - claimed.len() as i64;
                        if wanted <= 0 {
                            break;
                        }
                        let rows: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(claim(status)))
                            .bind(owner)
                            .bind(to_millis(lease_until))
                            .bind(to_millis(now))
                            .bind(wanted)
                            .fetch_all(&mut *tx)
                            .await?;
                        claimed.extend(rows);
                    }
                    let rows: Vec<ClaimedDelivery> = if claimed.is_empty() {
                        Vec::new()
                    } else {
                        sqlx::query_as(details).bind(owner).fetch_all(&mut *tx).await?
                    };
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(rows)
                }
                .await
            }
        };
        result.context("cannot claim deliveries")
    }

    /// Whether each subscriber may still receive mail from the list right now (subscribed and not suppressed),
    /// in one query: one answer per question, in order. Asked for each claimed batch; the check that counts is
    /// the one each intent makes (`recording.rs`).
    pub async fn still_eligible_many(&self, questions: &[EligibilityQuestion]) -> anyhow::Result<Vec<bool>> {
        if questions.is_empty() {
            return Ok(Vec::new());
        }
        // One row per question: arrays on PostgreSQL (no JSON to parse), one JSON parameter on SQLite.
        let rows: Vec<(i64,)> = match self {
            Store::Postgres(pool) => {
                let sql = "SELECT q.i FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) \
                           AS q(i, list_id, subscriber_id, hash) \
                           WHERE EXISTS (SELECT 1 FROM subscriptions s WHERE s.list_id = q.list_id \
                           AND s.subscriber_id = q.subscriber_id AND s.status = 'active') \
                           AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = q.hash)";
                sqlx::query_as(sql)
                    .bind((0..questions.len() as i64).collect::<Vec<i64>>())
                    .bind(questions.iter().map(|q| q.list_id).collect::<Vec<i64>>())
                    .bind(questions.iter().map(|q| q.subscriber_id).collect::<Vec<i64>>())
                    .bind(questions.iter().map(|q| q.suppression_hash.clone()).collect::<Vec<String>>())
                    .fetch_all(pool)
                    .await?
            }
            Store::Sqlite(pool) => {
                let sql = "SELECT CAST(j.value ->> 0 AS BIGINT) FROM json_each($1) AS j \
                           WHERE EXISTS (SELECT 1 FROM subscriptions s WHERE s.list_id = CAST(j.value ->> 1 AS BIGINT) \
                           AND s.subscriber_id = CAST(j.value ->> 2 AS BIGINT) AND s.status = 'active') \
                           AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = j.value ->> 3)";
                let encoded: Vec<serde_json::Value> = questions
                    .iter()
                    .enumerate()
                    .map(|(i, q)| serde_json::json!([i, q.list_id, q.subscriber_id, q.suppression_hash]))
                    .collect();
                sqlx::query_as(sql).bind(serde_json::Value::Array(encoded).to_string()).fetch_all(pool).await?
            }
        };
        let mut answers = vec![false; questions.len()];
        for (index,) in rows {
            if let Some(answer) = usize::try_from(index).ok().and_then(|i| answers.get_mut(i)) {
                *answer = true;
            }
        }
        Ok(answers)
    }

    /// Records a test send: a delivery row marked as a test, never counted.
    pub async fn record_test_send(
        &self,
        issue_id: i64,
        recipient: &str,
        message_id: &str,
        status: &str,
        detail: &str,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO deliveries (issue_id, is_test, test_recipient, status, message_id, not_before, attempts, \
                   last_error, first_attempt_at, sent_at, created_at, updated_at) \
                   VALUES ($1, true, $2, $3, $4, $5, 1, $6, $5, CASE WHEN $3 = 'sent' THEN $5 END, $5, $5)";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(recipient)
            .bind(status)
            .bind(message_id)
            .bind(to_millis(now))
            .bind(detail)
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Deliveries of an issue per status (test sends excluded).
    pub async fn delivery_counts(&self, issue_id: i64) -> anyhow::Result<DeliveryCounts> {
        let sql = "SELECT status, COUNT(*), SUM(CASE WHEN ambiguous_at IS NULL THEN 0 ELSE 1 END) FROM deliveries \
                   WHERE issue_id = $1 AND is_test = false GROUP BY status";
        let rows: Vec<(String, i64, Option<i64>)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_all(pool).await)?;
        let mut counts = DeliveryCounts::default();
        for (status, count, ambiguous) in rows {
            counts.total += count;
            counts.ever_ambiguous += ambiguous.unwrap_or(0);
            match status.as_str() {
                "queued" => counts.queued = count,
                "sending" => counts.sending = count,
                "sent" => counts.sent = count,
                "retry_wait" => counts.retry_wait = count,
                "failed" => counts.failed = count,
                "bounced" => counts.bounced = count,
                "suppressed" => counts.suppressed = count,
                "ambiguous" => counts.ambiguous = count,
                _ => {}
            }
        }
        Ok(counts)
    }

    /// Deliveries sent since `since` (for the current rate).
    pub async fn sent_since(&self, issue_id: i64, since: Timestamp) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM deliveries WHERE issue_id = $1 AND is_test = false AND status = 'sent' AND sent_at >= $2";
        let (count,): (i64,) =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).bind(to_millis(since)).fetch_one(pool).await)?;
        Ok(count)
    }

    /// Every delivery of the issue with an attempt of unknown outcome, oldest first.
    pub async fn ambiguous_deliveries(&self, issue_id: i64) -> anyhow::Result<Vec<AmbiguousDelivery>> {
        let sql = "SELECT d.id AS delivery_id, s.email, d.status, d.ambiguous_at, d.last_error FROM deliveries d \
                   LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                   WHERE d.issue_id = $1 AND d.is_test = false AND d.ambiguous_at IS NOT NULL ORDER BY d.ambiguous_at, d.id";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_all(pool).await)?)
    }

    /// The earliest `not_before` of a pending delivery of a sending issue: when there is next work. One status
    /// at a time, each walking `deliveries_due` in `not_before` order until the first delivery of a sending
    /// issue, so an idle daemon does not read every waiting delivery (a local-time send leaves most of a list
    /// waiting for hours).
    pub async fn next_due(&self) -> anyhow::Result<Option<Timestamp>> {
        let mut next: Option<i64> = None;
        for status in ["queued", "retry_wait", "ambiguous"] {
            // The status is written into the statement, as in a claim: the index holds only unsettled deliveries.
            let sql = format!(
                "SELECT d.not_before FROM deliveries d JOIN issues i ON i.id = d.issue_id \
                 WHERE d.status = '{status}' AND i.status = 'sending' AND d.is_test = false \
                 ORDER BY d.not_before LIMIT 1"
            );
            let found: Option<(i64,)> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .fetch_optional(pool)
                .await)?;
            if let Some((at,)) = found {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        Ok(next.map(crate::clock::from_millis))
    }
}
