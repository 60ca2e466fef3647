//! The outgoing-mail layer: builds each message ([`build`]), signs it with DKIM ([`DkimSigner`]), and hands it
//! to a transport ([`Sender`]: one SMTP connection, or an outbox folder), which answers with a classified
//! [`SendOutcome`] that decides the delivery's next state.
//!
//! The delivery engine owns the loop, the database and the clock; this module owns one message and one
//! connection at a time. It reads no clock (dates and timeouts come in as parameters), touches no database,
//! and never logs an email address, a name, a token or a password: spans carry the Message-ID's delivery part
//! and events carry reply codes, never reply texts (a server may quote the recipient's address in them).
//! Only this module uses lettre's transport side. It drives each SMTP transaction itself (`transaction.rs`) so
//! that it can tell a connection lost before the final dot (retry) from one lost after it (ambiguous).
//!
//! Files: `message.rs` builds, `dkim.rs` signs, `connect.rs` opens and secures a connection, `transaction.rs`
//! sends one message over it, `classify.rs` maps replies to outcomes, `smtp.rs` ties those into [`SmtpSender`],
//! `probe.rs` names the steps of a connection opened
//! by `tidings doctor`, and `outbox.rs` is the transport that writes files instead.

mod classify;
mod connect;
mod dkim;
mod gate;
mod message;
mod outbox;
mod probe;
mod smtp;
mod transaction;

use std::fmt;

pub use dkim::{DkimAlgorithm, DkimError, DkimSigner};
pub use gate::Gate;
pub use message::{BounceTrace, BuildError, BuiltMessage, Outgoing, TRACE_HEADER, build, build_notice};
pub use outbox::{OutboxError, OutboxSender};
pub use probe::{ProbeFailure, ProbeStep, RelayProbe};
pub use smtp::{SmtpConfig, SmtpConfigError, SmtpSender, SmtpTls};

/// What became of one message handed to a transport. Replies are the server's text verbatim (code first):
/// store them with the delivery, but do not log them, as they may contain the recipient's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The server took responsibility for the message: a 2xx reply to the final dot.
    Accepted { reply: String },
    /// A 4xx reply about this message, or a network error before the final dot: retry later. `code` is `None`
    /// for a network error.
    Transient { code: Option<u16>, reply: String },
    /// The recipient does not exist (5.1.x or 5.2.1; 550, 551 or 553 on RCPT without an enhanced code): a hard
    /// bounce. Suppress the address and never retry. `enhanced` is empty when the server gave no enhanced code.
    Bounce { code: u16, enhanced: String, reply: String },
    /// Another permanent refusal of this message (too big, bad content, ...): failed, not retried, the address
    /// is not suppressed.
    Rejected { code: u16, reply: String },
    /// A 5.7.x policy refusal (spam, reputation, sender not allowed): pause the whole issue with this reply
    /// as the reason instead of burning through the list.
    Policy { code: u16, reply: String },
    /// The relay cannot take mail now: connection refused or timed out, 421 at any point, or throttling
    /// (4.7.x, "too many connections"). Open the circuit and back off; the message was not accepted.
    Unavailable { reason: String },
    /// A configuration-level failure that retrying will not fix: TLS failed, STARTTLS is missing while
    /// required, authentication failed, the relay refuses our sender. Pause the issue with this reason.
    Fatal { reason: String },
    /// The connection was lost after the whole message and the final dot were written but before the reply:
    /// the server may or may not have accepted it. Record it as ambiguous; do not send it again blindly.
    Ambiguous { reason: String },
}

impl SendOutcome {
    /// A short name for logs and metrics: `accepted`, `transient`, `bounce`, `rejected`, `policy`,
    /// `unavailable`, `fatal` or `ambiguous`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Accepted { .. } => "accepted",
            Self::Transient { .. } => "transient",
            Self::Bounce { .. } => "bounce",
            Self::Rejected { .. } => "rejected",
            Self::Policy { .. } => "policy",
            Self::Unavailable { .. } => "unavailable",
            Self::Fatal { .. } => "fatal",
            Self::Ambiguous { .. } => "ambiguous",
        }
    }

    /// The SMTP reply code, when the outcome came from one.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Transient { code, .. } => *code,
            Self::Bounce { code, .. } | Self::Rejected { code, .. } | Self::Policy { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_accepted(&self) -> bool {
        matches!(self, Self::Accepted { .. })
    }
}

/// Shows the kind and the code only, never the reply text, so that an outcome can go into a log line.
impl fmt::Display for SendOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self, self.code()) {
            (Self::Bounce { enhanced, code, .. }, _) if !enhanced.is_empty() => write!(f, "bounce ({code} {enhanced})"),
            (_, Some(code)) => write!(f, "{} ({code})", self.kind()),
            (_, None) => f.write_str(self.kind()),
        }
    }
}

/// What the delivery engine holds per task: one SMTP connection or the outbox folder, chosen by
/// `transport.kind`.
#[derive(Debug)]
#[expect(clippy::large_enum_variant, reason = "one per connection, a handful per daemon: boxing would save nothing")]
pub enum Sender {
    Smtp(SmtpSender),
    Outbox(OutboxSender),
}

impl Sender {
    /// Sends one message and classifies the result; never panics and never returns an error: every failure is
    /// an outcome.
    pub async fn send(&mut self, message: &BuiltMessage) -> SendOutcome {
        self.send_gated(message, &mut Gate::open()).await
    }

    /// Sends one message, awaiting `gate` just before the final dot (see [`Gate`]).
    pub async fn send_gated(&mut self, message: &BuiltMessage, gate: &mut Gate<'_>) -> SendOutcome {
        match self {
            Self::Smtp(sender) => sender.send_gated(message, gate).await,
            Self::Outbox(sender) => sender.send_gated(message, gate).await,
        }
    }

    /// Whether this transport takes 8-bit bodies (the outbox always does; a relay when it offers 8BITMIME).
    pub fn accepts_8bit(&self) -> bool {
        match self {
            Self::Smtp(sender) => sender.accepts_8bit(),
            Self::Outbox(_) => true,
        }
    }

    /// Ends the conversation politely (QUIT); the next `send` opens a new connection.
    pub async fn close(&mut self) {
        match self {
            Self::Smtp(sender) => sender.close().await,
            Self::Outbox(_) => {}
        }
    }
}

/// The part of a Message-ID before the `@`, without the angle bracket: the delivery's own id, which logs may
/// carry (the domain part is the sender's and adds nothing).
fn delivery_part(message_id: &str) -> &str {
    let id = message_id.trim_start_matches('<');
    id.split_once('@').map_or(id, |(local, _)| local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_display_of_an_outcome_never_shows_the_reply_text() {
        let bounce = SendOutcome::Bounce {
            code: 550,
            enhanced: "5.1.1".into(),
            reply: "550 5.1.1 <ana@example.com> unknown".into(),
        };
        assert_eq!(bounce.to_string(), "bounce (550 5.1.1)");
        let transient = SendOutcome::Transient { code: None, reply: "network error: reset".into() };
        assert_eq!(transient.to_string(), "transient");
    }

    #[test]
    fn senders_and_their_sends_can_move_between_tasks() {
        fn is_send<T: Send>(_: &T) {}
        fn is_shared<T: Send + Sync>() {}
        is_shared::<DkimSigner>();
        is_shared::<BuiltMessage>();
        // Type-checked, never run: the delivery engine awaits these inside spawned tasks.
        let _ = |sender: &mut Sender, message: &BuiltMessage| is_send(&sender.send(message));
        let _ = |sender: &mut Sender, message: &BuiltMessage, gate: &mut Gate<'_>| {
            is_send(&sender.send_gated(message, gate))
        };
        let _ = |sender: &mut Sender| is_send(&sender.close());
    }

    #[test]
    fn the_delivery_part_is_the_message_id_before_the_at() {
        assert_eq!(delivery_part("<122.4711.k3j2@example.com>"), "122.4711.k3j2");
        assert_eq!(delivery_part("odd"), "odd");
    }
}
