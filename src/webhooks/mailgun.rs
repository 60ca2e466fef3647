//! Mailgun's webhooks: the JSON body carries `signature` (`timestamp`, `token`, `signature`), an HMAC-SHA256
//! with the webhook signing key over the timestamp followed by the token, in hex. Only that object is read before
//! the signature is checked. The signature does not cover the body, so replays are refused twice over: a
//! timestamp further than `tolerance` from now is stale, and a token seen before (remembered, hashed, in the
//! database for `tolerance`) is a replay.
//!
//! `event-data` holds one event: `failed` (a `permanent` failure's status and text go through the same table
//! as a DSN's; a `temporary` one is delayed), `delivered` and `complained`. `message.headers.message-id` is our
//! Message-ID; a `tidings_ref` user variable (set through `X-Mailgun-Variables`) is the trace value.

use axum::http::HeaderMap;
use data_encoding::HEXLOWER_PERMISSIVE;
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;

use super::{Authenticated, Endpoint, Mapping, Provider, ProviderEvent, Refusal, TRACE_KEYS, lookup, text_of};
use crate::configuration::{ConfigError, Settings};
use crate::domain::sha256_hex;
use crate::reports::BounceKind;

/// Mailgun's events that concern us, and their kinds (`event:severity` rows first); the others are left out. A
/// temporary failure is delayed (Mailgun retries); a permanent one goes through the DSN table, and when that knows
/// nothing (e.g. Mailgun's own `suppress-bounce`) it is hard.
const EVENTS: [(&str, Mapping); 4] = [
    ("failed:temporary", Mapping::Kind(BounceKind::Delayed)),
    ("failed", Mapping::Failure { unknown: BounceKind::Hard }),
    ("delivered", Mapping::Kind(BounceKind::Delivered)),
    ("complained", Mapping::Kind(BounceKind::Complaint)),
];

/// The checked `[webhooks.mailgun]` settings.
pub(super) struct Mailgun {
    signing_key: SecretString,
    tolerance: SignedDuration,
}

impl Mailgun {
    pub(super) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(signing_key) = settings.mailgun_signing_key()? else { return Ok(None) };
        let tolerance = settings.webhooks.mailgun.tolerance;
        if tolerance.is_negative() || tolerance.is_zero() {
            return Err(ConfigError::new("webhooks.mailgun.tolerance: must be more than 0"));
        }
        Ok(Some(Self { signing_key, tolerance }))
    }
}

impl Endpoint for Mailgun {
    fn authenticate(&self, _headers: &HeaderMap, body: &[u8], now: Timestamp) -> Result<Authenticated, Refusal> {
        #[derive(serde::Deserialize)]
        struct Signed {
            signature: Signature,
        }
        #[derive(serde::Deserialize)]
        struct Signature {
            timestamp: Value,
            token: String,
            signature: String,
        }
        let signed: Signed = serde_json::from_slice(body).map_err(|e| {
            Refusal::malformed(format!("the body is not Mailgun's JSON with a `signature` object: {e}\n"))
        })?;
        let Signature { timestamp, token, signature } = signed.signature;
        let timestamp = text_of(Some(&timestamp)).ok_or_else(|| Refusal::forbidden("no signed timestamp\n"))?;
        let given = HEXLOWER_PERMISSIVE
            .decode(signature.trim().as_bytes())
            .map_err(|_| Refusal::forbidden("the signature is not hexadecimal\n"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_key.expose_secret().as_bytes())
            .map_err(|_| Refusal::forbidden("the signing key is not usable\n"))?;
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        mac.verify_slice(&given).map_err(|_| Refusal::forbidden("the signature does not verify\n"))?;
        let at = super::check_fresh(&timestamp, now, self.tolerance)?;
        let expires = at.checked_add(self.tolerance).unwrap_or(at);
        Ok(Authenticated { replay_token: Some((sha256_hex(&[token.as_bytes()]), expires)) })
    }

    fn events(&self, body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| Refusal::malformed(format!("the body is not Mailgun's JSON: {e}\n")))?;
        let data = value.get("event-data").ok_or_else(|| Refusal::malformed("no `event-data` object\n"))?;
        Ok(event(data).map_err(|m| Refusal::malformed(format!("{m}\n")))?.into_iter().collect())
    }
}

/// The event, `None` for events that concern nothing here (accepted, opened, clicked, unsubscribed, ...).
fn event(data: &Value) -> Result<Option<ProviderEvent>, String> {
    if !data.is_object() {
        return Err("`event-data` is not a JSON object".to_owned());
    }
    let name = data.get("event").and_then(Value::as_str).unwrap_or_default();
    let status = data.get("delivery-status");
    let text = [status.and_then(|s| s.get("message")), status.and_then(|s| s.get("description"))]
        .into_iter()
        .filter_map(text_of)
        .collect::<Vec<_>>()
        .join(" ");
    let specific = format!("{name}:{}", data.get("severity").and_then(Value::as_str).unwrap_or_default());
    let Some(mapping) = Mapping::find(&EVENTS, &specific, name) else { return Ok(None) };
    let stated = status.and_then(|s| text_of(s.get("enhanced-code")).or_else(|| text_of(s.get("code"))));
    let (kind, status_code) = mapping.kind(stated.as_deref(), &text);
    let event_id = text_of(data.get("id")).ok_or_else(|| format!("a {name} event without an id"))?;
    let headers = data.get("message").and_then(|m| m.get("headers"));
    let mailgun_reason = text_of(data.get("reason")).unwrap_or_default();
    let detail = [name, &mailgun_reason, &text].iter().filter(|s| !s.is_empty()).copied().collect::<Vec<_>>();
    Ok(Some(ProviderEvent {
        provider: Provider::Mailgun,
        event_id,
        kind,
        trace: lookup(data.get("user-variables"), &TRACE_KEYS).map(str::to_owned),
        message_id: lookup(headers, &["message-id"]).map(str::to_owned),
        status_code,
        reason: format!("Mailgun: {}", detail.join(": ")),
        raw: data.to_string(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailgun_events_map_to_the_kinds_of_a_dsn() {
        let kind = |v: Value| event(&v).unwrap().map(|e| e.kind);
        let failed = |severity: &str, code: u16, message: &str| {
            serde_json::json!({"event": "failed", "id": "e1", "severity": severity,
                "delivery-status": {"code": code, "message": message}})
        };
        assert_eq!(kind(failed("permanent", 550, "5.1.1 The email account does not exist")), Some(BounceKind::Hard));
        assert_eq!(kind(failed("permanent", 554, "5.7.1 Message rejected as spam")), Some(BounceKind::Policy));
        assert_eq!(kind(failed("temporary", 421, "try later")), Some(BounceKind::Delayed));
        assert_eq!(kind(serde_json::json!({"event": "complained", "id": "e2"})), Some(BounceKind::Complaint));
        assert_eq!(kind(serde_json::json!({"event": "opened", "id": "e3"})), None);
        let suppressed =
            serde_json::json!({"event": "failed", "id": "e5", "severity": "permanent", "reason": "suppress-bounce"});
        assert_eq!(kind(suppressed), Some(BounceKind::Hard));
        assert_eq!(kind(serde_json::json!({"event": "delivered", "id": "e6"})), Some(BounceKind::Delivered));
        let with_id = serde_json::json!({"event": "delivered", "id": "e4",
            "message": {"headers": {"message-id": "122.7.abc@example.com"}}});
        assert_eq!(event(&with_id).unwrap().unwrap().message_id.as_deref(), Some("122.7.abc@example.com"));
    }
}
