//! A recipient's failure as a hosted relay's webhook reports it (a status, a reply text), classified by the
//! same table as a DSN's, so a webhook's bounce and a DSN's bounce are the same kind. Performs no I/O.

use super::classify::{Evidence, classify};
use super::{BounceKind, DsnAction, ReportForm, status};

/// What the table makes of a relay's report of one recipient: its kind, the settled status, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayVerdict {
    pub kind: BounceKind,
    pub status: Option<String>,
    pub reason: &'static str,
}

/// Classifies a failed (`DsnAction::Failed`) or delayed (`DsnAction::Delayed`) recipient from the status the
/// relay gives (an enhanced code like `5.1.1`, or a reply code like `550`), if any, and its text.
pub fn classify_relay_failure(stated: Option<&str>, text: &str, action: DsnAction) -> RelayVerdict {
    let stated = stated.map(str::trim).filter(|s| !s.is_empty());
    let settled = status::settle(stated, text, Some(action));
    let lowered = text.to_lowercase();
    let evidence = Evidence::new(ReportForm::Dsn)
        .with_action(Some(action))
        .with_status(settled.status.as_deref())
        .with_text(&lowered);
    let (kind, reason) = classify(&evidence);
    RelayVerdict { kind, status: settled.status, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relays_failures_get_the_kinds_a_dsn_would_give() {
        let kind = |status: Option<&str>, text: &str| classify_relay_failure(status, text, DsnAction::Failed).kind;
        assert_eq!(kind(Some("5.1.1"), "550 5.1.1 user unknown"), BounceKind::Hard);
        assert_eq!(kind(Some("550"), "No such user here"), BounceKind::Hard);
        assert_eq!(kind(None, "554 5.7.1 blocked for spam"), BounceKind::Policy);
        assert_eq!(kind(Some("5.2.2"), "mailbox full"), BounceKind::Soft);
        assert_eq!(classify_relay_failure(Some("4.2.2"), "", DsnAction::Delayed).kind, BounceKind::Delayed);
    }
}
