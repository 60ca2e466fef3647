//! Signed links: forged ones, link scanners, one-click unsubscribe, the open pixel, click redirects and the
//! web versions of an issue.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, PRAGMA};
use tidings::domain::{LinkClaims, Purpose, SubscriberEmail};

use super::{PHONE, PUBLIC, SCANNER, WebApp, a_minute_later, address, client, page_text, urls_in_html};
use crate::both_backends;

/// The token in a link: what follows the route's prefix, before any query or `.gif`.
fn token_of(url: &str) -> String {
    let path = url.split_once("://").map_or(url, |(_, rest)| rest);
    let token = path.split('/').nth(2).expect("a token");
    token.split(['?', '.']).next().expect("a token").to_owned()
}

/// `token` with one character in its middle changed.
fn altered(token: &str) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).expect("ASCII")
}

both_backends! {
    async fn a_forged_altered_or_truncated_token_gets_the_same_404_page_and_changes_nothing(db) {
        let app = WebApp::start(db, 2, &[]).await;
        let links = app.links_of(&address(0));
        let erased = app.links_of(&address(1));
        let email = SubscriberEmail::parse(&address(1)).expect("address");
        assert!(app.db.store.erase_subscriber(&email, app.db.clock.now()).await.expect("erase").erased);
        let keys = app.settings.link_keys().expect("keys");
        let stranger = |purpose| keys.sign(&LinkClaims { purpose, list_id: app.db.list_id, subscriber_id: 999_999, issue_id: Some(app.issue_id) });
        let unsubscribe = token_of(&links.unsubscribe);
        let rate = token_of(&links.rate[4]);
        let bad_unsubscribe = [
            altered(&unsubscribe),
            unsubscribe[..unsubscribe.len() - 3].to_owned(),
            "AQIBAgNhYmNkZWZnaGlqa2xtbm9wcXJzdHV2".to_owned(),
            rate.clone(),
            stranger(Purpose::Unsubscribe),
            token_of(&erased.unsubscribe),
        ];
        let bad_rate = [altered(&rate), rate[..rate.len() - 1].to_owned(), unsubscribe.clone(), stranger(Purpose::Rate), token_of(&erased.rate[4])];
        let bad_view = [altered(&token_of(&links.view)), stranger(Purpose::View), token_of(&erased.view), rate.clone()];
        let bad_confirm = [stranger(Purpose::Confirm), unsubscribe.clone(), "x".repeat(200)];

        let before = app.snapshot().await;
        let reference = app.get("/u/not-a-token").await;
        assert_eq!(reference.status(), 404);
        let reference = reference.text().await.expect("body");
        assert!(reference.contains("Page not found"), "{reference}");

        let mut requests = Vec::new();
        for token in &bad_unsubscribe {
            requests.push(("GET", format!("/u/{token}"), None));
            requests.push(("POST", format!("/u/{token}"), Some("List-Unsubscribe=One-Click")));
            requests.push(("POST", format!("/u/{token}/resubscribe"), None));
        }
        for token in &bad_rate {
            requests.push(("GET", format!("/r/{token}?stars=5"), None));
            requests.push(("HEAD", format!("/r/{token}?stars=5"), None));
            requests.push(("POST", format!("/r/{token}"), Some("stars=5")));
        }
        for token in &bad_view {
            requests.push(("GET", format!("/v/{token}"), None));
            requests.push(("GET", format!("/l/{token}/1"), None));
        }
        for token in &bad_confirm {
            requests.push(("GET", format!("/c/{token}"), None));
            requests.push(("POST", format!("/c/{token}"), Some("")));
        }
        for (method, path, body) in requests {
            let url = app.local(&path);
            let request = match method {
                "GET" => app.client.get(url),
                "HEAD" => app.client.head(url),
                _ => app.client.post(url).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body(body.unwrap_or_default().to_owned()),
            };
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), 404, "{method} {path}");
            if method != "HEAD" {
                assert_eq!(response.text().await.expect("body"), reference, "{method} {path}");
            }
        }
        assert_eq!(app.snapshot().await, before);
    }

    async fn a_scanner_fetching_every_url_of_a_delivered_message_changes_no_subscription_vote_or_confirmation(db) {
        let app = WebApp::start(db, 3, &[]).await;
        a_minute_later(&app);
        let confirm = app.subscribe_and_get_confirm_link("newcomer@example.org", "New").await;
        let mut urls = app.links_of(&address(0)).all;
        let confirmation = app.smtp.messages().into_iter().find(|m| m.rcpt_to[0] == "newcomer@example.org").expect("sent");
        urls.extend(urls_in_html(&confirmation.parsed().expect("MIME").body_html(0).expect("html")));
        urls.push(confirm);
        let ours: Vec<&String> = urls.iter().filter(|url| url.starts_with(PUBLIC)).collect();
        assert!(ours.len() >= 10, "{ours:?}");
        let before = app.snapshot().await;

        for agent in [SCANNER, PHONE] {
            let scanner = client(agent);
            for url in &ours {
                let local = app.local(url);
                let got = scanner.get(&local).header("Sec-Purpose", "prefetch").send().await.expect("GET");
                assert!(got.status().is_success(), "{url}: {}", got.status());
                scanner.get(&local).send().await.expect("GET");
                scanner.head(&local).send().await.expect("HEAD");
            }
        }

        for i in 0..3 {
            assert_eq!(app.status_of(&address(i)).await, "active");
        }
        assert_eq!(app.status_of("newcomer@example.org").await, "pending");
        assert_eq!(app.db.store.tally(app.issue_id).await.expect("tally").votes, 0);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes WHERE flagged = false").await, 0);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind IN ('unsubscribe', 'resubscribe', 'confirm')").await, 0);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscriptions WHERE confirm_ip IS NOT NULL").await, 0);
        // Prefetches of rating links are kept as flagged evidence (HEADs write nothing), never as votes.
        let flagged = app.query_i64("SELECT COUNT(*) FROM votes WHERE flagged = true").await;
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, flagged);
        let (subscriptions, _) = before.split_once(" votes=").expect("snapshot");
        assert!(app.snapshot().await.starts_with(subscriptions));
    }

    async fn one_click_unsubscribe_answers_200_without_a_redirect_and_repeating_it_is_harmless(db) {
        let app = WebApp::start(db, 2, &[]).await;
        let url = app.links_of(&address(0)).unsubscribe_header;
        for _ in 0..2 {
            let response = app.client.post(app.local(&url))
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("List-Unsubscribe=One-Click")
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status(), 200);
            assert!(response.headers().get(LOCATION).is_none());
            assert!(response.text().await.expect("body").contains("You are unsubscribed"));
            assert_eq!(app.status_of(&address(0)).await, "unsubscribed");
        }
        let events = "SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe' AND detail = 'one-click' AND issue_id IS NOT NULL \
                      AND delivery_id IS NOT NULL";
        assert_eq!(app.query_i64(events).await, 1);

        let url = app.links_of(&address(1)).unsubscribe_header;
        let multipart = "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
        let response = app.client.post(app.local(&url))
            .header(CONTENT_TYPE, "multipart/form-data; boundary=XyZ")
            .body(multipart)
            .send()
            .await
            .expect("POST");
        assert_eq!(response.status(), 200);
        assert_eq!(app.status_of(&address(1)).await, "unsubscribed");
        assert_eq!(app.query_i64(events).await, 2);
    }

    async fn the_unsubscribe_page_has_one_button_its_get_changes_nothing_and_resubscribe_brings_the_reader_back(db) {
        let app = WebApp::start(db, 1, &[]).await;
        let url = app.links_of(&address(0)).unsubscribe;
        let page = app.get(&url).await.text().await.expect("body");
        assert_eq!(page.matches("<button").count(), 1, "{page}");
        assert_eq!(page.matches("<form method=\"post\"").count(), 1);
        assert_eq!(app.status_of(&address(0)).await, "active");

        let done = page_text(app.post_form(&url, &[]).await).await;
        assert!(done.contains("You are unsubscribed") && done.contains("/resubscribe"), "{done}");
        assert_eq!(app.status_of(&address(0)).await, "unsubscribed");
        let again = app.get(&url).await.text().await.expect("body");
        assert!(again.contains("Resubscribe"));

        let back = app.post_form(&format!("{url}/resubscribe"), &[]).await;
        assert_eq!(back.status(), 200);
        assert!(back.text().await.expect("body").contains("Welcome back"));
        assert_eq!(app.status_of(&address(0)).await, "active");
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind = 'unsubscribe' AND detail = 'page'").await, 1);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind = 'resubscribe'").await, 1);
    }

    async fn the_open_pixel_is_an_uncached_gif_that_records_opens_and_a_bad_token_still_gets_the_gif(db) {
        let mut app = WebApp::start(db, 2, &[]).await;
        let pixel = app.links_of(&address(0)).pixel.expect("a pixel");
        let mut bodies = Vec::new();
        for url in [pixel.clone(), pixel.clone(), pixel.clone(), format!("{PUBLIC}/o/forged.gif"), format!("{PUBLIC}/o/{}.gif", altered(&token_of(&pixel)))] {
            let response = app.get(&url).await;
            assert_eq!(response.status(), 200, "{url}");
            assert_eq!(response.headers()[CONTENT_TYPE], "image/gif");
            assert_eq!(response.headers()[CACHE_CONTROL], "no-store, no-cache, must-revalidate, private");
            assert_eq!(response.headers()[PRAGMA], "no-cache");
            bodies.push(response.bytes().await.expect("body"));
        }
        assert!(bodies.iter().all(|body| body == &bodies[0]) && bodies[0].starts_with(b"GIF89a"));
        // Stopping flushes the writer: no open is lost on the way out.
        app.stop().await;
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM opens").await, 1);
        assert_eq!(app.query_i64("SELECT count FROM opens").await, 3);
        assert_eq!(app.query_i64("SELECT first_at FROM opens").await, app.db.clock.now().as_millisecond());
    }

    async fn a_click_link_redirects_only_to_the_issues_stored_urls_and_counts_people_not_scanners(db) {
        let app = WebApp::start(db, 1, &[("TIDINGS_TRACKING__CLICKS", "true")]).await;
        let links = app.settings.link_builder().expect("links");
        let person = app.db.store.find_subscriber(&SubscriberEmail::parse(&address(0)).expect("address")).await.expect("query").expect("subscriber").0.id;
        let stored = app.db.store.issue_link(app.issue_id, 1).await.expect("query").expect("link 1");
        let url = tidings::http::click_url(&links, app.db.list_id, person, app.issue_id, 1);
        let response = app.get(&url).await;
        assert_eq!(response.status(), 303);
        assert_eq!(response.headers()[LOCATION], stored.as_str());
        client(SCANNER).get(app.local(&url)).send().await.expect("GET");
        app.client.head(app.local(&url)).send().await.expect("HEAD");
        assert_eq!(app.query_i64("SELECT count FROM clicks WHERE position = 1").await, 1);
        // Stats count the person's click, per link.
        let stats = app.db.tidings(&["stats", "122", "--json"]);
        assert_eq!(stats.code, Some(0), "{}", stats.stderr);
        let value: serde_json::Value = serde_json::from_str(&stats.stdout).expect("stats --json");
        let first = &value["clicks"][0];
        // A link is named by its host, never its full URL with its query.
        let host = stored.trim_start_matches("https://").split('/').next().expect("a host").to_owned();
        assert_eq!((first["position"].as_i64(), first["link"].as_str()), (Some(1), Some(host.as_str())), "{first}");
        assert!(first.get("url").is_none(), "{first}");
        assert_eq!((first["people"].as_i64(), first["clicks"].as_i64()), (Some(1), Some(1)), "{first}");
        assert!(value["clicks"].as_array().expect("clicks")[1..].iter().all(|link| link["clicks"] == 0));
        let text = app.db.tidings(&["stats", "122"]).stdout;
        assert!(text.contains("clicks per link (people, then every click") && text.contains(&host), "{text}");
        assert!(!text.contains(stored.as_str()), "{text}");
        let report = app.db.dir.path().join("report.html");
        let run = app.db.tidings(&["report", "122", "--out", report.to_str().expect("path")]);
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let html = std::fs::read_to_string(&report).expect("the report");
        let row = format!(r#"<tr data-position="1" data-people="1" data-clicks="1"><td class="reason">1. {host}</td>"#);
        assert!(html.contains(&row) && !html.contains(stored.as_str()), "{html}");

        let other_purpose = app.links_of(&address(0)).view.replace("/v/", "/l/") + "/1";
        for bad in [
            tidings::http::click_url(&links, app.db.list_id, person, app.issue_id, 0),
            tidings::http::click_url(&links, app.db.list_id, person, app.issue_id, 9_999),
            format!("{}/abc", url.trim_end_matches("/1")),
            format!("{PUBLIC}/l/{}/1", altered(&token_of(&url))),
            other_purpose,
        ] {
            let response = app.get(&bad).await;
            assert_eq!(response.status(), 404, "{bad}");
            assert!(response.headers().get(LOCATION).is_none());
        }
        // Links in mail already sent stay what they were.
        assert!(!app.db.store.save_issue_links(app.issue_id, &["https://evil.example/".to_owned()]).await.expect("query"));
    }

    async fn the_view_online_link_shows_the_readers_own_issue_without_the_pixel(db) {
        let app = WebApp::start(db, 1, &[]).await;
        let links = app.links_of(&address(0));
        let response = app.get(&links.view).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let page = response.text().await.expect("body");
        assert!(page.contains("No more tax-free?") && page.contains("Reader 0"));
        assert!(page.contains(&links.unsubscribe) && page.contains(&links.rate[3]));
        assert!(!page.contains("/o/"), "no open pixel on the web");
    }

    async fn the_public_issue_and_the_archive_show_sent_issues_with_their_tally(db) {
        let app = WebApp::start(db, 2, &[]).await;
        a_minute_later(&app);
        for (i, stars) in [(0, "5"), (1, "4")] {
            let url = app.links_of(&address(i)).rate[0].clone();
            assert_eq!(app.post_form(&url, &[("stars", stars)]).await.status(), 200);
        }
        let public = app.get("/issues/122").await;
        assert_eq!(public.status(), 200);
        let page = public.text().await.expect("body");
        assert!(page.contains("No more tax-free?") && page.contains("/links#rate"));
        assert!(!page.contains("/u/") && !page.contains("/r/") && !page.contains("Reader"), "nobody's links");
        for path in ["/archive", "/"] {
            let archive = page_text(app.get(path).await).await;
            assert!(archive.contains("/issues/122") && archive.contains("4.5/5 (2 votes)"), "{archive}");
        }
        for missing in ["/issues/999", "/issues/abc", "/issues/-1"] {
            assert_eq!(app.get(missing).await.status(), 404, "{missing}");
        }
        assert!(app.get("/links").await.text().await.expect("body").contains("Use the links in your email"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_posting_one_click_to_the_list_unsubscribe_url_unsubscribes_and_again_gets_200() {
    let app = WebApp::start(crate::helpers::TestDatabase::sqlite().await, 1, &[]).await;
    let url = app.local(&app.links_of(&address(0)).unsubscribe_header);
    for _ in 0..2 {
        let curl = tokio::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-X",
                "POST",
                "-d",
                "List-Unsubscribe=One-Click",
                &url,
            ])
            .output()
            .await
            .expect("run curl (Debian package curl)");
        assert_eq!(String::from_utf8_lossy(&curl.stdout), "200");
        assert_eq!(app.status_of(&address(0)).await, "unsubscribed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_is_recorded_when_open_tracking_is_off() {
    let mut app =
        WebApp::start(crate::helpers::TestDatabase::sqlite().await, 1, &[("TIDINGS_TRACKING__OPENS", "false")]).await;
    let links = app.links_of(&address(0));
    assert!(links.pixel.is_none(), "no pixel in the message");
    let person = app
        .db
        .store
        .find_subscriber(&SubscriberEmail::parse(&address(0)).expect("address"))
        .await
        .expect("query")
        .expect("subscriber")
        .0
        .id;
    let pixel = app.settings.link_builder().expect("links").issue_links(app.db.list_id, person, app.issue_id).open;
    let response = app.get(&pixel).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[CONTENT_TYPE], "image/gif");
    app.stop().await;
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM opens").await, 0);
}
