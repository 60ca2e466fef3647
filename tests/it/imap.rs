//! The IMAP mailbox as a way in for reports, against a real Dovecot: the sample issue is sent through the SMTP
//! test server, reports about those messages are put in Dovecot's INBOX by APPEND, and the poller is run step
//! by step. Every check asks Dovecot over IMAP what is where (processed reports moved, the junk kept, nothing
//! deleted) and the database what changed (who bounced or complained), and a second poll changes nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::SecretString;
use tidings::bounces::{ImapPoller, Pipeline, PollReport, Source};
use tidings::configuration::{ImapTls, Settings};

use crate::both_backends;
use crate::bounces::{complaint, dsn};
use crate::helpers::TestDatabase;
use crate::helpers::dovecot::{Dovecot, DovecotOptions, PASSWORD, USER};
use crate::helpers::smtp_server::ReceivedMessage;
use crate::web::{WebApp, address};

const BOUNCE: &str = "bounces@bounces.example.com";
const COMPLAINTS: &str = "fbl@bounces.example.com";
const JUNK_SUBJECT: &str = "Lunch on Friday?";

async fn app(db: TestDatabase, subscribers: usize) -> WebApp {
    let env = [("TIDINGS_BOUNCES__ADDRESS", BOUNCE), ("TIDINGS_BOUNCES__COMPLAINT_ADDRESS", COMPLAINTS)];
    WebApp::start(db, subscribers, &env).await
}

/// The app's settings with `[bounces.imap]` pointing at `dovecot`.
fn imap_settings(app: &WebApp, dovecot: &Dovecot, tls: ImapTls, unparsed_folder: &str) -> Settings {
    let mut settings = app.settings.clone();
    let imap = &mut settings.bounces.imap;
    imap.host = "127.0.0.1".to_owned();
    imap.tls = tls;
    imap.port = match tls {
        ImapTls::Wrapper => dovecot.tls_port.expect("a TLS port"),
        _ => dovecot.port,
    };
    imap.ca_file = dovecot.ca_file().display().to_string();
    imap.username = USER.to_owned();
    imap.password = Some(SecretString::from(PASSWORD.to_owned()));
    imap.unparsed_folder = unparsed_folder.to_owned();
    settings
}

fn poller(app: &WebApp, settings: &Settings) -> ImapPoller {
    let pipeline = Pipeline::from_settings(settings).expect("settings").map(Arc::new);
    ImapPoller::from_settings(settings, pipeline, app.db.store.clone(), app.db.clock.clone())
        .expect("IMAP settings")
        .expect("IMAP is on")
}

/// An out-of-office reply to `original`, sent to its return path as vacation programs do.
fn auto_reply(original: &ReceivedMessage) -> Vec<u8> {
    format!(
        "From: Reader <{from}>\r\nTo: {to}\r\nDelivered-To: {to}\r\nSubject: Out of office: away until Monday\r\n\
         Message-ID: <ooo-1@example.com>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nI am away until Monday and will read your message then.\r\n",
        from = original.rcpt_to[0],
        to = original.mail_from,
    )
    .into_bytes()
}

/// A message that is no report at all and names none of our messages.
fn junk() -> Vec<u8> {
    format!(
        "From: Someone <someone@elsewhere.example>\r\nTo: {BOUNCE}\r\nSubject: {JUNK_SUBJECT}\r\n\
         Message-ID: <junk-1@elsewhere.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n\
         Are you free for lunch?\r\n"
    )
    .into_bytes()
}

/// Everything a report can change (subscriptions and suppressions), and the number of stored reports.
async fn standing(app: &WebApp) -> (String, i64) {
    let statuses = app
        .query_text("SELECT STRING_AGG(status, ',') FROM (SELECT status FROM subscriptions ORDER BY subscriber_id) s")
        .await;
    let suppressions = app.query_i64("SELECT COUNT(*) FROM suppressions").await;
    let reports = app.query_i64("SELECT COUNT(*) FROM bounce_reports").await;
    (format!("{statuses:?} suppressions={suppressions}"), reports)
}

fn total(counts: &BTreeMap<String, u32>) -> u32 {
    counts.values().sum()
}

both_backends! {
    async fn the_imap_mailbox_moves_processed_reports_keeps_the_junk_and_deletes_nothing(db) {
        let Some(dovecot) = Dovecot::start(DovecotOptions::default()).await else { return };
        let app = app(db, 5).await;
        let reports = [
            dsn(&app.message_to(&address(0)), "failed", "5.1.1", "550 5.1.1 user unknown", "imap-d1"),
            dsn(&app.message_to(&address(1)), "failed", "5.1.2", "550 5.1.2 no such domain", "imap-d2"),
            complaint(&app.message_to(&address(2)), "imap-c1"),
            auto_reply(&app.message_to(&address(3))),
            junk(),
        ];
        for report in &reports {
            dovecot.append("INBOX", report).await;
        }
        let (before, _) = dovecot.census().await;
        assert_eq!(total(&before), 5, "{before:?}");

        let settings = imap_settings(&app, &dovecot, ImapTls::None, "Tidings/Unparsed");
        let poller = poller(&app, &settings);
        let first = poller.poll_once().await.unwrap_or_else(|e| panic!("{e:#}\n{}", dovecot.log()));
        assert_eq!(
            first,
            PollReport { taken: 5, processed: 4, unparsed: 1, too_large: 0, duplicates: 0, more: false }
        );

        // Dovecot's own view: the four reports in the processed folder and the junk in the unparsed one (the
        // folders were created; Dovecot's maildir separator is "."), nothing flagged for deletion, nothing lost.
        let (after, deleted) = dovecot.census().await;
        assert_eq!(after.get("INBOX"), Some(&0), "{after:?}");
        assert_eq!(after.get("Tidings.Processed"), Some(&4), "{after:?}");
        assert_eq!(after.get("Tidings.Unparsed"), Some(&1), "{after:?}");
        assert_eq!(total(&after), 5, "{after:?}");
        assert_eq!(deleted, 0);
        assert_eq!(dovecot.subjects("Tidings.Unparsed").await, [JUNK_SUBJECT]);

        // The database: the hard bounces bounced, the complaint complained, the auto-reply changed nothing.
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        assert_eq!(app.status_of(&address(1)).await, "bounced");
        assert_eq!(app.status_of(&address(2)).await, "complained");
        assert_eq!(app.status_of(&address(3)).await, "active");
        assert_eq!(app.status_of(&address(4)).await, "active");
        let kinds = app
            .query_text("SELECT STRING_AGG(kind, ',') FROM (SELECT kind FROM bounce_reports WHERE source = 'imap' ORDER BY id) k")
            .await;
        assert_eq!(kinds.as_deref(), Some("hard,hard,complaint,auto-reply,unclassified"));

        // A second poll finds nothing to do and changes nothing.
        let before_second = standing(&app).await;
        let second = poller.poll_once().await.expect("second poll");
        assert_eq!(second, PollReport::default());
        assert_eq!(standing(&app).await, before_second);
        assert_eq!(dovecot.census().await, (after, 0));
    }

    async fn a_report_already_applied_is_moved_once_and_junk_left_in_place_is_never_taken_again(db) {
        let Some(dovecot) = Dovecot::start(DovecotOptions { tls: true, without_move: true }).await else { return };
        let app = app(db, 2).await;
        let report = dsn(&app.message_to(&address(0)), "failed", "5.1.1", "550 5.1.1 user unknown", "imap-dup");
        // The same report came in before through another way (or a poll that stopped before the move).
        let pipeline = Pipeline::from_settings(&app.settings).expect("settings").expect("bounces on");
        let prepared = pipeline.prepare(&report, &[], Source::Ingest);
        pipeline.apply(&app.db.store, &[prepared], app.db.clock.now()).await.expect("apply");
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        let before = standing(&app).await;

        dovecot.append("INBOX", &report).await;
        dovecot.append("INBOX", &junk()).await;
        // Someone else's message flagged for deletion by their own client: ours must not expunge it.
        dovecot.append("INBOX", b"Subject: flagged elsewhere\r\n\r\nx\r\n").await;
        let mut session = dovecot.session().await;
        assert!(!session.capabilities().await.expect("CAPABILITY").has_str("MOVE"), "the server offers MOVE");
        session.select("INBOX").await.expect("SELECT");
        let _: Vec<_> = futures_util::TryStreamExt::try_collect(session.store("3", "+FLAGS (\\Deleted)").await.expect("STORE"))
            .await
            .expect("STORE");
        session.logout().await.expect("LOGOUT");

        // Over TLS (a certificate from the test CA in ca_file), with a server that has no MOVE: copy, flag,
        // and UID EXPUNGE of that one message.
        let settings = imap_settings(&app, &dovecot, ImapTls::Wrapper, "");
        let poller = poller(&app, &settings);
        let polled = poller.poll_once().await.unwrap_or_else(|e| panic!("{e:#}\n{}", dovecot.log()));
        assert_eq!(
            polled,
            PollReport { taken: 3, processed: 1, unparsed: 2, too_large: 0, duplicates: 1, more: false }
        );
        let (changes, reports) = standing(&app).await;
        assert_eq!(changes, before.0, "the report applied before changed nothing again");
        assert_eq!(reports, before.1 + 2, "the two messages that are no reports are stored as unrecognised");

        // The report moved; the junk and the message someone else flagged stay in INBOX, that one still
        // flagged and not expunged; nothing lost.
        let (counts, deleted) = dovecot.census().await;
        assert_eq!(counts.get("Tidings.Processed"), Some(&1), "{counts:?}");
        assert_eq!(counts.get("INBOX"), Some(&2), "{counts:?}");
        assert_eq!(total(&counts), 3, "{counts:?}");
        assert_eq!(deleted, 1);
        assert_eq!(dovecot.subjects("INBOX").await, [JUNK_SUBJECT, "flagged elsewhere"]);

        // A second poll does not take the junk left in place again.
        let second = poller.poll_once().await.expect("second poll");
        assert_eq!(second, PollReport::default());
        assert_eq!(standing(&app).await, (changes, reports));
        assert_eq!(dovecot.census().await, (counts, 1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_polls_the_mailbox_and_stops_cleanly() {
    let Some(dovecot) = Dovecot::start(DovecotOptions::default()).await else { return };
    let port = dovecot.port.to_string();
    let env = [
        ("TIDINGS_BOUNCES__ADDRESS", BOUNCE),
        ("TIDINGS_BOUNCES__IMAP__HOST", "127.0.0.1"),
        ("TIDINGS_BOUNCES__IMAP__PORT", port.as_str()),
        ("TIDINGS_BOUNCES__IMAP__TLS", "none"),
        ("TIDINGS_BOUNCES__IMAP__USERNAME", USER),
        ("TIDINGS_BOUNCES__IMAP__PASSWORD", PASSWORD),
        ("TIDINGS_BOUNCES__IMAP__POLL_INTERVAL", "100ms"),
    ];
    let mut app = WebApp::start(TestDatabase::sqlite().await, 2, &env).await;
    dovecot.append("INBOX", &dsn(&app.message_to(&address(1)), "failed", "5.1.1", "550 5.1.1 unknown", "daemon")).await;

    // The daemon polls on its own: wait (up to 20 s) for Dovecot to show the report moved.
    let mut attempts = 0;
    while dovecot.census().await.0.get("Tidings.Processed") != Some(&1) {
        attempts += 1;
        assert!(attempts < 200, "the daemon did not move the report: {:?}\n{}", dovecot.census().await, dovecot.log());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.status_of(&address(1)).await, "bounced");
    assert_eq!(app.status_of(&address(0)).await, "active");
    app.stop().await;
}

#[tokio::test]
async fn starttls_works_and_a_certificate_from_an_unknown_ca_is_refused() {
    let Some(dovecot) = Dovecot::start(DovecotOptions { tls: true, without_move: false }).await else { return };
    let app = app(TestDatabase::sqlite().await, 0).await;
    let settings = imap_settings(&app, &dovecot, ImapTls::Starttls, "");
    let polled = poller(&app, &settings).poll_once().await.unwrap_or_else(|e| panic!("{e:#}\n{}", dovecot.log()));
    assert_eq!(polled, PollReport::default());

    // Without the test CA the server's certificate is not trusted: no login, a clear error.
    for tls in [ImapTls::Starttls, ImapTls::Wrapper] {
        let mut settings = imap_settings(&app, &dovecot, tls, "");
        settings.bounces.imap.ca_file = String::new();
        let error = format!("{:#}", poller(&app, &settings).poll_once().await.expect_err("untrusted"));
        assert!(error.contains("TLS handshake") && error.contains("certificate"), "{tls:?}: {error}");
    }
}

#[tokio::test]
async fn a_message_larger_than_the_limit_is_left_unread_and_not_taken_again() {
    let Some(dovecot) = Dovecot::start(DovecotOptions::default()).await else { return };
    let app = app(TestDatabase::sqlite().await, 1).await;
    let report = dsn(&app.message_to(&address(0)), "failed", "5.1.1", "550 5.1.1 user unknown", "big");
    dovecot.append("INBOX", &report).await;
    let mut settings = imap_settings(&app, &dovecot, ImapTls::None, "");
    settings.bounces.max_message_bytes = report.len() - 1;
    let poller = poller(&app, &settings);

    let polled = poller.poll_once().await.expect("poll");
    assert_eq!(polled, PollReport { taken: 1, too_large: 1, ..PollReport::default() });
    assert_eq!(app.status_of(&address(0)).await, "active");
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports").await, 0);
    assert_eq!(dovecot.census().await.0.get("INBOX"), Some(&1));
    assert_eq!(poller.poll_once().await.expect("second poll"), PollReport::default());
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_that_does_not_show_it() {
    let Some(dovecot) = Dovecot::start(DovecotOptions::default()).await else { return };
    let db = TestDatabase::sqlite().await;
    let app = app(db, 0).await;
    let mut settings = imap_settings(&app, &dovecot, ImapTls::None, "");
    settings.bounces.imap.password = Some(SecretString::from("not-the-password-4711".to_owned()));
    let error = format!("{:#}", poller(&app, &settings).poll_once().await.expect_err("refused"));
    assert!(error.contains("refused the login"), "{error}");
    assert!(!error.contains("4711") && !error.contains(PASSWORD), "{error}");

    // Nothing listens on the port any more: an error naming the server, not a panic.
    let port = dovecot.port;
    drop(dovecot);
    settings.bounces.imap.password = Some(SecretString::from(PASSWORD.to_owned()));
    let error = format!("{:#}", poller(&app, &settings).poll_once().await.expect_err("no server"));
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
}
