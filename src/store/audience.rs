//! The list around each issue, for the report: how many subscribers were active when the issue started, and
//! how many joined and left since the issue before it.
//!
//! A subscription counts from its consent (`consent_at`; pending ones never count) until it left: the moment
//! it was unsubscribed, or, for a bounced or complained subscription, its last change (`unsubscribed_at` when
//! recorded, else `updated_at`). With `T` an issue's start and `P` the start of the issue before it:
//! active at `T` = joined at or before `T` and not left before `T`; new = joined in `(P, T]`; lost = left in
//! `[P, T)`. So active(T) = active(P) + new - lost.
//!
//! One scan of the list's subscriptions puts each in the first of the issues' starts (sorted) that it had
//! joined by, and the first that it had left before, and counts them per pair of places (`GROUP BY`, at most
//! 14 x 14 rows); Rust adds those counts up to each start.

use std::collections::HashMap;
use std::fmt::Write;

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

const ISSUES: &str = "SELECT id, started_at FROM issues \
     WHERE list_id = $1 AND started_at IS NOT NULL AND number <= $2 ORDER BY number DESC LIMIT $3";

/// `CASE WHEN {value} {op} $2 THEN 0 WHEN {value} {op} $3 THEN 1 ... ELSE -1 END` over `n` sorted starts.
fn place(value: &str, op: &str, n: usize) -> String {
    let mut sql = String::from("CASE");
    for index in 0..n {
        let _ = write!(sql, " WHEN {value} {op} ${} THEN {index}", index + 2);
    }
    sql.push_str(" ELSE -1 END");
    sql
}

impl Store {
    /// The audience of the last `count` started issues of a list numbered up to `up_to`, by issue id.
    pub async fn audiences(&self, list_id: i64, up_to: i64, count: i64) -> anyhow::Result<HashMap<i64, Audience>> {
        // One issue more than asked: the first one asked for needs the one before it.
        let mut issues: Vec<(i64, i64)> = on_pool!(self, pool => sqlx::query_as(ISSUES)
            .bind(list_id)
            .bind(up_to)
            .bind(count + 1)
            .fetch_all(pool)
            .await)
        .context("cannot read the list's issues")?;
        issues.reverse();
        if issues.is_empty() {
            return Ok(HashMap::new());
        }
        let mut starts: Vec<i64> = issues.iter().map(|(_, at)| *at).collect();
        starts.sort_unstable();
        let n = starts.len();
        let left_at = "COALESCE(unsubscribed_at, updated_at)";
        let sql = format!(
            "SELECT {joined}, CASE WHEN status IN ('unsubscribed', 'bounced', 'complained') THEN {left} ELSE -1 END, \
             COUNT(*) FROM subscriptions WHERE list_id = $1 AND status <> 'pending' AND consent_at IS NOT NULL \
             GROUP BY 1, 2",
            joined = place("consent_at", "<=", n),
            left = place(left_at, "<", n),
        );
        let places: Vec<(i32, i32, i64)> = on_pool!(self, pool => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list_id);
            for start in &starts {
                query = query.bind(*start);
            }
            query.fetch_all(pool).await
        })
        .context("cannot count the list's subscribers at each issue")?;
        // Joined by, and left before, the start at each sorted place.
        let (mut joined, mut left) = (vec![0i64; n], vec![0i64; n]);
        for (join_place, left_place, count) in places {
            for (counts, place) in [(&mut joined, join_place), (&mut left, left_place)] {
                if let Ok(first) = usize::try_from(place) {
                    counts.iter_mut().skip(first).for_each(|c| *c += count);
                }
            }
        }
        let at = |start: i64| {
            let index = starts.partition_point(|s| *s < start);
            (joined[index], left[index])
        };
        let mut out = HashMap::with_capacity(issues.len());
        let extra = usize::from(issues.len() as i64 > count);
        let mut previous: Option<(i64, i64)> = None;
        for (index, (issue_id, start)) in issues.into_iter().enumerate() {
            let (joined, left) = at(start);
            if index >= extra {
                out.insert(
                    issue_id,
                    Audience {
                        active_at_send: joined - left,
                        new_since_previous: previous.map(|(j, _)| joined - j),
                        lost_since_previous: previous.map(|(_, l)| left - l),
                    },
                );
            }
            previous = Some((joined, left));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_is_placed_at_the_first_start_it_had_reached() {
        assert_eq!(
            place("consent_at", "<=", 2),
            "CASE WHEN consent_at <= $2 THEN 0 WHEN consent_at <= $3 THEN 1 ELSE -1 END"
        );
    }
}
