//! What a message that came back says: one raw message (a DSN, an ARF complaint, a plain-text bounce, an
//! auto-reply) in, one [`Report`] out, with every recipient's outcome classified.
//!
//! `read_report` is the whole API. mail-parser reads the MIME structure and decodes headers; `fields.rs` reads the
//! header-field blocks of `message/delivery-status` and `message/feedback-report` parts (no crate does that
//! without heavy dependencies); `recognise.rs` decides what kind of message it is (structure first, then the
//! mail system's own wording, then auto-reply signals); `plain.rs` reads the bounces that are not DSNs;
//! `original.rs` finds the embedded original (trace refs, Message-IDs, recipients); `classify.rs` holds the one
//! table that turns a status and its text into a [`BounceKind`]; `address.rs` finds and scrubs addresses.
//!
//! This module performs no I/O, reads no clock, depends on nothing else in the crate, and never panics on
//! input: any bytes give a `Report` or a `ReportError`.

mod address;
mod classify;
mod fields;
mod original;
mod plain;
mod recognise;
mod status;

use std::fmt;

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

pub use address::scrub_addresses;

use classify::Evidence;
use recognise::Recognised;

/// How long a diagnostic text may be, in characters; longer ones are cut.
pub const DIAGNOSTIC_MAX_CHARS: usize = 500;

/// What one raw message says. Built only by [`read_report`].
#[derive(Clone, PartialEq, Eq)]
pub struct Report {
    /// How the message was recognised.
    pub form: ReportForm,
    /// One per DSN per-recipient block or plain-bounce recipient; for a complaint one entry for the person who
    /// complained (whose address may be `None` or redacted); for an auto-reply one entry for its sender.
    pub recipients: Vec<RecipientOutcome>,
    /// An ARF report's Feedback-Type, lowercased (`abuse`, `fraud`, `other`, `auth-failure`, ...).
    pub feedback_type: Option<String>,
    /// Every value of an `X-Tidings-Ref` header in the embedded original (a `message/rfc822` part, a
    /// `text/rfc822-headers` or `message/rfc822-headers` part, or headers quoted in a plain-text body), trimmed,
    /// deduplicated, in order. Values longer than 512 characters are ignored.
    pub trace_refs: Vec<String>,
    /// Message-ID values of the embedded original, with angle brackets. For an auto-reply, also its
    /// `In-Reply-To` (RFC 3834 asks auto-responders to set it to the original's Message-ID).
    pub original_message_ids: Vec<String>,
    /// Addresses the original was sent to, as the report names them: ARF `Original-Rcpt-To`, and the embedded
    /// original's `To`, `Delivered-To`, `X-Original-To` and Microsoft's `X-HmXmrOriginalRecipient`.
    pub original_recipients: Vec<String>,
    /// A DSN's `Original-Envelope-Id` (the ENVID the sender gave at MAIL FROM), if any.
    pub original_envelope_id: Option<String>,
    /// The report's own Subject, decoded, for display (may be empty).
    pub subject: String,
}

/// How a report was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportForm {
    /// `multipart/report; report-type=delivery-status` (RFC 3464), with its per-recipient blocks.
    Dsn,
    /// `multipart/report; report-type=feedback-report` (RFC 5965, ARF), or Microsoft's attached-original form.
    Feedback,
    /// An automatic reply (RFC 3834 headers, vacation subjects, challenge-response).
    AutoReply,
    /// A bounce that is not a DSN: the mail system's own plain text (Exim, qmail, Exchange, Yahoo, ...).
    PlainBounce,
    /// None of the above: nothing in it changes anything.
    Unrecognised,
}

impl ReportForm {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportForm::Dsn => "dsn",
            ReportForm::Feedback => "feedback",
            ReportForm::AutoReply => "auto-reply",
            ReportForm::PlainBounce => "plain-bounce",
            ReportForm::Unrecognised => "unrecognised",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Dsn, Self::Feedback, Self::AutoReply, Self::PlainBounce, Self::Unrecognised]
            .into_iter()
            .find(|form| form.as_str() == s)
    }
}

/// What happened to one recipient, as the report says it and as the table classifies it.
#[derive(Clone, PartialEq, Eq)]
pub struct RecipientOutcome {
    /// The Final-Recipient (or Original-Recipient) address without its `rfc822;` type, or the address a plain
    /// bounce names; `None` when the report names none (match it through the return path or trace ref).
    pub recipient: Option<String>,
    pub action: Option<DsnAction>,
    /// The enhanced status code (`5.1.1`): from `Status:`, or found or inferred in the diagnostic text.
    pub status: Option<String>,
    /// The Diagnostic-Code text (or a plain bounce's text about this recipient), unfolded, whitespace collapsed,
    /// at most [`DIAGNOSTIC_MAX_CHARS`] characters.
    pub diagnostic: Option<String>,
    pub kind: BounceKind,
    /// One short human line: which row of the table decided, and why.
    pub reason: String,
}

/// A DSN's `Action` (RFC 3464 section 2.3.3). A plain bounce is `Failed`, or `Delayed` when it is a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DsnAction {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl DsnAction {
    pub fn as_str(self) -> &'static str {
        match self {
            DsnAction::Failed => "failed",
            DsnAction::Delayed => "delayed",
            DsnAction::Delivered => "delivered",
            DsnAction::Relayed => "relayed",
            DsnAction::Expanded => "expanded",
        }
    }

    /// Reads an Action value (`failed`, `Failed (permanent)`, ...); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let word = s.split(|c: char| !c.is_ascii_alphabetic()).find(|w| !w.is_empty())?;
        [Self::Failed, Self::Delayed, Self::Delivered, Self::Relayed, Self::Expanded]
            .into_iter()
            .find(|action| word.eq_ignore_ascii_case(action.as_str()))
    }
}

/// The classification of one recipient's outcome (the table is in `classify.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BounceKind {
    /// The address does not exist or is disabled: suppress it at once.
    Hard,
    /// Mailbox full, routing trouble, a temporary failure that reached `failed`: adds to a decaying score.
    Soft,
    /// The receiving side refused the sender or the message (blocked, spam, DMARC): the sender's problem.
    Policy,
    /// The person reported the message as spam (an ARF feedback report).
    Complaint,
    /// A vacation reply, an out-of-office notice or a challenge-response: changes nothing, counted.
    AutoReply,
    /// The message is still on its way (Action: delayed): changes nothing, counted.
    Delayed,
    /// Delivered, relayed or expanded: changes nothing, counted.
    Delivered,
    /// The report does not say enough to decide: changes nothing, counted.
    Unclassified,
}

impl BounceKind {
    pub const ALL: [BounceKind; 8] = [
        Self::Hard,
        Self::Soft,
        Self::Policy,
        Self::Complaint,
        Self::AutoReply,
        Self::Delayed,
        Self::Delivered,
        Self::Unclassified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BounceKind::Hard => "hard",
            BounceKind::Soft => "soft",
            BounceKind::Policy => "policy",
            BounceKind::Complaint => "complaint",
            BounceKind::AutoReply => "auto-reply",
            BounceKind::Delayed => "delayed",
            BounceKind::Delivered => "delivered",
            BounceKind::Unclassified => "unclassified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

impl fmt::Display for BounceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why some bytes are not a message at all. The messages never contain an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("the message is empty")]
    Empty,
    #[error("the input is not an email message: it does not start with header fields")]
    NoHeaders,
    #[error(
        "the input is not an email message: none of From, To, Subject, Date, Message-ID, Content-Type or \
         Received is among its header fields"
    )]
    NoMessageHeaders,
    /// Reading failed inside; kept as an error rather than a crash (tests assert it never happens).
    #[error("the message could not be read: its structure is broken beyond repair")]
    Unreadable,
}

// Debug never shows an address or a diagnostic text (which quotes addresses): only the shape.
impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("form", &self.form)
            .field("recipients", &self.recipients)
            .field("feedback_type", &self.feedback_type)
            .field("trace_refs", &self.trace_refs.len())
            .field("original_message_ids", &self.original_message_ids.len())
            .field("original_recipients", &self.original_recipients.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RecipientOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecipientOutcome")
            .field("recipient", &self.recipient.as_ref().map(|_| "[address]"))
            .field("action", &self.action)
            .field("status", &self.status)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Reads one raw message. `Err` only when the bytes are not a message at all; anything that is a message gives a
/// `Report`, `Unrecognised` when nothing in it is understood. Never panics: a panic inside (in mail-parser or
/// here) would be a bug, and becomes `ReportError::Unreadable` rather than taking the listener down.
pub fn read_report(raw: &[u8]) -> Result<Report, ReportError> {
    std::panic::catch_unwind(|| read(raw)).unwrap_or(Err(ReportError::Unreadable))
}

fn read(raw: &[u8]) -> Result<Report, ReportError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let message = MessageParser::new().parse(raw).ok_or(ReportError::NoHeaders)?;
    let root = message.parts.first().ok_or(ReportError::NoHeaders)?;
    if !root.headers.iter().any(|header| is_message_header(header.name())) {
        return Err(ReportError::NoMessageHeaders);
    }
    let subject = message.subject().unwrap_or_default().trim().to_owned();
    let mut original = original::collect(&message);
    let reading = match recognise::recognise(&message, &subject) {
        Recognised::Dsn { blocks } => dsn(&message, &blocks),
        Recognised::Feedback { fields } => feedback(&fields, &mut original),
        Recognised::AutoReply { signal } => auto_reply(&message, signal, &mut original),
        Recognised::PlainBounce { delayed } => Reading::new(ReportForm::PlainBounce, plain(&message, delayed)),
        Recognised::Unrecognised => Reading::new(ReportForm::Unrecognised, Vec::new()),
    };
    Ok(Report {
        form: reading.form,
        recipients: reading.recipients,
        feedback_type: reading.feedback_type,
        trace_refs: original.trace_refs,
        original_message_ids: original.message_ids,
        original_recipients: original.recipients,
        original_envelope_id: reading.envelope_id,
        subject,
    })
}

/// The header fields that any real message has at least one of.
fn is_message_header(name: &str) -> bool {
    ["From", "To", "Subject", "Date", "Message-ID", "Content-Type", "Received", "Return-Path", "MIME-Version"]
        .iter()
        .any(|known| name.eq_ignore_ascii_case(known))
}

/// What the recognised form says, before the embedded original is added.
struct Reading {
    form: ReportForm,
    recipients: Vec<RecipientOutcome>,
    feedback_type: Option<String>,
    envelope_id: Option<String>,
}

impl Reading {
    fn new(form: ReportForm, recipients: Vec<RecipientOutcome>) -> Self {
        Reading { form, recipients, feedback_type: None, envelope_id: None }
    }
}

/// An ARF report (or Microsoft's attached-original complaint): one outcome for the person who complained.
fn feedback(fields: &[fields::Field], original: &mut original::Original) -> Reading {
    let feedback_type = fields
        .iter()
        .find(|f| f.is("Feedback-Type"))
        .map(|f| f.value.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "abuse".to_owned());
    let named: Vec<String> = fields
        .iter()
        .filter(|f| f.is("Original-Rcpt-To") || f.is("Removal-Recipient"))
        .flat_map(|f| address::find(&f.value).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    for recipient in named.iter().rev() {
        original.recipients.retain(|r| r != recipient);
        original.recipients.insert(0, recipient.clone());
    }
    let recipient = named.first().cloned().or_else(|| original::complainant(original));
    let evidence = Evidence::new(ReportForm::Feedback).with_feedback(&feedback_type);
    let outcome = classified(recipient, None, None, None, &evidence, None);
    Reading { feedback_type: Some(feedback_type), ..Reading::new(ReportForm::Feedback, vec![outcome]) }
}

/// An auto-reply: one outcome for its sender; its In-Reply-To names our message (RFC 3834).
fn auto_reply(message: &Message<'_>, signal: String, original: &mut original::Original) -> Reading {
    let in_reply_to = message.in_reply_to();
    let ids =
        in_reply_to.as_text().into_iter().chain(in_reply_to.as_text_list().into_iter().flatten().map(|id| id.as_ref()));
    for id in ids {
        original::push_unique(&mut original.message_ids, original::bracketed(id));
    }
    let sender = message.from().and_then(|from| from.first()).and_then(|a| a.address()).map(str::to_owned);
    let outcome = classified(sender, None, None, None, &Evidence::new(ReportForm::AutoReply), Some(signal));
    Reading::new(ReportForm::AutoReply, vec![outcome])
}

/// The outcomes of a DSN's per-recipient blocks; a DSN without any falls back to reading its text.
fn dsn(message: &Message<'_>, blocks: &[Vec<fields::Field>]) -> Reading {
    let is_recipient = |block: &[fields::Field]| {
        block.iter().any(|f| f.is("Final-Recipient") || f.is("Original-Recipient") || f.is("Action"))
    };
    let envelope_id = blocks
        .iter()
        .flatten()
        .find(|f| f.is("Original-Envelope-Id"))
        .map(|f| f.value.trim().to_owned())
        .filter(|id| !id.is_empty());
    let outcomes: Vec<RecipientOutcome> = blocks
        .iter()
        .filter(|block| is_recipient(block))
        .map(|block| {
            let value = |name: &str| block.iter().find(|f| f.is(name)).map(|f| f.value.as_str());
            let recipient = value("Final-Recipient")
                .and_then(fields::typed_address)
                .or_else(|| value("Original-Recipient").and_then(fields::typed_address));
            let action = value("Action").and_then(DsnAction::parse);
            let diagnostic = value("Diagnostic-Code").map(|v| fields::typed(v).1.to_owned());
            let stated = value("Status");
            let found = status::settle(stated, diagnostic.as_deref().unwrap_or(""), action);
            let evidence = Evidence::new(ReportForm::Dsn).with_action(action).with_status(found.status.as_deref());
            let text = diagnostic.as_deref().unwrap_or("").to_lowercase();
            classified(recipient, action, found.status.clone(), diagnostic, &evidence.with_text(&text), found.note)
        })
        .collect();
    let reading = if outcomes.is_empty() {
        Reading::new(ReportForm::PlainBounce, plain(message, false))
    } else {
        Reading::new(ReportForm::Dsn, outcomes)
    };
    Reading { envelope_id, ..reading }
}

fn plain(message: &Message<'_>, delayed: bool) -> Vec<RecipientOutcome> {
    let text = recognise::body_text(message);
    let own: Vec<String> = message
        .from()
        .into_iter()
        .chain(message.to())
        .flat_map(|list| list.iter())
        .filter_map(|a| a.address().map(str::to_owned))
        .collect();
    let action = Some(if delayed { DsnAction::Delayed } else { DsnAction::Failed });
    plain::read(&text, &own)
        .into_iter()
        .map(|block| {
            let found = status::settle(None, &block.text, action);
            let lowered = block.context.to_lowercase();
            let evidence = Evidence::new(ReportForm::PlainBounce)
                .with_action(action)
                .with_status(found.status.as_deref())
                .with_text(&lowered);
            let diagnostic = Some(block.text).filter(|t| !t.is_empty());
            classified(block.recipient, action, found.status.clone(), diagnostic, &evidence, found.note)
        })
        .collect()
}

fn classified(
    recipient: Option<String>,
    action: Option<DsnAction>,
    status: Option<String>,
    diagnostic: Option<String>,
    evidence: &Evidence<'_>,
    note: Option<String>,
) -> RecipientOutcome {
    let (kind, rule) = classify::classify(evidence);
    let reason = match note {
        Some(note) => format!("{rule} ({note})"),
        None => rule.to_owned(),
    };
    RecipientOutcome { recipient, action, status, diagnostic: diagnostic.map(|d| cap(&d)), kind, reason }
}

/// Collapses whitespace and cuts the text to [`DIAGNOSTIC_MAX_CHARS`] characters.
fn cap(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(DIAGNOSTIC_MAX_CHARS * 4));
    for (count, word) in text.split_whitespace().enumerate() {
        if count > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= DIAGNOSTIC_MAX_CHARS {
            break;
        }
    }
    match out.char_indices().nth(DIAGNOSTIC_MAX_CHARS) {
        Some((end, _)) => out[..end].to_owned(),
        None => out,
    }
}

/// The decoded text of a part, if it is text, or its bytes read as UTF-8 (lossy) otherwise.
fn part_text<'a>(body: &'a PartType<'a>) -> Option<std::borrow::Cow<'a, str>> {
    match body {
        PartType::Text(text) | PartType::Html(text) => Some(std::borrow::Cow::Borrowed(text.as_ref())),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(String::from_utf8_lossy(bytes)),
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

/// The lowercased `type/subtype` of a part, `text/plain` when it has none.
fn content_type(part: &mail_parser::MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or_default().to_ascii_lowercase()),
        None => ("text".to_owned(), "plain".to_owned()),
    }
}
