//! SES notifications written for these tests after AWS's documented examples (notification and event-publishing
//! forms), read into events.

use super::*;

const MAIL: &str = r#"{
    "timestamp": "2026-11-30T11:59:58.123Z",
    "source": "Tidings <news@example.com>",
    "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
    "sendingAccountId": "123456789012",
    "messageId": "0102019a1b2c3d4e-5f6a7b8c-0000-4000-8000-000000000001-000000",
    "destination": ["reader@example.net"],
    "headersTruncated": false,
    "headers": [
        {"name": "From", "value": "Tidings <news@example.com>"},
        {"name": "To", "value": "reader@example.net"},
        {"name": "Message-ID", "value": "<issue-7.delivery-42@news.example.com>"},
        {"name": "x-tidings-ref", "value": " abcdef0123456789 "},
        {"name": "Subject", "value": "Weekly digest"}
    ],
    "commonHeaders": {
        "from": ["Tidings <news@example.com>"],
        "to": ["reader@example.net"],
        "messageId": "<issue-7.delivery-42@news.example.com>",
        "subject": "Weekly digest"
    }
}"#;

fn bounce(bounce_type: &str, subtype: &str, status: &str) -> String {
    format!(
        r#"{{"notificationType": "Bounce",
            "bounce": {{
                "bounceType": "{bounce_type}", "bounceSubType": "{subtype}",
                "bouncedRecipients": [{{"emailAddress": "reader@example.net", "action": "failed",
                    "status": "{status}",
                    "diagnosticCode": "smtp; 550 {status} <reader@example.net>: Recipient address rejected"}}],
                "timestamp": "2026-11-30T12:00:01.000Z",
                "feedbackId": "0102019a-feedback-bounce-000000",
                "remoteMtaIp": "192.0.2.10",
                "reportingMTA": "dsn; b224-13.smtp-out.eu-west-1.amazonses.com"
            }},
            "mail": {MAIL}}}"#
    )
}

fn read(message: &str) -> SesEvent {
    read_notification("sns-message-1", message).unwrap().expect("an event Tidings acts on")
}

#[test]
fn a_permanent_bounce_is_hard_with_its_trace_message_id_status_and_scrubbed_diagnostic() {
    let event = read(&bounce("Permanent", "General", "5.1.1"));
    assert_eq!(event.event_id, "0102019a-feedback-bounce-000000");
    assert_eq!(event.event_type, "Bounce");
    assert_eq!(event.kind, BounceKind::Hard);
    assert_eq!(event.status_code, "5.1.1");
    assert!(event.reason.contains("Permanent/General"), "{}", event.reason);
    assert_eq!(event.trace.as_deref(), Some("abcdef0123456789"));
    assert_eq!(event.message_ids, ["<issue-7.delivery-42@news.example.com>"]);
    assert_eq!(event.ses_message_id, "0102019a1b2c3d4e-5f6a7b8c-0000-4000-8000-000000000001-000000");
    assert_eq!(event.recipients.len(), 1);
    let recipient = &event.recipients[0];
    assert_eq!(recipient.address, "reader@example.net");
    assert_eq!(recipient.kind, BounceKind::Hard);
    assert!(recipient.diagnostic.starts_with("smtp; 550 5.1.1"), "{}", recipient.diagnostic);
    assert!(!recipient.diagnostic.contains("reader@example.net"), "{}", recipient.diagnostic);
}

#[test]
fn bounce_types_and_subtypes_give_the_kinds_of_the_table() {
    let cases = [
        ("Permanent", "NoEmail", "5.1.1", BounceKind::Hard),
        ("Permanent", "Suppressed", "5.1.1", BounceKind::Hard),
        ("Permanent", "OnAccountSuppressionList", "", BounceKind::Hard),
        ("Permanent", "General", "5.7.1", BounceKind::Policy),
        ("Transient", "MailboxFull", "4.2.2", BounceKind::Soft),
        ("Transient", "General", "4.4.7", BounceKind::Soft),
        ("Transient", "MessageTooLarge", "5.3.4", BounceKind::Policy),
        ("Transient", "ContentRejected", "5.7.1", BounceKind::Policy),
        ("Transient", "AttachmentRejected", "5.7.1", BounceKind::Policy),
        ("Undetermined", "Undetermined", "", BounceKind::Unclassified),
    ];
    for (bounce_type, subtype, status, expected) in cases {
        let event = read(&bounce(bounce_type, subtype, status));
        assert_eq!(event.kind, expected, "{bounce_type}/{subtype}/{status}");
        assert_eq!(event.recipients[0].kind, expected, "{bounce_type}/{subtype}/{status}");
    }
}

#[test]
fn a_complaint_is_a_complaint_with_its_feedback_type_and_feedback_id() {
    let message = format!(
        r#"{{"notificationType": "Complaint",
            "complaint": {{
                "userAgent": "ExampleCorp Feedback Loop (V0.01)",
                "complainedRecipients": [{{"emailAddress": "reader@example.net"}}],
                "complaintFeedbackType": "Abuse",
                "arrivalDate": "2026-11-30T12:00:00.000Z",
                "timestamp": "2026-11-30T12:00:02.000Z",
                "feedbackId": "0102019a-feedback-complaint-000000"
            }},
            "mail": {MAIL}}}"#
    );
    let event = read(&message);
    assert_eq!(event.kind, BounceKind::Complaint);
    assert_eq!(event.event_id, "0102019a-feedback-complaint-000000");
    assert_eq!(event.feedback_type.as_deref(), Some("abuse"));
    assert_eq!(event.recipients[0].address, "reader@example.net");
    assert_eq!(event.trace.as_deref(), Some("abcdef0123456789"));

    let not_spam = message.replace("Abuse", "not-spam");
    assert_eq!(read(&not_spam).kind, BounceKind::Unclassified);
    let without_type = message.replace(r#""complaintFeedbackType": "Abuse","#, "");
    let event = read(&without_type);
    assert_eq!((event.kind, event.feedback_type), (BounceKind::Complaint, None));
}

#[test]
fn a_delivery_published_as_an_event_is_delivered_and_keyed_by_the_sns_message_id() {
    let message = format!(
        r#"{{"eventType": "Delivery",
            "mail": {MAIL},
            "delivery": {{
                "timestamp": "2026-11-30T12:00:03.000Z",
                "processingTimeMillis": 546,
                "recipients": ["reader@example.net"],
                "smtpResponse": "250 2.6.0 Message received",
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "remoteMtaIp": "192.0.2.20"
            }}}}"#
    );
    let event = read(&message);
    assert_eq!(event.kind, BounceKind::Delivered);
    assert_eq!(event.event_id, "sns-message-1");
    assert_eq!(event.recipients[0].diagnostic, "250 2.6.0 Message received");
}

#[test]
fn a_delivery_delay_is_delayed_and_a_reject_is_policy() {
    let delay = format!(
        r#"{{"eventType": "DeliveryDelay", "mail": {MAIL},
            "deliveryDelay": {{"timestamp": "2026-11-30T12:00:04.000Z", "delayType": "MailboxFull",
                "expirationTime": "2026-12-01T12:00:00.000Z",
                "delayedRecipients": [{{"emailAddress": "reader@example.net", "status": "4.2.2",
                    "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}}]}}}}"#
    );
    let event = read(&delay);
    assert_eq!((event.kind, event.status_code.as_str()), (BounceKind::Delayed, "4.2.2"));
    let reject = format!(r#"{{"eventType": "Reject", "mail": {MAIL}, "reject": {{"reason": "Bad content"}}}}"#);
    let event = read(&reject);
    assert_eq!(event.kind, BounceKind::Policy);
    assert_eq!(event.recipients[0].diagnostic, "Bad content");
}

#[test]
fn without_the_original_headers_the_common_message_id_still_matches_and_there_is_no_trace() {
    let message = bounce("Permanent", "General", "5.1.1").replace(r#""headers": ["#, r#""ignored": ["#);
    let event = read(&message);
    assert_eq!(event.trace, None);
    assert_eq!(event.message_ids, ["<issue-7.delivery-42@news.example.com>"]);
}

#[test]
fn types_tidings_does_not_act_on_give_nothing() {
    for event in ["Send", "Open", "Click", "Rendering Failure", "AmazonSnsSubscriptionSucceeded"] {
        let message = format!(r#"{{"eventType": "{event}", "mail": {MAIL}}}"#);
        assert_eq!(read_notification("m", &message), Ok(None), "{event}");
    }
}

#[test]
fn broken_notifications_are_refused_with_what_was_wrong() {
    let cases = [
        ("not json".to_owned(), "not valid JSON"),
        (r#"{"mail": {}}"#.to_owned(), "neither notificationType nor eventType"),
        (r#"{"notificationType": "Bounce"}"#.to_owned(), "no `bounce` object"),
        (bounce("Permanent", "General", "5.1.1").replace(r#""bounceType": "Permanent","#, ""), "bounceType"),
        (
            r#"{"notificationType": "Complaint", "complaint": {"complainedRecipients": 3}}"#.to_owned(),
            "complainedRecipients",
        ),
    ];
    for (message, expected) in cases {
        let err = read_notification("m", &message).unwrap_err().to_string();
        assert!(err.contains(expected), "{message}: {err}");
    }
}

#[test]
fn debug_shows_no_address_and_no_diagnostic() {
    let debug = format!("{:?}", read(&bounce("Permanent", "General", "5.1.1")));
    assert!(!debug.contains("example.net") && !debug.contains("rejected"), "{debug}");
}
