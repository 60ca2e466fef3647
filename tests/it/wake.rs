//! A daemon that sleeps: with `delivery.idle_poll` set to an hour, an idle daemon still sends as soon as
//! `issue send` runs, because the command wakes it (LISTEN/NOTIFY on PostgreSQL, the inotify-watched wake file
//! beside a SQLite database). Without the wake-up it would sleep for the hour and the test would time out.

use std::time::Duration;

use tidings::store::Store;

use crate::both_backends;
use crate::daemon::{SAMPLE, daemon_env, signal, spawn_daemon, subscribe};
use crate::helpers::smtp_server::SmtpServer;

async fn daemons_running(store: &Store) -> i64 {
    let sql = "SELECT COUNT(*) FROM daemons";
    let (count,): (i64,) = match store {
        Store::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .expect("count daemons");
    count
}

both_backends! {
    async fn an_idle_daemon_with_an_hour_long_poll_sends_as_soon_as_issue_send_wakes_it(db) {
        let smtp = SmtpServer::start().await;
        subscribe(&db, 3).await;
        let env = daemon_env(&db, &smtp, &[("TIDINGS_DELIVERY__IDLE_POLL", "1h")]);
        let borrowed: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &borrowed).code, Some(0));

        let mut daemon = spawn_daemon(&db, &env);
        // Its first step registers it; with nothing due it then sleeps for up to an hour.
        for _ in 0..400 {
            if daemons_running(&db.store).await > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(daemons_running(&db.store).await, 1, "the daemon started");
        assert_eq!(smtp.message_count(), 0);

        assert_eq!(db.tidings_env(&["issue", "send", "122"], &borrowed).code, Some(0));
        let arrived = smtp.wait_for_messages(3, Duration::from_secs(60)).await;
        signal(&daemon, "-TERM");
        daemon.wait().expect("reap the daemon");
        assert_eq!(arrived.expect("the woken daemon sent the issue").len(), 3);
    }
}

both_backends! {
    async fn the_next_timer_is_a_scheduled_issue_s_time_and_nothing_when_nothing_is_scheduled(db) {
        assert_eq!(db.tidings(&["issue", "add", SAMPLE]).code, Some(0));
        let issue = db.store.issue_by_number(db.list_id, 122).await.expect("query").expect("the issue");
        let now = db.clock.now();
        let dead_after = jiff::SignedDuration::from_secs(30);
        assert_eq!(db.store.next_timer(now, dead_after).await.expect("timer"), None, "a draft wakes nobody");

        let send_at = now + jiff::SignedDuration::from_secs(90);
        assert!(db.store.schedule_issue(issue.id, send_at, None, now).await.expect("schedule"));
        assert_eq!(db.store.next_timer(now, dead_after).await.expect("timer"), Some(send_at));
        let later = send_at + jiff::SignedDuration::from_secs(1);
        assert_eq!(db.store.next_timer(later, dead_after).await.expect("timer"), None, "a passed time is the step's");
    }
}
