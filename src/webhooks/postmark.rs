//! Postmark's bounce, spam-complaint and delivery webhooks, protected by HTTP basic auth (the credentials are
//! part of the webhook URL set in Postmark). The credentials are compared in constant time and never logged or
//! shown in `Debug`.
//!
//! Postmark's own bounce `Type` decides the kind (the table below); its `MessageID` is Postmark's, not ours, so
//! the message is found through the `Metadata` (a `tidings-ref` key) or the bounce dump in `Content` (sent when
//! "include bounce content" is on), which quotes the original's `X-Tidings-Ref` and `Message-ID`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use subtle::ConstantTimeEq;

use super::{Authenticated, Endpoint, Provider, ProviderEvent, Refusal, TRACE_KEYS, lookup, text_of};
use crate::configuration::{ConfigError, Settings};
use crate::domain::sha256_hex;
use crate::reports::{self, BounceKind, DsnAction};

/// Postmark's bounce `Type`s and the kind each is; any other type is `unclassified` (counted only).
const BOUNCE_TYPES: [(&str, BounceKind); 14] = [
    ("HardBounce", BounceKind::Hard),
    ("BadEmailAddress", BounceKind::Hard),
    ("SoftBounce", BounceKind::Soft),
    ("DnsError", BounceKind::Soft),
    ("Transient", BounceKind::Delayed),
    ("AutoResponder", BounceKind::AutoReply),
    ("ChallengeVerification", BounceKind::AutoReply),
    ("Blocked", BounceKind::Policy),
    ("DMARCPolicy", BounceKind::Policy),
    ("SpamNotification", BounceKind::Policy),
    ("VirusNotification", BounceKind::Policy),
    ("SpamComplaint", BounceKind::Complaint),
    ("Unsubscribe", BounceKind::Unclassified),
    ("ManuallyDeactivated", BounceKind::Unclassified),
];

/// The checked `[webhooks.postmark]` credentials.
pub(super) struct Postmark {
    username: String,
    password: SecretString,
}

impl Postmark {
    pub(super) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        Ok(settings.postmark_credentials()?.map(|(username, password)| Self { username, password }))
    }

    fn expected(&self) -> String {
        format!("{}:{}", self.username, self.password.expose_secret())
    }
}

/// The 401 every failed or missing login gets, with the challenge.
fn unauthorized(message: &str) -> Refusal {
    Refusal { status: 401, message: format!("{message}\n") }
}

impl Endpoint for Postmark {
    fn authenticate(&self, headers: &HeaderMap, _body: &[u8], _now: Timestamp) -> Result<Authenticated, Refusal> {
        let value = headers.get(AUTHORIZATION).ok_or_else(|| unauthorized("basic-auth credentials are required"))?;
        let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?.trim();
        let (scheme, encoded) =
            value.split_once(' ').ok_or_else(|| unauthorized("the Authorization header is not Basic"))?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(unauthorized("the Authorization header is not Basic"));
        }
        let given =
            STANDARD.decode(encoded.trim()).map_err(|_| unauthorized("the Basic credentials are not base64"))?;
        // Both sides hashed first: equal lengths, so the comparison's time says nothing about either.
        let given = sha256_hex(&[&given]);
        let expected = sha256_hex(&[self.expected().as_bytes()]);
        if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(Authenticated::default())
        } else {
            Err(unauthorized("wrong username or password"))
        }
    }

    fn events(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::malformed(format!("the body is not a Postmark webhook's JSON object: {e}\n")))?;
        if !value.is_object() {
            return Err(Refusal::malformed("the body is not a JSON object\n"));
        }
        Ok(event(&value)?.into_iter().collect())
    }
}

/// The event of one record; `None` for records that concern nothing here (opens, clicks, subscription changes).
fn event(record: &Value) -> Result<Option<ProviderEvent>, Refusal> {
    let record_type = record.get("RecordType").and_then(Value::as_str).unwrap_or_else(|| {
        // The bounce webhook's older form has no RecordType; a TypeCode says it is a bounce.
        if record.get("TypeCode").is_some() { "Bounce" } else { "" }
    });
    let kind = match record_type {
        "Bounce" => {
            let bounce_type = record.get("Type").and_then(Value::as_str).unwrap_or_default();
            BOUNCE_TYPES.iter().find(|(t, _)| *t == bounce_type).map_or(BounceKind::Unclassified, |(_, k)| *k)
        }
        "SpamComplaint" => BounceKind::Complaint,
        "Delivery" => BounceKind::Delivered,
        _ => return Ok(None),
    };
    let event_id = match kind {
        BounceKind::Delivered => {
            let message = text_of(record.get("MessageID"));
            let recipient = text_of(record.get("Recipient"));
            match (message, recipient) {
                (Some(message), Some(recipient)) => format!("delivery:{message}:{recipient}"),
                _ => return Err(Refusal::malformed("a Delivery record without MessageID and Recipient\n")),
            }
        }
        _ => text_of(record.get("ID"))
            .ok_or_else(|| Refusal::malformed(format!("a {record_type} record without an ID\n")))?,
    };
    let details = text_of(record.get("Details")).unwrap_or_default();
    let description = text_of(record.get("Description")).unwrap_or_default();
    let dump = record.get("Content").and_then(Value::as_str).and_then(|c| reports::read_report(c.as_bytes()).ok());
    let trace = lookup(record.get("Metadata"), &TRACE_KEYS)
        .map(str::to_owned)
        .or_else(|| dump.as_ref().and_then(|d| d.trace_refs.first().cloned()));
    let message_id = dump.as_ref().and_then(|d| d.original_message_ids.first().cloned());
    let status = match kind {
        BounceKind::Hard | BounceKind::Soft | BounceKind::Policy => {
            reports::classify_relay_failure(None, &details, DsnAction::Failed).status.unwrap_or_default()
        }
        _ => String::new(),
    };
    let reason = [record_type, &description, &details].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>();
    Ok(Some(ProviderEvent {
        provider: Provider::Postmark,
        event_id,
        kind,
        trace,
        message_id,
        status_code: status,
        reason: format!("Postmark: {}", reason.join(": ")),
        raw: record.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postmark() -> Postmark {
        Postmark { username: "hooks".into(), password: SecretString::from("s3cret-pass".to_owned()) }
    }

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn only_the_configured_credentials_pass() {
        let now = Timestamp::UNIX_EPOCH;
        let good = format!("Basic {}", STANDARD.encode("hooks:s3cret-pass"));
        assert!(postmark().authenticate(&with_auth(&good), b"", now).is_ok());
        for bad in [
            format!("Basic {}", STANDARD.encode("hooks:wrong")),
            format!("Basic {}", STANDARD.encode("hooks:s3cret-pass ")),
            format!("Bearer {}", STANDARD.encode("hooks:s3cret-pass")),
            "Basic !!!".to_owned(),
        ] {
            assert_eq!(postmark().authenticate(&with_auth(&bad), b"", now).unwrap_err().status, 401, "{bad}");
        }
        assert_eq!(postmark().authenticate(&HeaderMap::new(), b"", now).unwrap_err().status, 401);
    }

    #[test]
    fn bounce_types_map_to_kinds_and_other_records_are_left_out() {
        use super::event as read;
        let bounce = serde_json::json!({"RecordType": "Bounce", "ID": 42, "Type": "HardBounce", "Details": "smtp;550 5.1.1 unknown"});
        let event = read(&bounce).unwrap().unwrap();
        assert_eq!(
            (event.kind, event.event_id.as_str(), event.status_code.as_str()),
            (BounceKind::Hard, "42", "5.1.1")
        );
        let blocked = serde_json::json!({"RecordType": "Bounce", "ID": 43, "Type": "DMARCPolicy"});
        assert_eq!(read(&blocked).unwrap().unwrap().kind, BounceKind::Policy);
        let spam = serde_json::json!({"RecordType": "SpamComplaint", "ID": 44, "Metadata": {"tidings-ref": "abc"}});
        let spam = read(&spam).unwrap().unwrap();
        assert_eq!((spam.kind, spam.trace.as_deref()), (BounceKind::Complaint, Some("abc")));
        assert_eq!(read(&serde_json::json!({"RecordType": "Open", "ID": 1})).unwrap(), None);
        assert_eq!(read(&serde_json::json!({"RecordType": "Bounce"})).unwrap_err().status, 400);
        for (bounce_type, kind) in BOUNCE_TYPES {
            let record = serde_json::json!({"RecordType": "Bounce", "ID": 7, "Type": bounce_type});
            assert_eq!(read(&record).unwrap().unwrap().kind, kind, "{bounce_type}");
        }
        let unknown = serde_json::json!({"RecordType": "Bounce", "ID": 8, "Type": "SomethingNew"});
        assert_eq!(read(&unknown).unwrap().unwrap().kind, BounceKind::Unclassified);
        let delivery = serde_json::json!({"RecordType": "Delivery", "MessageID": "m", "Recipient": "r@example.com"});
        assert_eq!(read(&delivery).unwrap().unwrap().kind, BounceKind::Delivered);
    }
}
