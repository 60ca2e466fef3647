//! Migrations: the same files on both backends, the same schema after applying them, applied once.

use std::collections::BTreeMap;

use tidings::store::Store;

use crate::both_backends;
use crate::helpers::TestDatabase;

fn migration_names(backend: &str) -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_backends_have_migrations_with_the_same_file_names() {
    let sqlite = migration_names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, migration_names("postgres"));
}

/// Table name -> sorted column names.
async fn schema(store: &Store) -> BTreeMap<String, Vec<String>> {
    let rows: Vec<(String, String)> = match store {
        Store::Sqlite(pool) => sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name <> '_sqlx_migrations'",
        )
        .fetch_all(pool)
        .await
        .expect("read the SQLite schema"),
        Store::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name <> '_sqlx_migrations'",
        )
        .fetch_all(pool)
        .await
        .expect("read the PostgreSQL schema"),
    };
    let mut schema: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (table, column) in rows {
        schema.entry(table).or_default().push(column);
    }
    schema.values_mut().for_each(|columns| columns.sort());
    schema
}

both_backends! {
    async fn a_fresh_database_has_every_table_of_the_data_model(db) {
        let schema = schema(&db.store).await;
        let tables: Vec<&str> = schema.keys().map(String::as_str).collect();
        assert_eq!(
            tables,
            [
                "bounce_reports", "clicks", "daemons", "deliveries", "events", "imap_cursors", "issue_links",
                "issue_slots", "issues", "lists", "opens", "relay_circuits", "relay_pace", "relay_usage", "subscribers",
                "subscriptions", "suppression_changes", "suppressions", "votes", "webhook_tokens"
            ]
        );
        assert!(schema["deliveries"].contains(&"message_id".to_owned()));
        assert!(schema["subscriptions"].contains(&"confirm_user_agent".to_owned()));
        assert!(schema["subscribers"].contains(&"email_normalised".to_owned()));
    }

    async fn migrating_again_applies_nothing(db) {
        assert!(db.store.migrate().await.expect("migrate").is_empty());
        let applied = db.store.applied_migrations().await.expect("applied");
        assert_eq!(applied.len(), migration_names("sqlite").len());
        assert_eq!(applied[0], "0001 schema");
    }

    async fn the_migrate_command_reports_an_up_to_date_database(db) {
        let run = db.tidings(&["migrate"]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let expected = format!("the database is up to date ({} migrations applied in all)", migration_names("sqlite").len());
        assert!(run.stdout.contains(&expected), "{}", run.stdout);
    }
}

#[tokio::test]
async fn sqlite_and_postgresql_have_the_same_tables_and_columns() {
    let Some(postgres) = TestDatabase::postgres().await else { return };
    let sqlite = TestDatabase::sqlite().await;
    assert_eq!(schema(&sqlite.store).await, schema(&postgres.store).await);
}

#[tokio::test]
async fn the_migrate_command_creates_a_missing_sqlite_database() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("new.db").display());
    let run = crate::helpers::tidings_with_env(&["migrate"], &[("TIDINGS_DATABASE__URL", &url)], dir.path());
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("applied 0001 schema"), "{}", run.stdout);
    assert!(dir.path().join("new.db").exists());
}
