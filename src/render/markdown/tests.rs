//! Unit tests of the body rules: sections, sources, escaping of raw HTML, refused links and constructs.

use super::*;

fn body(markdown: &str) -> Result<Body, RenderError> {
    // Two lines of pretend front matter, so the lines in errors are file lines, not body lines.
    let text = format!("+++\n+++\n{markdown}");
    parse_body("issue.md", &text, 8)
}

fn text(text: &str) -> Inline {
    Inline::Text(text.to_owned())
}

#[test]
fn each_second_level_heading_starts_a_news_item() {
    let parsed =
        body("Intro.\n\n## One\nFirst.\n\n[A](https://a.example/)\n\n## Two\nSecond.\n\n[B](https://b.example/)\n")
            .unwrap();
    assert_eq!(parsed.intro, vec![Block::Paragraph(vec![text("Intro.")])]);
    let headings: Vec<_> = parsed.items.iter().map(|item| item.heading.as_str()).collect();
    assert_eq!(headings, ["One", "Two"]);
    assert_eq!(parsed.items[1].source, SourceLink { text: "B".into(), url: "https://b.example/".into() });
    assert_eq!(parsed.items[1].body, vec![Block::Paragraph(vec![text("Second.")])]);
    assert_eq!(parsed.items[0].line, 5);
}

#[test]
fn a_source_in_parentheses_or_after_a_label_is_still_the_source() {
    let parsed = body("## One\nText.\n\n(Source: [Outlet](https://o.example/))\n").unwrap();
    assert_eq!(parsed.items[0].source.text, "Outlet");
    assert_eq!(parsed.items[0].body.len(), 1);
}

#[test]
fn without_a_source_line_the_last_link_of_the_item_is_its_source_and_stays_in_the_text() {
    let parsed = body("## One\nSee [this](https://x.example/) and [that](https://y.example/).\n").unwrap();
    assert_eq!(parsed.items[0].source.url, "https://y.example/");
    assert_eq!(parsed.items[0].body.len(), 1);
}

#[test]
fn text_after_a_rule_is_the_outro() {
    let parsed = body("## One\nText.\n\n[A](https://a.example/)\n\n---\n\nBye.\n").unwrap();
    assert_eq!(parsed.items.len(), 1);
    assert_eq!(parsed.outro, vec![Block::Paragraph(vec![text("Bye.")])]);
}

#[test]
fn raw_html_is_kept_as_text_to_be_escaped() {
    let parsed = body(
        "## One\nHi <script>alert(1)</script> there.\n\n<div onclick=\"x()\">block</div>\n\n[A](https://a.example/)\n",
    )
    .unwrap();
    let html = super::super::fragment::blocks_html(&parsed.items[0].body);
    assert!(!html.contains("<script>") && !html.contains("<div"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    assert!(html.contains("&lt;div onclick=&quot;x()&quot;&gt;block&lt;/div&gt;"), "{html}");
}

#[test]
fn a_javascript_link_is_refused_with_its_line() {
    let error = body("## One\nText.\n\nClick [here](javascript:alert(1)).\n").err().unwrap();
    assert_eq!(
        error.to_string(),
        "issue.md:6: the link `javascript:alert(1)` is refused: only http, https and mailto links work"
    );
}

#[test]
fn relative_and_data_links_are_refused_but_mail_links_are_kept() {
    assert!(body("## One\n[x](page.html)\n").is_err());
    assert!(body("## One\n[x](data:text/html,hi)\n").is_err());
    let parsed = body("## One\nWrite <ed@example.com>.\n\n[A](https://a.example/)\n").unwrap();
    let Block::Paragraph(inlines) = &parsed.items[0].body[0] else { panic!("not a paragraph") };
    assert!(matches!(&inlines[1], Inline::Link { url, .. } if url == "mailto:ed@example.com"), "{inlines:?}");
}

#[test]
fn an_issue_without_items_is_refused_at_the_start_of_the_body() {
    let error = body("Just some words.\n").err().unwrap();
    assert!(error.to_string().starts_with("issue.md:3: the issue has no news items"), "{error}");
}

#[test]
fn an_item_without_a_source_is_refused_at_its_heading() {
    let error = body("Intro.\n\n## Lonely\nNo link here.\n").err().unwrap();
    assert!(error.to_string().starts_with("issue.md:5: the item \"Lonely\" has no source"), "{error}");
}

#[test]
fn images_code_blocks_and_other_headings_are_refused_with_their_line() {
    let image = body("## One\nText.\n\n![pic](https://p.example/a.png)\n").err().unwrap();
    assert!(image.to_string().starts_with("issue.md:6: images are not supported"), "{image}");
    let code = body("## One\nText.\n\n    code\n").err().unwrap();
    assert!(code.to_string().starts_with("issue.md:6: code blocks"), "{code}");
    let heading = body("# Title\n").err().unwrap();
    assert!(heading.to_string().starts_with("issue.md:3: only `## ` headings"), "{heading}");
}

#[test]
fn loose_and_tight_lists_become_flat_lists() {
    let parsed = body("## One\n- a\n- b [x](https://x.example/)\n\n1. c\n\n2. d\n\n[A](https://a.example/)\n").unwrap();
    assert_eq!(parsed.items[0].body.len(), 2);
    assert!(matches!(&parsed.items[0].body[1], Block::List { start: Some(1), items } if items.len() == 2));
}
