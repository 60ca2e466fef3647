//! Lists: kept in step with `[lists]` in the configuration.

use anyhow::Context;
use jiff::Timestamp;

use super::{Store, on_pool};
use crate::clock::to_millis;
use crate::domain::ListSpec;

/// A list as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ListRow {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub time_zone: String,
    pub weekly_slot: Option<String>,
    pub local_time: bool,
}

impl Store {
    /// Creates the configured lists that are missing and updates the others. Lists no longer configured stay,
    /// with their subscribers and history.
    pub async fn sync_lists(&self, specs: &[ListSpec], now: Timestamp) -> anyhow::Result<()> {
        let now = to_millis(now);
        let sql = "INSERT INTO lists (slug, name, time_zone, weekly_slot, local_time, created_at, updated_at) \
                   VALUES ($1, $2, $3, $4, $5, $6, $6) \
                   ON CONFLICT (slug) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone, \
                   weekly_slot = excluded.weekly_slot, local_time = excluded.local_time, updated_at = excluded.updated_at \
                   WHERE lists.name <> excluded.name OR lists.time_zone <> excluded.time_zone \
                   OR lists.weekly_slot IS DISTINCT FROM excluded.weekly_slot OR lists.local_time <> excluded.local_time";
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for spec in specs {
                sqlx::query(sql)
                    .bind(spec.slug.as_str())
                    .bind(&spec.name)
                    .bind(&spec.time_zone)
                    .bind(spec.weekly.as_deref())
                    .bind(spec.local_time)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        })
        .context("cannot record the configured lists")
    }

    /// The list with this short name.
    pub async fn list_by_slug(&self, slug: &str) -> anyhow::Result<Option<ListRow>> {
        let sql = "SELECT id, slug, name, time_zone, weekly_slot, local_time FROM lists WHERE slug = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(slug).fetch_optional(pool).await)?)
    }

    /// Every list, by short name.
    pub async fn lists(&self) -> anyhow::Result<Vec<ListRow>> {
        let sql = "SELECT id, slug, name, time_zone, weekly_slot, local_time FROM lists ORDER BY slug";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}
