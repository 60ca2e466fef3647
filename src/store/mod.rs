//! The database: SQLite or PostgreSQL behind one `Store`, chosen by the URL's scheme.
//!
//! Each function holds both dialects side by side through [`on_pool!`]; most statements are the same text on
//! both backends (`$1` placeholders work on both). Timestamps are BIGINT milliseconds since the Unix epoch.
//! This is the only module that imports sqlx. It performs no network I/O other than to the database, and no
//! transaction here ever waits on anything but the database.

mod audience;
mod bounces;
mod cadence;
mod deliverability;
mod deliveries;
mod imap;
mod import;
mod issues;
mod lists;
mod maintenance;
mod outbox;
mod pace;
mod readiness;
mod recording;
mod relay;
mod stats;
mod subscribers;
mod suppressions;
mod wake;
mod web;
mod webhooks;

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use audience::Audience;
pub use bounces::{AppliedReport, Effect, NewReport, ReportRow, ReportTarget, ScoreRule};
pub use cadence::{SlotFill, SlotOutcome, SlotRow, ZoneProgress};
pub use deliverability::DomainCounts;
pub use deliveries::{
    AmbiguousDelivery, ClaimedDelivery, DeliveryCounts, DeliveryResult, EligibilityQuestion, Settlement,
};
pub use imap::ImapCursor;
pub use import::{ImportBatch, ImportBatchOutcome, ImportRow, ImportSession, Standing};
pub use issues::{IssueRow, NewIssue, SaveOutcome};
pub use lists::ListRow;
pub use maintenance::BackupMark;
pub use outbox::{LocalSchedule, OUTBOX_CHUNK};
pub use readiness::MigrationState;
pub use recording::Intent;
pub use relay::{OpenCircuit, RateLimits, Reservation};
pub use stats::{Buckets, IssueDetail, IssueSummary, LinkClicks, ReasonCount, ReportCounts, StarCounts};
pub use subscribers::{AddOutcome, EraseOutcome, StatusCount, SubscriberFilter, SubscriberRow, SubscriptionRow};
pub use suppressions::{ReportFilter, ReportRates, SuppressionRow};
pub use wake::WakeListener;
pub use web::{
    ArchiveEntry, ExpiryOutcome, LinkIssue, LinkSubscriber, NewVote, NoConfirmation, OpenEvent, Resubscribe, Stars,
    SubscribeOutcome, SubscribeRequest, Tally, WebCounts,
};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool; the body is compiled once per backend.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite($pool) => $body,
            $crate::store::Store::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// How a write transaction begins: `BEGIN IMMEDIATE` on SQLite, so it takes the write lock at once and waits
/// for it (`busy_timeout`) instead of failing with "database is locked" when it reads first and another
/// connection writes meanwhile; a plain `BEGIN` on PostgreSQL.
pub(crate) fn write_begin<DB: sqlx::Database>(_pool: &sqlx::Pool<DB>) -> &'static str {
    if DB::NAME == "SQLite" { "BEGIN IMMEDIATE" } else { "BEGIN" }
}

/// A connection pool to the one database of this instance.
#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How the store connects; built from `[database]`.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    pub busy_timeout: Duration,
}

impl Store {
    /// Connects (creating a missing SQLite file) and applies pending migrations.
    pub async fn open(options: &StoreOptions) -> anyhow::Result<Store> {
        let store = Self::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects without migrating. SQLite runs in WAL mode with foreign keys on and full durability: a committed
    /// transition survives a crash or a power cut. `secure_delete` overwrites deleted content with zeros, so an
    /// erased subscriber's address, name and attributes do not linger in free space.
    pub async fn connect(options: &StoreOptions) -> anyhow::Result<Store> {
        let url = options.url.as_str();
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            let connect = SqliteConnectOptions::from_str(url)
                .with_context(|| format!("database.url `{shown}` is not a valid SQLite URL"))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .pragma("secure_delete", "ON")
                .busy_timeout(options.busy_timeout);
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .connect_with(connect)
                .await
                .with_context(|| format!("cannot open the SQLite database `{shown}`"))?;
            Ok(Store::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let connect = PgConnectOptions::from_str(url)
                .with_context(|| format!("database.url `{shown}` is not a valid PostgreSQL URL"))?
                // Every statement is prepared once per connection and its plan kept: without this the server
                // plans the engine's array statements again at each execution (their arrays' lengths make each
                // custom plan look cheaper than the generic one), about a tenth of its CPU per message. Queries
                // name statuses and flags as literals, so partial indexes still serve them.
                .options([("plan_cache_mode", "force_generic_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                // A pooled connection is not pinged before each use: that was one more round trip per
                // statement. A connection that broke meanwhile fails its statement, which the caller handles
                // like any database error, and the pool then replaces it.
                .test_before_acquire(false)
                .connect_with(connect)
                .await
                .with_context(|| format!("cannot connect to the PostgreSQL database `{shown}`"))?;
            Ok(Store::Postgres(pool))
        } else {
            bail!("database.url `{shown}` must start with sqlite:// or postgres://")
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Store::Sqlite(_) => Backend::Sqlite,
            Store::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations not yet applied; returns the descriptions of those it applied.
    pub async fn migrate(&self) -> anyhow::Result<Vec<String>> {
        let before = self.applied_migrations().await.unwrap_or_default();
        match self {
            Store::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Store::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .context("cannot apply the database migrations")?;
        let after = self.applied_migrations().await?;
        Ok(after.into_iter().filter(|m| !before.contains(m)).collect())
    }

    /// Versions and descriptions of the applied migrations, oldest first, e.g. `0001 schema`.
    pub async fn applied_migrations(&self) -> anyhow::Result<Vec<String>> {
        let sql = "SELECT version, description FROM _sqlx_migrations WHERE success = true ORDER BY version";
        let rows: Vec<(i64, String)> = on_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await)?;
        Ok(rows.into_iter().map(|(version, description)| format!("{version:04} {description}")).collect())
    }

    /// Closes every connection (for SQLite this checkpoints the WAL).
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((credentials, host)) = rest.split_once('@') else { return url.to_owned() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_database_urls() {
        assert_eq!(redact_url("postgres://tidings:s3cret@db:5432/t"), "postgres://tidings:***@db:5432/t");
        assert_eq!(redact_url("sqlite://tidings.db"), "sqlite://tidings.db");
        assert_eq!(redact_url("postgres://tidings@db/t"), "postgres://tidings@db/t");
    }
}
