//! Bulk import of subscribers: one transaction and three or four statements per batch of rows.
//!
//! A batch travels to the database as one JSON array bound to one parameter (`json_each` on SQLite,
//! `jsonb_array_elements` on PostgreSQL), so the statements have a fixed text, stay prepared, and bind two values
//! instead of thousands. The JSON is built by [`ImportBatch::new`], which callers run on the thread that reads
//! the file, so encoding overlaps the database's work.
//!
//! Importing the same rows again changes nothing: existing subscribers are not modified and existing
//! subscriptions keep their status (an unsubscribed person is never signed up again by an import). A file
//! written by `subscriber export` carries each subscription's status and consent evidence ([`Standing`]): a new
//! subscription keeps them, and an opt-out in the file (unsubscribed, bounced, complained) is applied to an
//! active or pending subscription; nothing in a file ever makes a subscription active again.

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use jiff::Timestamp;
use serde_json::json;

use super::{Backend, Store, on_pool};
use crate::clock::to_millis;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus, SuppressionReason};

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
    /// The subscription's status and consent evidence, when the file gives them (an export does).
    pub standing: Standing,
}

/// What a file says about a subscription, in the columns `subscriber export` writes. All empty for a plain
/// list of addresses: the subscription is then active, with the import as its source and time.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Standing {
    pub status: Option<SubscriptionStatus>,
    pub source: Option<ConsentSource>,
    /// When the subscriber was first added (milliseconds since the epoch).
    pub created_at: Option<i64>,
    /// When consent was given; kept as it is (even empty) when the file gives a status.
    pub consent_at: Option<i64>,
    pub request_ip: Option<String>,
    pub request_user_agent: Option<String>,
    pub confirm_ip: Option<String>,
    pub confirm_user_agent: Option<String>,
    pub unsubscribed_at: Option<i64>,
}

/// Rows ready to write: repeated addresses within the batch removed, the rest encoded for the database.
#[derive(Debug, Clone)]
pub struct ImportBatch {
    /// `[line, email, name, attributes, time zone, suppression hash, normalised email, status, source,
    /// created_at, consent_at, request_ip, request_user_agent, confirm_ip, confirm_user_agent, unsubscribed_at]`
    /// per row, as a JSON array.
    rows_json: String,
    /// No row carries a status or evidence: every new subscription is a plain active one.
    plain: bool,
    /// Line and address of each encoded row, in order.
    rows: Vec<(u64, String)>,
    /// Lines that repeat an address of an earlier row of the same batch.
    repeated: Vec<u64>,
}

/// IP addresses and user agents are personal data: Debug output shows only the status and source.
impl std::fmt::Debug for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Standing").field("status", &self.status).field("source", &self.source).finish_non_exhaustive()
    }
}

impl ImportBatch {
    /// Encodes `rows`; pure computation, meant for the thread that reads the file.
    pub fn new(rows: Vec<ImportRow>) -> Self {
        let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
        let mut repeated = Vec::new();
        let mut encoded = Vec::with_capacity(rows.len());
        let mut kept = Vec::with_capacity(rows.len());
        let mut plain = true;
        for row in &rows {
            let normalised = row.email.normalised();
            if seen.contains(&normalised) {
                repeated.push(row.line);
                continue;
            }
            let s = &row.standing;
            plain &= *s == Standing::default();
            encoded.push(json!([
                row.line,
                row.email.as_str(),
                row.name.as_str(),
                row.attributes,
                row.time_zone,
                row.email.suppression_hash(),
                normalised,
                s.status.map(SubscriptionStatus::as_str),
                s.source.map(ConsentSource::as_str),
                s.created_at,
                s.consent_at,
                s.request_ip,
                s.request_user_agent,
                s.confirm_ip,
                s.confirm_user_agent,
                s.unsubscribed_at,
            ]));
            kept.push((row.line, row.email.as_str().to_owned()));
            seen.insert(normalised);
        }
        Self { rows_json: serde_json::Value::Array(encoded).to_string(), plain, rows: kept, repeated }
    }

    /// Rows in the batch, repeated ones included.
    pub fn len(&self) -> usize {
        self.rows.len() + self.repeated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An import in progress: see [`Store::begin_import`].
#[derive(Debug, Clone, Copy)]
pub struct ImportSession {
    list_id: i64,
    watermark: i64,
    /// False when the suppression list was empty as the import began: the per-batch check is skipped (an
    /// address suppressed during the import is still never mailed: sending checks the list again).
    check_suppressions: bool,
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
    /// Active or pending subscriptions that the file's status (unsubscribed, bounced, complained) ended.
    pub opted_out: u64,
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
    /// Starts an import into a list: notes the highest subscriber id so far (subscribers this import creates get
    /// higher ids, which is how a repeated row of the file is told from an address that was there before,
    /// without holding the file's addresses in memory) and whether any address is suppressed at all.
    pub async fn begin_import(&self, list_id: i64) -> anyhow::Result<ImportSession> {
        let sql = "SELECT (SELECT MAX(id) FROM subscribers), EXISTS (SELECT 1 FROM suppressions)";
        let (max, suppressions): (Option<i64>, bool) =
            on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(ImportSession { list_id, watermark: max.unwrap_or(0), check_suppressions: suppressions })
    }

    /// Imports a batch as active subscriptions with source `import`.
    ///
    /// Imports trade a little durability for speed: the batch commits without waiting for the disk (WAL with
    /// `synchronous = NORMAL` on SQLite, `synchronous_commit = off` on PostgreSQL). A power cut can lose the last
    /// batches but never corrupts the database, and importing the file again completes it.
    pub async fn import_batch(
        &self,
        session: &ImportSession,
        batch: &ImportBatch,
        now: Timestamp,
    ) -> anyhow::Result<ImportBatchOutcome> {
        let (list_id, watermark) = (session.list_id, session.watermark);
        let mut outcome = ImportBatchOutcome { duplicates: batch.repeated.clone(), ..Default::default() };
        if batch.rows.is_empty() {
            return Ok(outcome);
        }
        let now = to_millis(now);
        let sqlite = self.backend() == Backend::Sqlite;
        let from = json_rows(self.backend());
        let suppressed_sql = format!(
            "SELECT CAST(j.value ->> 0 AS BIGINT), s.reason FROM {from} JOIN suppressions s ON s.email_hash = j.value ->> 5"
        );
        let insert_sql = format!(
            "INSERT INTO subscribers (email, email_normalised, name, attributes, time_zone, created_at, updated_at) \
             SELECT j.value ->> 1, j.value ->> 6, j.value ->> 2, j.value ->> 3, j.value ->> 4, \
             COALESCE(CAST(j.value ->> 9 AS BIGINT), $2), $2 FROM {from} WHERE true \
             ON CONFLICT (email_normalised) DO NOTHING"
        );
        // Rows whose subscriber was created by an earlier batch of this import: a repeated address.
        let repeated_sql = format!(
            "SELECT CAST(j.value ->> 0 AS BIGINT) FROM {from} JOIN subscribers s ON s.email_normalised = j.value ->> 6 \
             WHERE s.id > $2 AND s.id <= $3"
        );
        // A row without a status is a plain list's: active, consent at the import. A row with one keeps its
        // status and evidence, consent time included (even when the file has none).
        let subscribe_sql = format!(
            "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at, \
             request_ip, request_user_agent, confirm_ip, confirm_user_agent, unsubscribed_at) \
             SELECT $2, s.id, COALESCE(j.value ->> 7, 'active'), COALESCE(j.value ->> 8, 'import'), $3, $3, \
             CASE WHEN j.value ->> 7 IS NULL THEN $3 ELSE CAST(j.value ->> 10 AS BIGINT) END, \
             j.value ->> 11, j.value ->> 12, j.value ->> 13, j.value ->> 14, CAST(j.value ->> 15 AS BIGINT) \
             FROM {from} JOIN subscribers s ON s.email_normalised = j.value ->> 6 \
             WHERE true ON CONFLICT (list_id, subscriber_id) DO NOTHING"
        );
        // An opt-out in the file reaches a subscription that is still active or pending here; never the reverse.
        let opt_out_sql = format!(
            "UPDATE subscriptions SET status = j.value ->> 7, updated_at = $3, \
             unsubscribed_at = COALESCE(CAST(j.value ->> 15 AS BIGINT), $3) \
             FROM {from} JOIN subscribers s ON s.email_normalised = j.value ->> 6 \
             WHERE subscriptions.list_id = $2 AND subscriptions.subscriber_id = s.id \
             AND subscriptions.status IN ('pending', 'active') AND j.value ->> 7 IN ('unsubscribed', 'bounced', 'complained')"
        );
        // SQLite's fast path when every row was a new subscriber: they are exactly the ids after the batch began
        // (the transaction holds the write lock), so no address needs looking up.
        let subscribe_new_sql = "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, \
             updated_at, consent_at) SELECT $1, id, 'active', 'import', $3, $3, $3 FROM subscribers WHERE id > $2 \
             ON CONFLICT (list_id, subscriber_id) DO NOTHING";

        let result: anyhow::Result<()> = on_pool!(self, pool => {
            let mut connection = pool.acquire().await?;
            if sqlite {
                // Commit without waiting for the disk, and checkpoint the WAL less often (each one syncs).
                sqlx::query("PRAGMA synchronous = NORMAL").execute(&mut *connection).await?;
                sqlx::query("PRAGMA wal_autocheckpoint = 16384").execute(&mut *connection).await?;
                // 16 MiB of page cache for this connection only (SQLite's default is 2 MiB): bulk writes touch
                // indexes all over, and each miss is a system call. Every pooled connection keeps its own cache,
                // so the default stays small elsewhere and memory does not grow with the database.
                sqlx::query("PRAGMA cache_size = -16384").execute(&mut *connection).await?;
            }
            let written: anyhow::Result<()> = async {
                let begin = if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
                let mut tx = sqlx::Connection::begin_with(&mut *connection, begin).await?;
                if !sqlite {
                    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
                }

                // 1. Addresses that must never be mailed are reported and left out.
                let mut rows_json = std::borrow::Cow::Borrowed(&batch.rows_json);
                let mut candidates = batch.rows.len();
                if session.check_suppressions {
                    let suppressed: Vec<(i64, String)> =
                        sqlx::query_as(sqlx::AssertSqlSafe(suppressed_sql)).bind(&batch.rows_json).fetch_all(&mut *tx).await?;
                    if !suppressed.is_empty() {
                        let lines: HashMap<u64, SuppressionReason> = suppressed
                            .iter()
                            .map(|(line, reason)| (*line as u64, SuppressionReason::parse(reason).unwrap_or(SuppressionReason::Manual)))
                            .collect();
                        outcome.suppressed = lines.iter().map(|(line, reason)| (*line, *reason)).collect();
                        outcome.suppressed.sort_unstable_by_key(|(line, _)| *line);
                        let all: Vec<serde_json::Value> = serde_json::from_str(&batch.rows_json)?;
                        let kept: Vec<serde_json::Value> =
                            all.into_iter().filter(|row| !row[0].as_u64().is_some_and(|line| lines.contains_key(&line))).collect();
                        candidates = kept.len();
                        rows_json = std::borrow::Cow::Owned(serde_json::Value::Array(kept).to_string());
                    }
                }
                if candidates == 0 {
                    tx.commit().await?;
                    return Ok(());
                }

                // 2. New subscribers; existing ones are left untouched.
                let (batch_start,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM subscribers").fetch_one(&mut *tx).await?;
                let batch_start = batch_start.unwrap_or(0);
                let inserted = sqlx::query(sqlx::AssertSqlSafe(insert_sql))
                    .bind(rows_json.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected() as usize;

                // 3. Addresses that existed already: before this import, or from an earlier row of it.
                if inserted < candidates {
                    let repeated: Vec<(i64,)> = sqlx::query_as(sqlx::AssertSqlSafe(repeated_sql))
                        .bind(rows_json.as_str())
                        .bind(watermark)
                        .bind(batch_start)
                        .fetch_all(&mut *tx)
                        .await?;
                    outcome.duplicates.extend(repeated.into_iter().map(|(line,)| line as u64));
                }

                // 4. Subscriptions; existing ones keep their status, unless the file says the person left.
                if !batch.plain {
                    outcome.opted_out = sqlx::query(sqlx::AssertSqlSafe(opt_out_sql))
                        .bind(rows_json.as_str())
                        .bind(list_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                let added = if sqlite && batch.plain && inserted == candidates {
                    sqlx::query(subscribe_new_sql).bind(list_id).bind(batch_start).bind(now).execute(&mut *tx).await?
                } else {
                    sqlx::query(sqlx::AssertSqlSafe(subscribe_sql)).bind(rows_json.as_str()).bind(list_id).bind(now).execute(&mut *tx).await?
                }
                .rows_affected();
                outcome.added = added;
                let repeated_rows = outcome.duplicates.len() - batch.repeated.len();
                outcome.already_subscribed = (candidates - repeated_rows) as u64 - added;
                tx.commit().await?;
                Ok(())
            }
            .await;
            if sqlite {
                // Back to full durability before the connection serves anyone else; a connection that cannot be
                // restored is closed instead of returned to the pool.
                let full = sqlx::query("PRAGMA synchronous = FULL").execute(&mut *connection).await;
                let checkpoints = sqlx::query("PRAGMA wal_autocheckpoint = 1000").execute(&mut *connection).await;
                let cache = sqlx::query("PRAGMA cache_size = -2000").execute(&mut *connection).await;
                if full.is_err() || checkpoints.is_err() || cache.is_err() {
                    connection.close_on_drop();
                }
            }
            written
        });
        result.context("cannot write a batch of imported subscribers")?;
        outcome.duplicates.sort_unstable();
        Ok(outcome)
    }
}
