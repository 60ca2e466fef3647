//! Issues: stored drafts with their source and compiled rendering, and the status they move through.

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use super::{Store, on_pool};
use crate::clock::to_millis;

/// An issue as stored, without its (large) source and compiled rendering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct IssueRow {
    pub id: i64,
    pub list_id: i64,
    pub number: i64,
    pub subject: String,
    pub preheader: String,
    pub period: String,
    pub source_path: String,
    pub source_hash: String,
    pub status: String,
    pub send_at: Option<i64>,
    /// A local-time issue's wall-clock date and time, e.g. `2026-12-07T08:00:00`: each subscriber gets it at
    /// that time in their own zone, and `send_at` is when the first zone reaches it.
    pub local_at: Option<String>,
    /// When it joined the weekly queue.
    pub queued_at: Option<i64>,
    pub hold_reason: Option<String>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An issue ready to store: what `issue add` computed from its file.
#[derive(Debug, Clone)]
pub struct NewIssue<'a> {
    pub list_id: i64,
    pub number: i64,
    pub subject: &'a str,
    pub preheader: &'a str,
    pub period: &'a str,
    pub source_path: &'a str,
    /// SHA-256 of the source, hex. With `compiled`, tells an unchanged issue from a changed one.
    pub source_hash: &'a str,
    pub source: &'a str,
    /// The compiled rendering, serialized.
    pub compiled: &'a str,
}

/// What `save_issue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Added {
        id: i64,
    },
    /// Same source as stored: nothing changed.
    Unchanged {
        id: i64,
    },
    /// A draft whose source changed was rendered again.
    Updated {
        id: i64,
    },
    /// The issue has left the draft stage (scheduled, sending, sent...) and is never changed.
    Refused {
        id: i64,
        status: String,
    },
}

pub(crate) const ISSUE_COLUMNS: &str = "id, list_id, number, subject, preheader, period, source_path, source_hash, \
                                        status, send_at, local_at, queued_at, hold_reason, started_at, finished_at, \
                                        created_at, updated_at";

impl Store {
    /// Stores a new draft, or updates a draft whose source changed. Anything past `draft` is left alone.
    pub async fn save_issue(&self, issue: &NewIssue<'_>, now: Timestamp) -> anyhow::Result<SaveOutcome> {
        let now = to_millis(now);
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let existing: Option<(i64, String, String, String)> =
                sqlx::query_as("SELECT id, status, source_hash, compiled FROM issues WHERE list_id = $1 AND number = $2")
                    .bind(issue.list_id)
                    .bind(issue.number)
                    .fetch_optional(&mut *tx)
                    .await?;
            let outcome = match existing {
                // Unchanged means the same source rendered the same way (templates and branding included).
                Some((id, _, hash, compiled)) if hash == issue.source_hash && compiled == issue.compiled => {
                    SaveOutcome::Unchanged { id }
                }
                Some((id, status, _, _)) if status != "draft" => SaveOutcome::Refused { id, status },
                Some((id, _, _, _)) => {
                    sqlx::query(
                        "UPDATE issues SET subject = $2, preheader = $3, period = $4, source_path = $5, source_hash = $6, \
                         source = $7, compiled = $8, updated_at = $9 WHERE id = $1 AND status = 'draft'",
                    )
                    .bind(id)
                    .bind(issue.subject)
                    .bind(issue.preheader)
                    .bind(issue.period)
                    .bind(issue.source_path)
                    .bind(issue.source_hash)
                    .bind(issue.source)
                    .bind(issue.compiled)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    SaveOutcome::Updated { id }
                }
                None => {
                    let (id,): (i64,) = sqlx::query_as(
                        "INSERT INTO issues (list_id, number, subject, preheader, period, source_path, source_hash, \
                         source, compiled, status, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'draft', $10, $10) RETURNING id",
                    )
                    .bind(issue.list_id)
                    .bind(issue.number)
                    .bind(issue.subject)
                    .bind(issue.preheader)
                    .bind(issue.period)
                    .bind(issue.source_path)
                    .bind(issue.source_hash)
                    .bind(issue.source)
                    .bind(issue.compiled)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    SaveOutcome::Added { id }
                }
            };
            tx.commit().await?;
            Ok::<_, sqlx::Error>(outcome)
        });
        outcome.context("cannot store the issue")
    }

    /// The issue with this number on a list.
    pub async fn issue_by_number(&self, list_id: i64, number: i64) -> anyhow::Result<Option<IssueRow>> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE list_id = $1 AND number = $2");
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(list_id)
            .bind(number)
            .fetch_optional(pool)
            .await)?)
    }

    /// Every issue of a list, newest number first.
    pub async fn issues(&self, list_id: i64) -> anyhow::Result<Vec<IssueRow>> {
        let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE list_id = $1 ORDER BY number DESC");
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list_id).fetch_all(pool).await)?)
    }

    /// The compiled rendering of an issue, as stored by `save_issue`.
    pub async fn issue_compiled(&self, issue_id: i64) -> anyhow::Result<String> {
        let (compiled,): (String,) = on_pool!(self, pool => sqlx::query_as("SELECT compiled FROM issues WHERE id = $1")
            .bind(issue_id)
            .fetch_one(pool)
            .await)?;
        Ok(compiled)
    }
}
