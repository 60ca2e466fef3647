//! `tidings serve` as a real child process: killed with SIGKILL at random moments and restarted, it still gets
//! the issue to every subscriber, and every duplicate is a delivery recorded as ambiguous; stopped with SIGTERM
//! during a slow DATA, it finishes that message, records it as sent and exits 0.

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tidings::store::Store;

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger, Verb};

pub(crate) const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
pub(crate) const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");

pub(crate) fn address(i: usize) -> String {
    format!("reader{i}@example.com")
}

pub(crate) async fn subscribe(db: &TestDatabase, count: usize) {
    // The daemon runs on the real clock, and an issue goes to subscriptions made before it started.
    let now = tidings::clock::Clock::system().now();
    db.import((0..count).map(|i| (address(i), String::new(), None)), now).await;
}

/// The environment of a daemon sending to `smtp`.
pub(crate) fn daemon_env(db: &TestDatabase, smtp: &SmtpServer, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("TIDINGS_DATABASE__URL", db.url.as_str()),
        ("TIDINGS_TRANSPORT__KIND", "smtp"),
        ("TIDINGS_SMTP__HOST", "127.0.0.1"),
        ("TIDINGS_SMTP__TLS", "none"),
        ("TIDINGS_SMTP__POOL_SIZE", "4"),
        ("TIDINGS_DELIVERY__PER_SECOND", "0"),
        ("TIDINGS_DELIVERY__BATCH_SIZE", "100"),
        ("TIDINGS_DELIVERY__DEAD_AFTER", "1s"),
        ("TIDINGS_DELIVERY__RETRY_INITIAL", "1s"),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("TIDINGS_HTTP__BIND", "127.0.0.1:0"),
        ("TIDINGS_LOG__LEVEL", "warn"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push(("TIDINGS_SMTP__PORT".to_owned(), smtp.port().to_string()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    env
}

pub(crate) fn spawn_daemon(db: &TestDatabase, env: &[(String, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.arg("serve").current_dir(db.dir.path()).stdout(Stdio::null()).stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    command.spawn().expect("start tidings serve")
}

pub(crate) fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
}

async fn issue_status(store: &Store, list_id: i64) -> String {
    store.issue_by_number(list_id, 122).await.expect("query").expect("issue").status
}

both_backends! {
    async fn a_daemon_killed_five_times_still_sends_to_everyone_and_every_duplicate_is_ambiguous(db) {
        let smtp = SmtpServer::start().await;
        subscribe(&db, 5_000).await;
        let env = daemon_env(&db, &smtp, &[]);
        let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
        assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));

        for kill in 0..5 {
            let mut daemon = spawn_daemon(&db, &env);
            // Let it send for a while (a random moment: 0.3 to 1.5 s), then kill it without warning.
            let moment = 300 + rand::random::<u64>() % 1_200;
            tokio::time::sleep(Duration::from_millis(moment)).await;
            signal(&daemon, "-KILL");
            daemon.wait().expect("reap the daemon");
            eprintln!("kill {kill}: {} messages accepted so far", smtp.message_count());
        }
        let mut daemon = spawn_daemon(&db, &env);
        let mut finished = false;
        for _ in 0..600 {
            if issue_status(&db.store, db.list_id).await == "sent" {
                finished = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        signal(&daemon, "-TERM");
        let exit = daemon.wait().expect("reap the daemon");
        assert!(finished, "the issue was not finished after the last restart");
        assert!(exit.success(), "SIGTERM ends the daemon with status 0, not {exit:?}");

        let mut received: HashMap<String, usize> = HashMap::new();
        for message in smtp.messages() {
            for rcpt in message.rcpt_to {
                *received.entry(rcpt).or_insert(0) += 1;
            }
        }
        assert_eq!(received.len(), 5_000, "every subscriber received the issue");
        let ambiguous: Vec<(String,)> = {
            let sql = "SELECT s.email FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                       WHERE d.ambiguous_at IS NOT NULL";
            match &db.store {
                Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
                Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            }
            .expect("query")
        };
        let ambiguous: std::collections::HashSet<String> = ambiguous.into_iter().map(|(email,)| email).collect();
        let duplicates: Vec<&String> = received.iter().filter(|(_, count)| **count > 1).map(|(to, _)| to).collect();
        eprintln!("{} duplicates, {} deliveries recorded as ambiguous", duplicates.len(), ambiguous.len());
        for duplicate in duplicates {
            assert!(ambiguous.contains(duplicate), "{duplicate} got the issue twice without being recorded as ambiguous");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_slow_data_finishes_that_message_records_it_and_exits_0() {
    let db = TestDatabase::sqlite().await;
    let smtp = SmtpServer::start().await;
    subscribe(&db, 3).await;
    smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::StallUntilReleased).times(1));
    let env = daemon_env(&db, &smtp, &[("TIDINGS_SMTP__POOL_SIZE", "1")]);
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
    assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));

    let mut daemon = spawn_daemon(&db, &env);
    smtp.wait_for_stalled(1, Duration::from_secs(30)).await.expect("the first message stalls at the final dot");
    signal(&daemon, "-TERM");
    // The daemon must wait for the message on the wire; releasing the relay lets it finish.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(daemon.try_wait().expect("poll the daemon").is_none(), "the daemon left a message half sent");
    smtp.release_stalls();
    let exit = daemon.wait().expect("reap the daemon");
    assert!(exit.success(), "exit status {exit:?}");

    assert_eq!(smtp.message_count(), 1, "nothing new was claimed after SIGTERM");
    let statuses: Vec<(String,)> = match &db.store {
        Store::Sqlite(pool) => sqlx::query_as("SELECT status FROM deliveries ORDER BY id").fetch_all(pool).await,
        Store::Postgres(pool) => sqlx::query_as("SELECT status FROM deliveries ORDER BY id").fetch_all(pool).await,
    }
    .expect("query");
    let statuses: Vec<&str> = statuses.iter().map(|(s,)| s.as_str()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "sent").count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == "sent" || *s == "queued"), "the others are back in the queue: {statuses:?}");
}
