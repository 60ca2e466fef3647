//! Rendering: an issue's Markdown source to a responsive MJML email and a plain-text part, compiled once per
//! issue into literal segments and per-recipient slots; and the double opt-in confirmation email, likewise.
//!
//! The pipeline: [`parse_issue`] reads the front matter and Markdown into an [`IssueSource`];
//! [`compile_issue`] renders `digest.mjml` (minijinja) with a marker in place of every per-recipient value,
//! turns the MJML into HTML with mrml, renders `digest.txt` from the same parsed content, and splits both at
//! the markers into a [`CompiledIssue`]. Sending then calls [`CompiledIssue::personalise`] per recipient,
//! which only escapes and places that recipient's values.
//!
//! Architecture invariants: subscriber data never enters a template or the MJML; nothing per recipient parses,
//! renders or scans text; this module performs no I/O except [`Templates::from_dir`]; and it reads no clock,
//! so the same inputs always give byte-identical output.

mod compiled;
mod error;
mod fragment;
mod inline;
mod markdown;
mod mjml;
mod slots;
mod source;
mod template;
mod text;
mod wrap;

use minijinja::context;
use minijinja::value::Value;

pub use compiled::{CompiledConfirm, CompiledIssue, ConfirmRecipient, Personalised, Reader, Recipient};
pub use error::RenderError;
pub use markdown::{Block, Inline, Item, SourceLink};
pub use source::{IssueSource, parse_issue};
pub use template::Templates;

use fragment::{LinkTable, blocks_html, blocks_text};
use slots::{RATE_SLOTS, RESERVED, Segment, Slot, SlotRules, slots_context, split};
use template::{CONFIRM_MJML, CONFIRM_TEXT, DIGEST_MJML, DIGEST_TEXT};

/// Columns the plain-text part is wrapped to, the usual width for email.
const TEXT_WIDTH: usize = 72;

/// Everything about the sender and the list that appears in every email. It comes from configuration and is
/// the same for every recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branding {
    /// The newsletter's name as readers know it, shown as the email's title ("So, what's up in China?").
    pub list_name: String,
    /// Who sends it, named in the footer.
    pub organization: String,
    /// The sender's postal address, in the footer as anti-spam law (CAN-SPAM) requires.
    pub postal_address: String,
    /// The From address, shown in the footer so readers know who writes and where replies go.
    pub sender_email: String,
}

impl Branding {
    fn context(&self, list_name: &str) -> Value {
        context! {
            list_name => list_name,
            organization => &self.organization,
            postal_address => &self.postal_address,
            sender_email => &self.sender_email,
        }
    }

    fn texts(&self) -> [(&'static str, &str); 4] {
        [
            ("list_name", &self.list_name),
            ("organization", &self.organization),
            ("postal_address", &self.postal_address),
            ("sender_email", &self.sender_email),
        ]
    }
}

const ISSUE_SLOTS: [Slot; 10] = [
    Slot::Name,
    Slot::UnsubscribeUrl,
    Slot::ViewUrl,
    RATE_SLOTS[0],
    RATE_SLOTS[1],
    RATE_SLOTS[2],
    RATE_SLOTS[3],
    RATE_SLOTS[4],
    Slot::PixelUrl,
    Slot::Tally,
];
const ISSUE_HTML_REQUIRED: [Slot; 8] = [
    Slot::UnsubscribeUrl,
    Slot::ViewUrl,
    RATE_SLOTS[0],
    RATE_SLOTS[1],
    RATE_SLOTS[2],
    RATE_SLOTS[3],
    RATE_SLOTS[4],
    Slot::PixelUrl,
];
const ISSUE_TEXT_REQUIRED: [Slot; 6] =
    [Slot::UnsubscribeUrl, RATE_SLOTS[0], RATE_SLOTS[1], RATE_SLOTS[2], RATE_SLOTS[3], RATE_SLOTS[4]];

/// Renders an issue once: HTML and text parts with slots for each recipient's values.
pub fn compile_issue(
    templates: &Templates,
    source: &IssueSource,
    branding: &Branding,
) -> Result<CompiledIssue, RenderError> {
    refuse_reserved(source, branding)?;
    let common = context! {
        issue => context! {
            number => source.number.get(),
            subject => &source.subject,
            preheader => &source.preheader,
            period => &source.period,
        },
        brand => branding.context(&branding.list_name),
        slots => slots_context(),
    };
    let html = issue_html(templates, source, &common)?;
    let (text, links) = issue_text(templates, source, &common)?;
    Ok(CompiledIssue {
        number: source.number,
        subject: source.subject.clone(),
        preheader: source.preheader.clone(),
        html,
        text,
        links,
    })
}

/// The HTML part: Markdown to HTML fragments, `digest.mjml` to MJML, mrml to HTML, split at the markers.
fn issue_html(templates: &Templates, source: &IssueSource, common: &Value) -> Result<Vec<Segment>, RenderError> {
    let items: Vec<Value> = (source.items.iter().enumerate())
        .map(|(index, item)| {
            context! {
                number => index + 1,
                heading => &item.heading,
                html => Value::from_safe_string(blocks_html(&item.body)),
                source => context! { text => &item.source.text, url => &item.source.url },
            }
        })
        .collect();
    let context = context! {
        intro => Value::from_safe_string(blocks_html(&source.intro)),
        items,
        outro => Value::from_safe_string(blocks_html(&source.outro)),
        ..common.clone()
    };
    let mjml = templates.render(DIGEST_MJML, context)?;
    let html = wrap::wrap_html(&mjml::to_html(templates, DIGEST_MJML, &mjml)?.html, wrap::MAX_LINE);
    split(&html, &SlotRules { template: DIGEST_MJML, required: &ISSUE_HTML_REQUIRED, allowed: &ISSUE_SLOTS })
}

/// The text part, from the same parsed blocks: wrapped text with web links numbered in order of appearance,
/// and the list of those links.
fn issue_text(
    templates: &Templates,
    source: &IssueSource,
    common: &Value,
) -> Result<(Vec<Segment>, Vec<String>), RenderError> {
    let mut links = LinkTable::default();
    let intro = blocks_text(&source.intro, &mut links, TEXT_WIDTH);
    let items: Vec<Value> = (source.items.iter().enumerate())
        .map(|(index, item)| {
            let text = blocks_text(&item.body, &mut links, TEXT_WIDTH);
            let source = context! {
                text => &item.source.text,
                url => &item.source.url,
                number => links.number(&item.source.url),
            };
            context! { number => index + 1, heading => &item.heading, text, source }
        })
        .collect();
    let outro = blocks_text(&source.outro, &mut links, TEXT_WIDTH);
    let numbered: Vec<Value> =
        links.urls().iter().enumerate().map(|(index, url)| context! { number => index + 1, url }).collect();
    let context = context! { intro, items, outro, links => numbered, ..common.clone() };
    let text = templates.render(DIGEST_TEXT, context)?;
    let text =
        split(&text, &SlotRules { template: DIGEST_TEXT, required: &ISSUE_TEXT_REQUIRED, allowed: &ISSUE_SLOTS })?;
    Ok((text, links.into_urls()))
}

/// Renders the double opt-in email for `list_name` once. Its subject is the template's `<mj-title>`.
pub fn compile_confirm(
    templates: &Templates,
    branding: &Branding,
    list_name: &str,
) -> Result<CompiledConfirm, RenderError> {
    refuse_reserved_in(branding.texts().into_iter().chain([("list name", list_name)]))?;
    let context = context! { brand => branding.context(list_name), slots => slots_context() };
    let mjml = templates.render(CONFIRM_MJML, context.clone())?;
    let rendered = mjml::to_html(templates, CONFIRM_MJML, &mjml)?;
    let allowed = [Slot::Name, Slot::ConfirmUrl];
    let rules = SlotRules { template: CONFIRM_MJML, required: &[Slot::ConfirmUrl], allowed: &allowed };
    let html = split(&wrap::wrap_html(&rendered.html, wrap::MAX_LINE), &rules)?;
    let text = templates.render(CONFIRM_TEXT, context)?;
    let text = split(&text, &SlotRules { template: CONFIRM_TEXT, ..rules })?;
    let subject = rendered.title.filter(|title| !title.trim().is_empty()).ok_or_else(|| RenderError::Slots {
        template: CONFIRM_MJML.to_owned(),
        message: "the confirmation email needs an <mj-title>: it is the subject".to_owned(),
    })?;
    Ok(CompiledConfirm { subject, html, text })
}

/// Content containing the placeholder prefix would be cut apart by the split, so it is refused up front.
fn refuse_reserved(source: &IssueSource, branding: &Branding) -> Result<(), RenderError> {
    let item_blocks = source.items.iter().map(|item| &item.body);
    let text: String = [&source.intro, &source.outro].into_iter().chain(item_blocks).map(|b| blocks_html(b)).collect();
    let fields = [
        ("subject", source.subject.as_str()),
        ("preheader", source.preheader.as_str()),
        ("period", source.period.as_str()),
        ("text", text.as_str()),
    ];
    let items = source.items.iter().flat_map(|item| {
        [("lead-in", item.heading.as_str()), ("source", item.source.text.as_str()), ("source", &item.source.url)]
    });
    refuse_reserved_in(fields.into_iter().chain(items).chain(branding.texts()))
}

fn refuse_reserved_in<'a>(texts: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<(), RenderError> {
    match texts.into_iter().find(|(_, text)| text.contains(RESERVED)) {
        Some((field, _)) => Err(RenderError::Slots {
            template: "(content)".to_owned(),
            message: format!("the {field} contains `{RESERVED}`, which is reserved for Tidings' placeholders"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branding(organization: &str) -> Branding {
        Branding {
            list_name: "Weekly".into(),
            organization: organization.into(),
            postal_address: "1 Road".into(),
            sender_email: "a@example.com".into(),
        }
    }

    #[test]
    fn branding_with_the_placeholder_prefix_is_refused() {
        let error = compile_confirm(&Templates::embedded(), &branding("tidingsslot_name_ Ltd"), "Weekly").unwrap_err();
        assert!(error.to_string().contains("the organization contains `tidingsslot`"), "{error}");
    }

    #[test]
    fn an_issue_with_the_placeholder_prefix_in_a_source_url_is_refused() {
        let text = "+++\nnumber = 1\nsubject = \"S\"\npreheader = \"P\"\nperiod = \"W\"\n+++\n## One\nText.\n\n[A](https://a.example/)\n";
        let mut source = parse_issue("1.md", text).expect("parses");
        source.items[0].source.url = "https://a.example/tidingsslot_view_".into();
        let error = compile_issue(&Templates::embedded(), &source, &branding("Org")).unwrap_err();
        assert!(error.to_string().contains("the source contains"), "{error}");
    }
}
