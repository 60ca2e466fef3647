//! Sending, found from outside: a confused relay (503) costs a reconnect, never a paused issue; a name made to
//! look like an encoded word reaches the reader as its literal text; a cancelled issue says cancelled; and the
//! per-second limit is smooth, shared through the database, and never lets a second hold more than the limit.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tidings::store::{RateLimits, Store};
use tidings::worker::{DeliveryContext, run_step};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger, Verb};
use crate::helpers::{TestDatabase, sample_issue_engine};

/// A database with the given subscribers and the sample issue, an SMTP server, and an engine.
struct Sending {
    db: TestDatabase,
    smtp: SmtpServer,
    engine: DeliveryContext,
    issue_id: i64,
    shutdown: CancellationToken,
}

impl Sending {
    async fn new(db: TestDatabase, people: Vec<(String, String)>) -> Self {
        Self::with_rate(db, people, "0").await
    }

    async fn with_rate(db: TestDatabase, people: Vec<(String, String)>, per_second: &str) -> Self {
        let smtp = SmtpServer::start().await;
        db.import(people.into_iter().map(|(email, name)| (email, name, None)), db.clock.now()).await;
        let (_, engine, issue_id) =
            sample_issue_engine(&db, smtp.port(), &[("TIDINGS_DELIVERY__PER_SECOND", per_second)]).await;
        Sending { db, smtp, engine, issue_id, shutdown: CancellationToken::new() }
    }

    async fn start(&self) {
        assert!(self.db.store.start_issue(self.issue_id, self.db.clock.now()).await.expect("start"));
    }

    /// Steps until a step finds nothing due now.
    async fn run_until_idle(&self) {
        for _ in 0..1_000 {
            let report = run_step(&self.engine, self.db.clock.now(), &self.shutdown).await.expect("step");
            if report.idle_until.is_some_and(|until| until > self.db.clock.now()) && report.settled == 0 {
                return;
            }
        }
        panic!("the engine did not become idle");
    }

    async fn issue_status(&self) -> String {
        self.db.store.issue_by_id(self.issue_id).await.expect("query").expect("issue").status
    }

    /// Accepted messages per envelope recipient.
    fn received(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.smtp.messages() {
            for rcpt in message.rcpt_to {
                *counts.entry(rcpt).or_insert(0) += 1;
            }
        }
        counts
    }
}

fn readers(count: usize) -> Vec<(String, String)> {
    (0..count).map(|i| (format!("reader{i}@example.com"), format!("Reader {i}"))).collect()
}

both_backends! {
    async fn a_bad_sequence_reply_drops_the_connection_and_retries_without_pausing_the_issue(db) {
        let run = Sending::new(db, readers(6)).await;
        for verb in [Verb::Mail, Verb::Rcpt, Verb::Data] {
            run.smtp.inject(Fault::new(Trigger::Command(verb), Action::reply(503, "5.5.1 Bad sequence of commands")).times(1));
        }
        run.start().await;
        run.run_until_idle().await;
        assert_eq!(run.issue_status().await, "sending", "a confused connection never pauses the issue");
        // The deliveries that met a 503 wait for their retry; the rest went out on new connections.
        run.db.clock.advance(SignedDuration::from_mins(5));
        run.run_until_idle().await;
        assert_eq!(run.issue_status().await, "sent");
        let received = run.received();
        assert_eq!(received.len(), 6);
        assert!(received.values().all(|&count| count == 1), "{received:?}");
        assert!(run.smtp.connection_count() >= 3, "each 503 costs its connection");
    }

    async fn a_name_that_looks_like_an_encoded_word_arrives_as_its_literal_text(db) {
        let evil = "=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=";
        let run = Sending::new(db, vec![("eve@example.com".to_owned(), evil.to_owned())]).await;
        run.start().await;
        run.run_until_idle().await;
        let messages = run.smtp.messages();
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].rcpt_to, vec!["eve@example.com".to_owned()], "nobody else got it");
        let parsed = messages[0].parsed().expect("MIME");
        let to = parsed.to().and_then(|to| to.first()).expect("a To header");
        assert_eq!((to.name(), to.address()), (Some(evil), Some("eve@example.com")));
        assert!(parsed.bcc().is_none());
    }

    async fn a_cancelled_issue_shows_its_unsent_deliveries_as_cancelled_not_queued(db) {
        let run = Sending::new(db, readers(5)).await;
        run.start().await;
        // The outbox is created, nothing is sent yet: the relay refuses every connection.
        run.smtp.set_refusing(true);
        run.run_until_idle().await;
        assert_eq!(run.smtp.message_count(), 0);
        let cancelled = run.db.tidings(&["issue", "cancel", "122"]);
        assert_eq!(cancelled.code, Some(0), "{}", cancelled.stderr);

        let status = run.db.tidings(&["issue", "status", "122"]);
        let line = status.stdout.lines().find(|line| line.trim_start().starts_with("deliveries:")).expect("a deliveries line");
        assert!(line.contains("sent 0 of 5, cancelled (never sent) 5, failed 0"), "{}", status.stdout);
        assert!(!line.contains("queued") && !line.contains("left") && !line.contains("/min"), "{}", status.stdout);
        let json = run.db.tidings(&["issue", "status", "122", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
        assert_eq!((value["deliveries"]["cancelled"].as_i64(), value["deliveries"]["queued"].as_i64()), (Some(5), Some(0)));
        assert!(value["eta_seconds"].is_null());

        let stats = run.db.tidings(&["stats", "122"]);
        assert_eq!(stats.code, Some(0), "{}", stats.stderr);
        assert!(stats.stdout.contains("cancelled, never sent"), "{}", stats.stdout);
        assert!(!stats.stdout.contains("not settled yet"), "{}", stats.stdout);
        let stats = run.db.tidings(&["stats", "122", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&stats.stdout).expect("json");
        assert_eq!((value["cancelled"].as_i64(), value["pending"].as_i64()), (Some(5), Some(0)));
    }

    async fn the_engine_sends_a_second_s_worth_then_one_message_per_interval_never_ten_across_a_boundary(db) {
        let run = Sending::with_rate(db, readers(20), "5").await;
        run.start().await;
        let start = run.db.clock.now();
        // (milliseconds after the start, messages received by then)
        let mut seen = Vec::new();
        for at in [900, 901, 1_000, 1_100, 1_899, 1_900, 1_950, 2_100, 2_300, 3_100] {
            let instant = start.checked_add(SignedDuration::from_millis(at)).expect("time");
            run.db.clock.advance(instant.duration_since(run.db.clock.now()));
            run_step(&run.engine, run.db.clock.now(), &run.shutdown).await.expect("step");
            seen.push((at, run.smtp.message_count()));
        }
        // A fixed window sent 5 more at 1,000 ms; the schedule waits until 1,900 ms, then one every 200 ms.
        assert_eq!(
            seen,
            vec![(900, 5), (901, 5), (1_000, 5), (1_100, 5), (1_899, 5), (1_900, 6), (1_950, 6), (2_100, 7), (2_300, 8), (3_100, 12)]
        );
    }

    async fn no_sliding_second_holds_more_reservations_than_per_second_across_daemons(db) {
        let limits = RateLimits { per_second: 5, per_hour: 0, per_day: 0 };
        // Two daemons: two pools on one database.
        let other = Store::connect(&store_options(&db.url)).await.expect("connect");
        let start: Timestamp = "2026-12-07T08:00:00.900Z".parse().expect("time");
        let mut granted: Vec<(i64, u32)> = Vec::new();
        // Every 50 ms for three seconds, alternating daemons, each asking for a whole batch.
        for step in 0..60 {
            let at = start.checked_add(SignedDuration::from_millis(step * 50)).expect("time");
            let store = if step % 2 == 0 { &db.store } else { &other };
            let reservation = store.reserve_sends("relay.example:25", limits, 200, at).await.expect("reserve");
            if reservation.granted > 0 {
                granted.push((step * 50, reservation.granted));
            } else {
                let retry = reservation.retry_at.expect("when to come back");
                assert!(retry > at, "a refusal says when the next send may go");
            }
        }
        // The fixed window let 5 through at 900 ms and 5 more at 1,000 ms.
        assert_eq!(granted[0], (0, 5));
        assert!(!granted.iter().any(|(at, _)| (1..1_000).contains(at)), "{granted:?}");
        for (from, _) in &granted {
            let in_second: u32 = granted.iter().filter(|(at, _)| (*from..from + 1_000).contains(at)).map(|(_, n)| n).sum();
            assert!(in_second <= 5, "{in_second} reservations in the second from {from} ms: {granted:?}");
        }
        // Smooth but not slow: after the first second, one send every 200 ms.
        let total: u32 = granted.iter().map(|(_, n)| n).sum();
        assert_eq!(total, 5 + 10, "{granted:?}");
    }
}

fn store_options(url: &str) -> tidings::store::StoreOptions {
    tidings::store::StoreOptions {
        url: url.to_owned(),
        max_connections: 2,
        busy_timeout: std::time::Duration::from_secs(5),
    }
}
