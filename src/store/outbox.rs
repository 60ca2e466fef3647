//! The issue lifecycle around sending: scheduling, holding, starting (creating the outbox: one delivery row per
//! active subscriber), pausing, resuming, cancelling and finishing.
//!
//! Every transition is a compare-and-set on the issue's status, so two daemons (or a daemon and the CLI) racing
//! on one issue cannot both win.

use anyhow::Context;
use jiff::Timestamp;

use super::{IssueRow, Store, on_pool};
use crate::clock::to_millis;

/// A local-time send: a wall-clock date and time, reached in each subscriber's own zone.
#[derive(Debug, Clone)]
pub struct LocalSchedule {
    pub local_at: jiff::civil::DateTime,
    /// The list's zone, for subscribers without a zone (or with one that no longer resolves).
    pub list_zone: String,
    /// `local_at` in the list's zone.
    pub list_instant: Timestamp,
}

impl LocalSchedule {
    pub fn new(local_at: jiff::civil::DateTime, list_zone: &str) -> anyhow::Result<Self> {
        let zone = jiff::tz::TimeZone::get(list_zone)
            .with_context(|| format!("the list's time zone `{list_zone}` is not an IANA time zone"))?;
        let list_instant = crate::domain::resolve_local_time(&zone, local_at);
        Ok(Self { local_at, list_zone: list_zone.to_owned(), list_instant })
    }

    /// `local_at` in the zone with this IANA name; `None` for a name that does not resolve.
    pub fn instant_in(&self, zone: &str) -> Option<Timestamp> {
        let zone = jiff::tz::TimeZone::get(zone).ok()?;
        Some(crate::domain::resolve_local_time(&zone, self.local_at))
    }
}

/// Subscribers whose delivery rows one transaction creates.
pub const OUTBOX_CHUNK: i64 = 10_000;

/// Deliveries not yet settled: the issue is not finished while any remain.
pub(crate) const PENDING: &str = "('queued', 'sending', 'retry_wait', 'ambiguous')";

use super::issues::ISSUE_COLUMNS;

impl Store {
    /// Schedules a draft (or re-schedules a scheduled, queued or not-yet-started paused issue) for `send_at`.
    /// `local_at`: a local-time send's wall-clock date and time (`send_at` is then when the first zone reaches
    /// it). Returns false when the issue is in no state to be scheduled.
    pub async fn schedule_issue(
        &self,
        issue_id: i64,
        send_at: Timestamp,
        local_at: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'scheduled', send_at = $2, local_at = $3, local_time = $4, \
                   hold_reason = NULL, queued_at = NULL, updated_at = $5 \
                   WHERE id = $1 AND (status IN ('draft', 'scheduled', 'queued') \
                   OR (status = 'paused' AND started_at IS NULL))";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(to_millis(send_at))
            .bind(local_at)
            .bind(local_at.is_some())
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// Scheduled issues whose time has come.
    pub async fn due_issues(&self, now: Timestamp) -> anyhow::Result<Vec<IssueRow>> {
        let sql = format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE status = 'scheduled' AND send_at <= $1 ORDER BY send_at, id"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(to_millis(now)).fetch_all(pool).await)?)
    }

    /// Moves an issue from `from` to `paused` with a reason for the admin. Returns whether it did.
    pub async fn hold_issue(&self, issue_id: i64, from: &str, reason: &str, now: Timestamp) -> anyhow::Result<bool> {
        let sql =
            "UPDATE issues SET status = 'paused', hold_reason = $3, updated_at = $4 WHERE id = $1 AND status = $2";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(from)
            .bind(reason)
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// `scheduled` (or `draft`, for `issue send`) to `sending`, the moment its audience is fixed. Returns false
    /// when another daemon or command got there first.
    pub async fn start_issue(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'sending', started_at = $2, hold_reason = NULL, updated_at = $2 \
                   WHERE id = $1 AND status IN ('draft', 'scheduled', 'queued')";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// Issues that have started but whose outbox is not complete (a daemon may have stopped halfway).
    pub async fn issues_without_outbox(&self) -> anyhow::Result<Vec<IssueRow>> {
        let sql = format!(
            "SELECT {ISSUE_COLUMNS} FROM issues WHERE started_at IS NOT NULL AND outbox_ready_at IS NULL \
             AND status IN ('sending', 'paused') ORDER BY id"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(pool).await)?)
    }

    /// Creates the delivery rows of up to [`OUTBOX_CHUNK`] subscribers with ids after `after`: the list's
    /// subscriptions that were active when the issue started. Idempotent (a row per subscriber and issue at
    /// most). Each Message-ID is fixed here, so a retry carries the same one. Each row waits until
    /// `not_before`, or for a local-time send until the wall-clock time in the subscriber's zone (the list's
    /// zone for a subscriber without one), and records that zone. Returns the last subscriber id looked at, or
    /// `None` when there were no more.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_outbox_chunk(
        &self,
        issue: &IssueRow,
        after: i64,
        message_id_suffix: &str,
        not_before: Timestamp,
        local: Option<&LocalSchedule>,
        now: Timestamp,
    ) -> anyhow::Result<Option<i64>> {
        let started = issue.started_at.unwrap_or(to_millis(now));
        let last_sql = "SELECT MAX(subscriber_id) FROM (SELECT subscriber_id FROM subscriptions \
                        WHERE list_id = $1 AND subscriber_id > $2 ORDER BY subscriber_id LIMIT $3) AS chunk";
        let zones_sql = "SELECT DISTINCT p.time_zone FROM subscriptions s JOIN subscribers p ON p.id = s.subscriber_id \
                         WHERE s.list_id = $1 AND s.subscriber_id > $2 AND s.subscriber_id <= $3 AND s.status = 'active' \
                         AND p.time_zone IS NOT NULL";
        let insert_sql = "INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, created_at, \
                          updated_at) \
                          SELECT $1, subscriber_id, 'queued', \
                          '<' || CAST($1 AS TEXT) || '.' || CAST(subscriber_id AS TEXT) || '.' || $5, $6, $7, $7 \
                          FROM subscriptions WHERE list_id = $2 AND subscriber_id > $3 AND subscriber_id <= $4 \
                          AND status = 'active' AND created_at <= $8 \
                          ON CONFLICT (issue_id, subscriber_id) WHERE is_test = false DO NOTHING";
        // A local-time send: the zones of this chunk and their instants travel as one JSON array of
        // [zone, millis] pairs; a subscriber whose zone is not in it gets the list's zone and instant.
        let zones_json = match self.backend() {
            super::Backend::Sqlite => "json_each($9) AS j",
            super::Backend::Postgres => "jsonb_array_elements($9::jsonb) AS j(value)",
        };
        let local_sql = format!(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, time_zone, created_at, \
             updated_at) \
             SELECT $1, s.subscriber_id, 'queued', \
             '<' || CAST($1 AS TEXT) || '.' || CAST(s.subscriber_id AS TEXT) || '.' || $5, \
             COALESCE(z.not_before, $6), COALESCE(z.zone, $10), $7, $7 \
             FROM subscriptions s JOIN subscribers p ON p.id = s.subscriber_id \
             LEFT JOIN (SELECT j.value ->> 0 AS zone, CAST(j.value ->> 1 AS BIGINT) AS not_before FROM {zones_json}) z \
             ON z.zone = p.time_zone \
             WHERE s.list_id = $2 AND s.subscriber_id > $3 AND s.subscriber_id <= $4 \
             AND s.status = 'active' AND s.created_at <= $8 \
             ON CONFLICT (issue_id, subscriber_id) WHERE is_test = false DO NOTHING"
        );
        let result = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let (last,): (Option<i64>,) =
                sqlx::query_as(last_sql).bind(issue.list_id).bind(after).bind(OUTBOX_CHUNK).fetch_one(&mut *tx).await?;
            if let Some(last) = last {
                sqlx::query("UPDATE issues SET outbox_cursor = $2 WHERE id = $1").bind(issue.id).bind(last).execute(&mut *tx).await?;
                match local {
                    None => {
                        sqlx::query(insert_sql)
                            .bind(issue.id)
                            .bind(issue.list_id)
                            .bind(after)
                            .bind(last)
                            .bind(message_id_suffix)
                            .bind(to_millis(not_before))
                            .bind(to_millis(now))
                            .bind(started)
                            .execute(&mut *tx)
                            .await?;
                    }
                    Some(local) => {
                        let zones: Vec<(Option<String>,)> = sqlx::query_as(zones_sql)
                            .bind(issue.list_id)
                            .bind(after)
                            .bind(last)
                            .fetch_all(&mut *tx)
                            .await?;
                        let pairs: Vec<serde_json::Value> = zones
                            .into_iter()
                            .filter_map(|(zone,)| zone)
                            .filter_map(|zone| local.instant_in(&zone).map(|at| serde_json::json!([zone, to_millis(at)])))
                            .collect();
                        sqlx::query(sqlx::AssertSqlSafe(local_sql))
                            .bind(issue.id)
                            .bind(issue.list_id)
                            .bind(after)
                            .bind(last)
                            .bind(message_id_suffix)
                            .bind(to_millis(local.list_instant))
                            .bind(to_millis(now))
                            .bind(started)
                            .bind(serde_json::Value::Array(pairs).to_string())
                            .bind(&local.list_zone)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(last)
        });
        result.context("cannot create delivery rows")
    }

    /// How far outbox creation got: delivery rows exist for the subscriber ids up to this one.
    pub async fn outbox_progress(&self, issue_id: i64) -> anyhow::Result<i64> {
        let (cursor,): (i64,) = on_pool!(self, pool => sqlx::query_as("SELECT outbox_cursor FROM issues WHERE id = $1")
            .bind(issue_id)
            .fetch_one(pool)
            .await)?;
        Ok(cursor)
    }

    /// Marks the outbox complete: from now on an issue without pending deliveries is finished.
    pub async fn mark_outbox_ready(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<()> {
        let sql = "UPDATE issues SET outbox_ready_at = $2, updated_at = $2 WHERE id = $1 AND outbox_ready_at IS NULL";
        on_pool!(self, pool => sqlx::query(sql).bind(issue_id).bind(to_millis(now)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Marks `sending` issues with a complete outbox and nothing pending as `sent`; returns their ids.
    pub async fn finish_issues(&self, now: Timestamp) -> anyhow::Result<Vec<i64>> {
        let sql = format!(
            "UPDATE issues SET status = 'sent', finished_at = $1, updated_at = $1 \
             WHERE status = 'sending' AND outbox_ready_at IS NOT NULL AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.issue_id = issues.id AND d.is_test = false AND d.status IN {PENDING}) \
             RETURNING id"
        );
        let rows: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(to_millis(now)).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Pauses a scheduled or sending issue; deliveries already handed to the relay finish.
    pub async fn pause_issue(&self, issue_id: i64, reason: &str, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'paused', hold_reason = $2, updated_at = $3 \
                   WHERE id = $1 AND status IN ('scheduled', 'sending', 'queued')";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(reason)
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// Resumes a paused issue: back to `sending` when it had started, else to `scheduled` for now (the scheduler
    /// then starts it, however late: resuming is the admin's say-so).
    pub async fn resume_issue(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let now = to_millis(now);
        let sql = "UPDATE issues SET status = CASE WHEN started_at IS NULL THEN 'scheduled' ELSE 'sending' END, \
                   send_at = CASE WHEN started_at IS NULL THEN $2 ELSE send_at END, hold_reason = NULL, updated_at = $2 \
                   WHERE id = $1 AND status = 'paused'";
        let changed =
            on_pool!(self, pool => sqlx::query(sql).bind(issue_id).bind(now).execute(pool).await?.rows_affected());
        Ok(changed == 1)
    }

    /// Cancels an issue that has not finished. Deliveries already sent stay sent; the others never go out.
    pub async fn cancel_issue(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'cancelled', finished_at = $2, updated_at = $2 \
                   WHERE id = $1 AND status IN ('draft', 'queued', 'scheduled', 'sending', 'paused')";
        let changed = on_pool!(self, pool => sqlx::query(sql).bind(issue_id).bind(to_millis(now)).execute(pool).await?.rows_affected());
        Ok(changed == 1)
    }

    /// The issue with this id.
    pub async fn issue_by_id(&self, issue_id: i64) -> anyhow::Result<Option<IssueRow>> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE id = $1");
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(issue_id).fetch_optional(pool).await)?)
    }
}
