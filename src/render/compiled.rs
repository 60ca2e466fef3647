//! Compiled emails and personalisation: literal segments plus per-recipient slots, filled in per recipient.
//!
//! This file owns what is stored per issue ([`CompiledIssue`], serializable) and the per-recipient step.
//! Personalising escapes the recipient's few values and borrows everything else: it does no template, MJML or
//! Markdown work and scans no text, so it costs about as much as escaping a name and five URLs.

use std::borrow::Cow;
use std::convert::Infallible;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use super::fragment::escape_html;
use super::slots::{Condition, RATE_SLOTS, SLOT_COUNT, Segment, Slot};
use crate::domain::{IssueNumber, SubscriptionStatus};

/// An issue rendered once, ready to be personalised for each recipient. Serializes to JSON for storage;
/// compiling the same source with the same templates gives the same value, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledIssue {
    pub(crate) number: IssueNumber,
    pub(crate) subject: String,
    pub(crate) preheader: String,
    pub(crate) html: Vec<Segment>,
    pub(crate) text: Vec<Segment>,
    pub(crate) links: Vec<String>,
}

impl CompiledIssue {
    pub fn number(&self) -> IssueNumber {
        self.number
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn preheader(&self) -> &str {
        &self.preheader
    }

    /// Every web (http/https) link in the issue's content, in order of first appearance, without repeats.
    /// Link `n` (from 1) is the one the plain-text part calls `[n]`.
    pub fn links(&self) -> &[String] {
        &self.links
    }

    /// The email for one recipient. `recipient`'s strings must outlive the result, which borrows them.
    pub fn personalise<'a>(&'a self, recipient: &Recipient<'a>) -> Personalised<'a> {
        self.personalise_for(recipient, Reader::Email)
    }

    /// The issue for one recipient, read where `reader` says (the email, or one of its web versions).
    pub fn personalise_for<'a>(&'a self, recipient: &Recipient<'a>, reader: Reader<'a>) -> Personalised<'a> {
        let mut raw = [""; SLOT_COUNT];
        if let Reader::Public { tally } = reader {
            raw[Slot::Tally.index()] = tally;
        }
        raw[Slot::Name.index()] = recipient.name.trim();
        raw[Slot::UnsubscribeUrl.index()] = recipient.unsubscribe_url;
        raw[Slot::ViewUrl.index()] = recipient.view_url;
        for (slot, url) in RATE_SLOTS.iter().zip(recipient.rate_urls) {
            raw[slot.index()] = url;
        }
        raw[Slot::PixelUrl.index()] = recipient.pixel_url.unwrap_or_default();
        Personalised::new(&self.html, &self.text, raw, recipient.pixel_url.is_some()).read_by(reader)
    }
}

/// Who reads a copy of an issue, and where: it decides the regions that depend on it (the footer says why the
/// reader gets the list, or that they no longer do; "View in your browser" only in the email).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader<'a> {
    /// The email itself, sent to an active subscriber.
    Email,
    /// The subscriber's own web version (`/v/`), in their current standing with the list.
    Subscriber(SubscriptionStatus),
    /// The public web version (`/issues/N`), with the issue's rating tally ("4.6/5 (23 votes)").
    Public { tally: &'a str },
}

impl Reader<'_> {
    /// The table of which reader sees which region. Name and pixel regions depend on the recipient's values
    /// instead ([`Personalised::holds`]); no reader sees them on its own account.
    fn sees(self, condition: Condition) -> bool {
        use SubscriptionStatus as S;
        match condition {
            Condition::HasName | Condition::HasPixel => false,
            Condition::InEmail => self == Reader::Email,
            Condition::Subscribed => matches!(self, Reader::Email | Reader::Subscriber(S::Active)),
            Condition::Pending => self == Reader::Subscriber(S::Pending),
            Condition::Unsubscribed => self == Reader::Subscriber(S::Unsubscribed),
            Condition::Bounced => self == Reader::Subscriber(S::Bounced),
            Condition::Complained => self == Reader::Subscriber(S::Complained),
            Condition::Public => matches!(self, Reader::Public { .. }),
        }
    }
}

/// The per-recipient values of an issue. URLs are complete (signed tokens included): they are only escaped
/// and placed here. `Debug` shows none of them: names and tokens stay out of logs.
#[derive(Clone, Copy)]
pub struct Recipient<'a> {
    /// The subscriber's name; empty gives the greeting without a name ("Hello,").
    pub name: &'a str,
    pub unsubscribe_url: &'a str,
    /// The links of the five stars, for 1 to 5 stars.
    pub rate_urls: [&'a str; 5],
    /// The open-tracking image; `None`: no image at all.
    pub pixel_url: Option<&'a str>,
    /// The issue on the web ("view in your browser").
    pub view_url: &'a str,
}

/// The double opt-in confirmation email, rendered once per list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledConfirm {
    pub(crate) subject: String,
    pub(crate) html: Vec<Segment>,
    pub(crate) text: Vec<Segment>,
}

impl CompiledConfirm {
    pub fn subject(&self) -> &str {
        &self.subject
    }

    pub fn personalise<'a>(&'a self, recipient: &ConfirmRecipient<'a>) -> Personalised<'a> {
        let mut raw = [""; SLOT_COUNT];
        raw[Slot::Name.index()] = recipient.name.trim();
        raw[Slot::ConfirmUrl.index()] = recipient.confirm_url;
        Personalised::new(&self.html, &self.text, raw, false)
    }
}

/// The per-recipient values of a confirmation email. `Debug` shows none of them.
#[derive(Clone, Copy)]
pub struct ConfirmRecipient<'a> {
    /// The name given on the form; may be empty.
    pub name: &'a str,
    /// The link that shows the confirmation page.
    pub confirm_url: &'a str,
}

/// One recipient's email: the compiled segments and this recipient's values, HTML-escaped for the HTML part
/// and as given for the text part. Materialise it with [`html`](Self::html) / [`text`](Self::text) or stream
/// it with [`write_html`](Self::write_html). `Debug` shows no recipient data.
pub struct Personalised<'a> {
    html: &'a [Segment],
    text: &'a [Segment],
    raw: [&'a str; SLOT_COUNT],
    escaped: [Cow<'a, str>; SLOT_COUNT],
    has_pixel: bool,
    reader: Reader<'a>,
}

impl fmt::Debug for Recipient<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Recipient(<redacted>)")
    }
}

impl fmt::Debug for ConfirmRecipient<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfirmRecipient(<redacted>)")
    }
}

impl fmt::Debug for Personalised<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Personalised").field("html_segments", &self.html.len()).finish_non_exhaustive()
    }
}

impl<'a> Personalised<'a> {
    fn new(html: &'a [Segment], text: &'a [Segment], raw: [&'a str; SLOT_COUNT], has_pixel: bool) -> Self {
        Self { html, text, raw, escaped: raw.map(escape_html), has_pixel, reader: Reader::Email }
    }

    fn read_by(self, reader: Reader<'a>) -> Self {
        Self { reader, ..self }
    }

    fn holds(&self, condition: Condition) -> bool {
        match condition {
            Condition::HasName => !self.raw[Slot::Name.index()].is_empty(),
            Condition::HasPixel => self.has_pixel,
            other => self.reader.sees(other),
        }
    }

    /// Calls `write` with each piece of a part, in order: the HTML part (`html`, with escaped values) or the
    /// text part.
    fn walk<E>(&self, segments: &[Segment], html: bool, write: &mut dyn FnMut(&str) -> Result<(), E>) -> Result<(), E> {
        for segment in segments {
            match segment {
                Segment::Literal(text) => write(text)?,
                Segment::Slot(slot) if html => write(&self.escaped[slot.index()])?,
                Segment::Slot(slot) => write(self.raw[slot.index()])?,
                Segment::When(condition, inner) if self.holds(*condition) => self.walk(inner, html, write)?,
                Segment::When(..) => {}
            }
        }
        Ok(())
    }

    /// The length in bytes of [`html`](Self::html), without building it.
    pub fn html_len(&self) -> usize {
        let mut length = 0;
        let Ok(()) = self.walk::<Infallible>(self.html, true, &mut |piece| {
            length += piece.len();
            Ok(())
        });
        length
    }

    pub fn html(&self) -> String {
        let mut out = String::with_capacity(self.html_len());
        let Ok(()) = self.walk::<Infallible>(self.html, true, &mut |piece| {
            out.push_str(piece);
            Ok(())
        });
        out
    }

    /// Streams the HTML part into `out`, for a message body built without an intermediate `String`.
    pub fn write_html(&self, out: &mut impl io::Write) -> io::Result<()> {
        self.walk(self.html, true, &mut |piece| out.write_all(piece.as_bytes()))
    }

    /// The length in bytes of [`text`](Self::text), without building it.
    pub fn text_len(&self) -> usize {
        let mut length = 0;
        let Ok(()) = self.walk::<Infallible>(self.text, false, &mut |piece| {
            length += piece.len();
            Ok(())
        });
        length
    }

    /// The plain-text part, with the recipient's values as given (plain text needs no escaping).
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.text_len());
        let Ok(()) = self.walk::<Infallible>(self.text, false, &mut |piece| {
            out.push_str(piece);
            Ok(())
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn confirm() -> CompiledConfirm {
        let name = Segment::When(Condition::HasName, vec![Segment::Literal(" ".into()), Segment::Slot(Slot::Name)]);
        let parts = vec![
            Segment::Literal("<p>Hi".into()),
            name,
            Segment::Literal(": <a href=\"".into()),
            Segment::Slot(Slot::ConfirmUrl),
            Segment::Literal("\">go</a></p>".into()),
        ];
        CompiledConfirm { subject: "Confirm".into(), html: parts.clone(), text: parts }
    }

    #[test]
    fn values_are_escaped_in_html_and_left_as_given_in_text() {
        let confirm = confirm();
        let email = confirm.personalise(&ConfirmRecipient { name: "<Ana & 'Bo'>", confirm_url: "https://x/?a=1&b=2" });
        assert_eq!(email.html(), "<p>Hi &lt;Ana &amp; &#39;Bo&#39;&gt;: <a href=\"https://x/?a=1&amp;b=2\">go</a></p>");
        assert_eq!(email.text(), "<p>Hi <Ana & 'Bo'>: <a href=\"https://x/?a=1&b=2\">go</a></p>");
        assert_eq!((email.html_len(), email.text_len()), (email.html().len(), email.text().len()));
    }

    #[test]
    fn a_blank_name_drops_the_whole_optional_region() {
        let confirm = confirm();
        let email = confirm.personalise(&ConfirmRecipient { name: "  ", confirm_url: "u" });
        assert_eq!(email.text(), "<p>Hi: <a href=\"u\">go</a></p>");
    }

    #[test]
    fn each_reader_sees_the_regions_made_for_them_and_only_the_public_sees_the_tally() {
        let region = |condition, text: &str| Segment::When(condition, vec![Segment::Literal(text.into())]);
        let issue = CompiledIssue {
            number: IssueNumber::try_from(1u32).unwrap(),
            subject: "s".into(),
            preheader: "p".into(),
            html: vec![
                region(Condition::Subscribed, "[subscribed]"),
                region(Condition::InEmail, "[email]"),
                region(Condition::Pending, "[pending]"),
                region(Condition::Unsubscribed, "[unsubscribed]"),
                region(Condition::Bounced, "[bounced]"),
                region(Condition::Complained, "[complained]"),
                Segment::When(Condition::Public, vec![Segment::Literal("[public ".into()), Segment::Slot(Slot::Tally)]),
            ],
            text: vec![],
            links: vec![],
        };
        let recipient = Recipient { name: "", unsubscribe_url: "", rate_urls: [""; 5], pixel_url: None, view_url: "" };
        let html = |reader| issue.personalise_for(&recipient, reader).html();
        assert_eq!(issue.personalise(&recipient).html(), "[subscribed][email]");
        assert_eq!(html(Reader::Subscriber(SubscriptionStatus::Active)), "[subscribed]");
        assert_eq!(html(Reader::Subscriber(SubscriptionStatus::Pending)), "[pending]");
        assert_eq!(html(Reader::Subscriber(SubscriptionStatus::Unsubscribed)), "[unsubscribed]");
        assert_eq!(html(Reader::Subscriber(SubscriptionStatus::Bounced)), "[bounced]");
        assert_eq!(html(Reader::Subscriber(SubscriptionStatus::Complained)), "[complained]");
        assert_eq!(html(Reader::Public { tally: "5/5 (1 vote)" }), "[public 5/5 (1 vote)");
    }

    #[test]
    fn debug_output_shows_no_recipient_data() {
        let confirm = confirm();
        let recipient = ConfirmRecipient { name: "Ana", confirm_url: "https://x/token" };
        let shown = format!("{recipient:?} {:?}", confirm.personalise(&recipient));
        assert!(!shown.contains("Ana") && !shown.contains("token"), "{shown}");
    }
}
