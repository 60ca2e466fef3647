//! Opens and clicks: the open pixel's batched counts, the numbered links of each issue that click tracking may
//! redirect to, and the clicks on them.
//!
//! Opens arrive by the thousand per second, so they are written in batches: one multi-row upsert per batch,
//! with repeated (issue, subscriber) pairs added up first. Opens and clicks are counted in their own tables
//! rather than as `events` rows, which would double the writes for numbers that are unverified anyway.

use std::collections::HashMap;

use anyhow::Context;
use jiff::Timestamp;

use super::json_rows;
use crate::clock::to_millis;
use crate::store::{Backend, Store, on_pool};

/// One hit on an open pixel with a valid token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenEvent {
    pub issue_id: i64,
    pub subscriber_id: i64,
    /// When it happened, in milliseconds since the epoch.
    pub at: i64,
}

impl Store {
    /// Adds a batch of opens in one statement: the first open and a count per subscriber and issue. Opens
    /// naming a subscriber or an issue that no longer exists are left out. Returns the rows written.
    pub async fn record_opens(&self, opens: &[OpenEvent]) -> anyhow::Result<u64> {
        if opens.is_empty() {
            return Ok(0);
        }
        // (first, last, count) per pair: a multi-row upsert may not touch one row twice on PostgreSQL.
        let mut pairs: HashMap<(i64, i64), (i64, i64, i64)> = HashMap::with_capacity(opens.len());
        for open in opens {
            let entry = pairs.entry((open.issue_id, open.subscriber_id)).or_insert((open.at, open.at, 0));
            entry.0 = entry.0.min(open.at);
            entry.1 = entry.1.max(open.at);
            entry.2 += 1;
        }
        let rows: Vec<[i64; 5]> = pairs
            .into_iter()
            .map(|((issue, subscriber), (first, last, count))| [issue, subscriber, first, last, count])
            .collect();
        let rows = serde_json::to_string(&rows)?;
        let latest = match self.backend() {
            Backend::Sqlite => "MAX(opens.last_at, excluded.last_at)",
            Backend::Postgres => "GREATEST(opens.last_at, excluded.last_at)",
        };
        let sql = format!(
            "INSERT INTO opens (issue_id, subscriber_id, first_at, last_at, count) \
             SELECT i.id, s.id, CAST(j.value ->> 2 AS BIGINT), CAST(j.value ->> 3 AS BIGINT), \
             CAST(j.value ->> 4 AS BIGINT) FROM {from} \
             JOIN issues i ON i.id = CAST(j.value ->> 0 AS BIGINT) \
             JOIN subscribers s ON s.id = CAST(j.value ->> 1 AS BIGINT) WHERE true \
             ON CONFLICT (issue_id, subscriber_id) DO UPDATE SET count = opens.count + excluded.count, \
             last_at = {latest}",
            from = json_rows(self.backend())
        );
        let written = on_pool!(self, pool => sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(rows.as_str())
            .execute(pool)
            .await
            .map(|done| done.rows_affected()))
        .context("cannot record opens")?;
        Ok(written)
    }

    /// Stores the numbered links of a draft issue (position 1 is `urls[0]`, the plain-text part's `[1]`),
    /// replacing the ones stored before. An issue past `draft` keeps its links, so links in mail already sent
    /// keep working; returns whether the links were stored.
    pub async fn save_issue_links(&self, issue_id: i64, urls: &[String]) -> anyhow::Result<bool> {
        let rows: Vec<(usize, &str)> = urls.iter().enumerate().map(|(index, url)| (index + 1, url.as_str())).collect();
        let rows = serde_json::to_string(&rows)?;
        let sql = format!(
            "INSERT INTO issue_links (issue_id, position, url) \
             SELECT $2, CAST(j.value ->> 0 AS BIGINT), j.value ->> 1 FROM {from}",
            from = json_rows(self.backend())
        );
        let saved = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let drafts = sqlx::query("UPDATE issues SET updated_at = updated_at WHERE id = $1 AND status = 'draft'")
                .bind(issue_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if drafts == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM issue_links WHERE issue_id = $1").bind(issue_id).execute(&mut *tx).await?;
            if !urls.is_empty() {
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(rows.as_str()).bind(issue_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        })
        .context("cannot store the issue's links")?;
        Ok(saved)
    }

    /// Link number `position` of an issue, as stored by [`Store::save_issue_links`].
    pub async fn issue_link(&self, issue_id: i64, position: i64) -> anyhow::Result<Option<String>> {
        let sql = "SELECT url FROM issue_links WHERE issue_id = $1 AND position = $2";
        let row: Option<(String,)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).bind(position).fetch_optional(pool).await)
                .context("cannot look up the issue's link")?;
        Ok(row.map(|(url,)| url))
    }

    /// Counts a click on link `position` of an issue by a subscriber (who must still exist).
    pub async fn record_click(
        &self,
        issue_id: i64,
        subscriber_id: i64,
        position: i64,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO clicks (issue_id, subscriber_id, position, first_at, last_at, count) \
                   SELECT $1, $2, $3, $4, $4, 1 WHERE EXISTS (SELECT 1 FROM subscribers WHERE id = $2) \
                   ON CONFLICT (issue_id, subscriber_id, position) DO UPDATE SET count = clicks.count + 1, \
                   last_at = excluded.last_at";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(issue_id)
            .bind(subscriber_id)
            .bind(position)
            .bind(to_millis(now))
            .execute(pool)
            .await
            .map(|_| ()))
        .context("cannot record the click")?;
        Ok(())
    }
}
