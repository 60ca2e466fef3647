//! The relays' webhooks through real HTTP against the running application, on both backends: requests built
//! and signed the way each provider builds them (Postmark's basic auth, SendGrid's ECDSA P-256 signature,
//! Mailgun's HMAC over timestamp and token), with keys made here. A valid bounce suppresses the subscriber, a
//! valid complaint unsubscribes and suppresses, the same event twice changes nothing the second time, and
//! every forged, altered, stale or replayed request changes nothing and gets the documented status.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use data_encoding::HEXLOWER;
use hmac::{Hmac, KeyInit, Mac};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::EncodePublicKey;
use serde_json::json;
use sha2::Sha256;
use tidings::domain::SubscriberEmail;

use crate::both_backends;
use crate::bounces::{complaint, dsn};
use crate::helpers::TestDatabase;
use crate::web::{WebApp, address};

const POSTMARK_USER: &str = "postmark-hooks";
const POSTMARK_PASSWORD: &str = "pm-password-0123456789";
const MAILGUN_KEY: &str = "mailgun-signing-key-0123456789abcdef";

/// A SendGrid key pair made for the test: the signing half and the public half as SendGrid shows it.
fn sendgrid_keys() -> (SigningKey, String) {
    let signing = loop {
        if let Ok(key) = SigningKey::from_slice(&rand::random::<[u8; 32]>()) {
            break key;
        }
    };
    let public = signing.verifying_key().to_public_key_der().expect("DER");
    (signing, STANDARD.encode(public.as_bytes()))
}

/// The application with the sample issue sent to 3 subscribers and every webhook configured; no bounce
/// address unless `extra` sets one (a hosted relay's user may have none).
async fn app(db: TestDatabase, sendgrid_public: &str, extra: &[(&str, &str)]) -> WebApp {
    let mut env = vec![
        ("TIDINGS_WEBHOOKS__POSTMARK__USERNAME", POSTMARK_USER),
        ("TIDINGS_WEBHOOKS__POSTMARK__PASSWORD", POSTMARK_PASSWORD),
        ("TIDINGS_WEBHOOKS__SENDGRID__PUBLIC_KEY", sendgrid_public),
        ("TIDINGS_WEBHOOKS__MAILGUN__SIGNING_KEY", MAILGUN_KEY),
    ];
    env.extend_from_slice(extra);
    WebApp::start(db, 3, &env).await
}

/// Everything an event can change, as one comparable text: what a report can change, and the reports stored.
async fn standing(app: &WebApp) -> String {
    let reports = app.query_i64("SELECT COUNT(*) FROM bounce_reports").await;
    format!("{} {reports}", crate::bounces::standing(app).await)
}

async fn suppressed(app: &WebApp, email: &str) -> Option<String> {
    let email = SubscriberEmail::parse(email).expect("address");
    app.db.store.suppression_of(&email).await.expect("query").map(|r| r.as_str().to_owned())
}

/// The Message-ID of the issue as `email` received it, with its angle brackets.
fn message_id_of(app: &WebApp, email: &str) -> String {
    let message = app.message_to(email);
    let parsed = message.parsed().expect("MIME");
    format!("<{}>", parsed.message_id().expect("a Message-ID"))
}

async fn matched_by(app: &WebApp, fingerprint_like: &str) -> Option<String> {
    app.query_text(&format!(
        "SELECT matched_by FROM bounce_reports WHERE form = '{fingerprint_like}' ORDER BY id DESC LIMIT 1"
    ))
    .await
}

fn now_seconds(app: &WebApp) -> i64 {
    app.db.clock.now().as_second()
}

// --- Postmark -------------------------------------------------------------------------------------------

async fn postmark(app: &WebApp, auth: Option<(&str, &str)>, body: &str) -> reqwest::Response {
    let mut request = app
        .client
        .post(format!("{}/webhooks/postmark", app.base))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some((user, password)) = auth {
        request = request.basic_auth(user, Some(password));
    }
    request.send().await.expect("POST")
}

fn postmark_bounce(id: u64, bounce_type: &str, content: &[u8]) -> String {
    json!({
        "RecordType": "Bounce", "ID": id, "Type": bounce_type, "TypeCode": 1, "Name": "Hard bounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Description": "The server was unable to deliver your message",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Email": "someone@example.com", "BouncedAt": "2026-12-07T08:00:00Z", "DumpAvailable": true,
        "Inactive": true, "CanActivate": true, "Subject": "Issue 122", "MessageStream": "outbound",
        "Content": String::from_utf8_lossy(content),
    })
    .to_string()
}

both_backends! {
    async fn postmark_events_with_good_credentials_apply_once_and_anything_else_changes_nothing(db) {
        let (_, sendgrid_public) = sendgrid_keys();
        let app = app(db, &sendgrid_public, &[("TIDINGS_BOUNCES__ADDRESS", "bounces@bounces.example.com")]).await;
        let good = Some((POSTMARK_USER, POSTMARK_PASSWORD));
        let bounce = postmark_bounce(4001, "HardBounce", &dsn(&app.message_to(&address(0)), "failed", "5.1.1", "550 5.1.1 unknown", "pm1"));
        let before = standing(&app).await;

        // No credentials, wrong ones: 401 with a challenge, nothing stored.
        let response = postmark(&app, None, &bounce).await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key("www-authenticate"));
        assert_eq!(postmark(&app, Some((POSTMARK_USER, "wrong")), &bounce).await.status(), 401);
        assert_eq!(postmark(&app, Some(("someone", POSTMARK_PASSWORD)), &bounce).await.status(), 401);
        // Malformed JSON with good credentials: 400 naming the problem.
        let response = postmark(&app, good, "{\"RecordType\": ").await;
        assert_eq!(response.status(), 400);
        assert!(response.text().await.unwrap().contains("not a Postmark webhook's JSON"));
        assert_eq!(standing(&app).await, before);

        // A hard bounce, matched by the trace header quoted in the bounce dump.
        assert_eq!(postmark(&app, good, &bounce).await.status(), 200);
        assert_eq!(suppressed(&app, &address(0)).await.as_deref(), Some("bounced"));
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        assert_eq!(matched_by(&app, "postmark").await.as_deref(), Some("trace-header"));
        let after_bounce = standing(&app).await;
        assert_ne!(after_bounce, before);
        // The same event again: accepted, nothing changes.
        assert_eq!(postmark(&app, good, &bounce).await.status(), 200);
        assert_eq!(standing(&app).await, after_bounce);

        // A spam complaint: unsubscribed (complained) and suppressed.
        let spam = json!({"RecordType": "SpamComplaint", "ID": 4002, "Type": "SpamComplaint", "TypeCode": 512,
            "Email": address(1), "Content": String::from_utf8_lossy(&complaint(&app.message_to(&address(1)), "pm2"))})
        .to_string();
        assert_eq!(postmark(&app, good, &spam).await.status(), 200);
        assert_eq!(app.status_of(&address(1)).await, "complained");
        assert_eq!(suppressed(&app, &address(1)).await.as_deref(), Some("complained"));
        assert_eq!(suppressed(&app, &address(2)).await, None);

        // An event about a message that is not ours: accepted (no retry), stored unmatched, nothing else.
        let before = standing(&app).await;
        assert_eq!(postmark(&app, good, &postmark_bounce(4003, "HardBounce", b"")).await.status(), 200);
        let unmatched = app.query_i64("SELECT COUNT(*) FROM bounce_reports WHERE form = 'postmark' AND matched_by IS NULL").await;
        assert_eq!(unmatched, 1);
        assert_eq!(suppressed(&app, &address(2)).await, None);
        assert_ne!(standing(&app).await, before, "the unmatched event is stored");

        // Nothing stored keeps the recipient's address.
        let leaked = app.query_i64(&format!("SELECT COUNT(*) FROM bounce_reports WHERE raw LIKE '%{}%' OR reason LIKE '%{}%'", address(0), address(1))).await;
        assert_eq!(leaked, 0);
    }
}

// --- SendGrid -------------------------------------------------------------------------------------------

async fn sendgrid(app: &WebApp, signature: &str, timestamp: &str, body: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/webhooks/sendgrid", app.base))
        .header("content-type", "application/json")
        .header("X-Twilio-Email-Event-Webhook-Signature", signature)
        .header("X-Twilio-Email-Event-Webhook-Timestamp", timestamp)
        .body(body.to_owned())
        .send()
        .await
        .expect("POST")
}

/// SendGrid's signature: ECDSA P-256 with SHA-256 over the timestamp and the payload, base64 DER.
fn sendgrid_sign(key: &SigningKey, timestamp: &str, body: &str) -> String {
    let signature: Signature = key.sign(format!("{timestamp}{body}").as_bytes());
    STANDARD.encode(signature.to_der().as_bytes())
}

both_backends! {
    async fn sendgrid_events_signed_with_the_key_apply_once_and_forged_or_stale_ones_change_nothing(db) {
        let (key, public) = sendgrid_keys();
        let app = app(db, &public, &[]).await;
        let ts = now_seconds(&app).to_string();
        let bounce = json!([
            {"email": address(0), "timestamp": now_seconds(&app), "smtp-id": message_id_of(&app, &address(0)),
             "event": "bounce", "sg_event_id": "sg-bounce-1", "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
             "reason": "550 5.1.1 The email account that you tried to reach does not exist.", "status": "5.1.1", "type": "bounce"},
            {"email": address(2), "timestamp": now_seconds(&app), "event": "open", "sg_event_id": "sg-open-1"}
        ])
        .to_string();
        let before = standing(&app).await;

        // A wrong key, an altered body, a signature of another timestamp, a stale timestamp, no headers: 403.
        let (other_key, _) = sendgrid_keys();
        assert_eq!(sendgrid(&app, &sendgrid_sign(&other_key, &ts, &bounce), &ts, &bounce).await.status(), 403);
        let altered = bounce.replace("sg-bounce-1", "sg-bounce-2");
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, &bounce), &ts, &altered).await.status(), 403);
        let later = (now_seconds(&app) + 1).to_string();
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, &bounce), &later, &bounce).await.status(), 403);
        let stale = (now_seconds(&app) - 301).to_string();
        let response = sendgrid(&app, &sendgrid_sign(&key, &stale, &bounce), &stale, &bounce).await;
        assert_eq!(response.status(), 403);
        assert!(response.text().await.unwrap().contains("stale"));
        let unsigned = app.client.post(format!("{}/webhooks/sendgrid", app.base)).body(bounce.clone()).send().await.unwrap();
        assert_eq!(unsigned.status(), 403);
        // Signed but not JSON: 400.
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, "[{"), &ts, "[{").await.status(), 400);
        assert_eq!(standing(&app).await, before);

        // The signed bounce: suppressed, matched by the Message-ID (no bounce address here); the open is ignored.
        let response = sendgrid(&app, &sendgrid_sign(&key, &ts, &bounce), &ts, &bounce).await;
        assert_eq!(response.status(), 200);
        assert_eq!(suppressed(&app, &address(0)).await.as_deref(), Some("bounced"));
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        assert_eq!(matched_by(&app, "sendgrid").await.as_deref(), Some("message-id"));
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM bounce_reports").await, 1, "the open is not a report");
        // SendGrid sends the batch again: nothing changes.
        let after = standing(&app).await;
        let ts2 = (now_seconds(&app) + 30).to_string();
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts2, &bounce), &ts2, &bounce).await.status(), 200);
        assert_eq!(standing(&app).await, after);

        // A spam report: unsubscribed and suppressed.
        let spam = json!([{"email": address(1), "timestamp": now_seconds(&app), "smtp-id": message_id_of(&app, &address(1)),
            "event": "spamreport", "sg_event_id": "sg-spam-1", "sg_message_id": "x.filter0001"}]).to_string();
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, &spam), &ts, &spam).await.status(), 200);
        assert_eq!(app.status_of(&address(1)).await, "complained");
        assert_eq!(suppressed(&app, &address(1)).await.as_deref(), Some("complained"));
        assert_eq!(suppressed(&app, &address(2)).await, None);

        // A batch far above http.max_body_bytes (forms) but within webhooks.max_body_bytes is taken.
        let batch = format!("[{}]", vec!["{\"event\":\"open\",\"sg_event_id\":\"x\"}"; 5_000].join(","));
        assert!(batch.len() > 100_000);
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, &batch), &ts, &batch).await.status(), 200);

        // A body over webhooks.max_body_bytes: 413, nothing stored.
        let before = standing(&app).await;
        let huge = format!("[{}]", vec!["{\"event\":\"open\",\"sg_event_id\":\"x\"}"; 40_000].join(","));
        assert!(huge.len() > 1_048_576);
        assert_eq!(sendgrid(&app, &sendgrid_sign(&key, &ts, &huge), &ts, &huge).await.status(), 413);
        assert_eq!(standing(&app).await, before);
    }
}

// --- Mailgun --------------------------------------------------------------------------------------------

async fn mailgun(app: &WebApp, body: &serde_json::Value) -> reqwest::Response {
    app.client.post(format!("{}/webhooks/mailgun", app.base)).json(body).send().await.expect("POST")
}

/// Mailgun's signature object: HMAC-SHA256 with the signing key over the timestamp and the token, in hex.
fn mailgun_signature(key: &str, timestamp: i64, token: &str) -> serde_json::Value {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature = HEXLOWER.encode(&mac.finalize().into_bytes());
    json!({"timestamp": timestamp.to_string(), "token": token, "signature": signature})
}

fn mailgun_event(signature: serde_json::Value, data: serde_json::Value) -> serde_json::Value {
    json!({"signature": signature, "event-data": data})
}

fn mailgun_failed(app: &WebApp, id: &str, email: &str) -> serde_json::Value {
    let message_id = message_id_of(app, email);
    json!({"event": "failed", "id": id, "timestamp": 1_765_094_400.5, "severity": "permanent", "reason": "bounce",
        "recipient": email, "log-level": "error",
        "delivery-status": {"code": 550, "message": "5.1.1 The email account that you tried to reach does not exist",
            "description": "", "attempt-no": 1},
        "message": {"headers": {"message-id": message_id.trim_matches(['<', '>']), "to": email, "subject": "Issue 122"}}})
}

both_backends! {
    async fn mailgun_events_signed_with_the_key_apply_once_and_forged_stale_or_replayed_ones_change_nothing(db) {
        let (_, sendgrid_public) = sendgrid_keys();
        let app = app(db, &sendgrid_public, &[]).await;
        let now = now_seconds(&app);
        let failed = mailgun_failed(&app, "mg-failed-1", &address(0));
        let before = standing(&app).await;

        // Wrong key, stale timestamp, a signature of another token, missing signature: 403; not JSON: 400.
        let wrong = mailgun_event(mailgun_signature("another-key-0123456789", now, "t-wrong"), failed.clone());
        assert_eq!(mailgun(&app, &wrong).await.status(), 403);
        let stale = mailgun_event(mailgun_signature(MAILGUN_KEY, now - 301, "t-stale"), failed.clone());
        assert_eq!(mailgun(&app, &stale).await.status(), 403);
        let mut swapped = mailgun_signature(MAILGUN_KEY, now, "t-one");
        swapped["token"] = json!("t-two");
        assert_eq!(mailgun(&app, &mailgun_event(swapped, failed.clone())).await.status(), 403);
        assert_eq!(mailgun(&app, &json!({"event-data": failed})).await.status(), 400);
        let response = app.client.post(format!("{}/webhooks/mailgun", app.base)).body("not json").send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(standing(&app).await, before);

        // The signed failure: suppressed, matched by the Message-ID.
        let signed = mailgun_event(mailgun_signature(MAILGUN_KEY, now, "t-first"), failed.clone());
        assert_eq!(mailgun(&app, &signed).await.status(), 200);
        assert_eq!(suppressed(&app, &address(0)).await.as_deref(), Some("bounced"));
        assert_eq!(matched_by(&app, "mailgun").await.as_deref(), Some("message-id"));
        let after = standing(&app).await;

        // The same request again (its token seen before): 403, nothing changes; a replayed token with another
        // body (the signature does not cover it) is refused the same way.
        assert_eq!(mailgun(&app, &signed).await.status(), 403);
        let forged = mailgun_event(mailgun_signature(MAILGUN_KEY, now, "t-first"), mailgun_failed(&app, "mg-forged", &address(2)));
        assert_eq!(mailgun(&app, &forged).await.status(), 403);
        assert_eq!(suppressed(&app, &address(2)).await, None);
        // Mailgun retrying the same event under a new token: accepted, changes nothing.
        let retried = mailgun_event(mailgun_signature(MAILGUN_KEY, now + 60, "t-retry"), failed.clone());
        assert_eq!(mailgun(&app, &retried).await.status(), 200);
        assert_eq!(standing(&app).await, after);

        // A complaint: unsubscribed and suppressed.
        let message_id = message_id_of(&app, &address(1));
        let complained = json!({"event": "complained", "id": "mg-complained-1", "recipient": address(1),
            "message": {"headers": {"message-id": message_id.trim_matches(['<', '>'])}}});
        let signed = mailgun_event(mailgun_signature(MAILGUN_KEY, now, "t-complaint"), complained);
        assert_eq!(mailgun(&app, &signed).await.status(), 200);
        assert_eq!(app.status_of(&address(1)).await, "complained");
        assert_eq!(suppressed(&app, &address(1)).await.as_deref(), Some("complained"));
        assert_eq!(suppressed(&app, &address(2)).await, None);
        // The seen tokens are stored hashed, never as given.
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM webhook_tokens WHERE token_hash LIKE 't-%'").await, 0);
        assert_eq!(app.query_i64("SELECT COUNT(*) FROM webhook_tokens").await, 3);

        // The database cannot store the event: 500, so Mailgun retries; the token is not kept, so the retry of
        // the same request is taken once storage is back.
        let soft = json!({"event": "failed", "id": "mg-failed-2", "severity": "permanent",
            "delivery-status": {"code": 550, "message": "5.1.1 no such user"},
            "message": {"headers": {"message-id": message_id_of(&app, &address(2)).trim_matches(['<', '>'])}}});
        let signed = mailgun_event(mailgun_signature(MAILGUN_KEY, now, "t-outage"), soft);
        execute(&app, "ALTER TABLE bounce_reports RENAME TO bounce_reports_away").await;
        assert_eq!(mailgun(&app, &signed).await.status(), 500);
        execute(&app, "ALTER TABLE bounce_reports_away RENAME TO bounce_reports").await;
        assert_eq!(suppressed(&app, &address(2)).await, None);
        assert_eq!(mailgun(&app, &signed).await.status(), 200);
        assert_eq!(suppressed(&app, &address(2)).await.as_deref(), Some("bounced"));
    }
}

async fn execute(app: &WebApp, sql: &'static str) {
    match &app.db.store {
        tidings::store::Store::Sqlite(pool) => sqlx::query(sql).execute(pool).await.map(drop),
        tidings::store::Store::Postgres(pool) => sqlx::query(sql).execute(pool).await.map(drop),
    }
    .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

// --- Amazon SES through SNS -------------------------------------------------------------------------------

/// An SES notification of `kind` ("Bounce" or "Complaint") about the issue as `email` received it, matched by
/// its Message-ID (SES includes the original's headers when asked to).
fn ses_notification(app: &WebApp, kind: &str, feedback_id: &str, email: &str) -> String {
    let mail = json!({
        "messageId": format!("ses-{feedback_id}"), "destination": [email],
        "headers": [{"name": "Message-ID", "value": message_id_of(app, email)}],
        "commonHeaders": {"messageId": message_id_of(app, email)},
    });
    let body = match kind {
        "Bounce" => json!({"notificationType": "Bounce", "mail": mail, "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General", "feedbackId": feedback_id,
            "timestamp": "2026-11-30T12:00:01.000Z",
            "bouncedRecipients": [{"emailAddress": email, "action": "failed", "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"}]}}),
        _ => json!({"notificationType": "Complaint", "mail": mail, "complaint": {
            "feedbackId": feedback_id, "complaintFeedbackType": "abuse", "timestamp": "2026-11-30T12:00:01.000Z",
            "complainedRecipients": [{"emailAddress": email}]}}),
    };
    body.to_string()
}

async fn ses(app: &WebApp, body: &serde_json::Value) -> reqwest::Response {
    let request = app.client.post(format!("{}/webhooks/ses", app.base)).header("content-type", "text/plain");
    request.body(body.to_string()).send().await.expect("POST")
}

both_backends! {
    async fn ses_notifications_signed_through_sns_apply_once_and_altered_or_foreign_ones_change_nothing(db) {
        let aws = crate::sns::fixture::Fixture::start().await;
        let (_, sendgrid_public) = sendgrid_keys();
        let ca = aws.ca_file.display().to_string();
        let app = app(db, &sendgrid_public, &[
            ("TIDINGS_WEBHOOKS__SES__ENABLED", "true"),
            ("TIDINGS_WEBHOOKS__SES__CERT_HOSTS", "localhost"),
            ("TIDINGS_WEBHOOKS__SES__EXTRA_ROOTS_FILE", &ca),
            ("TIDINGS_WEBHOOKS__SES__TOPIC_ARNS", crate::sns::fixture::TOPIC),
        ])
        .await;
        let now = app.db.clock.now().to_string();
        let bounce = aws.signer.notification_at("2", &aws.url("/cert.pem"), &ses_notification(&app, "Bounce", "fb-1", &address(0)), &now);
        let before = standing(&app).await;

        // Altered after signing, signed by another key, a certificate on a host not allowed, signed long ago:
        // 403, nothing fetched from the host not allowed, nothing stored.
        let mut altered = bounce.clone();
        altered["Message"] = json!(ses_notification(&app, "Bounce", "fb-1", &address(1)));
        assert_eq!(ses(&app, &altered).await.status(), 403);
        let mut other_key = bounce.clone();
        other_key["SigningCertURL"] = json!(aws.url("/other-key.pem"));
        assert_eq!(ses(&app, &other_key).await.status(), 403);
        let foreign_url = format!("https://127.0.0.1:{}/cert.pem", aws.port);
        let foreign = aws.signer.notification_at("2", &foreign_url, &ses_notification(&app, "Bounce", "fb-9", &address(1)), &now);
        assert_eq!(ses(&app, &foreign).await.status(), 403);
        // Signed two hours ago: a replay of an old message, refused as stale.
        let old = (app.db.clock.now() - jiff::SignedDuration::from_hours(2)).to_string();
        let stale = aws.signer.notification_at("2", &aws.url("/cert.pem"), &ses_notification(&app, "Bounce", "fb-8", &address(1)), &old);
        assert_eq!(ses(&app, &stale).await.status(), 403);
        assert_eq!(aws.requests("/cert.pem"), 1, "the certificate was fetched once, for the first message, and kept");
        let response = app.client.post(format!("{}/webhooks/ses", app.base)).body("not json").send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(standing(&app).await, before);

        // A hard bounce suppresses the subscriber, matched by the Message-ID; the same event again changes nothing.
        assert_eq!(ses(&app, &bounce).await.status(), 200);
        assert_eq!(suppressed(&app, &address(0)).await.as_deref(), Some("bounced"));
        assert_eq!(app.status_of(&address(0)).await, "bounced");
        assert_eq!(matched_by(&app, "ses").await.as_deref(), Some("message-id"));
        let after_bounce = standing(&app).await;
        assert_eq!(ses(&app, &bounce).await.status(), 200);
        assert_eq!(standing(&app).await, after_bounce);

        // A complaint unsubscribes and suppresses.
        let complaint = aws.signer.notification_at("1", &aws.url("/cert.pem"), &ses_notification(&app, "Complaint", "fb-2", &address(1)), &now);
        assert_eq!(ses(&app, &complaint).await.status(), 200);
        assert_eq!(app.status_of(&address(1)).await, "complained");
        assert_eq!(suppressed(&app, &address(1)).await.as_deref(), Some("complained"));
        assert_eq!(app.status_of(&address(2)).await, "active");
        assert_eq!(aws.requests("/cert.pem"), 1, "the certificate is fetched once and kept");
    }
}
