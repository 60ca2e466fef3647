//! The rendering gate: the HTML of every sample issue (`emails/issues/*.md`) and of the confirmation email,
//! compiled as the engine compiles them, is read for the HTML and CSS features it uses, and each feature is looked
//! up in caniemail's support data (`tests/caniemail/`) for the clients in [`data::CLIENTS`]. A feature a client
//! does not support (`n` in its most recent test) fails the test unless `tests/caniemail/allowlist.toml` lists it
//! for that client with a reason; an allowlist entry that is no longer needed fails it too, so the list stays
//! minimal. Partial support (`a`) passes and is printed with its notes. Rules inside a media query are not
//! checked (the query itself is), nor is anything inside an Outlook conditional comment (`<!--[if mso]>`), which
//! only Outlook reads.

mod css;
mod data;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scraper::{Html, Node};
use tidings::render::{ConfirmRecipient, Recipient, Templates, compile_confirm, compile_issue, parse_issue};

use data::{Allowed, CLIENTS, Support, Verdict, client_name};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The features one email uses: caniemail slug -> where it was first seen.
#[derive(Debug, Default)]
pub(super) struct Uses {
    found: BTreeMap<String, String>,
}

impl Uses {
    fn record(&mut self, slug: String, seen: String) {
        let seen: String = seen.chars().take(90).collect();
        self.found.entry(slug).or_insert(seen);
    }
}

/// HTML elements that share one caniemail feature.
const ELEMENT_FEATURES: &[(&[&str], &str)] = &[
    (&["h1", "h2", "h3", "h4", "h5", "h6"], "html-h1-h6"),
    (&["ul", "ol", "li", "dl", "dt", "dd"], "html-lists"),
    (&["table", "thead", "tbody", "tfoot", "tr", "td", "th", "caption", "colgroup", "col"], "html-table"),
    (
        &[
            "article",
            "aside",
            "details",
            "figcaption",
            "figure",
            "footer",
            "header",
            "main",
            "mark",
            "nav",
            "section",
            "summary",
            "time",
        ],
        "html-semantics",
    ),
    (&["map", "area"], "html-image-maps"),
    (&["s", "strike"], "html-strike"),
];

/// Attributes with a caniemail feature of their own (`aria-*` are looked up by name as well).
const ATTRIBUTES: &[&str] = &[
    "align",
    "valign",
    "width",
    "height",
    "cellpadding",
    "cellspacing",
    "background",
    "lang",
    "dir",
    "role",
    "hidden",
    "target",
    "srcset",
    "loading",
    "popover",
    "required",
];

/// Every feature `html` uses, HTML and CSS.
fn html_uses(html: &str) -> Uses {
    let document = Html::parse_document(html);
    let mut uses = Uses::default();
    for node in document.tree.nodes() {
        match node.value() {
            Node::Doctype(_) => uses.record("html-doctype".into(), "<!doctype html>".into()),
            Node::Comment(comment) => {
                let shown: String = comment.chars().take(30).collect();
                uses.record("html-comments".into(), format!("<!--{shown}"));
            }
            Node::Element(element) => {
                let name = element.name();
                let slug = ELEMENT_FEATURES
                    .iter()
                    .find(|(names, _)| names.contains(&name))
                    .map_or_else(|| format!("html-{name}"), |(_, slug)| (*slug).to_owned());
                uses.record(slug, format!("<{name}>"));
                for (attribute, value) in element.attrs() {
                    if ATTRIBUTES.contains(&attribute) || attribute.starts_with("aria-") {
                        uses.record(format!("html-{attribute}"), format!("<{name} {attribute}=\"{value}\">"));
                    }
                    if attribute == "style" {
                        css::Css::new(&mut uses, false).declarations(value);
                    }
                }
                match (name, element.attr("href"), element.attr("type"), element.attr("name")) {
                    ("a", Some(href), ..) if href.starts_with("mailto:") => {
                        uses.record("html-mailto-links".into(), format!("<a href=\"{href}\">"));
                    }
                    ("a", Some(href), ..) if href.starts_with('#') => {
                        uses.record("html-anchor-links".into(), format!("<a href=\"{href}\">"));
                    }
                    ("input" | "button", _, Some(kind), _) => {
                        uses.record(
                            format!("html-{name}-{}", kind.to_ascii_lowercase()),
                            format!("<{name} type={kind}>"),
                        );
                    }
                    ("meta", _, _, Some("color-scheme")) => {
                        uses.record("html-meta-color-scheme".into(), "<meta name=\"color-scheme\">".into());
                    }
                    _ => {}
                }
                if let ("img", Some(src)) = (name, element.attr("src")) {
                    image_format(&mut uses, src);
                }
                if name == "style" {
                    let text: String =
                        node.children().filter_map(|child| child.value().as_text().map(|t| t.to_string())).collect();
                    // A `media` attribute makes the whole sheet a media query.
                    let media = element.attr("media").map(str::trim).filter(|m| !m.is_empty() && *m != "all");
                    if let Some(media) = media {
                        uses.record("css-at-media".into(), format!("<style media=\"{media}\">"));
                    }
                    css::Css::new(&mut uses, media.is_some()).sheet(&text);
                }
            }
            _ => {}
        }
    }
    uses
}

fn image_format(uses: &mut Uses, src: &str) {
    if src.starts_with("data:") {
        uses.record("image-base64".into(), "<img src=\"data:...\">".into());
        return;
    }
    let path = src.split(['?', '#']).next().unwrap_or_default();
    let Some((_, extension)) = path.rsplit_once('.') else { return };
    let extension = extension.to_ascii_lowercase();
    let format = if extension == "jpeg" { "jpg".to_owned() } else { extension };
    if format.len() <= 4 && format.chars().all(|c| c.is_ascii_alphanumeric()) {
        uses.record(format!("image-{format}"), format!("<img src=\"...{path}\">"));
    }
}

/// What the gate found for a set of emails.
#[derive(Debug, Default)]
struct Verdicts {
    /// Unsupported and not allowlisted: each a sentence.
    failures: Vec<String>,
    /// Partial support, for the log.
    partial: Vec<String>,
    /// Features caniemail does not list (not checked), for the log.
    unknown: BTreeSet<String>,
    /// (feature, client) pairs the allowlist was needed for.
    allowed: BTreeSet<(String, String)>,
}

fn judge(email: &str, uses: &Uses, support: &Support, allowlist: &BTreeMap<String, Allowed>, verdicts: &mut Verdicts) {
    for (slug, seen) in &uses.found {
        let Some(feature) = support.features.get(slug) else {
            verdicts.unknown.insert(slug.clone());
            continue;
        };
        for (client, ..) in CLIENTS {
            let Some(result) = feature.results.get(client) else { continue };
            let notes = if result.notes.is_empty() { String::new() } else { format!(" ({})", result.notes.join("; ")) };
            match result.verdict {
                Verdict::Unsupported => {
                    let allowed = allowlist.get(slug).is_some_and(|entry| entry.clients.iter().any(|c| c == client));
                    if allowed {
                        verdicts.allowed.insert((slug.clone(), (*client).to_owned()));
                    } else {
                        verdicts.failures.push(format!(
                            "{email}: {slug} ({}) is not supported by {} (caniemail test {}){notes}; used by `{seen}`",
                            feature.title,
                            client_name(client),
                            result.tested
                        ));
                    }
                }
                Verdict::Partial => {
                    verdicts.partial.push(format!("{email}: {slug} partial in {}{notes}", client_name(client)))
                }
                Verdict::Supported | Verdict::Unknown => {}
            }
        }
    }
}

/// Allowlist entries (or clients in them) that nothing needed: the feature is gone or now supported.
fn stale(allowlist: &BTreeMap<String, Allowed>, verdicts: &Verdicts) -> Vec<String> {
    let mut stale = Vec::new();
    for (slug, entry) in allowlist {
        for client in &entry.clients {
            if !verdicts.allowed.contains(&(slug.clone(), client.clone())) {
                stale.push(format!("allowlist entry {slug} for {client} is no longer needed: remove it"));
            }
        }
    }
    stale
}

/// Every email the gate checks, as its recipient gets it: (name for messages, HTML).
fn emails() -> Vec<(String, String)> {
    let templates = Templates::embedded();
    let mut issues: Vec<PathBuf> = std::fs::read_dir(root().join("emails/issues"))
        .expect("emails/issues")
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    issues.sort();
    assert!(!issues.is_empty(), "no sample issue under emails/issues");
    let url = |what: &str| format!("https://tidings.example/{what}/tok1");
    let rates = [1, 2, 3, 4, 5].map(|stars| format!("https://tidings.example/r/tok1?stars={stars}"));
    let (unsubscribe, view, pixel) = (url("u"), url("v"), format!("{}.gif", url("o")));
    let mut emails = Vec::new();
    for path in issues {
        let name = path.strip_prefix(root()).unwrap_or(&path).display().to_string();
        let text = std::fs::read_to_string(&path).expect("read the sample issue");
        let source = parse_issue(&name, &text).unwrap_or_else(|e| panic!("{e}"));
        let compiled =
            compile_issue(&templates, &source, &crate::helpers::sample_branding()).unwrap_or_else(|e| panic!("{e}"));
        let recipient = Recipient {
            name: "Ana",
            unsubscribe_url: &unsubscribe,
            rate_urls: [&rates[0], &rates[1], &rates[2], &rates[3], &rates[4]],
            pixel_url: Some(&pixel),
            view_url: &view,
        };
        emails.push((name, compiled.personalise(&recipient).html()));
    }
    let confirm = compile_confirm(&templates, &crate::helpers::sample_branding(), "Weekly China")
        .expect("the confirmation email compiles");
    let confirm_url = url("c");
    emails.push((
        "confirm.mjml".into(),
        confirm.personalise(&ConfirmRecipient { name: "Ana", confirm_url: &confirm_url }).html(),
    ));
    emails
}

fn support() -> Support {
    Support::load(&root().join("tests/caniemail/caniemail.json"))
}

#[test]
fn every_sample_email_uses_only_what_gmail_apple_mail_outlook_and_yahoo_support_or_the_allowlist_explains() {
    let support = support();
    let allowlist = data::allowlist(&root().join("tests/caniemail/allowlist.toml"));
    let mut verdicts = Verdicts::default();
    let emails = emails();
    for (name, html) in &emails {
        let uses = html_uses(html);
        assert!(
            uses.found.contains_key("html-table") && uses.found.contains_key("css-padding"),
            "{name}: nothing read"
        );
        judge(name, &uses, &support, &allowlist, &mut verdicts);
    }
    let report = format!(
        "caniemail data of {}; {} emails checked\nallowlisted (feature, client): {}\npartial support (passes; read \
         the notes):\n  {}\nnot in caniemail's data (not checked): {:?}\n",
        support.updated,
        emails.len(),
        verdicts.allowed.len(),
        verdicts.partial.join("\n  "),
        verdicts.unknown
    );
    print!("{report}");
    let artifacts =
        std::env::var_os("TEST_ARTIFACTS_DIR").map_or_else(|| root().join("target/test-artifacts"), PathBuf::from);
    std::fs::create_dir_all(&artifacts).expect("the artifacts folder");
    std::fs::write(artifacts.join("caniemail-report.txt"), &report).expect("write the gate's report");
    let mut problems = verdicts.failures.clone();
    problems.extend(stale(&allowlist, &verdicts));
    assert!(
        problems.is_empty(),
        "{} problem(s) with the email's client support; fix the template, or when the feature is deliberate add it \
         to tests/caniemail/allowlist.toml with the reason:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn a_feature_a_checked_client_does_not_support_fails_the_gate_unless_it_is_allowlisted_for_that_client() {
    let support = support();
    let html = "<!doctype html><html><head><style>.card:hover { color: red; } \
                @media (prefers-color-scheme: dark) { .card { display: grid; } }</style></head>\
                <body><table><tr><td><form action=\"https://x.example/\"><p style=\"display:flex; margin:0\">Hi</p>\
                </form></td></tr></table></body></html>";
    let uses = html_uses(html);
    // Inside the media query only the query counts.
    assert!(uses.found.contains_key("css-at-media-prefers-color-scheme"), "{:?}", uses.found);
    assert!(!uses.found.contains_key("css-display-grid"), "{:?}", uses.found);

    let allow = |feature: &str, clients: &[&str]| {
        let entry = Allowed {
            feature: feature.into(),
            clients: clients.iter().map(|c| (*c).to_owned()).collect(),
            reason: "a reason long enough".into(),
        };
        BTreeMap::from([(feature.to_owned(), entry)])
    };
    let mut verdicts = Verdicts::default();
    judge("test", &uses, &support, &BTreeMap::new(), &mut verdicts);
    let flex_in_outlook = "css-display-flex (display:flex) is not supported by Outlook (Windows)";
    assert!(verdicts.failures.iter().any(|f| f.contains(flex_in_outlook)), "{:#?}", verdicts.failures);
    assert!(verdicts.failures.iter().any(|f| f.contains("html-form")), "{:#?}", verdicts.failures);

    let mut verdicts = Verdicts::default();
    judge("test", &uses, &support, &allow("css-display-flex", &["outlook-windows"]), &mut verdicts);
    assert!(!verdicts.failures.iter().any(|f| f.contains(flex_in_outlook)), "{:#?}", verdicts.failures);
    assert!(verdicts.allowed.contains(&("css-display-flex".to_owned(), "outlook-windows".to_owned())));

    // An entry nothing needs is reported.
    let unneeded = allow("css-display-grid", &["gmail-web"]);
    let mut verdicts = Verdicts::default();
    judge("test", &uses, &support, &unneeded, &mut verdicts);
    assert_eq!(
        stale(&unneeded, &verdicts),
        ["allowlist entry css-display-grid for gmail-web is no longer needed: remove it"]
    );
}

#[test]
fn selectors_properties_and_values_are_read_as_caniemail_names_them() {
    let uses = html_uses(
        "<style>[data-ogsc] .t-card > a.t-star, #outlook a::before { border-top: 1px solid rgba(0,0,0,.5) !important; \
         margin-left: 2em; width: calc(100% - 4px); }</style><a href=\"mailto:x@example.com\" align=\"left\">x</a>",
    );
    for slug in [
        "css-selector-attribute",
        "css-selector-descendant",
        "css-selector-child",
        "css-selector-class",
        "css-selector-type",
        "css-selector-chaining",
        "css-selector-grouping",
        "css-selector-id",
        "css-pseudo-element-before",
        "css-border",
        "css-rgba",
        "css-important",
        "css-margin",
        "css-unit-em",
        "css-unit-calc",
        "css-unit-percent",
        "css-unit-px",
        "css-width",
        "html-mailto-links",
        "html-align",
        "html-style",
    ] {
        assert!(uses.found.contains_key(slug), "{slug} not found in {:#?}", uses.found);
    }
}
