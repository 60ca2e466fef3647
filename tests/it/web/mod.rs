//! The subscriber-facing web through real HTTP: a running `Application` on a fresh database and a free port,
//! the sample issue delivered by the engine through the SMTP test server, and the links in what arrived
//! followed as a reader (or a link scanner) would. Store-backed tests run on SQLite and PostgreSQL.
//!
//! Links in mail carry the public base URL (`https://news.example.com`); [`WebApp::local`] maps them to the
//! test server, as a reverse proxy would.

mod browser;
mod connections;
mod edges;
mod links;
mod operations;
mod process;
mod proxy;
mod subscribe;
mod versions;
mod votes;

use std::time::Duration;

use jiff::SignedDuration;
use tidings::configuration::Settings;
use tidings::domain::SubscriberEmail;
use tidings::render::CompiledIssue;
use tidings::store::Store;
use tidings::worker::run_step;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::TestDatabase;
use crate::helpers::smtp_server::{ReceivedMessage, SmtpServer};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");
/// The public base URL in every link.
const PUBLIC: &str = "https://news.example.com";
/// A phone's browser: what a reader uses.
const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                     Chrome/126.0.0.0 Mobile Safari/537.36";
/// Microsoft's link preview, as link scanners announce themselves.
pub const SCANNER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) \
                       BingPreview/1.0b";
/// The deliveries accepted by the relay (each is a message the SMTP server received).
const SENT: &str = "SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND is_test = false";
/// How long a test waits for an email before it fails.
const MAIL_WAIT: Duration = Duration::from_secs(30);

pub fn address(i: usize) -> String {
    format!("reader{i}@example.com")
}

/// A running application with the sample issue sent to `subscribers` subscribers.
pub struct WebApp {
    pub db: TestDatabase,
    pub smtp: SmtpServer,
    pub settings: Settings,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A phone browser's client that does not follow redirects.
    pub client: reqwest::Client,
    /// The sample issue, when subscribers were given.
    pub issue_id: i64,
    /// The report listener's port, when `[bounces] listen` is set.
    pub report_port: Option<u16>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl WebApp {
    /// Starts the application; with subscribers, first imports them and sends them the sample issue (the
    /// engine run step by step on the test's clock), so the issue is `sent` before the server starts.
    pub async fn start(db: TestDatabase, subscribers: usize, extra: &[(&str, &str)]) -> WebApp {
        Self::start_with(db, subscribers, extra, |_| {}).await
    }

    /// Like [`WebApp::start`], with the SMTP server prepared first by `prepare` (faults injected), so the send
    /// meets them. Retries and resends wait their backoff on the test's clock, which moves on until every
    /// delivery is settled.
    pub async fn start_with(
        db: TestDatabase,
        subscribers: usize,
        extra: &[(&str, &str)],
        prepare: impl FnOnce(&SmtpServer),
    ) -> WebApp {
        let smtp = SmtpServer::start().await;
        prepare(&smtp);
        let port = smtp.port().to_string();
        let mut env = crate::helpers::smtp_test_env(&db, &port);
        env.extend([
            ("TIDINGS_SMTP__POOL_SIZE", "2"),
            ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
            ("TIDINGS_HTTP__BASE_URL", PUBLIC),
            ("TIDINGS_HTTP__BIND", "127.0.0.1:0"),
            // Tests send bursts from one address; the rate-limit test sets its own limits.
            ("TIDINGS_HTTP__RATE_LIMIT_PER_MINUTE", "0"),
            ("TIDINGS_HTTP__SUBSCRIBE_PER_HOUR", "0"),
            // Some tests open a hundred connections at once; the cap test sets its own.
            ("TIDINGS_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "0"),
        ]);
        env.extend_from_slice(extra);
        let settings = crate::helpers::settings_of(&env);

        let mut issue_id = 0;
        if subscribers > 0 {
            issue_id = send_sample_issue(&db, &settings, &env, subscribers).await;
            let (sent,): (i64,) = match &db.store {
                Store::Sqlite(pool) => sqlx::query_as(SENT).fetch_one(pool).await,
                Store::Postgres(pool) => sqlx::query_as(SENT).fetch_one(pool).await,
            }
            .expect("count sent deliveries");
            smtp.wait_for_messages(sent as usize, MAIL_WAIT).await.expect("every subscriber got the issue");
        }
        let application =
            tidings::startup::Application::build(settings.clone(), db.clock.clone()).await.expect("build the app");
        let base = format!("http://127.0.0.1:{}", application.port());
        let report_port = application.report_port();
        let shutdown = CancellationToken::new();
        let server = Some(tokio::spawn(application.run_until_stopped(shutdown.clone())));
        let client = client(PHONE);
        WebApp { db, smtp, settings, base, client, issue_id, report_port, shutdown, server }
    }

    /// Stops the application the way SIGTERM does and waits until it has written everything queued.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("the application task").expect("the application stops cleanly");
        }
    }

    /// A public link mapped to this server.
    pub fn local(&self, url: &str) -> String {
        match url.strip_prefix(PUBLIC) {
            Some(path) => format!("{}{path}", self.base),
            None => format!("{}{url}", self.base),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.client.get(self.local(url)).send().await.expect("GET")
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.local(url)).form(form).send().await.expect("POST")
    }

    /// The one message `address` received, parsed by the caller.
    pub fn message_to(&self, address: &str) -> ReceivedMessage {
        let mut messages: Vec<ReceivedMessage> =
            self.smtp.messages().into_iter().filter(|m| m.rcpt_to.iter().any(|to| to == address)).collect();
        assert_eq!(messages.len(), 1, "messages to {address}");
        messages.remove(0)
    }

    /// The links of the issue as `address` received it.
    pub fn links_of(&self, address: &str) -> MailLinks {
        MailLinks::of(&self.message_to(address))
    }

    pub async fn query_i64(&self, sql: &str) -> i64 {
        let (value,): (i64,) = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        value
    }

    pub async fn query_text(&self, sql: &str) -> Option<String> {
        let row: Option<(Option<String>,)> = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_optional(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned())).fetch_optional(pool).await,
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        row.and_then(|(value,)| value)
    }

    /// The status of `address`'s subscription to the list.
    pub async fn status_of(&self, address: &str) -> String {
        let email = SubscriberEmail::parse(address).expect("address");
        let (_, subscriptions) = self.db.store.find_subscriber(&email).await.expect("query").expect("subscriber");
        subscriptions[0].status.clone()
    }

    /// Everything a link could change, as one comparable text: subscriptions, votes, events and confirmations.
    pub async fn snapshot(&self) -> String {
        let subscriptions = "SELECT CAST(subscriber_id AS TEXT) || ':' || status || ':' || \
                             CAST(COALESCE(unsubscribed_at, 0) AS TEXT) || ':' || CAST(COALESCE(consent_at, 0) AS TEXT) \
                             || ':' || COALESCE(confirm_ip, '-') FROM subscriptions ORDER BY subscriber_id";
        let rows: Vec<(String,)> = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(subscriptions).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(subscriptions).fetch_all(pool).await,
        }
        .expect("subscriptions");
        let votes = self.query_i64("SELECT COUNT(*) FROM votes").await;
        let events = self.query_i64("SELECT COUNT(*) FROM events").await;
        let rows: Vec<String> = rows.into_iter().map(|(row,)| row).collect();
        format!("{rows:?} votes={votes} events={events}")
    }

    /// Sends the subscribe form and waits for the confirmation email; returns its `/c/` link.
    pub async fn subscribe_and_get_confirm_link(&self, email: &str, name: &str) -> String {
        let before = self.smtp.message_count();
        let response = self.post_form("/subscribe", &[("email", email), ("name", name), ("website", "")]).await;
        assert_eq!(response.status(), 200);
        let messages = self.smtp.wait_for_messages(before + 1, MAIL_WAIT).await.expect("the confirmation email");
        let message = messages.iter().rev().find(|m| m.rcpt_to.iter().any(|to| to == email)).expect("to the address");
        let text = message.parsed().expect("MIME").body_text(0).expect("text part").into_owned();
        urls_in_text(&text).into_iter().find(|url| url.contains("/c/")).expect("a confirm link")
    }
}

impl Drop for WebApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An HTTP client with `agent` as its user agent that does not follow redirects.
pub fn client(agent: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .expect("an HTTP client")
}

/// Imports subscribers, adds the sample issue (through the binary, as an editor would), stores its links, and
/// sends it with the engine until every delivery is settled. Returns the issue's id.
async fn send_sample_issue(db: &TestDatabase, settings: &Settings, env: &[(&str, &str)], count: usize) -> i64 {
    db.import((0..count).map(|i| (address(i), format!("Reader {i}"), None)), db.clock.now()).await;
    let added = db.tidings_env(&["issue", "add", SAMPLE], env);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let issue_id = db.store.issue_by_number(db.list_id, 122).await.expect("query").expect("issue").id;
    let compiled: CompiledIssue =
        serde_json::from_str(&db.store.issue_compiled(issue_id).await.expect("compiled")).expect("json");
    assert!(db.store.save_issue_links(issue_id, compiled.links()).await.expect("links"));

    let links = settings.link_builder().expect("links");
    let engine = tidings::startup::delivery_context(settings, db.store.clone(), db.clock.clone(), links)
        .expect("delivery context");
    assert!(db.store.start_issue(issue_id, db.clock.now()).await.expect("start"));
    let shutdown = CancellationToken::new();
    for _ in 0..100 {
        let report = run_step(&engine, db.clock.now(), &shutdown).await.expect("step");
        if !report.finished.is_empty() {
            engine.close().await;
            // Readers open their mail a little later; votes sooner than 10 s after delivery are flagged.
            return issue_id;
        }
        // Retries and resends wait for their backoff: let the test's clock reach it.
        if let Some(until) = report.idle_until.filter(|until| report.settled == 0 && *until > db.clock.now()) {
            db.clock.advance(until.duration_since(db.clock.now()));
        }
    }
    panic!("the issue was not sent");
}

/// The links in one delivered issue.
#[derive(Debug, Clone)]
pub struct MailLinks {
    pub unsubscribe_header: String,
    pub unsubscribe: String,
    /// The five stars, 1 to 5.
    pub rate: Vec<String>,
    pub view: String,
    pub pixel: Option<String>,
    /// Every URL in the message: both parts and the List-Unsubscribe header.
    pub all: Vec<String>,
}

impl MailLinks {
    pub fn of(message: &ReceivedMessage) -> MailLinks {
        let parsed = message.parsed().expect("MIME");
        let header = parsed.header_raw("List-Unsubscribe").expect("List-Unsubscribe").trim();
        let unsubscribe_header = header.trim_matches(['<', '>']).to_owned();
        let html = parsed.body_html(0).expect("HTML part").into_owned();
        let text = parsed.body_text(0).expect("text part").into_owned();
        let mut all = urls_in_html(&html);
        all.extend(urls_in_text(&text));
        all.push(unsubscribe_header.clone());
        all.sort();
        all.dedup();
        let find = |needle: &str| all.iter().find(|url| url.contains(needle)).cloned();
        let mut rate: Vec<String> = all.iter().filter(|url| url.contains("/r/")).cloned().collect();
        rate.sort_by_key(|url| url.rsplit('=').next().unwrap_or_default().to_owned());
        assert_eq!(rate.len(), 5, "five star links: {rate:?}");
        MailLinks {
            unsubscribe: find("/u/").expect("an unsubscribe link"),
            unsubscribe_header,
            rate,
            view: find("/v/").expect("a view-online link"),
            pixel: find("/o/"),
            all,
        }
    }
}

/// Every `href` and `src` in an HTML document, entities decoded.
pub fn urls_in_html(html: &str) -> Vec<String> {
    let mut urls = Vec::new();
    for attribute in ["href=\"", "src=\""] {
        for piece in html.split(attribute).skip(1) {
            if let Some((url, _)) = piece.split_once('"') {
                urls.push(url.replace("&amp;", "&"));
            }
        }
    }
    urls
}

/// Every http(s) URL in plain text.
pub fn urls_in_text(text: &str) -> Vec<String> {
    text.split_whitespace()
        .filter(|word| word.starts_with("http://") || word.starts_with("https://"))
        .map(|word| word.trim_end_matches(['.', ',', ')', '>', ']']).to_owned())
        .collect()
}

/// The test clock moved past the 10 seconds within which a vote counts as a scanner's.
pub fn a_minute_later(app: &WebApp) {
    app.db.clock.advance(SignedDuration::from_mins(1));
}

/// A page's HTML with the entities the page templates escape (minijinja escapes `/` too) decoded, for
/// assertions on what a reader sees.
pub fn decoded(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The body of a response, entities decoded.
pub async fn page_text(response: reqwest::Response) -> String {
    decoded(&response.text().await.expect("body"))
}
