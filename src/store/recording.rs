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

impl Store {
    /// Writes one wave: the intents of `intents` (deliveries whose final dot is about to be written, at `now`) and
    /// the outcomes of `results`, durably, in one transaction (one statement when that is all there is).
    pub async fn record_wave(&self, intents: &[i64], results: &[DeliveryResult], now: Timestamp) -> anyhow::Result<()> {
        let rows: Vec<Row> = results.iter().map(Row::of).collect();
        // An outcome clears its delivery's intent: an intent in the same wave (a transaction that failed before
        // DATA) need not be written, and each row is then written once.
        let settled: std::collections::HashSet<i64> = rows.iter().map(|r| r.id).collect();
        let intents: Vec<i64> = intents.iter().copied().filter(|id| !settled.contains(id)).collect();
        let bounces: Vec<&DeliveryResult> =
            results.iter().filter(|r| matches!(r.settlement, Settlement::Bounced { .. })).collect();
        let statements = usize::from(!intents.is_empty()) + usize::from(!rows.is_empty()) + bounces.len();
        if statements == 0 {
            return Ok(());
        }
        let now = to_millis(now);
        let written = match self {
            Store::Postgres(pool) => {
                // One statement for the whole wave: the intents in a data-modifying WITH (executed once, whether
                // or not its output is read), the outcomes in the UPDATE itself. Their rows are disjoint.
                let sql = format!(
                    "WITH intents AS (UPDATE deliveries SET in_flight_at = $9 WHERE id = ANY($10)) \
                     {SETTLE} FROM {PG_ROWS} WHERE d.id = v.id"
                );
                let wave = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.not_before).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.code).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.error.clone()).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.attempted).collect::<Vec<_>>())
                    .bind(rows.iter().map(|r| r.ambiguous).collect::<Vec<_>>())
                    .bind(now)
                    .bind(intents.clone());
                if bounces.is_empty() {
                    wave.execute(pool).await.map(|_| ())
                } else {
                    async {
                        let mut tx = pool.begin().await?;
                        wave.execute(&mut *tx).await?;
                        for bounce in &bounces {
                            record_bounce!(tx, bounce);
                        }
                        tx.commit().await
                    }
                    .await
                }
            }
            Store::Sqlite(pool) => {
                let ids = serde_json::to_string(&intents).unwrap_or_else(|_| "[]".to_owned());
                let intent = sqlx::query(
                    "UPDATE deliveries SET in_flight_at = $2 WHERE id IN (SELECT value FROM json_each($1))",
                )
                .bind(ids)
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
                if statements == 1 {
                    let only = if intents.is_empty() { settle } else { intent };
                    only.execute(pool).await.map(|_| ())
                } else {
                    async {
                        let mut tx = pool.begin_with(super::write_begin(pool)).await?;
                        if !intents.is_empty() {
                            intent.execute(&mut *tx).await?;
                        }
                        if !rows.is_empty() {
                            settle.execute(&mut *tx).await?;
                        }
                        for bounce in &bounces {
                            record_bounce!(tx, bounce);
                        }
                        tx.commit().await
                    }
                    .await
                }
            }
        };
        written.context("cannot record what was sent")
    }
}
