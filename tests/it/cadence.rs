//! The weekly cadence with the manual clock, on both backends: queued issues go out at their slots in number
//! order, once; an empty queue warns the admin ahead and records a missed slot; local-time sends wait for each
//! subscriber's hour; daylight-saving changes neither skip nor repeat a slot; a slot that passed while the
//! daemon was down is sent when it is not too late, else it waits and says why.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use tidings::store::Store;
use tidings::worker::{DeliveryContext, run_step};
use tokio_util::sync::CancellationToken;

use crate::both_backends;
use crate::helpers::smtp_server::SmtpServer;
use crate::helpers::{CommandOutput, TestDatabase};

const KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";
const SAMPLE: &str = include_str!("../../emails/issues/122.md");
const ADMIN: &str = "editor@example.com";

/// A list with a weekly slot, subscribers, an SMTP server and an engine, on a database driven by hand.
struct Weekly {
    db: TestDatabase,
    smtp: SmtpServer,
    env: Vec<(String, String)>,
    settings: tidings::configuration::Settings,
    engine: DeliveryContext,
    shutdown: CancellationToken,
}

struct Setup<'a> {
    weekly: &'a str,
    time_zone: &'a str,
    local_time: bool,
    /// The subscribers: address and time zone.
    subscribers: &'a [(&'a str, Option<&'a str>)],
    /// Where the manual clock stands when the cadence is configured.
    start: &'a str,
}

impl Weekly {
    async fn new(db: TestDatabase, setup: Setup<'_>) -> Self {
        let smtp = SmtpServer::start().await;
        let env: Vec<(String, String)> = [
            ("TIDINGS_DATABASE__URL", db.url.as_str()),
            ("TIDINGS_TRANSPORT__KIND", "smtp"),
            ("TIDINGS_SMTP__HOST", "127.0.0.1"),
            ("TIDINGS_SMTP__PORT", &smtp.port().to_string()),
            ("TIDINGS_SMTP__TLS", "none"),
            ("TIDINGS_SMTP__POOL_SIZE", "2"),
            ("TIDINGS_DELIVERY__PER_SECOND", "0"),
            ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
            ("TIDINGS_HTTP__BASE_URL", "https://news.example.com"),
            ("TIDINGS_ADMIN__EMAIL", ADMIN),
            ("TIDINGS_HTTP__BIND", "127.0.0.1:0"),
            ("TIDINGS_LISTS__WEEKLY__WEEKLY", setup.weekly),
            ("TIDINGS_LISTS__WEEKLY__TIME_ZONE", setup.time_zone),
            ("TIDINGS_LISTS__WEEKLY__LOCAL_TIME", if setup.local_time { "true" } else { "false" }),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let vars: HashMap<String, String> = env.iter().cloned().collect();
        let settings = tidings::configuration::load_layers(None, &vars).expect("settings");
        db.clock.advance(ts(setup.start).duration_since(db.clock.now()));
        db.store.sync_lists(&settings.list_specs().expect("lists"), db.clock.now()).await.expect("sync lists");

        let people = setup
            .subscribers
            .iter()
            .map(|(email, zone)| (email.to_string(), "Reader".to_owned(), zone.map(str::to_owned)));
        db.import(people, db.clock.now()).await;

        let links = settings.link_builder().expect("links");
        let engine = tidings::startup::delivery_context(&settings, db.store.clone(), db.clock.clone(), links)
            .expect("delivery context");
        Weekly { db, smtp, env, settings, engine, shutdown: CancellationToken::new() }
    }

    fn cli(&self, args: &[&str]) -> CommandOutput {
        let env: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        self.db.tidings_env(args, &env)
    }

    /// Adds issue `number` (the sample with its number and subject changed) and queues it.
    fn add_and_queue(&self, number: i64) {
        let source = SAMPLE
            .replace("number = 122", &format!("number = {number}"))
            .replace("Issue 122", &format!("Issue {number}"));
        let path = self.db.write_file(&format!("{number}.md"), source.as_bytes());
        let added = self.cli(&["issue", "add", path.to_str().expect("path")]);
        assert_eq!(added.code, Some(0), "{}", added.stderr);
        let queued = self.cli(&["issue", "queue", &number.to_string()]);
        assert_eq!(queued.code, Some(0), "{}", queued.stderr);
    }

    /// Moves the clock to `at` and runs the engine until nothing is due.
    async fn run_at(&self, at: Timestamp) {
        self.db.clock.advance(at.duration_since(self.db.clock.now()));
        for _ in 0..100 {
            let report = run_step(&self.engine, self.db.clock.now(), &self.shutdown).await.expect("step");
            if report.idle_until.is_some() && report.settled == 0 {
                return;
            }
        }
        panic!("the engine did not become idle");
    }

    async fn issue(&self, number: i64) -> tidings::store::IssueRow {
        self.db.store.issue_by_number(self.db.list_id, number).await.expect("query").expect("issue")
    }

    /// Messages received per subject.
    fn subjects(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for message in self.smtp.messages() {
            let subject = message.parsed().and_then(|m| m.subject().map(str::to_owned)).unwrap_or_default();
            *counts.entry(subject).or_insert(0) += message.rcpt_to.len();
        }
        counts
    }

    /// Runs a command in-process at the manual clock's time; returns what it printed.
    async fn admin(&self, command: tidings::cli::Command) -> String {
        crate::helpers::admin_output(command, self.settings.clone(), self.db.clock.clone()).await
    }

    /// `tidings queue --json` at the manual clock's time.
    async fn queue_json(&self) -> serde_json::Value {
        let out = self.admin(tidings::cli::Command::Queue { weeks: 8, list: None, json: true }).await;
        let value: serde_json::Value = serde_json::from_str(&out).expect("queue --json");
        value["lists"][0].clone()
    }

    async fn not_before_by_zone(&self, issue_id: i64) -> HashMap<String, Timestamp> {
        let sql = "SELECT COALESCE(time_zone, ''), not_before FROM deliveries WHERE issue_id = $1";
        let rows: Vec<(String, i64)> = match &self.db.store {
            Store::Sqlite(pool) => sqlx::query_as(sql).bind(issue_id).fetch_all(pool).await,
            Store::Postgres(pool) => sqlx::query_as(sql).bind(issue_id).fetch_all(pool).await,
        }
        .expect("query");
        rows.into_iter().map(|(zone, at)| (zone, Timestamp::from_millisecond(at).expect("instant"))).collect()
    }
}

fn ts(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

const THREE: &[(&str, Option<&str>)] =
    &[("ana@example.com", None), ("bo@example.org", None), ("cy@example.net", Some("Asia/Tokyo"))];

both_backends! {
    async fn three_queued_issues_go_out_at_three_weekly_slots_in_number_order_once_each(db) {
        // 2026-12-07 is a Monday; London is on UTC in winter.
        let run = Weekly::new(db, Setup {
            weekly: "Mon 09:00", time_zone: "Europe/London", local_time: false, subscribers: THREE,
            start: "2026-12-06T12:00:00Z",
        }).await;
        // Queued out of order: the queue goes by number.
        for number in [124, 122, 123] {
            run.add_and_queue(number);
        }
        let planned = run.queue_json().await;
        assert_eq!(planned["queued"], serde_json::json!([122, 123, 124]));
        assert_eq!(planned["coming"][0]["issue"], 122);
        assert_eq!(planned["coming"][0]["slot_at"], "2026-12-07T09:00:00Z");
        assert_eq!(planned["coming"][2]["issue"], 124);

        let slots = ["2026-12-07T09:00:00Z", "2026-12-14T09:00:00Z", "2026-12-21T09:00:00Z"];
        for (week, slot) in slots.iter().enumerate() {
            let slot = ts(slot);
            // Every six hours up to a minute before the slot: nothing starts.
            while run.db.clock.now() < slot.checked_sub(SignedDuration::from_hours(6)).expect("instant") {
                let next = run.db.clock.now().checked_add(SignedDuration::from_hours(6)).expect("instant");
                run.run_at(next).await;
            }
            run.run_at(slot.checked_sub(SignedDuration::from_mins(1)).expect("instant")).await;
            let number = 122 + week as i64;
            assert_eq!(run.issue(number).await.status, "queued", "issue {number} waits for its slot");
            run.run_at(slot).await;
            let issue = run.issue(number).await;
            assert_eq!(issue.status, "sent", "issue {number} at its slot");
            assert_eq!(issue.started_at, Some(slot.as_millisecond()));
            for later in number + 1..=124 {
                assert_eq!(run.issue(later).await.status, "queued");
            }
        }
        // A week later the queue is empty: nothing more is sent, and every issue arrived once per subscriber.
        run.run_at(ts("2026-12-28T10:00:00Z")).await;
        let subjects = run.subjects();
        for number in 122..=124 {
            assert_eq!(subjects.get(&format!("So, what's up in China? Issue {number}")), Some(&3), "{subjects:?}");
        }
        let issue_messages: usize = subjects.iter().filter(|(s, _)| s.contains("Issue")).map(|(_, n)| n).sum();
        assert_eq!(issue_messages, 9);
        let past = &run.queue_json().await["past"];
        let statuses: Vec<(&str, i64)> = past.as_array().expect("past").iter()
            .map(|slot| (slot["status"].as_str().expect("status"), slot["issue"].as_i64().unwrap_or(0))).collect();
        assert_eq!(statuses, vec![("sent", 122), ("sent", 123), ("sent", 124), ("missed", 0)]);
    }

    async fn an_empty_queue_warns_the_admin_a_day_ahead_and_the_slot_is_recorded_as_missed(db) {
        // Slot Wednesday 2026-12-09 09:00 London; the clock starts on Monday.
        let run = Weekly::new(db, Setup {
            weekly: "Wed 09:00", time_zone: "Europe/London", local_time: false, subscribers: THREE,
            start: "2026-12-07T08:00:00Z",
        }).await;
        let to_admin = |run: &Weekly| run.smtp.messages().into_iter().filter(|m| m.rcpt_to == [ADMIN]).collect::<Vec<_>>();
        run.run_at(ts("2026-12-08T08:59:00Z")).await;
        assert!(to_admin(&run).is_empty(), "no notice more than 24 hours ahead");
        run.run_at(ts("2026-12-08T09:00:00Z")).await;
        let notices = to_admin(&run);
        assert_eq!(notices.len(), 1);
        let notice = notices[0].parsed().expect("a message");
        assert!(notice.subject().expect("subject").contains("Nothing is queued"), "{:?}", notice.subject());
        let text = notice.body_text(0).expect("text");
        assert!(text.contains("tidings issue queue") && text.contains("2026-12-09 09:00"), "{text}");
        // Once: later steps before the slot do not repeat it.
        run.run_at(ts("2026-12-08T21:00:00Z")).await;
        assert_eq!(to_admin(&run).len(), 1);
        let coming = run.queue_json().await["coming"][0].clone();
        assert_eq!(coming["slot_at"], "2026-12-09T09:00:00Z");
        assert!(coming["notice_sent_at"].is_string(), "{coming}");

        run.run_at(ts("2026-12-09T09:00:00Z")).await;
        run.run_at(ts("2026-12-09T12:00:00Z")).await;
        assert_eq!(run.smtp.messages().len(), 1, "nothing but the notice was sent");
        let list = run.queue_json().await;
        assert_eq!(list["past"][0]["slot_at"], "2026-12-09T09:00:00Z");
        assert_eq!(list["past"][0]["status"], "missed");
        assert_eq!(list["past"][0]["issue"], serde_json::Value::Null);
        assert_eq!(run.db.store.missed_slot_count().await.expect("count"), 1);
        // And in the metrics of a running daemon.
        let application = tidings::startup::Application::build(run.settings.clone(), run.db.clock.clone()).await.expect("app");
        let metrics_url = format!("http://127.0.0.1:{}/metrics", application.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(application.run_until_stopped(shutdown.clone()));
        let metrics = reqwest::get(&metrics_url).await.expect("GET /metrics").text().await.expect("body");
        assert!(metrics.lines().any(|line| line == "tidings_slots_missed_total 1"), "{metrics}");
        shutdown.cancel();
        server.await.expect("server task").expect("clean stop");
        let text = run.cli(&["queue"]);
        assert!(text.stdout.contains("missed: nothing was queued"), "{}", text.stdout);
        assert!(!text.stdout.contains(" : "), "no stray colon: {}", text.stdout);
    }

    async fn local_time_deliveries_wait_for_eight_in_each_subscribers_zone(db) {
        let subscribers = [
            ("shanghai@example.com", Some("Asia/Shanghai")),
            ("berlin@example.com", Some("Europe/Berlin")),
            ("newyork@example.com", Some("America/New_York")),
            ("nozone@example.com", None),
        ];
        let run = Weekly::new(db, Setup {
            weekly: "Mon 08:00", time_zone: "Europe/London", local_time: true, subscribers: &subscribers,
            start: "2026-12-05T12:00:00Z",
        }).await;
        run.add_and_queue(122);
        // 08:00 on Monday 7 December is first reached at UTC+14, on Sunday at 18:00 UTC.
        run.run_at(ts("2026-12-06T17:59:00Z")).await;
        assert_eq!(run.issue(122).await.status, "queued");
        run.run_at(ts("2026-12-06T18:00:00Z")).await;
        let issue = run.issue(122).await;
        assert_eq!(issue.status, "sending");
        assert_eq!(issue.local_at.as_deref(), Some("2026-12-07T08:00:00"));
        assert_eq!(run.smtp.message_count(), 0, "nobody has reached 08:00 yet");

        let by_zone = run.not_before_by_zone(issue.id).await;
        assert_eq!(by_zone["Asia/Shanghai"], ts("2026-12-07T00:00:00Z"));
        assert_eq!(by_zone["Europe/Berlin"], ts("2026-12-07T07:00:00Z"));
        assert_eq!(by_zone["America/New_York"], ts("2026-12-07T13:00:00Z"));
        // Without a zone: the list's, Europe/London.
        assert_eq!(by_zone["Europe/London"], ts("2026-12-07T08:00:00Z"));
        assert_eq!(by_zone.len(), 4);

        let delivered = |run: &Weekly| {
            let mut to: Vec<String> = run.smtp.messages().into_iter().flat_map(|m| m.rcpt_to).collect();
            to.sort();
            to
        };
        run.run_at(ts("2026-12-07T00:00:00Z")).await;
        assert_eq!(delivered(&run), vec!["shanghai@example.com"]);
        run.run_at(ts("2026-12-07T07:59:00Z")).await;
        assert_eq!(delivered(&run), vec!["berlin@example.com", "shanghai@example.com"]);

        let status = run.cli(&["issue", "status", "122", "--json"]);
        let value: serde_json::Value = serde_json::from_str(&status.stdout).expect("status --json");
        let zones: Vec<(String, i64, i64)> = value["zones"].as_array().expect("zones").iter()
            .map(|z| (z["time_zone"].as_str().unwrap().to_owned(), z["sent"].as_i64().unwrap(), z["total"].as_i64().unwrap()))
            .collect();
        assert_eq!(zones, vec![
            ("Asia/Shanghai".to_owned(), 1, 1),
            ("Europe/Berlin".to_owned(), 1, 1),
            ("Europe/London".to_owned(), 0, 1),
            ("America/New_York".to_owned(), 0, 1),
        ]);
        let text = run.cli(&["issue", "status", "122"]);
        assert!(text.stdout.contains("per time zone") && text.stdout.contains("America/New_York"), "{}", text.stdout);
        // While the next zone is still to come, the status says when it starts rather than a time left.
        let status = run.admin(tidings::cli::Command::Issue(tidings::cli::IssueCommand::Status {
            number: 122, list: None, follow: false, json: false,
        })).await;
        assert!(status.contains("the next time zone (Europe/London) starts at 2026-12-07T08:00:00Z (in 1m 00s)"), "{status}");
        assert!(!status.contains(" left"), "{status}");

        run.run_at(ts("2026-12-07T13:00:00Z")).await;
        assert_eq!(delivered(&run).len(), 4);
        assert_eq!(run.issue(122).await.status, "sent");
    }

    async fn a_slot_in_the_spring_forward_gap_runs_at_three_and_one_in_the_fall_back_overlap_runs_once(db) {
        let run = Weekly::new(db, Setup {
            weekly: "Sun 02:30", time_zone: "Europe/Berlin", local_time: false, subscribers: THREE,
            start: "2027-03-27T00:00:00Z",
        }).await;
        run.add_and_queue(122);
        // 2027-03-28, the last Sunday of March: 02:00 CET jumps to 03:00 CEST at 01:00 UTC; 02:30 never happens.
        run.run_at(ts("2027-03-28T00:59:00Z")).await;
        assert_eq!(run.issue(122).await.status, "queued");
        run.run_at(ts("2027-03-28T01:00:00Z")).await;
        let issue = run.issue(122).await;
        assert_eq!(issue.status, "sent");
        assert_eq!(issue.started_at, Some(ts("2027-03-28T01:00:00Z").as_millisecond()), "03:00 CEST");
        let past = run.queue_json().await["past"].clone();
        assert_eq!(past.as_array().expect("past").len(), 1, "{past}");
        assert_eq!(past[0]["local"], "2027-03-28T03:00:00");
        assert_eq!(past[0]["slot_at"], "2027-03-28T01:00:00Z");

        // 2027-10-31, the last Sunday of October: 02:30 happens twice, at 00:30 and 01:30 UTC. The slots until
        // then pass with nothing queued.
        run.run_at(ts("2027-10-30T12:00:00Z")).await;
        run.add_and_queue(123);
        run.add_and_queue(124);
        run.run_at(ts("2027-10-31T00:29:00Z")).await;
        assert_eq!(run.issue(123).await.status, "queued");
        run.run_at(ts("2027-10-31T00:30:00Z")).await;
        assert_eq!(run.issue(123).await.started_at, Some(ts("2027-10-31T00:30:00Z").as_millisecond()));
        for at in ["2027-10-31T01:30:00Z", "2027-10-31T02:00:00Z", "2027-11-06T12:00:00Z"] {
            run.run_at(ts(at)).await;
            assert_eq!(run.issue(124).await.status, "queued", "the repeated 02:30 is not a second slot ({at})");
        }
        // The next slot is a week later, 02:30 CET.
        run.run_at(ts("2027-11-07T01:30:00Z")).await;
        assert_eq!(run.issue(124).await.started_at, Some(ts("2027-11-07T01:30:00Z").as_millisecond()));
        let subjects = run.subjects();
        for number in 122..=124 {
            assert_eq!(subjects.get(&format!("So, what's up in China? Issue {number}")), Some(&3), "{subjects:?}");
        }
    }

    async fn a_slot_missed_by_ten_minutes_goes_out_on_restart_but_two_days_late_it_waits_and_says_why(db) {
        let run = Weekly::new(db, Setup {
            weekly: "Mon 09:00", time_zone: "Europe/London", local_time: false, subscribers: THREE,
            start: "2026-12-06T12:00:00Z",
        }).await;
        run.add_and_queue(122);
        run.add_and_queue(123);
        run.run_at(ts("2026-12-06T13:00:00Z")).await;
        // The daemon is down over Monday's slot and comes back ten minutes after it.
        run.run_at(ts("2026-12-07T09:10:00Z")).await;
        let issue = run.issue(122).await;
        assert_eq!(issue.status, "sent");
        assert_eq!(issue.started_at, Some(ts("2026-12-07T09:10:00Z").as_millisecond()));
        assert_eq!(run.subjects().get("So, what's up in China? Issue 122"), Some(&3));

        // Down again over the next slot, back two days later: more than delivery.max_late (1h).
        run.run_at(ts("2026-12-16T09:00:00Z")).await;
        let issue = run.issue(123).await;
        assert_eq!(issue.status, "paused");
        assert_eq!(run.subjects().get("So, what's up in China? Issue 123"), None, "nothing sent two days late");
        let reason = issue.hold_reason.expect("a reason");
        assert!(reason.contains("max_late") && reason.contains("tidings issue resume 123"), "{reason}");

        let past = run.queue_json().await["past"].clone();
        let last = past.as_array().expect("past").last().expect("a slot").clone();
        assert_eq!(last["slot_at"], "2026-12-14T09:00:00Z");
        assert_eq!(last["status"], "waiting");
        assert_eq!(last["issue"], 123);
        assert!(last["detail"].as_str().expect("detail").contains("max_late"));
        let status = run.cli(&["issue", "status", "123"]);
        assert!(status.stdout.contains("waiting:") && status.stdout.contains("max_late"), "{}", status.stdout);
        let queue = run.cli(&["queue"]);
        assert!(queue.stdout.contains("waiting") && queue.stdout.contains("max_late"), "{}", queue.stdout);

        // The admin's word sends it.
        let resume = tidings::cli::IssueCommand::Resume { number: 123, list: None };
        let resumed = run.admin(tidings::cli::Command::Issue(resume)).await;
        assert!(resumed.contains("issue 123 is resumed"), "{resumed}");
        run.run_at(ts("2026-12-16T09:05:00Z")).await;
        assert_eq!(run.issue(123).await.status, "sent");
        assert_eq!(run.subjects().get("So, what's up in China? Issue 123"), Some(&3));
        let past = run.queue_json().await["past"].clone();
        assert_eq!(past.as_array().expect("past").last().expect("a slot")["issue_status"], "sent");
    }

    async fn two_daemons_at_one_slot_start_one_issue_once(db) {
        let run = Weekly::new(db, Setup {
            weekly: "Mon 09:00", time_zone: "Europe/London", local_time: false, subscribers: THREE,
            start: "2026-12-06T12:00:00Z",
        }).await;
        run.add_and_queue(122);
        run.add_and_queue(123);
        let links = run.settings.link_builder().expect("links");
        let other = tidings::startup::delivery_context(&run.settings, run.db.store.clone(), run.db.clock.clone(), links)
            .expect("a second daemon");
        run.db.clock.advance(ts("2026-12-07T09:00:00Z").duration_since(run.db.clock.now()));
        let now = run.db.clock.now();
        let (a, b) = tokio::join!(run_step(&run.engine, now, &run.shutdown), run_step(&other, now, &run.shutdown));
        let (a, b) = (a.expect("step"), b.expect("step"));
        assert_eq!(a.cadence.filled.len() + b.cadence.filled.len(), 1, "{:?} {:?}", a.cadence, b.cadence);
        run.run_at(ts("2026-12-07T09:30:00Z")).await;
        assert_eq!(run.issue(122).await.status, "sent");
        assert_eq!(run.issue(123).await.status, "queued", "one slot, one issue");
        assert_eq!(run.subjects().get("So, what's up in China? Issue 122"), Some(&3));
        other.close().await;
    }

    async fn only_a_rendered_draft_can_be_queued_and_unqueue_puts_it_back(db) {
        let run = Weekly::new(db, Setup {
            weekly: "Mon 09:00", time_zone: "Europe/London", local_time: false, subscribers: THREE,
            start: "2026-12-06T12:00:00Z",
        }).await;
        let missing = run.cli(&["issue", "queue", "999"]);
        assert_eq!(missing.code, Some(1));
        assert!(missing.stderr.contains("there is no issue 999"), "{}", missing.stderr);
        run.add_and_queue(122);
        let again = run.cli(&["issue", "queue", "122"]);
        assert_eq!(again.code, Some(1));
        assert!(again.stderr.contains("is queued; only a draft can be queued"), "{}", again.stderr);
        let out = run.cli(&["issue", "unqueue", "122"]);
        assert_eq!(out.code, Some(0), "{}", out.stderr);
        assert_eq!(run.issue(122).await.status, "draft");
        assert_eq!(run.queue_json().await["queued"], serde_json::json!([]));
        run.run_at(ts("2026-12-07T09:00:00Z")).await;
        assert_eq!(run.issue(122).await.status, "draft", "an unqueued issue is not sent at the slot");
    }
}

#[test]
fn an_invalid_weekly_slot_or_time_zone_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("dir");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = crate::helpers::tidings_with_env(
        &["queue"],
        &[("TIDINGS_DATABASE__URL", &url), ("TIDINGS_LISTS__WEEKLY__WEEKLY", "Mon 25:00")],
        dir.path(),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("lists.weekly.weekly") && out.stderr.contains("hour"), "{}", out.stderr);

    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "email,tz\nana@example.com,Europe/Berlin\nbo@example.com,Mars/Olympus\n").expect("csv");
    let out = crate::helpers::tidings_with_env(
        &["subscriber", "import", csv.to_str().expect("path")],
        &[("TIDINGS_DATABASE__URL", &url)],
        dir.path(),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("line 3") && out.stderr.contains("Mars/Olympus"), "{}", out.stderr);
    let out = crate::helpers::tidings_with_env(
        &["subscriber", "add", "cy@example.com", "--tz", "Nowhere/City"],
        &[("TIDINGS_DATABASE__URL", &url)],
        dir.path(),
    );
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("Nowhere/City") && out.stderr.contains("not an IANA time zone"), "{}", out.stderr);
}
