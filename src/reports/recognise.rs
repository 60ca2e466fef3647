//! What kind of message came back, decided in this order (the first that holds wins):
//!
//! 1. Structure: a `message/delivery-status` part (or `multipart/report; report-type=delivery-status`) is a DSN;
//!    a `message/feedback-report` part (or `report-type=feedback-report`) is an ARF report.
//! 2. Microsoft's attached-original complaint: a `message/rfc822` part and the words "email abuse report".
//! 3. The mail system's own bounce: sent by `MAILER-DAEMON`, `postmaster`, "Mail Delivery System" or Exchange,
//!    with a bounce subject, a bounce sentence or a status code in its text.
//! 4. An auto-reply: the headers in `AUTO_REPLY_HEADERS`, a vacation subject in one of several languages, or a
//!    challenge-response sentence. This comes before any bounce sentence from an ordinary sender, so a vacation
//!    reply that says "my mailbox is full" stays an auto-reply.
//! 5. A bounce from an unusual sender, recognised by the mail software's own wording (`BOUNCE_SENTENCES`), or
//!    by a bounce subject together with an enhanced status code in its text.
//!
//! Performs no I/O; never panics.

use std::borrow::Cow;

use mail_parser::{Message, MimeHeaders};

use super::fields::{self, Field};
use super::{content_type, part_text, status};

/// How much of the body text is read, in bytes: the part that matters is at the start.
const TEXT_LIMIT: usize = 256 * 1024;

pub(crate) enum Recognised {
    Dsn { blocks: Vec<Vec<Field>> },
    Feedback { fields: Vec<Field> },
    AutoReply { signal: String },
    PlainBounce { delayed: bool },
    Unrecognised,
}

/// Which values of a header make a message an auto-reply.
enum Wants {
    /// Any value except these (compared case-insensitively, before any `;`).
    AnyBut(&'static [&'static str]),
    /// One of these values.
    OneOf(&'static [&'static str]),
}

/// RFC 3834 and the common non-standard markers. `X-Auto-Response-Suppress` is absent on purpose: Exchange puts
/// it on ordinary mail too.
const AUTO_REPLY_HEADERS: &[(&str, Wants)] = &[
    ("Auto-Submitted", Wants::AnyBut(&["no"])),
    ("X-Autoreply", Wants::AnyBut(&["no", "false"])),
    ("X-Autorespond", Wants::AnyBut(&["no", "false"])),
    ("X-Autoresponder", Wants::AnyBut(&["no", "false"])),
    ("Precedence", Wants::OneOf(&["auto_reply"])),
    ("X-Precedence", Wants::OneOf(&["auto_reply"])),
];

/// Vacation and out-of-office subjects (lowercased), in English, German, French, Spanish, Italian, Dutch and
/// Portuguese.
const VACATION_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto-reply",
    "autoreply",
    "auto reply",
    "auto response",
    "auto-response",
    "autoresponse",
    "vacation",
    "away from the office",
    "abwesenheit",
    "automatische antwort",
    "nicht im büro",
    "außer haus",
    "réponse automatique",
    "reponse automatique",
    "absent du bureau",
    "absence du bureau",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "risposta automatica",
    "fuori ufficio",
    "automatisch antwoord",
    "afwezig",
    "resposta automática",
];

/// Challenge-response systems asking the sender to prove they are a person (lowercased).
const CHALLENGES: &[&str] = &[
    "confirm you are human",
    "confirm that you are human",
    "confirm you are a human",
    "verify that you are human",
    "verify you are human",
    "prove you are human",
    "sender verification",
    "challenge-response",
    "challenge response",
    "to have your message delivered",
    "to get your message delivered",
    "spamarrest",
    "boxbe",
];

/// Bounce subjects (lowercased), enough with a mail-system sender.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "delivery status notification",
    "delivery failure",
    "delivery failed",
    "failure notice",
    "returned mail",
    "returned to sender",
    "could not be delivered",
    "delivery has failed",
    "non-delivery",
    "nondeliverable",
    "not delivered",
    "delivery problem",
    "delayed mail",
    "delivery delayed",
    "warning: message",
    "mail system error",
];

/// Sentences only mail software writes in a bounce (lowercased); enough on their own.
const BOUNCE_SENTENCES: &[&str] = &[
    "this message was created automatically by mail delivery software",
    "this is the qmail-send program",
    "this is the mail system at host",
    "delivery has failed to these recipients or groups",
    "your message couldn't be delivered",
    "your message wasn't delivered",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "sorry, we were unable to deliver your message",
    "i'm afraid i wasn't able to deliver your message",
    "the following addresses had permanent fatal errors",
    "could not be delivered to one or more of its recipients",
    "your message did not reach some or all of the intended recipients",
    "the original message was received at",
];

/// Words that make a plain bounce a warning about a delay rather than a failure (lowercased).
const DELAY_SUBJECTS: &[&str] = &["delay", "warning: message", "still being retried"];
const DELAY_SENTENCES: &[&str] = &[
    "has not yet been delivered",
    "has not been delivered yet",
    "will continue trying",
    "will keep trying",
    "this is a warning message only",
    "you do not need to resend",
];

pub(crate) fn recognise(message: &Message<'_>, subject: &str) -> Recognised {
    let report_type = report_type(message);
    if let Some(text) = report_part(message, &["delivery-status", "global-delivery-status"]) {
        return Recognised::Dsn { blocks: fields::blocks(&text) };
    }
    if let Some(text) = report_part(message, &["feedback-report"]) {
        return Recognised::Feedback { fields: fields::blocks(&text).into_iter().flatten().collect() };
    }
    match report_type.as_deref() {
        Some("delivery-status" | "global-delivery-status") => return Recognised::Dsn { blocks: Vec::new() },
        Some("feedback-report") => return Recognised::Feedback { fields: Vec::new() },
        _ => {}
    }
    let text = body_text(message);
    let body = text.to_lowercase();
    let subject = subject.to_lowercase();
    let attached_original = message.parts.iter().any(|part| {
        let (ctype, subtype) = content_type(part);
        ctype == "message" && matches!(subtype.as_str(), "rfc822" | "global")
    });
    if attached_original && body.contains("email abuse report") {
        return Recognised::Feedback { fields: Vec::new() };
    }
    let delayed =
        DELAY_SUBJECTS.iter().any(|s| subject.contains(s)) || DELAY_SENTENCES.iter().any(|s| body.contains(s));
    let sentence = BOUNCE_SENTENCES.iter().any(|s| body.contains(s));
    if from_mail_system(message)
        && (sentence || BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s)) || status::find_enhanced(&text).is_some())
    {
        return Recognised::PlainBounce { delayed };
    }
    if let Some(signal) = auto_reply(message, &subject, &body) {
        return Recognised::AutoReply { signal };
    }
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    if sentence || (bounce_subject && status::find_enhanced(&text).is_some()) {
        return Recognised::PlainBounce { delayed };
    }
    Recognised::Unrecognised
}

/// The `report-type` of a top-level `multipart/report`, lowercased.
fn report_type(message: &Message<'_>) -> Option<String> {
    let root = message.parts.first()?.content_type()?;
    let is_report = root.ctype().eq_ignore_ascii_case("multipart")
        && root.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"));
    is_report.then(|| root.attribute("report-type").map(|t| t.trim().to_ascii_lowercase())).flatten()
}

/// The text of the first top-level `message/<subtype>` part with one of these subtypes.
pub(crate) fn report_part<'a>(message: &'a Message<'a>, subtypes: &[&str]) -> Option<Cow<'a, str>> {
    message.parts.iter().find_map(|part| {
        let (ctype, subtype) = content_type(part);
        (ctype == "message" && subtypes.contains(&subtype.as_str())).then(|| part_text(&part.body)).flatten()
    })
}

/// The message's readable text (its text parts, or its HTML as text), at most `TEXT_LIMIT` bytes.
pub(crate) fn body_text(message: &Message<'_>) -> String {
    let mut text = String::new();
    for index in 0..message.text_body_count() {
        if let Some(part) = message.body_text(index) {
            text.push_str(&part);
            text.push('\n');
        }
        if text.len() >= TEXT_LIMIT {
            break;
        }
    }
    let mut end = text.len().min(TEXT_LIMIT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

/// Whether the sender is the mail system itself rather than a person.
fn from_mail_system(message: &Message<'_>) -> bool {
    let Some(from) = message.from().and_then(|list| list.first()) else { return false };
    let address = from.address().unwrap_or_default().to_ascii_lowercase();
    let local = address.split('@').next().unwrap_or_default();
    let name = from.name().unwrap_or_default().to_lowercase();
    matches!(local, "mailer-daemon" | "mailerdaemon" | "mail-daemon" | "postmaster")
        || local.starts_with("microsoftexchange")
        || ["mail delivery", "mailer-daemon", "postmaster"].iter().any(|n| name.contains(n))
}

/// The signal that makes this message an auto-reply, if any.
fn auto_reply(message: &Message<'_>, subject: &str, body: &str) -> Option<String> {
    let headers = message.parts.first().map(|root| root.headers.as_slice()).unwrap_or_default();
    for header in headers {
        let Some((name, wants)) = AUTO_REPLY_HEADERS.iter().find(|(name, _)| header.name().eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let raw = header_raw(message, header);
        let value = raw.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        let hit = match wants {
            Wants::AnyBut(no) => !value.is_empty() && !no.contains(&value.as_str()),
            Wants::OneOf(yes) => yes.contains(&value.as_str()),
        };
        if hit {
            return Some(format!("{name}: {value}"));
        }
    }
    if let Some(found) = VACATION_SUBJECTS.iter().find(|s| subject.contains(*s)) {
        return Some(format!("a subject saying \"{found}\""));
    }
    let start = &body[..floor_boundary(body, 8 * 1024)];
    CHALLENGES
        .iter()
        .find(|s| subject.contains(*s) || start.contains(*s))
        .map(|found| format!("a challenge-response saying \"{found}\""))
}

/// The raw text of a header's value (mail-parser keeps offsets into the message), trimmed.
fn header_raw<'a>(message: &'a Message<'a>, header: &mail_parser::Header<'_>) -> Cow<'a, str> {
    let range = header.offset_start() as usize..header.offset_end() as usize;
    String::from_utf8_lossy(message.raw_message.get(range).unwrap_or_default())
}

fn floor_boundary(text: &str, at: usize) -> usize {
    let mut end = at.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
}
