//! Bounces and complaints that come back after sending, through the report listener inside the running
//! application and through the library's pipeline: signed return paths on every message, reports mapped back
//! to exactly one delivery, hard bounces and complaints suppressing, forged tokens and strangers refused, sizes
//! limited, and nothing applied twice. Every check reads what the other side saw: the SMTP test server's
//! envelopes, the listener's replies, the database.

use std::collections::HashSet;

use tidings::bounces::{Pipeline, Source};
use tidings::domain::{BounceAddress, LinkKeys, ReturnPathFor, SubscriberEmail};
use tidings::store::Store;
use tidings::worker::run_step;
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::helpers::report_client::ReportClient;
use crate::helpers::smtp_server::{ReceivedMessage, SmtpServer};
use crate::helpers::{TestDatabase, sample_issue_engine};
use crate::web::{WebApp, address};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const BOUNCE: &str = "bounces@bounces.example.com";
const COMPLAINTS: &str = "fbl@bounces.example.com";

fn bounce_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("TIDINGS_BOUNCES__ADDRESS", BOUNCE),
        ("TIDINGS_BOUNCES__COMPLAINT_ADDRESS", COMPLAINTS),
        ("TIDINGS_BOUNCES__LISTEN", "127.0.0.1:0"),
    ]
}

async fn app(db: TestDatabase, subscribers: usize, extra: &[(&'static str, &'static str)]) -> WebApp {
    let mut env = bounce_env();
    env.extend_from_slice(extra);
    WebApp::start(db, subscribers, &env).await
}

/// The header block of a message as sent (up to the blank line).
fn headers_of(message: &ReceivedMessage) -> String {
    let text = String::from_utf8_lossy(&message.data).into_owned();
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

fn header(message: &ReceivedMessage, name: &str) -> String {
    let parsed = message.parsed().expect("MIME");
    parsed.header_raw(name).unwrap_or_default().trim().to_owned()
}

/// A delivery status notification as Postfix writes one, about `original`.
pub(crate) fn dsn(original: &ReceivedMessage, action: &str, status: &str, diagnostic: &str, id: &str) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}@mx.example.org>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n\
         --B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         This is the mail system at host mx.example.org. I'm sorry to have to inform you that your message \
         could not be delivered to one or more recipients.\r\n\r\n\
         --B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nOriginal-Recipient: rfc822;{rcpt}\r\nAction: {action}\r\n\
         Status: {status}\r\nDiagnostic-Code: smtp; {diagnostic}\r\n\r\n\
         --B1\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--B1--\r\n",
        to = original.mail_from,
        rcpt = original.rcpt_to[0],
        headers = headers_of(original),
    )
    .into_bytes()
}

/// A feedback-loop complaint (ARF) about `original`, with the recipient redacted as large providers do.
pub(crate) fn complaint(original: &ReceivedMessage, id: &str) -> Vec<u8> {
    let headers = headers_of(original).replace(&original.rcpt_to[0], "redacted@example.com");
    format!(
        "From: feedback@fbl.example.net\r\nTo: {COMPLAINTS}\r\nSubject: Complaint about a message\r\n\
         Message-ID: <{id}@fbl.example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"B2\"\r\n\r\n\
         --B2\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --B2\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\n\
         Version: 1\r\n\r\n--B2\r\nContent-Type: message/rfc822\r\n\r\n{headers}\r\n\r\nbody\r\n--B2--\r\n"
    )
    .into_bytes()
}

/// Everything a report can change, as one comparable text.
pub(crate) async fn standing(app: &WebApp) -> String {
    let statuses = app
        .query_text("SELECT STRING_AGG(status, ',') FROM (SELECT status FROM subscriptions ORDER BY subscriber_id) s")
        .await;
    let suppressions = app.query_i64("SELECT COUNT(*) FROM suppressions").await;
    let deliveries =
        app.query_text("SELECT STRING_AGG(status, ',') FROM (SELECT status FROM deliveries ORDER BY id) d").await;
    let events = app.query_i64("SELECT COUNT(*) FROM events WHERE kind IN ('bounce', 'complaint')").await;
    format!("{statuses:?} {suppressions} {deliveries:?} {events}")
}

async fn suppressed(app: &WebApp, email: &str) -> Option<String> {
    let email = SubscriberEmail::parse(email).expect("address");
    app.db.store.suppression_of(&email).await.expect("query").map(|r| r.as_str().to_owned())
}

both_backends! {
    async fn every_message_carries_a_signed_return_path_and_trace_header_naming_its_delivery(db) {
        let app = app(db, 6, &[]).await;
        let keys = LinkKeys::parse(KEYS).expect("keys");
        let bounce = BounceAddress::parse(BOUNCE).expect("bounce address");
        let mut seen = HashSet::new();
        for message in app.smtp.messages() {
            let what = bounce.read(&keys, &message.mail_from).expect("the envelope sender is a signed return path");
            let ReturnPathFor::Delivery { subscriber_id, issue_id, .. } = what else { panic!("{what:?}") };
            assert_eq!(issue_id, app.issue_id);
            assert!(seen.insert(subscriber_id), "two messages name one subscriber");
            let trace = header(&message, "X-Tidings-Ref");
            assert_eq!(tidings::domain::read_trace(&keys, &trace).expect("a valid trace header"), what);
            assert!(message.mail_from.contains(&trace), "the return path carries the trace value");
        }
        assert_eq!(seen.len(), 6);

        // A confirmation email's return path names the confirmation, not an issue.
        app.subscribe_and_get_confirm_link("newcomer@example.org", "New").await;
        let confirmation = app.message_to("newcomer@example.org");
        let what = bounce.read(&keys, &confirmation.mail_from).expect("a signed return path");
        assert!(matches!(what, ReturnPathFor::Confirmation { .. }), "{what:?}");
    }

    async fn a_hard_bounce_to_the_return_path_suppresses_exactly_that_subscriber_once(db) {
        let app = app(db, 4, &[]).await;
        let port = app.report_port.expect("the listener runs");
        let original = app.message_to(&address(0));
        let report = dsn(&original, "failed", "5.1.1", "550 5.1.1 <reader0@example.com>: user unknown", "d1");
        let mut client = ReportClient::hello(port, false).await;
        let (rcpt, done) = client.send(&[&original.mail_from], &report, false).await;
        assert!(rcpt[0].starts_with("250"), "{rcpt:?}");
        assert!(done[0].starts_with("250"), "{done:?}");

        assert_eq!(app.status_of(&address(0)).await, "bounced");
        assert_eq!(suppressed(&app, &address(0)).await.as_deref(), Some("bounced"));
        for i in 1..4 {
            assert_eq!(app.status_of(&address(i)).await, "active", "reader{i}");
            assert_eq!(suppressed(&app, &address(i)).await, None);
        }
        let delivery = app.query_text("SELECT d.status FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
                                       WHERE s.email = 'reader0@example.com'").await;
        assert_eq!(delivery.as_deref(), Some("bounced"));

        // The sender did not hear our 250 and sends it again: nothing changes twice.
        let before = standing(&app).await;
        let (_, again) = client.send(&[&original.mail_from], &report, false).await;
        assert!(again[0].starts_with("250"), "{again:?}");
        assert_eq!(standing(&app).await, before);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports").await, 1);
        client.quit().await;

        let listed = app.db.tidings_env(&["bounce", "list", "--json"], &[("TIDINGS_DATABASE__URL", app.db.url.as_str())]);
        assert_eq!(listed.code, Some(0), "{}", listed.stderr);
        let rows: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
        assert_eq!(rows[0]["kind"], "hard");
        assert_eq!(rows[0]["matched_by"], "return-path");
        assert_eq!(rows[0]["issue_number"], 122);
        // The stored text keeps no third party's address (the reporting MTA's).
        let id = rows[0]["id"].as_i64().expect("id").to_string();
        let shown = app.db.tidings_env(&["bounce", "show", &id], &[("TIDINGS_DATABASE__URL", app.db.url.as_str())]);
        assert_eq!(shown.code, Some(0), "{}", shown.stderr);
        assert!(!shown.stdout.contains("MAILER-DAEMON@mx.example.org"), "{}", shown.stdout);
        assert!(shown.stdout.contains("[address removed]"), "{}", shown.stdout);
        let status = app.db.tidings_env(&["issue", "status", "122"], &[("TIDINGS_DATABASE__URL", app.db.url.as_str())]);
        assert!(status.stdout.contains("came back:  1 hard and 0 soft bounces"), "{}", status.stdout);

        // Erasure clears what the stored report says about the person; the hashed suppression stays.
        let erased = app.db.tidings_env(&["subscriber", "erase", &address(0)], &[("TIDINGS_DATABASE__URL", app.db.url.as_str())]);
        assert_eq!(erased.code, Some(0), "{}", erased.stderr);
        let raw = app.query_text("SELECT raw || subject FROM bounce_reports").await;
        assert_eq!(raw.as_deref(), Some(""), "the stored report keeps nothing about the erased person");
        assert!(suppressed(&app, &address(0)).await.is_some());
    }

    async fn the_listener_takes_mail_only_for_signed_return_paths_and_the_complaint_address(db) {
        let app = app(db, 2, &[]).await;
        let port = app.report_port.expect("the listener runs");
        let original = app.message_to(&address(0));
        let before = standing(&app).await;
        let (local, domain) = original.mail_from.split_once('@').expect("an address");
        let mut altered: Vec<char> = local.chars().collect();
        let last = altered.len() - 1;
        altered[last] = if altered[last] == 'a' { 'b' } else { 'a' };
        let forged = format!("{}@{domain}", altered.into_iter().collect::<String>());
        let mut client = ReportClient::hello(port, false).await;
        for stranger in ["someone@example.com", BOUNCE, forged.as_str(), &format!("{local}@elsewhere.example")] {
            let (rcpt, done) = client.send(&[stranger], b"Subject: x\r\n\r\nhello\r\n", false).await;
            assert!(rcpt[0].starts_with("550 5.1.1"), "{stranger}: {rcpt:?}");
            assert!(done.is_empty());
        }
        let (rcpt, _) = client.send(&[COMPLAINTS], b"Subject: hello\r\n\r\nnot a report\r\n", false).await;
        assert!(rcpt[0].starts_with("250"), "{rcpt:?}");
        client.quit().await;
        assert_eq!(standing(&app).await, before, "nothing valid was said");
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports WHERE kind = 'unclassified'").await, 1);
    }

    async fn a_complaint_through_the_feedback_loop_unsubscribes_and_suppresses_by_the_trace_header(db) {
        let app = app(db, 3, &[]).await;
        let port = app.report_port.expect("the listener runs");
        let original = app.message_to(&address(1));
        let mut client = ReportClient::hello(port, false).await;
        let (rcpt, done) = client.send(&[COMPLAINTS], &complaint(&original, "c1"), false).await;
        assert!(rcpt[0].starts_with("250") && done[0].starts_with("250"), "{rcpt:?} {done:?}");
        client.quit().await;
        assert_eq!(app.status_of(&address(1)).await, "complained");
        assert_eq!(suppressed(&app, &address(1)).await.as_deref(), Some("complained"));
        assert_eq!(app.status_of(&address(0)).await, "active");
        assert_eq!(app.status_of(&address(2)).await, "active");
        let matched = app.query_text("SELECT matched_by FROM bounce_reports").await;
        assert_eq!(matched.as_deref(), Some("trace-header"));

        // The editor's figures: one complaint of three delivered.
        let env = [("TIDINGS_DATABASE__URL", app.db.url.as_str())];
        let stats = app.db.tidings_env(&["stats", "122", "--json"], &env);
        assert_eq!(stats.code, Some(0), "{}", stats.stderr);
        let stats: serde_json::Value = serde_json::from_str(&stats.stdout).expect("JSON");
        assert_eq!(stats["complaints"], 1);
        assert_eq!(stats["delivered"], 3);
        assert_eq!(stats["complaint_rate"].as_f64(), Some(0.33333));
        assert_eq!(stats["reported_later"]["complaints"], 1);
        let overview = app.db.tidings_env(&["stats"], &env);
        assert!(overview.stdout.contains("1 (33.33%)"), "{}", overview.stdout);
        let metrics = app.get("/metrics").await.text().await.expect("metrics");
        assert!(metrics.contains("tidings_reports_total{kind=\"complaint\"} 1"), "{metrics}");
    }

    async fn soft_bounces_count_once_per_delivery_and_a_delivered_notice_resets_the_score(db) {
        let app = app(db, 3, &[("TIDINGS_BOUNCES__SOFT_THRESHOLD", "2")]).await;
        let port = app.report_port.expect("the listener runs");
        let full = app.message_to(&address(0));
        let mut client = ReportClient::hello(port, false).await;
        for (n, id) in ["s1", "s2"].iter().enumerate() {
            let report = dsn(&full, "failed", "5.2.2", "552 5.2.2 mailbox full", id);
            let (_, done) = client.send(&[&full.mail_from], &report, false).await;
            assert!(done[0].starts_with("250"), "report {n}: {done:?}");
        }
        // Two reports about one delivery: one soft bounce, below the threshold of 2.
        assert_eq!(app.status_of(&address(0)).await, "active");
        assert_eq!(suppressed(&app, &address(0)).await, None);
        let score = app.query_text("SELECT CAST(bounce_score AS TEXT) FROM subscribers WHERE email = 'reader0@example.com'").await;
        assert!(score.as_deref().is_some_and(|s| s.starts_with('1')), "{score:?}");

        let delivered = dsn(&full, "delivered", "2.0.0", "250 2.0.0 OK", "s3");
        let (_, done) = client.send(&[&full.mail_from], &delivered, false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        let score = app.query_text("SELECT CAST(bounce_score AS TEXT) FROM subscribers WHERE email = 'reader0@example.com'").await;
        assert!(score.as_deref().is_some_and(|s| s.starts_with('0')), "{score:?}");

        // Delayed notices and auto-replies change nothing but are counted.
        let before = standing(&app).await;
        let other = app.message_to(&address(1));
        let delayed = dsn(&other, "delayed", "4.4.7", "451 4.4.7 still trying", "s4");
        let (_, done) = client.send(&[&other.mail_from], &delayed, false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        let vacation = format!(
            "From: reader1@example.com\r\nTo: {}\r\nSubject: Out of office: Issue 122\r\nAuto-Submitted: auto-replied\r\n\r\n\
             I am away until Monday; my mailbox is full of unread mail.\r\n",
            other.mail_from
        );
        let (_, done) = client.send(&[&other.mail_from], vacation.as_bytes(), false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        client.quit().await;
        assert_eq!(standing(&app).await, before);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports WHERE kind IN ('delayed', 'auto-reply')").await, 2);
    }

    async fn an_oversized_report_gets_552_and_the_listener_keeps_serving(db) {
        let app = app(db, 2, &[("TIDINGS_BOUNCES__MAX_MESSAGE_BYTES", "1048576")]).await;
        let port = app.report_port.expect("the listener runs");
        let original = app.message_to(&address(0));
        let before = standing(&app).await;
        let mut client = ReportClient::hello(port, false).await;
        let mut huge = dsn(&original, "failed", "5.1.1", "550 5.1.1 unknown", "big");
        huge.extend(std::iter::repeat_n(b"x".repeat(998).into_iter().chain(*b"\r\n"), 50 * 1024).flatten());
        let (_, done) = client.send(&[&original.mail_from], &huge, false).await;
        assert!(done[0].starts_with("552"), "{done:?}");
        assert_eq!(standing(&app).await, before);
        // The same session, and others, go on.
        let (_, done) = client.send(&[&original.mail_from], &dsn(&original, "failed", "5.1.1", "550 5.1.1", "ok"), false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        client.quit().await;
    }

    async fn a_report_about_an_erased_subscriber_or_with_another_lists_token_changes_nothing(db) {
        let app = app(db, 3, &[]).await;
        let port = app.report_port.expect("the listener runs");
        let erased = app.message_to(&address(0));
        let env = [("TIDINGS_DATABASE__URL", app.db.url.as_str())];
        let out = app.db.tidings_env(&["subscriber", "erase", &address(0)], &env);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        // A validly signed token naming another list than the subscriber's.
        let keys = LinkKeys::parse(KEYS).expect("keys");
        let bounce = BounceAddress::parse(BOUNCE).expect("address");
        let other = app.message_to(&address(1));
        let ReturnPathFor::Delivery { subscriber_id, issue_id, list_id } = bounce.read(&keys, &other.mail_from).expect("ours")
        else { panic!("a delivery") };
        let foreign = bounce.return_path(&keys, ReturnPathFor::Delivery { list_id: list_id + 100, subscriber_id, issue_id });

        let before = standing(&app).await;
        let mut client = ReportClient::hello(port, false).await;
        let (_, done) = client.send(&[&erased.mail_from], &dsn(&erased, "failed", "5.1.1", "550 5.1.1", "e1"), false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        let (_, done) = client.send(&[&foreign], &dsn(&other, "failed", "5.1.1", "550 5.1.1", "e2"), false).await;
        assert!(done[0].starts_with("250"), "{done:?}");
        client.quit().await;
        assert_eq!(standing(&app).await, before);
        assert_eq!(app.status_of(&address(1)).await, "active");
        let effects = app.query_i64("SELECT COUNT(*) FROM bounce_reports WHERE effect LIKE 'nothing%'").await;
        assert_eq!(effects, 2);
    }

    async fn a_report_over_lmtp_gets_one_reply_per_recipient(db) {
        let app = app(db, 2, &[("TIDINGS_BOUNCES__PROTOCOL", "lmtp")]).await;
        let port = app.report_port.expect("the listener runs");
        let a = app.message_to(&address(0));
        let b = app.message_to(&address(1));
        let mut client = ReportClient::hello(port, true).await;
        let ehlo = client.command("EHLO mta.example.net").await;
        assert!(ehlo.starts_with("500"), "an LMTP server refuses EHLO: {ehlo}");
        let (rcpt, done) = client.send(&[&a.mail_from, "nobody@example.com", &b.mail_from], &dsn(&a, "failed", "5.1.1", "550", "l1"), true).await;
        assert!(rcpt[0].starts_with("250") && rcpt[1].starts_with("550") && rcpt[2].starts_with("250"), "{rcpt:?}");
        assert_eq!(done.len(), 2);
        assert!(done.iter().all(|r| r.starts_with("250")), "{done:?}");
        client.quit().await;
        // The envelope names the first valid return path: that subscriber bounced.
        assert_eq!(app.status_of(&address(0)).await, "bounced");
    }

    async fn a_complaint_rate_above_the_threshold_pauses_the_sending_issue(db) {
        let smtp = SmtpServer::start().await;
        db.import((0..40).map(|i| (address(i), format!("Reader {i}"), None)), db.clock.now()).await;
        let extra = [
            ("TIDINGS_DELIVERY__BATCH_SIZE", "10"),
            ("TIDINGS_BOUNCES__ADDRESS", BOUNCE),
            ("TIDINGS_BOUNCES__MIN_DELIVERIES", "10"),
        ];
        let (settings, engine, issue_id) = sample_issue_engine(&db, smtp.port(), &extra).await;
        assert!(db.store.start_issue(issue_id, db.clock.now()).await.expect("start"));
        let shutdown = CancellationToken::new();
        while smtp.message_count() < 10 {
            run_step(&engine, db.clock.now(), &shutdown).await.expect("step");
        }
        let sent_so_far = smtp.message_count();
        assert!(sent_so_far < 40, "the issue is still sending");

        // One complaint among at least ten delivered: 10% or less, far above 0.3%.
        let pipeline = Pipeline::from_settings(&settings).expect("settings").expect("bounces on");
        let first = smtp.messages().remove(0);
        let report = pipeline.prepare(&complaint(&first, "g1"), &[COMPLAINTS.to_owned()], Source::Ingest);
        pipeline.apply(&db.store, &[report], db.clock.now()).await.expect("apply");
        let issue = db.store.issue_by_id(issue_id).await.expect("query").expect("issue");
        assert_eq!(issue.status, "paused");
        assert!(issue.hold_reason.as_deref().unwrap_or_default().contains("complaint rate"), "{:?}", issue.hold_reason);
        for _ in 0..5 {
            run_step(&engine, db.clock.now(), &shutdown).await.expect("step");
        }
        assert!(smtp.message_count() <= sent_so_far + 2, "a paused issue sends no more (but what was in flight)");
        engine.close().await;
    }
}

/// SQLite only: a write lock held elsewhere makes the store unavailable for a moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_the_database_cannot_take_gets_451_and_is_taken_once_it_can() {
    let db = TestDatabase::sqlite().await;
    let app = app(db, 2, &[("TIDINGS_DATABASE__BUSY_TIMEOUT", "200ms")]).await;
    let port = app.report_port.expect("the listener runs");
    let original = app.message_to(&address(0));
    let report = dsn(&original, "failed", "5.1.1", "550 5.1.1", "t1");
    let Store::Sqlite(pool) = &app.db.store else { unreachable!() };
    let mut lock = pool.acquire().await.expect("a connection");
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut *lock).await.expect("lock");
    let mut client = ReportClient::hello(port, false).await;
    let (_, done) = client.send(&[&original.mail_from], &report, false).await;
    assert!(done[0].starts_with("451"), "{done:?}");
    sqlx::query("COMMIT").execute(&mut *lock).await.expect("unlock");
    drop(lock);
    assert_eq!(app.status_of(&address(0)).await, "active", "nothing was applied");
    let (_, done) = client.send(&[&original.mail_from], &report, false).await;
    assert!(done[0].starts_with("250"), "{done:?}");
    client.quit().await;
    assert_eq!(app.status_of(&address(0)).await, "bounced");
}

/// The listener's rules, not the store's: SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_guessing_return_paths_is_cut_off_after_ten_refusals_and_a_new_greeting_does_not_forgive_them() {
    let app = app(TestDatabase::sqlite().await, 1, &[]).await;
    let port = app.report_port.expect("the listener runs");
    let mut client = ReportClient::hello(port, false).await;
    let guess = |i: usize| format!("RCPT TO:<bounces+guess{i}aaaaaaaaaaaaaaaa@bounces.example.com>");
    let mut replies = Vec::new();
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    for i in 0..6 {
        replies.push(client.command(&guess(i)).await);
    }
    // A new greeting and a new transaction: the refusals so far still count.
    assert!(client.command("EHLO again.example.net").await.starts_with("250"));
    assert!(client.command("MAIL FROM:<>").await.starts_with("250"));
    for i in 6..11 {
        replies.push(client.command(&guess(i)).await);
    }
    assert!(replies.iter().all(|r| r.starts_with("550 5.1.1")), "{replies:#?}");
    // The eleventh refusal is followed by the listener's goodbye, and the connection closes.
    assert!(client.reply().await.starts_with("421 4.7.0"));
    assert_eq!(client.reply().await, "", "the listener closed the connection");
    // Nothing was stored, and another client is still served.
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports").await, 0);
    ReportClient::hello(port, false).await.quit().await;
}
