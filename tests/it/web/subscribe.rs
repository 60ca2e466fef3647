//! Subscribing on the web: the form and the JSON endpoint, the confirmation email through the SMTP test server,
//! the confirm link (its GET shows a page, its POST confirms), the honeypot, and pending subscriptions that
//! lapse.

use jiff::SignedDuration;
use reqwest::header::CONTENT_TYPE;
use tidings::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus};

use super::{MAIL_WAIT, PHONE, WebApp, address, decoded, page_text};
use crate::both_backends;
use crate::helpers::TestDatabase;

both_backends! {
    async fn double_opt_in_sends_a_confirmation_whose_get_changes_nothing_and_whose_post_confirms(db) {
        let app = WebApp::start(db, 0, &[]).await;
        let form = app.get("/subscribe").await.text().await.expect("body");
        assert!(form.contains("name=\"email\"") && form.contains("name=\"website\""));
        let link = app.subscribe_and_get_confirm_link("ana@example.org", "Ana").await;
        let message = app.smtp.messages().pop().expect("the confirmation email");
        let parsed = message.parsed().expect("MIME");
        assert_eq!(parsed.subject(), Some("Confirm your subscription to What's up in China"));
        assert!(parsed.body_text(0).expect("text").contains("Hello Ana,"));
        assert_eq!(app.status_of("ana@example.org").await, "pending");
        let request_ip = "SELECT request_ip FROM subscriptions WHERE request_user_agent LIKE '%Android 14%'";
        assert_eq!(app.query_text(request_ip).await.as_deref(), Some("127.0.0.1"));

        let page = app.get(&link).await;
        assert_eq!(page.status(), 200);
        assert!(page.text().await.expect("body").contains("Confirm my subscription"));
        app.client.head(app.local(&link)).send().await.expect("HEAD");
        let prefetch = app.client.post(app.local(&link)).header("Sec-Purpose", "prefetch").send().await.expect("POST");
        assert_eq!(prefetch.status(), 200);
        assert_eq!(app.status_of("ana@example.org").await, "pending");

        for _ in 0..2 {
            let confirmed = app.post_form(&link, &[]).await;
            assert_eq!(confirmed.status(), 200);
            assert!(confirmed.text().await.expect("body").contains("Welcome!"));
            assert_eq!(app.status_of("ana@example.org").await, "active");
        }
        let email = SubscriberEmail::parse("ana@example.org").expect("address");
        let (person, subscriptions) = app.db.store.find_subscriber(&email).await.expect("query").expect("subscriber");
        let subscription = &subscriptions[0];
        assert_eq!((person.name.as_str(), subscription.source.as_str()), ("Ana", "form"));
        assert_eq!(subscription.consent_at, Some(app.db.clock.now().as_millisecond()));
        assert_eq!(subscription.confirm_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(subscription.confirm_user_agent.as_deref(), Some(PHONE));
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind = 'confirm'").await, 1);
    }

    async fn the_json_endpoint_subscribes_and_refuses_an_invalid_address_with_the_reason(db) {
        let app = WebApp::start(db, 0, &[]).await;
        let url = app.local("/api/subscribe");
        let accepted = app.client.post(&url).json(&serde_json::json!({ "email": "bo@example.net", "name": "Bo" })).send().await.expect("POST");
        assert_eq!(accepted.status(), 202);
        let body: serde_json::Value = accepted.json().await.expect("JSON");
        assert_eq!(body["status"], "check_inbox");
        app.smtp.wait_for_messages(1, MAIL_WAIT).await.expect("the confirmation email");
        assert_eq!(app.status_of("bo@example.net").await, "pending");

        let invalid = app.client.post(&url).json(&serde_json::json!({ "email": "bo@" })).send().await.expect("POST");
        assert_eq!(invalid.status(), 422);
        let body: serde_json::Value = invalid.json().await.expect("JSON");
        assert!(body["error"].as_str().expect("a reason").contains("no domain"), "{body}");
        let garbage = app.client.post(&url).header(CONTENT_TYPE, "application/json").body("{not json").send().await.expect("POST");
        assert_eq!(garbage.status(), 400);
        assert!(garbage.json::<serde_json::Value>().await.expect("JSON")["error"].is_string());
    }

    async fn a_time_zone_given_on_subscribing_is_checked_and_kept_for_local_time_sends(db) {
        let app = WebApp::start(db, 0, &[]).await;
        let url = app.local("/api/subscribe");
        let bad = app.client.post(&url).json(&serde_json::json!({ "email": "mars@example.net", "tz": "Mars/Olympus" })).send().await.expect("POST");
        assert_eq!(bad.status(), 422);
        let body: serde_json::Value = bad.json().await.expect("JSON");
        let reason = body["error"].as_str().expect("a reason");
        assert!(reason.contains("Mars/Olympus") && reason.contains("not an IANA time zone"), "{body}");
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscribers").await, 0, "nothing is recorded");

        let form = app.post_form("/subscribe", &[("email", "ana@example.net"), ("tz", "Nowhere/City")]).await;
        assert_eq!(form.status(), 422);
        let html = decoded(&form.text().await.expect("body"));
        assert!(html.contains("Nowhere/City"), "the form shows the reason and keeps what was typed: {html}");
        // The field that failed is the one marked, and the message has no raw backticks.
        let tz_input = html.split("<input").find(|input| input.contains("id=\"tz\"")).expect("the tz field");
        assert!(tz_input.contains("aria-invalid=\"true\"") && tz_input.contains("aria-describedby=\"form-error\""), "{tz_input}");
        let email_input = html.split("<input").find(|input| input.contains("id=\"email\"")).expect("the email field");
        assert!(!email_input.contains("aria-invalid"), "{email_input}");
        let alert = html.split("role=\"alert\">").nth(1).and_then(|rest| rest.split("</p>").next()).expect("the message");
        assert!(!alert.contains('`'), "{alert}");

        let good = app.client.post(&url).json(&serde_json::json!({ "email": "mei@example.net", "tz": "Asia/Shanghai" })).send().await.expect("POST");
        assert_eq!(good.status(), 202);
        let zone = app.query_text("SELECT time_zone FROM subscribers WHERE email = 'mei@example.net'").await;
        assert_eq!(zone.as_deref(), Some("Asia/Shanghai"));
    }

    async fn an_expired_confirmation_link_says_so_and_lapsed_requests_are_reverted_or_forgotten(db) {
        // Someone who had left comes back through the form, and someone new signs up; neither confirms.
        let now = db.clock.now();
        let returning = SubscriberEmail::parse("back@example.org").expect("address");
        let added = db.store.add_subscriber(db.list_id, &returning, &SubscriberName::default(), None, SubscriptionStatus::Active, ConsentSource::Cli, now).await.expect("add");
        let tidings::store::AddOutcome::Added { subscriber_id } = added else { panic!("{added:?}") };
        assert!(db.store.unsubscribe(db.list_id, subscriber_id, now).await.expect("unsubscribe"));
        let app = WebApp::start(db, 0, &[]).await;
        app.subscribe_and_get_confirm_link("back@example.org", "").await;
        let link = app.subscribe_and_get_confirm_link("late@example.org", "").await;
        assert_eq!(app.status_of("back@example.org").await, "pending");

        app.db.clock.advance(SignedDuration::from_hours(8 * 24));
        let page = app.get(&link).await;
        assert_eq!(page.status(), 410);
        let page = page_text(page).await;
        assert!(page.contains("This link has expired") && page.contains("href=\"/subscribe\""), "{page}");
        assert_eq!(app.post_form(&link, &[]).await.status(), 410);
        assert_eq!(app.status_of("late@example.org").await, "pending");

        let lapsed = app.db.store.expire_pending_subscriptions(app.db.clock.now()).await.expect("expire");
        assert_eq!((lapsed.reverted, lapsed.removed), (1, 0));
        assert_eq!(app.status_of("back@example.org").await, "unsubscribed");
        assert_eq!(app.get(&link).await.status(), 410, "kept a while, so the link can say it expired");

        app.db.clock.advance(SignedDuration::from_hours(7 * 24));
        let lapsed = app.db.store.expire_pending_subscriptions(app.db.clock.now()).await.expect("expire");
        assert_eq!((lapsed.reverted, lapsed.removed), (0, 1));
        let late = SubscriberEmail::parse("late@example.org").expect("address");
        assert!(app.db.store.find_subscriber(&late).await.expect("query").is_none(), "the address is forgotten");
        assert_eq!(app.get(&link).await.status(), 404);
        assert_eq!(app.status_of("back@example.org").await, "unsubscribed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_never_reveals_whether_an_address_is_already_subscribed() {
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let before = app.smtp.message_count();
    let known = app.post_form("/subscribe", &[("email", &address(0)), ("name", "Someone Else")]).await;
    assert_eq!(known.status(), 200);
    let known = known.text().await.expect("body");
    let new =
        app.post_form("/subscribe", &[("email", "new@example.org"), ("name", "")]).await.text().await.expect("body");
    assert_eq!(known, new);
    let api = app.local("/api/subscribe");
    let known = app.client.post(&api).json(&serde_json::json!({ "email": address(0) })).send().await.expect("POST");
    let new =
        app.client.post(&api).json(&serde_json::json!({ "email": "other@example.org" })).send().await.expect("POST");
    assert_eq!(known.status(), new.status());
    assert_eq!(known.text().await.expect("body"), new.text().await.expect("body"));
    // Only the two new addresses get an email; the subscriber keeps their status and name.
    let messages = app.smtp.wait_for_messages(before + 2, MAIL_WAIT).await.expect("two confirmations");
    let recipients: Vec<&str> = messages[before..].iter().map(|m| m.rcpt_to[0].as_str()).collect();
    assert!(recipients.contains(&"new@example.org") && recipients.contains(&"other@example.org"), "{recipients:?}");
    app.message_to(&address(0));
    assert_eq!(app.status_of(&address(0)).await, "active");
    assert_eq!(
        app.query_text("SELECT name FROM subscribers WHERE email = 'reader0@example.com'").await.as_deref(),
        Some("Reader 0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filled_in_honeypot_gets_the_same_answer_and_does_nothing() {
    let app = WebApp::start(TestDatabase::sqlite().await, 0, &[]).await;
    let trapped =
        app.post_form("/subscribe", &[("email", "bot@example.org"), ("website", "http://spam.example")]).await;
    assert_eq!(trapped.status(), 200);
    let trapped = trapped.text().await.expect("body");
    let person = app.post_form("/subscribe", &[("email", "person@example.org"), ("website", "")]).await;
    assert_eq!(person.text().await.expect("body"), trapped);
    // The person's email arrives; the bot's never was queued before it.
    let messages = app.smtp.wait_for_messages(1, MAIL_WAIT).await.expect("one confirmation");
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].rcpt_to, vec!["person@example.org".to_owned()]);
    assert!(
        app.db
            .store
            .find_subscriber(&SubscriberEmail::parse("bot@example.org").expect("a"))
            .await
            .expect("q")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_address_shows_the_form_again_with_the_reason_and_what_was_typed_escaped() {
    let app = WebApp::start(TestDatabase::sqlite().await, 0, &[]).await;
    let response = app.post_form("/subscribe", &[("email", "<script>@"), ("name", "\"Ana\"")]).await;
    assert_eq!(response.status(), 422);
    let page = response.text().await.expect("body");
    assert!(page.contains("role=\"alert\"") && page.contains("no domain after the"), "{page}");
    assert!(!page.contains("<script>") && page.contains("&lt;script&gt;@"), "{page}");
    assert!(page.contains("value=\"&quot;Ana&quot;\""), "{page}");
    let email_input = page.split("<input").find(|input| input.contains("id=\"email\"")).expect("the email field");
    assert!(email_input.contains("aria-invalid=\"true\""), "{email_input}");
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscribers").await, 0);
}
