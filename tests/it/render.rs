//! Rendering issues and the confirmation email, through the public API: the sample issue against stored
//! snapshots, personalisation, escaping, and an error naming the file and place for each kind of mistake.
//! Set `UPDATE_SNAPSHOTS=1` to rewrite `tests/it/snapshots/` after an intended change, then review the diff.

use std::path::{Path, PathBuf};

use tidings::render::{
    CompiledIssue, ConfirmRecipient, Recipient, RenderError, Templates, compile_confirm, compile_issue, parse_issue,
};

const SAMPLE: &str = include_str!("../../emails/issues/122.md");
const GMAIL_CLIP_BYTES: usize = 102 * 1024;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn sample() -> CompiledIssue {
    let source = parse_issue("emails/issues/122.md", SAMPLE).expect("the sample issue parses");
    compile_issue(&Templates::embedded(), &source, &crate::helpers::sample_branding())
        .expect("the sample issue compiles")
}

/// Distinct fake URLs for one recipient, so each can be found in the output.
struct Links {
    unsubscribe: String,
    view: String,
    pixel: String,
    rate: [String; 5],
}

impl Links {
    fn for_subscriber(id: u32) -> Self {
        let url = |what: &str| format!("https://tidings.example/{what}/tok{id}");
        Self {
            unsubscribe: url("unsubscribe"),
            view: url("view"),
            pixel: url("open"),
            rate: [1, 2, 3, 4, 5].map(|stars| format!("https://tidings.example/rate/tok{id}?stars={stars}")),
        }
    }

    fn recipient<'a>(&'a self, name: &'a str) -> Recipient<'a> {
        Recipient {
            name,
            unsubscribe_url: &self.unsubscribe,
            rate_urls: [&self.rate[0], &self.rate[1], &self.rate[2], &self.rate[3], &self.rate[4]],
            pixel_url: Some(&self.pixel),
            view_url: &self.view,
        }
    }
}

fn check_snapshot(name: &str, actual: &str) {
    let path: PathBuf = root().join("tests/it/snapshots").join(name);
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|value| value == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create snapshot folder");
        std::fs::write(&path, actual).expect("write snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} is missing: run with UPDATE_SNAPSHOTS=1", path.display()));
    assert!(expected == actual, "{name} differs from its snapshot; rerun with UPDATE_SNAPSHOTS=1 and review the diff");
}

/// The embedded templates, with `name` replaced by `source`.
fn templates_with(name: &str, source: &str) -> Result<Templates, RenderError> {
    let dir = tempfile::tempdir().expect("temporary folder");
    copy_dir(&root().join("emails/templates"), dir.path());
    std::fs::write(dir.path().join(name), source).expect("write template");
    Templates::from_dir(dir.path())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
        }
    }
}

fn compile_sample_with(templates: &Templates) -> Result<CompiledIssue, RenderError> {
    compile_issue(templates, &parse_issue("122.md", SAMPLE).expect("parses"), &crate::helpers::sample_branding())
}

#[test]
fn the_sample_issue_renders_exactly_as_its_snapshots() {
    let links = Links::for_subscriber(1);
    let issue = sample();
    let email = issue.personalise(&links.recipient("Ana"));
    check_snapshot("issue-122.html", &email.html());
    check_snapshot("issue-122.txt", &email.text());
}

#[test]
fn compiling_the_same_issue_twice_gives_byte_identical_output() {
    let first = serde_json::to_string(&sample()).expect("serialize");
    let second = serde_json::to_string(&sample()).expect("serialize");
    assert!(first == second, "two compilations differ");
}

#[test]
fn a_compiled_issue_survives_a_json_round_trip() {
    let issue = sample();
    let stored = serde_json::to_string(&issue).expect("serialize");
    let loaded: CompiledIssue = serde_json::from_str(&stored).expect("deserialize");
    assert_eq!(loaded, issue);
    let links = Links::for_subscriber(1);
    assert_eq!(loaded.personalise(&links.recipient("Ana")).html(), issue.personalise(&links.recipient("Ana")).html());
}

#[test]
fn the_sample_html_stays_far_below_the_size_gmail_clips_at() {
    let links = Links::for_subscriber(1);
    let html = sample().personalise(&links.recipient("Ana")).html();
    assert!(html.len() < GMAIL_CLIP_BYTES, "{} bytes", html.len());
    assert!(html.len() < 40 * 1024, "{} bytes: more than the 40 KB budget", html.len());
}

#[test]
fn both_parts_carry_every_item_source_rating_link_and_the_unsubscribe_link() {
    let source = parse_issue("122.md", SAMPLE).expect("parses");
    let links = Links::for_subscriber(7);
    let issue = sample();
    let email = issue.personalise(&links.recipient("Ana"));
    // Long HTML lines are broken between attributes (see render/wrap.rs); HTML reads any whitespace alike.
    let (html, text) = (email.html().split_whitespace().collect::<Vec<_>>().join(" "), email.text());
    assert_eq!(source.items.len(), 8);
    for item in &source.items {
        let heading_html = item.heading.replace('\'', "&#39;");
        assert!(html.contains(&heading_html), "HTML lacks the heading {:?}", item.heading);
        assert!(text.contains(&item.heading), "text lacks the heading {:?}", item.heading);
        assert!(html.contains(&format!("href=\"{}\"", item.source.url)), "HTML lacks {}", item.source.url);
        assert!(text.contains(&item.source.url), "text lacks {}", item.source.url);
    }
    for (index, rate) in links.rate.iter().enumerate() {
        assert!(html.contains(&format!("href=\"{rate}\" aria-label=\"Rate {} of 5\"", index + 1)), "HTML lacks {rate}");
        assert!(text.contains(rate.as_str()), "text lacks {rate}");
    }
    for part in [&html, &text] {
        assert!(part.contains(&links.unsubscribe) && part.contains(&links.view));
    }
    assert!(html.contains(&format!("<img src=\"{}\" width=\"1\" height=\"1\"", links.pixel)));
    assert!(issue.links().contains(&"https://news.bloomberglaw.com/".to_owned()));
}

#[test]
fn the_text_part_numbers_links_and_wraps_at_72_columns_without_breaking_urls() {
    let links = Links::for_subscriber(1);
    let issue = sample();
    let text = issue.personalise(&links.recipient("Ana")).text();
    assert!(text.contains("Source: Bloomberg Law [1]"), "{text}");
    let list = text.split("\nLinks:\n").nth(1).expect("a Links: list at the bottom");
    for (index, url) in issue.links().iter().enumerate() {
        assert!(list.contains(&format!("[{}] {url}\n", index + 1)), "{url} is not numbered {}", index + 1);
    }
    for line in text.lines().filter(|line| !line.contains("https://")) {
        assert!(line.chars().count() <= 72, "line too long: {line:?}");
    }
}

#[test]
fn a_hostile_name_is_escaped_in_html_and_intact_in_text() {
    let name = "<script>alert(1)</script> \"Bob\" & Co";
    let links = Links::for_subscriber(1);
    let issue = sample();
    let email = issue.personalise(&links.recipient(name));
    let html = email.html();
    assert!(!html.contains("<script>"));
    assert!(html.contains("Hello &lt;script&gt;alert(1)&lt;/script&gt; &quot;Bob&quot; &amp; Co,"));
    assert!(email.text().contains(&format!("Hello {name},")));
}

#[test]
fn an_empty_name_gives_the_greeting_without_a_name() {
    let links = Links::for_subscriber(1);
    let issue = sample();
    for name in ["", "   "] {
        let email = issue.personalise(&links.recipient(name));
        assert!(email.html().contains(">Hello,</p>"));
        assert!(email.text().contains("\nHello,\n"));
    }
    assert!(issue.personalise(&links.recipient("Ana")).html().contains(">Hello Ana,</p>"));
}

#[test]
fn two_recipients_get_their_own_links() {
    let (ana, bob) = (Links::for_subscriber(1), Links::for_subscriber(2));
    let issue = sample();
    let ana_html = issue.personalise(&ana.recipient("Ana")).html();
    let bob_html = issue.personalise(&bob.recipient("Bob")).html();
    assert_ne!(ana_html, bob_html);
    assert!(ana_html.contains(&ana.unsubscribe) && !ana_html.contains(&bob.unsubscribe));
    assert!(bob_html.contains(&bob.rate[4]) && !bob_html.contains(&ana.rate[4]));
}

#[test]
fn without_a_pixel_url_there_is_no_tracking_image() {
    let links = Links::for_subscriber(1);
    let recipient = Recipient { pixel_url: None, ..links.recipient("Ana") };
    let html = sample().personalise(&recipient).html();
    assert!(!html.contains("<img"), "an image is left without a pixel URL");
}

#[test]
fn streaming_and_the_length_agree_with_the_materialised_html() {
    let links = Links::for_subscriber(1);
    let issue = sample();
    let email = issue.personalise(&links.recipient("Zoë & Co"));
    let mut streamed = Vec::new();
    email.write_html(&mut streamed).expect("write");
    assert_eq!(streamed, email.html().into_bytes());
    assert_eq!(email.html_len(), streamed.len());
}

#[test]
fn the_email_fits_a_phone_and_supports_dark_mode() {
    let links = Links::for_subscriber(1);
    let html = sample().personalise(&links.recipient("Ana")).html();
    // Outside Outlook's conditional comments, no inline style or width attribute may fix a width wider than a
    // 375 px screen; `max-width` only caps the layout, so it is allowed.
    let mut outside_mso = String::new();
    for (index, part) in html.split("<!--[if mso | IE]>").enumerate() {
        outside_mso.push_str(if index == 0 {
            part
        } else {
            part.split_once("<![endif]-->").map_or("", |(_, rest)| rest)
        });
    }
    let styles = outside_mso.split(" style=\"").skip(1).map(|rest| rest.split('"').next().unwrap_or_default());
    for style in styles {
        for declaration in style.split(';').map(str::trim) {
            assert!(!declaration.starts_with("min-width"), "{declaration} forces the layout wider");
            if let Some(value) = declaration.strip_prefix("width:").and_then(|value| value.trim().strip_suffix("px")) {
                assert!(value.parse::<u32>().is_ok_and(|pixels| pixels <= 375), "a fixed width: {declaration}");
            }
        }
    }
    for attribute in outside_mso.split(" width=\"").skip(1) {
        let pixels: String = attribute.chars().take_while(char::is_ascii_digit).collect();
        assert!(pixels.parse::<u32>().is_ok_and(|pixels| pixels <= 375), "a fixed width attribute: {pixels}");
    }
    assert!(html.contains(r#"<meta name="color-scheme" content="light dark""#));
    assert!(html.contains(r#"<meta name="supported-color-schemes" content="light dark""#));
    assert!(html.contains("@media (prefers-color-scheme: dark)"));
}

#[test]
fn raw_html_in_an_issue_is_shown_as_text() {
    let markdown = SAMPLE.replace("China's regulators", "<b onmouseover=\"steal()\">China's</b> regulators");
    let source = parse_issue("122.md", &markdown).expect("parses");
    let issue = compile_issue(&Templates::embedded(), &source, &crate::helpers::sample_branding()).expect("compiles");
    let links = Links::for_subscriber(1);
    let html = issue.personalise(&links.recipient("Ana")).html();
    assert!(!html.contains("<b onmouseover"));
    assert!(html.contains("&lt;b onmouseover=&quot;steal()&quot;&gt;China&#39;s&lt;/b&gt;"));
}

#[test]
fn templates_read_from_the_folder_render_like_the_embedded_ones() {
    let from_dir = Templates::from_dir(&root().join("emails/templates")).expect("load templates");
    assert_eq!(compile_sample_with(&from_dir).expect("compiles"), sample());
}

#[test]
fn a_missing_template_file_is_named() {
    let dir = tempfile::tempdir().expect("temporary folder");
    let error = Templates::from_dir(dir.path()).unwrap_err();
    assert!(matches!(error, RenderError::Io { .. }));
    assert!(error.to_string().contains("digest.mjml"), "{error}");
}

#[test]
fn the_confirmation_email_has_one_button_to_the_confirm_link_and_says_it_can_be_ignored() {
    let confirm =
        compile_confirm(&Templates::embedded(), &crate::helpers::sample_branding(), "Weekly China").expect("compiles");
    assert_eq!(confirm.subject(), "Confirm your subscription to Weekly China");
    let url = "https://tidings.example/confirm/tok9";
    let email = confirm.personalise(&ConfirmRecipient { name: "Ana", confirm_url: url });
    let (html, text) = (email.html(), email.text());
    assert!(html.contains(&format!("href=\"{url}\"")) && html.contains("Confirm my subscription"));
    assert!(html.contains("you can ignore this email") && text.contains("you can ignore this email"));
    assert!(text.contains(url) && text.contains("Hello Ana,"));
    assert!(html.contains("1 Example Road, 200000 Shanghai, China") && text.contains("Example Insights Ltd"));
    check_snapshot("confirm.html", &html);
}

#[test]
fn a_front_matter_syntax_error_names_the_file_line_and_column() {
    let broken = SAMPLE.replace("number = 122", "number = = 122");
    let error = parse_issue("emails/issues/122.md", &broken).unwrap_err();
    assert!(matches!(error, RenderError::FrontMatter { line: 2, .. }), "{error:?}");
    assert!(error.to_string().starts_with("emails/issues/122.md:2:10: front matter: "), "{error}");
}

#[test]
fn an_unknown_front_matter_key_is_named_with_its_line() {
    let broken = SAMPLE.replace("period =", "perod =");
    let error = parse_issue("122.md", &broken).unwrap_err();
    assert!(error.to_string().starts_with("122.md:5:1: front matter: unknown field `perod`"), "{error}");
}

#[test]
fn a_missing_issue_number_is_reported_in_the_front_matter() {
    let broken = SAMPLE.replace("number = 122\n", "");
    let error = parse_issue("122.md", &broken).unwrap_err();
    assert!(matches!(error, RenderError::FrontMatter { .. }), "{error:?}");
    assert!(
        error.to_string().starts_with("122.md:") && error.to_string().contains("missing field `number`"),
        "{error}"
    );
}

#[test]
fn a_javascript_link_is_refused_with_the_file_and_line() {
    let broken = SAMPLE.replace("(https://pandaily.com/)", "(javascript:alert(1))");
    let error = parse_issue("122.md", &broken).unwrap_err();
    let line = SAMPLE.lines().position(|line| line.contains("pandaily.com")).expect("line") + 1;
    assert!(
        error.to_string().starts_with(&format!("122.md:{line}: the link `javascript:alert(1)` is refused")),
        "{error}"
    );
}

#[test]
fn an_unknown_template_variable_names_the_template_and_line() {
    let item = std::fs::read_to_string(root().join("emails/templates/partials/item.mjml")).expect("read");
    let templates =
        templates_with("partials/item.mjml", &item.replace("item.heading", "item.headline")).expect("loads");
    let error = compile_sample_with(&templates).unwrap_err();
    let line = item.lines().position(|line| line.contains("item.heading")).expect("line") + 1;
    assert!(matches!(error, RenderError::Template { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with(&format!("template partials/item.mjml, line {line}: ")), "{message}");
    assert!(message.contains("headline"), "{message}");
}

#[test]
fn a_template_syntax_error_names_the_template_and_line() {
    let error = templates_with("partials/footer.mjml", "<mj-section>\n{% if %}\n</mj-section>\n").unwrap_err();
    assert!(error.to_string().starts_with("template partials/footer.mjml, line 2: "), "{error}");
}

#[test]
fn an_mjml_error_names_the_template_and_line_it_came_from() {
    let head = std::fs::read_to_string(root().join("emails/templates/partials/head.mjml")).expect("read");
    let broken =
        head.replace("<mj-attributes>", "<mj-text>Text does not belong in the head</mj-text>\n<mj-attributes>");
    let templates = templates_with("partials/head.mjml", &broken).expect("loads");
    let error = compile_sample_with(&templates).unwrap_err();
    let line = broken.lines().position(|line| line.contains("<mj-text>Text")).expect("line") + 1;
    assert!(matches!(error, RenderError::Mjml { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.starts_with(&format!("MJML error in template partials/head.mjml, line {line}: ")), "{message}");
    assert!(message.contains("unexpected element"), "{message}");
}

#[test]
fn an_unclosed_mjml_element_is_reported_for_the_template() {
    let footer = "<mj-section><mj-column><mj-text>{{ slots.unsubscribe_url }}</mj-column></mj-section>";
    let templates = templates_with("partials/footer.mjml", footer).expect("loads");
    let error = compile_sample_with(&templates).unwrap_err();
    assert!(matches!(error, RenderError::Mjml { .. }), "{error:?}");
    assert!(error.to_string().starts_with("MJML error in template "), "{error}");
}

#[test]
fn a_template_without_the_unsubscribe_link_is_refused() {
    let footer = std::fs::read_to_string(root().join("emails/templates/partials/footer.mjml")).expect("read");
    let templates =
        templates_with("partials/footer.mjml", &footer.replace("{{ slots.unsubscribe_url }}", "#")).expect("loads");
    let error = compile_sample_with(&templates).unwrap_err();
    assert_eq!(
        error.to_string(),
        "template digest.mjml: the email must contain `slots.unsubscribe_url` (a per-recipient value)"
    );
}

/// A generated issue with long items and long URLs, for the Outlook checks.
fn long_issue() -> CompiledIssue {
    let mut source = String::from(
        "+++\nnumber = 900\nsubject = \"A long issue\"\npreheader = \"Long\"\nperiod = \"May\"\n+++\n\nIntro.\n\n",
    );
    for item in 0..12 {
        let url = format!(
            "https://example.com/{}/{}?utm_source={}&q={}",
            "deep/path".repeat(12),
            item,
            "x".repeat(200),
            "y".repeat(90)
        );
        source.push_str(&format!(
            "## A headline that goes on and on for item {item} {}\n{}\n\n[Source {item}]({url})\n\n",
            "with words ".repeat(8),
            "A paragraph with many words that wraps across lines and keeps going. ".repeat(25)
        ));
    }
    let parsed = parse_issue("900.md", &source).expect("the generated issue parses");
    compile_issue(&Templates::embedded(), &parsed, &crate::helpers::sample_branding())
        .expect("the generated issue compiles")
}

#[test]
fn outlook_conditional_comments_stay_whole_and_dividers_take_the_content_width() {
    for (name, issue) in [("122", sample()), ("generated", long_issue())] {
        let html = issue.personalise(&Links::for_subscriber(3).recipient("Ana")).html().to_string();
        let openers = html.matches("<!--[if mso | IE]>").count();
        assert!(openers > 10, "{name}: {openers} conditional comments");
        for (at, _) in html.match_indices("<!--[if") {
            let opener = &html[at..at + html[at..].find("]>").expect("an opener ends") + 2];
            assert!(!opener.contains('\n'), "{name}: a conditional comment's opener is split: {opener:?}");
        }
        for (at, _) in html.match_indices("<![endif]") {
            assert!(html[at..].starts_with("<![endif]-->"), "{name}: a closer is split at {at}");
        }
        // Outside the head (where the compiler itself writes a multi-line block), no comment spans lines.
        let body = &html[html.find("<body").expect("a body")..];
        for line in body.lines() {
            assert!(!splits_a_comment(line), "{name}: a comment is split across lines: {line}");
        }
        // Each divider's Outlook table is as wide as the content: 600px less its 28px padding on each side.
        let dividers: Vec<&str> =
            html.match_indices("style=\"border-top:solid 1px").map(|(i, _)| &html[i.saturating_sub(200)..i]).collect();
        let outlook: Vec<&&str> =
            dividers.iter().filter(|before| before.contains("<!--[if mso | IE]><table")).collect();
        assert!(!outlook.is_empty(), "{name}: no Outlook divider table");
        for before in outlook {
            assert!(before.contains("width=\"544px\""), "{name}: {before}");
        }
    }
}

/// Whether a comment opened on this line is still open at its end.
fn splits_a_comment(line: &str) -> bool {
    let mut rest = line;
    while let Some(start) = rest.find("<!--") {
        match rest[start + 4..].find("-->") {
            Some(end) => rest = &rest[start + 4 + end + 3..],
            None => return true,
        }
    }
    false
}
