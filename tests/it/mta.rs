//! Bounces end to end with real MTAs. Postfix: `tidings serve` sends issue 122 through a private Postfix, which
//! relays to the SMTP test server; the test server refuses some recipients (550 5.1.1, 452 4.2.2), Postfix
//! writes its own DSNs to the signed return paths and delivers them, through its transport map, to the report
//! listener of the same daemon. Exim: the SMTP test server refuses a recipient Exim relays to it, Exim writes its
//! DSN and pipes it to `tidings bounce ingest`; with the database down the pipe exits 75 and Exim keeps the DSN queued until a
//! later queue run delivers it. Every check counts what the other side received or what the database holds.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tidings::clock::Clock;
use tidings::domain::SubscriberEmail;
use tidings::store::Store;

use crate::helpers::TestDatabase;
use crate::helpers::mta::{Exim, Postfix, free_port};
use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const BOUNCE: &str = "bounces@bounces.example.com";
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");
/// How long Postfix may take to send back every DSN.
const WAIT: Duration = Duration::from_secs(60);

async fn query_i64(store: &Store, sql: &str) -> i64 {
    let (value,): (i64,) = match store {
        Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    value
}

async fn status_of(db: &TestDatabase, address: &str) -> String {
    let email = SubscriberEmail::parse(address).expect("address");
    let (_, subscriptions) = db.store.find_subscriber(&email).await.expect("query").expect("subscriber");
    subscriptions[0].status.clone()
}

async fn suppressed(db: &TestDatabase, address: &str) -> Option<String> {
    let email = SubscriberEmail::parse(address).expect("address");
    db.store.suppression_of(&email).await.expect("query").map(|r| r.as_str().to_owned())
}

async fn issue_status(db: &TestDatabase, number: i64) -> String {
    db.store.issue_by_number(db.list_id, number).await.expect("query").expect("issue").status
}

/// `bounce list --json`, parsed.
fn bounce_list(db: &TestDatabase) -> Vec<serde_json::Value> {
    let listed = db.tidings(&["bounce", "list", "--json"]);
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    serde_json::from_str(&listed.stdout).expect("JSON")
}

/// Where the daemon's standard error goes, for failure messages.
const DAEMON_LOG: &str = "daemon.log";

fn spawn_daemon(db: &TestDatabase, env: &[(String, String)]) -> Child {
    let log = std::fs::File::create(db.dir.path().join(DAEMON_LOG)).expect("create the daemon's log");
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.arg("serve").current_dir(db.dir.path()).stdout(Stdio::null()).stderr(log);
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command.spawn().expect("start tidings serve")
}

/// What the daemon wrote to standard error, and whether it is still running, for failure messages.
fn daemon_state(db: &TestDatabase, daemon: &mut Child) -> String {
    let exited = match daemon.try_wait() {
        Ok(Some(status)) => format!("the daemon exited ({status})"),
        Ok(None) => "the daemon is running".to_owned(),
        Err(e) => format!("the daemon's state is unknown: {e}"),
    };
    let log = std::fs::read_to_string(db.dir.path().join(DAEMON_LOG)).unwrap_or_default();
    format!("{exited}; its log:\n{log}")
}

/// Issue 123: the sample with another number.
fn second_issue(db: &TestDatabase) -> String {
    let sample = std::fs::read_to_string(SAMPLE).expect("the sample issue");
    let text = sample.replacen("number = 122", "number = 123", 1).replace("Issue 122", "Issue 123");
    db.write_file("123.md", text.as_bytes()).display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postfix_dsns_for_unknown_users_reach_the_listener_suppress_them_and_the_next_issue_skips_them() {
    let db = TestDatabase::sqlite().await;
    let smtp = SmtpServer::start().await;
    smtp.inject(Fault::new(
        Trigger::rcpt_matching(|to| to.starts_with("dead")),
        Action::reply(550, "5.1.1 No such user here"),
    ));
    smtp.inject(Fault::new(
        Trigger::rcpt_matching(|to| to.starts_with("full")),
        Action::reply(452, "4.2.2 Mailbox full"),
    ));
    let listen = free_port();
    let Some(postfix) = Postfix::start(&[("example.com", smtp.port()), ("bounces.example.com", listen)]) else {
        return;
    };
    let alive = ["alive0@example.com", "alive1@example.com", "alive2@example.com"];
    let dead = ["dead0@example.com", "dead1@example.com"];
    let full = "full0@example.com";
    let everyone: Vec<&str> = alive.iter().chain(&dead).copied().chain([full]).collect();
    // The daemon runs on the real clock; an issue goes to subscriptions made before it started.
    db.import(everyone.iter().map(|a| (a.to_string(), String::new(), None)), Clock::system().now()).await;

    let env: Vec<(String, String)> = [
        ("TIDINGS_DATABASE__URL", db.url.clone()),
        ("TIDINGS_TRANSPORT__KIND", "smtp".to_owned()),
        ("TIDINGS_SMTP__HOST", "127.0.0.1".to_owned()),
        ("TIDINGS_SMTP__PORT", postfix.port.to_string()),
        ("TIDINGS_SMTP__TLS", "none".to_owned()),
        ("TIDINGS_DELIVERY__PER_SECOND", "0".to_owned()),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS.to_owned()),
        ("TIDINGS_HTTP__BIND", "127.0.0.1:0".to_owned()),
        ("TIDINGS_BOUNCES__ADDRESS", BOUNCE.to_owned()),
        ("TIDINGS_BOUNCES__LISTEN", format!("127.0.0.1:{listen}")),
        ("TIDINGS_LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
    assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));
    let mut daemon = spawn_daemon(&db, &env);

    // Postfix takes all six messages, relays four, and sends back three DSNs (two hard, one soft).
    let mut reports = 0;
    for _ in 0..(WAIT.as_millis() / 100) {
        reports = query_i64(&db.store, "SELECT COUNT(*) FROM bounce_reports").await;
        if reports >= 3 || daemon.try_wait().is_ok_and(|s| s.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reports, 3, "DSNs stored; {}; Postfix's log:\n{}", daemon_state(&db, &mut daemon), postfix.log());
    assert_eq!(issue_status(&db, 122).await, "sent", "{}", daemon_state(&db, &mut daemon));
    for address in dead {
        assert_eq!(status_of(&db, address).await, "bounced", "{address}");
        assert_eq!(suppressed(&db, address).await.as_deref(), Some("bounced"), "{address}");
    }
    for address in alive.iter().chain([&full]) {
        assert_eq!(status_of(&db, address).await, "active", "{address}");
        assert_eq!(suppressed(&db, address).await, None, "{address}");
    }
    let rows = bounce_list(&db);
    let mut hard: Vec<&str> =
        rows.iter().filter(|r| r["kind"] == "hard").filter_map(|r| r["subscriber_email"].as_str()).collect();
    hard.sort_unstable();
    assert_eq!(hard, dead, "{rows:#?}");
    for row in &rows {
        assert_eq!(row["form"], "dsn", "{row:#}");
        assert_eq!(row["matched_by"], "return-path", "{row:#}");
        assert_eq!(row["issue_number"], 122, "{row:#}");
    }
    let soft: Vec<&serde_json::Value> = rows.iter().filter(|r| r["kind"] == "soft").collect();
    assert_eq!(soft.len(), 1, "{rows:#?}");
    assert_eq!(soft[0]["subscriber_email"], full);
    assert!(soft[0]["status_code"].as_str().is_some_and(|s| s.starts_with("4.2.2")), "{:#}", soft[0]);
    // The stored report is Postfix's own.
    let id = rows.iter().find(|r| r["kind"] == "hard").expect("a hard bounce")["id"].to_string();
    let shown = db.tidings(&["bounce", "show", &id]);
    assert_eq!(shown.code, Some(0), "{}", shown.stderr);
    assert!(shown.stdout.contains("X-Postfix-Queue-ID"), "{}", shown.stdout);

    // The next issue goes to everyone still active, and never reaches the suppressed.
    let second = second_issue(&db);
    let added = db.tidings_env(&["issue", "add", &second], &borrowed);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let sent = db.tidings_env(&["issue", "send", "123"], &borrowed);
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
    // Every alive reader gets both issues through Postfix.
    smtp.wait_for_messages(2 * alive.len(), WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}; {}; Postfix's log:\n{}", daemon_state(&db, &mut daemon), postfix.log()));
    for _ in 0..(WAIT.as_millis() / 100) {
        if issue_status(&db, 123).await == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(issue_status(&db, 123).await, "sent", "{}", daemon_state(&db, &mut daemon));
    // Postfix accepted all four; the receiving server refuses full0 again, so its DSN comes back for issue 123
    // too, and that delivery becomes `failed`. Wait for it: until then it is `sent`.
    let mut reports = 0;
    for _ in 0..(WAIT.as_millis() / 100) {
        reports = query_i64(&db.store, "SELECT COUNT(*) FROM bounce_reports").await;
        if reports >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(reports, 4, "full0's second DSN; {}; Postfix's log:\n{}", daemon_state(&db, &mut daemon), postfix.log());
    let count_123 = |status: &'static str| {
        format!(
            "SELECT COUNT(*) FROM deliveries d JOIN issues i ON i.id = d.issue_id \
             WHERE i.number = 123 AND d.status = '{status}'"
        )
    };
    assert_eq!(
        (query_i64(&db.store, &count_123("sent")).await, query_i64(&db.store, &count_123("failed")).await),
        (3, 1),
        "issue 123 went to the three alive readers and the soft-bounced one, whose DSN failed it; {}",
        daemon_state(&db, &mut daemon)
    );
    Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().expect("kill");
    daemon.wait().expect("reap the daemon");
    postfix.flush();

    let commands = smtp.commands();
    for address in dead {
        let tried = commands.iter().filter(|c| c.contains(&format!("<{address}>"))).count();
        assert_eq!(tried, 1, "{address} was offered to the receiving server only for issue 122: {commands:#?}");
    }
    for address in alive {
        let got = smtp.messages().iter().filter(|m| m.rcpt_to.iter().any(|to| to == address)).count();
        assert_eq!(got, 2, "{address} received both issues; Postfix's log:\n{}", postfix.log());
    }
}

/// The sample issue, sent by the engine to `reader0..reader{n}@example.com` through the SMTP test server.
async fn sent_issue(db: TestDatabase, subscribers: usize) -> crate::web::WebApp {
    crate::web::WebApp::start(db, subscribers, &[("TIDINGS_BOUNCES__ADDRESS", BOUNCE)]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exim_dsn_through_bounce_ingest_suppresses_and_with_the_database_down_exim_keeps_it_until_it_is_up() {
    let db = TestDatabase::sqlite().await;
    let app = sent_issue(db, 2).await;
    let db = &app.db;
    let dead = crate::web::address(0);
    let original = app.message_to(&dead);
    let tidings = env!("CARGO_BIN_EXE_tidings");
    // A PostgreSQL URL on a port nobody listens on: the database is down.
    let down = format!("postgres://tidings:unused@127.0.0.1:{}/tidings", free_port());
    let environment = |url: &str| {
        vec![
            ("TIDINGS_DATABASE__URL".to_owned(), url.to_owned()),
            ("TIDINGS_BOUNCES__ADDRESS".to_owned(), BOUNCE.to_owned()),
            ("TIDINGS_LINKS__SIGNING_KEYS".to_owned(), KEYS.to_owned()),
            ("TIDINGS_LOG__LEVEL".to_owned(), "warn".to_owned()),
        ]
    };
    let env_down = environment(&down);
    let pairs: Vec<(&str, &str)> = env_down.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let Some(exim) = Exim::new("bounces.example.com", app.smtp.port(), &format!("{tidings} bounce ingest"), &pairs)
    else {
        return;
    };
    // Exim's pipe runs as Debian-exim: it must be able to write the SQLite database.
    let chmod = Command::new("chmod").arg("-R").arg("a+rwX").arg(db.dir.path()).status().expect("chmod");
    assert!(chmod.success());
    let before = query_i64(&db.store, "SELECT COUNT(*) FROM bounce_reports").await;
    app.smtp.inject(Fault::new(
        Trigger::rcpt_matching(|to| to == "reader0@example.com"),
        Action::reply(550, "5.1.1 <reader0@example.com>: Recipient address rejected: User unknown"),
    ));

    // The receiving server refuses reader0; Exim writes a DSN to the return path; the pipe cannot reach the
    // database and exits 75.
    exim.submit(&original.mail_from, &dead, &original.data);
    let log = exim.log();
    assert!(log.contains("R=remote T=remote_smtp") && log.contains("550 5.1.1"), "refused: {log}");
    assert!(log.contains("T=tidings_pipe defer"), "the pipe's 75 made Exim defer the DSN: {log}");
    assert_eq!(exim.queued(), 1, "Exim keeps the DSN: {log}");
    assert_eq!(query_i64(&db.store, "SELECT COUNT(*) FROM bounce_reports").await, before, "nothing stored");
    assert_eq!(app.status_of(&dead).await, "active");

    // The database is back: a queue run delivers the kept DSN, once.
    let env_up = environment(&db.url);
    let pairs: Vec<(&str, &str)> = env_up.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    exim.set_pipe_environment(&pairs);
    exim.run_queue();
    assert_eq!(exim.queued(), 0, "Exim delivered the DSN: {}", exim.log());
    assert_eq!(app.status_of(&dead).await, "bounced");
    assert_eq!(suppressed(db, &dead).await.as_deref(), Some("bounced"));
    assert_eq!(app.status_of(&crate::web::address(1)).await, "active");
    let rows = bounce_list(db);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["kind"], "hard", "{:#}", rows[0]);
    assert_eq!(rows[0]["form"], "dsn", "{:#}", rows[0]);
    assert_eq!(rows[0]["source"], "ingest", "{:#}", rows[0]);
    assert_eq!(rows[0]["matched_by"], "return-path", "{:#}", rows[0]);
    assert_eq!(rows[0]["subscriber_email"], dead.as_str(), "{:#}", rows[0]);
    let shown = db.tidings(&["bounce", "show", &rows[0]["id"].to_string()]);
    assert!(shown.stdout.contains("Exim"), "the stored report is Exim's: {}", shown.stdout);
}
