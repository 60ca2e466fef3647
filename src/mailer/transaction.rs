//! One mail transaction on an open connection: MAIL, RCPT, DATA, the engine's [`Gate`], the content and the
//! final dot, each command under `command_timeout`, and what the outcome means for the connection.
//!
//! We drive the transaction ourselves instead of calling lettre's `send`, which aborts the connection on any
//! error and cannot say whether a lost connection lost the message before the final dot (retry) or after it
//! (ambiguous). The connection is kept after a success and after a refusal of this message alone (RSET ends the
//! transaction); it is closed politely after a refusal of the relay or the sender, and dropped when lost. This
//! file performs no setup (`connect.rs`) and no classification of its own (`classify.rs`).

use std::future::Future;
use std::time::Duration;

use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::commands::{Data, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{Extension, MailBodyParameter, MailParameter, ServerInfo};
use lettre::transport::smtp::response::Response;

use super::classify::{BAD_SEQUENCE, Stage, classify_failure, classify_reply};
use super::{BuiltMessage, Gate, SendOutcome};

/// A failed step: its outcome, and whether the server answered it with the connection still in step (any
/// reply but 421, and 503 "bad sequence of commands", after which the connection is confused), so that the
/// conversation can go on.
pub(crate) struct Failed {
    pub outcome: SendOutcome,
    pub replied: bool,
}

/// Runs one command (or lettre step) under `limit` and classifies its failure.
pub(crate) async fn step<T>(
    stage: Stage,
    limit: Duration,
    future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, Failed> {
    match tokio::time::timeout(limit, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(failed(stage, &error)),
        Err(_) => {
            Err(Failed { outcome: classify_failure(stage, &format!("no reply within {limit:?}")), replied: false })
        }
    }
}

fn failed(stage: Stage, error: &lettre::transport::smtp::Error) -> Failed {
    match error.status() {
        Some(code) => {
            let code = u16::from(code);
            // lettre keeps the reply's text as the error's source.
            let text = std::error::Error::source(error).map(ToString::to_string).unwrap_or_default();
            Failed { outcome: classify_reply(stage, code, &text), replied: code != 421 && code != BAD_SEQUENCE }
        }
        None => Failed { outcome: classify_failure(stage, &error.to_string()), replied: false },
    }
}

/// What to do with the connection after a transaction.
pub(crate) enum Next {
    Keep,
    Quit,
    Drop,
}

/// The outcome of one transaction and what becomes of the connection.
pub(crate) struct Attempt {
    pub outcome: SendOutcome,
    pub next: Next,
    /// MAIL, the first command of the transaction, met a closed connection: a kept connection had gone stale.
    pub stale: bool,
}

impl Attempt {
    fn new(outcome: SendOutcome, next: Next) -> Self {
        Self { outcome, next, stale: false }
    }
}

/// One mail transaction: MAIL, RCPT for each recipient, DATA, then the content and the final dot. With
/// `pipelining` (the relay offers it), MAIL, RCPT and DATA go in one write and their replies are read in order.
pub(crate) async fn transaction(
    connection: &mut AsyncSmtpConnection,
    message: &BuiltMessage,
    limit: Duration,
    gate: &mut Gate<'_>,
    pipelining: bool,
) -> Attempt {
    let envelope = &message.envelope;
    let parameters = match mail_parameters(connection.server_info(), message) {
        Ok(parameters) => parameters,
        Err(outcome) => return Attempt::new(outcome, Next::Keep),
    };
    let mail = Mail::new(envelope.from().cloned(), parameters);
    if pipelining {
        if let Err(attempt) = pipelined_envelope(connection, mail, message, limit).await {
            return attempt;
        }
        return gated_content(connection, message, limit, gate).await;
    }
    if let Err(failed) = step(Stage::Mail, limit, connection.command(mail)).await {
        let stale = !failed.replied;
        return Attempt { stale, ..abandon(connection, failed, limit).await };
    }
    for recipient in envelope.to() {
        let rcpt = Rcpt::new(recipient.clone(), vec![]);
        if let Err(failed) = step(Stage::Rcpt, limit, connection.command(rcpt)).await {
            return abandon(connection, failed, limit).await;
        }
    }
    if let Err(failed) = step(Stage::Data, limit, connection.command(Data)).await {
        return abandon(connection, failed, limit).await;
    }
    gated_content(connection, message, limit, gate).await
}

/// MAIL, RCPT and DATA in one write (RFC 2920), then their replies in order. `Ok` when DATA was answered 354
/// and the relay waits for the content. Otherwise the first refusal is the outcome, as it would be one command
/// at a time: once every command has its reply and no content is awaited, the transaction ends as a refused
/// one does (RSET, QUIT or drop); a reply missing, or DATA accepted after a refusal, drops the connection.
async fn pipelined_envelope(
    connection: &mut AsyncSmtpConnection,
    mail: Mail,
    message: &BuiltMessage,
    limit: Duration,
) -> Result<(), Attempt> {
    let recipients = message.envelope.to();
    let mut commands = mail.to_string();
    for recipient in recipients {
        commands.push_str(&Rcpt::new(recipient.clone(), vec![]).to_string());
    }
    commands.push_str(&Data.to_string());
    let stages = std::iter::once(Stage::Mail).chain(recipients.iter().map(|_| Stage::Rcpt));
    // The first refusal, and whether it was MAIL's (a MAIL that met a dead or confused connection is stale).
    let mut refused: Option<(Failed, bool)> = None;
    for (index, stage) in stages.enumerate() {
        let reply = if index == 0 {
            step(stage, limit, connection.command(Verbatim(&commands))).await
        } else {
            step(stage, limit, connection.read_response()).await
        };
        if let Err(failed) = reply {
            let lost = error_without_reply(&failed);
            // After a refusal, later commands are refused for it (503, 554): the first one counts.
            let first = refused.take().unwrap_or((failed, index == 0));
            if lost {
                return Err(dropped(first));
            }
            refused = Some(first);
        }
    }
    match (step(Stage::Data, limit, connection.read_response()).await, refused) {
        (Ok(_), None) => Ok(()),
        // DATA accepted after a refusal: the relay waits for content that must not come.
        (Ok(_), Some((failed, _))) => Err(Attempt::new(failed.outcome, Next::Drop)),
        (Err(failed), refused) if error_without_reply(&failed) => Err(dropped(refused.unwrap_or((failed, false)))),
        (Err(failed), refused) => {
            let (first, at_mail) = refused.unwrap_or((failed, false));
            let stale = at_mail && !first.replied;
            Err(Attempt { stale, ..abandon(connection, first, limit).await })
        }
    }
}

/// The end of a pipelined transaction whose connection is gone or confused (a reply never came): the first
/// refusal, and whether it was MAIL's, say what happened.
fn dropped((first, at_mail): (Failed, bool)) -> Attempt {
    Attempt { stale: at_mail && !first.replied, ..Attempt::new(first.outcome, Next::Drop) }
}

/// Whether a failed step got no reply the conversation can go on from: nothing arrived (a timeout, a lost
/// connection), or 421. A 503 after an earlier refusal is the expected answer in a pipeline, so it counts as a
/// reply here; as the first refusal it is still the outcome, with its `replied` flag.
fn error_without_reply(failed: &Failed) -> bool {
    !failed.replied && !matches!(failed.outcome.code(), Some(code) if code != 421)
}

/// Awaits the engine's gate, then writes the content and the final dot.
async fn gated_content(
    connection: &mut AsyncSmtpConnection,
    message: &BuiltMessage,
    limit: Duration,
    gate: &mut Gate<'_>,
) -> Attempt {
    // The relay waits for the content; the engine may still withhold it. Without the final dot the relay
    // discards the transaction when the connection drops, so nothing was delivered.
    if let Err(reason) = gate.pass().await {
        let reply = format!("withheld before the final dot: {reason}");
        return Attempt::new(SendOutcome::Transient { code: None, reply }, Next::Drop);
    }
    content(connection, message, limit).await
}

/// Writes the content and the final dot, and reads the verdict.
///
/// A UTF-8 message (every message Tidings builds) is dot-stuffed here in one vectorised pass and written with the
/// final dot as one "command": lettre's own content path stuffs byte by byte and cost about a seventh of the
/// daemon's CPU. A failure then cannot tell a message cut off mid-content from one whose dot was delivered, so
/// it counts as `Ambiguous`: a resend is always safe, and a relay that drops connections mid-message is rare.
/// Other bytes take lettre's path, which can tell the two apart.
async fn content(connection: &mut AsyncSmtpConnection, message: &BuiltMessage, limit: Duration) -> Attempt {
    // The final dot follows CRLF; the message's own last CRLF is that one, so the server receives exactly `bytes`.
    let body = message.bytes.strip_suffix(b"\r\n").unwrap_or(&message.bytes);
    let (result, stage) = match std::str::from_utf8(body) {
        Ok(text) => {
            let stuffed = stuff(text);
            (tokio::time::timeout(limit, connection.command(Verbatim(&stuffed))).await, Stage::DataEnd)
        }
        Err(_) => {
            let mut written = false;
            let content = Content { body: Some(body), written: &mut written };
            let result = tokio::time::timeout(limit, connection.message_iter(content)).await;
            // Until the whole content is written the server cannot hold a complete message, so a failure is a
            // plain retry; from then on (the final dot in flight or delivered) it may have taken it.
            (result, if written { Stage::DataEnd } else { Stage::Content })
        }
    };
    match result {
        Ok(Ok(response)) if u16::from(response.code()) / 100 == 2 => {
            Attempt::new(SendOutcome::Accepted { reply: reply_text(&response) }, Next::Keep)
        }
        Ok(Ok(response)) => {
            let reason = format!("unexpected reply to the final dot: {}", reply_text(&response));
            Attempt::new(SendOutcome::Ambiguous { reason }, Next::Drop)
        }
        // The transaction is over whatever the reply said, so no RSET is needed to keep the connection.
        Ok(Err(error)) => {
            let failed = failed(stage, &error);
            let next = if failed.replied && about_this_message(&failed.outcome) { Next::Keep } else { after(&failed) };
            Attempt::new(failed.outcome, next)
        }
        Err(_) => Attempt::new(classify_failure(stage, &format!("no reply within {limit:?}")), Next::Drop),
    }
}

/// Message content made transparent for SMTP (RFC 5321 4.5.2: a line starting with "." gets another one) and
/// ended with CRLF "." CRLF. Line ends are found with the standard library's vectorised byte search.
fn stuff(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    if text.starts_with('.') {
        out.push('.');
    }
    let bytes = text.as_bytes();
    let mut start = 0;
    for (at, _) in text.match_indices('\n') {
        if bytes.get(at + 1) == Some(&b'.') {
            out.push_str(&text[start..=at]);
            out.push('.');
            start = at + 1;
        }
    }
    out.push_str(&text[start..]);
    out.push_str("\r\n.\r\n");
    out
}

/// Text lettre writes as it is (its `command` writes whatever `Display` gives).
struct Verbatim<'a>(&'a str);

impl std::fmt::Display for Verbatim<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Ends a transaction the server refused before the content: after a refusal of this message alone, RSET keeps
/// the connection; after a refusal of the relay or the sender it ends politely; a lost one is dropped.
async fn abandon(connection: &mut AsyncSmtpConnection, failed: Failed, limit: Duration) -> Attempt {
    let next = match failed.replied && about_this_message(&failed.outcome) {
        true if step(Stage::Mail, limit, connection.command(Rset)).await.is_ok() => Next::Keep,
        true => Next::Drop,
        false => after(&failed),
    };
    Attempt::new(failed.outcome, next)
}

/// Whether a refusal concerns this message only, so the connection is as good as before.
fn about_this_message(outcome: &SendOutcome) -> bool {
    matches!(outcome, SendOutcome::Transient { .. } | SendOutcome::Bounce { .. } | SendOutcome::Rejected { .. })
}

/// A connection the server still talks on ends with QUIT (it is throttling us, or the issue will pause);
/// a lost one is simply dropped.
fn after(failed: &Failed) -> Next {
    if failed.replied { Next::Quit } else { Next::Drop }
}

pub(crate) async fn quit(mut connection: Box<AsyncSmtpConnection>, limit: Duration) {
    // The server may already be gone; the connection is dropped either way.
    let _ = tokio::time::timeout(limit, connection.quit()).await;
}

/// The MAIL parameters this message needs, as lettre's own `send` would choose them, or the refusal when the
/// relay lacks an extension the message cannot do without (decided here; nothing is sent).
fn mail_parameters(server: &ServerInfo, message: &BuiltMessage) -> Result<Vec<MailParameter>, SendOutcome> {
    let mut parameters = Vec::new();
    let envelope = &message.envelope;
    if envelope.from().into_iter().chain(envelope.to()).any(|address| !AsRef::<str>::as_ref(address).is_ascii()) {
        if !server.supports_feature(Extension::SmtpUtfEight) {
            let reply = "553 5.6.7 the relay does not offer SMTPUTF8, which this address needs (refused by Tidings)";
            return Err(SendOutcome::Rejected { code: 553, reply: reply.to_owned() });
        }
        parameters.push(MailParameter::SmtpUtfEight);
    }
    if !message.bytes.is_ascii() {
        if !server.supports_feature(Extension::EightBitMime) {
            // Transient: the sender now knows the relay's limits, and the retry is built in quoted-printable.
            let reply = "454 4.6.3 the relay does not offer 8BITMIME: the message is sent again in 7 bits";
            return Err(SendOutcome::Transient { code: Some(454), reply: reply.to_owned() });
        }
        parameters.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    Ok(parameters)
}

fn reply_text(response: &Response) -> String {
    let code = u16::from(response.code());
    let lines: Vec<&str> = response.message().collect();
    format!("{code} {}", lines.join(" ")).trim_end().to_owned()
}

/// The message content for lettre's `message_iter`, which writes each item before asking for the next: when it
/// asks past the end, everything has been written, and `written` records it.
struct Content<'a> {
    body: Option<&'a [u8]>,
    written: &'a mut bool,
}

impl<'a> Iterator for Content<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let body = self.body.take();
        if body.is_none() {
            *self.written = true;
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_is_dot_stuffed_and_ends_with_the_final_dot() {
        assert_eq!(stuff(".a\r\nb\r\n.c\r\n..d"), "..a\r\nb\r\n..c\r\n...d\r\n.\r\n");
        assert_eq!(stuff("plain"), "plain\r\n.\r\n");
        assert_eq!(Verbatim("x.y").to_string(), "x.y");
    }

    #[test]
    fn the_content_iterator_says_when_everything_was_handed_over() {
        let mut written = false;
        let mut content = Content { body: Some(&b"abc"[..]), written: &mut written };
        assert_eq!(content.next(), Some(&b"abc"[..]));
        assert_eq!(content.next(), None);
        assert!(written);
    }
}
