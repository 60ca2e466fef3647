//! The list around each issue, for the report: how many subscribers were active when the issue started, and
//! how many joined and left since the issue before it.
//!
//! A subscription counts from its consent (`consent_at`; pending ones never count) until it left: the moment
//! it was unsubscribed, or, for a bounced or complained subscription, its last change (`unsubscribed_at` when
//! recorded, else `updated_at`). With `T` an issue's start and `P` the start of the issue before it:
//! active at `T` = joined at or before `T` and not left before `T`; new = joined in `(P, T]`; lost = left in
//! `[P, T)`. So active(T) = active(P) + new - lost.
//!
//! One statement counts, for each of the wanted issues, the subscriptions joined by its start and those left
//! before it (a `SUM(CASE ...)` over the list's subscriptions per issue); Rust only subtracts neighbours.

use std::collections::HashMap;

use anyhow::Context;

use super::{Store, on_pool};

/// The list when one issue started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Audience {
    /// Subscribers active when the issue started.
    pub active_at_send: i64,
    /// Joined since the previous issue started (`None` for a list's first issue).
    pub new_since_previous: Option<i64>,
    /// Left since the previous issue started (`None` for a list's first issue).
    pub lost_since_previous: Option<i64>,
}

const COUNTS: &str = "SELECT i.id, i.number, \
       CAST(COALESCE(SUM(CASE WHEN s.joined_at <= i.started_at THEN 1 ELSE 0 END), 0) AS BIGINT), \
       CAST(COALESCE(SUM(CASE WHEN s.left_at < i.started_at THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM (SELECT id, number, started_at FROM issues \
           WHERE list_id = $1 AND started_at IS NOT NULL AND number <= $2 ORDER BY number DESC LIMIT $3) i \
     LEFT JOIN (SELECT consent_at AS joined_at, \
                  CASE WHEN status IN ('unsubscribed', 'bounced', 'complained') \
                       THEN COALESCE(unsubscribed_at, updated_at) END AS left_at \
                FROM subscriptions WHERE list_id = $1 AND status <> 'pending' AND consent_at IS NOT NULL) s \
       ON s.joined_at <= i.started_at \
     GROUP BY i.id, i.number ORDER BY i.number";

impl Store {
    /// The audience of the last `count` started issues of a list numbered up to `up_to`, by issue id.
    pub async fn audiences(&self, list_id: i64, up_to: i64, count: i64) -> anyhow::Result<HashMap<i64, Audience>> {
        // One issue more than asked: the first one asked for needs the one before it.
        let rows: Vec<(i64, i64, i64, i64)> = on_pool!(self, pool => sqlx::query_as(COUNTS)
            .bind(list_id)
            .bind(up_to)
            .bind(count + 1)
            .fetch_all(pool)
            .await)
        .context("cannot count the list's subscribers at each issue")?;
        let mut out = HashMap::with_capacity(rows.len());
        let mut previous: Option<(i64, i64)> = None;
        let extra = usize::from(rows.len() as i64 > count);
        for (index, (issue_id, _number, joined, left)) in rows.into_iter().enumerate() {
            let since =
                |before: Option<(i64, i64)>, pick: fn((i64, i64)) -> i64, now: i64| before.map(|p| now - pick(p));
            if index < extra {
                previous = Some((joined, left));
                continue;
            }
            out.insert(
                issue_id,
                Audience {
                    active_at_send: joined - left,
                    new_since_previous: since(previous, |p| p.0, joined),
                    lost_since_previous: since(previous, |p| p.1, left),
                },
            );
            previous = Some((joined, left));
        }
        Ok(out)
    }
}
