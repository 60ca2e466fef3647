//! Bulk import of subscribers: one transaction and four statements per batch of rows.
//!
//! Importing the same rows again changes nothing: existing subscribers are not modified and existing
//! subscriptions keep their status (an unsubscribed person is never signed up again by an import).

use std::collections::{HashMap, HashSet};

use anyhow::Context;
use jiff::Timestamp;
use sqlx::{Database, Pool, QueryBuilder};

use super::{Store, on_pool};
use crate::clock::to_millis;
use crate::domain::{SubscriberEmail, SubscriberName, SuppressionReason};

/// Rows per batch that keeps every statement under SQLite's 32,766 bound parameters (six per row at most).
pub const MAX_BATCH_ROWS: usize = 5_000;

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

/// What one batch did. Lines are those of [`ImportRow::line`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportBatchOutcome {
    /// New subscriptions.
    pub added: u64,
    /// Rows whose address was already on the list before this import (left as they were).
    pub already_subscribed: u64,
    /// Rows repeating an address that appeared earlier in the same import.
    pub duplicates: Vec<u64>,
    /// Rows whose address is on the suppression list.
    pub suppressed: Vec<(u64, SuppressionReason)>,
}

/// A query builder for the pool's backend (the pool only fixes the type).
fn query_builder<DB: Database>(_pool: &Pool<DB>, sql: &str) -> QueryBuilder<DB> {
    QueryBuilder::new(sql)
}

impl Store {
    /// The highest subscriber id so far. Subscribers created by an import have higher ids, which is how
    /// `import_batch` tells a repeated row of this file from an address that was there before, without holding
    /// the file's addresses in memory.
    pub async fn subscriber_id_watermark(&self) -> anyhow::Result<i64> {
        let (max,): (Option<i64>,) =
            on_pool!(self, pool => sqlx::query_as("SELECT MAX(id) FROM subscribers").fetch_one(pool).await)?;
        Ok(max.unwrap_or(0))
    }

    /// Imports `rows` (at most [`MAX_BATCH_ROWS`]) into a list as active subscriptions with source `import`.
    /// `watermark` is [`Store::subscriber_id_watermark`] taken before the import began.
    pub async fn import_batch(
        &self,
        list_id: i64,
        rows: &[ImportRow],
        watermark: i64,
        now: Timestamp,
    ) -> anyhow::Result<ImportBatchOutcome> {
        anyhow::ensure!(rows.len() <= MAX_BATCH_ROWS, "an import batch holds at most {MAX_BATCH_ROWS} rows");
        let mut outcome = ImportBatchOutcome::default();
        if rows.is_empty() {
            return Ok(outcome);
        }
        let now = to_millis(now);
        let hashes: Vec<String> = rows.iter().map(|row| row.email.suppression_hash()).collect();

        let result: anyhow::Result<()> = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;

            // 1. Addresses that must never be mailed.
            let mut query = query_builder(pool, "SELECT email_hash, reason FROM suppressions WHERE email_hash IN (");
            let mut list = query.separated(", ");
            for hash in &hashes {
                list.push_bind(hash.as_str());
            }
            query.push(")");
            let suppressed: HashMap<String, String> =
                query.build_query_as::<(String, String)>().fetch_all(&mut *tx).await?.into_iter().collect();

            // 2. The rows to write: not suppressed, and the first of any address repeated within the batch.
            let mut seen: HashSet<&str> = HashSet::with_capacity(rows.len());
            let mut candidates: Vec<&ImportRow> = Vec::with_capacity(rows.len());
            for (row, hash) in rows.iter().zip(&hashes) {
                if let Some(reason) = suppressed.get(hash) {
                    let reason = SuppressionReason::parse(reason).unwrap_or(SuppressionReason::Manual);
                    outcome.suppressed.push((row.line, reason));
                } else if !seen.insert(row.email.as_str()) {
                    outcome.duplicates.push(row.line);
                } else {
                    candidates.push(row);
                }
            }
            if candidates.is_empty() {
                tx.commit().await?;
                return Ok(outcome);
            }

            // 3. New subscribers; existing ones are left untouched.
            let mut query = query_builder(pool, "INSERT INTO subscribers (email, name, attributes, time_zone, created_at, updated_at) ");
            query.push_values(&candidates, |mut values, row| {
                values
                    .push_bind(row.email.as_str())
                    .push_bind(row.name.as_str())
                    .push_bind(row.attributes.as_str())
                    .push_bind(row.time_zone.as_deref())
                    .push_bind(now)
                    .push_bind(now);
            });
            query.push(" ON CONFLICT (email) DO NOTHING RETURNING id, email");
            let mut ids: HashMap<String, i64> = query
                .build_query_as::<(i64, String)>()
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|(id, email)| (email, id))
                .collect();

            // 4. Addresses that already existed: before this import, or earlier in it (a duplicate row).
            let existing: Vec<&&ImportRow> = candidates.iter().filter(|row| !ids.contains_key(row.email.as_str())).collect();
            if !existing.is_empty() {
                let mut query = query_builder(pool, "SELECT id, email FROM subscribers WHERE email IN (");
                let mut list = query.separated(", ");
                for row in &existing {
                    list.push_bind(row.email.as_str());
                }
                query.push(")");
                let found = query.build_query_as::<(i64, String)>().fetch_all(&mut *tx).await?;
                let found: HashMap<String, i64> = found.into_iter().map(|(id, email)| (email, id)).collect();
                for row in existing {
                    match found.get(row.email.as_str()) {
                        Some(&id) if id > watermark => outcome.duplicates.push(row.line),
                        Some(&id) => {
                            ids.insert(row.email.as_str().to_owned(), id);
                        }
                        None => anyhow::bail!("line {}: the subscriber vanished during the import", row.line),
                    }
                }
            }

            // 5. Subscriptions; existing ones keep their status.
            let subscribe: Vec<i64> =
                candidates.iter().filter_map(|row| ids.get(row.email.as_str()).copied()).collect();
            if !subscribe.is_empty() {
                let mut query = query_builder(pool, "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at) ");
                query.push_values(&subscribe, |mut values, id| {
                    // Integers and fixed words are written inline: four bound parameters per row at most.
                    values
                        .push(list_id.to_string())
                        .push_bind(*id)
                        .push("'active'")
                        .push("'import'")
                        .push_bind(now)
                        .push_bind(now)
                        .push_bind(now);
                });
                query.push(" ON CONFLICT (list_id, subscriber_id) DO NOTHING");
                outcome.added = query.build().execute(&mut *tx).await?.rows_affected();
                outcome.already_subscribed = subscribe.len() as u64 - outcome.added;
            }
            tx.commit().await?;
            Ok(())
        });
        result.context("cannot write a batch of imported subscribers")?;
        outcome.duplicates.sort_unstable();
        Ok(outcome)
    }
}
