//! Amazon SES notifications (the `Message` of a verified SNS notification) read into one provider-neutral
//! [`SesEvent`]: which event it is, its kind per recipient (the table in `classify.rs`), and what says which of
//! our messages it is about: the `X-Tidings-Ref` trace header and the Message-ID, when SES echoes the
//! original's headers.
//!
//! Both SES forms are read: notifications (`notificationType`) and event publishing (`eventType`), for
//! Bounce, Complaint, Delivery, DeliveryDelay and Reject; other types (Send, Open, Click, ...) give `None`.
//! Pure but for `receive.rs` (verification through `sns`, then this): no I/O, no clock, nothing logged. `Debug` shows no address and no diagnostic text.

mod classify;
mod receive;
mod wire;

use std::fmt;

use crate::reports::{BounceKind, DIAGNOSTIC_MAX_CHARS, MAX_RECIPIENTS, scrub_addresses};
pub use receive::{SesReceipt, SesRefusal, receive, status_of};

use classify::{Evidence, classify};
use wire::{Header, Notification};

/// Longest trace or Message-ID value taken from the echoed headers, in characters.
const MAX_HEADER_VALUE_CHARS: usize = 512;

/// Why an SES notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SesError {
    #[error("the SES notification is not valid JSON of the documented form: {0}")]
    Malformed(String),
    #[error("the SES notification has neither notificationType nor eventType")]
    NoType,
    #[error("the SES {0} notification has no `{1}` object")]
    MissingPart(&'static str, &'static str),
}

/// One SES event, as Tidings applies it.
#[derive(Clone, PartialEq, Eq)]
pub struct SesEvent {
    /// What makes a retried event a duplicate: the bounce's or complaint's `feedbackId`, else the SNS MessageId.
    pub event_id: String,
    /// The SES event type: `Bounce`, `Complaint`, `Delivery`, `DeliveryDelay` or `Reject`.
    pub event_type: String,
    /// The kind of the event: its first recipient's, or the event type's when it names none.
    pub kind: BounceKind,
    /// Why, in words (the table row's reason, with SES's type and subtype).
    pub reason: String,
    /// The first recipient's enhanced status code, if SES gave one.
    pub status_code: String,
    /// The complaint's feedback type, lowercased (`abuse`, `not-spam`, ...).
    pub feedback_type: Option<String>,
    /// The `X-Tidings-Ref` value of the original, when SES includes the original's headers.
    pub trace: Option<String>,
    /// Message-ID values of the original (the header, and `commonHeaders.messageId`), with angle brackets.
    pub message_ids: Vec<String>,
    /// SES's own id of the sent message (`mail.messageId`).
    pub ses_message_id: String,
    pub recipients: Vec<SesRecipient>,
    /// The verified notification as SES wrote it (SNS's `Message`), kept with the stored report.
    pub raw: String,
}

/// One recipient of the event.
#[derive(Clone, PartialEq, Eq)]
pub struct SesRecipient {
    /// As SES gives it; not checked here.
    pub address: String,
    pub kind: BounceKind,
    /// Enhanced status code (`5.1.1`), may be empty.
    pub status: String,
    /// The receiving server's words, addresses scrubbed, at most `DIAGNOSTIC_MAX_CHARS` characters.
    pub diagnostic: String,
}

/// Reads one SES notification. `sns_message_id` is the id of the SNS message that carried it (the event id of
/// events that have no feedback id). `Ok(None)`: a type Tidings does not act on.
pub fn read_notification(sns_message_id: &str, message: &str) -> Result<Option<SesEvent>, SesError> {
    let mut deserializer = serde_json::Deserializer::from_str(message);
    let n: Notification = serde_path_to_error::deserialize(&mut deserializer)
        .map_err(|e| SesError::Malformed(format!("{}: {}", e.path(), e.inner())))?;
    let event = n.event_type.as_deref().or(n.notification_type.as_deref()).ok_or(SesError::NoType)?.to_owned();
    let Some((event_kind, event_reason)) = classify(Evidence { event: &event, class: "", subtype: "", status: "" })
    else {
        return Ok(None);
    };
    let parts = n.parts(&event)?;
    let recipients: Vec<SesRecipient> = parts
        .recipients
        .iter()
        .take(MAX_RECIPIENTS)
        .map(|r| {
            let status = r.status.as_deref().unwrap_or_default().trim().to_owned();
            let evidence = Evidence { event: &event, class: &parts.class, subtype: &parts.subtype, status: &status };
            let (kind, _) = classify(evidence).unwrap_or((event_kind, event_reason));
            let diagnostic = r.diagnostic.as_deref().unwrap_or_default();
            let diagnostic: String =
                scrub_addresses(diagnostic, |_| false).chars().take(DIAGNOSTIC_MAX_CHARS).collect();
            SesRecipient { address: r.address.clone(), kind, status, diagnostic }
        })
        .collect();
    let first_status = recipients.first().map(|r| r.status.clone()).unwrap_or_default();
    let evidence = Evidence { event: &event, class: &parts.class, subtype: &parts.subtype, status: &first_status };
    let (kind, reason) = classify(evidence).unwrap_or((event_kind, event_reason));
    let detail = [parts.class.as_str(), parts.subtype.as_str()].into_iter().filter(|s| !s.is_empty());
    let detail = detail.collect::<Vec<_>>().join("/");
    let reason = if detail.is_empty() { reason.to_owned() } else { format!("{reason} ({detail})") };
    let headers = n.mail.as_ref().map_or(&[][..], |m| m.headers.as_slice());
    Ok(Some(SesEvent {
        event_id: parts.feedback_id.unwrap_or_else(|| sns_message_id.to_owned()),
        event_type: event,
        kind,
        reason,
        status_code: first_status,
        feedback_type: parts.feedback_type,
        trace: header(headers, "X-Tidings-Ref").map(str::to_owned),
        message_ids: message_ids(headers, n.mail.as_ref().and_then(|m| m.common_headers.message_id.as_deref())),
        ses_message_id: n.mail.map(|m| m.message_id).unwrap_or_default(),
        recipients,
        raw: message.to_owned(),
    }))
}

/// The first value of header `name` (any case), trimmed, when it is not empty and not too long.
fn header<'a>(headers: &'a [Header], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .filter(|h| h.name.trim().eq_ignore_ascii_case(name))
        .map(|h| h.value.trim())
        .find(|v| !v.is_empty() && v.chars().count() <= MAX_HEADER_VALUE_CHARS)
}

/// The original's Message-ID values, each in angle brackets, without repeats.
fn message_ids(headers: &[Header], common: Option<&str>) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for value in [header(headers, "Message-ID"), common].into_iter().flatten() {
        let value = value.trim();
        if value.is_empty() || value.chars().count() > MAX_HEADER_VALUE_CHARS {
            continue;
        }
        let id = if value.starts_with('<') { value.to_owned() } else { format!("<{value}>") };
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

impl fmt::Debug for SesEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SesEvent")
            .field("event_id", &self.event_id)
            .field("event_type", &self.event_type)
            .field("kind", &self.kind)
            .field("status_code", &self.status_code)
            .field("recipients", &self.recipients.len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for SesRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SesRecipient").field("kind", &self.kind).field("status", &self.status).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
