//! The SES policy: what one SES event says about one recipient, as a [`BounceKind`]. One table, first matching
//! row wins, every row tested below; `*` matches anything, names match exactly as SES spells them (complaint
//! feedback types are lowercased first), and a status row matches a prefix of the recipient's enhanced status code.
//!
//! | #  | event         | type / feedback type | subtype                  | status | kind         |
//! |----|---------------|----------------------|--------------------------|--------|--------------|
//! | 1  | Bounce        | Permanent            | *                        | 5.7.   | policy       |
//! | 2  | Bounce        | Permanent            | *                        | *      | hard         |
//! | 3  | Bounce        | Transient            | MessageTooLarge          | *      | policy       |
//! | 4  | Bounce        | Transient            | ContentRejected          | *      | policy       |
//! | 5  | Bounce        | Transient            | AttachmentRejected       | *      | policy       |
//! | 6  | Bounce        | Transient            | *                        | *      | soft         |
//! | 7  | Bounce        | *  (Undetermined)    | *                        | *      | unclassified |
//! | 8  | Complaint     | not-spam             | *                        | *      | unclassified |
//! | 9  | Complaint     | virus                | *                        | *      | policy       |
//! | 10 | Complaint     | auth-failure         | *                        | *      | policy       |
//! | 11 | Complaint     | *                    | *                        | *      | complaint    |
//! | 12 | Delivery      | *                    | *                        | *      | delivered    |
//! | 13 | DeliveryDelay | *                    | *                        | *      | delayed      |
//! | 14 | Reject        | *                    | *                        | *      | policy       |
//!
//! Permanent covers SES's subtypes General, NoEmail, Suppressed and OnAccountSuppressionList (the address
//! bounced or complained before): the address is gone, unless the status says the receiver refused us (row 1),
//! as DSNs are read. Transient MailboxFull and General are the recipient's passing trouble; a message too
//! large, or content or an attachment refused, is the sender's problem, not the address's. Complaint feedback
//! types follow the ARF rows of `reports/classify.rs`.

use crate::reports::BounceKind;

/// What the table looks at: the event type as SES names it, the bounce type (or the complaint's feedback type,
/// lowercased), the bounce subtype, and the recipient's enhanced status code.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Evidence<'a> {
    pub(crate) event: &'a str,
    pub(crate) class: &'a str,
    pub(crate) subtype: &'a str,
    pub(crate) status: &'a str,
}

struct Rule {
    event: &'static str,
    class: &'static str,
    subtype: &'static str,
    status: &'static str,
    kind: BounceKind,
    reason: &'static str,
}

const ANY: &str = "*";

const fn rule(
    event: &'static str,
    class: &'static str,
    subtype: &'static str,
    status: &'static str,
    kind: BounceKind,
    reason: &'static str,
) -> Rule {
    Rule { event, class, subtype, status, kind, reason }
}

use BounceKind::*;

const RULES: &[Rule] = &[
    rule("Bounce", "Permanent", ANY, "5.7.", Policy, "SES permanent bounce with a 5.7 status: the receiver refused us"),
    rule("Bounce", "Permanent", ANY, ANY, Hard, "SES permanent bounce: the address does not take mail"),
    rule("Bounce", "Transient", "MessageTooLarge", ANY, Policy, "SES transient bounce: the message is too large"),
    rule("Bounce", "Transient", "ContentRejected", ANY, Policy, "SES transient bounce: the content was refused"),
    rule("Bounce", "Transient", "AttachmentRejected", ANY, Policy, "SES transient bounce: an attachment was refused"),
    rule("Bounce", "Transient", ANY, ANY, Soft, "SES transient bounce: the mailbox cannot take it now"),
    rule("Bounce", ANY, ANY, ANY, Unclassified, "SES could not determine why it bounced"),
    rule("Complaint", "not-spam", ANY, ANY, Unclassified, "SES complaint of type not-spam"),
    rule("Complaint", "virus", ANY, ANY, Policy, "SES complaint of type virus"),
    rule("Complaint", "auth-failure", ANY, ANY, Policy, "SES complaint of type auth-failure"),
    rule("Complaint", ANY, ANY, ANY, Complaint, "SES complaint: the person reported it as spam"),
    rule("Delivery", ANY, ANY, ANY, Delivered, "SES delivery: the receiving server took it"),
    rule("DeliveryDelay", ANY, ANY, ANY, Delayed, "SES delivery delay: still being retried"),
    rule("Reject", ANY, ANY, ANY, Policy, "SES rejected the message before sending it"),
];

/// The kind and the reason of the first matching row; `None` for an event type the table does not name.
pub(crate) fn classify(evidence: Evidence<'_>) -> Option<(BounceKind, &'static str)> {
    RULES.iter().find(|r| matches(r, evidence)).map(|r| (r.kind, r.reason))
}

fn matches(rule: &Rule, e: Evidence<'_>) -> bool {
    let is = |pattern: &str, value: &str| pattern == ANY || pattern == value;
    is(rule.event, e.event)
        && is(rule.class, e.class)
        && is(rule.subtype, e.subtype)
        && (rule.status == ANY || e.status.starts_with(rule.status))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(event: &str, class: &str, subtype: &str, status: &str) -> Option<BounceKind> {
        classify(Evidence { event, class, subtype, status }).map(|(k, _)| k)
    }

    #[test]
    fn every_row_of_the_table_gives_its_kind() {
        let cases = [
            (("Bounce", "Permanent", "General", "5.7.1"), Policy),
            (("Bounce", "Permanent", "General", "5.1.1"), Hard),
            (("Bounce", "Permanent", "NoEmail", ""), Hard),
            (("Bounce", "Permanent", "Suppressed", "5.1.1"), Hard),
            (("Bounce", "Permanent", "OnAccountSuppressionList", ""), Hard),
            (("Bounce", "Transient", "MessageTooLarge", "5.3.4"), Policy),
            (("Bounce", "Transient", "ContentRejected", "5.7.1"), Policy),
            (("Bounce", "Transient", "AttachmentRejected", ""), Policy),
            (("Bounce", "Transient", "MailboxFull", "4.2.2"), Soft),
            (("Bounce", "Transient", "General", "4.4.7"), Soft),
            (("Bounce", "Undetermined", "Undetermined", ""), Unclassified),
            (("Complaint", "not-spam", "", ""), Unclassified),
            (("Complaint", "virus", "", ""), Policy),
            (("Complaint", "auth-failure", "", ""), Policy),
            (("Complaint", "abuse", "", ""), Complaint),
            (("Complaint", "", "", ""), Complaint),
            (("Delivery", "", "", "2.0.0"), Delivered),
            (("DeliveryDelay", "", "", "4.4.7"), Delayed),
            (("Reject", "", "", ""), Policy),
        ];
        for ((event, class, subtype, status), expected) in cases {
            assert_eq!(kind(event, class, subtype, status), Some(expected), "{event} {class} {subtype} {status}");
        }
    }

    #[test]
    fn an_event_type_the_table_does_not_name_has_no_kind() {
        for event in ["Send", "Open", "Click", "Rendering Failure", "Subscription", "AmazonSnsSubscriptionSucceeded"] {
            assert_eq!(kind(event, "", "", ""), None, "{event}");
        }
    }
}
