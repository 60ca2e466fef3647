//! Upgrades and backups: which migrations a database still lacks, a consistent copy of a SQLite database
//! taken while daemons write to it, and the mark that copy carries so that a restore says what it may send
//! again.
//!
//! A backup is `VACUUM INTO`: one read transaction, so the copy is the database as it was at one commit, and
//! writers (a daemon sending) go on meanwhile. What happened after that commit is not in the copy: every
//! delivery the copy shows as not yet settled may have been sent after it, so [`Store::mark_as_backup`] flags
//! them (`ambiguous_at`, with the reason) and `issue status` lists them once the copy is restored.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{Context, bail};
use jiff::Timestamp;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use super::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store, on_pool};
use crate::clock::to_millis;

/// What marking a fresh copy as a backup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupMark {
    /// Deliveries not yet settled in the copy (queued, retrying, ambiguous): a restore may send them again.
    pub unsettled: u64,
    /// Deliveries being sent when the copy was taken, now `ambiguous`.
    pub in_flight: u64,
    /// Issues whose delivery rows were still being created: paused in the copy with the reason, since the rows
    /// created after a restore could not be marked.
    pub outbox_incomplete: u64,
}

impl Store {
    /// The migrations this binary holds that the database has not applied, oldest first, as `0005 name`.
    /// Applies nothing.
    pub async fn pending_migrations(&self) -> anyhow::Result<Vec<String>> {
        let migrator = match self {
            Store::Sqlite(_) => &SQLITE_MIGRATIONS,
            Store::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let exists = match self {
            Store::Sqlite(pool) => sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            )
            .fetch_one(pool)
            .await
            .map(|n| n > 0),
            Store::Postgres(pool) => {
                sqlx::query_scalar::<_, bool>("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                    .fetch_one(pool)
                    .await
            }
        }
        .context("cannot read which migrations are applied")?;
        let applied: HashSet<i64> = if exists {
            let sql = "SELECT version FROM _sqlx_migrations WHERE success = true";
            let rows: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
            rows.into_iter().map(|(version,)| version).collect()
        } else {
            HashSet::new()
        };
        Ok(migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration() && !applied.contains(&m.version))
            .map(|m| format!("{:04} {}", m.version, m.description))
            .collect())
    }

    /// Writes a consistent copy of this SQLite database into `path`, which must not exist or be empty
    /// (`VACUUM INTO`: one read transaction; writers go on meanwhile). PostgreSQL has `pg_dump` for this.
    pub async fn backup_into(&self, path: &Path) -> anyhow::Result<()> {
        let Store::Sqlite(pool) = self else {
            bail!("tidings backup copies SQLite databases; for PostgreSQL use pg_dump -Fc (see the README)")
        };
        let target = path.to_str().with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(pool)
            .await
            .with_context(|| format!("cannot copy the database into {}", path.display()))?;
        Ok(())
    }

    /// Opens a SQLite file that is not the configured database (a backup just written), without migrating.
    pub async fn open_sqlite_file(path: &Path) -> anyhow::Result<Store> {
        let options = SqliteConnectOptions::new().filename(path).create_if_missing(false).foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Store::Sqlite(pool))
    }

    /// Marks a copy taken at `taken_at` as a backup, so that a restore of it says what it may send again:
    /// every delivery not settled in the copy gets `ambiguous_at = taken_at` and says why (it may have been
    /// sent after the backup), those being sent become `ambiguous` with their lease released, an issue whose
    /// delivery rows were still being created is paused with the reason (rows created later cannot be marked),
    /// and the daemons recorded as running are forgotten (none runs on the copy). Call it on the copy only.
    pub async fn mark_as_backup(&self, taken_at: Timestamp) -> anyhow::Result<BackupMark> {
        let at = to_millis(taken_at);
        let reason = format!(
            "restored from the backup taken at {}: it may have been sent after the backup",
            taken_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        let in_flight_sql = "UPDATE deliveries SET status = 'ambiguous', ambiguous_at = COALESCE(ambiguous_at, $1), \
                             not_before = $1, lease_owner = NULL, lease_expires_at = NULL, last_error = $2, \
                             updated_at = $1 WHERE status = 'sending' AND is_test = false";
        let unsettled_sql = "UPDATE deliveries SET ambiguous_at = COALESCE(ambiguous_at, $1), last_error = $2, \
                             updated_at = $1 \
                             WHERE status IN ('queued', 'retry_wait', 'ambiguous') AND is_test = false";
        let hold = format!(
            "restored from the backup taken at {}, while its delivery rows were being created: rows created after \
             the restore are not marked, and their subscribers may have had the issue already; \
             `tidings issue resume` sends it on",
            taken_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        );
        let incomplete_sql = "UPDATE issues SET status = 'paused', hold_reason = $1 \
                              WHERE status = 'sending' AND started_at IS NOT NULL AND outbox_ready_at IS NULL";
        let result = on_pool!(self, pool => {
            let mut tx = pool.begin_with(super::write_begin(pool)).await?;
            let in_flight = sqlx::query(in_flight_sql).bind(at).bind(&reason).execute(&mut *tx).await?.rows_affected();
            let unsettled = sqlx::query(unsettled_sql).bind(at).bind(&reason).execute(&mut *tx).await?.rows_affected();
            sqlx::query("DELETE FROM daemons").execute(&mut *tx).await?;
            let incomplete = sqlx::query(incomplete_sql).bind(&hold).execute(&mut *tx).await?.rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(BackupMark {
                unsettled: unsettled.saturating_sub(in_flight),
                in_flight,
                outbox_incomplete: incomplete,
            })
        });
        result.context("cannot mark the copy as a backup")
    }
}
