//! Building one message: the headers of a newsletter, a multipart/alternative body (text first, HTML last, both
//! UTF-8 in quoted-printable), and the DKIM signature when one is configured.
//!
//! This file owns the shape of every email Tidings sends. It performs no I/O and reads no clock (the Date comes
//! in), and it refuses any header value holding a line break, so that no subscriber's name and no issue's
//! subject can smuggle in a header of its own.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Body, Mailbox, Message, MultiPart, SinglePart};

use super::dkim::DkimSigner;
use crate::domain::{SubscriberEmail, sha256_hex};

/// The longest header value that cannot be folded (a Message-ID, a URL), so that its line stays well inside
/// the 998 octets RFC 5322 allows.
const MAX_UNFOLDABLE: usize = 900;

/// Everything needed to build one message; the delivery engine fills it per recipient. `Debug` shows neither
/// the recipient nor the unsubscribe URL (it holds a token).
pub struct Outgoing<'a> {
    /// The delivery's Message-ID with its angle brackets, e.g. `<122.4711.k3j2@example.com>`, used verbatim.
    pub message_id: &'a str,
    /// `sender.from` from the configuration.
    pub from: &'a Mailbox,
    pub reply_to: Option<&'a Mailbox>,
    pub to_email: &'a SubscriberEmail,
    /// The subscriber's name; may be empty, and may hold quotes, commas and non-ASCII letters (it is encoded).
    pub to_name: &'a str,
    pub subject: &'a str,
    /// The Date header.
    pub date: jiff::Timestamp,
    /// The List-Id header value, e.g. `What's up in China <weekly.example.com>`.
    pub list_id: &'a str,
    /// The one-click unsubscribe URL (HTTPS, signed token): `List-Unsubscribe: <url>`.
    pub unsubscribe_url: &'a str,
    /// The Feedback-ID header value, e.g. `122:weekly:tidings:example.com`.
    pub feedback_id: &'a str,
    /// The personalised parts, from `render::Personalised::html()` and `text()`.
    pub html: &'a str,
    pub text: &'a str,
    /// A test send: adds `X-Tidings-Test: yes` and prefixes the subject with `[TEST] `.
    pub is_test: bool,
    /// The signed return path and trace value (`domain::return_path`) when `[bounces]` is on: the envelope
    /// sender becomes the return path and the message carries `X-Tidings-Ref: <trace>`. `None`: the envelope
    /// sender is `from`, as lettre derives it.
    pub bounce: Option<BounceTrace<'a>>,
    /// The transport takes 8-bit bodies (`Sender::accepts_8bit`): a part whose lines all fit in 998 octets
    /// then goes as it is, which costs nothing per message; otherwise, and when false, it is quoted-printable.
    pub eight_bit: bool,
}

/// A message's signed return path and its trace header value.
#[derive(Clone, Copy)]
pub struct BounceTrace<'a> {
    pub return_path: &'a str,
    pub trace: &'a str,
}

/// The header that carries the trace value, so a complaint that hides the recipient still maps back.
pub const TRACE_HEADER: &str = "X-Tidings-Ref";

impl fmt::Debug for Outgoing<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outgoing").field("message_id", &self.message_id).field("is_test", &self.is_test).finish()
    }
}

/// A built message: the envelope and the RFC 5322 bytes (CRLF line endings, DKIM-signed when configured),
/// exactly as a transport sends or stores them. `Debug` shows the Message-ID and the size only.
pub struct BuiltMessage {
    /// The Message-ID as given, with angle brackets: outbox file names and log spans use it.
    pub message_id: String,
    pub envelope: Envelope,
    pub bytes: Vec<u8>,
}

impl fmt::Debug for BuiltMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BuiltMessage").field("message_id", &self.message_id).field("bytes", &self.bytes.len()).finish()
    }
}

/// Why a message could not be built. Messages name the header, never its value (it may be a subscriber's name).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the {header} header would contain a line break or another control character")]
    ControlCharacter { header: &'static str },
    #[error("the {header} header would be longer than {MAX_UNFOLDABLE} characters on one line")]
    TooLong { header: &'static str },
    #[error("the Message-ID `{0}` is not of the form <id@domain>")]
    MessageId(String),
    #[error("the message cannot be built: {0}")]
    Invalid(String),
}

/// Builds the message for one recipient and signs it when `dkim` is given.
pub fn build(outgoing: &Outgoing<'_>, dkim: Option<&DkimSigner>) -> Result<BuiltMessage, BuildError> {
    check_headers(outgoing)?;
    let message_id = outgoing.message_id;
    let subject = match outgoing.is_test {
        true => Cow::Owned(format!("[TEST] {}", outgoing.subject)),
        false => Cow::Borrowed(outgoing.subject),
    };
    let name = outgoing.to_name.trim();
    let to = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), outgoing.to_email.address().clone());
    let mut builder = Message::builder()
        .message_id(Some(message_id.to_owned()))
        .date(system_time(outgoing.date))
        .from(outgoing.from.clone())
        .to(to.clone())
        .subject(subject.into_owned());
    if let Some(reply_to) = outgoing.reply_to {
        builder = builder.reply_to(reply_to.clone());
    }
    let headers = [
        ("List-Id", outgoing.list_id.to_owned()),
        ("List-Unsubscribe", format!("<{}>", outgoing.unsubscribe_url)),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned()),
        ("Feedback-ID", outgoing.feedback_id.to_owned()),
        ("Precedence", "bulk".to_owned()),
    ];
    for (name, value) in headers {
        builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(name), value));
    }
    if outgoing.is_test {
        builder = builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("X-Tidings-Test"), "yes".into()));
    }
    if let Some(bounce) = outgoing.bounce {
        builder =
            builder.raw_header(HeaderValue::new(HeaderName::new_from_ascii_str(TRACE_HEADER), bounce.trace.into()));
    }
    // Quoted-printable keeps every line under 998 octets whatever the HTML looks like, and it can never produce
    // "=_", so a boundary starting with it cannot occur inside a part. Deriving the rest from the Message-ID makes
    // the same input build the same bytes.
    let boundary = format!("=_{}", &sha256_hex(&[message_id.as_bytes()])[..32]);
    let body = MultiPart::alternative()
        .boundary(boundary)
        .singlepart(part(ContentType::TEXT_PLAIN, outgoing.text, outgoing.eight_bit))
        .singlepart(part(ContentType::TEXT_HTML, outgoing.html, outgoing.eight_bit));
    let mut message = builder.multipart(body).map_err(|e| BuildError::Invalid(e.to_string()))?;
    for (header, mailbox) in [("From", Some(outgoing.from)), ("To", Some(&to)), ("Reply-To", outgoing.reply_to)] {
        if let Some(value) = mailbox.and_then(quoted_ascii) {
            let name = HeaderName::new_from_ascii_str(header);
            message.headers_mut().insert_raw(HeaderValue::dangerous_new_pre_encoded(name, value.clone(), value));
        }
    }
    let mut built = sealed(message, message_id, dkim);
    if let Some(bounce) = outgoing.bounce {
        built.envelope = envelope_from(bounce.return_path, &built.envelope)?;
    }
    Ok(built)
}

/// The same envelope with `return_path` as its sender.
fn envelope_from(return_path: &str, envelope: &Envelope) -> Result<Envelope, BuildError> {
    let sender: lettre::Address = return_path.parse().map_err(|e| BuildError::Invalid(format!("return path: {e}")))?;
    Envelope::new(Some(sender), envelope.to().to_vec()).map_err(|e| BuildError::Invalid(e.to_string()))
}

/// A plain-text notice to the admin (an empty weekly queue), signed like every message when DKIM is on. The
/// subject and text are Tidings' own words; a subject holding a line break is refused all the same.
#[allow(clippy::too_many_arguments)]
pub fn build_notice(
    message_id: &str,
    from: &Mailbox,
    to: &Mailbox,
    subject: &str,
    text: &str,
    date: jiff::Timestamp,
    dkim: Option<&DkimSigner>,
    return_path: Option<&str>,
) -> Result<BuiltMessage, BuildError> {
    if subject.chars().any(char::is_control) {
        return Err(BuildError::ControlCharacter { header: "Subject" });
    }
    let message = Message::builder()
        .message_id(Some(message_id.to_owned()))
        .date(system_time(date))
        .from(from.clone())
        .to(to.clone())
        .subject(subject)
        .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("Auto-Submitted"), "auto-generated".into()))
        .singlepart(part(ContentType::TEXT_PLAIN, text, false))
        .map_err(|e| BuildError::Invalid(e.to_string()))?;
    let mut built = sealed(message, message_id, dkim);
    if let Some(return_path) = return_path {
        built.envelope = envelope_from(return_path, &built.envelope)?;
    }
    Ok(built)
}

/// The message signed when DKIM is on, and formatted.
fn sealed(mut message: Message, message_id: &str, dkim: Option<&DkimSigner>) -> BuiltMessage {
    if let Some(signer) = dkim {
        signer.sign(&mut message);
    }
    BuiltMessage { message_id: message_id.to_owned(), envelope: message.envelope().clone(), bytes: message.formatted() }
}

/// lettre's Date wants a `SystemTime`. A send date before 1970 cannot happen; it would become the epoch.
fn system_time(date: jiff::Timestamp) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::try_from(date.as_duration()).unwrap_or_default()
}

fn mailbox_name(mailbox: Option<&Mailbox>) -> &str {
    mailbox.and_then(|m| m.name.as_deref()).unwrap_or_default()
}

/// A mailbox with a printable-ASCII display name as `"name" <address>`. lettre writes any name holding more than
/// letters, digits, spaces and `-_.` in base64, even `What's up in China`, and filters such as Rspamd score
/// needless base64 in From and To (FROM_EXCESS_BASE64). `None` leaves lettre's encoding, which non-ASCII names
/// need. The name has no control characters (checked), so the quoted string cannot break the header.
fn quoted_ascii(mailbox: &Mailbox) -> Option<String> {
    // A name holding `=?` could pass for an RFC 2047 encoded word, which many readers decode even inside quotes
    // (`=?utf-8?q?Eve=0D=0ABcc:...?=` would become a CR LF): lettre then encodes the whole name, so a reader
    // decodes it back to the literal text.
    let printable = |name: &&str| {
        !name.trim().is_empty() && name.bytes().all(|b| (0x20..0x7f).contains(&b)) && !name.contains("=?")
    };
    let name = mailbox.name.as_deref().filter(printable)?;
    if name.len() > MAX_UNFOLDABLE / 4 {
        return None;
    }
    let mut value = String::with_capacity(name.len() + 64);
    value.push('"');
    for c in name.chars() {
        if matches!(c, '"' | '\\') {
            value.push('\\');
        }
        value.push(c);
    }
    value.push_str("\" <");
    value.push_str(AsRef::<str>::as_ref(&mailbox.email));
    value.push('>');
    Some(value)
}

/// A UTF-8 text part: as it is (7bit when ASCII, else 8bit) when `eight_bit` allows and every line fits in 998
/// octets, else quoted-printable. We encode it ourselves because lettre's `Body::new_with_encoding` first scans
/// the whole text to choose an encoding, even when told which. Quoted-printable costs about 60 microseconds for
/// the 21 KB sample; the 8-bit path only normalises line ends.
fn part(content_type: ContentType, body: &str, eight_bit: bool) -> SinglePart {
    let (body, longest) = crlf(body);
    let fits = longest <= 998;
    let (encoded, encoding) = if fits && body.is_ascii() {
        (body.into_bytes(), ContentTransferEncoding::SevenBit)
    } else if fits && eight_bit {
        (body.into_bytes(), ContentTransferEncoding::EightBit)
    } else {
        // The encoder wraps lines at 76 characters and keeps CRLF as the line break; the output is pure ASCII.
        (quoted_printable::encode(body), ContentTransferEncoding::QuotedPrintable)
    };
    SinglePart::builder().header(content_type).body(Body::dangerous_pre_encoded(encoded, encoding))
}

/// The text with every bare LF made CRLF (quoted-printable keeps only CRLF as a line break), and the length of
/// its longest line in octets. One pass; the search for line ends is the standard library's vectorised one.
fn crlf(text: &str) -> (String, usize) {
    let mut out = String::with_capacity(text.len() + text.len() / 32);
    let (mut start, mut longest) = (0, 0);
    for (index, _) in text.match_indices('\n') {
        let line = &text[start..index];
        let line = line.strip_suffix('\r').unwrap_or(line);
        longest = longest.max(line.len());
        out.push_str(line);
        out.push_str("\r\n");
        start = index + 1;
    }
    longest = longest.max(text.len() - start);
    out.push_str(&text[start..]);
    (out, longest)
}

/// Refuses control characters in every value that becomes a header, and checks the Message-ID's form.
fn check_headers(outgoing: &Outgoing<'_>) -> Result<(), BuildError> {
    let values = [
        ("Message-ID", outgoing.message_id),
        ("From", mailbox_name(Some(outgoing.from))),
        ("Reply-To", mailbox_name(outgoing.reply_to)),
        ("To", outgoing.to_name),
        ("Subject", outgoing.subject),
        ("List-Id", outgoing.list_id),
        ("List-Unsubscribe", outgoing.unsubscribe_url),
        ("Feedback-ID", outgoing.feedback_id),
    ];
    // A tab is the only control character a header may hold (as folding white space); anything else, above all
    // CR and LF, could end the header early.
    if let Some((header, _)) = values.iter().find(|(_, value)| value.chars().any(|c| c.is_control() && c != '\t')) {
        return Err(BuildError::ControlCharacter { header });
    }
    for (header, value) in [("Message-ID", outgoing.message_id), ("List-Unsubscribe", outgoing.unsubscribe_url)] {
        if value.len() > MAX_UNFOLDABLE {
            return Err(BuildError::TooLong { header });
        }
    }
    let id = outgoing.message_id;
    let inner = id.strip_prefix('<').and_then(|rest| rest.strip_suffix('>')).unwrap_or_default();
    let well_formed = inner.split_once('@').is_some_and(|(left, right)| !left.is_empty() && !right.is_empty())
        && inner.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b'\\'));
    if !well_formed {
        return Err(BuildError::MessageId(id.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(from: &'a Mailbox, to: &'a SubscriberEmail) -> Outgoing<'a> {
        Outgoing {
            message_id: "<1.2.abc@example.com>",
            from,
            reply_to: None,
            to_email: to,
            to_name: "Ana",
            subject: "Issue 1",
            date: "2026-12-07T08:00:00Z".parse().unwrap(),
            list_id: "Weekly <weekly.example.com>",
            unsubscribe_url: "https://example.com/u/tok",
            feedback_id: "1:weekly:tidings:example.com",
            html: "<p>Hi</p>",
            text: "Hi",
            is_test: false,
            bounce: None,
            eight_bit: true,
        }
    }

    #[test]
    fn the_same_input_builds_the_same_bytes() {
        let (from, to) =
            ("Digest <digest@example.com>".parse().unwrap(), SubscriberEmail::parse("a@b.example").unwrap());
        let first = build(&sample(&from, &to), None).unwrap();
        let second = build(&sample(&from, &to), None).unwrap();
        assert_eq!(first.bytes, second.bytes);
        let text = String::from_utf8(first.bytes).unwrap();
        assert!(text.contains("\r\nDate: Mon, 07 Dec 2026 08:00:00 +0000\r\n"), "{text}");
        assert!(text.contains("\r\nPrecedence: bulk\r\n"));
    }

    #[test]
    fn line_endings_become_crlf_once() {
        assert_eq!(crlf("a\nb\r\nc\n\nd"), ("a\r\nb\r\nc\r\n\r\nd".to_owned(), 1));
        assert_eq!(crlf("\nä\n"), ("\r\nä\r\n".to_owned(), 2));
        assert_eq!(crlf("no newline"), ("no newline".to_owned(), 10));
        assert_eq!(crlf("ab\r\nabcd\nabc").1, 4);
    }

    #[test]
    fn a_malformed_message_id_is_refused() {
        let (from, to) = ("digest@example.com".parse().unwrap(), SubscriberEmail::parse("a@b.example").unwrap());
        for id in ["1.2@example.com", "<1.2example.com>", "<@example.com>", "<a b@example.com>"] {
            let outgoing = Outgoing { message_id: id, ..sample(&from, &to) };
            assert_eq!(build(&outgoing, None).unwrap_err(), BuildError::MessageId(id.to_owned()));
        }
    }

    #[test]
    fn an_overlong_unsubscribe_url_is_refused_rather_than_breaking_the_line_limit() {
        let (from, to) = ("digest@example.com".parse().unwrap(), SubscriberEmail::parse("a@b.example").unwrap());
        let url = format!("https://example.com/{}", "a".repeat(1000));
        let outgoing = Outgoing { unsubscribe_url: &url, ..sample(&from, &to) };
        assert_eq!(build(&outgoing, None).unwrap_err(), BuildError::TooLong { header: "List-Unsubscribe" });
    }

    #[test]
    fn debug_output_shows_no_recipient_and_no_token() {
        let (from, to) = ("digest@example.com".parse().unwrap(), SubscriberEmail::parse("ana@b.example").unwrap());
        let outgoing = sample(&from, &to);
        let built = build(&outgoing, None).unwrap();
        let shown = format!("{outgoing:?} {built:?}");
        assert!(!shown.contains("ana@") && !shown.contains("Ana") && !shown.contains("tok"), "{shown}");
    }

    #[test]
    fn a_name_that_looks_like_an_encoded_word_reaches_the_reader_as_its_literal_text() {
        let (from, to) = ("digest@example.com".parse().unwrap(), SubscriberEmail::parse("eve@b.example").unwrap());
        for name in ["=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=", "Eve =?UTF-8?B?DQpCY2M6IHhAZXZpbC5leGFtcGxl?="] {
            let built = build(&Outgoing { to_name: name, ..sample(&from, &to) }, None).unwrap();
            let parsed = mail_parser::MessageParser::default().parse(&built.bytes).unwrap();
            let to = parsed.to().and_then(|to| to.first()).unwrap();
            assert_eq!(to.name(), Some(name));
            assert_eq!(to.address(), Some("eve@b.example"));
            assert!(parsed.bcc().is_none(), "a Bcc header was smuggled in");
            let raw = String::from_utf8(built.bytes).unwrap();
            let header = raw.lines().find(|line| line.starts_with("To: ")).unwrap();
            assert!(!header.contains("=?utf-8?q?Eve"), "{header}");
        }
    }

    #[test]
    fn a_notice_is_plain_auto_submitted_text_and_refuses_a_line_break_in_its_subject() {
        let from: Mailbox = "Digest <digest@example.com>".parse().unwrap();
        let to: Mailbox = "editor@example.com".parse().unwrap();
        let at: jiff::Timestamp = "2026-12-07T08:00:00Z".parse().unwrap();
        let built =
            build_notice("<n.1@example.com>", &from, &to, "Nothing is queued", "Queue one.\n", at, None, None).unwrap();
        let text = String::from_utf8(built.bytes).unwrap();
        assert!(text.contains("Auto-Submitted: auto-generated\r\n"), "{text}");
        assert!(text.contains("Content-Type: text/plain; charset=utf-8\r\n"), "{text}");
        assert!(text.contains("Queue one.\r\n"), "{text}");
        let smuggled = build_notice("<n.2@example.com>", &from, &to, "a\r\nBcc: x@example.com", "t", at, None, None);
        assert!(matches!(smuggled, Err(BuildError::ControlCharacter { header: "Subject" })));
    }
}
