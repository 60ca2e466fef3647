//! One SES webhook request from verification to what to do and what to answer: the step the HTTP route calls.
//!
//! [`receive`] verifies the SNS body, confirms a subscription, and reads a notification into an [`SesEvent`];
//! [`status_of`] is the one table from a refusal to the HTTP status SNS gets. SNS retries a delivery that gets
//! a 5xx (or no answer) and gives up on a 4xx, so only a failure on our side or AWS's (the certificate or
//! the subscribe URL could not be reached) asks for a retry; a forged, altered or foreign request does not.

use super::{SesError, SesEvent, read_notification};
use crate::webhooks::sns::{FetchError, SnsError, SnsType, SnsVerifier};

/// What a verified request brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SesReceipt {
    /// A `SubscriptionConfirmation` whose signature verified, confirmed by visiting its SubscribeURL.
    SubscriptionConfirmed,
    /// An `UnsubscribeConfirmation`: the subscription is gone; nothing to do.
    Unsubscribed,
    /// A notification with an event to apply.
    Event(Box<SesEvent>),
    /// A notification of a type Tidings does not act on (Send, Open, Click, ...): answered 200, nothing changes.
    Ignored,
}

/// Why a request changes nothing, with the status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SesRefusal {
    pub status: u16,
    pub message: String,
}

/// Verifies `body`, then confirms or reads it. Nothing is read from the message before its signature verified; a
/// message whose signed Timestamp is further than the verifier's tolerance from `now` is refused as stale (403).
pub async fn receive(verifier: &SnsVerifier, body: &[u8], now: jiff::Timestamp) -> Result<SesReceipt, SesRefusal> {
    let refuse = |e: SnsError| SesRefusal { status: status_of(&e), message: e.to_string() };
    let message = verifier.verify(body).await.map_err(refuse)?;
    let signed_at: jiff::Timestamp = message.timestamp().trim().parse().map_err(|_| SesRefusal {
        status: 400,
        message: "the message's Timestamp is not an ISO 8601 time".to_owned(),
    })?;
    if now.duration_since(signed_at).abs() > verifier.tolerance() {
        return Err(SesRefusal {
            status: 403,
            message: "the message's signed Timestamp is stale (or in the future): a replay or a wrong clock".to_owned(),
        });
    }
    match message.kind() {
        SnsType::SubscriptionConfirmation => {
            verifier.confirm_subscription(&message).await.map_err(refuse)?;
            Ok(SesReceipt::SubscriptionConfirmed)
        }
        SnsType::UnsubscribeConfirmation => Ok(SesReceipt::Unsubscribed),
        SnsType::Notification => match read_notification(message.message_id(), message.message()) {
            Ok(Some(event)) => Ok(SesReceipt::Event(Box::new(event))),
            Ok(None) => Ok(SesReceipt::Ignored),
            Err(e @ (SesError::Malformed(_) | SesError::NoType | SesError::MissingPart(..))) => {
                Err(SesRefusal { status: 400, message: e.to_string() })
            }
        },
    }
}

/// The HTTP status for each refusal:
///
/// | refusal                                                                  | status |
/// |--------------------------------------------------------------------------|--------|
/// | not an SNS message, unknown Type or SignatureVersion, Signature not base64 | 400  |
/// | topic not allowed, URL not https or on a host not allowed                 | 403    |
/// | signature mismatch; certificate unreadable, not RSA, too large, or 4xx    | 403    |
/// | certificate or subscribe URL unreachable (connection, TLS, timeout, 5xx)  | 503    |
/// | not a subscription to confirm                                             | 400    |
pub fn status_of(error: &SnsError) -> u16 {
    let unreachable = |e: &FetchError| match e {
        FetchError::Status(code) => (500..600).contains(code),
        FetchError::TooLarge(_) => false,
        FetchError::Timeout(_) | FetchError::Connect { .. } | FetchError::Tls { .. } | FetchError::Http(_) => true,
    };
    match error {
        SnsError::Malformed(_)
        | SnsError::UnknownType(_)
        | SnsError::SignatureVersion(_)
        | SnsError::SignatureEncoding
        | SnsError::NotASubscription(_) => 400,
        SnsError::CertificateFetch(e) | SnsError::Confirm(e) if unreachable(e) => 503,
        SnsError::TopicNotAllowed(_)
        | SnsError::NotAUrl { .. }
        | SnsError::NotHttps { .. }
        | SnsError::HostNotAllowed { .. }
        | SnsError::CertificateFetch(_)
        | SnsError::CertificateTooLarge(_)
        | SnsError::Certificate(_)
        | SnsError::NotRsa
        | SnsError::SignatureMismatch
        | SnsError::Confirm(_) => 403,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_refusal_has_the_status_of_the_table() {
        let host = || "h".to_owned();
        let cases = [
            (SnsError::Malformed("x".into()), 400),
            (SnsError::UnknownType("x".into()), 400),
            (SnsError::SignatureVersion("3".into()), 400),
            (SnsError::SignatureEncoding, 400),
            (SnsError::NotASubscription("Notification"), 400),
            (SnsError::TopicNotAllowed("t".into()), 403),
            (SnsError::NotAUrl { field: "SigningCertURL" }, 403),
            (SnsError::NotHttps { field: "SigningCertURL", scheme: "http".into() }, 403),
            (SnsError::HostNotAllowed { field: "SigningCertURL", host: host() }, 403),
            (SnsError::CertificateFetch(FetchError::Status(404)), 403),
            (SnsError::CertificateTooLarge(16), 403),
            (SnsError::Certificate("x".into()), 403),
            (SnsError::NotRsa, 403),
            (SnsError::SignatureMismatch, 403),
            (SnsError::Confirm(FetchError::Status(403)), 403),
            (SnsError::CertificateFetch(FetchError::Status(503)), 503),
            (SnsError::CertificateFetch(FetchError::Timeout(Duration::from_secs(1))), 503),
            (SnsError::CertificateFetch(FetchError::Connect { host: host(), reason: "r".into() }), 503),
            (SnsError::CertificateFetch(FetchError::Tls { host: host(), reason: "r".into() }), 503),
            (SnsError::Confirm(FetchError::Http("closed".into())), 503),
        ];
        for (error, status) in cases {
            assert_eq!(status_of(&error), status, "{error}");
        }
    }
}
