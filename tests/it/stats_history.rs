//! This issue against the previous ones: issue 122's real history (`stats.rs`: sent through the SMTP test server,
//! opened, rated and unsubscribed through HTTP) after twelve earlier weekly issues of the same list, whose rows
//! (issue, deliveries, opens, votes, unsubscribes, when each reader subscribed and one who left) this file
//! writes with known figures. `stats 122 --json` must have each figure's median over issues 114 to 121 and its trend over 111 to
//! 122 as computed here from those figures, the list's subscribers at the send, and the report must show the
//! same numbers in the tables screen readers read, on both backends and in Chromium.

use serde_json::{Value, json};
use tidings::store::Store;

use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::browser::{Browser, artifacts_dir};
use crate::stats::{History, build_history, stats_json};
use crate::web::address;

const WEEK: i64 = 7 * 24 * 3_600_000;
const HOUR: i64 = 3_600_000;

/// One earlier issue's figures: issue `110 + k` reached readers `0..delivered`, of whom the first `opens` opened
/// it, the first `voters` gave it `stars`, and reader 0 unsubscribed through it when `unsubscribed`.
#[derive(Debug, Clone, Copy)]
struct Earlier {
    number: i64,
    delivered: i64,
    opens: i64,
    voters: i64,
    stars: i64,
    unsubscribed: bool,
}

fn earlier() -> Vec<Earlier> {
    (0..12)
        .map(|k: i64| {
            // Reader i subscribed just before issue 110 + i; reader 11 only after issue 121.
            let delivered = (k + 1).min(11);
            Earlier {
                number: 110 + k,
                delivered,
                opens: (k * 5) % (delivered + 1),
                voters: (k % 4).min(delivered),
                stars: 1 + k % 5,
                unsubscribed: k % 3 == 0,
            }
        })
        .collect()
}

async fn execute(db: &TestDatabase, sql: &str) {
    match &db.store {
        Store::Sqlite(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.map(|_| ()),
        Store::Postgres(pool) => sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).execute(pool).await.map(|_| ()),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `s.email IN (...)` for readers `0..n`.
fn readers(n: i64) -> String {
    let list: Vec<String> = (0..n as usize).map(|i| format!("'{}'", address(i))).collect();
    if list.is_empty() {
        "s.email IN ('nobody@example.invalid')".to_owned()
    } else {
        format!("s.email IN ({})", list.join(", "))
    }
}

/// Writes the twelve issues before 122, one a week, and when each reader subscribed.
async fn write_earlier_issues(history: &History) {
    let db = &history.app.db;
    let started = history.started.as_millisecond();
    for (i, k) in (0..11).zip(0i64..) {
        let at = started - (12 - k) * WEEK - HOUR;
        let sql = format!(
            "UPDATE subscriptions SET consent_at = {at} WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = '{}')",
            address(i)
        );
        execute(db, &sql).await;
    }
    let sql = format!(
        "UPDATE subscriptions SET consent_at = {} WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = '{}')",
        started - 3 * 24 * HOUR,
        address(11)
    );
    execute(db, &sql).await;
    // Reader 10 left between issues 121 and 122 (after reading 122's message in the history, which is fine).
    let sql = format!(
        "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = {} \
         WHERE subscriber_id = (SELECT id FROM subscribers WHERE email = '{}')",
        started - 2 * 24 * HOUR,
        address(10)
    );
    execute(db, &sql).await;

    for (k, e) in (0i64..).zip(earlier()) {
        let (n, start) = (e.number, started - (12 - k) * WEEK);
        let (sent, end) = (start + 60_000, start + 600_000);
        execute(db, &format!(
            "INSERT INTO issues (list_id, number, subject, preheader, period, source_path, source_hash, source, compiled, \
             status, started_at, finished_at, created_at, updated_at) \
             SELECT list_id, {n}, 'Issue {n}', preheader, period, source_path, source_hash || '-{n}', source, compiled, \
             'sent', {start}, {end}, {start}, {end} FROM issues WHERE number = 122"
        ))
        .await;
        let of = |who: String| format!("FROM issues i, subscribers s WHERE i.number = {n} AND {who}");
        execute(db, &format!(
            "INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, attempts, created_at, \
             updated_at, sent_at, first_attempt_at) \
             SELECT i.id, s.id, 'sent', '<seed-{n}-' || s.id || '@example.test>', {start}, 1, {start}, {sent}, {sent}, {sent} {}",
            of(readers(e.delivered))
        ))
        .await;
        execute(db, &format!(
            "INSERT INTO opens (issue_id, subscriber_id, first_at, last_at, count) SELECT i.id, s.id, {sent}, {sent}, 1 {}",
            of(readers(e.opens))
        ))
        .await;
        execute(
            db,
            &format!(
                "INSERT INTO votes (issue_id, subscriber_id, stars, flagged, created_at, updated_at) \
             SELECT i.id, s.id, {}, false, {sent}, {sent} {}",
                e.stars,
                of(readers(e.voters))
            ),
        )
        .await;
        if e.unsubscribed {
            execute(
                db,
                &format!(
                    "INSERT INTO events (kind, list_id, issue_id, subscriber_id, created_at) \
                 SELECT 'unsubscribe', i.list_id, i.id, s.id, {sent} {}",
                    of(readers(1))
                ),
            )
            .await;
        }
    }
}

fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (n > 0).then(|| if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 })
}

/// Each compared figure of an earlier issue, as the JSON rounds it (`None` where there is none).
fn figures_of(e: &Earlier) -> Vec<(&'static str, Option<f64>)> {
    let d = e.delivered as f64;
    let rate = |part: i64| Some(round(part as f64 / d, 4));
    vec![
        ("delivered", Some(d)),
        ("delivery_rate", Some(1.0)),
        ("open_rate_unverified", rate(e.opens)),
        ("unsubscribe_rate", rate(i64::from(e.unsubscribed))),
        ("complaint_rate", Some(0.0)),
        ("vote_participation", rate(e.voters)),
        ("rating_average", (e.voters > 0).then_some(e.stars as f64)),
        ("active_subscribers", Some(d)),
    ]
}

fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

both_backends! {
    async fn stats_n_compares_each_figure_with_the_median_of_the_eight_issues_before_and_a_trend_over_twelve(db) {
        let mut history = build_history(db).await;
        history.app.stop().await;
        write_earlier_issues(&history).await;
        let db = &history.app.db;
        let value = stats_json(db, &["122"]);

        // The rates beside the counts: 8 delivered, 4 unique opens, 2 unsubscribed, 5 voters.
        assert_eq!(value["open_rate_unverified"], 0.5);
        assert_eq!(value["unsubscribe_rate"], 0.25);
        assert_eq!(value["vote_participation"], 0.625);
        assert_eq!(value["complaint_rate"], 0.0);
        assert_eq!(value["rating"]["out_of_delivered"], 8);
        // Eleven readers had subscribed before issue 121; since then reader 11 joined and reader 10 left.
        assert_eq!(value["subscribers"], json!({ "active_at_send": 11, "new_since_previous": 1, "lost_since_previous": 1 }));
        assert_eq!(value["click_tracking"], false);

        let compared = &value["compared"];
        assert_eq!(compared["median_of_issues"], json!((114..=121).collect::<Vec<i64>>()));
        assert_eq!(compared["trend_of_issues"], json!((111..=122).collect::<Vec<i64>>()));
        let seeded = earlier();
        for (index, (key, _)) in figures_of(&seeded[0]).into_iter().enumerate() {
            let figure = &compared["figures"][key];
            let of = |e: &Earlier| figures_of(e)[index].1;
            let wanted_median = median(seeded[4..].iter().filter_map(of).collect());
            let kind_places = if key == "complaint_rate" { 5 } else if key == "rating_average" { 2 } else { 4 };
            assert_eq!(number(&figure["median"]), wanted_median.map(|m| round(m, kind_places)), "{key}: {figure}");
            let mut trend: Vec<Option<f64>> = seeded[1..].iter().map(of).collect();
            let this = if key == "active_subscribers" { json!(11) } else { value[key].clone() };
            trend.push(number(&this));
            let shown: Vec<Option<f64>> = figure["trend"].as_array().expect("a trend").iter().map(number).collect();
            assert_eq!(shown, trend, "{key}: {figure}");
            assert_eq!(figure["value"], this, "{key}");
        }

        // The terminal says the same, with the medians.
        let text = db.tidings(&["stats", "122"]).stdout;
        assert!(text.contains("against the previous issues (median of issues 114 to 121; trend over issues 111 to 122"), "{text}");
        assert!(text.contains("the list: 11 active at send; since the previous issue 1 new, 1 lost"), "{text}");
        assert!(text.contains("5 voters of 8 delivered (62.5 %)"), "{text}");
        assert!(text.contains("click tracking is off"), "{text}");
        let open_line = text.lines().find(|l| l.trim_start().starts_with("open rate (unverified)")).expect("open rate");
        let open_median = compared["figures"]["open_rate_unverified"]["median"].as_f64().expect("a median");
        assert!(open_line.contains(&format!("median {:>9}", format!("{:.1} %", open_median * 100.0))), "{open_line}");

        // The list's page over its last 12 issues has one line per issue and the same comparison.
        let path = db.dir.path().join("weekly.html");
        let run = db.tidings(&["report", "--list", "weekly", "--last", "12", "--out", path.to_str().expect("path")]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let html = std::fs::read_to_string(&path).expect("the list report");
        for n in 111..=122 {
            assert!(html.contains(&format!("data-issue=\"{n}\"")), "issue {n}");
        }
        assert!(!html.contains("data-issue=\"110\""));
        let median = compared["figures"]["delivered"]["median"].to_string();
        assert!(html.contains(&format!("data-figure-row=\"delivered\"><th scope=\"row\">delivered</th><td class=\"count\" data-value=\"8\">8</td><td class=\"count\" data-median=\"{median}\"")), "{html}");
        let none = db.tidings(&["report", "--list", "weekly", "--last", "0", "--out", "x.html"]);
        assert_eq!(none.code, Some(2), "{}", none.stderr);
    }
}

/// The comparison, the list and the charts' hidden tables as the page has them, and the smallest axis label.
const READ_HISTORY: &str = r#"(function () {
  function values(cells) {
    return Array.prototype.map.call(cells, function (c) {
      var v = c.getAttribute('data-value'); return v === '' ? null : +v; });
  }
  var figures = {};
  document.querySelectorAll('tr[data-figure-row]').forEach(function (row) {
    var key = row.getAttribute('data-figure-row');
    var value = row.querySelector('[data-value]').getAttribute('data-value');
    var median = row.querySelector('[data-median]').getAttribute('data-median');
    var trend = document.querySelector('tr[data-trend="' + key + '"]');
    figures[key] = { value: value === '' ? null : +value, median: median === '' ? null : +median,
      trend: values(trend.querySelectorAll('td')) };
  });
  var audience = {};
  document.querySelectorAll('[data-audience]').forEach(function (d) {
    audience[d.getAttribute('data-audience')] = +d.getAttribute('data-value'); });
  var hidden = {};
  document.querySelectorAll('.visually-hidden table[data-table]').forEach(function (t) {
    hidden[t.getAttribute('data-table')] = values(t.querySelectorAll('td[data-value]'));
    var box = t.parentNode.getBoundingClientRect();
    hidden[t.getAttribute('data-table') + '_area'] = box.width * box.height;
  });
  var smallest = 1000;
  document.querySelectorAll('svg.chart text').forEach(function (t) {
    if (getComputedStyle(t).display === 'none') return;
    smallest = Math.min(smallest, parseFloat(getComputedStyle(t).fontSize) * t.getScreenCTM().a);
  });
  return { figures: figures, audience: audience, hidden: hidden, smallest: smallest,
    spark: document.querySelectorAll('svg.spark path.trend').length,
    innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_shows_the_medians_and_trend_lines_with_the_numbers_of_stats_json_to_screen_readers() {
    let Some(browser) = Browser::launch().await else { return };
    let mut history = build_history(TestDatabase::sqlite().await).await;
    history.app.stop().await;
    write_earlier_issues(&history).await;
    let db = &history.app.db;
    let expected = stats_json(db, &["122"]);
    // The terminal's page, kept beside the screenshots to look at.
    let text = db.tidings(&["stats", "122"]);
    assert_eq!(text.code, Some(0), "{}", text.stderr);
    std::fs::write(artifacts_dir().join("stats-122-history.txt"), &text.stdout).expect("keep the text");
    let path = db.dir.path().join("report-122-history.html");
    let run = db.tidings(&["report", "122", "--out", path.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    std::fs::copy(&path, artifacts_dir().join("report-122-history.html")).expect("keep the report");
    let list = db.dir.path().join("report-weekly.html");
    let run = db.tidings(&["report", "--list", "weekly", "--last", "12", "--out", list.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);

    let url = format!("file://{}", path.display());
    for width in [375u32, 1200] {
        let page = browser.page(width, 900).await;
        page.goto(&url).await;
        let shown = page.eval(READ_HISTORY).await;
        assert!(shown["scrollWidth"].as_f64() <= shown["innerWidth"].as_f64(), "no horizontal scrolling: {shown}");
        assert!(shown["smallest"].as_f64() >= Some(12.0), "axis labels at least 12 px at {width} px: {shown}");
        let figures = expected["compared"]["figures"].as_object().expect("figures");
        assert_eq!(shown["figures"].as_object().map(|f| f.len()), Some(figures.len()), "{shown}");
        assert_eq!(shown["spark"].as_u64(), Some(figures.len() as u64), "a trend line per figure");
        for (key, figure) in figures {
            let page_figure = &shown["figures"][key];
            assert_eq!(number(&page_figure["value"]), number(&figure["value"]), "{key}");
            assert_eq!(number(&page_figure["median"]), number(&figure["median"]), "{key}");
            let trend = |v: &Value| v.as_array().expect("a trend").iter().map(number).collect::<Vec<_>>();
            assert_eq!(trend(&page_figure["trend"]), trend(&figure["trend"]), "{key}");
        }
        assert_eq!(shown["audience"], expected["subscribers"]);
        // Every chart's numbers are in a table screen readers read, which takes no room on the page.
        let hidden = &shown["hidden"];
        assert_eq!(hidden["delivered"], expected["delivered_over_time"]["counts"]);
        assert_eq!(hidden["opens"], expected["opens_unverified"]["first_72_hours"]["counts"]);
        assert_eq!(hidden["unsubscribes"], expected["unsubscribes_per_day"]["counts"]);
        let distribution = &expected["rating"]["distribution"];
        let stars: Vec<Value> = (1..=5).rev().map(|s| distribution[s.to_string()].clone()).collect();
        assert_eq!(hidden["stars"], json!(stars));
        for table in ["delivered", "opens", "unsubscribes", "stars", "trends"] {
            assert!(hidden[format!("{table}_area")].as_f64() <= Some(1.0), "{table} is visually hidden: {hidden}");
        }
        page.screenshot(&artifacts_dir().join(format!("report-122-history-{width}px.png"))).await;

        let page = browser.page(width, 900).await;
        page.goto(&format!("file://{}", list.display())).await;
        let shown = page.eval(READ_HISTORY).await;
        assert!(shown["scrollWidth"].as_f64() <= shown["innerWidth"].as_f64(), "no horizontal scrolling: {shown}");
        assert_eq!(shown["figures"]["open_rate_unverified"]["trend"].as_array().map(Vec::len), Some(12));
        page.screenshot(&artifacts_dir().join(format!("report-weekly-last-12-{width}px.png"))).await;
    }
}
