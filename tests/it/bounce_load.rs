//! The report listener under load and abuse: a real `tidings serve` killed with SIGKILL while hundreds of
//! clients deliver reports (each client resends what it got no 250 for, as an MTA does), a flood of ten thousand
//! invalid reports beside one valid report, and `bounce ingest` given a truncated and a 50 MB message. Every
//! check counts what the database holds afterwards.

use std::collections::HashSet;
use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tidings::store::Store;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::mta::free_port;
use crate::helpers::report_client::dot_stuffed;
use crate::helpers::smtp_server::ReceivedMessage;
use crate::web::{WebApp, address};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const BOUNCE: &str = "bounces@bounces.example.com";
const COMPLAINTS: &str = "fbl@bounces.example.com";

async fn query_i64(store: &Store, sql: &str) -> i64 {
    let (value,): (i64,) = match store {
        Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
        Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
    value
}

/// A hard bounce (550 5.1.1) about `original`, as Postfix writes one.
pub fn hard_dsn(original: &ReceivedMessage, id: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(&original.data).into_owned();
    let headers = text.split("\r\n\r\n").next().unwrap_or_default();
    format!(
        "From: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\nTo: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}@mx.example.org>\r\n\
         Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B1\"\r\n\r\n\
         --B1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nYour message could not be delivered.\r\n\r\n\
         --B1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; {rcpt}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
         Diagnostic-Code: smtp; 550 5.1.1 No such user\r\n\r\n\
         --B1\r\nContent-Type: text/rfc822-headers\r\n\r\n{headers}\r\n\r\n--B1--\r\n",
        to = original.mail_from,
        rcpt = original.rcpt_to[0],
    )
    .into_bytes()
}

/// An SMTP client that, like an MTA, treats every failure as "try again later" instead of panicking.
struct Sender {
    reader: BufReader<TcpStream>,
}

impl Sender {
    async fn connect(port: u16) -> std::io::Result<Sender> {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut sender = Sender { reader: BufReader::new(stream) };
        let greeting = sender.reply().await?;
        if !greeting.starts_with("220") {
            return Err(std::io::Error::other(greeting));
        }
        let hello = sender.command("EHLO mta.example.net").await?;
        if !hello.starts_with("250") {
            return Err(std::io::Error::other(hello));
        }
        Ok(sender)
    }

    async fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let read = tokio::time::timeout(Duration::from_secs(30), self.reader.read_line(&mut line))
                .await
                .map_err(|_| std::io::Error::other("no reply in time"))??;
            if read == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(all);
            }
        }
    }

    async fn command(&mut self, line: &str) -> std::io::Result<String> {
        self.reader.get_mut().write_all(format!("{line}\r\n").as_bytes()).await?;
        self.reply().await
    }

    /// One transaction; the reply to RCPT when it refused, else the reply to the final dot.
    async fn deliver(&mut self, recipient: &str, stuffed: &[u8]) -> std::io::Result<String> {
        let mail = self.command("MAIL FROM:<>").await?;
        if !mail.starts_with("250") {
            return Ok(mail);
        }
        let rcpt = self.command(&format!("RCPT TO:<{recipient}>")).await?;
        if !rcpt.starts_with("250") {
            self.command("RSET").await?;
            return Ok(rcpt);
        }
        let data = self.command("DATA").await?;
        if !data.starts_with("354") {
            return Ok(data);
        }
        self.reader.get_mut().write_all(stuffed).await?;
        self.command(".").await
    }
}

fn spawn_daemon(db: &TestDatabase, env: &[(&str, String)]) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.arg("serve").current_dir(db.dir.path()).stdout(Stdio::null()).stderr(Stdio::null());
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command.spawn().expect("start tidings serve")
}

both_backends! {
    async fn reports_acknowledged_around_a_kill_9_are_stored_and_applied_exactly_once_after_the_restart(db) {
        const READERS: usize = 400;
        const CLIENTS: usize = 200;
        let app = WebApp::start(db, READERS, &[("TIDINGS_BOUNCES__ADDRESS", BOUNCE)]).await;
        let reports: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
            app.smtp
                .messages()
                .iter()
                .enumerate()
                .map(|(i, m)| (m.mail_from.clone(), dot_stuffed(&hard_dsn(m, &format!("kill{i}")))))
                .collect(),
        );
        assert_eq!(reports.len(), READERS);
        let port = free_port();
        let env = [
            ("TIDINGS_DATABASE__URL", app.db.url.clone()),
            ("TIDINGS_LINKS__SIGNING_KEYS", KEYS.to_owned()),
            ("TIDINGS_HTTP__BIND", "127.0.0.1:0".to_owned()),
            ("TIDINGS_BOUNCES__ADDRESS", BOUNCE.to_owned()),
            ("TIDINGS_BOUNCES__LISTEN", format!("127.0.0.1:{port}")),
            ("TIDINGS_BOUNCES__MAX_CONNECTIONS", "1000".to_owned()),
            ("TIDINGS_BOUNCES__MAX_CONNECTIONS_PER_CLIENT", "1000".to_owned()),
            ("TIDINGS_BOUNCES__PER_CLIENT_PER_MINUTE", "1000000".to_owned()),
            ("TIDINGS_LOG__LEVEL", "warn".to_owned()),
        ];
        let mut daemon = spawn_daemon(&app.db, &env);

        // Every client takes the next report from the queue, and puts it back when it got no 250.
        let queue: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new((0..READERS).collect()));
        let acknowledged: Arc<Mutex<HashSet<usize>>> = Arc::default();
        let resent = Arc::new(AtomicUsize::new(0));
        let mut clients = tokio::task::JoinSet::new();
        for _ in 0..CLIENTS {
            let (queue, acknowledged, reports, resent) =
                (queue.clone(), acknowledged.clone(), reports.clone(), resent.clone());
            clients.spawn(async move {
                let mut sender: Option<Sender> = None;
                while acknowledged.lock().unwrap().len() < READERS {
                    let Some(next) = queue.lock().unwrap().pop() else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    if sender.is_none() {
                        sender = Sender::connect(port).await.ok();
                    }
                    let reply = match sender.as_mut() {
                        Some(s) => s.deliver(&reports[next].0, &reports[next].1).await,
                        None => Err(std::io::ErrorKind::ConnectionRefused.into()),
                    };
                    match reply {
                        Ok(reply) if reply.starts_with("250") => {
                            acknowledged.lock().unwrap().insert(next);
                        }
                        other => {
                            // No 250: the MTA keeps the report and tries again (a new connection after an error).
                            if other.is_err() {
                                sender = None;
                            }
                            resent.fetch_add(1, Ordering::Relaxed);
                            queue.lock().unwrap().push(next);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    }
                }
            });
        }
        // Kill the daemon without warning once a third of the reports are acknowledged, then start it again.
        for _ in 0..1200 {
            if acknowledged.lock().unwrap().len() >= READERS / 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let before_kill = acknowledged.lock().unwrap().len();
        assert!(before_kill < READERS, "the daemon was killed only after every report was in");
        Command::new("kill").args(["-KILL", &daemon.id().to_string()]).status().expect("kill");
        daemon.wait().expect("reap the daemon");
        daemon = spawn_daemon(&app.db, &env);
        let finished =
            tokio::time::timeout(Duration::from_secs(180), async { while clients.join_next().await.is_some() {} }).await;
        Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().expect("kill");
        daemon.wait().expect("reap the daemon");
        assert!(finished.is_ok(), "{} of {READERS} reports acknowledged in time", acknowledged.lock().unwrap().len());
        eprintln!(
            "{before_kill} reports acknowledged before the kill, {} attempts without a 250 were resent",
            resent.load(Ordering::Relaxed)
        );

        let store = &app.db.store;
        assert_eq!(query_i64(store, "SELECT COUNT(*) FROM bounce_reports").await, READERS as i64, "each report once");
        assert_eq!(query_i64(store, "SELECT COUNT(DISTINCT fingerprint) FROM bounce_reports").await, READERS as i64);
        assert_eq!(
            query_i64(store, "SELECT COUNT(*) FROM bounce_reports WHERE kind = 'hard' AND subscriber_id IS NOT NULL").await,
            READERS as i64,
            "every report matched its subscriber"
        );
        assert_eq!(query_i64(store, "SELECT COUNT(*) FROM subscriptions WHERE status = 'bounced'").await, READERS as i64);
        assert_eq!(query_i64(store, "SELECT COUNT(*) FROM suppressions").await, READERS as i64);
        // The effect of each report happened once: one bounce event per subscriber.
        assert_eq!(query_i64(store, "SELECT COUNT(*) FROM events WHERE kind = 'bounce'").await, READERS as i64);
        assert_eq!(
            query_i64(store, "SELECT COUNT(DISTINCT subscriber_id) FROM events WHERE kind = 'bounce'").await,
            READERS as i64
        );
    }
}

/// A return path of ours with its token altered in one character: a forgery.
fn forged(return_path: &str, i: usize) -> String {
    let (local, domain) = return_path.split_once('@').expect("an address");
    let mut chars: Vec<char> = local.chars().collect();
    let at = chars.len() - 1 - (i % 20);
    chars[at] = if chars[at] == 'a' { 'b' } else { 'a' };
    format!("{}@{domain}", chars.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_ten_thousand_invalid_reports_changes_nothing_while_a_valid_report_still_gets_250() {
    const FLOOD: usize = 10_000;
    const CONNECTIONS: usize = 8;
    let db = TestDatabase::sqlite().await;
    let env = [
        ("TIDINGS_BOUNCES__ADDRESS", BOUNCE),
        ("TIDINGS_BOUNCES__COMPLAINT_ADDRESS", COMPLAINTS),
        ("TIDINGS_BOUNCES__LISTEN", "127.0.0.1:0"),
        ("TIDINGS_BOUNCES__MAX_CONNECTIONS_PER_CLIENT", "32"),
        ("TIDINGS_BOUNCES__PER_CLIENT_PER_MINUTE", "1000000"),
    ];
    let app = WebApp::start(db, 3, &env).await;
    let port = app.report_port.expect("the listener runs");
    let before = app.snapshot().await;
    let suppressions = query_i64(&app.db.store, "SELECT COUNT(*) FROM suppressions").await;
    let original = app.message_to(&address(0));
    let other = app.message_to(&address(1));

    let refused = Arc::new(AtomicUsize::new(0));
    let stored = Arc::new(AtomicUsize::new(0));
    let cut_off = Arc::new(AtomicUsize::new(0));
    let mut flood = tokio::task::JoinSet::new();
    for connection in 0..CONNECTIONS {
        let (refused, stored, cut_off, other) = (refused.clone(), stored.clone(), cut_off.clone(), other.clone());
        flood.spawn(async move {
            let mut sender = Sender::connect(port).await.expect("connect");
            for n in (connection..FLOOD).step_by(CONNECTIONS) {
                let (recipient, message) = match n % 3 {
                    // A token nobody signed.
                    0 => (format!("bounces+{:032x}@bounces.example.com", rand::random::<u128>()), Vec::new()),
                    // One of ours, altered.
                    1 => (forged(&other.mail_from, n), Vec::new()),
                    // The complaint address takes anything; a report whose trace and return path are forged
                    // names nobody.
                    _ => {
                        let mut fake = other.clone();
                        fake.mail_from = forged(&other.mail_from, n);
                        let text = String::from_utf8_lossy(&hard_dsn(&fake, &format!("flood{n}"))).into_owned();
                        let text = text
                            .replace("X-Tidings-Ref: ", "X-Tidings-Ref: x")
                            .replace("Message-ID: <", "Message-ID: <x")
                            .replace("Message-Id: <", "Message-Id: <x");
                        (COMPLAINTS.to_owned(), dot_stuffed(text.as_bytes()))
                    }
                };
                // The listener closes a session past its error limit (ten refusals): a flooder must reconnect.
                let mut reply = String::new();
                for _ in 0..3 {
                    match sender.deliver(&recipient, &message).await {
                        Ok(answer) if !answer.starts_with("421") => {
                            reply = answer;
                            break;
                        }
                        _ => {
                            cut_off.fetch_add(1, Ordering::Relaxed);
                            sender = Sender::connect(port).await.expect("the listener takes the client again");
                        }
                    }
                }
                if reply.starts_with("550 5.1.1") {
                    refused.fetch_add(1, Ordering::Relaxed);
                } else if reply.starts_with("250") {
                    stored.fetch_add(1, Ordering::Relaxed);
                } else {
                    panic!("unexpected reply to report {n}: {reply}");
                }
            }
        });
    }
    // While the flood runs, a real report from another connection is taken.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut honest = Sender::connect(port).await.expect("the listener takes another client during the flood");
    let reply = honest.deliver(&original.mail_from, &dot_stuffed(&hard_dsn(&original, "honest"))).await.expect("reply");
    assert!(reply.starts_with("250"), "{reply}");
    let answered = refused.load(Ordering::Relaxed) + stored.load(Ordering::Relaxed);
    while let Some(done) = flood.join_next().await {
        done.expect("a flood connection");
    }
    assert!(answered < FLOOD, "the valid report was taken while the flood was still running");

    assert_eq!(refused.load(Ordering::Relaxed) + stored.load(Ordering::Relaxed), FLOOD);
    assert_eq!(refused.load(Ordering::Relaxed), FLOOD - FLOOD / 3, "every forged or unknown return path got 550");
    // 6,667 refusals over 8 connections: each session is closed after its eleventh (the last one or two of each
    // connection may end before the client notices).
    assert!(
        cut_off.load(Ordering::Relaxed) >= (FLOOD - FLOOD / 3) / 11 - 2 * CONNECTIONS,
        "flooding sessions were closed past the error limit: {} times",
        cut_off.load(Ordering::Relaxed)
    );
    assert_eq!(app.status_of(&address(0)).await, "bounced", "the valid report was applied");
    for i in 1..3 {
        assert_eq!(app.status_of(&address(i)).await, "active");
    }
    assert_eq!(query_i64(&app.db.store, "SELECT COUNT(*) FROM suppressions").await, suppressions + 1);
    assert_eq!(query_i64(&app.db.store, "SELECT COUNT(*) FROM events WHERE kind = 'bounce'").await, 1);
    let matched = query_i64(&app.db.store, "SELECT COUNT(*) FROM bounce_reports WHERE subscriber_id IS NOT NULL").await;
    assert_eq!(matched, 1, "only the valid report names a subscriber");
    let kept = query_i64(&app.db.store, "SELECT COUNT(*) FROM bounce_reports").await;
    assert_eq!(kept as usize, 1 + FLOOD / 3, "the complaint-address reports are kept (and counted), unmatched");
    assert_ne!(before, app.snapshot().await, "the valid report changed its subscriber");
}

/// Runs `tidings bounce ingest` with `message` on standard input (written from a thread, so a child that
/// stops reading cannot block the test).
fn ingest(db: &TestDatabase, message: Vec<u8>) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(["bounce", "ingest"]).current_dir(db.dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command
        .env("TIDINGS_DATABASE__URL", &db.url)
        .env("TIDINGS_BOUNCES__ADDRESS", BOUNCE)
        .env("TIDINGS_LINKS__SIGNING_KEYS", KEYS)
        .env("TIDINGS_LOG__LEVEL", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run bounce ingest");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // A refused message is not read to its end: a broken pipe here is the expected outcome.
        let _ = stdin.write_all(&message);
    });
    let output = child.wait_with_output().expect("wait for bounce ingest");
    writer.join().expect("the writer thread");
    (output.status.code(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounce_ingest_keeps_a_truncated_report_unapplied_and_refuses_a_50_mb_message_with_65() {
    let db = TestDatabase::sqlite().await;
    let app = WebApp::start(db, 2, &[("TIDINGS_BOUNCES__ADDRESS", BOUNCE)]).await;
    let original = app.message_to(&address(0));
    let before = app.snapshot().await;

    // The report breaks off inside its delivery-status part: no Action, no Status, no closing boundary.
    let whole = hard_dsn(&original, "cut");
    let text = String::from_utf8_lossy(&whole);
    let cut = text.find("Action: failed").expect("the status part");
    let (code, stderr) = ingest(&app.db, text[..cut + 4].as_bytes().to_vec());
    assert_eq!(code, Some(0), "a truncated report is kept: {stderr}");
    assert_eq!(query_i64(&app.db.store, "SELECT COUNT(*) FROM bounce_reports").await, 1);
    let listed = app.db.tidings(&["bounce", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).expect("JSON");
    eprintln!("truncated report stored as: {:#}", rows[0]);
    assert!(
        rows[0]["effect"].as_str().is_some_and(|e| e.starts_with("nothing")),
        "a report that says nothing valid changes nothing: {:#}",
        rows[0]
    );
    assert_eq!(app.snapshot().await, before, "nothing changed");

    // 50 MB: refused with EX_DATAERR (65) before anything is stored.
    let mut huge = hard_dsn(&original, "huge");
    huge.extend(std::iter::repeat_n(b'x', 50 * 1024 * 1024));
    let (code, stderr) = ingest(&app.db, huge);
    assert_eq!(code, Some(65), "{stderr}");
    assert!(stderr.contains("max_message_bytes"), "the error names the limit: {stderr}");
    assert_eq!(query_i64(&app.db.store, "SELECT COUNT(*) FROM bounce_reports").await, 1);
    assert_eq!(app.snapshot().await, before, "nothing changed");
}
