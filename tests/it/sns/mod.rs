//! Amazon SNS message verification against a local stand-in for AWS (`fixture.rs`): messages signed in the test
//! the way AWS signs them, the signing certificate served over HTTPS on loopback by a CA made in the test, every
//! request counted. No test reaches the internet.

pub mod fixture;

use std::time::Duration;

use fixture::{Fixture, TOPIC};
use tidings::reports::BounceKind;
use tidings::webhooks::ses::{SesReceipt, read_notification, receive};
use tidings::webhooks::sns::{FetchError, SnsError, SnsType};

const BOUNCE: &str = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
"bouncedRecipients":[{"emailAddress":"reader@example.net","action":"failed","status":"5.1.1",
"diagnosticCode":"smtp; 550 5.1.1 user unknown"}],"timestamp":"2026-11-30T12:00:01.000Z",
"feedbackId":"0102019a-feedback-1"},"mail":{"messageId":"0102019a-mail-1","destination":["reader@example.net"],
"headers":[{"name":"X-Tidings-Ref","value":"trace0123"}],"commonHeaders":{"messageId":"<d-42@news.example.com>"}}}"#;

/// A moment near the fixture's signed Timestamps.
fn signed_now() -> jiff::Timestamp {
    "2026-11-30T12:00:30Z".parse().expect("timestamp")
}

fn bytes(body: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap()
}

#[tokio::test]
async fn a_signature_version_1_notification_verifies() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("1", &aws.url("/cert.pem"), BOUNCE);

    let message = aws.verifier(&[]).verify(&bytes(&body)).await.expect("verifies");

    assert_eq!(message.kind(), SnsType::Notification);
    assert_eq!(message.message(), BOUNCE);
    assert_eq!(aws.requests("/cert.pem"), 1);
}

#[tokio::test]
async fn a_signature_version_2_notification_verifies_and_carries_the_ses_bounce() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);

    let message = aws.verifier(&[TOPIC]).verify(&bytes(&body)).await.expect("verifies");
    let event = read_notification(message.message_id(), message.message()).unwrap().expect("a bounce");

    assert_eq!(message.topic_arn(), TOPIC);
    assert_eq!((event.kind, event.event_id.as_str()), (BounceKind::Hard, "0102019a-feedback-1"));
    assert_eq!(event.trace.as_deref(), Some("trace0123"));
    assert_eq!(event.message_ids, ["<d-42@news.example.com>"]);
}

#[tokio::test]
async fn messages_signed_by_openssl_verify_in_both_signature_versions() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    for version in ["1", "2"] {
        let mut body = aws.signer.notification(version, &aws.url("/cert.pem"), BOUNCE);
        aws.signer.sign_with_openssl(&mut body);

        let message = verifier.verify(&bytes(&body)).await.unwrap_or_else(|e| panic!("version {version}: {e}"));

        assert_eq!(message.message(), BOUNCE);
    }
}

#[tokio::test]
async fn a_second_message_with_the_same_certificate_fetches_nothing() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    let first = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);
    let second = aws.signer.notification("1", &aws.url("/cert.pem"), "{\"notificationType\":\"Delivery\"}");

    verifier.verify(&bytes(&first)).await.expect("the first verifies");
    verifier.verify(&bytes(&second)).await.expect("the second verifies");

    assert_eq!(aws.requests("/cert.pem"), 1);
    assert_eq!(verifier.cached_keys(), 1);
}

#[tokio::test]
async fn an_altered_message_is_refused_as_a_signature_mismatch() {
    let aws = Fixture::start().await;
    let mut body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);
    body["Message"] = serde_json::json!(BOUNCE.replace("Permanent", "Transient"));

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::SignatureMismatch);
}

#[tokio::test]
async fn an_altered_timestamp_is_refused_as_a_signature_mismatch() {
    let aws = Fixture::start().await;
    let mut body = aws.signer.notification("1", &aws.url("/cert.pem"), BOUNCE);
    body["Timestamp"] = serde_json::json!("2026-11-30T12:00:06.000Z");

    assert_eq!(aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err(), SnsError::SignatureMismatch);
}

#[tokio::test]
async fn a_signature_by_another_key_than_the_certificates_is_refused() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/other-key.pem"), BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::SignatureMismatch);
    assert_eq!(aws.requests("/other-key.pem"), 1);
}

#[tokio::test]
async fn a_signature_that_is_not_base64_is_refused_without_a_request() {
    let aws = Fixture::start().await;
    let mut body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);
    body["Signature"] = serde_json::json!("not/base64!");

    assert_eq!(aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err(), SnsError::SignatureEncoding);
    assert_eq!(aws.all_requests(), 0);
}

#[tokio::test]
async fn a_certificate_url_on_a_host_not_allowed_is_refused_without_a_request() {
    let aws = Fixture::start().await;
    // The same server, named by its address rather than by the allowed host name.
    let url = format!("https://127.0.0.1:{}/cert.pem", aws.port);
    let body = aws.signer.notification("2", &url, BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::HostNotAllowed { field: "SigningCertURL", host: "127.0.0.1".into() });
    assert_eq!(aws.all_requests(), 0);
}

#[tokio::test]
async fn an_http_certificate_url_is_refused_without_a_request() {
    let aws = Fixture::start().await;
    let url = format!("http://localhost:{}/cert.pem", aws.port);
    let body = aws.signer.notification("2", &url, BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::NotHttps { field: "SigningCertURL", scheme: "http".into() });
    assert_eq!(aws.all_requests(), 0);
}

#[tokio::test]
async fn an_oversize_certificate_is_refused_as_too_large() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/big.pem"), BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::CertificateTooLarge(tidings::webhooks::sns::MAX_CERT_BYTES));
    assert_eq!(aws.requests("/big.pem"), 1);
}

#[tokio::test]
async fn an_oversize_certificate_sent_in_chunks_without_a_length_is_refused_as_too_large() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/big-chunked.pem"), BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::CertificateTooLarge(tidings::webhooks::sns::MAX_CERT_BYTES));
    assert_eq!(aws.requests("/big-chunked.pem"), 1);
}

#[tokio::test]
async fn a_certificate_server_that_never_answers_is_given_up_on() {
    let aws = Fixture::start().await;
    let port = fixture::silent_server().await;
    let body = aws.signer.notification("2", &format!("https://localhost:{port}/cert.pem"), BOUNCE);
    let timeout = Duration::from_millis(300);

    let err = aws.verifier_with_timeout(timeout).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::CertificateFetch(FetchError::Timeout(timeout)));
}

#[tokio::test]
async fn a_certificate_server_that_takes_the_request_and_never_answers_is_given_up_on() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/stall"), BOUNCE);
    let timeout = Duration::from_millis(300);

    let err = aws.verifier_with_timeout(timeout).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::CertificateFetch(FetchError::Timeout(timeout)));
    assert_eq!(aws.requests("/stall"), 1);
}

#[tokio::test]
async fn a_certificate_whose_key_is_not_rsa_is_refused() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/ec.pem"), BOUNCE);

    assert_eq!(aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err(), SnsError::NotRsa);
}

#[tokio::test]
async fn a_certificate_url_that_is_not_found_is_refused_with_the_status() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/missing.pem"), BOUNCE);

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::CertificateFetch(FetchError::Status(404)));
}

#[tokio::test]
async fn a_certificate_server_the_configured_roots_do_not_trust_is_refused() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);

    let err = aws.verifier_trusting(None, &[]).verify(&bytes(&body)).await.unwrap_err();

    assert!(matches!(err, SnsError::CertificateFetch(FetchError::Tls { .. })), "{err}");
    assert_eq!(aws.all_requests(), 0);
}

#[tokio::test]
async fn a_topic_not_configured_is_refused_without_a_request() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);

    let err = aws.verifier(&["arn:aws:sns:eu-west-1:123456789012:other"]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::TopicNotAllowed(TOPIC.into()));
    assert_eq!(aws.all_requests(), 0);
}

#[tokio::test]
async fn a_verified_subscription_confirmation_is_confirmed_by_one_visit_to_its_subscribe_url() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[TOPIC]);
    let body = aws.signer.subscription(&aws.url("/cert.pem"), &aws.url("/confirm?Action=ConfirmSubscription&Token=t"));

    let message = verifier.verify(&bytes(&body)).await.expect("verifies");
    verifier.confirm_subscription(&message).await.expect("confirmed");

    assert_eq!(message.kind(), SnsType::SubscriptionConfirmation);
    assert_eq!(aws.requests("/confirm"), 1);
}

#[tokio::test]
async fn a_subscription_confirmation_with_an_altered_subscribe_url_is_never_visited() {
    let aws = Fixture::start().await;
    let mut body = aws.signer.subscription(&aws.url("/cert.pem"), &aws.url("/confirm?Token=t"));
    body["SubscribeURL"] = serde_json::json!(aws.url("/confirm?Token=forged"));

    let err = aws.verifier(&[]).verify(&bytes(&body)).await.unwrap_err();

    assert_eq!(err, SnsError::SignatureMismatch);
    assert_eq!(aws.requests("/confirm"), 0);
}

#[tokio::test]
async fn a_signed_subscribe_url_on_a_host_not_allowed_is_not_visited() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    let subscribe_url = format!("https://127.0.0.1:{}/confirm?Token=t", aws.port);
    let body = aws.signer.subscription(&aws.url("/cert.pem"), &subscribe_url);

    let message = verifier.verify(&bytes(&body)).await.expect("the signature verifies");
    let err = verifier.confirm_subscription(&message).await.unwrap_err();

    assert_eq!(err, SnsError::HostNotAllowed { field: "SubscribeURL", host: "127.0.0.1".into() });
    assert_eq!(aws.requests("/confirm"), 0);
}

#[tokio::test]
async fn a_notification_is_not_a_subscription_to_confirm() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    let body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);
    let message = verifier.verify(&bytes(&body)).await.expect("verifies");

    let err = verifier.confirm_subscription(&message).await.unwrap_err();

    assert_eq!(err, SnsError::NotASubscription("Notification"));
    assert_eq!(aws.requests("/confirm"), 0);
}

#[tokio::test]
async fn receiving_a_signed_bounce_gives_its_event() {
    let aws = Fixture::start().await;
    let body = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);

    let receipt = receive(&aws.verifier(&[TOPIC]), &bytes(&body), signed_now()).await.expect("accepted");

    let SesReceipt::Event(event) = receipt else { panic!("not an event: {receipt:?}") };
    assert_eq!((event.kind, event.trace.as_deref()), (BounceKind::Hard, Some("trace0123")));
}

#[tokio::test]
async fn receiving_a_signed_subscription_confirms_it_and_an_unsubscribe_visits_nothing() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    let confirm = aws.url("/confirm?Token=t");
    let subscribe = aws.signer.confirmation("SubscriptionConfirmation", &aws.url("/cert.pem"), &confirm);
    let unsubscribe = aws.signer.confirmation("UnsubscribeConfirmation", &aws.url("/cert.pem"), &confirm);

    assert_eq!(receive(&verifier, &bytes(&subscribe), signed_now()).await, Ok(SesReceipt::SubscriptionConfirmed));
    assert_eq!(receive(&verifier, &bytes(&unsubscribe), signed_now()).await, Ok(SesReceipt::Unsubscribed));

    assert_eq!(aws.requests("/confirm"), 1);
}

#[tokio::test]
async fn receiving_an_altered_bounce_is_refused_with_403_and_a_send_event_is_ignored() {
    let aws = Fixture::start().await;
    let verifier = aws.verifier(&[]);
    let mut altered = aws.signer.notification("2", &aws.url("/cert.pem"), BOUNCE);
    altered["MessageId"] = serde_json::json!("another-id");
    let send = aws.signer.notification("1", &aws.url("/cert.pem"), r#"{"eventType":"Send","mail":{}}"#);

    let refusal = receive(&verifier, &bytes(&altered), signed_now()).await.unwrap_err();
    assert_eq!(refusal.status, 403);
    assert!(refusal.message.contains("does not match"), "{}", refusal.message);
    assert_eq!(receive(&verifier, &bytes(&send), signed_now()).await, Ok(SesReceipt::Ignored));
}

#[tokio::test]
async fn receiving_when_the_certificate_server_is_unreachable_asks_sns_to_retry() {
    let aws = Fixture::start().await;
    let port = fixture::silent_server().await;
    let body = aws.signer.notification("2", &format!("https://localhost:{port}/cert.pem"), BOUNCE);

    let refusal =
        receive(&aws.verifier_with_timeout(Duration::from_millis(300)), &bytes(&body), signed_now()).await.unwrap_err();

    assert_eq!(refusal.status, 503);
}
