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
    /// When the cadence was last set (milliseconds): the daemon fills the slots after it.
    pub cadence_since: Option<i64>,
}

impl Store {
    /// Creates the configured lists that are missing and updates the others. Lists no longer configured stay,
    /// with their subscribers and history.
    pub async fn sync_lists(&self, specs: &[ListSpec], now: Timestamp) -> anyhow::Result<()> {
        let now = to_millis(now);
        // `cadence_since` moves only when the cadence itself changes (slot, zone or local time), so renaming a
        // list does not forget a slot that passed while the daemon was down.
        let sql = "INSERT INTO lists (slug, name, time_zone, weekly_slot, local_time, cadence_since, created_at, \
                   updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $6) \
                   ON CONFLICT (slug) DO UPDATE SET name = excluded.name, time_zone = excluded.time_zone, \
                   weekly_slot = excluded.weekly_slot, local_time = excluded.local_time, updated_at = excluded.updated_at, \
                   cadence_since = CASE WHEN lists.time_zone <> excluded.time_zone \
                   OR lists.weekly_slot IS DISTINCT FROM excluded.weekly_slot OR lists.local_time <> excluded.local_time \
                   OR lists.cadence_since IS NULL THEN excluded.cadence_since ELSE lists.cadence_since END \
                   WHERE lists.name <> excluded.name OR lists.time_zone <> excluded.time_zone \
                   OR lists.weekly_slot IS DISTINCT FROM excluded.weekly_slot OR lists.local_time <> excluded.local_time \
                   OR lists.cadence_since IS NULL";
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
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
        let sql = "SELECT id, slug, name, time_zone, weekly_slot, local_time, cadence_since FROM lists WHERE slug = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(slug).fetch_optional(pool).await)?)
    }

    /// The list with this id.
    pub async fn list_by_id(&self, list_id: i64) -> anyhow::Result<Option<ListRow>> {
        let sql = "SELECT id, slug, name, time_zone, weekly_slot, local_time, cadence_since FROM lists WHERE id = $1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(list_id).fetch_optional(pool).await)?)
    }

    /// Every list, by short name.
    pub async fn lists(&self) -> anyhow::Result<Vec<ListRow>> {
        let sql = "SELECT id, slug, name, time_zone, weekly_slot, local_time, cadence_since FROM lists ORDER BY slug";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?)
    }
}
