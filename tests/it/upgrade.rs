//! Upgrades: a database built with the first release's schema and filled with its data is migrated to the
//! current schema, on both backends, and every row is still there with the same values.
//!
//! Data-driven: `tests/it/upgrade/NNNN_name.sql` files hold rows written right after migration NNNN (the same
//! SQL on both backends). The test applies the migrations found in `migrations/<backend>/` one at a time up to
//! each seed file, runs it, then migrates the rest through `Store::migrate` (the path every command takes), so
//! migrations added later are covered without changing this file (see `migrations/README.md`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sqlx::Row;
use sqlx::migrate::Migrator;
use tidings::store::{Backend, Store};

use crate::helpers::{TestDatabase, options};

/// Tables whose rows the first release's seed must fill: what "intact" is checked on.
const KEY_TABLES: [&str; 6] = ["subscribers", "subscriptions", "issues", "deliveries", "votes", "events"];

/// A table's rows, each column as text.
type Rows = Vec<Vec<Option<String>>>;

/// The seed files, by migration version, in order.
fn seeds() -> Vec<(i64, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/upgrade");
    let mut seeds: Vec<(i64, PathBuf)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .map(|path| {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            let version = name.split('_').next().and_then(|v| v.parse().ok());
            (version.unwrap_or_else(|| panic!("{name} does not start with a migration number")), path)
        })
        .collect();
    seeds.sort();
    seeds
}

/// Every table's columns as they are now.
async fn columns(store: &Store) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = match store {
        Store::Sqlite(pool) => sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations' ORDER BY p.cid",
        )
        .fetch_all(pool)
        .await
        .expect("read the SQLite schema"),
        Store::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations' ORDER BY ordinal_position",
        )
        .fetch_all(pool)
        .await
        .expect("read the PostgreSQL schema"),
    };
    let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in rows {
        tables.entry(table).or_default().push(column);
    }
    tables
}

/// The rows of `table`, each column as text (NULL as `None`), sorted.
async fn rows(store: &Store, table: &str, columns: &[String]) -> Rows {
    let select: Vec<String> = columns.iter().map(|c| format!("CAST(\"{c}\" AS TEXT)")).collect();
    let order: Vec<String> = (1..=columns.len()).map(|i| i.to_string()).collect();
    let sql = format!("SELECT {} FROM {table} ORDER BY {}", select.join(", "), order.join(", "));
    let decode = |row: &dyn Fn(usize) -> Option<String>| (0..columns.len()).map(row).collect::<Vec<_>>();
    match store {
        Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("read rows")
            .iter()
            .map(|row| decode(&|i| row.try_get::<Option<String>, _>(i).expect("a text column")))
            .collect(),
        Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await
            .expect("read rows")
            .iter()
            .map(|row| decode(&|i| row.try_get::<Option<String>, _>(i).expect("a text column")))
            .collect(),
    }
}

async fn run_sql(store: &Store, sql: String) {
    match store {
        Store::Sqlite(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(|_| ()),
    }
    .expect("run the seed SQL");
}

async fn migrate_to(store: &Store, migrator: &Migrator, version: i64) {
    match store {
        Store::Sqlite(pool) => migrator.run_to(version, pool).await,
        Store::Postgres(pool) => migrator.run_to(version, pool).await,
    }
    .unwrap_or_else(|e| panic!("apply the migrations up to {version}: {e}"));
}

async fn a_first_release_database_upgrades_with_every_row_intact(backend: Backend) {
    let Some((url, _dir)) = TestDatabase::empty(backend).await else { return };
    let store = Store::connect(&options(&url)).await.expect("connect");
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migrator = Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(folder))
        .await
        .expect("read the migrations");
    let everything: Vec<String> = migrator.iter().map(|m| format!("{:04} {}", m.version, m.description)).collect();

    // Write each seed with the schema of its migration, and remember every row as it was written.
    let mut written: BTreeMap<String, (Vec<String>, Rows)> = BTreeMap::new();
    let seeds = seeds();
    assert_eq!(seeds.first().map(|(version, _)| *version), Some(1), "the first release's data is the first seed");
    for (version, path) in &seeds {
        migrate_to(&store, &migrator, *version).await;
        run_sql(&store, std::fs::read_to_string(path).expect("read the seed")).await;
        for (table, columns) in columns(&store).await {
            let rows = rows(&store, &table, &columns).await;
            written.insert(table, (columns, rows));
        }
    }
    for table in KEY_TABLES {
        assert!(!written[table].1.is_empty(), "the seed writes rows into {table}");
    }

    // The upgrade itself, as every command does it; the dry run lists exactly what it then applies.
    let last_seed = seeds.last().map_or(0, |(version, _)| *version);
    let pending = store.pending_migrations().await.expect("pending migrations");
    let expected: Vec<String> =
        everything.iter().filter(|m| m[..4].parse::<i64>().unwrap() > last_seed).cloned().collect();
    assert_eq!(pending, expected);
    let applied = store.migrate().await.expect("migrate to the current schema");
    assert_eq!(applied, pending);
    assert!(store.pending_migrations().await.expect("pending migrations").is_empty());

    for (table, (columns, before)) in &written {
        let after = rows(&store, table, columns).await;
        assert_eq!(&after, before, "the rows of {table} changed in the upgrade");
    }
    // And the current code reads the old data.
    let issue = store.issue_by_number(1, 121).await.expect("read the issue").expect("issue 121 is there");
    assert_eq!(issue.status, "sent");
    let counts = store.delivery_counts(issue.id).await.expect("count deliveries");
    assert_eq!((counts.sent, counts.bounced, counts.ever_ambiguous), (2, 1, 1));
    store.close().await;
}

mod a_first_release_database_upgrades_to_the_current_schema_with_every_row_intact {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        a_first_release_database_upgrades_with_every_row_intact(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        a_first_release_database_upgrades_with_every_row_intact(Backend::Postgres).await;
    }
}

#[tokio::test]
async fn migrate_dry_run_lists_pending_migrations_and_applies_nothing() {
    let (url, dir) = TestDatabase::empty(Backend::Sqlite).await.expect("a SQLite database");
    let store = Store::connect(&options(&url)).await.expect("connect");
    let migrator = Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite")).await.expect("read");
    let Store::Sqlite(pool) = &store else { unreachable!() };
    migrator.run_to(1, pool).await.expect("apply 0001");

    let run =
        crate::helpers::tidings_with_env(&["migrate", "--dry-run"], &[("TIDINGS_DATABASE__URL", &url)], dir.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let later: Vec<String> = migrator
        .iter()
        .filter(|m| m.version > 1)
        .map(|m| format!("pending {:04} {}", m.version, m.description))
        .collect();
    for line in &later {
        assert!(run.stdout.contains(line.as_str()), "{line} missing from:\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("0001"), "{}", run.stdout);
    assert_eq!(store.applied_migrations().await.expect("applied"), ["0001 schema"], "the dry run applied nothing");
    store.close().await;
}
