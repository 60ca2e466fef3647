//! Star ratings through the links of delivered messages: the form, the vote, the tally, and the votes that look
//! automated.

use reqwest::header::CONTENT_TYPE;

use super::{SCANNER, WebApp, a_minute_later, address, client, page_text};
use crate::both_backends;

both_backends! {
    async fn the_rating_page_shows_the_issue_title_with_the_chosen_stars_and_its_get_records_nothing(db) {
        let app = WebApp::start(db, 1, &[]).await;
        a_minute_later(&app);
        let url = app.links_of(&address(0)).rate[2].clone();
        assert!(url.ends_with("?stars=3"), "{url}");
        let response = app.get(&url).await;
        assert_eq!(response.status(), 200);
        let page = page_text(response).await;
        assert!(page.contains("So, what's up in China? Issue 122"), "{page}");
        assert!(page.contains("value=\"3\" checked"), "{page}");
        assert_eq!(page.matches("type=\"radio\"").count(), 5);
        assert_eq!(page.matches("<button").count(), 1);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, 0);
    }

    async fn ten_subscribers_vote_one_changes_their_mind_and_the_tally_is_right(db) {
        let app = WebApp::start(db, 10, &[]).await;
        a_minute_later(&app);
        let stars = [5, 4, 5, 3, 4, 5, 2, 4, 5, 3];
        let mut last = String::new();
        for (i, n) in stars.iter().enumerate() {
            let url = app.links_of(&address(i)).rate[*n - 1].clone();
            let response = app.post_form(&url, &[("stars", &n.to_string())]).await;
            assert_eq!(response.status(), 200);
            last = page_text(response).await;
        }
        assert!(last.contains("4/5 (10 votes)"), "{last}");
        let url = app.links_of(&address(6)).rate[0].clone();
        let changed = page_text(app.post_form(&url, &[("stars", "5")]).await).await;
        assert!(changed.contains("Thank you") && changed.contains("4.3/5 (10 votes)"), "{changed}");
        let tally = app.db.store.tally(app.issue_id).await.expect("tally");
        assert_eq!((tally.votes, tally.stars), (10, 43));
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, 10);
    }

    async fn one_token_posting_a_hundred_times_counts_as_one_vote(db) {
        let app = WebApp::start(db, 1, &[]).await;
        a_minute_later(&app);
        let url = app.local(&app.links_of(&address(0)).rate[3]);
        let posts = (0..100).map(|i| {
            let stars = if i == 99 { "4" } else { ["1", "2", "3", "4", "5"][i % 5] };
            app.client.post(&url).form(&[("stars", stars)]).send()
        });
        for response in futures_util::future::join_all(posts).await {
            assert_eq!(response.expect("POST").status(), 200);
        }
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, 1);
        assert_eq!(app.db.store.tally(app.issue_id).await.expect("tally").votes, 1);
    }

    async fn votes_that_look_automated_are_kept_flagged_and_left_out_of_the_tally(db) {
        let app = WebApp::start(db, 5, &[]).await;
        let rate = |i: usize| app.local(&app.links_of(&address(i)).rate[0]);
        // Seconds after delivery: no reader is that fast.
        assert_eq!(app.client.post(rate(0)).form(&[("stars", "1")]).send().await.expect("POST").status(), 200);
        a_minute_later(&app);
        // A HEAD is a scanner's and writes nothing.
        assert_eq!(app.client.head(rate(1)).send().await.expect("HEAD").status(), 200);
        assert_eq!(client(SCANNER).post(rate(2)).form(&[("stars", "1")]).send().await.expect("POST").status(), 200);
        let prefetch = app.client.post(rate(3)).header("Sec-Purpose", "prefetch").form(&[("stars", "1")]);
        assert_eq!(prefetch.send().await.expect("POST").status(), 200);
        let agentless = reqwest::Client::new().post(rate(3)).header(CONTENT_TYPE, "application/x-www-form-urlencoded").body("stars=2");
        assert_eq!(agentless.send().await.expect("POST").status(), 200);
        let person = app.client.post(rate(4)).form(&[("stars", "4")]).send().await.expect("POST");
        assert!(page_text(person).await.contains("4/5 (1 vote)"));

        let tally = app.db.store.tally(app.issue_id).await.expect("tally");
        assert_eq!((tally.votes, tally.stars), (1, 4));
        let reasons = [
            ("too soon after delivery", 1),
            ("HEAD request", 0),
            ("scanner user agent", 1),
            ("no user agent", 1),
        ];
        for (reason, count) in reasons {
            let sql = format!("SELECT COUNT(*) FROM votes WHERE flagged = true AND flag_reason = '{reason}'");
            assert_eq!(app.query_i64(&sql).await, count, "{reason}");
        }
        // The prefetch and the agentless vote came from one token: the flagged vote is the latest of them.
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes WHERE flagged = true").await, 3);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM events WHERE kind = 'rating' AND flagged = true").await, 4);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rating_outside_one_to_five_stars_gets_a_400_page() {
    let app = WebApp::start(crate::helpers::TestDatabase::sqlite().await, 1, &[]).await;
    a_minute_later(&app);
    let url = app.links_of(&address(0)).rate[0].clone();
    let base = url.split('?').next().expect("path").to_owned();
    for query in ["?stars=0", "?stars=6", "", "?stars=", "?stars=abc", "?stars=4.5", "?stars=99999999999999999999"] {
        let response = app.get(&format!("{base}{query}")).await;
        assert_eq!(response.status(), 400, "{query}");
        assert!(response.text().await.expect("body").contains("Pick from 1 to 5 stars"));
    }
    for stars in ["0", "6", "", "x"] {
        let response = app.post_form(&base, &[("stars", stars)]).await;
        assert_eq!(response.status(), 400, "{stars}");
    }
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM votes").await, 0);
}
