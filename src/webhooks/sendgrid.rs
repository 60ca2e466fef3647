//! SendGrid's Event Webhook with signed requests: an ECDSA P-256 signature (base64 DER, header
//! `X-Twilio-Email-Event-Webhook-Signature`) over the timestamp header (`X-Twilio-Email-Event-Webhook-Timestamp`)
//! followed by the raw body, verified with the public key SendGrid shows (base64 DER SubjectPublicKeyInfo).
//! A timestamp further than `tolerance` from now is stale and refused. The `p256` crate (RustCrypto) verifies.
//!
//! The body is a JSON array of events; `bounce`, `deferred`, `delivered`, `dropped` and `spamreport` concern us.
//! A bounce's status and reason go through the same table as a DSN's. `smtp-id` is the Message-ID of a message
//! sent over SMTP; a custom argument `tidings_ref` (set through `X-SMTPAPI`) is the trace value.

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jiff::{SignedDuration, Timestamp};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::Value;

use super::{Authenticated, Endpoint, Mapping, Provider, ProviderEvent, Refusal, TRACE_KEYS, lookup, text_of};
use crate::configuration::{ConfigError, Settings};
use crate::reports::BounceKind;

pub(crate) const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub(crate) const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

/// SendGrid's events that concern us, and their kinds (`event:type` rows first); the others are left out.
/// A bounce goes through the DSN table; when that knows nothing, a `blocked` bounce (temporary, in SendGrid's
/// words) is soft and any other hard. `dropped` (SendGrid's own suppression list) is recorded only.
const EVENTS: [(&str, Mapping); 6] = [
    ("bounce:blocked", Mapping::Failure { unknown: BounceKind::Soft }),
    ("bounce", Mapping::Failure { unknown: BounceKind::Hard }),
    ("deferred", Mapping::Kind(BounceKind::Delayed)),
    ("delivered", Mapping::Kind(BounceKind::Delivered)),
    ("dropped", Mapping::Kind(BounceKind::Unclassified)),
    ("spamreport", Mapping::Kind(BounceKind::Complaint)),
];

/// The checked `[webhooks.sendgrid]` settings.
pub(super) struct Sendgrid {
    key: VerifyingKey,
    tolerance: SignedDuration,
}

impl Sendgrid {
    pub(super) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let sendgrid = &settings.webhooks.sendgrid;
        let encoded: String = sendgrid.public_key.split_whitespace().collect();
        if encoded.is_empty() {
            return Ok(None);
        }
        let der = STANDARD.decode(&encoded).map_err(|_| {
            ConfigError::new("webhooks.sendgrid.public_key: not base64; paste the verification key SendGrid shows")
        })?;
        let key = VerifyingKey::from_public_key_der(&der).map_err(|_| {
            ConfigError::new("webhooks.sendgrid.public_key: not a P-256 public key (base64 DER SubjectPublicKeyInfo)")
        })?;
        if sendgrid.tolerance.is_negative() || sendgrid.tolerance.is_zero() {
            return Err(ConfigError::new("webhooks.sendgrid.tolerance: must be more than 0"));
        }
        Ok(Some(Self { key, tolerance: sendgrid.tolerance }))
    }
}

impl Endpoint for Sendgrid {
    fn authenticate(&self, headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<Authenticated, Refusal> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let (Some(signature), Some(timestamp)) = (header(SIGNATURE_HEADER), header(TIMESTAMP_HEADER)) else {
            return Err(Refusal::forbidden("the signature and timestamp headers are required\n"));
        };
        let der = STANDARD.decode(signature).map_err(|_| Refusal::forbidden("the signature is not base64\n"))?;
        let signature = Signature::from_der(&der).map_err(|_| Refusal::forbidden("the signature is not DER\n"))?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.key.verify(&signed, &signature).map_err(|_| Refusal::forbidden("the signature does not verify\n"))?;
        super::check_fresh(timestamp, now, self.tolerance)?;
        Ok(Authenticated::default())
    }

    fn events(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::malformed(format!("the body is not SendGrid's JSON array of events: {e}\n")))?;
        let Value::Array(events) = value else {
            return Err(Refusal::malformed("the body is not a JSON array of events\n"));
        };
        events
            .iter()
            .enumerate()
            .filter_map(|(i, e)| event(e).map_err(|m| Refusal::malformed(format!("event {i}: {m}\n"))).transpose())
            .collect()
    }
}

/// The event, `None` for events that concern nothing here (processed, open, click, unsubscribe, ...).
fn event(record: &Value) -> Result<Option<ProviderEvent>, String> {
    if !record.is_object() {
        return Err("not a JSON object".to_owned());
    }
    let name = record.get("event").and_then(Value::as_str).unwrap_or_default();
    let status = text_of(record.get("status"));
    let reason = text_of(record.get("reason")).or_else(|| text_of(record.get("response"))).unwrap_or_default();
    let specific = format!("{name}:{}", record.get("type").and_then(Value::as_str).unwrap_or_default());
    let Some(mapping) = Mapping::find(&EVENTS, &specific, name) else { return Ok(None) };
    let (kind, status_code) = mapping.kind(status.as_deref(), &reason);
    let event_id = text_of(record.get("sg_event_id")).ok_or_else(|| format!("a {name} event without sg_event_id"))?;
    let detail = if reason.is_empty() { name.to_owned() } else { format!("{name}: {reason}") };
    Ok(Some(ProviderEvent {
        provider: Provider::Sendgrid,
        event_id,
        kind,
        trace: lookup(Some(record), &TRACE_KEYS).map(str::to_owned),
        message_id: text_of(record.get("smtp-id")),
        status_code,
        reason: format!("SendGrid: {detail}"),
        raw: record.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(key: &str) -> Result<Option<Sendgrid>, ConfigError> {
        let vars =
            std::collections::HashMap::from([("TIDINGS_WEBHOOKS__SENDGRID__PUBLIC_KEY".to_owned(), key.to_owned())]);
        Sendgrid::from_settings(&crate::configuration::load_layers(None, &vars).expect("settings"))
    }

    #[test]
    fn a_public_key_that_is_not_a_p256_key_is_refused_naming_the_setting() {
        for bad in ["not base64!", "AAAA"] {
            let error = settings(bad).err().expect("refused").to_string();
            assert!(error.contains("webhooks.sendgrid.public_key"), "{error}");
        }
        assert!(settings("").unwrap().is_none());
        // SendGrid's documented example key.
        let example = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
        assert!(settings(example).unwrap().is_some());
    }

    #[test]
    fn sendgrid_events_map_to_the_kinds_of_a_dsn() {
        let kind = |v: Value| event(&v).unwrap().map(|e| e.kind);
        let bounce = |status: &str, reason: &str| serde_json::json!({"event": "bounce", "sg_event_id": "e1", "status": status, "reason": reason, "type": "bounce"});
        assert_eq!(kind(bounce("5.1.1", "550 5.1.1 user unknown")), Some(BounceKind::Hard));
        assert_eq!(kind(bounce("5.7.1", "554 5.7.1 blocked as spam")), Some(BounceKind::Policy));
        assert_eq!(kind(serde_json::json!({"event": "spamreport", "sg_event_id": "e2"})), Some(BounceKind::Complaint));
        assert_eq!(kind(serde_json::json!({"event": "delivered", "sg_event_id": "e3"})), Some(BounceKind::Delivered));
        assert_eq!(kind(serde_json::json!({"event": "open", "sg_event_id": "e4"})), None);
        assert!(event(&serde_json::json!({"event": "bounce"})).is_err());
        let blocked =
            serde_json::json!({"event": "bounce", "sg_event_id": "e5", "type": "blocked", "reason": "try later"});
        assert_eq!(kind(blocked), Some(BounceKind::Soft));
        assert_eq!(
            kind(serde_json::json!({"event": "bounce", "sg_event_id": "e6", "type": "bounce"})),
            Some(BounceKind::Hard)
        );
        assert_eq!(kind(serde_json::json!({"event": "deferred", "sg_event_id": "e7"})), Some(BounceKind::Delayed));
        assert_eq!(kind(serde_json::json!({"event": "dropped", "sg_event_id": "e8"})), Some(BounceKind::Unclassified));
    }
}
