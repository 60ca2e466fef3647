//! Stats and reports: an issue's history built through the real paths (sent through the SMTP test server with
//! bounces, a refusal, retries and a connection lost after the final dot; opened, rated and unsubscribed through
//! HTTP on the test's clock; a test send on the side), then every figure of `tidings stats N --json` checked
//! against that history on both backends, and the HTML report checked in headless Chromium against the JSON.

use jiff::{SignedDuration, Timestamp};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tidings::store::Store;

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::browser::{Browser, artifacts_dir};
use crate::helpers::smtp_server::{Action, Fault, Trigger, Verb};
use crate::web::{SCANNER, WebApp, address, client};

/// Twelve readers, 0 to 11. What the relay does to them: 1 and 2 do not exist, 3's mailbox is disabled (three
/// hard bounces), 4's message is refused for its content (failed), 5 and 6 are greylisted once (retried), and
/// the first message to reach the end of DATA loses its connection (ambiguous, sent again).
const READERS: usize = 12;

/// The history as the tests expect to find it.
pub(crate) struct History {
    pub(crate) app: WebApp,
    /// When sending began.
    pub(crate) started: Timestamp,
}

fn is(to: &str, readers: &[usize]) -> bool {
    readers.iter().any(|i| to == address(*i))
}

impl History {
    /// When each delivered message was accepted by the relay, in milliseconds.
    async fn sent_times(&self) -> Vec<i64> {
        let sql = "SELECT sent_at FROM deliveries WHERE status = 'sent' AND is_test = false";
        let rows: Vec<(i64,)> = match &self.app.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        }
        .expect("sent times");
        rows.into_iter().map(|(at,)| at).collect()
    }
}

/// Moves the test's clock to `offset` after the start (never backwards).
fn at(history: &History, offset: SignedDuration) {
    let clock = &history.app.db.clock;
    let target = history.started.checked_add(offset).expect("time");
    assert!(target >= clock.now(), "the history runs forward");
    clock.advance(target.duration_since(clock.now()));
}

async fn open(history: &History, reader: usize) {
    let pixel = history.app.links_of(&address(reader)).pixel.expect("an open pixel");
    assert_eq!(history.app.get(&pixel).await.status(), 200);
}

async fn vote(history: &History, reader: usize, stars: usize) {
    let url = history.app.links_of(&address(reader)).rate[stars - 1].clone();
    assert_eq!(history.app.post_form(&url, &[("stars", &stars.to_string())]).await.status(), 200);
}

pub(crate) async fn build_history(db: TestDatabase) -> History {
    let app = WebApp::start_with(db, READERS, &[], |smtp| {
        let no_such_user = Trigger::rcpt_matching(|to| is(to, &[1, 2]));
        smtp.inject(Fault::new(no_such_user, Action::reply(550, "5.1.1 no such user")));
        smtp.inject(Fault::new(
            Trigger::rcpt_matching(|to| is(to, &[3])),
            Action::reply(550, "5.2.1 mailbox disabled"),
        ));
        smtp.inject(Fault::new(Trigger::rcpt_matching(|to| is(to, &[4])), Action::reply(554, "5.6.0 content refused")));
        let greylisted = Trigger::rcpt_matching(|to| is(to, &[5, 6]));
        smtp.inject(Fault::new(greylisted, Action::reply(451, "4.7.1 greylisted, try again")).times(2));
        smtp.inject(Fault::new(Trigger::Command(Verb::DataEnd), Action::Drop).times(1));
    })
    .await;
    let issue = app.db.store.issue_by_id(app.issue_id).await.expect("query").expect("issue");
    let started = tidings::clock::from_millis(issue.started_at.expect("the issue started"));
    let history = History { app, started };

    // Ten minutes after the start readers open and rate; a link scanner "rates" too.
    at(&history, SignedDuration::from_mins(10));
    open(&history, 0).await;
    for (reader, stars) in [(0, 5), (9, 4), (10, 4), (11, 2), (5, 1)] {
        vote(&history, reader, stars).await;
    }
    let scanner = history.app.local(&history.app.links_of(&address(6)).rate[0]);
    let flagged = client(SCANNER).post(scanner).form(&[("stars", "1")]).send().await.expect("POST");
    assert_eq!(flagged.status(), 200);

    // Ninety minutes in: reader 7 opens, then leaves with the one-click header; reader 5 changes their mind.
    at(&history, SignedDuration::from_mins(90));
    open(&history, 7).await;
    let one_click = history.app.links_of(&address(7)).unsubscribe_header;
    let response = history
        .app
        .client
        .post(history.app.local(&one_click))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    vote(&history, 5, 3).await;

    // Reader 0 opens again (not a new unique open); the next day reader 8 leaves through the page.
    at(&history, SignedDuration::from_mins(150));
    open(&history, 0).await;
    at(&history, SignedDuration::from_hours(26));
    let page = history.app.links_of(&address(8)).unsubscribe;
    assert_eq!(history.app.post_form(&page, &[]).await.status(), 200);
    assert_eq!(history.app.status_of(&address(8)).await, "unsubscribed");

    // Late opens: one in hour 30, one after the first 72 hours.
    at(&history, SignedDuration::from_mins(30 * 60 + 15));
    open(&history, 9).await;
    at(&history, SignedDuration::from_hours(80));
    open(&history, 10).await;

    // The editor sends a test: it is recorded, and never counted.
    let port = history.app.smtp.port().to_string();
    let test = history.app.db.tidings_env(
        &["issue", "test-send", "122", "--to", "editor@example.net"],
        &[
            ("TIDINGS_TRANSPORT__KIND", "smtp"),
            ("TIDINGS_SMTP__HOST", "127.0.0.1"),
            ("TIDINGS_SMTP__PORT", &port),
            ("TIDINGS_SMTP__TLS", "none"),
        ],
    );
    assert_eq!(test.code, Some(0), "{}", test.stderr);
    assert_eq!(history.app.query_i64("SELECT COUNT(*) FROM deliveries WHERE is_test = true").await, 1);
    history
}

/// `tidings stats ARGS --json`, parsed.
pub(crate) fn stats_json(db: &TestDatabase, args: &[&str]) -> Value {
    let mut all = vec!["stats"];
    all.extend_from_slice(args);
    all.push("--json");
    let run = db.tidings(&all);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn hourly_opens() -> Vec<i64> {
    let mut hours = vec![0; 72];
    hours[0] = 1; // reader 0, ten minutes in
    hours[1] = 1; // reader 7, ninety minutes in
    hours[30] = 1; // reader 9; reader 10 came after 72 hours
    hours
}

both_backends! {
    async fn every_figure_of_stats_n_matches_the_history_built_through_smtp_and_http(db) {
        let mut history = build_history(db).await;
        // Stopping the server writes the opens it had queued, as SIGTERM does.
        history.app.stop().await;
        let db = &history.app.db;
        let value = stats_json(db, &["122"]);
        let started = history.started.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();

        assert_eq!(value["number"], 122);
        assert_eq!(value["list"], "weekly");
        assert_eq!(value["subject"], "So, what's up in China? Issue 122");
        assert_eq!(value["status"], "sent");
        assert_eq!(value["started_at"], started.as_str());
        assert!(value["finished_at"].is_string());
        // Twelve readers; the test send is not among them.
        assert_eq!(value["total"], 12);
        assert_eq!(value["delivered"], 8);
        assert_eq!(value["failed"], 1);
        assert_eq!(value["bounced"], 3);
        assert_eq!(value["suppressed"], 0);
        assert_eq!(value["pending"], 0);
        assert_eq!(value["ambiguous"], 1, "the message whose connection was lost after the final dot");
        assert_eq!(value["delivery_rate"], 0.6667);
        assert_eq!(value["deliveries_by_status"]["sent"], 8);
        assert_eq!(value["deliveries_by_status"]["ever_ambiguous"], 1);

        // Two greylisted deliveries and the ambiguous one took a second attempt.
        assert_eq!(value["retries"], json!({
            "retried_deliveries": 3,
            "retry_attempts": 3,
            "by_attempts": [{ "attempts": 1, "deliveries": 9 }, { "attempts": 2, "deliveries": 3 }],
        }));
        assert_eq!(value["bounce_reasons"], json!([
            { "reason": "550 5.1.1 no such user", "count": 2 },
            { "reason": "550 5.2.1 mailbox disabled", "count": 1 },
        ]));
        assert_eq!(value["failure_reasons"], json!([{ "reason": "554 5.6.0 content refused", "count": 1 }]));
        let delivered = &value["delivered_over_time"];
        assert_eq!(delivered["from"], started.as_str());
        assert_eq!(delivered["bucket_minutes"], 1, "the send took minutes");
        // Five messages were accepted at the start; the three others after a jittered backoff. When each was
        // accepted is on record, per minute:
        let mut minutes: Vec<i64> = Vec::new();
        for sent_at in history.sent_times().await {
            let minute = usize::try_from((sent_at - history.started.as_millisecond()) / 60_000).expect("after the start");
            minutes.resize(minutes.len().max(minute + 1), 0);
            minutes[minute] += 1;
        }
        assert_eq!(delivered["counts"], json!(minutes));
        assert_eq!(minutes.iter().sum::<i64>(), 8);
        assert!(minutes[0] >= 5, "{minutes:?}");

        assert_eq!(value["unsubscribed_via_issue"], 2);
        assert_eq!(value["unsubscribes_per_day"]["counts"], json!([1, 1]));
        assert_eq!(value["unsubscribes_per_day"]["bucket_minutes"], 1440);

        assert_eq!(value["unique_opens_unverified"], 4);
        assert_eq!(value["opens_unverified"]["unique"], 4);
        assert_eq!(value["opens_unverified"]["total"], 5);
        assert_eq!(value["opens_unverified"]["first_72_hours"]["bucket_minutes"], 60);
        assert_eq!(value["opens_unverified"]["first_72_hours"]["counts"], json!(hourly_opens()));

        // 5, 4, 4, 2 and (changed from 1) 3 stars; the scanner's vote is apart.
        assert_eq!(value["rating_average"], 3.6);
        assert_eq!(value["votes"], 5);
        assert_eq!(value["flagged_votes"], 1);
        assert_eq!(value["rating"], json!({
            "average": 3.6,
            "votes": 5,
            "out_of_delivered": 8,
            "distribution": { "1": 0, "2": 1, "3": 1, "4": 2, "5": 1 },
            "flagged_votes": 1,
            "flagged_distribution": { "1": 1, "2": 0, "3": 0, "4": 0, "5": 0 },
        }));

        // The overview has the same figures on one line per sent issue; a draft is not a line.
        let draft = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md"))
            .expect("sample")
            .replace("number = 122", "number = 123")
            .replace("Issue 122", "Issue 123");
        let file = db.write_file("123.md", draft.as_bytes());
        assert_eq!(db.tidings(&["issue", "add", file.to_str().expect("path")]).code, Some(0));
        let overview = stats_json(db, &[]);
        let lines = overview.as_array().expect("an array");
        assert_eq!(lines.len(), 1, "{overview}");
        for key in lines[0].as_object().expect("an object").keys() {
            assert_eq!(lines[0][key], value[key], "{key}");
        }
        assert_eq!(
            lines[0].as_object().expect("object").len(),
            25,
            "the keys of a line, \"cancelled\", \"complaints\", \"complaint_rate\", \"reported_later\" and the three \
             rates of the delivered included"
        );
    }

    async fn the_terminal_views_show_the_figures_with_a_star_histogram_and_unverified_opens(db) {
        let mut history = build_history(db).await;
        history.app.stop().await;
        let db = &history.app.db;

        let overview = db.tidings(&["stats"]);
        assert_eq!(overview.code, Some(0), "{}", overview.stderr);
        let line = overview.stdout.lines().find(|l| l.trim_start().starts_with("122")).expect("a line for 122");
        let columns: Vec<&str> = line.split_whitespace().collect();
        // ISSUE SENT DELIVERED FAILED BOUNCED AMBIG UNSUBS COMPLAINTS OPENS* RATING...
        assert_eq!(&columns[..9], ["122", "2026-12-07", "8", "1", "3", "1", "2", "0", "4"], "{}", overview.stdout);
        assert!(line.contains("3.6/5 (5 votes)") && line.ends_with("So, what's up in China? Issue 122"), "{line}");
        assert!(overview.stdout.contains("unique opens (unverified"), "{}", overview.stdout);

        let detail = db.tidings(&["stats", "122"]);
        assert_eq!(detail.code, Some(0), "{}", detail.stderr);
        let text = detail.stdout;
        assert!(text.contains("opens (unverified: image prefetching inflates them)"), "{text}");
        assert!(text.contains("unique opens 4, pixel loads 5"), "{text}");
        assert!(text.contains("rating 3.6/5 (5 votes)"), "{text}");
        assert!(text.contains("flagged votes (looked automated, left out): 1 (1★ 1)"), "{text}");
        assert!(text.contains("550 5.1.1 no such user"), "{text}");
        let star = |n: usize| text.lines().find(|l| l.trim_start().starts_with(&format!("{n} ★"))).expect("a star row").to_owned();
        // Bars are proportional: 4 stars (2 votes) is the longest, twice 5 stars (1 vote); 1 star has none.
        let cells = |row: &str| row.chars().filter(|c| ('\u{2580}'..='\u{259f}').contains(c)).count();
        assert_eq!(cells(&star(4)), 30);
        assert_eq!(cells(&star(5)), 15);
        assert_eq!(cells(&star(1)), 0);
        assert!(star(4).ends_with("2   40.0 %"), "{}", star(4));
        assert!(!text.contains('\u{1b}'), "no colour codes outside a terminal");

        let unknown = db.tidings(&["stats", "999"]);
        assert_eq!(unknown.code, Some(1));
        assert!(unknown.stderr.contains("there is no issue 999 on `weekly`"), "{}", unknown.stderr);
        let report = db.tidings(&["report", "999", "--out", "r.html"]);
        assert_eq!(report.code, Some(1));
        assert!(report.stderr.contains("there is no issue 999"), "{}", report.stderr);
    }
}

/// What the report page shows, read inside the browser.
const READ_REPORT: &str = r#"(function () {
  function chart(name) {
    return Array.prototype.map.call(document.querySelectorAll('figure[data-chart="' + name + '"] rect.bar'),
      function (r) { return +r.getAttribute('data-value'); });
  }
  function reasons(name) {
    return Array.prototype.map.call(document.querySelectorAll('table[data-table="' + name + '"] tr[data-reason]'),
      function (r) { return { reason: r.getAttribute('data-reason'), count: +r.getAttribute('data-count') }; });
  }
  var figures = {};
  document.querySelectorAll('[data-figure]').forEach(function (f) {
    figures[f.getAttribute('data-figure')] = f.getAttribute('data-value');
  });
  var titles = document.querySelectorAll('svg title').length;
  return { figures: figures, delivered: chart('delivered_over_time'), opens: chart('opens_first_72_hours'),
    stars: chart('stars'), unsubscribes: chart('unsubscribes_per_day'), bounces: reasons('bounce_reasons'),
    failures: reasons('failure_reasons'), h1: document.querySelector('h1').textContent, titles: titles,
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth,
    resources: performance.getEntriesByType('resource').length, scripts: document.scripts.length };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_is_self_contained_fits_a_phone_and_a_desktop_and_its_charts_match_stats_json() {
    let Some(browser) = Browser::launch().await else { return };
    let mut history = build_history(TestDatabase::sqlite().await).await;
    history.app.stop().await;
    let db = &history.app.db;
    let expected = stats_json(db, &["122"]);
    let path = db.dir.path().join("report-122.html");
    let run = db.tidings(&["report", "122", "--out", path.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout.trim(), path.to_str().expect("path"));

    let html = std::fs::read_to_string(&path).expect("the report");
    assert!(!html.contains("http://") && !html.contains("https://"), "no URL at all in the file");
    assert!(!html.contains("<script") && !html.contains("<img") && !html.contains("<link"), "nothing to load");
    assert!(html.contains("@media print") && html.contains("prefers-color-scheme: dark"));
    std::fs::copy(&path, artifacts_dir().join("report-122.html")).expect("keep the report");

    let url = format!("file://{}", path.display());
    for width in [375u32, 1200] {
        let page = browser.page(width, 900).await;
        let load = page.goto_watching(&url).await;
        assert_eq!(load.requests, vec![url.clone()], "the file is the only request");
        assert!(load.errors.is_empty(), "errors: {:?}", load.errors);
        let shown = page.eval(READ_REPORT).await;
        assert_eq!(shown["resources"], 0);
        assert_eq!(shown["scripts"], 0);
        assert_eq!(shown["innerWidth"], width);
        assert!(shown["scrollWidth"].as_f64() <= shown["innerWidth"].as_f64(), "no horizontal scrolling: {shown}");
        assert_eq!(shown["h1"], "So, what's up in China? Issue 122");

        let figures = &shown["figures"];
        assert_eq!(figures["delivered"], expected["delivered"].to_string());
        assert_eq!(figures["bounced"], expected["bounced"].to_string());
        assert_eq!(figures["unique_opens"], expected["unique_opens_unverified"].to_string());
        assert_eq!(figures["unsubscribed"], expected["unsubscribed_via_issue"].to_string());
        for (figure, key) in [("delivery_rate", "delivery_rate"), ("rating_average", "rating_average")] {
            let shown: f64 = figures[figure].as_str().expect("a figure").parse().expect("a number");
            assert_eq!(Some(shown), expected[key].as_f64(), "{figure}");
        }

        assert_eq!(shown["delivered"], expected["delivered_over_time"]["counts"]);
        assert_eq!(shown["opens"], expected["opens_unverified"]["first_72_hours"]["counts"]);
        assert_eq!(shown["unsubscribes"], expected["unsubscribes_per_day"]["counts"]);
        let distribution = &expected["rating"]["distribution"];
        let stars: Vec<Value> = (1..=5).rev().map(|s| distribution[s.to_string()].clone()).collect();
        assert_eq!(shown["stars"], json!(stars), "5 stars first");
        assert_eq!(shown["bounces"], expected["bounce_reasons"]);
        assert_eq!(shown["failures"], expected["failure_reasons"]);
        // Every bar has a tooltip title, and every chart a title of its own.
        let series = |v: &Value| v.as_array().map_or(0, Vec::len) as u64;
        let bars = series(&shown["delivered"]) + 72 + 5 + series(&shown["unsubscribes"]);
        assert_eq!(shown["titles"].as_u64(), Some(bars + 4), "{shown}");
        page.screenshot(&artifacts_dir().join(format!("report-122-{width}px.png"))).await;
    }

    // Dark mode: a dark page with light text (kept as an artifact to look at).
    let page = browser.page(375, 900).await;
    page.emulate_dark_mode().await;
    page.goto(&url).await;
    let colours =
        page.eval("[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]").await;
    assert_eq!(colours, json!(["rgb(18, 20, 22)", "rgb(232, 230, 227)"]));
    page.screenshot(&artifacts_dir().join("report-122-375px-dark.png")).await;
}
