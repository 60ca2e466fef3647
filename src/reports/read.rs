//! Reading one message into a [`Report`]: mail-parser parses it, `recognise` decides its form, and each form
//! becomes recipient outcomes here, every one classified by the table in `classify.rs`.
//!
//! Performs no I/O; never panics (a panic inside would be a bug, and is turned into an error).

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::classify::{self, Evidence};
use super::recognise::{self, Recognised};
use super::{
    DIAGNOSTIC_MAX_CHARS, DsnAction, MAX_RECIPIENTS, RecipientOutcome, Report, ReportError, ReportForm, address,
    fields, original, plain, status,
};

/// Reads one raw message. `Err` only when the bytes are not a message at all; anything that is a message gives a
/// `Report`, `Unrecognised` when nothing in it is understood. Never panics: a panic inside (in mail-parser or
/// here) would be a bug, and becomes `ReportError::Unreadable` rather than taking the listener down.
pub fn read_report(raw: &[u8]) -> Result<Report, ReportError> {
    std::panic::catch_unwind(|| read(raw)).unwrap_or(Err(ReportError::Unreadable))
}

fn read(raw: &[u8]) -> Result<Report, ReportError> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Empty);
    }
    let message = MessageParser::new().parse(raw).ok_or(ReportError::NoHeaders)?;
    let root = message.parts.first().ok_or(ReportError::NoHeaders)?;
    if !root.headers.iter().any(|header| is_message_header(header.name())) {
        return Err(ReportError::NoMessageHeaders);
    }
    let subject = message.subject().unwrap_or_default().trim().to_owned();
    let mut original = original::collect(&message);
    let reading = match recognise::recognise(&message, &subject) {
        Recognised::Dsn { blocks } => dsn(&message, &blocks),
        Recognised::Feedback { fields } => feedback(&fields, &mut original),
        Recognised::AutoReply { signal } => auto_reply(&message, signal, &mut original),
        Recognised::PlainBounce { delayed } => Reading::new(ReportForm::PlainBounce, plain(&message, delayed)),
        Recognised::Unrecognised => Reading::new(ReportForm::Unrecognised, Vec::new()),
    };
    Ok(Report {
        form: reading.form,
        recipients: reading.recipients,
        feedback_type: reading.feedback_type,
        trace_refs: original.trace_refs,
        original_message_ids: original.message_ids,
        original_recipients: original.recipients,
        original_envelope_id: reading.envelope_id,
        subject,
    })
}

/// The header fields that any real message has at least one of.
fn is_message_header(name: &str) -> bool {
    ["From", "To", "Subject", "Date", "Message-ID", "Content-Type", "Received", "Return-Path", "MIME-Version"]
        .iter()
        .any(|known| name.eq_ignore_ascii_case(known))
}

/// What the recognised form says, before the embedded original is added.
struct Reading {
    form: ReportForm,
    recipients: Vec<RecipientOutcome>,
    feedback_type: Option<String>,
    envelope_id: Option<String>,
}

impl Reading {
    fn new(form: ReportForm, recipients: Vec<RecipientOutcome>) -> Self {
        Reading { form, recipients, feedback_type: None, envelope_id: None }
    }
}

/// An ARF report (or Microsoft's attached-original complaint): one outcome for the person who complained.
fn feedback(fields: &[fields::Field], original: &mut original::Original) -> Reading {
    let feedback_type = fields
        .iter()
        .find(|f| f.is("Feedback-Type"))
        .map(|f| f.value.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "abuse".to_owned());
    let named: Vec<String> = fields
        .iter()
        .filter(|f| f.is("Original-Rcpt-To") || f.is("Removal-Recipient"))
        .flat_map(|f| address::find(&f.value).map(str::to_owned).collect::<Vec<_>>())
        .collect();
    for recipient in named.iter().rev() {
        original.recipients.retain(|r| r != recipient);
        original.recipients.insert(0, recipient.clone());
    }
    let recipient = named.first().cloned().or_else(|| original::complainant(original));
    let evidence = Evidence::new(ReportForm::Feedback).with_feedback(&feedback_type);
    let outcome = classified(recipient, None, None, None, &evidence, None);
    Reading { feedback_type: Some(feedback_type), ..Reading::new(ReportForm::Feedback, vec![outcome]) }
}

/// An auto-reply: one outcome for its sender; its In-Reply-To names our message (RFC 3834).
fn auto_reply(message: &Message<'_>, signal: String, original: &mut original::Original) -> Reading {
    let in_reply_to = message.in_reply_to();
    let ids =
        in_reply_to.as_text().into_iter().chain(in_reply_to.as_text_list().into_iter().flatten().map(|id| id.as_ref()));
    for id in ids {
        original::push_unique(&mut original.message_ids, original::bracketed(id));
    }
    let sender = message.from().and_then(|from| from.first()).and_then(|a| a.address()).map(str::to_owned);
    let outcome = classified(sender, None, None, None, &Evidence::new(ReportForm::AutoReply), Some(signal));
    Reading::new(ReportForm::AutoReply, vec![outcome])
}

/// The outcomes of a DSN's per-recipient blocks; a DSN without any falls back to reading its text.
fn dsn(message: &Message<'_>, blocks: &[Vec<fields::Field>]) -> Reading {
    let is_recipient = |block: &[fields::Field]| {
        block.iter().any(|f| f.is("Final-Recipient") || f.is("Original-Recipient") || f.is("Action"))
    };
    let envelope_id = blocks
        .iter()
        .flatten()
        .find(|f| f.is("Original-Envelope-Id"))
        .map(|f| f.value.trim().to_owned())
        .filter(|id| !id.is_empty());
    // Some MTAs (Exim) put only a generic `Status: 5.0.0` in the DSN and the server's reply in the text for people.
    let human = std::cell::OnceCell::new();
    let outcomes: Vec<RecipientOutcome> = blocks
        .iter()
        .filter(|block| is_recipient(block))
        .take(MAX_RECIPIENTS)
        .map(|block| {
            let value = |name: &str| block.iter().find(|f| f.is(name)).map(|f| f.value.as_str());
            let recipient = value("Final-Recipient")
                .and_then(fields::typed_address)
                .or_else(|| value("Original-Recipient").and_then(fields::typed_address));
            let action = value("Action").and_then(DsnAction::parse);
            let diagnostic = value("Diagnostic-Code").map(|v| fields::typed(v).1.to_owned()).or_else(|| {
                let address = recipient.as_deref()?;
                said_about(human.get_or_init(|| recognise::body_text(message)), address)
            });
            let stated = value("Status");
            let found = status::settle(stated, diagnostic.as_deref().unwrap_or(""), action);
            let evidence = Evidence::new(ReportForm::Dsn).with_action(action).with_status(found.status.as_deref());
            let text = diagnostic.as_deref().unwrap_or("").to_lowercase();
            classified(recipient, action, found.status.clone(), diagnostic, &evidence.with_text(&text), found.note)
        })
        .collect();
    let reading = if outcomes.is_empty() {
        Reading::new(ReportForm::PlainBounce, plain(message, false))
    } else {
        Reading::new(ReportForm::Dsn, outcomes)
    };
    Reading { envelope_id, ..reading }
}

/// What the text for people says right after naming `address` (Exim: the address on one line, the remote
/// server's reply indented below it), up to a blank line; `None` when it names the address nowhere.
fn said_about(text: &str, address: &str) -> Option<String> {
    let lowered = text.to_lowercase();
    let at = lowered.find(&address.to_lowercase())? + address.len();
    let after = text.get(at..)?;
    let said: Vec<&str> = after.lines().skip(1).take_while(|line| !line.trim().is_empty()).take(4).collect();
    let said = said.join(" ").split_whitespace().collect::<Vec<_>>().join(" ");
    (!said.is_empty()).then_some(said)
}

fn plain(message: &Message<'_>, delayed: bool) -> Vec<RecipientOutcome> {
    let text = recognise::body_text(message);
    let own: Vec<String> = message
        .from()
        .into_iter()
        .chain(message.to())
        .flat_map(|list| list.iter())
        .filter_map(|a| a.address().map(str::to_owned))
        .collect();
    let action = Some(if delayed { DsnAction::Delayed } else { DsnAction::Failed });
    plain::read(&text, &own)
        .into_iter()
        .map(|block| {
            let found = status::settle(None, &block.text, action);
            let lowered = block.context.to_lowercase();
            let evidence = Evidence::new(ReportForm::PlainBounce)
                .with_action(action)
                .with_status(found.status.as_deref())
                .with_text(&lowered);
            let diagnostic = Some(block.text).filter(|t| !t.is_empty());
            classified(block.recipient, action, found.status.clone(), diagnostic, &evidence, found.note)
        })
        .collect()
}

fn classified(
    recipient: Option<String>,
    action: Option<DsnAction>,
    status: Option<String>,
    diagnostic: Option<String>,
    evidence: &Evidence<'_>,
    note: Option<String>,
) -> RecipientOutcome {
    let (kind, rule) = classify::classify(evidence);
    let reason = match note {
        Some(note) => format!("{rule} ({note})"),
        None => rule.to_owned(),
    };
    RecipientOutcome { recipient, action, status, diagnostic: diagnostic.map(|d| cap(&d)), kind, reason }
}

/// Collapses whitespace and cuts the text to [`DIAGNOSTIC_MAX_CHARS`] characters.
fn cap(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(DIAGNOSTIC_MAX_CHARS * 4));
    for (count, word) in text.split_whitespace().enumerate() {
        if count > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.chars().count() >= DIAGNOSTIC_MAX_CHARS {
            break;
        }
    }
    match out.char_indices().nth(DIAGNOSTIC_MAX_CHARS) {
        Some((end, _)) => out[..end].to_owned(),
        None => out,
    }
}

/// The decoded text of a part, if it is text, or its bytes read as UTF-8 (lossy) otherwise.
pub(crate) fn part_text<'a>(body: &'a PartType<'a>) -> Option<std::borrow::Cow<'a, str>> {
    match body {
        PartType::Text(text) | PartType::Html(text) => Some(std::borrow::Cow::Borrowed(text.as_ref())),
        PartType::Binary(bytes) | PartType::InlineBinary(bytes) => Some(String::from_utf8_lossy(bytes)),
        PartType::Message(_) | PartType::Multipart(_) => None,
    }
}

/// The lowercased `type/subtype` of a part, `text/plain` when it has none.
pub(crate) fn content_type(part: &mail_parser::MessagePart<'_>) -> (String, String) {
    match part.content_type() {
        Some(ct) => (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or_default().to_ascii_lowercase()),
        None => ("text".to_owned(), "plain".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reports::BounceKind;

    #[test]
    fn a_diagnostic_is_unfolded_and_cut_at_a_character_boundary() {
        assert_eq!(cap("smtp;  550 5.1.1\r\n    user   unknown"), "smtp; 550 5.1.1 user unknown");
        let long = "é".repeat(DIAGNOSTIC_MAX_CHARS + 10);
        assert_eq!(cap(&long).chars().count(), DIAGNOSTIC_MAX_CHARS);
    }

    #[test]
    fn an_auto_reply_names_the_message_it_answers_and_its_sender() {
        let raw =
            b"From: Kate <kate@example.com>\nSubject: Out of Office\nIn-Reply-To: <d1@news.example.com>\n\nAway.\n";
        let report = read_report(raw).expect("a message");
        assert_eq!(report.form, ReportForm::AutoReply);
        assert_eq!(report.original_message_ids, ["<d1@news.example.com>"]);
        assert_eq!(report.recipients[0].recipient.as_deref(), Some("kate@example.com"));
        assert_eq!(report.recipients[0].kind, BounceKind::AutoReply);
        assert!(report.recipients[0].reason.contains("out of office"), "{}", report.recipients[0].reason);
    }

    #[test]
    fn a_dsn_gives_its_envelope_id_and_a_reason_naming_the_row() {
        let raw = b"From: MAILER-DAEMON@mx.example\nSubject: Undelivered\nMIME-Version: 1.0\n\
            Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n\
            Content-Type: message/delivery-status\n\nOriginal-Envelope-Id: d42\n\n\
            Final-Recipient: rfc822; a@example.com\nAction: failed\nStatus: 5.0.0\n\
            Diagnostic-Code: smtp; 550 no such user here\n\n--b--\n";
        let report = read_report(raw).expect("a message");
        assert_eq!(report.original_envelope_id.as_deref(), Some("d42"));
        let outcome = &report.recipients[0];
        assert_eq!((outcome.kind, outcome.status.as_deref()), (BounceKind::Hard, Some("5.1.1")));
        assert_eq!(outcome.action, Some(DsnAction::Failed));
        assert_eq!(outcome.diagnostic.as_deref(), Some("550 no such user here"));
        assert_eq!(
            outcome.reason,
            "5.1.x: the address or its domain does not exist (5.0.0 refined by \"no such user\")"
        );
    }

    #[test]
    fn a_complaint_lists_the_reported_recipient_first_among_the_original_recipients() {
        let raw = b"From: fbl@isp.example\nSubject: report\nMIME-Version: 1.0\n\
            Content-Type: multipart/report; report-type=feedback-report; boundary=b\n\n--b\n\
            Content-Type: message/feedback-report\n\nFeedback-Type: Abuse\nOriginal-Rcpt-To: <p@isp.example>\n\n--b\n\
            Content-Type: text/rfc822-headers\n\nTo: q@isp.example\nX-Tidings-Ref: r9\n\n--b--\n";
        let report = read_report(raw).expect("a message");
        assert_eq!(report.feedback_type.as_deref(), Some("abuse"));
        assert_eq!(report.original_recipients, ["p@isp.example", "q@isp.example"]);
        assert_eq!(report.recipients[0].recipient.as_deref(), Some("p@isp.example"));
        assert_eq!(report.trace_refs, ["r9"]);
    }

    #[test]
    fn bytes_that_are_not_a_message_are_an_error_that_says_so() {
        assert_eq!(read_report(b""), Err(ReportError::Empty));
        assert_eq!(read_report(b" \r\n\t"), Err(ReportError::Empty));
        assert_eq!(read_report(b"X-Only: a custom field\n\nbody"), Err(ReportError::NoMessageHeaders));
        let error = read_report(b"\x00\x01\x02 binary").expect_err("not a message");
        assert!(error.to_string().starts_with("the input is not an email message"), "{error}");
    }

    #[test]
    fn kinds_forms_and_actions_read_back_what_they_write() {
        for kind in BounceKind::ALL {
            assert_eq!(BounceKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(BounceKind::parse("bounced"), None);
        for form in ["dsn", "feedback", "auto-reply", "plain-bounce", "unrecognised"] {
            assert_eq!(ReportForm::parse(form).map(ReportForm::as_str), Some(form));
        }
        assert_eq!(DsnAction::parse("Failed (permanent)"), Some(DsnAction::Failed));
        assert_eq!(DsnAction::parse(" delayed"), Some(DsnAction::Delayed));
        assert_eq!(DsnAction::parse("unknown"), None);
    }
}
