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
mod read;
mod recognise;
mod relay;
mod status;

use std::fmt;

pub use address::scrub_addresses;
pub use read::read_report;
pub use relay::{RelayVerdict, classify_relay_failure};

use read::{content_type, part_text};

/// How long a diagnostic text may be, in characters; longer ones are cut.
pub const DIAGNOSTIC_MAX_CHARS: usize = 500;
/// Most recipient outcomes read from one report; a report naming more is junk, and the rest are ignored.
pub const MAX_RECIPIENTS: usize = 1000;

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
