//! The markup of the sample issue where a browser is not needed: the filler after the preheader, and the `---`
//! before the outro as a divider.

use tidings::render::{ConfirmRecipient, Recipient, Templates, compile_confirm, compile_issue, parse_issue};

const SAMPLE: &str = include_str!("../../emails/issues/122.md");
const FILLER: &str = "&#847; &zwnj; &nbsp;";

fn html_of(markdown: &str) -> String {
    let source = parse_issue("issue.md", markdown).expect("the issue parses");
    let issue =
        compile_issue(&Templates::embedded(), &source, &crate::helpers::sample_branding()).expect("the issue compiles");
    let rate = [
        "https://x.example/r1",
        "https://x.example/r2",
        "https://x.example/r3",
        "https://x.example/r4",
        "https://x.example/r5",
    ];
    issue
        .personalise(&Recipient {
            name: "Ana",
            unsubscribe_url: "https://x.example/u",
            rate_urls: rate,
            pixel_url: None,
            view_url: "https://x.example/v",
        })
        .html()
}

/// The hidden preview text right after `<body ...>`.
fn preview(html: &str) -> &str {
    let body = &html[html.find("<body").expect("a body")..];
    let start = body.find("<div style=\"display:none").expect("a hidden preview");
    let text = &body[start..];
    let text = &text[text.find('>').expect("the div opens") + 1..];
    &text[..text.find("</div>").expect("the div closes")]
}

#[test]
fn the_preheader_is_followed_by_invisible_filler_so_an_inbox_preview_stops_there() {
    let html = html_of(SAMPLE);
    // Wrapping only ever turns a space into a line break.
    let shown = preview(&html).replace('\n', " ");
    let preheader = "Live-streaming oversight, east-to-west computing, Alibaba&#39;s metaverse bet and more";
    let filler = shown.strip_prefix(preheader).expect("the preview starts with the preheader");
    assert_eq!(filler.matches(FILLER).count(), 100, "{filler}");
    assert_eq!(filler.replace(FILLER, "").trim(), "", "nothing but filler follows");
    assert!(html.find("View in your browser") > html.find(FILLER), "the link comes after the filler");
    let longest = html.lines().filter(|line| line.contains(FILLER)).map(str::len).max();
    assert!(longest <= Some(998), "the filler is wrapped into lines a mail line may hold: {longest:?}");

    let confirm =
        compile_confirm(&Templates::embedded(), &crate::helpers::sample_branding(), "Weekly").expect("compiles");
    let confirm = confirm.personalise(&ConfirmRecipient { name: "Ana", confirm_url: "https://x.example/c" }).html();
    assert!(preview(&confirm).replace('\n', " ").starts_with(&format!("One click and you are on the list.{FILLER} ")));
}

#[test]
fn the_line_before_the_outro_becomes_a_divider_and_an_issue_without_one_has_none() {
    let html = html_of(SAMPLE);
    let (last_source, outro) = (html.rfind("Source: ").expect("a source"), html.find("Enjoying these").expect("outro"));
    assert_eq!(html[last_source..outro].matches("class=\"t-rule\"").count(), 1, "one divider before the outro");
    assert_eq!(html.matches("class=\"t-rule\"").count(), 3, "under the masthead, before the outro, above the stars");

    let without_outro = "+++\nnumber = 7\nsubject = \"S\"\npreheader = \"P\"\nperiod = \"W\"\n+++\n## One\nText.\n\n[A](https://a.example/)\n";
    assert_eq!(html_of(without_outro).matches("class=\"t-rule\"").count(), 2, "no outro, no divider for it");
}
