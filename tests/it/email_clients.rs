//! The sample issue as mail clients show it, in headless Chromium with images off: at 320, 375, 600 and 1024 px
//! in light and dark mode; with its `<style>` blocks and `<body>` attributes dropped (Gmail apps with non-Google
//! accounts, Yahoo on Android); and with its colours inverted by the client (Gmail, Yahoo and Outlook ignore
//! `prefers-color-scheme` and invert on their own). Screenshots are kept as artifacts.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tidings::render::{Branding, Recipient, Templates, compile_issue, parse_issue};

use crate::helpers::browser::{Browser, Page, artifacts_dir};

const SAMPLE: &str = include_str!("../../emails/issues/122.md");
/// The links of issue 122 a reader may tap: "View in your browser", 8 sources, the outro's LinkedIn link, 5
/// stars, and the footer's Unsubscribe, "View in your browser" and mailto links.
const TAPPABLE_LINKS: usize = 18;

/// The sample issue personalised with fake links, written to a file of `dir` (as-is, or as a client that drops
/// `<style>` and the `<body>` attributes shows it).
fn sample_page(dir: &Path, stripped: bool) -> PathBuf {
    let branding = Branding {
        list_name: "So, what's up in China?".to_owned(),
        organization: "Example Insights Ltd".to_owned(),
        postal_address: "1 Example Road, 200000 Shanghai, China".to_owned(),
        sender_email: "digest@example.com".to_owned(),
    };
    let source = parse_issue("122.md", SAMPLE).expect("the sample parses");
    let issue = compile_issue(&Templates::embedded(), &source, &branding).expect("the sample compiles");
    let rate: [String; 5] = [1, 2, 3, 4, 5].map(|n| format!("https://tidings.example/rate/tok?stars={n}"));
    let html = issue
        .personalise(&Recipient {
            name: "Ana",
            unsubscribe_url: "https://tidings.example/unsubscribe/tok",
            rate_urls: [&rate[0], &rate[1], &rate[2], &rate[3], &rate[4]],
            pixel_url: Some("https://tidings.example/open/tok.gif"),
            view_url: "https://tidings.example/view/tok",
        })
        .html();
    let (html, name) = if stripped { (without_style(&html), "stripped.html") } else { (html, "issue.html") };
    let path = dir.join(name);
    std::fs::write(&path, html).expect("write the page");
    path
}

/// `html` without any `<style>` element and with a bare `<body>`, as the strictest clients show it.
fn without_style(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = rest.find("<style") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("</style>").expect("a style element ends") + "</style>".len();
        rest = &rest[start + end..];
    }
    out.push_str(rest);
    let body = out.find("<body").expect("a body");
    let close = body + out[body..].find('>').expect("the body tag ends");
    out.replace_range(body..=close, "<body>");
    assert!(!out.contains("<style") && !out.contains("t-body p {"), "every style block is gone");
    out
}

/// A tab at `width` px with images off (every remote load blocked), light or dark, showing `page`.
async fn open<'b>(browser: &'b Browser, width: u32, dark: bool, page: &Path) -> Page<'b> {
    let tab = browser.page(width, 800).await;
    tab.block_remote_loads().await;
    if dark {
        tab.emulate_dark_mode().await;
    }
    tab.goto(&format!("file://{}", page.display())).await;
    tab
}

/// Overflow, every link's box and the star links' visible text.
const MEASURE: &str = r#"(function () {
  var links = Array.prototype.filter.call(document.querySelectorAll('a[href]'), function (a) {
    return a.getBoundingClientRect().width > 0;
  }).map(function (a) {
    var box = a.getBoundingClientRect();
    return { text: a.textContent.replace(/\s+/g, ' ').trim().slice(0, 40), height: box.height, left: box.left, right: box.right };
  });
  var stars = Array.prototype.map.call(document.querySelectorAll('a.t-star'), function (a) {
    var number = a.querySelector('.t-star-n'), box = number ? number.getBoundingClientRect() : { height: 0 };
    return { shown: a.innerText.replace(/\s+/g, ''), numberHeight: box.height,
             numberSize: number ? parseFloat(getComputedStyle(number).fontSize) : 0 };
  });
  var card = document.querySelector('.t-card').getBoundingClientRect(), text = getComputedStyle(document.querySelector('td.t-body'));
  return { innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, links: links, stars: stars,
           cardTop: card.top + window.scrollY, sidePadding: [parseFloat(text.paddingLeft), parseFloat(text.paddingRight)] };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_fits_every_width_with_images_off_and_every_link_and_star_number_can_be_tapped_and_read() {
    let Some(browser) = Browser::launch().await else { return };
    let dir = tempfile::tempdir().expect("temporary folder");
    for stripped in [false, true] {
        let page = sample_page(dir.path(), stripped);
        for dark in [false, true] {
            for width in [320u32, 375, 600, 1024] {
                let tab = open(&browser, width, dark, &page).await;
                let measured = tab.eval(MEASURE).await;
                let case = format!("{width} px, dark {dark}, style removed {stripped}");
                let (inner, scroll) = (measured["innerWidth"].as_f64(), measured["scrollWidth"].as_f64());
                assert_eq!(inner, Some(f64::from(width)), "{case}");
                assert!(scroll <= inner, "horizontal scroll at {case}: {scroll:?} > {inner:?}");
                let links = measured["links"].as_array().expect("links");
                assert_eq!(links.len(), TAPPABLE_LINKS, "{case}: {links:?}");
                for link in links {
                    assert!(link["left"].as_f64() >= Some(0.0) && link["right"].as_f64() <= inner, "{case}: {link}");
                    if width == 375 {
                        assert!(link["height"].as_f64() >= Some(44.0), "too small to tap at {case}: {link}");
                    }
                }
                if width >= 600 {
                    assert!(measured["cardTop"].as_f64() >= Some(16.0), "{case}: the card touches the top edge");
                }
                if !stripped {
                    let side = if width < 480 { 16 } else { 28 };
                    assert_eq!(measured["sidePadding"], serde_json::json!([side, side]), "{case}");
                }
                let stars = measured["stars"].as_array().expect("stars");
                assert_eq!(stars.len(), 5, "{case}");
                for (index, star) in stars.iter().enumerate() {
                    assert_eq!(star["shown"], format!("★{}", index + 1), "{case}: each star shows its number");
                    assert!(star["numberHeight"].as_f64() > Some(0.0), "{case}: {star}");
                    assert!(star["numberSize"].as_f64() >= Some(12.0), "{case}: {star}");
                }
                if !stripped && (width == 375 || width == 1024) {
                    let name = format!("issue-122-{width}px-{}.png", if dark { "dark" } else { "light" });
                    tab.screenshot(&artifacts_dir().join(name)).await;
                }
            }
        }
    }
}

/// The look of every paragraph, list, heading and link, and of the card: what must survive without `<style>`.
const LOOK: &str = r#"(function () {
  var keys = ['color', 'marginTop', 'marginBottom', 'paddingLeft', 'paddingTop', 'fontSize', 'fontWeight',
              'lineHeight', 'textDecorationLine', 'backgroundColor', 'display'];
  var picked = document.querySelectorAll('.t-body p, .t-body ul, .t-body ol, .t-body h1, .t-body h2, a, .t-card, .t-page');
  return Array.prototype.map.call(picked, function (e) {
    var style = getComputedStyle(e), text = e.textContent.replace(/\s+/g, ' ').trim().slice(0, 30);
    var look = { what: e.tagName + ' ' + text, classes: e.className };
    keys.forEach(function (k) { look[k] = style[k]; });
    return look;
  });
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_style_block_and_body_attributes_the_email_keeps_its_colours_and_spacing() {
    let Some(browser) = Browser::launch().await else { return };
    let dir = tempfile::tempdir().expect("temporary folder");
    let (full, stripped) = (sample_page(dir.path(), false), sample_page(dir.path(), true));
    for width in [375u32, 600] {
        let with_style = open(&browser, width, false, &full).await.eval(LOOK).await;
        let tab = open(&browser, width, false, &stripped).await;
        let without = tab.eval(LOOK).await;
        let (with_style, without) = (with_style.as_array().expect("looks"), without.as_array().expect("looks"));
        assert!(with_style.len() > 30, "{with_style:?}");
        assert_eq!(with_style.len(), without.len());
        for (expected, actual) in with_style.iter().zip(without) {
            assert_eq!(expected, actual, "at {width} px the look changes when <style> is dropped");
        }
        let spaced = without.iter().filter(|look| look["what"].as_str().is_some_and(|w| w.starts_with("P "))).count();
        let body_link = without.iter().find(|look| look["what"] == "A LinkedIn").expect("the outro's link");
        assert_eq!(body_link["color"], "rgb(168, 50, 30)", "{body_link}");
        assert_eq!(body_link["textDecorationLine"], "underline");
        let paragraph = without
            .iter()
            .find(|look| look["what"].as_str().is_some_and(|w| w.starts_with("P China")))
            .expect("a paragraph");
        assert_eq!((&paragraph["marginTop"], &paragraph["marginBottom"]), (&Value::from("0px"), &Value::from("14px")));
        assert!(spaced >= 15, "{spaced} paragraphs");
        let card = without.iter().find(|look| look["classes"] == "t-card").expect("the card");
        assert_eq!(card["backgroundColor"], "rgb(255, 255, 255)");
        let page = without.iter().find(|look| look["classes"] == "t-page").expect("the page");
        assert_eq!(page["backgroundColor"], "rgb(244, 241, 234)");
        tab.screenshot(&artifacts_dir().join(format!("issue-122-{width}px-without-style.png"))).await;
    }
}

/// WCAG contrast as the reader sees it: of all text (4.5:1, or 3:1 from 24 px or 18.66 px bold), of the stars
/// and of the rules (3:1: the masthead's band against the card and the page, each divider against the card).
/// With `inverted`, every colour first goes through what a client's inversion does to it: CSS `invert(1)` then
/// `hue-rotate(180deg)` (the filter functions' matrices from Filter Effects 1, applied in sRGB as browsers do).
const CONTRAST: &str = r#"(function (inverted) {
  var H = [[-0.574, 1.430, 0.144], [0.426, 0.430, 0.144], [0.426, 1.430, -0.856]];
  function rgb(c) { var m = c.match(/[\d.]+/g) || [0, 0, 0, 0]; return [m[0] / 255, m[1] / 255, m[2] / 255, m.length > 3 ? +m[3] : 1]; }
  function shown(c) {
    if (!inverted) return c;
    var i = [1 - c[0], 1 - c[1], 1 - c[2]];
    return H.map(function (r) { return Math.min(1, Math.max(0, r[0] * i[0] + r[1] * i[1] + r[2] * i[2])); });
  }
  function lum(c) { return [0.2126, 0.7152, 0.0722].reduce(function (s, w, k) { var v = c[k];
    return s + w * (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)); }, 0); }
  function ratio(a, b) { var x = lum(shown(a)), y = lum(shown(b)); return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05); }
  function background(e) { for (; e; e = e.parentElement) { var c = rgb(getComputedStyle(e).backgroundColor); if (c[3] > 0) return c; } return [1, 1, 1, 1]; }
  function visible(e) { var b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; }
  var page = background(document.querySelector('.t-page')), text = { worst: 99, where: '' }, stars = [], rules = [];
  document.querySelectorAll('body *').forEach(function (e) {
    var style = getComputedStyle(e);
    if (!visible(e)) return;
    if (Array.prototype.some.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); })) {
      var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
      var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5, r = ratio(rgb(style.color), background(e));
      if (r / needed < text.worst) { text.worst = r / needed; text.where = e.tagName + ' ' + r.toFixed(2) + ':1 ' + e.textContent.trim().slice(0, 40); }
    }
    var width = parseFloat(style.borderTopWidth);
    if (style.borderTopStyle !== 'none' && width > 0) {
      var against = [background(e)].concat(width >= 3 ? [page] : []), color = rgb(style.borderTopColor);
      rules.push({ width: width, ratio: Math.min.apply(null, against.map(function (b) { return ratio(color, b); })) });
    }
  });
  document.querySelectorAll('a.t-star').forEach(function (a) {
    var glyph = a.querySelector('.t-star-g') || a;
    stars.push(ratio(rgb(getComputedStyle(glyph).color), background(a)));
  });
  return { text: text, stars: stars, rules: rules };
})"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_dark_and_inverted_colours_keep_text_links_stars_and_rules_legible() {
    let Some(browser) = Browser::launch().await else { return };
    let dir = tempfile::tempdir().expect("temporary folder");
    let page = sample_page(dir.path(), false);
    // (prefers-color-scheme dark, inverted by the client): clients that invert ignore the media query.
    for (dark, inverted) in [(false, false), (true, false), (false, true)] {
        let tab = open(&browser, 375, dark, &page).await;
        let measured = tab.eval(&format!("{CONTRAST}({inverted})")).await;
        let case = format!("dark {dark}, inverted {inverted}");
        let worst = measured["text"]["worst"].as_f64().expect("a ratio");
        assert!(worst >= 1.0, "{case}: text below WCAG AA: {}", measured["text"]["where"]);
        let stars = measured["stars"].as_array().expect("stars");
        assert_eq!(stars.len(), 5, "{case}");
        assert!(stars.iter().all(|ratio| ratio.as_f64() >= Some(3.0)), "{case}: stars {stars:?}");
        let rules = measured["rules"].as_array().expect("rules");
        // The masthead's band, the rule under the masthead, the one before the outro and the one above the stars.
        assert_eq!(rules.len(), 4, "{case}: {rules:?}");
        assert!(rules.iter().all(|rule| rule["ratio"].as_f64() >= Some(3.0)), "{case}: rules {rules:?}");
        if inverted {
            tab.eval("document.documentElement.style.filter = 'invert(1) hue-rotate(180deg)'").await;
            tab.screenshot(&artifacts_dir().join("issue-122-375px-inverted.png")).await;
        }
    }
}
