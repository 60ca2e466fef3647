//! Reading stored reports (`bounce list`, `bounce show`, metrics, guardrails) and managing the suppression list
//! by hand (`suppression list | add | remove`), every change recorded with its reason.

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use super::bounces::ReportRow;
use super::{Store, on_pool};
use crate::clock::to_millis;
use crate::domain::{SubscriberEmail, SuppressionReason};

/// Which reports `bounce list` shows.
#[derive(Debug, Clone, Default)]
pub struct ReportFilter {
    pub issue_id: Option<i64>,
    pub kind: Option<String>,
    pub limit: i64,
}

/// An issue's figures for the guardrails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportRates {
    /// The issue is still sending (only then does a guardrail pause it).
    pub sending: bool,
    /// Messages the relay accepted (some bounced later).
    pub accepted: i64,
    /// Messages accepted or refused as a hard bounce by the relay.
    pub attempted: i64,
    /// Hard bounces, at the relay or reported later.
    pub bounced: i64,
    /// Deliveries someone complained about.
    pub complaints: i64,
}

/// One suppressed address: its hash, and the address when a subscriber with that address still exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuppressionRow {
    pub email_hash: String,
    pub email: Option<String>,
    pub reason: String,
    pub detail: String,
    pub created_at: i64,
}

const REPORT_COLUMNS: &str = "r.id, r.received_at, r.source, r.form, r.kind, r.matched_by, i.number AS issue_number, \
     l.slug AS list, s.email AS subscriber_email, r.is_test, r.status_code, r.reason, r.effect, r.subject, r.raw_bytes";
const REPORT_JOINS: &str = "FROM bounce_reports r LEFT JOIN issues i ON i.id = r.issue_id \
     LEFT JOIN lists l ON l.id = r.list_id LEFT JOIN subscribers s ON s.id = r.subscriber_id";

impl Store {
    /// Stored reports, newest first.
    pub async fn bounce_reports(&self, filter: &ReportFilter) -> anyhow::Result<Vec<ReportRow>> {
        let sql = format!(
            "SELECT {REPORT_COLUMNS} {REPORT_JOINS} WHERE ($1 IS NULL OR r.issue_id = $1) AND ($2 IS NULL OR r.kind = $2) \
             ORDER BY r.id DESC LIMIT $3"
        );
        let rows = on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(filter.issue_id)
            .bind(filter.kind.as_deref())
            .bind(filter.limit)
            .fetch_all(pool)
            .await);
        rows.context("cannot read the reports")
    }

    /// One stored report with its raw text.
    pub async fn bounce_report(&self, id: i64) -> anyhow::Result<Option<(ReportRow, String)>> {
        let sql = format!("SELECT {REPORT_COLUMNS} {REPORT_JOINS} WHERE r.id = $1");
        let row: Option<ReportRow> =
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(pool).await)?;
        let Some(row) = row else { return Ok(None) };
        let (raw,): (String,) = on_pool!(self, pool => sqlx::query_as("SELECT raw FROM bounce_reports WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await)?;
        Ok(Some((row, raw)))
    }

    /// Reports per kind, for `/metrics`.
    pub async fn report_counts(&self) -> anyhow::Result<Vec<(String, i64)>> {
        let sql = "SELECT kind, COUNT(*) FROM bounce_reports GROUP BY kind ORDER BY kind";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }

    /// The issue's figures the guardrails compare with their thresholds.
    pub async fn issue_report_rates(&self, issue_id: i64) -> anyhow::Result<ReportRates> {
        let sql = "SELECT \
                   (SELECT status FROM issues WHERE id = $1), \
                   CAST(COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN sent_at IS NOT NULL OR status = 'bounced' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                   CAST(COALESCE(SUM(CASE WHEN status = 'bounced' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                   (SELECT COUNT(DISTINCT delivery_id) FROM bounce_reports WHERE issue_id = $1 AND kind = 'complaint' \
                    AND is_test = false) \
                   FROM deliveries WHERE issue_id = $1 AND is_test = false";
        let (status, accepted, attempted, bounced, complaints): (Option<String>, i64, i64, i64, i64) =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_one(pool).await)?;
        Ok(ReportRates { sending: status.as_deref() == Some("sending"), accepted, attempted, bounced, complaints })
    }

    /// The suppression list, newest first, with the address where a subscriber still has it.
    pub async fn suppressions(&self, limit: i64) -> anyhow::Result<Vec<SuppressionRow>> {
        let rows: Vec<(String, String, String, i64)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT email_hash, reason, detail, created_at FROM suppressions ORDER BY created_at DESC, email_hash LIMIT $1",
        )
        .bind(limit)
        .fetch_all(pool)
        .await)?;
        // Hashes cannot be reversed; the people who are not active are few, so their hashes are computed here.
        let candidates: Vec<(String,)> = on_pool!(self, pool => sqlx::query_as(
            "SELECT DISTINCT s.email FROM subscribers s JOIN subscriptions p ON p.subscriber_id = s.id \
             WHERE p.status IN ('bounced', 'complained', 'unsubscribed')",
        )
        .fetch_all(pool)
        .await)?;
        let known: std::collections::HashMap<String, String> = candidates
            .into_iter()
            .filter_map(|(email,)| SubscriberEmail::parse(&email).ok().map(|e| (e.suppression_hash(), email)))
            .collect();
        Ok(rows
            .into_iter()
            .map(|(email_hash, reason, detail, created_at)| SuppressionRow {
                email: known.get(&email_hash).cloned(),
                email_hash,
                reason,
                detail,
                created_at,
            })
            .collect())
    }

    /// Suppresses an address by hand. Returns false when it was suppressed already (its reason stays).
    pub async fn add_suppression(&self, email: &SubscriberEmail, reason: &str, now: Timestamp) -> anyhow::Result<bool> {
        let (hash, now) = (email.suppression_hash(), to_millis(now));
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let added = sqlx::query(
                "INSERT INTO suppressions (email_hash, reason, detail, created_at) VALUES ($1, 'manual', $2, $3) \
                 ON CONFLICT (email_hash) DO NOTHING",
            )
            .bind(&hash)
            .bind(reason)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if added {
                sqlx::query("INSERT INTO suppression_changes (email_hash, action, reason, created_at) VALUES ($1, 'add', $2, $3)")
                    .bind(&hash)
                    .bind(reason)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(added)
        })
    }

    /// Takes an address off the suppression list, recording `reason` (an admin's words) with the change. Returns the reason it
    /// was suppressed for, or `None` when it was not. Its subscriptions stay as they are (a bounced or
    /// complained subscription is not made active again: the person subscribes again for that).
    pub async fn remove_suppression(
        &self,
        email: &SubscriberEmail,
        reason: &str,
        now: Timestamp,
    ) -> anyhow::Result<Option<SuppressionReason>> {
        let (hash, now) = (email.suppression_hash(), to_millis(now));
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let removed: Option<(String,)> = sqlx::query_as("DELETE FROM suppressions WHERE email_hash = $1 RETURNING reason")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((was,)) = &removed {
                sqlx::query("INSERT INTO suppression_changes (email_hash, action, reason, created_at) VALUES ($1, 'remove', $2, $3)")
                    .bind(&hash)
                    .bind(format!("{reason} (was {was})"))
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE subscribers SET bounce_score = 0, bounce_score_at = NULL WHERE email_normalised = $1")
                    .bind(email.normalised())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(removed.map(|(was,)| SuppressionReason::parse(&was).unwrap_or(SuppressionReason::Manual)))
        })
    }
}
