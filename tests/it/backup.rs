//! `tidings backup`: a copy of the SQLite database taken while a real daemon sends a 20,000-recipient issue,
//! restored into a fresh database, lets a daemon started on it complete the send. Every subscriber has the
//! issue (counted at the SMTP server over both runs) and every duplicate is a delivery `issue status` lists
//! as possibly received twice.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tidings::store::Store;

use crate::daemon::{SAMPLE, daemon_env, signal, spawn_daemon, subscribe};
use crate::helpers::TestDatabase;
use crate::helpers::smtp_server::SmtpServer;

const SUBSCRIBERS: usize = 20_000;

/// Waits (polling the SMTP server's count) until at least `n` messages arrived.
async fn wait_for_count(smtp: &SmtpServer, n: usize) {
    for _ in 0..2_400 {
        if smtp.message_count() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("only {} of {n} messages arrived", smtp.message_count());
}

async fn issue_status(store: &Store, list_id: i64) -> String {
    store.issue_by_number(list_id, 122).await.expect("query").expect("issue").status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_mid_send_and_restored_completes_the_send_and_lists_every_possible_duplicate() {
    let db = TestDatabase::sqlite().await;
    let smtp = SmtpServer::start().await;
    subscribe(&db, SUBSCRIBERS).await;
    let env = daemon_env(&db, &smtp, &[]);
    let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));
    assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));

    // The daemon sends; the backup is taken in the middle, and the daemon goes on sending after it.
    let mut daemon = spawn_daemon(&db, &env);
    wait_for_count(&smtp, 3_000).await;
    let backup = db.dir.path().join("backup.db");
    let run = db.tidings_env(&["backup", "--out", backup.to_str().expect("path")], &borrowed);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("to restore it"), "{}", run.stdout);
    let at_backup = smtp.message_count();
    wait_for_count(&smtp, at_backup + 2_000).await;
    signal(&daemon, "-KILL");
    daemon.wait().expect("reap the daemon");
    let before_restore = smtp.message_count();
    assert!(before_restore < SUBSCRIBERS, "the send was still in progress when the daemon was lost");

    // A second backup never overwrites the first.
    let again = db.tidings_env(&["backup", "--out", backup.to_str().expect("path")], &borrowed);
    assert_eq!(again.code, Some(1));
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    // Restore into a fresh database (copy the file) and let a daemon finish the send there.
    let restored_dir = tempfile::tempdir().expect("temporary folder");
    let restored_file = restored_dir.path().join("tidings.db");
    std::fs::copy(&backup, &restored_file).expect("copy the backup");
    let restored_url = format!("sqlite://{}", restored_file.display());
    let mut restored_env = env.clone();
    restored_env.retain(|(key, _)| key != "TIDINGS_DATABASE__URL");
    restored_env.push(("TIDINGS_DATABASE__URL".to_owned(), restored_url.clone()));
    let restored = Store::connect(&crate::helpers::options(&restored_url)).await.expect("open the restored copy");
    let mut daemon = spawn_daemon(&db, &restored_env);
    let mut finished = false;
    for _ in 0..1_200 {
        if issue_status(&restored, db.list_id).await == "sent" {
            finished = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    signal(&daemon, "-TERM");
    daemon.wait().expect("reap the daemon");
    assert!(finished, "the restored database did not complete the send");

    // Every subscriber has the issue; every duplicate is one `issue status` lists.
    let mut received: HashMap<String, usize> = HashMap::new();
    for message in smtp.messages() {
        for rcpt in message.rcpt_to {
            *received.entry(rcpt).or_insert(0) += 1;
        }
    }
    assert_eq!(received.len(), SUBSCRIBERS, "every subscriber received the issue");
    let restored_borrowed: Vec<(&str, &str)> = restored_env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let status = crate::helpers::tidings_with_env(
        &["issue", "status", "122", "--json"],
        &restored_borrowed,
        restored_dir.path(),
    );
    assert_eq!(status.code, Some(0), "{}", status.stderr);
    let status: serde_json::Value = serde_json::from_str(&status.stdout).expect("JSON");
    let listed: HashSet<&str> = status["ambiguous"]
        .as_array()
        .expect("the ambiguous list")
        .iter()
        .map(|entry| entry["email"].as_str().expect("an address"))
        .collect();
    let duplicates: Vec<&String> = received.iter().filter(|(_, count)| **count > 1).map(|(to, _)| to).collect();
    eprintln!(
        "{before_restore} messages before the restore ({at_backup} at the backup), {} duplicates, {} listed",
        duplicates.len(),
        listed.len()
    );
    assert!(!duplicates.is_empty(), "messages sent after the backup were sent again after the restore");
    for duplicate in &duplicates {
        assert!(listed.contains(duplicate.as_str()), "{duplicate} got the issue twice and is not listed");
    }
    restored.close().await;
}

#[tokio::test]
async fn tidings_backup_on_postgresql_points_to_pg_dump_and_writes_nothing() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let out = db.dir.path().join("backup.db");
    let run = db.tidings(&["backup", "--out", out.to_str().expect("path")]);
    assert_eq!(run.code, Some(1), "{}", run.stdout);
    assert!(run.stderr.contains("pg_dump -Fc"), "{}", run.stderr);
    assert!(!out.exists(), "no file is left behind");
}
