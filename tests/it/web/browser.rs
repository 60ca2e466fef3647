//! The pages in a real browser (headless Chromium at a 375 px phone's width, with a phone's user agent): a
//! reader rates the issue from the link in the email they received, unsubscribes and comes back, and a visitor
//! subscribes and confirms from the confirmation email. Every page fits the phone, keeps WCAG AA contrast, and
//! is kept as a screenshot in the artifacts folder.

use serde_json::Value;

use super::{MAIL_WAIT, PHONE, WebApp, a_minute_later, address, urls_in_text};
use crate::helpers::TestDatabase;
use crate::helpers::browser::{Browser, Page, artifacts_dir};

/// The text whose contrast with what is behind it falls furthest below WCAG AA, as a share of what it needs,
/// and whether the page scrolls sideways.
const MEASURE: &str = r#"(function () {
  function rgb(c) { var m = c.match(/[\d.]+/g) || [0, 0, 0, 0]; return { r: +m[0], g: +m[1], b: +m[2], a: m.length > 3 ? +m[3] : 1 }; }
  function lum(c) { return [c.r, c.g, c.b].map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0); }
  function background(e) { for (; e; e = e.parentElement) { var c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; } return { r: 255, g: 255, b: 255, a: 1 }; }
  var worst = 99, where = '';
  document.querySelectorAll('p, h1, h2, a, label, legend, button, li, span, div').forEach(function (e) {
    var box = e.getBoundingClientRect();
    if (!e.textContent.trim() || box.width <= 1 || box.height <= 1 || getComputedStyle(e).opacity === '0') return;
    if (Array.prototype.some.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); })) {
      var style = getComputedStyle(e), l1 = lum(rgb(style.color)), l2 = lum(background(e));
      var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
      var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
      var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
      if (ratio / needed < worst) { worst = ratio / needed; where = e.tagName + ' ' + ratio.toFixed(2) + ':1 ' + e.textContent.trim().slice(0, 40); }
    }
  });
  return { worst: worst, where: where, scroll: document.documentElement.scrollWidth, inner: window.innerWidth,
           text: document.body.innerText };
})()"#;

/// Checks the page fits the phone and is readable in light and dark mode, and keeps a screenshot.
async fn check_and_keep(page: &Page<'_>, name: &str) -> String {
    let measured = page.eval(MEASURE).await;
    assert!(measured["scroll"].as_f64() <= measured["inner"].as_f64(), "{name} scrolls sideways: {measured}");
    assert!(measured["worst"].as_f64().expect("ratio") >= 1.0, "{name}: contrast below AA: {}", measured["where"]);
    page.screenshot(&artifacts_dir().join(format!("web-{name}-375px.png"))).await;
    measured["text"].as_str().expect("text").to_owned()
}

async fn phone(browser: &Browser) -> Page<'_> {
    let page = browser.page(375, 800).await;
    page.set_user_agent(PHONE).await;
    page
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_rates_the_issue_from_the_received_email_and_sees_the_new_tally() {
    let Some(browser) = Browser::launch().await else { return };
    let app = WebApp::start(TestDatabase::sqlite().await, 3, &[]).await;
    a_minute_later(&app);
    for (i, stars) in [(1, "5"), (2, "3")] {
        assert_eq!(app.post_form(&app.links_of(&address(i)).rate[0], &[("stars", stars)]).await.status(), 200);
    }
    // The reader taps the fourth star in the email.
    let tapped = app.links_of(&address(0)).rate[3].clone();
    let page = phone(&browser).await;
    page.goto(&app.local(&tapped)).await;
    let text = check_and_keep(&page, "rate").await;
    assert!(text.contains("So, what's up in China? Issue 122"), "{text}");
    let checked = "document.querySelector('input[name=stars]:checked').value";
    assert_eq!(page.eval(checked).await, Value::from("4"));

    // A tap on the second star, then the keyboard: the arrow keys move along the stars.
    page.click("label[for=star-2]").await;
    assert_eq!(page.eval(checked).await, Value::from("2"));
    page.eval("document.querySelector('#star-2').focus()").await;
    for _ in 0..3 {
        page.press("ArrowRight", 39).await;
    }
    assert_eq!(page.eval(checked).await, Value::from("5"));
    let outline = page.eval("getComputedStyle(document.querySelector('label[for=star-5]')).outlineStyle").await;
    assert_eq!(outline, Value::from("solid"), "the focused star shows where the keyboard is");

    page.click_and_wait("button[type=submit]").await;
    let text = check_and_keep(&page, "rated").await;
    assert!(text.contains("Thank you!") && text.contains("4.3/5 (3 votes)"), "{text}");
    let tally = app.db.store.tally(app.issue_id).await.expect("tally");
    assert_eq!((tally.votes, tally.stars), (3, 13));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_unsubscribes_from_the_received_email_and_comes_back() {
    let Some(browser) = Browser::launch().await else { return };
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    let page = phone(&browser).await;
    page.goto(&app.local(&app.links_of(&address(0)).unsubscribe)).await;
    let text = check_and_keep(&page, "unsubscribe").await;
    assert!(text.contains("Unsubscribe?"), "{text}");
    assert_eq!(app.status_of(&address(0)).await, "active");

    page.click_and_wait("button[type=submit]").await;
    let text = check_and_keep(&page, "unsubscribed").await;
    assert!(text.contains("You are unsubscribed"), "{text}");
    assert_eq!(app.status_of(&address(0)).await, "unsubscribed");

    page.click_and_wait("button[type=submit]").await;
    let text = check_and_keep(&page, "resubscribed").await;
    assert!(text.contains("Welcome back"), "{text}");
    assert_eq!(app.status_of(&address(0)).await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_subscribes_confirms_from_the_email_and_is_welcomed() {
    let Some(browser) = Browser::launch().await else { return };
    let app = WebApp::start(TestDatabase::sqlite().await, 0, &[]).await;
    let page = phone(&browser).await;
    page.goto(&app.local("/subscribe")).await;
    page.type_into("#email", "Maya@Example.org").await;
    page.type_into("#name", "Maya").await;
    check_and_keep(&page, "subscribe").await;
    page.click_and_wait("button[type=submit]").await;
    let text = check_and_keep(&page, "check-inbox").await;
    assert!(text.contains("Check your inbox"), "{text}");

    let messages = app.smtp.wait_for_messages(1, MAIL_WAIT).await.expect("the confirmation email");
    assert_eq!(messages[0].rcpt_to, vec!["Maya@example.org".to_owned()]);
    let body = messages[0].parsed().expect("MIME").body_text(0).expect("text").into_owned();
    let link = urls_in_text(&body).into_iter().find(|url| url.contains("/c/")).expect("a confirm link");
    page.goto(&app.local(&link)).await;
    let text = check_and_keep(&page, "confirm").await;
    assert!(text.contains("Confirm your subscription"), "{text}");
    assert_eq!(app.status_of("Maya@example.org").await, "pending");

    page.click_and_wait("button[type=submit]").await;
    let text = check_and_keep(&page, "welcome").await;
    assert!(text.contains("Welcome!"), "{text}");
    assert_eq!(app.status_of("Maya@example.org").await, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_archive_and_the_pages_stay_readable_in_dark_mode() {
    let Some(browser) = Browser::launch().await else { return };
    let app = WebApp::start(TestDatabase::sqlite().await, 1, &[]).await;
    a_minute_later(&app);
    let rate = app.links_of(&address(0)).rate[4].clone();
    let page = phone(&browser).await;
    page.emulate_dark_mode().await;
    for (url, name) in [
        (app.local("/archive"), "archive-dark"),
        (app.local(&rate), "rate-dark"),
        (app.local("/subscribe"), "subscribe-dark"),
    ] {
        page.goto(&url).await;
        check_and_keep(&page, name).await;
    }
}
