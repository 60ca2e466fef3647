//! `tidings serve` as a real process under attack and at the edges of its configuration: many slow connections
//! under the usual open-file limit leave it answering and sending; SIGTERM with a stalled client ends it at the
//! shutdown deadline with every queued open written and confirmation email sent; a port in use names the
//! setting that changes it; and with only `http.bind` set, links point at that address.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::{KEYS, MailLinks, PUBLIC, SAMPLE};
use crate::helpers::TestDatabase;
use crate::helpers::smtp_server::SmtpServer;

/// How long a test waits for the daemon before it fails.
const BOUND: Duration = Duration::from_secs(60);

/// `tidings serve` (through `sh`, so that `ulimit -n` can be set first) with `env` added to a clean
/// environment; returns the child and the port it printed.
fn spawn_serve(db: &TestDatabase, open_files: u32, env: &[(&str, &str)]) -> (Child, u16) {
    let script = format!("ulimit -n {open_files} && exec \"$0\" serve");
    let mut command = Command::new("sh");
    command.args(["-c", &script, env!("CARGO_BIN_EXE_tidings")]);
    let log = std::fs::File::create(db.dir.path().join("serve.log")).expect("a log file");
    command.current_dir(db.dir.path()).stdout(Stdio::piped()).stderr(log);
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().expect("start tidings serve");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout")).read_line(&mut line).expect("the serve line");
    let port = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in `{line}`"));
    (child, port)
}

fn base_env<'a>(db: &'a TestDatabase, smtp_port: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("TIDINGS_DATABASE__URL", db.url.as_str()),
        ("TIDINGS_TRANSPORT__KIND", "smtp"),
        ("TIDINGS_SMTP__HOST", "127.0.0.1"),
        ("TIDINGS_SMTP__PORT", smtp_port),
        ("TIDINGS_SMTP__TLS", "none"),
        ("TIDINGS_SMTP__POOL_SIZE", "2"),
        ("TIDINGS_DELIVERY__PER_SECOND", "0"),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("TIDINGS_HTTP__BASE_URL", PUBLIC),
        ("TIDINGS_HTTP__BIND", "127.0.0.1:0"),
        ("TIDINGS_LOG__LEVEL", "warn"),
    ]
}

/// Subscribers and the sample issue, queued to send as soon as a daemon runs.
async fn queue_issue(db: &TestDatabase, env: &[(&str, &str)], subscribers: usize) {
    let now = tidings::clock::Clock::system().now();
    db.import((0..subscribers).map(|i| (super::address(i), String::new(), None)), now).await;
    let added = db.tidings_env(&["issue", "add", SAMPLE], env);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let sent = db.tidings_env(&["issue", "send", "122"], env);
    assert_eq!(sent.code, Some(0), "{}", sent.stderr);
}

/// A connection from `from` that sent half a request head and then nothing.
async fn stalled(port: u16, from: &str) -> Option<TcpStream> {
    let socket = TcpSocket::new_v4().ok()?;
    socket.bind(format!("{from}:0").parse().ok()?).ok()?;
    let mut stream = socket.connect(([127, 0, 0, 1], port).into()).await.ok()?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a").await.ok()?;
    Some(stream)
}

fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
}

fn wait_for_exit(child: &mut Child) -> Option<std::process::ExitStatus> {
    let step = Duration::from_millis(50);
    for _ in 0..BOUND.as_millis() / step.as_millis() {
        if let Some(status) = child.try_wait().expect("poll the daemon") {
            return Some(status);
        }
        std::thread::sleep(step);
    }
    None
}

/// What the daemon wrote to stderr.
fn stderr_of(db: &TestDatabase) -> String {
    std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_slow_connections_under_a_1024_file_limit_leave_the_daemon_answering_and_sending() {
    // This test's own 1,100 sockets need room under this process's limit (raised towards its hard limit).
    let room = rlimit::increase_nofile_limit(8_192).expect("raise this process's open-file limit");
    assert!(room >= 2_048, "this test needs 2,048 open files; the hard limit allows {room}");
    let db = TestDatabase::sqlite().await;
    let smtp = SmtpServer::start().await;
    let smtp_port = smtp.port().to_string();
    let mut env = base_env(&db, &smtp_port);
    env.push(("TIDINGS_HTTP__HEADER_TIMEOUT", "3s"));
    let (mut daemon, port) = spawn_serve(&db, 1024, &env);

    // 1,100 slow clients from 22 addresses (50 each, under the per-address cap of 64): more than the file
    // limit allows, so only the cap in all keeps files free for the engine.
    let mut slow = Vec::new();
    for i in 0..1_100 {
        if let Some(stream) = stalled(port, &format!("127.0.3.{}", i / 50 + 1)).await {
            slow.push(stream);
        }
    }
    assert!(slow.len() >= 1_000, "only {} slow connections were made", slow.len());
    // While they hold the server, an issue is queued: the daemon must open what it needs and send it.
    queue_issue(&db, &env, 20).await;
    let other = reqwest::Client::builder()
        .local_address("127.0.4.1".parse::<std::net::IpAddr>().expect("address"))
        .timeout(BOUND)
        .build()
        .expect("client");
    let answered = other.get(format!("http://127.0.0.1:{port}/healthz")).send().await.expect("GET /healthz");
    assert_eq!(answered.status(), 200);
    smtp.wait_for_messages(20, BOUND).await.expect("the daemon sent the issue to all 20");

    drop(slow);
    signal(&daemon, "-TERM");
    let exit = wait_for_exit(&mut daemon).expect("the daemon exits on SIGTERM");
    let stderr = stderr_of(&db);
    assert!(exit.success(), "{exit:?}: {stderr}");
    assert!(!stderr.contains("Too many open files"), "{stderr}");
    assert!(!stderr.contains("unable to open database file"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_stalled_client_exits_at_the_shutdown_deadline_with_every_queued_open_written() {
    let db = TestDatabase::sqlite().await;
    let smtp = SmtpServer::start().await;
    let smtp_port = smtp.port().to_string();
    let mut env = base_env(&db, &smtp_port);
    // The stalled client would hold the daemon for an hour; the shutdown deadline must end it first.
    env.extend([("TIDINGS_HTTP__HEADER_TIMEOUT", "1h"), ("TIDINGS_HTTP__SHUTDOWN_TIMEOUT", "1s")]);
    queue_issue(&db, &env, 3).await;
    let (mut daemon, port) = spawn_serve(&db, 1024, &env);
    let messages = smtp.wait_for_messages(3, BOUND).await.expect("the issue went out");

    let client = reqwest::Client::new();
    for message in &messages {
        let pixel = MailLinks::of(message).pixel.expect("a pixel");
        let local = pixel.replace(PUBLIC, &format!("http://127.0.0.1:{port}"));
        for _ in 0..2 {
            assert_eq!(client.get(&local).send().await.expect("GET the pixel").status(), 200);
        }
    }
    let form = [("email", "late@example.org"), ("name", "Late"), ("website", "")];
    let subscribe = client.post(format!("http://127.0.0.1:{port}/subscribe")).header("User-Agent", "Mozilla/5.0");
    assert_eq!(subscribe.form(&form).send().await.expect("POST /subscribe").status(), 200);
    let _stalled = stalled(port, "127.0.0.1").await.expect("a stalled client");
    signal(&daemon, "-TERM");
    let exit = wait_for_exit(&mut daemon);
    let stderr = stderr_of(&db);
    assert!(exit.is_some_and(|exit| exit.success()), "the daemon did not exit cleanly: {exit:?} {stderr}");

    let sql = "SELECT COUNT(*), CAST(COALESCE(SUM(count), 0) AS BIGINT) FROM opens";
    let (people, opens): (i64, i64) = match &db.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await,
        tidings::store::Store::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await,
    }
    .expect("count opens");
    assert_eq!((people, opens), (3, 6), "every open was written");
    let confirmations = smtp.messages().iter().filter(|m| m.rcpt_to.iter().any(|to| to == "late@example.org")).count();
    assert_eq!(confirmations, 1, "the queued confirmation email was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_and_demo_with_the_port_taken_fail_naming_the_setting_that_changes_it() {
    let db = TestDatabase::sqlite().await;
    let taken = TcpListener::bind("127.0.0.1:0").await.expect("take a port");
    let bind = taken.local_addr().expect("address").to_string();
    let env = [
        ("TIDINGS_DATABASE__URL", db.url.as_str()),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("TIDINGS_HTTP__BIND", bind.as_str()),
        ("TIDINGS_OUTBOX__DIR", db.dir.path().to_str().expect("path")),
    ];
    let serve = db.tidings_env(&["serve"], &env);
    assert_eq!(serve.code, Some(1), "{}", serve.stderr);
    // The demo runs from the repository's folder; it must stop before it sends anything.
    let demo = crate::helpers::tidings_with_env(&["demo"], &env, std::path::Path::new(env!("CARGO_MANIFEST_DIR")));
    assert_eq!(demo.code, Some(1), "{}", demo.stderr);
    for output in [&serve, &demo] {
        let message = output.stderr.trim();
        assert!(message.contains(&format!("cannot listen on {bind}")), "{message}");
        assert!(message.contains("http.bind") && message.contains("TIDINGS_HTTP__BIND"), "{message}");
    }
    assert!(!demo.stdout.contains("1. imported"), "the demo imported before it found the port taken");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_only_http_bind_set_links_point_at_that_address() {
    let db = TestDatabase::sqlite().await;
    let env = [
        ("TIDINGS_DATABASE__URL", db.url.as_str()),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("TIDINGS_HTTP__BIND", "127.0.0.1:9123"),
    ];
    assert_eq!(db.tidings_env(&["issue", "add", SAMPLE], &env).code, Some(0));
    let out = db.dir.path().join("preview");
    let preview = db.tidings_env(&["issue", "preview", "122", "--out", out.to_str().expect("path")], &env);
    assert_eq!(preview.code, Some(0), "{}", preview.stderr);
    let html = std::fs::read_to_string(out.join("122.html")).expect("the preview");
    assert!(html.contains("http://127.0.0.1:9123/"), "links use the bound port");
    assert!(!html.contains("127.0.0.1:8080"), "no link to the default port");

    let settings = tidings::configuration::load_layers(
        None,
        &[("TIDINGS_HTTP__BIND".to_owned(), "0.0.0.0:9124".to_owned())].into_iter().collect(),
    )
    .expect("settings");
    assert_eq!(settings.base_url(), "http://127.0.0.1:9124");
}
