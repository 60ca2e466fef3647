//! The delivery engine against the in-process SMTP server, on both backends, driven step by step with a manual
//! clock: every subscriber gets exactly one message; faults retry, bounce, pause, open the circuit or make a
//! delivery ambiguous as they should; an unsubscribe mid-send stops the message.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use jiff::SignedDuration;
use tidings::clock::Clock;
use tidings::domain::{SubscriberEmail, SuppressionReason};
use tidings::store::Store;
use tidings::worker::{DeliveryContext, StepReport, run_step};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::smtp_server::{Action, Fault, SmtpServer, Trigger, Verb};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");

/// A database with subscribers and the sample issue, an SMTP server, and an engine pointed at both.
struct Delivery {
    db: TestDatabase,
    smtp: SmtpServer,
    engine: DeliveryContext,
    issue_id: i64,
    shutdown: CancellationToken,
}

fn address(i: usize) -> String {
    format!("reader{i}@example.{}", ["com", "org", "net"][i % 3])
}

impl Delivery {
    async fn new(db: TestDatabase, subscribers: usize, extra: &[(&str, &str)]) -> Self {
        let smtp = SmtpServer::start().await;
        let port = smtp.port().to_string();
        let mut env = crate::helpers::smtp_test_env(&db, &port);
        env.extend([
            ("TIDINGS_SMTP__POOL_SIZE", "4"),
            ("TIDINGS_DELIVERY__BATCH_SIZE", "250"),
            ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
            ("TIDINGS_HTTP__BASE_URL", "https://news.example.com"),
        ]);
        env.extend_from_slice(extra);
        let settings = crate::helpers::settings_of(&env);

        db.import((0..subscribers).map(|i| (address(i), format!("Reader {i}"), None)), db.clock.now()).await;
        let added = db.tidings_env(&["issue", "add", SAMPLE], &env);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        let issue_id = db.store.issue_by_number(db.list_id, 122).await.expect("query").expect("issue").id;
        let links = settings.link_builder().expect("links");
        let engine = tidings::startup::delivery_context(&settings, db.store.clone(), db.clock.clone(), links)
            .expect("delivery context");
        Delivery { db, smtp, engine, issue_id, shutdown: CancellationToken::new() }
    }

    fn clock(&self) -> &Clock {
        &self.db.clock
    }

    async fn start(&self) {
        assert!(self.db.store.start_issue(self.issue_id, self.clock().now()).await.expect("start"));
    }

    async fn step(&self) -> StepReport {
        run_step(&self.engine, self.clock().now(), &self.shutdown).await.expect("step")
    }

    /// Steps until a step finds nothing due now; returns how many deliveries were settled.
    async fn run_until_idle(&self) -> usize {
        let mut settled = 0;
        for _ in 0..1_000 {
            let report = self.step().await;
            settled += report.settled;
            if report.idle_until.is_some_and(|until| until > self.clock().now()) && report.settled == 0 {
                return settled;
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

    fn rcpt_attempts(&self, to: &str) -> usize {
        self.smtp.commands().iter().filter(|c| c.to_ascii_uppercase().starts_with("RCPT TO") && c.contains(to)).count()
    }

    async fn query_i64(&self, sql: &str) -> i64 {
        let (value,): (i64,) = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
        }
        .expect("query");
        value
    }
}

fn header<'a>(message: &'a mail_parser::Message<'a>, name: &str) -> String {
    message.header_raw(name).map(|v| v.trim().to_owned()).unwrap_or_else(|| panic!("no {name} header"))
}

both_backends! {
    async fn a_thousand_subscribers_each_receive_exactly_one_personalised_message(db) {
        let run = Delivery::new(db, 1_000, &[]).await;
        run.start().await;
        assert_eq!(run.run_until_idle().await, 1_000);

        let received = run.received();
        assert_eq!(received.len(), 1_000);
        assert!(received.values().all(|&count| count == 1));
        assert!((0..1_000).all(|i| received.contains_key(&address(i))));
        assert_eq!(run.issue_status().await, "sent");

        let mut unsubscribe_links = HashSet::new();
        let mut message_ids = HashSet::new();
        for message in run.smtp.messages() {
            let parsed = message.parsed().expect("a MIME message");
            assert_eq!(parsed.subject(), Some("So, what's up in China? Issue 122"));
            assert!(parsed.date().is_some());
            assert!(message_ids.insert(header(&parsed, "Message-ID")));
            assert_eq!(header(&parsed, "List-Id"), "What's up in China <weekly.example.com>");
            assert_eq!(header(&parsed, "List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");
            assert_eq!(header(&parsed, "Precedence"), "bulk");
            assert_eq!(header(&parsed, "Feedback-ID"), "122:weekly:tidings:example.com");
            let unsubscribe = header(&parsed, "List-Unsubscribe");
            assert!(unsubscribe.starts_with("<https://news.example.com/u/"), "{unsubscribe}");
            assert!(unsubscribe_links.insert(unsubscribe.clone()));
            let text = parsed.body_text(0).expect("a text part");
            let html = parsed.body_html(0).expect("an HTML part");
            assert!(text.contains(unsubscribe.trim_matches(['<', '>'])));
            assert!(html.contains(unsubscribe.trim_matches(['<', '>'])));
            assert!(text.contains("No more tax-free?") && html.contains("No more tax-free?"));
            // multipart/alternative, the text part first and the HTML part last.
            assert_eq!(parsed.text_body, vec![1]);
            assert_eq!(parsed.html_body, vec![2]);
        }
        assert_eq!(unsubscribe_links.len(), 1_000);
    }

    async fn a_451_on_rcpt_for_a_tenth_of_recipients_is_retried_after_the_backoff_and_all_arrive(db) {
        let run = Delivery::new(db, 200, &[]).await;
        let unlucky = |to: &str| to.trim_start_matches("reader").split('@').next().and_then(|n| n.parse::<usize>().ok()).is_some_and(|n| n % 10 == 0);
        run.smtp.inject(Fault::new(Trigger::rcpt_matching(unlucky), Action::reply(451, "4.3.0 try again later")).times(20));
        run.start().await;
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 180);
        let waiting = run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'retry_wait'").await;
        assert_eq!(waiting, 20);
        // The backoff is retry_initial (1 minute) with ±20 % jitter.
        let now = run.clock().now().as_millisecond();
        let earliest = run.query_i64("SELECT MIN(not_before) FROM deliveries WHERE status = 'retry_wait'").await;
        let latest = run.query_i64("SELECT MAX(not_before) FROM deliveries WHERE status = 'retry_wait'").await;
        assert!(earliest >= now + 48_000 && latest <= now + 72_000, "{earliest} {latest} from {now}");

        run.clock().advance(SignedDuration::from_secs(40));
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 180, "nothing is retried before its backoff");
        run.clock().advance(SignedDuration::from_secs(40));
        run.run_until_idle().await;
        let received = run.received();
        assert_eq!(received.len(), 200);
        assert!(received.values().all(|&count| count == 1));
        assert_eq!(run.issue_status().await, "sent");
        assert_eq!(run.query_i64("SELECT MAX(attempts) FROM deliveries").await, 2);
    }

    async fn a_550_5_1_1_bounces_suppresses_the_address_and_is_tried_once(db) {
        let run = Delivery::new(db, 20, &[]).await;
        let gone = address(7);
        let target = gone.clone();
        run.smtp.inject(Fault::new(Trigger::rcpt_matching(move |to| to == target), Action::reply(550, "5.1.1 <reader7@example.org>: no such user")));
        run.start().await;
        run.run_until_idle().await;
        run.clock().advance(SignedDuration::from_hours(2));
        run.run_until_idle().await;

        assert_eq!(run.received().len(), 19);
        assert_eq!(run.rcpt_attempts(&gone), 1);
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'bounced'").await, 1);
        let email = SubscriberEmail::parse(&gone).expect("address");
        assert_eq!(run.db.store.suppression_of(&email).await.expect("query"), Some(SuppressionReason::Bounced));
        let (_, subscriptions) = run.db.store.find_subscriber(&email).await.expect("query").expect("subscriber");
        assert_eq!(subscriptions[0].status, "bounced");
        assert_eq!(run.issue_status().await, "sent");
        let stored: i64 = run.query_i64("SELECT COUNT(*) FROM deliveries WHERE last_error LIKE '%reader7@%'").await;
        assert_eq!(stored, 0, "the stored reply must not quote the address");
    }

    async fn a_relay_outage_opens_the_circuit_and_sending_resumes_by_itself_without_duplicates(db) {
        let run = Delivery::new(db, 600, &[("TIDINGS_DELIVERY__BATCH_SIZE", "200")]).await;
        run.start().await;
        let first = run.step().await;
        assert_eq!(first.settled, 200);
        // The relay goes down: open sessions get 421 and new connections are refused.
        run.smtp.inject(Fault::new(Trigger::Command(Verb::Mail), Action::reply(421, "4.3.2 shutting down")));
        run.smtp.set_refusing(true);
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 200);
        assert_eq!(run.issue_status().await, "sending");
        let status = run.db.tidings_env(&["issue", "status", "122"], &[("TIDINGS_TRANSPORT__KIND", "smtp"), ("TIDINGS_SMTP__HOST", "127.0.0.1"), ("TIDINGS_SMTP__PORT", &run.smtp.port().to_string())]);
        assert!(status.stdout.contains("relay:      unavailable"), "{}", status.stdout);

        run.smtp.clear_faults();
        run.smtp.set_refusing(false);
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 200, "the circuit stays open until its time is up");
        run.clock().advance(SignedDuration::from_secs(31));
        run.run_until_idle().await;
        let received = run.received();
        assert_eq!(received.len(), 600);
        assert!(received.values().all(|&count| count == 1));
        assert_eq!(run.issue_status().await, "sent");
    }

    async fn a_connection_dropped_after_the_final_dot_makes_the_delivery_ambiguous_and_listed(db) {
        let run = Delivery::new(db, 10, &[]).await;
        run.smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::Drop).times(1));
        run.start().await;
        run.run_until_idle().await;
        assert_eq!(run.smtp.dropped_after_data().len(), 1);
        let dropped_to = run.smtp.dropped_after_data()[0].rcpt_to[0].clone();
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'ambiguous'").await, 1);

        let status = run.db.tidings(&["issue", "status", "122", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
        assert_eq!(value["ambiguous"][0]["email"], dropped_to.as_str());
        assert_eq!(value["deliveries"]["ever_ambiguous"], 1);

        // It is sent again after the backoff: the subscriber may now have it twice, and that is on record.
        run.clock().advance(SignedDuration::from_mins(2));
        run.run_until_idle().await;
        assert_eq!(run.received().get(&dropped_to), Some(&1));
        assert_eq!(run.received().len(), 10);
        assert_eq!(run.issue_status().await, "sent");
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE ambiguous_at IS NOT NULL AND status = 'sent'").await, 1);
    }

    async fn a_554_5_7_1_pauses_the_issue_with_the_reason(db) {
        let run = Delivery::new(db, 50, &[]).await;
        run.smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::reply(554, "5.7.1 message refused by policy")));
        run.start().await;
        run.run_until_idle().await;
        assert_eq!(run.issue_status().await, "paused");
        let status = run.db.tidings(&["issue", "status", "122"]);
        assert!(status.stdout.contains("waiting:") && status.stdout.contains("5.7.1 message refused by policy"), "{}", status.stdout);
        assert_eq!(run.received().len(), 0);

        run.smtp.clear_faults();
        assert_eq!(run.db.tidings(&["issue", "resume", "122"]).code, Some(0));
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 50);
        assert_eq!(run.issue_status().await, "sent");
    }

    async fn an_unsubscribe_committed_while_the_batch_is_sending_stops_that_message(db) {
        let run = Delivery::new(db, 5, &[("TIDINGS_SMTP__POOL_SIZE", "1")]).await;
        run.smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::StallUntilReleased).times(1));
        run.start().await;
        let step = run.step();
        let unsubscribe = async {
            run.smtp.wait_for_stalled(1, Duration::from_secs(30)).await.expect("the first message stalls");
            // The batch is claimed and its first message is on the wire; the last subscriber leaves now.
            let leaving = SubscriberEmail::parse(&address(4)).expect("address");
            let (person, _) = run.db.store.find_subscriber(&leaving).await.expect("query").expect("subscriber");
            assert!(run.db.store.unsubscribe(run.db.list_id, person.id, run.clock().now()).await.expect("unsubscribe"));
            run.smtp.release_stalls();
        };
        let (report, ()) = tokio::join!(step, unsubscribe);
        assert_eq!(report.settled, 5);
        run.run_until_idle().await;
        let received = run.received();
        assert_eq!(received.len(), 4);
        assert!(!received.contains_key(&address(4)));
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'suppressed'").await, 1);
        assert_eq!(run.issue_status().await, "sent");
    }

    async fn subscribers_who_left_after_the_issue_started_are_never_offered_to_the_relay(db) {
        let run = Delivery::new(db, 6, &[]).await;
        run.start().await;
        // The first step creates every delivery, but the relay refuses connections: they go back to the queue.
        run.smtp.set_refusing(true);
        run.step().await;
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'queued'").await, 6);
        run.smtp.set_refusing(false);
        // Two subscribers with a delivery leave now; neither may still get the issue.
        let leaving = SubscriberEmail::parse(&address(1)).expect("address");
        let (person, _) = run.db.store.find_subscriber(&leaving).await.expect("query").expect("subscriber");
        assert!(run.db.store.unsubscribe(run.db.list_id, person.id, run.clock().now()).await.expect("unsubscribe"));
        let suppressed = SubscriberEmail::parse(&address(2)).expect("address");
        assert!(run.db.store.add_suppression(&suppressed, "manual", run.clock().now()).await.expect("suppress"));
        run.clock().advance(SignedDuration::from_mins(20));
        run.run_until_idle().await;
        let received = run.received();
        assert_eq!(received.len(), 4, "{received:?}");
        assert_eq!(run.rcpt_attempts(&address(1)), 0);
        assert_eq!(run.rcpt_attempts(&address(2)), 0);
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'suppressed'").await, 2);
        assert_eq!(run.issue_status().await, "sent");
    }

    async fn the_last_check_answers_many_subscribers_in_one_query_in_order(db) {
        let run = Delivery::new(db, 4, &[]).await;
        let store = &run.db.store;
        let person = |i: usize| async move {
            let email = SubscriberEmail::parse(&address(i)).expect("address");
            let (row, _) = store.find_subscriber(&email).await.expect("query").expect("subscriber");
            (row.id, email.suppression_hash())
        };
        let (left, _) = person(1).await;
        assert!(store.unsubscribe(run.db.list_id, left, run.clock().now()).await.expect("unsubscribe"));
        let suppressed = SubscriberEmail::parse(&address(2)).expect("address");
        let (erased_id, _) = person(2).await;
        store.erase_subscriber(&suppressed, run.clock().now()).await.expect("erase");
        let mut questions = Vec::new();
        for i in [0, 1, 3, 0] {
            let (subscriber_id, suppression_hash) = person(i).await;
            questions.push(tidings::store::EligibilityQuestion { list_id: run.db.list_id, subscriber_id, suppression_hash });
        }
        // Subscriber 2 was erased: a question with their old id and their address's hash.
        questions.insert(2, tidings::store::EligibilityQuestion {
            list_id: run.db.list_id, subscriber_id: erased_id, suppression_hash: suppressed.suppression_hash(),
        });
        let answers = store.still_eligible_many(&questions).await.expect("query");
        assert_eq!(answers, vec![true, false, false, true, true]);
        assert!(store.still_eligible_many(&[]).await.expect("query").is_empty());
    }

    async fn a_scheduled_issue_starts_at_its_time_and_a_late_one_waits_for_resume(db) {
        let run = Delivery::new(db, 3, &[]).await;
        let at = run.clock().now().checked_add(SignedDuration::from_hours(1)).expect("time");
        let local = at.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/London").expect("zone")).strftime("%Y-%m-%d %H:%M").to_string();
        assert_eq!(run.db.tidings(&["issue", "schedule", "122", "--at", &local]).code, Some(0));
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 0);
        run.clock().advance(SignedDuration::from_mins(61));
        run.run_until_idle().await;
        assert_eq!(run.received().len(), 3);

        // A second issue, found two hours after its time (max_late is one hour), waits and says why.
        let late = run.db.write_file("123.md", std::fs::read_to_string(SAMPLE).expect("sample").replacen("number = 122", "number = 123", 1).as_bytes());
        assert_eq!(run.db.tidings(&["issue", "add", late.to_str().expect("path")]).code, Some(0));
        let past = run.clock().now().checked_sub(SignedDuration::from_hours(2)).expect("time");
        let local = past.to_zoned_datetime(jiff::tz::TimeZone::get("Europe/London").expect("zone")).strftime("%Y-%m-%d %H:%M").to_string();
        assert_eq!(run.db.tidings(&["issue", "schedule", "123", "--at", &local]).code, Some(0));
        let report = run.step().await;
        assert_eq!(report.held.len(), 1);
        let status = run.db.tidings(&["issue", "status", "123"]);
        assert!(status.stdout.contains("paused") && status.stdout.contains("delivery.max_late"), "{}", status.stdout);
        // Resumed with the test's clock (the binary would use the real one).
        let held = report.held[0];
        assert!(run.db.store.resume_issue(held, run.clock().now()).await.expect("resume"));
        run.run_until_idle().await;
        assert_eq!(run.smtp.message_count(), 6);
        assert!(run.received().values().all(|&count| count == 2));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_daemons_on_one_postgresql_share_five_thousand_deliveries_without_a_duplicate() {
    let Some(db) = TestDatabase::postgres().await else { return };
    let first = Delivery::new(db, 5_000, &[("TIDINGS_DELIVERY__BATCH_SIZE", "100")]).await;
    let vars: HashMap<String, String> = [
        ("TIDINGS_DATABASE__URL", first.db.url.as_str()),
        ("TIDINGS_TRANSPORT__KIND", "smtp"),
        ("TIDINGS_SMTP__HOST", "127.0.0.1"),
        ("TIDINGS_SMTP__PORT", &first.smtp.port().to_string()),
        ("TIDINGS_SMTP__TLS", "none"),
        ("TIDINGS_SMTP__POOL_SIZE", "4"),
        ("TIDINGS_DELIVERY__PER_SECOND", "0"),
        ("TIDINGS_DELIVERY__BATCH_SIZE", "100"),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("TIDINGS_HTTP__BASE_URL", "https://news.example.com"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = tidings::configuration::load_layers(None, &vars).expect("settings");
    let second = tidings::startup::delivery_context(
        &settings,
        first.db.store.clone(),
        first.db.clock.clone(),
        settings.link_builder().expect("links"),
    )
    .expect("second daemon");
    first.start().await;

    async fn drain(engine: &DeliveryContext, clock: &Clock, shutdown: &CancellationToken) -> usize {
        let mut settled = 0;
        loop {
            let report = run_step(engine, clock.now(), shutdown).await.expect("step");
            settled += report.settled;
            if report.settled == 0 && report.idle_until.is_some() {
                return settled;
            }
        }
    }
    let (a, b) = tokio::join!(
        drain(&first.engine, &first.db.clock, &first.shutdown),
        drain(&second, &first.db.clock, &first.shutdown)
    );
    assert_eq!(a + b, 5_000);
    assert!(a > 0 && b > 0, "both daemons did part of the work: {a} and {b}");
    let received = first.received();
    assert_eq!(received.len(), 5_000);
    assert!(received.values().all(|&count| count == 1));
    assert_eq!(first.issue_status().await, "sent");
}

both_backends! {
    async fn while_a_message_waits_at_its_final_dot_only_its_delivery_is_in_flight_and_a_crash_then_makes_only_it_ambiguous(db) {
        let run = Delivery::new(db, 5, &[("TIDINGS_SMTP__POOL_SIZE", "1")]).await;
        run.smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::StallUntilReleased).times(1));
        run.start().await;
        let step = run.step();
        let crash = async {
            run.smtp.wait_for_stalled(1, Duration::from_secs(30)).await.expect("the first message stalls");
            // The final dot is on the wire: its intent is durable, and the rest of the batch has none.
            assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'").await, 5);
            assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE in_flight_at IS NOT NULL").await, 1);
            // What a daemon does after this one died: reclaim its deliveries.
            let later = run.clock().now().saturating_add(SignedDuration::from_hours(1)).expect("time");
            let reclaimed: (u64, u64) = run.db.store.reclaim_abandoned(later, later).await.expect("reclaim");
            assert_eq!(reclaimed, (1, 4), "one ambiguous, four back in the queue");
            let status = run.db.tidings(&["issue", "status", "122", "--json"]);
            let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
            assert_eq!(value["ambiguous"].as_array().map(Vec::len), Some(1), "{}", status.stdout);
            assert_eq!(value["deliveries"]["ever_ambiguous"], 1);
            assert_eq!(value["deliveries"]["queued"], 4);
            run.smtp.release_stalls();
        };
        tokio::join!(step, crash);
    }

    async fn each_message_is_recorded_with_the_moment_of_its_own_reply(db) {
        let run = Delivery::new(db, 3, &[("TIDINGS_SMTP__POOL_SIZE", "1")]).await;
        run.smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::StallUntilReleased).times(1));
        run.start().await;
        let started = run.clock().now();
        let step = run.step();
        let later = async {
            run.smtp.wait_for_stalled(1, Duration::from_secs(30)).await.expect("the first message stalls");
            run.clock().advance(SignedDuration::from_secs(7));
            run.smtp.release_stalls();
        };
        tokio::join!(step, later);
        // The batch began at `started`; its replies came 7 s later, and that is what is on record.
        let sent_at = tidings::clock::to_millis(started.saturating_add(SignedDuration::from_secs(7)).expect("time"));
        assert_eq!(run.query_i64(&format!("SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_at = {sent_at}")).await, 3);
        assert_eq!(run.query_i64("SELECT COUNT(*) FROM deliveries WHERE in_flight_at IS NOT NULL").await, 0);
    }
}
