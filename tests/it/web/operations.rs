//! Operations and hardening: `/metrics`, security headers, caching, body and rate limits, and the plain pages
//! for unknown routes and methods.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};

use super::{WebApp, a_minute_later, address};
use crate::both_backends;
use crate::helpers::TestDatabase;

both_backends! {
    async fn metrics_report_messages_the_queue_opens_votes_and_http_requests(db) {
        let mut app = WebApp::start(db, 3, &[]).await;
        a_minute_later(&app);
        let links = app.links_of(&address(0));
        assert_eq!(app.post_form(&links.rate[4], &[("stars", "5")]).await.status(), 200);
        assert_eq!(app.get(&links.pixel.expect("a pixel")).await.status(), 200);
        assert_eq!(app.get("/no/such/page").await.status(), 404);

        let response = app.get("/metrics").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain; version=0.0.4; charset=utf-8");
        let text = response.text().await.expect("body");
        for line in [
            "tidings_messages_sent_total 3",
            "tidings_messages_failed_total 0",
            "tidings_queue_depth 0",
            "tidings_votes_total 1",
            "tidings_flagged_votes_total 0",
            "# TYPE tidings_opens_total counter",
            "tidings_http_requests_total{route=\"/r/{token}\",status=\"200\"} 1",
            "tidings_http_requests_total{route=\"/o/{*file}\",status=\"200\"} 1",
            "tidings_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "# TYPE tidings_http_request_duration_seconds histogram",
            "tidings_http_request_duration_seconds_bucket{route=\"/r/{token}\",le=\"+Inf\"} 1",
            "tidings_http_request_duration_seconds_count{route=\"/r/{token}\"} 1",
        ] {
            assert!(text.contains(line), "`{line}` missing from:\n{text}");
        }
        assert!(!text.contains(&links.rate[4]), "no token in a label");
        app.stop().await;
        let opens = app.db.store.web_counts().await.expect("counts").opens;
        assert_eq!(opens, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers_and_personal_pages_are_never_stored() {
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let links = app.links_of(&address(0));
    let personal = [links.unsubscribe.clone(), links.rate[3].clone(), links.view.clone()];
    let public = ["/archive".to_owned(), "/subscribe".to_owned(), "/issues/122".to_owned(), "/nope".to_owned()];
    for url in personal.iter().chain(&public).chain([&links.pixel.clone().expect("pixel"), &"/metrics".to_owned()]) {
        let response = app.get(url).await;
        let headers = response.headers().clone();
        let csp = headers["content-security-policy"].to_str().expect("ASCII");
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(!csp.contains("script-src") && !csp.contains("http"), "no script and no external source: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(headers["x-frame-options"], "DENY", "{url}");
        if personal.contains(url) {
            assert_eq!(headers[CACHE_CONTROL], "no-store", "{url}");
        }
        if headers[CONTENT_TYPE].to_str().expect("ASCII").starts_with("text/html") {
            let page = response.text().await.expect("body");
            assert!(!page.contains("<script") && !page.contains("<link"), "{url}: no script, no external stylesheet");
            for attribute in ["src=\"http", "src='http", "url(http"] {
                assert!(!page.contains(attribute), "{url}: an external asset ({attribute})");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_gets_a_413_page() {
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let big = format!("email=a%40example.org&name={}", "x".repeat(20_000));
    let response = app
        .client
        .post(app.local("/subscribe"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert!(response.text().await.expect("body").contains("Too much data"));
    let json = format!("{{\"email\":\"a@example.org\",\"name\":\"{}\"}}", "x".repeat(20_000));
    let response = app
        .client
        .post(app.local("/api/subscribe"))
        .header(CONTENT_TYPE, "application/json")
        .body(json)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 413);
    assert!(response.json::<serde_json::Value>().await.expect("JSON")["error"].is_string());
    let unsubscribe = app.local(&app.links_of(&address(0)).unsubscribe);
    let response = app.client.post(unsubscribe).body(big).send().await.expect("POST");
    assert_eq!(response.status(), 413);
    assert_eq!(app.status_of(&address(0)).await, "active");
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscribers").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_from_one_address_get_a_429_page_but_the_pixel_is_never_limited() {
    let limits = [("TIDINGS_HTTP__RATE_LIMIT_PER_MINUTE", "5"), ("TIDINGS_HTTP__RATE_LIMIT_BURST", "5")];
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &limits).await;
    for _ in 0..5 {
        assert_eq!(app.get("/archive").await.status(), 200);
    }
    let limited = app.get("/archive").await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers()[RETRY_AFTER].to_str().expect("ASCII").parse::<u64>().expect("seconds") >= 1);
    assert!(limited.text().await.expect("body").contains("Slow down"));
    let pixel = app.links_of(&address(0)).pixel.expect("pixel");
    for _ in 0..50 {
        assert_eq!(app.get(&pixel).await.status(), 200);
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_and_a_wrong_method_get_plain_pages() {
    let app = WebApp::start(TestDatabase::sqlite().await, 0, &[]).await;
    let missing = app.get("/wp-login.php").await;
    assert_eq!(missing.status(), 404);
    let missing = missing.text().await.expect("body");
    assert_eq!(app.get("/u/whatever").await.text().await.expect("body"), missing);
    let wrong = app.client.put(app.local("/subscribe")).send().await.expect("PUT");
    assert_eq!(wrong.status(), 405);
    assert!(wrong.headers().contains_key("allow"));
    assert!(wrong.text().await.expect("body").contains("<h1>"));
}
