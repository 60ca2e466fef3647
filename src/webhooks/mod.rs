//! Hosted relays' signed event webhooks (Postmark, SendGrid, Mailgun): bounces, complaints and deliveries fed
//! to the same pipeline as DSNs and ARF reports (`bounces::Pipeline::apply`), so suppression, guardrails and
//! figures are shared.
//!
//! Each provider file checks its provider's authentication before anything reads the body's events
//! ([`Endpoint::authenticate`]), then turns the body into [`ProviderEvent`]s ([`Endpoint::events`]), each with a
//! kind of the same table as DSNs (`reports::BounceKind`). [`ProviderEvent::to_report`] is the one conversion
//! to a stored report: its fingerprint is the SHA-256 of the provider and its event id, so an event the provider
//! sends again is a duplicate that changes nothing. Matching uses the signed trace value when the provider echoes
//! it, then the Message-ID Tidings put on the message; never an address. [`Webhooks::receive`] runs one request
//! and says what to answer; `http/webhooks.rs` routes the paths in [`PROVIDERS`] to it.
//!
//! Nothing here logs an address, a token or a credential.
//!
//! Amazon SES reports through SNS, whose signature check may fetch a certificate: it is not an [`Endpoint`] but
//! `ses::receive` (`sns/` verifies, `ses/` reads), called by [`Webhooks::receive`] and turned into the same
//! [`ProviderEvent`]s.
//!
//! Files: `mod.rs` (the event, the table of providers, the mappings), `receive.rs` (the request flow),
//! `postmark.rs`, `sendgrid.rs`, `mailgun.rs`, `ses/` and `sns/`.

mod mailgun;
mod postmark;
mod receive;
mod sendgrid;
pub mod ses;
pub mod sns;

pub use receive::{Reply, Webhooks, check_settings};

use std::fmt;

use axum::http::HeaderMap;
use jiff::Timestamp;

use crate::bounces::{Pipeline, effect_of};
use crate::domain::{read_trace, sha256_hex};
use crate::reports::BounceKind;
use crate::store::{NewReport, ReportTarget};

/// A relay whose webhook Tidings takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postmark,
    Sendgrid,
    Mailgun,
    Ses,
}

/// Every provider: its name (stored as the report's form, and in logs) and the path its webhook posts to. The
/// one table of providers; `Webhooks::from_settings` builds the endpoint of each configured one.
pub const PROVIDERS: [(Provider, &str, &str); 4] = [
    (Provider::Postmark, "postmark", "/webhooks/postmark"),
    (Provider::Sendgrid, "sendgrid", "/webhooks/sendgrid"),
    (Provider::Mailgun, "mailgun", "/webhooks/mailgun"),
    (Provider::Ses, "ses", "/webhooks/ses"),
];

/// The common prefix of every webhook path (exempt from the per-address rate limit; its own body limit).
pub const WEBHOOK_PREFIX: &str = "/webhooks/";

impl Provider {
    pub fn name(self) -> &'static str {
        PROVIDERS.iter().find(|(p, _, _)| *p == self).map_or("webhook", |(_, name, _)| name)
    }

    pub fn path(self) -> &'static str {
        PROVIDERS.iter().find(|(p, _, _)| *p == self).map_or(WEBHOOK_PREFIX, |(_, _, path)| path)
    }
}

/// One event a provider reported, in the provider-neutral form every provider file produces. `Debug` shows no
/// address (`raw` and `reason` may hold some; they are scrubbed when stored).
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    pub provider: Provider,
    /// The provider's own id of the event; with the provider, the report's fingerprint.
    pub event_id: String,
    pub kind: BounceKind,
    /// The `X-Tidings-Ref` value, when the provider echoes it (metadata, custom args, a bounce dump).
    pub trace: Option<String>,
    /// The Message-ID Tidings put on the message, when the provider reports it.
    pub message_id: Option<String>,
    /// The enhanced status (`5.1.1`) when known.
    pub status_code: String,
    /// Why it is of this kind, in words (the provider's text); addresses are removed when it is stored.
    pub reason: String,
    /// The event as the provider sent it (one JSON object).
    pub raw: String,
}

impl fmt::Debug for ProviderEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderEvent")
            .field("provider", &self.provider)
            .field("kind", &self.kind)
            .field("status_code", &self.status_code)
            .finish_non_exhaustive()
    }
}

impl ProviderEvent {
    /// The report to store and apply: matched by the signed trace value first, then by the Message-ID.
    pub fn to_report(&self, pipeline: &Pipeline) -> NewReport {
        let signed = self.trace.as_deref().and_then(|trace| read_trace(pipeline.keys(), trace).ok());
        let target = match (signed, &self.message_id) {
            (Some(what), _) => ReportTarget::Signed { what, matched_by: "trace-header" },
            (None, Some(id)) => ReportTarget::MessageIds(vec![bracketed(id)]),
            (None, None) => ReportTarget::Unmatched,
        };
        let name = self.provider.name();
        let raw = self.raw.as_bytes();
        let kept = String::from_utf8_lossy(&raw[..raw.len().min(pipeline.keep_raw_bytes())]);
        NewReport {
            source: "webhook".to_owned(),
            fingerprint: sha256_hex(&[b"webhook\0", name.as_bytes(), b"\0", self.event_id.as_bytes()]),
            form: name.to_owned(),
            kind: self.kind.as_str().to_owned(),
            effect: effect_of(self.kind),
            target,
            status_code: self.status_code.clone(),
            reason: pipeline.scrub(&self.reason),
            subject: String::new(),
            raw: pipeline.scrub(&kept),
            raw_bytes: raw.len() as i64,
        }
    }
}

/// `<id>` for a Message-ID given with or without its angle brackets.
fn bracketed(id: &str) -> String {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    format!("<{id}>")
}

/// How a provider's event maps to a kind: one row of a provider's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapping {
    /// Always this kind.
    Kind(BounceKind),
    /// A failed recipient: its status and text go through the DSN table (`reports::classify_relay_failure`);
    /// `unknown` is the kind when that table knows nothing.
    Failure { unknown: BounceKind },
}

impl Mapping {
    /// The row of `table` for `specific` (e.g. `bounce:blocked`), else for `name`; `None`: not our concern.
    pub fn find(table: &[(&str, Mapping)], specific: &str, name: &str) -> Option<Mapping> {
        let row = |key: &str| table.iter().find(|(k, _)| *k == key).map(|(_, mapping)| *mapping);
        row(specific).or_else(|| row(name))
    }

    /// The kind and the settled enhanced status (empty when none) of an event with `stated` status and `text`.
    pub fn kind(self, stated: Option<&str>, text: &str) -> (BounceKind, String) {
        match self {
            Mapping::Kind(kind) => (kind, String::new()),
            Mapping::Failure { unknown } => {
                let verdict = crate::reports::classify_relay_failure(stated, text, crate::reports::DsnAction::Failed);
                let kind = if verdict.kind == BounceKind::Unclassified { unknown } else { verdict.kind };
                (kind, verdict.status.unwrap_or_default())
            }
        }
    }
}

/// Why a request is refused, and with which status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    /// Authentication failed: 403 (Postmark's basic auth answers 401 itself).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self { status: 403, message: message.into() }
    }

    /// The body is not what the provider sends: 400 with what was wrong.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self { status: 400, message: message.into() }
    }
}

/// What an authenticated request may still be refused for: a replayed token (Mailgun).
#[derive(Debug, Default)]
pub struct Authenticated {
    /// The SHA-256 of the request's one-time token and until when it must not be seen again.
    pub replay_token: Option<(String, Timestamp)>,
}

/// One provider's webhook: its authentication and its events.
pub trait Endpoint: Send + Sync {
    /// Checks the request's authentication; nothing reads the events before it passed.
    fn authenticate(&self, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<Authenticated, Refusal>;
    /// The events of an authenticated body that concern Tidings (opens, clicks and the like are left out).
    fn events(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal>;
}

/// Refuses a signed timestamp (seconds since the epoch) further than `tolerance` from `now`, either way.
pub(crate) fn check_fresh(
    timestamp: &str,
    now: Timestamp,
    tolerance: jiff::SignedDuration,
) -> Result<Timestamp, Refusal> {
    let seconds: i64 =
        timestamp.trim().parse().map_err(|_| Refusal::forbidden("the signed timestamp is not a number\n"))?;
    let at =
        Timestamp::from_second(seconds).map_err(|_| Refusal::forbidden("the signed timestamp is out of range\n"))?;
    if now.duration_since(at).abs() > tolerance {
        return Err(Refusal::forbidden(
            "the signed timestamp is stale (or in the future): a replay or a wrong clock\n",
        ));
    }
    Ok(at)
}

/// The first of `keys` (compared without case, `-` and `_` alike) in a JSON object of string values.
pub(crate) fn lookup<'a>(object: Option<&'a serde_json::Value>, keys: &[&str]) -> Option<&'a str> {
    let object = object?.as_object()?;
    let same = |a: &str, b: &str| a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y));
    keys.iter().find_map(|key| object.iter().find(|(name, _)| same(name, key)).and_then(|(_, v)| v.as_str()))
}

fn fold(byte: u8) -> u8 {
    if byte == b'_' { b'-' } else { byte.to_ascii_lowercase() }
}

/// The names under which a provider may echo the trace value (a metadata key, a custom argument, a variable).
pub(crate) const TRACE_KEYS: [&str; 2] = ["tidings-ref", "x-tidings-ref"];

/// A JSON value's text: a string as it is, a number written out; `None` for anything else or empty.
pub(crate) fn text_of(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_has_one_row_with_a_path_under_the_prefix() {
        for (provider, name, path) in PROVIDERS {
            assert_eq!(provider.name(), name);
            assert_eq!(path, format!("{WEBHOOK_PREFIX}{name}"));
        }
    }

    #[test]
    fn trace_keys_match_whatever_the_case_or_separator() {
        let value = serde_json::json!({"X_Tidings_Ref": "abc", "other": 1});
        assert_eq!(lookup(Some(&value), &TRACE_KEYS), Some("abc"));
        assert_eq!(lookup(Some(&serde_json::json!({"tidings_ref": "d"})), &TRACE_KEYS), Some("d"));
        assert_eq!(lookup(Some(&serde_json::json!({"ref": "d"})), &TRACE_KEYS), None);
        assert_eq!(bracketed("a@b"), "<a@b>");
        assert_eq!(bracketed(" <a@b> "), "<a@b>");
    }
}
