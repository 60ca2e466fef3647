//! `tidings serve` as a real child process: killed with SIGKILL at random moments and restarted, it still gets
//! the issue to every subscriber, each kill costs at most one ambiguous delivery per connection, and every
//! duplicate is listed as ambiguous; two daemons on one PostgreSQL, one killed, and the survivor finishes;
//! stopped with SIGTERM during a slow DATA, it finishes that message, records it as sent and exits 0.

use std::collections::{HashMap, HashSet};
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

/// Waits until the SMTP server has accepted `target` messages in all; panics after a minute.
async fn wait_for_messages(smtp: &SmtpServer, target: usize) {
    for _ in 0..30_000 {
        if smtp.message_count() >= target {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("the daemon did not reach {target} messages in a minute");
}

/// Waits until issue 122 is `sent`; panics after a minute.
async fn wait_until_sent(db: &TestDatabase) {
    for _ in 0..600 {
        if issue_status(&db.store, db.list_id).await == "sent" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the issue was not finished within a minute");
}

/// How many messages each address received, as counted by the SMTP server.
fn received(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut received: HashMap<String, usize> = HashMap::new();
    for message in smtp.messages() {
        for rcpt in message.rcpt_to {
            *received.entry(rcpt).or_insert(0) += 1;
        }
    }
    received
}

/// The addresses `issue status 122 --json` lists as possibly received twice.
fn listed_ambiguous(db: &TestDatabase, env: &[(String, String)]) -> HashSet<String> {
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let status = db.tidings_env(&["issue", "status", "122", "--json"], &borrowed);
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("issue status prints JSON");
    let listed = value["ambiguous"].as_array().expect("an ambiguous list");
    listed.iter().map(|a| a["email"].as_str().expect("an address").to_owned()).collect()
}

const CONNECTIONS: usize = 16;

both_backends! {
    async fn a_daemon_killed_ten_times_mid_send_costs_at_most_one_ambiguous_delivery_per_connection_per_kill(db) {
        let smtp = SmtpServer::start().await;
        subscribe(&db, 5_000).await;
        let connections = CONNECTIONS.to_string();
        let env = daemon_env(&db, &smtp, &[("TIDINGS_SMTP__POOL_SIZE", connections.as_str()), ("TIDINGS_DELIVERY__BATCH_SIZE", "200")]);
        let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
        assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));

        let kills = 10;
        for kill in 0..kills {
            let mut daemon = spawn_daemon(&db, &env);
            // A random moment while it sends: once the relay has taken 20 to 300 more messages, plus up to 20 ms.
            let target = smtp.message_count() + 20 + (rand::random::<u64>() % 280) as usize;
            wait_for_messages(&smtp, target).await;
            tokio::time::sleep(Duration::from_millis(rand::random::<u64>() % 20)).await;
            signal(&daemon, "-KILL");
            daemon.wait().expect("reap the daemon");
            eprintln!("kill {kill}: {} messages accepted so far", smtp.message_count());
        }
        let mut daemon = spawn_daemon(&db, &env);
        wait_until_sent(&db).await;
        signal(&daemon, "-TERM");
        let exit = daemon.wait().expect("reap the daemon");
        assert!(exit.success(), "SIGTERM ends the daemon with status 0, not {exit:?}");

        let received = received(&smtp);
        assert_eq!(received.len(), 5_000, "every subscriber received the issue");
        let ambiguous = listed_ambiguous(&db, &env);
        let duplicates: Vec<&String> = received.iter().filter(|(_, count)| **count > 1).map(|(to, _)| to).collect();
        eprintln!("{} duplicates, {} deliveries listed as ambiguous after {kills} kills", duplicates.len(), ambiguous.len());
        for duplicate in &duplicates {
            assert!(ambiguous.contains(*duplicate), "{duplicate} got the issue twice without being listed as ambiguous");
        }
        // Each kill leaves at most one delivery per connection with an intent and no recorded outcome: the
        // outcome of a connection's previous message is written with (or before) the intent of its next one.
        assert!(duplicates.len() <= CONNECTIONS * kills, "{} duplicates", duplicates.len());
        assert!(ambiguous.len() <= CONNECTIONS * kills, "{} listed as ambiguous", ambiguous.len());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_one_postgresql_the_survivor_finishes_and_the_dead_one_costs_at_most_its_connections() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let smtp = SmtpServer::start().await;
    subscribe(&db, 5_000).await;
    // Heartbeats come every 5 s: a live daemon is never taken for dead.
    let env = daemon_env(&db, &smtp, &[("TIDINGS_SMTP__POOL_SIZE", "8"), ("TIDINGS_DELIVERY__DEAD_AFTER", "8s")]);
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
    assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));

    let mut doomed = spawn_daemon(&db, &env);
    let mut survivor = spawn_daemon(&db, &env);
    wait_for_messages(&smtp, 1_000 + (rand::random::<u64>() % 1_000) as usize).await;
    assert!(doomed.try_wait().expect("poll the daemon").is_none(), "the daemon to kill is still running");
    signal(&doomed, "-KILL");
    doomed.wait().expect("reap the killed daemon");
    eprintln!("killed one daemon at {} messages", smtp.message_count());

    wait_until_sent(&db).await;
    signal(&survivor, "-TERM");
    let exit = survivor.wait().expect("reap the survivor");
    assert!(exit.success(), "SIGTERM ends the survivor with status 0, not {exit:?}");

    let received = received(&smtp);
    assert_eq!(received.len(), 5_000, "every subscriber received the issue");
    let ambiguous = listed_ambiguous(&db, &env);
    let duplicates: Vec<&String> = received.iter().filter(|(_, count)| **count > 1).map(|(to, _)| to).collect();
    eprintln!("{} duplicates, {} listed as ambiguous", duplicates.len(), ambiguous.len());
    for duplicate in &duplicates {
        assert!(ambiguous.contains(*duplicate), "{duplicate} got the issue twice without being listed as ambiguous");
    }
    assert!(duplicates.len() <= 8, "{} duplicates for a daemon of 8 connections", duplicates.len());
    assert!(ambiguous.len() <= 8, "{} listed as ambiguous for a daemon of 8 connections", ambiguous.len());
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
