//! One SNS HTTP POST body, read: its `Type`, its fields, its signature, and the canonical string AWS signs for
//! that type (<https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html>).
//!
//! Pure: no I/O, no clock. Nothing here trusts the message; `super::SnsVerifier` checks the signature over
//! [`Envelope::string_to_sign`] before anything reads the content.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::SnsError;

/// The three kinds of message SNS posts to an HTTP(S) endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsType {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsType {
    /// Each type by its name in `Type` (and in the `x-amz-sns-message-type` header).
    const NAMES: [(&'static str, SnsType); 3] = [
        ("Notification", SnsType::Notification),
        ("SubscriptionConfirmation", SnsType::SubscriptionConfirmation),
        ("UnsubscribeConfirmation", SnsType::UnsubscribeConfirmation),
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::NAMES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES.iter().find(|(_, t)| *t == self).map_or("", |(n, _)| n)
    }

    /// The fields signed for this type, in the order AWS puts them into the string to sign (byte order of the
    /// names). `Subject` is signed only when the message has one.
    fn signed_fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            SnsType::Notification => &[Message, MessageId, Subject, Timestamp, TopicArn, Type],
            SnsType::SubscriptionConfirmation | SnsType::UnsubscribeConfirmation => {
                &[Message, MessageId, SubscribeUrl, Timestamp, Token, TopicArn, Type]
            }
        }
    }
}

/// How the signature was made: `SignatureVersion` 1 is SHA1withRSA, 2 is SHA256withRSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureVersion {
    Sha1WithRsa,
    Sha256WithRsa,
}

#[derive(Clone, Copy)]
enum Field {
    Message,
    MessageId,
    Subject,
    SubscribeUrl,
    Timestamp,
    Token,
    TopicArn,
    Type,
}

/// The body as SNS sends it. Field names are AWS's; unknown fields (`MessageAttributes`, `UnsubscribeURL`) are
/// ignored, a duplicated field is an error.
#[derive(Deserialize)]
struct Wire {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "MessageId")]
    message_id: String,
    #[serde(rename = "TopicArn")]
    topic_arn: String,
    #[serde(rename = "Message")]
    message: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
    #[serde(rename = "SignatureVersion")]
    signature_version: String,
    #[serde(rename = "Signature")]
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
    #[serde(rename = "Subject", default)]
    subject: Option<String>,
    #[serde(rename = "SubscribeURL", default)]
    subscribe_url: Option<String>,
    #[serde(rename = "Token", default)]
    token: Option<String>,
}

/// A parsed but not yet verified SNS message.
#[derive(Clone)]
pub(crate) struct Envelope {
    pub(crate) kind: SnsType,
    pub(crate) message_id: String,
    pub(crate) topic_arn: String,
    pub(crate) message: String,
    pub(crate) timestamp: String,
    pub(crate) subject: Option<String>,
    /// Present for both confirmation types (checked at parse time).
    pub(crate) subscribe_url: Option<String>,
    pub(crate) token: Option<String>,
    pub(crate) version: SignatureVersion,
    pub(crate) signature: Vec<u8>,
    pub(crate) signing_cert_url: String,
}

/// Longest `Signature` accepted, in base64 characters (an RSA-8192 signature is 1368).
const MAX_SIGNATURE_CHARS: usize = 2048;

impl Envelope {
    /// Reads one POST body. Every error names the field that was wrong.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, SnsError> {
        let wire: Wire = serde_json::from_slice(body).map_err(|e| SnsError::Malformed(e.to_string()))?;
        let kind = SnsType::parse(&wire.kind).ok_or_else(|| SnsError::UnknownType(clip(&wire.kind)))?;
        let version = match wire.signature_version.as_str() {
            "1" => SignatureVersion::Sha1WithRsa,
            "2" => SignatureVersion::Sha256WithRsa,
            other => return Err(SnsError::SignatureVersion(clip(other))),
        };
        if wire.signature.len() > MAX_SIGNATURE_CHARS {
            return Err(SnsError::SignatureEncoding);
        }
        let signature = STANDARD.decode(wire.signature.trim()).map_err(|_| SnsError::SignatureEncoding)?;
        if kind != SnsType::Notification {
            for (name, value) in [("SubscribeURL", &wire.subscribe_url), ("Token", &wire.token)] {
                if value.is_none() {
                    return Err(SnsError::Malformed(format!("a {} has no {name}", kind.as_str())));
                }
            }
        }
        Ok(Self {
            kind,
            message_id: wire.message_id,
            topic_arn: wire.topic_arn,
            message: wire.message,
            timestamp: wire.timestamp,
            subject: wire.subject,
            subscribe_url: wire.subscribe_url,
            token: wire.token,
            version,
            signature,
            signing_cert_url: wire.signing_cert_url,
        })
    }

    /// The canonical string AWS signs: for each signed field that is present, its name, a newline, its value
    /// and a newline.
    pub(crate) fn string_to_sign(&self) -> String {
        let mut out = String::with_capacity(self.message.len() + 512);
        for field in self.kind.signed_fields() {
            let (name, value) = match field {
                Field::Message => ("Message", Some(self.message.as_str())),
                Field::MessageId => ("MessageId", Some(self.message_id.as_str())),
                Field::Subject => ("Subject", self.subject.as_deref()),
                Field::SubscribeUrl => ("SubscribeURL", self.subscribe_url.as_deref()),
                Field::Timestamp => ("Timestamp", Some(self.timestamp.as_str())),
                Field::Token => ("Token", self.token.as_deref()),
                Field::TopicArn => ("TopicArn", Some(self.topic_arn.as_str())),
                Field::Type => ("Type", Some(self.kind.as_str())),
            };
            if let Some(value) = value {
                out.push_str(name);
                out.push('\n');
                out.push_str(value);
                out.push('\n');
            }
        }
        out
    }
}

impl fmt::Debug for Envelope {
    /// The message, the token and the subscribe URL stay out: they hold addresses and a confirmation secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("kind", &self.kind)
            .field("message_id", &self.message_id)
            .field("topic_arn", &self.topic_arn)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// A value from the body quoted in an error, cut to 64 characters.
fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(kind: &str, extra: &str) -> String {
        format!(
            r#"{{"Type":"{kind}","MessageId":"m-1","TopicArn":"arn:aws:sns:eu-west-1:123456789012:ses","Message":"hello\nworld","Timestamp":"2026-11-30T12:00:00.000Z","SignatureVersion":"2","Signature":"AAEC","SigningCertURL":"https://sns.eu-west-1.amazonaws.com/c.pem"{extra}}}"#
        )
    }

    #[test]
    fn a_notification_signs_message_id_timestamp_topic_and_type_in_that_order() {
        let envelope = Envelope::parse(body("Notification", "").as_bytes()).unwrap();
        assert_eq!(
            envelope.string_to_sign(),
            "Message\nhello\nworld\nMessageId\nm-1\nTimestamp\n2026-11-30T12:00:00.000Z\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:ses\nType\nNotification\n"
        );
        assert_eq!(envelope.version, SignatureVersion::Sha256WithRsa);
        assert_eq!(envelope.signature, vec![0, 1, 2]);
    }

    #[test]
    fn a_notification_with_a_subject_signs_the_subject_after_the_message_id() {
        let envelope = Envelope::parse(body("Notification", r#","Subject":"Hi""#).as_bytes()).unwrap();
        assert!(envelope.string_to_sign().contains("MessageId\nm-1\nSubject\nHi\nTimestamp\n"));
    }

    #[test]
    fn a_subscription_confirmation_signs_its_subscribe_url_and_token() {
        let extra = r#","SubscribeURL":"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription","Token":"tok","Subject":"ignored""#;
        let envelope = Envelope::parse(body("SubscriptionConfirmation", extra).as_bytes()).unwrap();
        assert_eq!(
            envelope.string_to_sign(),
            "Message\nhello\nworld\nMessageId\nm-1\n\
             SubscribeURL\nhttps://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2026-11-30T12:00:00.000Z\nToken\ntok\n\
             TopicArn\narn:aws:sns:eu-west-1:123456789012:ses\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn each_broken_body_is_refused_with_what_was_wrong() {
        let cases: [(String, &str); 7] = [
            ("not json".into(), "not an SNS message"),
            (body("Notification", "").replace(r#""MessageId":"m-1","#, ""), "MessageId"),
            (body("Gossip", ""), "Gossip"),
            (body("Notification", "").replace(r#""SignatureVersion":"2""#, r#""SignatureVersion":"3""#), "`3`"),
            (body("Notification", "").replace("AAEC", "not base64!"), "base64"),
            (body("SubscriptionConfirmation", r#","Token":"t""#), "SubscribeURL"),
            // Two readers must never disagree on what was signed: a repeated field is refused, not resolved.
            (body("Notification", r#","Message":"other""#), "duplicate field `Message`"),
        ];
        for (input, expected) in cases {
            let err = Envelope::parse(input.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn debug_shows_neither_the_message_nor_the_token() {
        let extra = r#","SubscribeURL":"https://sns.eu-west-1.amazonaws.com/?secret","Token":"secret-token""#;
        let envelope = Envelope::parse(body("SubscriptionConfirmation", extra).as_bytes()).unwrap();
        let debug = format!("{envelope:?}");
        assert!(!debug.contains("secret") && !debug.contains("hello"), "{debug}");
    }
}
