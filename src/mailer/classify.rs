//! What an SMTP reply, or the lack of one, means for a delivery: the table from the stage of the conversation,
//! the reply code and the enhanced status code (RFC 3463) to a [`SendOutcome`].
//!
//! This file owns that table and nothing else: it performs no I/O and knows nothing of lettre, so every row is
//! tested below with plain values. `smtp.rs` decides the stage and whether the connection survives.

use super::SendOutcome;

/// Where in the conversation a reply or a failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Opening the TCP connection.
    Connect,
    /// The greeting and EHLO.
    Hello,
    /// STARTTLS, or the handshake of implicit TLS.
    Tls,
    Auth,
    Mail,
    Rcpt,
    /// The DATA command, before any content.
    Data,
    /// Writing the message content, before the final dot is on its way.
    Content,
    /// After the final dot: waiting for the reply that says whether the server took the message.
    DataEnd,
}

/// The enhanced status code at the start of a reply text (`5.1.1 user unknown` -> `5.1.1`), if any.
pub(crate) fn enhanced_code(text: &str) -> Option<&str> {
    let first = text.split_ascii_whitespace().next()?;
    let mut parts = first.split('.');
    let class = parts.next()?;
    let (subject, detail) = (parts.next()?, parts.next()?);
    let number = |part: &str| (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let valid = matches!(class, "2" | "4" | "5") && number(subject) && number(detail) && parts.next().is_none();
    valid.then_some(first)
}

/// The subject and detail of an enhanced code (`5.1.1` -> `(1, 1)`); the class is taken from the reply code.
fn subject_detail(enhanced: Option<&str>) -> Option<(u16, u16)> {
    let mut parts = enhanced?.split('.').skip(1).map(|part| part.parse::<u16>().ok());
    Some((parts.next()??, parts.next()??))
}

/// "Bad sequence of commands" (RFC 5321 4.2.3): a protocol-state error, at any stage.
pub(crate) const BAD_SEQUENCE: u16 = 503;

/// Classifies a negative reply (4xx or 5xx) to a command at `stage`.
pub(crate) fn classify_reply(stage: Stage, code: u16, text: &str) -> SendOutcome {
    let reply = format!("{code} {text}").trim_end().to_owned();
    let enhanced = enhanced_code(text);
    let status = subject_detail(enhanced);
    if code == 421 {
        return SendOutcome::Unavailable { reason: format!("the relay is closing the connection: {reply}") };
    }
    if code == BAD_SEQUENCE && !matches!(stage, Stage::Connect | Stage::Hello | Stage::Tls | Stage::Auth) {
        // The relay and we disagree about where the conversation is (a reply lost or doubled on the way): the
        // connection is confused, not the sender or this message. `transaction.rs` drops the connection and the
        // delivery is tried again on a new one.
        return SendOutcome::Transient {
            code: Some(code),
            reply: format!("the relay lost track of the conversation ({}): {reply}", describe(stage)),
        };
    }
    if code == 530 {
        return SendOutcome::Fatal {
            reason: format!("the relay requires authentication (set smtp.username and the password): {reply}"),
        };
    }
    match (code / 100, stage) {
        (4, Stage::Connect | Stage::Hello | Stage::Tls | Stage::Auth) => {
            SendOutcome::Unavailable { reason: format!("{} failed for now: {reply}", describe(stage)) }
        }
        (4, _) if is_throttling(status, text) => {
            SendOutcome::Unavailable { reason: format!("the relay is throttling us: {reply}") }
        }
        (4, _) => SendOutcome::Transient { code: Some(code), reply },
        (5, Stage::Connect | Stage::Hello | Stage::Tls | Stage::Auth) => {
            SendOutcome::Fatal { reason: format!("{} failed: {reply}", describe(stage)) }
        }
        (5, _) => permanent(stage, code, enhanced, status, reply),
        // Positive replies never get here; anything else is a broken server, which a later attempt may not meet.
        _ => SendOutcome::Transient { code: Some(code), reply },
    }
}

/// A 5xx reply during the mail transaction.
fn permanent(
    stage: Stage,
    code: u16,
    enhanced: Option<&str>,
    status: Option<(u16, u16)>,
    reply: String,
) -> SendOutcome {
    let bounce = |enhanced: &str| SendOutcome::Bounce { code, enhanced: enhanced.to_owned(), reply: reply.clone() };
    match (stage, status) {
        (_, Some((7, _))) => SendOutcome::Policy { code, reply },
        // The message is too big, or its parameters (SMTPUTF8, 8BITMIME) are refused: only this message suffers.
        (Stage::Mail, Some((3, 4) | (5, _) | (6, _))) => SendOutcome::Rejected { code, reply },
        // Anything else refused at MAIL concerns our sender address, so every other message would fail too.
        (Stage::Mail, _) => SendOutcome::Fatal { reason: format!("the relay refuses the sender address: {reply}") },
        // 5.1.7 and 5.1.8 are about the sender's address, not the recipient's: suppressing the recipient would
        // punish the wrong party.
        (_, Some((1, 7 | 8))) => {
            SendOutcome::Fatal { reason: format!("the relay refuses the sender address: {reply}") }
        }
        (_, Some((1, _) | (2, 1))) => bounce(enhanced.unwrap_or_default()),
        // Mailbox full: RFC 3463 calls X.2.2 "a persistent transient error", and the owner may make room, so it is
        // retried on the bounded retry schedule rather than failed or suppressed. 552 without an enhanced code is
        // RFC 5321's "exceeded storage allocation", the same thing.
        (_, Some((2, 2))) => SendOutcome::Transient { code: Some(code), reply },
        (_, None) if code == 552 => SendOutcome::Transient { code: Some(code), reply },
        (Stage::Rcpt, None) if matches!(code, 550 | 551 | 553) => bounce(""),
        _ => SendOutcome::Rejected { code, reply },
    }
}

/// A 4xx reply that says "slow down" about the relay as a whole rather than about this message.
fn is_throttling(status: Option<(u16, u16)>, text: &str) -> bool {
    // X.3.1 (mail system full), X.3.2 (not accepting messages) and X.4.5 (congestion) concern the relay as a
    // whole. X.3.0 and X.7.x do not on their own: a 4.7.1 is usually greylisting of one recipient, which a
    // retry of that delivery handles; the wording tells rate limits apart.
    if matches!(status, Some((3, 1 | 2) | (4, 5))) {
        return true;
    }
    let text = text.to_ascii_lowercase();
    ["rate limit", "ratelimit", "rate-limit", "throttl", "too many connections", "too many concurrent", "slow down"]
        .iter()
        .any(|phrase| text.contains(phrase))
}

/// Classifies a failure that is not a reply: the connection was lost, timed out or could not be opened.
pub(crate) fn classify_failure(stage: Stage, what: &str) -> SendOutcome {
    match stage {
        Stage::Connect | Stage::Hello | Stage::Auth => {
            SendOutcome::Unavailable { reason: format!("{} failed: {what}", describe(stage)) }
        }
        Stage::Tls => SendOutcome::Fatal { reason: format!("{} failed: {what}", describe(stage)) },
        Stage::Mail | Stage::Rcpt | Stage::Data | Stage::Content => {
            SendOutcome::Transient { code: None, reply: format!("{} failed: {what}", describe(stage)) }
        }
        Stage::DataEnd => SendOutcome::Ambiguous {
            reason: format!("the connection was lost after the whole message was sent, before the reply: {what}"),
        },
    }
}

fn describe(stage: Stage) -> &'static str {
    match stage {
        Stage::Connect => "connecting to the relay",
        Stage::Hello => "the greeting or EHLO",
        Stage::Tls => "TLS with the relay",
        Stage::Auth => "authentication",
        Stage::Mail => "MAIL FROM",
        Stage::Rcpt => "RCPT TO",
        Stage::Data => "DATA",
        Stage::Content => "sending the message content",
        Stage::DataEnd => "the reply to the message",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stage::*;

    fn kind(stage: Stage, code: u16, text: &str) -> &'static str {
        classify_reply(stage, code, text).kind()
    }

    #[test]
    fn enhanced_codes_are_found_only_at_the_start_of_the_text() {
        assert_eq!(enhanced_code("5.1.1 <a@b> user unknown"), Some("5.1.1"));
        assert_eq!(enhanced_code("4.7.0 try later"), Some("4.7.0"));
        assert_eq!(enhanced_code("5.1.10 null MX"), Some("5.1.10"));
        assert_eq!(enhanced_code("user unknown 5.1.1"), None);
        assert_eq!(enhanced_code("3.1.1 nonsense"), None);
        assert_eq!(enhanced_code("5.1 short"), None);
        assert_eq!(enhanced_code(""), None);
    }

    #[test]
    fn recipient_replies_follow_the_table() {
        assert_eq!(kind(Rcpt, 451, "4.3.0 try again"), "transient");
        assert_eq!(kind(Rcpt, 450, "4.7.1 greylisted, try again later"), "transient");
        assert_eq!(kind(Rcpt, 451, "4.3.2 system not accepting network messages"), "unavailable");
        assert_eq!(kind(Rcpt, 451, "4.7.0 rate limit exceeded"), "unavailable");
        assert_eq!(kind(Rcpt, 451, "4.2.0 greylisted for a while"), "transient");
        assert_eq!(kind(Rcpt, 450, "mailbox busy"), "transient");
        assert_eq!(kind(Rcpt, 452, "4.2.2 mailbox full"), "transient");
        assert_eq!(kind(Rcpt, 550, "5.2.2 mailbox full"), "transient");
        assert_eq!(kind(Rcpt, 552, "mailbox full"), "transient");
        assert_eq!(kind(Rcpt, 550, "5.1.1 user unknown"), "bounce");
        assert_eq!(kind(Rcpt, 550, "5.1.10 null MX"), "bounce");
        assert_eq!(kind(Rcpt, 550, "5.2.1 mailbox disabled"), "bounce");
        assert_eq!(kind(Rcpt, 550, "no such user"), "bounce");
        assert_eq!(kind(Rcpt, 553, "mailbox name not allowed"), "bounce");
        assert_eq!(kind(Rcpt, 554, "transaction failed"), "rejected");
        assert_eq!(kind(Rcpt, 550, "5.4.1 access denied"), "rejected");
        assert_eq!(kind(Rcpt, 550, "5.7.1 relaying denied"), "policy");
        assert_eq!(kind(Rcpt, 550, "5.1.8 bad sender domain"), "fatal");
        assert_eq!(kind(Rcpt, 421, "4.4.2 timeout"), "unavailable");
        let bounce = classify_reply(Rcpt, 550, "no such user");
        assert_eq!(
            bounce,
            SendOutcome::Bounce { code: 550, enhanced: String::new(), reply: "550 no such user".into() }
        );
    }

    #[test]
    fn replies_to_the_final_dot_follow_the_table() {
        assert_eq!(kind(DataEnd, 554, "5.7.1 message looks like spam"), "policy");
        assert_eq!(kind(DataEnd, 552, "5.3.4 message too big"), "rejected");
        assert_eq!(kind(DataEnd, 550, "5.6.0 bad content"), "rejected");
        assert_eq!(kind(DataEnd, 550, "message refused"), "rejected");
        assert_eq!(kind(DataEnd, 550, "5.1.1 user unknown"), "bounce");
        assert_eq!(kind(DataEnd, 451, "4.7.1 rate limit exceeded"), "unavailable");
        assert_eq!(kind(DataEnd, 451, "too many messages, slow down"), "unavailable");
        assert_eq!(kind(DataEnd, 451, "local error in processing"), "transient");
        assert_eq!(kind(DataEnd, 452, "4.5.3 too many recipients"), "transient");
    }

    #[test]
    fn sender_and_session_replies_pause_or_back_off() {
        assert_eq!(kind(Mail, 553, "5.7.1 sender not owned by user"), "policy");
        assert_eq!(kind(Mail, 550, "5.1.7 bad sender"), "fatal");
        assert_eq!(kind(Mail, 552, "5.3.4 too big"), "rejected");
        assert_eq!(kind(Mail, 555, "5.5.4 unsupported parameter"), "rejected");
        assert_eq!(kind(Mail, 530, "5.7.0 authentication required"), "fatal");
        assert_eq!(kind(Hello, 554, "no SMTP service here"), "fatal");
        assert_eq!(kind(Hello, 421, "4.3.2 service not available"), "unavailable");
        assert_eq!(kind(Tls, 454, "4.7.0 TLS not available"), "unavailable");
        assert_eq!(kind(Auth, 535, "5.7.8 bad credentials"), "fatal");
        assert_eq!(kind(Auth, 454, "4.7.0 temporary authentication failure"), "unavailable");
        assert_eq!(kind(Data, 554, "5.5.1 no valid recipients"), "rejected");
        assert_eq!(kind(Data, 451, "4.3.0 try later"), "transient");
        assert_eq!(kind(Data, 451, "4.4.5 system congestion"), "unavailable");
    }

    #[test]
    fn a_bad_sequence_reply_at_any_stage_is_retried_and_never_pauses_the_issue() {
        for stage in [Mail, Rcpt, Data] {
            assert_eq!(kind(stage, 503, "5.5.1 bad sequence of commands"), "transient", "{stage:?}");
        }
        assert_eq!(classify_reply(Mail, 503, "bad sequence").code(), Some(503));
    }

    #[test]
    fn lost_connections_are_retried_before_the_final_dot_and_ambiguous_after_it() {
        assert_eq!(classify_failure(Connect, "refused").kind(), "unavailable");
        assert_eq!(classify_failure(Hello, "reset").kind(), "unavailable");
        assert_eq!(classify_failure(Tls, "bad certificate").kind(), "fatal");
        for stage in [Mail, Rcpt, Data, Content] {
            assert_eq!(
                classify_failure(stage, "reset"),
                SendOutcome::Transient { code: None, reply: format!("{} failed: reset", describe(stage)) }
            );
        }
        assert_eq!(classify_failure(DataEnd, "reset").kind(), "ambiguous");
    }
}
