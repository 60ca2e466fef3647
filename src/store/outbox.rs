//! The issue lifecycle around sending: scheduling, holding, starting (creating the outbox: one delivery row per
//! active subscriber), pausing, resuming, cancelling and finishing.
//!
//! Every transition is a compare-and-set on the issue's status, so two daemons (or a daemon and the CLI) racing
//! on one issue cannot both win.

use anyhow::Context;
use jiff::Timestamp;

use super::{IssueRow, Store, on_pool};
use crate::clock::to_millis;

/// Subscribers whose delivery rows one transaction creates.
pub const OUTBOX_CHUNK: i64 = 10_000;

/// Deliveries not yet settled: the issue is not finished while any remain.
pub(crate) const PENDING: &str = "('queued', 'sending', 'retry_wait', 'ambiguous')";

const ISSUE_COLUMNS: &str = "id, list_id, number, subject, preheader, period, source_path, source_hash, status, \
                             send_at, hold_reason, started_at, finished_at, created_at, updated_at";

impl Store {
    /// Schedules a draft (or re-schedules a scheduled or not-yet-started paused issue) for `send_at`.
    /// Returns false when the issue is in no state to be scheduled.
    pub async fn schedule_issue(&self, issue_id: i64, send_at: Timestamp, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'scheduled', send_at = $2, hold_reason = NULL, updated_at = $3 \
                   WHERE id = $1 AND (status IN ('draft', 'scheduled', 'queued') \
                   OR (status = 'paused' AND started_at IS NULL))";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(to_millis(send_at))
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
    /// most). Each Message-ID is fixed here, so a retry carries the same one. Returns the last subscriber id
    /// looked at, or `None` when there were no more.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_outbox_chunk(
        &self,
        issue: &IssueRow,
        after: i64,
        message_id_suffix: &str,
        not_before: Timestamp,
        now: Timestamp,
    ) -> anyhow::Result<Option<i64>> {
        let started = issue.started_at.unwrap_or(to_millis(now));
        let last_sql = "SELECT MAX(subscriber_id) FROM (SELECT subscriber_id FROM subscriptions \
                        WHERE list_id = $1 AND subscriber_id > $2 ORDER BY subscriber_id LIMIT $3) AS chunk";
        let insert_sql = "INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, created_at, \
                          updated_at) \
                          SELECT $1, subscriber_id, 'queued', \
                          '<' || CAST($1 AS TEXT) || '.' || CAST(subscriber_id AS TEXT) || '.' || $5, $6, $7, $7 \
                          FROM subscriptions WHERE list_id = $2 AND subscriber_id > $3 AND subscriber_id <= $4 \
                          AND status = 'active' AND created_at <= $8 \
                          ON CONFLICT (issue_id, subscriber_id) WHERE is_test = false DO NOTHING";
        let result = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let (last,): (Option<i64>,) =
                sqlx::query_as(last_sql).bind(issue.list_id).bind(after).bind(OUTBOX_CHUNK).fetch_one(&mut *tx).await?;
            if let Some(last) = last {
                sqlx::query("UPDATE issues SET outbox_cursor = $2 WHERE id = $1").bind(issue.id).bind(last).execute(&mut *tx).await?;
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
