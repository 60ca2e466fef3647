//! The classification policy: what a report says about one recipient, as a [`BounceKind`]. Two tables, both
//! here: `RULES` (first matching row wins) and `INFERRED` (the phrases that give a status to a bounce that states
//! none, or refine a generic `X.Y.0` one). Each row is tested below; a change of policy is a change of one row.
//!
//! | #  | when                                                          | kind         |
//! |----|---------------------------------------------------------------|--------------|
//! | 1  | ARF report, Feedback-Type `auth-failure` (RFC 6591)           | policy       |
//! | 2  | ARF report, Feedback-Type `not-spam`                          | unclassified |
//! | 3  | ARF report, Feedback-Type `virus`                             | policy       |
//! | 4  | any other ARF report (`abuse`, `fraud`, `opt-out`, `other`)   | complaint    |
//! | 5  | an auto-reply (RFC 3834 headers, vacation subject, challenge) | auto-reply   |
//! | 6  | Action `delayed`                                              | delayed      |
//! | 7  | Action `delivered`, `relayed` or `expanded`                   | delivered    |
//! | 8  | status 2.x.x                                                  | delivered    |
//! | 9  | status X.1.7 or X.1.8 (our sender address)                    | policy       |
//! | 10 | status 5.7.x (blocked, spam, authentication, DMARC)           | policy       |
//! | 11 | status 5.1.x (unknown user, unknown domain, bad syntax)       | hard         |
//! | 12 | status 5.2.1 (mailbox disabled)                               | hard         |
//! | 13 | status 5.2.3 or 5.3.4 (message too large)                     | policy       |
//! | 14 | status 5.6.x (content refused)                                | policy       |
//! | 15 | status 5.4.4 and "host or domain name not found"              | hard         |
//! | 16 | status 5.2.x (mailbox full, over quota)                       | soft         |
//! | 17 | status 5.4.x (routing)                                        | soft         |
//! | 18 | a DSN with no Action and status 4.x.x                         | delayed      |
//! | 19 | the text says spam, blocked, blacklisted, reputation, DMARC   | policy       |
//! | 20 | status 4.4.x with Action failed (routing, expired)            | soft         |
//! | 21 | status 4.x.x with Action failed                               | soft         |
//! | 22 | any other 5.x.x                                               | soft         |
//! | 23 | anything else (no status, no known phrase)                    | unclassified |
//!
//! A bounce without a status gets one from its text: an enhanced code anywhere (`#5.1.1`, `550-5.1.1`), else the
//! reply code's class (`550` -> 5, `452` -> 4; 5 when there is none) with the subject and detail of the first
//! matching phrase in `INFERRED` ("user unknown" -> X.1.1, "mailbox full" -> X.2.2, "blocked" -> X.7.1, ...).
//!
//! Auto-replies are recognised (`recognise.rs`) before any phrase is looked at, so a vacation reply saying "my
//! mailbox is full" is an auto-reply, never a bounce. Performs no I/O; never panics.

use super::{BounceKind, DsnAction, ReportForm};
use BounceKind::*;
use DsnAction::{Expanded, Relayed};
use Test::*;

/// What the table looks at for one recipient. `text` is the diagnostic text, lowercased.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence<'a> {
    form: ReportForm,
    feedback_type: &'a str,
    action: Option<DsnAction>,
    status: Option<&'a str>,
    text: &'a str,
}

impl<'a> Evidence<'a> {
    pub(crate) fn new(form: ReportForm) -> Self {
        Evidence { form, feedback_type: "", action: None, status: None, text: "" }
    }
    pub(crate) fn with_feedback(self, feedback_type: &'a str) -> Self {
        Evidence { feedback_type, ..self }
    }
    pub(crate) fn with_action(self, action: Option<DsnAction>) -> Self {
        Evidence { action, ..self }
    }
    pub(crate) fn with_status(self, status: Option<&'a str>) -> Self {
        Evidence { status, ..self }
    }
    pub(crate) fn with_text(self, text: &'a str) -> Self {
        Evidence { text, ..self }
    }
}

/// One condition of a row; a row matches when all of its conditions hold.
enum Test {
    Form(ReportForm),
    FeedbackType(&'static [&'static str]),
    Action(&'static [DsnAction]),
    NoAction,
    /// Any of these status patterns; `*` matches any number. A missing status matches none.
    Status(&'static [&'static str]),
    /// Any of these phrases occurs in the (lowercased) text.
    Says(&'static [&'static str]),
}

struct Rule {
    when: &'static [Test],
    kind: BounceKind,
    reason: &'static str,
}

const USER_UNKNOWN: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no such recipient",
    "no such account",
    "recipient unknown",
    "unknown recipient",
    "recipient not found",
    "recipientnotfound",
    "user not found",
    "mailbox not found",
    "address not found",
    "invalid recipient",
    "invalid mailbox",
    "not a valid mailbox",
    "unrouteable address",
    "does not exist",
    "doesn't exist",
    "couldn't be found",
    "user doesn't have",
    "does not have an account",
];
const DOMAIN_GONE: &[&str] = &[
    "host or domain name not found",
    "domain name not found",
    "domain not found",
    "no such domain",
    "domain does not exist",
    "nxdomain",
    "unrouteable mail domain",
];
const DISABLED: &[&str] = &[
    "mailbox disabled",
    "mailbox is disabled",
    "account disabled",
    "account is disabled",
    "account has been disabled",
    "mailbox is inactive",
    "account is inactive",
    "account inactive",
];
const FULL: &[&str] = &[
    "mailbox full",
    "mailbox is full",
    "inbox is full",
    "quota exceeded",
    "exceeded quota",
    "exceeds quota",
    "over quota",
    "overquota",
    "exceeded storage",
    "insufficient storage",
    "out of storage",
    "mailbox size limit",
];
const POLICY_PHRASES: &[&str] = &[
    "spam",
    "blocked",
    "blacklist",
    "black list",
    "blocklist",
    "block list",
    "denylist",
    "reputation",
    "dmarc",
    "unsolicited",
    "listed at",
    "listed on",
    "dnsbl",
    "policy reasons",
];
const UNAVAILABLE: &[&str] = &["mailbox unavailable", "mailbox not available", "mailbox temporarily unavailable"];

/// Phrases that give a status (subject and detail; the class comes from the reply code) to a bounce that has
/// none, or refine a generic X.Y.0. The first row with a phrase in the text wins.
const INFERRED: &[(&[&str], u16, u16)] = &[
    (DOMAIN_GONE, 1, 2),
    (USER_UNKNOWN, 1, 1),
    (DISABLED, 2, 1),
    (FULL, 2, 2),
    (POLICY_PHRASES, 7, 1),
    (UNAVAILABLE, 2, 0),
];

const RULES: &[Rule] = &[
    Rule {
        when: &[Form(ReportForm::Feedback), FeedbackType(&["auth-failure"])],
        kind: Policy,
        reason: "an authentication failure report is about our DKIM, SPF or DMARC, not the subscriber",
    },
    Rule {
        when: &[Form(ReportForm::Feedback), FeedbackType(&["not-spam"])],
        kind: Unclassified,
        reason: "a not-spam report says the person wants the mail",
    },
    Rule {
        when: &[Form(ReportForm::Feedback), FeedbackType(&["virus"])],
        kind: Policy,
        reason: "a virus report is about the message, not the subscriber",
    },
    Rule {
        when: &[Form(ReportForm::Feedback)],
        kind: Complaint,
        reason: "a feedback report: the person marked the message as spam",
    },
    Rule { when: &[Form(ReportForm::AutoReply)], kind: AutoReply, reason: "an automatic reply changes nothing" },
    Rule {
        when: &[Action(&[DsnAction::Delayed])],
        kind: BounceKind::Delayed,
        reason: "Action delayed: still on its way",
    },
    Rule {
        when: &[Action(&[DsnAction::Delivered, Relayed, Expanded])],
        kind: BounceKind::Delivered,
        reason: "Action delivered, relayed or expanded: it arrived",
    },
    Rule { when: &[Status(&["2.*.*"])], kind: BounceKind::Delivered, reason: "a success status (2.x.x)" },
    Rule {
        when: &[Status(&["*.1.7", "*.1.8"])],
        kind: Policy,
        reason: "X.1.7 and X.1.8 are about our sender address, not the recipient",
    },
    Rule {
        when: &[Status(&["5.7.*"])],
        kind: Policy,
        reason: "5.7.x: refused by policy (blocked, spam, authentication, DMARC)",
    },
    Rule { when: &[Status(&["5.1.*"])], kind: Hard, reason: "5.1.x: the address or its domain does not exist" },
    Rule { when: &[Status(&["5.2.1"])], kind: Hard, reason: "5.2.1: the mailbox is disabled" },
    Rule {
        when: &[Status(&["5.2.3", "5.3.4"])],
        kind: Policy,
        reason: "the message is too large for the receiving side",
    },
    Rule { when: &[Status(&["5.6.*"])], kind: Policy, reason: "5.6.x: the receiving side refused the content" },
    Rule {
        when: &[Status(&["5.4.4"]), Says(DOMAIN_GONE)],
        kind: Hard,
        reason: "5.4.4 and the domain name does not exist",
    },
    Rule { when: &[Status(&["5.2.*"])], kind: Soft, reason: "5.2.x: mailbox full or unavailable for now" },
    Rule { when: &[Status(&["5.4.*"])], kind: Soft, reason: "5.4.x: the receiving side could not be reached" },
    Rule {
        when: &[Form(ReportForm::Dsn), NoAction, Status(&["4.*.*"])],
        kind: BounceKind::Delayed,
        reason: "a temporary status without Action failed: still on its way",
    },
    Rule {
        when: &[Says(POLICY_PHRASES)],
        kind: Policy,
        reason: "the text says blocked, spam or reputation: the sender's problem",
    },
    Rule {
        when: &[Status(&["4.4.*"])],
        kind: Soft,
        reason: "4.4.x: the receiving side was unreachable until the sender gave up",
    },
    Rule { when: &[Status(&["4.*.*"])], kind: Soft, reason: "a temporary failure (4.x.x) that reached failed" },
    Rule {
        when: &[Status(&["5.*.*"])],
        kind: Soft,
        reason: "a permanent failure the table knows no more about: soft, so only repeats suppress",
    },
    Rule { when: &[], kind: Unclassified, reason: "nothing in the report says why delivery failed" },
];

/// The kind of one recipient's outcome and the reason of the row that decided it.
pub(crate) fn classify(evidence: &Evidence<'_>) -> (BounceKind, &'static str) {
    let rule = &RULES[decide(evidence)];
    (rule.kind, rule.reason)
}

/// The index of the first row that matches (the last row matches everything).
fn decide(evidence: &Evidence<'_>) -> usize {
    RULES.iter().position(|rule| rule.when.iter().all(|test| holds(test, evidence))).unwrap_or(RULES.len() - 1)
}

fn holds(test: &Test, e: &Evidence<'_>) -> bool {
    match test {
        Form(form) => e.form == *form,
        FeedbackType(types) => types.contains(&e.feedback_type),
        Action(actions) => e.action.is_some_and(|action| actions.contains(&action)),
        NoAction => e.action.is_none(),
        Status(patterns) => e.status.is_some_and(|status| patterns.iter().any(|p| status_matches(p, status))),
        Says(phrases) => phrases.iter().any(|phrase| e.text.contains(phrase)),
    }
}

fn status_matches(pattern: &str, status: &str) -> bool {
    let mut status = status.split('.');
    pattern.split('.').all(|want| status.next().is_some_and(|have| want == "*" || want == have))
}

/// The subject, detail and phrase of the first `INFERRED` row whose phrase is in `lowered`.
pub(crate) fn infer(lowered: &str) -> Option<(u16, u16, &'static str)> {
    INFERRED.iter().find_map(|&(phrases, subject, detail)| {
        phrases.iter().find(|phrase| lowered.contains(*phrase)).map(|phrase| (subject, detail, *phrase))
    })
}

#[cfg(test)]
mod tests;
