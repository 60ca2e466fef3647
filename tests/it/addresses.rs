//! One person, one subscriber: addresses compare case-insensitively on the whole address (kept as given) in
//! imports, `subscriber add`, the subscribe form, suppressions and erasure; an export imported elsewhere keeps
//! every opt-out and its consent evidence; and erasure leaves nothing readable in the SQLite file.

use tidings::domain::SubscriberEmail;
use tidings::store::{Store, SubscriberFilter};

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::web::WebApp;

async fn subscriptions(db: &TestDatabase) -> Vec<(String, String)> {
    let filter = SubscriberFilter { list_id: Some(db.list_id), status: None };
    let rows = db.store.list_subscribers(filter, None, 10_000).await.expect("list");
    rows.into_iter().map(|row| (row.email, row.status)).collect()
}

async fn execute(db: &TestDatabase, sql: &str) {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &db.store {
        Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(|_| ()),
    }
    .expect("statement");
}

fn path(path: &std::path::Path) -> &str {
    path.to_str().expect("utf-8 path")
}

both_backends! {
    async fn two_spellings_of_one_address_in_one_csv_make_one_subscriber_and_a_reported_repeat(db) {
        let csv = db.write_file("list.csv", b"email,name\nGOOD1@BAD.EXAMPLE,First\ngood1@bad.example,Second\nother@bad.example,Other\n");
        let run = db.tidings(&["subscriber", "import", path(&csv)]);
        assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains("line 3:") && run.stderr.contains("earlier in the file"), "{}", run.stderr);
        assert!(run.stdout.contains("2 added"), "{}", run.stdout);
        // The address is kept as the file first gave it.
        assert_eq!(
            subscriptions(&db).await,
            vec![("GOOD1@bad.example".to_owned(), "active".to_owned()), ("other@bad.example".to_owned(), "active".to_owned())]
        );

        // A later file, `subscriber add` and `show` all find the same person whatever the case.
        let later = db.write_file("later.csv", b"email\nGood1@Bad.Example\n");
        let run = db.tidings(&["subscriber", "import", path(&later)]);
        assert!(run.stdout.contains("0 added, 1 already subscribed"), "{}", run.stdout);
        let added = db.tidings(&["subscriber", "add", "good1@BAD.example"]);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        assert_eq!(subscriptions(&db).await.len(), 2);
        let shown = db.tidings(&["subscriber", "show", "good1@bad.example", "--json"]);
        assert_eq!(shown.code, Some(0), "{}", shown.stderr);
        let value: serde_json::Value = serde_json::from_str(&shown.stdout).expect("json");
        assert_eq!(value["email"], "GOOD1@bad.example");
    }

    async fn suppression_and_erasure_stop_every_spelling_of_the_address(db) {
        let added = db.tidings(&["subscriber", "add", "Mixed.Case@Example.org", "--name", "Mixed"]);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        let erased = db.tidings(&["subscriber", "erase", "mixed.case@example.org"]);
        assert_eq!(erased.code, Some(0), "{}", erased.stderr);
        assert!(subscriptions(&db).await.is_empty(), "the other spelling erased the person");

        for spelling in ["MIXED.CASE@EXAMPLE.ORG", "mixed.case@example.org"] {
            let again = db.tidings(&["subscriber", "add", spelling]);
            assert_eq!(again.code, Some(1), "{spelling}: {}", again.stdout);
            assert!(again.stderr.contains("suppression list (erased)"), "{}", again.stderr);
        }
        let csv = db.write_file("back.csv", b"email\nMIXED.case@example.org\n");
        let run = db.tidings(&["subscriber", "import", path(&csv)]);
        assert!(run.stdout.contains("0 added"), "{}", run.stdout);
        assert!(subscriptions(&db).await.is_empty());
        let email = SubscriberEmail::parse("MIXED.CASE@example.ORG").expect("address");
        assert!(db.store.suppression_of(&email).await.expect("query").is_some());
    }

    async fn the_subscribe_form_finds_an_existing_subscriber_whatever_the_case(db) {
        let app = WebApp::start(db, 0, &[]).await;
        let link = app.subscribe_and_get_confirm_link("ana@example.org", "Ana").await;
        assert_eq!(app.post_form(&link, &[]).await.status(), 200);
        let again = app.post_form("/subscribe", &[("email", "ANA@Example.ORG"), ("name", "Ana")]).await;
        assert_eq!(again.status(), 200);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscribers").await, 1);
        assert_eq!(app.status_of("ana@example.org").await, "active");
    }

    async fn an_export_imported_into_a_fresh_database_resubscribes_nobody_and_keeps_consent_dates(db) {
        let csv = db.write_file("in.csv", b"email,name\nstays@example.com,Stays\nleft@example.com,Left\nbounced@example.com,Bounced\n");
        assert_eq!(db.tidings(&["subscriber", "import", path(&csv)]).code, Some(0));
        let left = SubscriberEmail::parse("left@example.com").expect("address");
        let (person, _) = db.store.find_subscriber(&left).await.expect("query").expect("subscriber");
        db.clock.advance(jiff::SignedDuration::from_hours(30));
        assert!(db.store.unsubscribe(db.list_id, person.id, db.clock.now()).await.expect("unsubscribe"));
        let bounced = SubscriberEmail::parse("bounced@example.com").expect("address");
        let (person, _) = db.store.find_subscriber(&bounced).await.expect("query").expect("subscriber");
        execute(&db, &format!("UPDATE subscriptions SET status = 'bounced' WHERE subscriber_id = {}", person.id)).await;
        let (_, before) = db.store.find_subscriber(&left).await.expect("query").expect("subscriber");

        let export = db.dir.path().join("out.csv");
        assert_eq!(db.tidings(&["subscriber", "export", "--out", path(&export)]).code, Some(0));
        let fresh = TestDatabase::new(db.backend).await;
        fresh.clock.advance(jiff::SignedDuration::from_hours(24 * 40));
        let run = fresh.tidings(&["subscriber", "import", path(&export)]);
        assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);

        let statuses = subscriptions(&fresh).await;
        assert_eq!(
            statuses,
            vec![
                ("stays@example.com".to_owned(), "active".to_owned()),
                ("left@example.com".to_owned(), "unsubscribed".to_owned()),
                ("bounced@example.com".to_owned(), "bounced".to_owned()),
            ]
        );
        let (_, after) = fresh.store.find_subscriber(&left).await.expect("query").expect("subscriber");
        // Exported to the second: the times are kept, not reset to the import.
        let second = |ms: Option<i64>| ms.map(|ms| ms / 1000);
        assert_eq!(second(after[0].consent_at), second(before[0].consent_at));
        assert_eq!(second(after[0].unsubscribed_at), second(before[0].unsubscribed_at));
        assert_eq!(after[0].source, "import");

        // Importing the export again over a database where they are active applies the opt-outs.
        let plain = fresh.write_file("plain.csv", b"email\nleft2@example.com\n");
        assert_eq!(fresh.tidings(&["subscriber", "import", path(&plain)]).code, Some(0));
        let opt_out = fresh.write_file("opt-out.csv", b"email,status\nLEFT2@example.com,unsubscribed\nstays@example.com,active\n");
        let run = fresh.tidings(&["subscriber", "import", path(&opt_out)]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert!(run.stdout.contains("1 subscriptions ended: the file says"), "{}", run.stdout);
        let statuses = subscriptions(&fresh).await;
        assert!(statuses.contains(&("left2@example.com".to_owned(), "unsubscribed".to_owned())), "{statuses:?}");
        let reactivate = fresh.write_file("again.csv", b"email,status\nleft@example.com,active\nbounced@example.com,active\n");
        assert_eq!(fresh.tidings(&["subscriber", "import", path(&reactivate)]).code, Some(0));
        let statuses = subscriptions(&fresh).await;
        assert!(statuses.contains(&("left@example.com".to_owned(), "unsubscribed".to_owned())), "{statuses:?}");
        assert!(statuses.contains(&("bounced@example.com".to_owned(), "bounced".to_owned())), "{statuses:?}");
    }
}

/// Whether `needle` occurs anywhere in the bytes of `file` (a missing file holds nothing).
fn file_holds(file: &std::path::Path, needle: &str) -> bool {
    let bytes = std::fs::read(file).unwrap_or_default();
    bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_subscriber_leaves_no_readable_trace_in_the_sqlite_file_or_its_log() {
    let db = TestDatabase::sqlite().await;
    let mut csv = String::from("email,name,city\n");
    for i in 0..200 {
        csv.push_str(&format!("keep{i}@example.com,Keeper {i},Paris\n"));
    }
    csv.push_str("erin.quist@forget.example,Erin Quistgaard,Zanzibarville\n");
    let file = db.write_file("people.csv", csv.as_bytes());
    assert_eq!(db.tidings(&["subscriber", "import", path(&file)]).code, Some(0));
    let database = db.dir.path().join("tidings.db");
    let wal = db.dir.path().join("tidings.db-wal");
    let secrets = ["erin.quist@forget.example", "Erin Quistgaard", "Zanzibarville"];
    // Checkpoint so the row is in the database file itself, not only in the log.
    let Store::Sqlite(pool) = &db.store else { unreachable!() };
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");
    assert!(secrets.iter().all(|secret| file_holds(&database, secret)), "the test must see the data before");

    let run = db.tidings(&["subscriber", "erase", "Erin.Quist@forget.example"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(pool).await.expect("checkpoint");

    for secret in secrets {
        assert!(!file_holds(&database, secret), "`{secret}` is still readable in tidings.db");
        assert!(!file_holds(&wal, secret), "`{secret}` is still readable in tidings.db-wal");
    }
    assert!(file_holds(&database, "keep7@example.com"), "the others are still there");
}

both_backends! {
    async fn the_migration_gives_existing_subscribers_their_normalised_address_and_keeps_earlier_case_twins(db) {
        // The schema as it was before 0007, with subscribers that differ only by case; then 0007, all in one
        // script on one connection.
        let before = "DROP INDEX subscribers_by_normalised_email; \
            ALTER TABLE subscribers DROP COLUMN email_normalised; \
            DROP TABLE relay_pace; \
            INSERT INTO subscribers (email, name, created_at, updated_at) VALUES \
            ('Twin@Example.com', 'First', 0, 0), ('twin@example.com', 'Second', 0, 0), ('solo@example.com', 'Solo', 0, 0);\n";
        let backend = if db.backend == tidings::store::Backend::Sqlite { "sqlite" } else { "postgres" };
        let migration = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend)
            .join("0007_email_normalised.sql");
        let sql = before.to_owned() + &std::fs::read_to_string(migration).expect("the migration");
        match &db.store {
            Store::Sqlite(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(|_| ()),
            Store::Postgres(pool) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(pool).await.map(|_| ()),
        }
        .expect("apply 0007");

        // The oldest twin is the one every spelling finds; the later one is kept, as before, and listed.
        let email = SubscriberEmail::parse("TWIN@example.COM").expect("address");
        let (found, _) = db.store.find_subscriber(&email).await.expect("query").expect("subscriber");
        assert_eq!((found.email.as_str(), found.name.as_str()), ("Twin@Example.com", "First"));
        let solo = SubscriberEmail::parse("Solo@Example.com").expect("address");
        assert!(db.store.find_subscriber(&solo).await.expect("query").is_some());
        let added = db.tidings(&["subscriber", "add", "TWIN@EXAMPLE.COM"]);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        let count: i64 = match &db.store {
            Store::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM subscribers").fetch_one(pool).await,
        }
        .expect("count");
        assert_eq!(count, 3, "no third twin");
    }
}
