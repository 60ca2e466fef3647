//! Recording as sending goes: one wave of intents and outcomes, gathered from every connection by the engine's
//! recorder, written in at most one transaction with one multi-row statement per kind.
//!
//! An intent (`in_flight_at`) says that a delivery's message may reach the relay: it is durable before the
//! message's final dot is written. An outcome settles the delivery and clears its intent and lease. On
//! PostgreSQL the rows travel as arrays (`unnest`) and a wave is one autocommitted statement; on SQLite they
//! travel as one JSON parameter, one statement per kind (in one transaction when there are both). A hard bounce
//! adds its own statements to the wave's transaction.

use anyhow::Context;
use jiff::Timestamp;

use super::{DeliveryResult, Settlement, Store};
use crate::clock::to_millis;

/// What the settling statement sets, shared by both backends; `v` is the wave's rows.
const SETTLE: &str = "UPDATE deliveries AS d SET status = v.status, not_before = COALESCE(v.not_before, d.not_before), \
     last_code = v.code, last_error = v.error, sent_at = CASE WHEN v.status = 'sent' THEN v.at ELSE d.sent_at END, \
     attempts = d.attempts + v.attempted, \
     first_attempt_at = COALESCE(d.first_attempt_at, CASE WHEN v.attempted = 1 THEN v.at END), \
     ambiguous_at = CASE WHEN v.ambiguous = 1 THEN v.at ELSE d.ambiguous_at END, \
     in_flight_at = NULL, lease_owner = NULL, lease_expires_at = NULL, updated_at = v.at";

const PG_ROWS: &str = "unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], \
     $7::bigint[], $8::bigint[]) AS v(id, status, not_before, code, error, at, attempted, ambiguous)";

const SQLITE_ROWS: &str = "(SELECT value ->> 0 AS id, value ->> 1 AS status, value ->> 2 AS not_before, \
     value ->> 3 AS code, value ->> 4 AS error, value ->> 5 AS at, value ->> 6 AS attempted, \
     value ->> 7 AS ambiguous FROM json_each($1)) AS v";

/// A hard bounce's effects beyond the delivery, in transaction `$tx`, through the statements a later report's
/// hard bounce uses too (`bounces.rs`): the address's subscriptions become `bounced`, the address is suppressed,
/// and a `bounce` event is written.
macro_rules! record_bounce {
    ($tx:expr, $result:expr) => {{
        let result: &DeliveryResult = $result;
        if let (Settlement::Bounced { error, .. }, Some(subscriber_id)) = (&result.settlement, result.subscriber_id) {
            let at = to_millis(result.at);
            sqlx::query(super::bounces::BOUNCE_SUBSCRIPTIONS).bind(subscriber_id).bind(at).execute(&mut *$tx).await?;
            if let Some(hash) = &result.suppression_hash {
                sqlx::query(super::bounces::SUPPRESS)
                    .bind(hash)
                    .bind("bounced")
                    .bind(error)
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
            }
            sqlx::query(super::bounces::EVENT)
                .bind("bounce")
                .bind(result.list_id)
                .bind(result.issue_id)
                .bind(subscriber_id)
                .bind(result.delivery_id)
                .bind(error)
                .bind(at)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// One outcome as the settling statement's row.
struct Row {
    id: i64,
    status: &'static str,
    not_before: Option<i64>,
    code: Option<i64>,
    error: Option<String>,
    at: i64,
    attempted: i64,
    ambiguous: i64,
}

impl Row {
    fn of(result: &DeliveryResult) -> Self {
        let (status, not_before, code, error, ambiguous) = match &result.settlement {
            Settlement::Sent { code, reply } => {
                // The usual 250 keeps no text: the reply of a successful delivery tells nobody anything.
                let error = if matches!(code, Some(250) | None) { None } else { Some(reply.clone()) };
                ("sent", None, Some(code.unwrap_or(250)), error, false)
            }
            Settlement::Retry { not_before, code, error } => {
                ("retry_wait", Some(to_millis(*not_before)), *code, Some(error.clone()), false)
            }
            Settlement::Failed { code, error } => ("failed", None, *code, Some(error.clone()), false),
            Settlement::Bounced { code, error } => ("bounced", None, Some(*code), Some(error.clone()), false),
            Settlement::Suppressed { reason } => ("suppressed", None, None, Some(reason.clone()), false),
            Settlement::Ambiguous { not_before, error, resend } => {
                let status = if *resend { "ambiguous" } else { "failed" };
                (status, Some(to_millis(*not_before)), None, Some(error.clone()), true)
            }
            Settlement::Released { not_before, error } => {
                ("queued", Some(to_millis(*not_before)), None, error.clone(), false)
            }
        };
        Row {
            id: result.delivery_id,
            status,
            not_before,
            code: code.map(i64::from),
            error,
            at: to_millis(result.at),
            attempted: i64::from(result.attempted),
            ambiguous: i64::from(ambiguous),
        }
    }
}

/// A delivery whose final dot is about to be written, with what its last check needs: the subscriber's
/// subscription to the list and their address's suppression hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub delivery_id: i64,
    pub list_id: i64,
    pub subscriber_id: i64,
    pub suppression_hash: String,
}

/// The last check, as a condition on the row `q` (`list_id`, `subscriber_id`, `hash`): the subscriber is still
/// subscribed to the list and their address is not suppressed. Shared by both backends.
const STILL_ELIGIBLE: &str = "EXISTS (SELECT 1 FROM subscriptions s WHERE s.list_id = q.list_id \
     AND s.subscriber_id = q.subscriber_id AND s.status = 'active') \
     AND NOT EXISTS (SELECT 1 FROM suppressions p WHERE p.email_hash = q.hash)";

impl Store {
    /// Writes one wave: the intents of `intents` (deliveries whose final dot is about to be written, at `now`) and
    /// the outcomes of `results`, durably, in one transaction (one statement when that is all there is).
    ///
    /// An intent is the last check too: it is written only when its subscriber is still subscribed and not
    /// suppressed, as the database stands when the wave is written (after the intent was handed over, just before
    /// the final dot). Returns the deliveries whose intent was refused for that reason: their message must not go.
    pub async fn record_wave(
        &self,
        intents: &[Intent],
        results: &[DeliveryResult],
        now: Timestamp,
    ) -> anyhow::Result<Vec<i64>> {
        let rows: Vec<Row> = results.iter().map(Row::of).collect();
        // An outcome clears its delivery's intent: an intent in the same wave (a transaction that failed before
        // DATA) need not be written, and each row is then written once.
        let settled: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
        let intents: Vec<&Intent> = intents.iter().filter(|i| !settled.contains(&i.delivery_id)).collect();
        let bounces: Vec<&DeliveryResult> =
            results.iter().filter(|r| matches!(r.settlement, Settlement::Bounced { .. })).collect();
        if intents.is_empty() && rows.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_millis(now);
        let written: Result<Vec<(i64,)>, sqlx::Error> = match self {
            Store::Postgres(pool) => {
                // One statement for the whole wave: the intents and the outcomes each in a data-modifying WITH
                // (each executed once, whether or not its output is read). Their rows are disjoint.
                let sql = format!(
                    "WITH intents AS (UPDATE deliveries AS d SET in_flight_at = $9 \
                     FROM unnest($10::bigint[], $11::bigint[], $12::bigint[], $13::text[]) \
                     AS q(id, list_id, subscriber_id, hash) WHERE d.id = q.id AND {STILL_ELIGIBLE} RETURNING d.id), \
                     settled AS ({SETTLE} FROM {PG_ROWS} WHERE d.id = v.id) \
                     SELECT id FROM intents"
                );
                let wave = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.not_before).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.code).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.error.clone()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.attempted).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.ambiguous).collect::<Vec<_>>())
                    .bind(now)
                    .bind(intents.iter().map(|i| i.delivery_id).collect::<Vec<_>>())
                    .bind(intents.iter().map(|i| i.list_id).collect::<Vec<_>>())
                    .bind(intents.iter().map(|i| i.subscriber_id).collect::<Vec<_>>())
                    .bind(intents.iter().map(|i| i.suppression_hash.clone()).collect::<Vec<_>>());
                if bounces.is_empty() {
                    wave.fetch_all(pool).await
                } else {
                    async {
                        let mut tx = pool.begin().await?;
                        let written = wave.fetch_all(&mut *tx).await?;
                        for bounce in &bounces {
                            record_bounce!(tx, bounce);
                        }
                        tx.commit().await?;
                        Ok(written)
                    }
                    .await
                }
            }
            Store::Sqlite(pool) => {
                let questions: Vec<serde_json::Value> = intents
                    .iter()
                    .map(|i| serde_json::json!([i.delivery_id, i.list_id, i.subscriber_id, i.suppression_hash]))
                    .collect();
                let intent_sql = format!(
                    "UPDATE deliveries SET in_flight_at = $2 WHERE id IN (SELECT q.id FROM \
                     (SELECT CAST(value ->> 0 AS BIGINT) AS id, CAST(value ->> 1 AS BIGINT) AS list_id, \
                     CAST(value ->> 2 AS BIGINT) AS subscriber_id, value ->> 3 AS hash FROM json_each($1)) AS q \
                     WHERE {STILL_ELIGIBLE}) RETURNING id"
                );
                let intent = sqlx::query_as(sqlx::AssertSqlSafe(intent_sql))
                    .bind(serde_json::Value::Array(questions).to_string())
                    .bind(now);
                let encoded: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!([
                            r.id,
                            r.status,
                            r.not_before,
                            r.code,
                            r.error,
                            r.at,
                            r.attempted,
                            r.ambiguous
                        ])
                    })
                    .collect();
                let settle_sql = format!("{SETTLE} FROM {SQLITE_ROWS} WHERE d.id = v.id");
                let settle =
                    sqlx::query(sqlx::AssertSqlSafe(settle_sql)).bind(serde_json::Value::Array(encoded).to_string());
                let statements = usize::from(!intents.is_empty()) + usize::from(!rows.is_empty()) + bounces.len();
                if statements == 1 && rows.is_empty() {
                    intent.fetch_all(pool).await
                } else if statements == 1 {
                    settle.execute(pool).await.map(|_| Vec::new())
                } else {
                    async {
                        let mut tx = pool.begin_with(super::write_begin(pool)).await?;
                        let written = if intents.is_empty() { Vec::new() } else { intent.fetch_all(&mut *tx).await? };
                        if !rows.is_empty() {
                            settle.execute(&mut *tx).await?;
                        }
                        for bounce in &bounces {
                            record_bounce!(tx, bounce);
                        }
                        tx.commit().await?;
                        Ok(written)
                    }
                    .await
                }
            }
        };
        let written: std::collections::HashSet<i64> =
            written.context("cannot record what was sent")?.into_iter().map(|(id,)| id).collect();
        Ok(intents.iter().map(|i| i.delivery_id).filter(|id| !written.contains(id)).collect())
    }
}
