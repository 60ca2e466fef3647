//! What `tidings doctor` learns from opening one connection to the relay without sending anything: how far the
//! conversation got (TCP, EHLO, TLS, AUTH), whether it was encrypted and authenticated, and why it stopped.
//!
//! The conversation itself is `connect.rs`'s, the same code every sender runs; this file only names its steps
//! for people. It never sends MAIL, so no message can leave.

use super::SendOutcome;
use super::classify::Stage;

/// The steps of opening a connection, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProbeStep {
    /// The TCP connection.
    Connect,
    /// The greeting and EHLO.
    Hello,
    /// STARTTLS, or the handshake of TLS from the first byte, with the certificate checked for the host name.
    Tls,
    /// AUTH with the configured credentials.
    Auth,
}

impl ProbeStep {
    pub(crate) fn from_stage(stage: Stage) -> Self {
        match stage {
            Stage::Connect => Self::Connect,
            Stage::Hello => Self::Hello,
            Stage::Tls => Self::Tls,
            _ => Self::Auth,
        }
    }
}

/// A connection that was opened, secured and authenticated as configured, then closed with QUIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayProbe {
    /// Whether TLS protected the conversation (STARTTLS or TLS from the first byte).
    pub encrypted: bool,
    /// Whether AUTH succeeded (false: no credentials are configured).
    pub authenticated: bool,
}

/// Why a probe stopped: the step that failed and the sender's own outcome (its reason names the relay).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeFailure {
    pub step: ProbeStep,
    pub outcome: SendOutcome,
}
