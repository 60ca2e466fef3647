//! The web's promises at their edges, found from outside: the pixel is a GIF whatever the path, a large upload
//! gets the 413 page and never a reset, command-line clients and HTTP libraries vote as scanners do, and HEAD
//! requests on rating links write nothing.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, PRAGMA};

use super::{WebApp, a_minute_later, address, client};
use crate::both_backends;
use crate::helpers::TestDatabase;

/// The token of a pixel URL (`.../o/TOKEN.gif`).
fn pixel_token(url: &str) -> String {
    url.rsplit_once("/o/").expect("a pixel URL").1.trim_end_matches(".gif").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_path_under_the_pixel_gets_the_uncached_gif_and_only_the_exact_token_records_an_open() {
    let mut app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let token = pixel_token(&app.links_of(&address(0)).pixel.expect("a pixel"));
    let paths = [
        "/o/%FF.gif".to_owned(),
        format!("/o/{token}%FF.gif"),
        format!("/o/{token}.gif%FF"),
        "/o/%C3%28".to_owned(),
        "/o/".to_owned(),
        "/o/a/b/c.gif".to_owned(),
        "/o/..%2F..%2Fetc%2Fpasswd".to_owned(),
        "/o/x.png?y=%FF".to_owned(),
        format!("/o/{token}.gif"),
    ];
    let mut gif = None;
    for path in &paths {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()[CONTENT_TYPE], "image/gif", "{path}");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store, no-cache, must-revalidate, private", "{path}");
        assert_eq!(response.headers()[PRAGMA], "no-cache", "{path}");
        let body = response.bytes().await.expect("body");
        assert!(body.starts_with(b"GIF89a") && body.len() == 43, "{path}: not the 1x1 GIF");
        assert!(gif.get_or_insert_with(|| body.clone()) == &body, "{path}: another image");
    }
    app.stop().await;
    assert_eq!(app.query_i64("SELECT COALESCE(SUM(count), 0) FROM opens").await, 1, "only the exact token counts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_megabyte_upload_to_any_route_gets_the_413_page_never_a_reset() {
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let rate = app.links_of(&address(0)).rate[4].clone();
    let megabyte = vec![b'x'; 1024 * 1024];
    let routes =
        ["/subscribe".to_owned(), "/api/subscribe".to_owned(), rate, "/healthz".to_owned(), "/nope".to_owned()];
    for route in &routes {
        for round in 0..5 {
            let url = app.local(route);
            let request = app.client.post(&url).header(CONTENT_TYPE, "application/x-www-form-urlencoded");
            let response = request.body(megabyte.clone()).send().await;
            let response = response.unwrap_or_else(|e| panic!("{route} round {round}: {e:?}"));
            assert_eq!(response.status(), 413, "{route}");
            let body = response.text().await.unwrap_or_else(|e| panic!("{route} round {round}: {e:?}"));
            assert!(body.contains("Too much data") || body.contains("payload too large"), "{route}: {body}");
        }
        // Chunked, with no length announced.
        let path = app.local(route).trim_start_matches(&app.base).to_owned();
        let answer = chunked_upload(&app, &path, &megabyte).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{route}: {answer}");
    }
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, 0);
}

/// Sends `body` in 64 KiB chunks to `path` over a raw connection, then reads the whole answer.
async fn chunked_upload(app: &WebApp, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nTransfer-Encoding: chunked\r\n\
                        Content-Type: application/x-www-form-urlencoded\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    for chunk in body.chunks(64 * 1024) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await.expect("chunk size");
        stream.write_all(chunk).await.expect("chunk");
        stream.write_all(b"\r\n").await.expect("chunk end");
    }
    stream.write_all(b"0\r\n\r\n").await.expect("last chunk");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("the answer, not a reset");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Command-line HTTP clients and HTTP libraries, as they announce themselves.
const CLIENTS: &[&str] = &[
    "curl/8.5.0",
    "Wget/1.21.4",
    "python-requests/2.31.0",
    "Go-http-client/1.1",
    "libwww-perl/6.72",
    "okhttp/4.12.0",
    "axios/1.6.8",
    "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
    "Java/17.0.9",
    "HTTPie/3.2.2",
    "python-httpx/0.27.0",
    "Ruby",
    "GuzzleHttp/7",
    "PostmanRuntime/7.36.0",
    "Mozilla/5.0 (Windows NT; Windows NT 10.0; en-US) WindowsPowerShell/5.1.19041.3803",
];

both_backends! {
    async fn a_vote_from_a_command_line_client_or_an_http_library_is_flagged_like_a_scanners(db) {
        let app = WebApp::start(db, CLIENTS.len() + 1, &[]).await;
        a_minute_later(&app);
        for (i, agent) in CLIENTS.iter().enumerate() {
            let url = app.local(&app.links_of(&address(i)).rate[4]);
            let response = client(agent).post(url).form(&[("stars", "5")]).send().await.expect("POST");
            assert_eq!(response.status(), 200, "{agent}");
        }
        let person = app.local(&app.links_of(&address(CLIENTS.len())).rate[1]);
        assert_eq!(app.client.post(person).form(&[("stars", "2")]).send().await.expect("POST").status(), 200);

        let tally = app.db.store.tally(app.issue_id).await.expect("tally");
        assert_eq!((tally.votes, tally.stars), (1, 2), "only the person's vote counts");
        let flagged = "SELECT COUNT(*) FROM votes WHERE flagged = true AND flag_reason = 'scanner user agent'";
        assert_eq!(app.query_i64(flagged).await, CLIENTS.len() as i64);
    }

    async fn twenty_heads_on_a_rating_link_write_nothing_and_twenty_prefetches_write_one_flagged_row(db) {
        let app = WebApp::start(db, 2, &[]).await;
        a_minute_later(&app);
        let before = app.snapshot().await;
        let head = app.local(&app.links_of(&address(0)).rate[4]);
        for _ in 0..20 {
            assert_eq!(app.client.head(&head).send().await.expect("HEAD").status(), 200);
        }
        assert_eq!(app.snapshot().await, before, "a HEAD writes nothing");

        let prefetched = app.local(&app.links_of(&address(1)).rate[4]);
        for _ in 0..20 {
            let response = app.client.get(&prefetched).header("Sec-Purpose", "prefetch").send().await.expect("GET");
            assert_eq!(response.status(), 200);
        }
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes WHERE flagged = true").await, 1);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind = 'rating'").await, 1);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes WHERE flagged = false").await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscribe_limit_allows_the_documented_burst_of_five_then_refuses() {
    let app = WebApp::start(TestDatabase::sqlite().await, 0, &[("TIDINGS_HTTP__SUBSCRIBE_PER_HOUR", "20")]).await;
    let mut statuses = Vec::new();
    for i in 0..7 {
        let email = format!("burst{i}@example.org");
        let response = app.post_form("/subscribe", &[("email", &email), ("name", ""), ("website", "")]).await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    // Pages are not limited by it.
    assert_eq!(app.get("/subscribe").await.status(), 200);
}
