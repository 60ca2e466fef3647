//! `tidings stats --deliverability` and the report's deliverability section, against a history of ten issues
//! sent by the real engine through the SMTP test server to 80 readers across Gmail, Microsoft, Yahoo/AOL,
//! iCloud and other domains, six days apart: hard bounces refused at RCPT and reported later by DSN, and
//! complaints by ARF, all through the bounce pipeline; opens through the store's open recording. Every figure of
//! the JSON, the terminal and the report is checked against the database counted with the test's own SQL, the
//! window is checked to leave older messages out, and the verdicts to flip as the rates cross the lines.

use std::collections::HashMap;

use jiff::SignedDuration;
use serde_json::{Value, json};
use tidings::bounces::{Pipeline, Source};
use tidings::cli::Command;
use tidings::configuration::Settings;
use tidings::store::{OpenEvent, Store};
use tidings::worker::{DeliveryContext, run_step};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::bounces::{complaint, dsn};
use crate::helpers::smtp_server::{Action, Fault, ReceivedMessage, SmtpServer, Trigger};
use crate::helpers::{TEST_KEYS, TestDatabase, sample_issue_engine};

const READERS: usize = 80;
const ISSUES: usize = 10;
const COMPLAINTS: &str = "fbl@bounces.example.com";
const SAMPLE: &str = include_str!("../../emails/issues/122.md");

/// Each provider's domains as this test knows them (the product's table is not consulted).
const DOMAINS: [(&str, &[&str]); 4] = [
    ("gmail", &["gmail.com", "googlemail.com"]),
    ("microsoft", &["outlook.com", "hotmail.com", "live.com", "msn.com"]),
    ("yahoo", &["yahoo.com", "ymail.com", "aol.com"]),
    ("icloud", &["icloud.com", "me.com", "mac.com"]),
];

/// Reader `i`'s address: 25 at Gmail (every twelfth at googlemail.com, reader 3 in capitals), 20 at Microsoft,
/// 12 at Yahoo/AOL, 10 at iCloud and 13 elsewhere (gmail.co is not Gmail).
fn reader(i: usize) -> String {
    let pick = |domains: &[&'static str], n: usize| domains[n % domains.len()];
    let domain = match i {
        0..=24 if i.is_multiple_of(12) => "googlemail.com",
        0..=24 => "gmail.com",
        25..=44 => pick(DOMAINS[1].1, i),
        45..=56 => pick(DOMAINS[2].1, i),
        57..=66 => pick(DOMAINS[3].1, i),
        _ => pick(&["example.org", "mail.example.net", "gmail.co", "posteo.de"], i),
    };
    if i == 3 { format!("Reader{i}@GMail.COM") } else { format!("reader{i}@{domain}") }
}

struct History {
    db: TestDatabase,
    smtp: SmtpServer,
    settings: Settings,
    engine: DeliveryContext,
    pipeline: Pipeline,
    /// Per issue (0 to 9): its id and the messages the relay accepted for it.
    issues: Vec<(i64, Vec<ReceivedMessage>)>,
    reports: usize,
}

impl History {
    /// The message of issue `n` to reader `i`.
    fn message(&self, n: usize, i: usize) -> ReceivedMessage {
        let to = reader(i).to_lowercase();
        let found = self.issues[n].1.iter().find(|m| m.rcpt_to[0].to_lowercase() == to);
        found.cloned().unwrap_or_else(|| panic!("issue {n} reached reader {i}"))
    }

    /// A report through the real pipeline: a DSN to the return path, or an ARF complaint to the FBL address.
    async fn report(&mut self, n: usize, i: usize, hard_bounce: bool) {
        self.reports += 1;
        let original = self.message(n, i);
        let id = format!("r{}", self.reports);
        let report = if hard_bounce {
            let raw = dsn(&original, "failed", "5.1.1", "550 5.1.1 no such user", &id);
            self.pipeline.prepare(&raw, std::slice::from_ref(&original.mail_from), Source::Ingest)
        } else {
            self.pipeline.prepare(&complaint(&original, &id), &[COMPLAINTS.to_owned()], Source::Ingest)
        };
        self.pipeline.apply(&self.db.store, &[report], self.db.clock.now()).await.expect("apply the report");
    }

    async fn send(&mut self, issue_id: i64) {
        let before = self.smtp.message_count();
        assert!(self.db.store.start_issue(issue_id, self.db.clock.now()).await.expect("start"));
        let shutdown = CancellationToken::new();
        for _ in 0..1_000 {
            let step = run_step(&self.engine, self.db.clock.now(), &shutdown).await.expect("step");
            let issue = self.db.store.issue_by_id(issue_id).await.expect("query").expect("issue");
            if issue.status == "sent" && step.settled == 0 {
                self.issues.push((issue_id, self.smtp.messages().split_off(before)));
                return;
            }
        }
        panic!("issue {issue_id} did not finish");
    }

    /// `tidings stats --deliverability --days DAYS [--json]`, run in-process at the test's time.
    async fn stats(&self, days: u32, json: bool) -> String {
        let command = Command::Stats { number: None, list: None, json, deliverability: true, days };
        self.run(command).await
    }

    async fn json(&self, days: u32) -> Value {
        let out = self.stats(days, true).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    async fn run(&self, command: Command) -> String {
        crate::helpers::admin_output(command, self.settings.clone(), self.db.clock.clone()).await
    }

    async fn count(&self, sql: &str, since: i64) -> i64 {
        let (count,): (i64,) = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(since).fetch_one(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(since).fetch_one(pool).await,
        }
        .expect("count");
        count
    }

    /// What the database says about the messages first tried since `since` to `provider` (or to everyone),
    /// counted here: deliveries by status, complaint events, and opens.
    async fn counted(&self, provider: Option<&str>, since: i64) -> HashMap<&'static str, i64> {
        let like = |domains: &[&str]| {
            domains.iter().map(|d| format!("s.email_normalised LIKE '%@{d}'")).collect::<Vec<_>>().join(" OR ")
        };
        let whose = match provider {
            None => "1 = 1".to_owned(),
            Some("others") => {
                format!("NOT ({})", DOMAINS.iter().map(|(_, d)| like(d)).collect::<Vec<_>>().join(" OR "))
            }
            Some(key) => format!("({})", like(DOMAINS.iter().find(|(k, _)| *k == key).expect("provider").1)),
        };
        let tried = format!(
            "FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.is_test = false AND d.first_attempt_at >= $1 AND d.status <> 'suppressed' AND {whose}"
        );
        let mut counts = HashMap::new();
        for (key, sql) in [
            ("attempted", format!("SELECT COUNT(*) {tried}")),
            ("delivered", format!("SELECT COUNT(*) {tried} AND d.status = 'sent'")),
            ("bounced", format!("SELECT COUNT(*) {tried} AND d.status = 'bounced'")),
            (
                "complained",
                format!(
                    "SELECT COUNT(*) FROM events e \
                     WHERE e.kind = 'complaint' AND e.delivery_id IN (SELECT d.id {tried})"
                ),
            ),
            (
                "opened_unverified",
                format!(
                    "SELECT COUNT(*) FROM opens o WHERE EXISTS (SELECT 1 {tried} \
                     AND d.issue_id = o.issue_id AND d.subscriber_id = o.subscriber_id)"
                ),
            ),
        ] {
            counts.insert(key, self.count(&sql, since).await);
        }
        counts
    }

    /// Every count of `--days DAYS --json` (the list's and each provider's) equals the database's; returns the
    /// list's figures.
    async fn check(&self, days: u32) -> Value {
        let json = self.json(days).await;
        let since = tidings::clock::to_millis(self.db.clock.now()) - i64::from(days) * 86_400_000;
        let list = json["lists"][0].clone();
        assert_eq!(list["list"], "weekly");
        for (key, count) in self.counted(None, since).await {
            assert_eq!(list[key], count, "{key} over {days} days");
        }
        let providers = list["providers"].as_array().expect("providers");
        let keys: Vec<&str> = providers.iter().map(|p| p["provider"].as_str().expect("key")).collect();
        assert_eq!(keys, ["gmail", "microsoft", "yahoo", "icloud", "others"]);
        for row in providers {
            let key = row["provider"].as_str().expect("key");
            for (name, count) in self.counted(Some(key), since).await {
                assert_eq!(row[name], count, "{name} of {key} over {days} days");
            }
        }
        list
    }
}

async fn build(db: TestDatabase) -> History {
    let smtp = SmtpServer::start().await;
    db.import((0..READERS).map(|i| (reader(i), format!("Reader {i}"), None)), db.clock.now()).await;
    let no_such_user = [reader(5).to_lowercase(), reader(70)];
    smtp.inject(Fault::new(
        Trigger::rcpt_matching(move |to| no_such_user.iter().any(|a| a == &to.to_lowercase())),
        Action::reply(550, "5.1.1 no such user"),
    ));
    let extra = [
        ("TIDINGS_BOUNCES__ADDRESS", "bounces@bounces.example.com"),
        ("TIDINGS_BOUNCES__COMPLAINT_ADDRESS", COMPLAINTS),
    ];
    let (settings, engine, first) = sample_issue_engine(&db, smtp.port(), &extra).await;
    let mut ids = vec![first];
    for number in 123..(122 + ISSUES as i64) {
        let source = SAMPLE.replacen("number = 122", &format!("number = {number}"), 1);
        let path = db.write_file(&format!("{number}.md"), source.as_bytes());
        let env = [("TIDINGS_LINKS__SIGNING_KEYS", TEST_KEYS), ("TIDINGS_HTTP__BASE_URL", "https://news.example.com")];
        let added = db.tidings_env(&["issue", "add", path.to_str().expect("path")], &env);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        ids.push(db.store.issue_by_number(db.list_id, number).await.expect("query").expect("issue").id);
    }
    let pipeline = Pipeline::from_settings(&settings).expect("settings").expect("bounces on");
    let mut history = History { db, smtp, settings, engine, pipeline, issues: Vec::new(), reports: 0 };
    let ids_by_subscriber = subscriber_ids(&history).await;
    for (n, issue_id) in ids.into_iter().enumerate() {
        if n > 0 {
            history.db.clock.advance(SignedDuration::from_hours(6 * 24));
        }
        if n == ISSUES - 1 {
            // Two more addresses are gone by the last issue: 2 hard bounces of its 74 messages.
            let gone = [reader(30), reader(50)];
            history.smtp.inject(Fault::new(
                Trigger::rcpt_matching(move |to| gone.iter().any(|a| a == to)),
                Action::reply(550, "5.1.1 no such user"),
            ));
        }
        history.send(issue_id).await;
        // A quarter of the readers open each issue (the pixel's recording, batched as the web server does).
        let at = tidings::clock::to_millis(history.db.clock.now()) + 3_600_000;
        let opens: Vec<OpenEvent> = (0..READERS)
            .filter(|i| i % 4 == n % 4)
            .map(|i| OpenEvent { issue_id, subscriber_id: ids_by_subscriber[&reader(i).to_lowercase()], at })
            .collect();
        history.db.store.record_opens(&opens).await.expect("opens");
        match n {
            1 => history.report(1, 10, false).await,
            2 => history.report(2, 46, true).await,
            7 => history.report(7, 60, true).await,
            8 => history.report(8, 26, false).await,
            _ => {}
        }
    }
    history.db.clock.advance(SignedDuration::from_hours(24));
    history
}

async fn subscriber_ids(history: &History) -> HashMap<String, i64> {
    let sql = "SELECT email_normalised, id FROM subscribers";
    let rows: Vec<(String, i64)> = match &history.db.store {
        Store::Sqlite(pool) => sqlx::query_as(sql).fetch_all(pool).await,
        Store::Postgres(pool) => sqlx::query_as(sql).fetch_all(pool).await,
    }
    .expect("subscribers");
    rows.into_iter().collect()
}

/// The provider row of the terminal table, split on spaces: name, tried, delivered, bounced, complained, opened.
fn terminal_row<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(name));
    line.unwrap_or_else(|| panic!("a row for {name} in:\n{text}")).split_whitespace().collect()
}

both_backends! {
    async fn deliverability_figures_agree_with_the_database_and_the_verdicts_follow_the_rates(db) {
        let mut history = build(db).await;
        assert_eq!(history.issues.len(), ISSUES);

        // The last 30 days hold issues 6 to 10 (sent on days 30 to 54; now is day 55): 374 delivered, one
        // complaint (0.27 %: over 0.1 %, under 0.3 %), 3 hard bounces of 377 tried (0.8 %).
        let month = history.check(30).await;
        assert_eq!((month["attempted"].as_i64(), month["delivered"].as_i64()), (Some(377), Some(374)));
        assert_eq!((month["complained"].as_i64(), month["bounced"].as_i64()), (Some(1), Some(3)));
        assert_eq!(month["complaint_verdict"], "warning");
        assert_eq!(month["bounce_verdict"], "ok");
        let weekly = Some("weekly".to_owned());
        let one = Command::Stats { number: None, list: weekly, json: true, deliverability: true, days: 30 };
        let one: Value = serde_json::from_str(&history.run(one).await).expect("JSON");
        assert_eq!(one, history.json(30).await, "--list weekly counts the same");
        // The older complaint (issue 2) and bounces (issues 1 and 3) are outside; 60 days hold all ten issues.
        let all = history.check(60).await;
        assert_eq!((all["complained"].as_i64(), all["bounced"].as_i64()), (Some(2), Some(6)));
        assert_eq!(all["attempted"].as_i64(), Some(80 * 10 - 2 * 9 - 8 - 7 - 2 - 1));
        // The last 3 days: issue 10 alone, 2 hard bounces of 74 tried (2.7 %), no complaint.
        let days3 = history.check(3).await;
        assert_eq!((days3["attempted"].as_i64(), days3["bounced"].as_i64()), (Some(74), Some(2)));
        let verdicts = |v: &Value| (v["bounce_verdict"].clone(), v["complaint_verdict"].clone());
        assert_eq!(verdicts(&days3), (json!("warning"), json!("ok")));

        // The terminal says the same.
        let text = history.stats(30, false).await;
        for provider in month["providers"].as_array().expect("providers") {
            let key = provider["provider"].as_str().expect("key");
            let names = [("gmail", "Gmail"), ("microsoft", "Microsoft"), ("yahoo", "Yahoo/AOL"), ("icloud", "iCloud")];
            let name = names.iter().find(|(k, _)| *k == key).map_or("others", |(_, name)| name);
            let row = terminal_row(&text, name);
            let shown: Vec<String> = ["attempted", "delivered", "bounced", "complained", "opened_unverified"]
                .iter().map(|field| provider[*field].to_string()).collect();
            assert_eq!(row[1..6], shown, "{key}: {text}");
        }
        assert!(text.contains("0.267 %  1 of 374 delivered  WARNING"), "{text}");
        assert!(text.contains("0.80 %  3 of 377 tried  OK"), "{text}");

        // Two more hard bounces and a complaint about the last issue: both rates cross the 5 % and 0.3 % lines.
        history.report(9, 40, true).await;
        history.report(9, 65, true).await;
        history.report(9, 1, false).await;
        let days3 = history.check(3).await;
        assert_eq!((days3["bounced"].as_i64(), days3["complained"].as_i64()), (Some(4), Some(1)));
        assert_eq!(verdicts(&days3), (json!("critical"), json!("critical")));
        let month = history.check(30).await;
        assert_eq!((month["complained"].as_i64(), month["complaint_verdict"].as_str()), (Some(2), Some("critical")));
        assert_eq!(month["bounce_verdict"], "ok");
        let text = history.stats(3, false).await;
        assert!(text.contains("CRITICAL: 5 % or more"), "{text}");
        assert!(text.contains("CRITICAL: 0.3 % or more"), "{text}");

        // The report of the last issue has the list's section with the same figures (its window: 30 days).
        let path = history.db.dir.path().join("report.html");
        history.run(Command::Report { number: Some(131), last: None, out: path.clone(), list: None }).await;
        let html = std::fs::read_to_string(&path).expect("the report");
        assert!(html.contains(r#"data-rate="complaint" data-value="0.005376" data-verdict="critical""#), "{html}");
        for provider in month["providers"].as_array().expect("providers") {
            let key = provider["provider"].as_str().expect("key");
            let start = html.find(&format!(r#"data-provider="{key}""#)).expect("a row per provider");
            let row = &html[start..start + html[start..].find("</tr>").expect("end of row")];
            let values: Vec<&str> =
                row.split(r#"data-value=""#).skip(1).map(|v| &v[..v.find('"').expect("quote")]).collect();
            let expected: Vec<String> = ["attempted", "delivered", "bounced", "complained", "opened_unverified"]
                .iter().map(|field| provider[*field].to_string()).collect();
            assert_eq!(values, expected, "{key}: {row}");
        }
        history.engine.close().await;
    }
}
