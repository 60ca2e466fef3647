//! What `/readyz` asks the database: does it answer, and are its migrations the ones this binary carries.

use super::{POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, Store, on_pool};

/// The migrations of this binary against those applied to the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationState {
    /// Applied, of those this binary carries.
    pub applied: usize,
    /// Carried by this binary and not applied yet.
    pub pending: usize,
}

impl Store {
    /// Which of this binary's migrations the database has; an error when it does not answer.
    pub async fn migration_state(&self) -> anyhow::Result<MigrationState> {
        let sql = "SELECT version FROM _sqlx_migrations WHERE success = true";
        let applied: Vec<(i64,)> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        let known = match self {
            Store::Sqlite(_) => &SQLITE_MIGRATIONS,
            Store::Postgres(_) => &POSTGRES_MIGRATIONS,
        };
        let (done, pending) = known.iter().fold((0, 0), |(done, pending), migration| {
            if applied.iter().any(|(version,)| *version == migration.version) {
                (done + 1, pending)
            } else {
                (done, pending + 1)
            }
        });
        Ok(MigrationState { applied: done, pending })
    }
}
