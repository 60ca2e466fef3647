//! Prometheus metrics in the text format (version 0.0.4), written by hand: HTTP requests by route and status
//! and their latency by route (kept here, in memory), and the totals of messages, the queue, opens and votes
//! (read from the database at each scrape, so every daemon on one database reports the same totals).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::guard::Rendered;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Requests seen by this process, per route template (`/r/{token}`, never a token).
#[derive(Default)]
pub(crate) struct HttpMetrics {
    routes: Mutex<BTreeMap<String, RouteStats>>,
}

#[derive(Default)]
struct RouteStats {
    statuses: BTreeMap<u16, u64>,
    /// Requests at or under each bound of [`BUCKETS`] (cumulative when written).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    seconds: f64,
}

impl HttpMetrics {
    fn observe(&self, route: &str, status: StatusCode, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if !routes.contains_key(route) {
            routes.insert(route.to_owned(), RouteStats::default());
        }
        let Some(stats) = routes.get_mut(route) else { return };
        *stats.statuses.entry(status.as_u16()).or_insert(0) += 1;
        if let Some(bucket) = BUCKETS.iter().position(|bound| seconds <= *bound) {
            stats.buckets[bucket] += 1;
        }
        stats.count += 1;
        stats.seconds += seconds;
    }

    fn write(&self, out: &mut String) {
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP tidings_http_requests_total HTTP requests answered, by route and status.\n");
        out.push_str("# TYPE tidings_http_requests_total counter\n");
        for (route, stats) in routes.iter() {
            for (status, count) in &stats.statuses {
                let _ = writeln!(out, "tidings_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}");
            }
        }
        out.push_str("# HELP tidings_http_request_duration_seconds Time to answer an HTTP request, by route.\n");
        out.push_str("# TYPE tidings_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "tidings_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let name = "tidings_http_request_duration_seconds";
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", stats.count);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", stats.seconds);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", stats.count);
        }
    }
}

/// Counts every request by route template and status, and times it.
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let clock = &state.web.clock;
    let started = clock.instant();
    let response = next.run(request).await;
    state.web.metrics.observe(&route, response.status(), clock.instant().saturating_duration_since(started));
    response
}

/// `GET /metrics`.
pub(crate) async fn scrape(State(state): State<AppState>) -> Response {
    let counts = match state.store.web_counts().await {
        Ok(counts) => counts,
        Err(e) => return super::internal_error(&state, "metrics: cannot read the totals", &e),
    };
    let missed = match state.store.missed_slot_count().await {
        Ok(missed) => missed,
        Err(e) => return super::internal_error(&state, "metrics: cannot count the missed slots", &e),
    };
    let reports = match state.store.report_counts().await {
        Ok(reports) => reports,
        Err(e) => return super::internal_error(&state, "metrics: cannot count the reports", &e),
    };
    let dropped = i64::try_from(state.web.opens.dropped()).unwrap_or(i64::MAX);
    let totals = [
        ("tidings_messages_sent_total", "counter", "Messages accepted by the relay.", counts.sent),
        ("tidings_messages_failed_total", "counter", "Messages given up on or hard-bounced.", counts.failed),
        ("tidings_queue_depth", "gauge", "Deliveries not yet settled (queued, sending, retrying).", counts.queue_depth),
        ("tidings_opens_total", "counter", "Open pixel hits recorded (unverified).", counts.opens),
        ("tidings_unique_opens", "gauge", "Subscriber and issue pairs with an open (unverified).", counts.unique_opens),
        ("tidings_votes_total", "counter", "Star votes that count, one per subscriber and issue.", counts.votes),
        ("tidings_flagged_votes_total", "counter", "Votes that looked automated, left out.", counts.flagged_votes),
        ("tidings_opens_dropped_total", "counter", "Opens this process could not write.", dropped),
        ("tidings_slots_missed_total", "counter", "Weekly slots that passed with nothing queued.", missed),
    ];
    let mut out = String::with_capacity(4096);
    for (name, kind, help, value) in totals {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    }
    out.push_str(
        "# HELP tidings_reports_total Reports that came back after sending (bounces, complaints, auto-replies, ...), \
         by kind.\n# TYPE tidings_reports_total counter\n",
    );
    for kind in crate::reports::BounceKind::ALL.map(|kind| kind.as_str()) {
        let count = reports.iter().find(|(k, _)| k == kind).map_or(0, |(_, count)| *count);
        let _ = writeln!(out, "tidings_reports_total{{kind=\"{kind}\"}} {count}");
    }
    state.web.metrics.write(&mut out);
    (StatusCode::OK, Rendered, [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}
