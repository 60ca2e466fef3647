//! The web versions of an issue say what fits their reader: the personal one (`/v/`) where its subscriber
//! stands with the list now, the public one (`/issues/N`) the rating so far; neither offers "View in your
//! browser", which only the email does.

use tidings::store::Store;

use super::{PHONE, WebApp, a_minute_later, address, decoded};
use crate::both_backends;
use crate::helpers::TestDatabase;
use crate::helpers::browser::{Browser, artifacts_dir};

const IN_BROWSER: &str = "View in your browser";
const SUBSCRIBED: &str = "because you subscribed to it";

/// The email's HTML part as `address` received it.
fn email_html(app: &WebApp, address: &str) -> String {
    let message = app.message_to(address);
    let parsed = message.parsed().expect("MIME");
    decoded(&parsed.body_html(0).expect("HTML part"))
}

/// Sets `address`'s subscription to `status`, as a bounce or a complaint does.
async fn set_status(app: &WebApp, address: &str, status: &str) {
    let sql = "UPDATE subscriptions SET status = $1 WHERE subscriber_id = \
               (SELECT id FROM subscribers WHERE email = $2)";
    let done = match &app.db.store {
        Store::Sqlite(pool) => {
            sqlx::query(sql).bind(status).bind(address).execute(pool).await.map(|r| r.rows_affected())
        }
        Store::Postgres(pool) => {
            sqlx::query(sql).bind(status).bind(address).execute(pool).await.map(|r| r.rows_affected())
        }
    };
    assert_eq!(done.expect("update the subscription"), 1);
}

async fn page(app: &WebApp, url: &str) -> String {
    let response = app.get(url).await;
    assert_eq!(response.status(), 200, "{url}");
    decoded(&response.text().await.expect("body"))
}

both_backends! {
    async fn the_view_online_page_says_where_its_reader_stands_now_and_never_offers_view_in_your_browser(db) {
        let app = WebApp::start(db, 1, &[]).await;
        let links = app.links_of(&address(0));
        let email = email_html(&app, &address(0));
        assert_eq!(email.matches(IN_BROWSER).count(), 2, "the email links its web version twice");
        assert!(email.contains(SUBSCRIBED) && email.contains(&links.unsubscribe));

        let active = page(&app, &links.view).await;
        assert!(active.contains("No more tax-free?") && active.contains(SUBSCRIBED), "{active}");
        assert!(active.contains(&links.unsubscribe) && !active.contains(IN_BROWSER), "{active}");

        assert_eq!(app.post_form(&links.unsubscribe, &[]).await.status(), 200);
        assert_eq!(app.status_of(&address(0)).await, "unsubscribed");
        let left = page(&app, &links.view).await;
        assert!(left.contains("You unsubscribed from") && left.contains("Subscribe again"), "{left}");
        assert!(left.contains(&links.unsubscribe), "the way back is the unsubscribe page's resubscribe button");
        assert!(!left.contains(SUBSCRIBED) && !left.contains(IN_BROWSER), "{left}");

        for (status, says) in [
            ("bounced", "mail to your address came back"),
            ("complained", "you reported one of its emails as\n      spam"),
            ("pending", "waits for you to confirm it"),
        ] {
            set_status(&app, &address(0), status).await;
            let shown = page(&app, &links.view).await;
            assert!(shown.contains(says), "{status}: {shown}");
            assert!(!shown.contains(SUBSCRIBED) && !shown.contains(IN_BROWSER), "{status}: {shown}");
            assert!(!shown.contains("Subscribe again") && !shown.contains(">Unsubscribe<"), "{status}: {shown}");
        }
    }

    async fn the_public_issue_shows_the_rating_so_far_under_the_stars_like_the_archive(db) {
        let app = WebApp::start(db, 2, &[]).await;
        let before = page(&app, "/issues/122").await;
        assert!(before.contains("Rating so far: no votes yet"), "{before}");
        assert!(before.contains("This is the web version of") && !before.contains(IN_BROWSER), "{before}");
        assert!(!before.contains(SUBSCRIBED), "{before}");

        a_minute_later(&app);
        for (i, stars) in [(0, "5"), (1, "4")] {
            let url = app.links_of(&address(i)).rate[0].clone();
            assert_eq!(app.post_form(&url, &[("stars", stars)]).await.status(), 200);
        }
        let after = page(&app, "/issues/122").await;
        let stars = after.find("Rate 5 of 5").expect("the stars");
        let tally = after.find("Rating so far: 4.5/5 (2 votes)").expect("the tally");
        assert!(tally > stars, "the tally is under the stars");
        assert!(page(&app, "/archive").await.contains("Rated 4.5/5 (2 votes)"), "the archive says the same");
        // Nobody's email shows a tally.
        assert!(!email_html(&app, &address(0)).contains("Rating so far"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_the_public_issue_shows_the_rating_and_an_unsubscribed_reader_reads_that_they_left() {
    let Some(browser) = Browser::launch().await else { return };
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    a_minute_later(&app);
    let links = app.links_of(&address(0));
    assert_eq!(app.post_form(&links.rate[0], &[("stars", "4")]).await.status(), 200);
    assert_eq!(app.post_form(&links.unsubscribe, &[]).await.status(), 200);

    let page = browser.page(375, 800).await;
    page.set_user_agent(PHONE).await;
    let shown = "({ text: document.body.innerText, scroll: document.documentElement.scrollWidth, \
                 inner: window.innerWidth })";
    for (url, name, says) in [
        (app.local("/issues/122"), "public-issue", "Rating so far: 4/5 (1 vote)"),
        (app.local(&links.view), "view-online-unsubscribed", "You unsubscribed from"),
    ] {
        page.goto(&url).await;
        let seen = page.eval(shown).await;
        let text = seen["text"].as_str().expect("text");
        assert!(text.contains(says) && !text.contains(IN_BROWSER) && !text.contains(SUBSCRIBED), "{name}: {text}");
        assert!(seen["scroll"].as_f64() <= seen["inner"].as_f64(), "{name} scrolls sideways: {seen}");
        page.screenshot(&artifacts_dir().join(format!("web-{name}-375px.png"))).await;
    }
}
