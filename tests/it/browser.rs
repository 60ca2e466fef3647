//! The rendered email in a real browser (headless Chromium): no horizontal overflow on a phone or a desktop,
//! and five visible rating stars big enough to tap. Screenshots are kept as artifacts.

use crate::helpers::TestDatabase;
use crate::helpers::browser::{Browser, artifacts_dir};

/// Page and star measurements, taken inside the page.
const MEASURE: &str = r#"(function () {
  var stars = Array.prototype.map.call(document.querySelectorAll('a[aria-label^="Rate "]'), function (a) {
    var box = a.getBoundingClientRect(), style = getComputedStyle(a);
    return { label: a.getAttribute('aria-label'), width: box.width, height: box.height, left: box.left,
             right: box.right, visible: style.visibility !== 'hidden' && style.display !== 'none' && box.width > 0 };
  });
  return { innerWidth: window.innerWidth, scrollWidth: document.documentElement.scrollWidth, stars: stars };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_fits_a_phone_and_a_desktop_and_its_stars_are_big_enough_to_tap() {
    let Some(browser) = Browser::launch().await else { return };
    let db = TestDatabase::sqlite().await;
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");
    assert_eq!(db.tidings(&["issue", "add", sample]).code, Some(0));
    let out = db.dir.path().join("preview");
    let run = db.tidings(&["issue", "preview", "122", "--out", out.to_str().expect("path")]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let page_path = out.join("122.html");
    assert_eq!(run.stdout.lines().next(), Some(page_path.to_str().expect("path")));

    for width in [375u32, 600, 1024] {
        let page = browser.page(width, 800).await;
        page.goto(&format!("file://{}", page_path.display())).await;
        let measured = page.eval(MEASURE).await;
        let inner = measured["innerWidth"].as_f64().expect("innerWidth");
        let scroll = measured["scrollWidth"].as_f64().expect("scrollWidth");
        assert_eq!(inner, f64::from(width), "the viewport is {width} px wide");
        assert!(scroll <= inner, "horizontal overflow at {width} px: scrollWidth {scroll} > innerWidth {inner}");
        let stars = measured["stars"].as_array().expect("stars");
        assert_eq!(stars.len(), 5, "{measured}");
        for (index, star) in stars.iter().enumerate() {
            assert_eq!(star["label"], format!("Rate {} of 5", index + 1));
            assert_eq!(star["visible"], true, "{star}");
            assert!(star["width"].as_f64().expect("width") >= 44.0, "{star} at {width} px");
            assert!(star["height"].as_f64().expect("height") >= 44.0, "{star} at {width} px");
            assert!(star["left"].as_f64().expect("left") >= 0.0 && star["right"].as_f64().expect("right") <= inner);
        }
        page.screenshot(&artifacts_dir().join(format!("issue-122-preview-{width}px.png"))).await;
    }
}

/// The text whose contrast with the background behind it falls furthest below WCAG AA (4.5:1, or 3:1 for large
/// text: 24 px, or 18.66 px bold), as a share of what it needs; and the images a reader would miss with images
/// off (every `img` but the 1x1 pixel).
const CONTRAST: &str = r#"(function () {
  function rgb(c) { var m = c.match(/[\d.]+/g) || [0, 0, 0, 0]; return { r: +m[0], g: +m[1], b: +m[2], a: m.length > 3 ? +m[3] : 1 }; }
  function lum(c) { return [c.r, c.g, c.b].map(function (v) { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); })
    .reduce(function (s, v, i) { return s + v * [0.2126, 0.7152, 0.0722][i]; }, 0); }
  function background(e) { for (; e; e = e.parentElement) { var c = rgb(getComputedStyle(e).backgroundColor); if (c.a > 0) return c; } return { r: 255, g: 255, b: 255, a: 1 }; }
  var worst = 99, where = '';
  document.querySelectorAll('p, h1, h2, h3, a, td, div').forEach(function (e) {
    if (!e.textContent.trim() || e.getBoundingClientRect().width === 0) return;
    if (Array.prototype.some.call(e.childNodes, function (n) { return n.nodeType === 3 && n.textContent.trim(); })) {
      var l1 = lum(rgb(getComputedStyle(e).color)), l2 = lum(background(e));
      var ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05), style = getComputedStyle(e);
      var size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
      var needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
      if (ratio / needed < worst) { worst = ratio / needed; where = e.tagName + ' ' + ratio.toFixed(2) + ':1 ' + e.textContent.trim().slice(0, 40); }
    }
  });
  var images = Array.prototype.filter.call(document.images, function (i) { return !(i.width <= 1 && i.height <= 1); }).length;
  return { worst: worst, where: where, images: images };
})()"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_keeps_readable_contrast_in_light_and_dark_mode_and_needs_no_images() {
    let Some(browser) = Browser::launch().await else { return };
    let db = TestDatabase::sqlite().await;
    let sample = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");
    assert_eq!(db.tidings(&["issue", "add", sample]).code, Some(0));
    let out = db.dir.path().join("preview");
    assert_eq!(db.tidings(&["issue", "preview", "122", "--out", out.to_str().expect("path")]).code, Some(0));
    let url = format!("file://{}", out.join("122.html").display());

    for dark in [false, true] {
        let page = browser.page(375, 800).await;
        if dark {
            page.emulate_dark_mode().await;
        }
        page.goto(&url).await;
        let measured = page.eval(CONTRAST).await;
        let worst = measured["worst"].as_f64().expect("ratio");
        assert!(worst >= 1.0, "contrast below WCAG AA (dark mode: {dark}): {}", measured["where"]);
        assert_eq!(measured["images"], 0, "content images would be missing with images off");
        let name = if dark { "issue-122-dark-375px.png" } else { "issue-122-light-375px.png" };
        page.screenshot(&artifacts_dir().join(name)).await;
    }
}
