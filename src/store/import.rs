//! Bulk import of subscribers: one transaction and three or four statements per batch of rows.
//!
//! A batch travels to the database as one JSON array bound to one parameter (`json_each` on SQLite,
//! `jsonb_array_elements` on PostgreSQL), so the statements have a fixed text, stay prepared, and bind two values
//! instead of thousands. The JSON is built by [`ImportBatch::new`], which callers run on the thread that reads
//! the file, so encoding overlaps the database's work.
//!
//! Importing the same rows again changes nothing: existing subscribers are not modified and existing
//! subscriptions keep their status (an unsubscribed person is never signed up again by an import).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use jiff::Timestamp;
use serde_json::json;

use super::{Backend, Store, on_pool};
use crate::clock::to_millis;
use crate::domain::{SubscriberEmail, SubscriberName, SuppressionReason};

/// One valid row of an import file.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// The row's line in the file, for reports.
    pub line: u64,
    pub email: SubscriberEmail,
    pub name: SubscriberName,
    /// A JSON object of the file's other columns.
    pub attributes: String,
    /// An IANA zone name, already checked.
    pub time_zone: Option<String>,
}

/// Rows ready to write: repeated addresses within the batch removed, the rest encoded for the database.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    /// `[line, email, name, attributes, time zone, suppression hash]` per row, as a JSON array.
    rows_json: String,
    /// Line and address of each encoded row, in order.
    rows: Vec<(u64, String)>,
    /// Lines that repeat an address of an earlier row of the same batch.
    repeated: Vec<u64>,
}

impl ImportBatch {
    /// Encodes `rows`; pure computation, meant for the thread that reads the file.
    pub fn new(rows: Vec<ImportRow>) -> Self {
        let mut seen: HashSet<&str> = HashSet::with_capacity(rows.len());
        let mut repeated = Vec::new();
        let mut encoded = Vec::with_capacity(rows.len());
        let mut kept = Vec::with_capacity(rows.len());
        for row in &rows {
            if !seen.insert(row.email.as_str()) {
                repeated.push(row.line);
                continue;
            }
            encoded.push(json!([
                row.line,
                row.email.as_str(),
                row.name.as_str(),
                row.attributes,
                row.time_zone,
                row.email.suppression_hash()
            ]));
            kept.push((row.line, row.email.as_str().to_owned()));
        }
        Self { rows_json: serde_json::Value::Array(encoded).to_string(), rows: kept, repeated }
    }

    /// Rows in the batch, repeated ones included.
    pub fn len(&self) -> usize {
        self.rows.len() + self.repeated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one batch did. Lines are those of [`ImportRow::line`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportBatchOutcome {
    /// New subscriptions.
    pub added: u64,
    /// Rows whose address was already on the list before this import (left as they were).
    pub already_subscribed: u64,
    /// Rows repeating an address that appeared earlier in the same import, in line order.
    pub duplicates: Vec<u64>,
    /// Rows whose address is on the suppression list.
    pub suppressed: Vec<(u64, SuppressionReason)>,
}

/// The table-valued function that unpacks a bound JSON array into rows with a `value` column.
fn json_rows(backend: Backend) -> &'static str {
    match backend {
        // jsonb_each hands each element over as JSONB, so `->>` reads it without parsing text again.
        Backend::Sqlite => "jsonb_each($1) AS j",
        Backend::Postgres => "jsonb_array_elements($1::jsonb) AS j(value)",
    }
}

impl Store {
    /// The highest subscriber id so far. Subscribers created by an import get higher ids, which is how
    /// `import_batch` tells a repeated row of this file from an address that was there before, without holding
    /// the file's addresses in memory.
    pub async fn subscriber_id_watermark(&self) -> anyhow::Result<i64> {
        let (max,): (Option<i64>,) =
            on_pool!(self, pool => sqlx::query_as("SELECT MAX(id) FROM subscribers").fetch_one(pool).await)?;
        Ok(max.unwrap_or(0))
    }

    /// Imports a batch into a list as active subscriptions with source `import`. `watermark` is
    /// [`Store::subscriber_id_watermark`] taken before the import began.
    pub async fn import_batch(
        &self,
        list_id: i64,
        batch: &ImportBatch,
        watermark: i64,
        now: Timestamp,
    ) -> anyhow::Result<ImportBatchOutcome> {
        let mut outcome = ImportBatchOutcome { duplicates: batch.repeated.clone(), ..Default::default() };
        if batch.rows.is_empty() {
            return Ok(outcome);
        }
        let now = to_millis(now);
        let from = json_rows(self.backend());
        let suppressed_sql = format!(
            "SELECT CAST(j.value ->> 0 AS BIGINT), s.reason FROM {from} JOIN suppressions s ON s.email_hash = j.value ->> 5"
        );
        let insert_sql = format!(
            "INSERT INTO subscribers (email, name, attributes, time_zone, created_at, updated_at) \
             SELECT j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, $2, $2 FROM {from} WHERE true \
             ON CONFLICT (email) DO NOTHING RETURNING id, email"
        );
        let existing_sql = format!("SELECT s.id, s.email FROM {from} JOIN subscribers s ON s.email = j.value ->> 0");
        let subscribe_sql = format!(
            "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at) \
             SELECT $2, CAST(j.value ->> 0 AS BIGINT), 'active', 'import', $3, $3, $3 FROM {from} WHERE true \
             ON CONFLICT (list_id, subscriber_id) DO NOTHING"
        );

        let result: anyhow::Result<()> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;

            // 1. Addresses that must never be mailed are reported and left out.
            let suppressed: Vec<(i64, String)> =
                sqlx::query_as(sqlx::AssertSqlSafe(suppressed_sql)).bind(&batch.rows_json).fetch_all(&mut *tx).await?;
            let mut rows_json = std::borrow::Cow::Borrowed(&batch.rows_json);
            let mut candidates: Vec<&(u64, String)> = batch.rows.iter().collect();
            if !suppressed.is_empty() {
                let lines: HashMap<u64, &str> = suppressed.iter().map(|(line, reason)| (*line as u64, reason.as_str())).collect();
                for (line, reason) in &lines {
                    let reason = SuppressionReason::parse(reason).unwrap_or(SuppressionReason::Manual);
                    outcome.suppressed.push((*line, reason));
                }
                outcome.suppressed.sort_unstable_by_key(|(line, _)| *line);
                let all: Vec<serde_json::Value> = serde_json::from_str(&batch.rows_json)?;
                let kept: Vec<serde_json::Value> =
                    all.into_iter().filter(|row| !row[0].as_u64().is_some_and(|line| lines.contains_key(&line))).collect();
                rows_json = std::borrow::Cow::Owned(serde_json::Value::Array(kept).to_string());
                candidates.retain(|(line, _)| !lines.contains_key(line));
            }

            // 2. New subscribers; existing ones are left untouched.
            let mut ids: HashMap<String, i64> = HashMap::with_capacity(candidates.len());
            if !candidates.is_empty() {
                let inserted: Vec<(i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(insert_sql))
                    .bind(rows_json.as_str())
                    .bind(now)
                    .fetch_all(&mut *tx)
                    .await?;
                ids.extend(inserted.into_iter().map(|(id, email)| (email, id)));
            }

            // 3. Addresses that already existed: before this import, or earlier in it (a repeated row).
            let existing: Vec<&&(u64, String)> = candidates.iter().filter(|(_, email)| !ids.contains_key(email)).collect();
            if !existing.is_empty() {
                let emails = serde_json::to_string(&existing.iter().map(|(_, email)| [email]).collect::<Vec<_>>())?;
                let found: Vec<(i64, String)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(existing_sql)).bind(emails).fetch_all(&mut *tx).await?;
                let found: HashMap<String, i64> = found.into_iter().map(|(id, email)| (email, id)).collect();
                for (line, email) in existing {
                    match found.get(email) {
                        Some(&id) if id > watermark => outcome.duplicates.push(*line),
                        Some(&id) => {
                            ids.insert(email.clone(), id);
                        }
                        None => anyhow::bail!("line {line}: the subscriber vanished during the import"),
                    }
                }
            }

            // 4. Subscriptions; existing ones keep their status.
            if !ids.is_empty() {
                let subscribe: Vec<[i64; 1]> = ids.values().map(|id| [*id]).collect();
                outcome.added = sqlx::query(sqlx::AssertSqlSafe(subscribe_sql))
                    .bind(serde_json::to_string(&subscribe)?)
                    .bind(list_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                outcome.already_subscribed = ids.len() as u64 - outcome.added;
            }
            tx.commit().await?;
            Ok(())
        });
        result.context("cannot write a batch of imported subscribers")?;
        outcome.duplicates.sort_unstable();
        Ok(outcome)
    }
}
