//! Every row of the classification tables, tested with the evidence it is for.

use super::*;
use DsnAction::Failed;

fn dsn(action: Option<DsnAction>, status: Option<&'static str>, text: &'static str) -> Evidence<'static> {
    Evidence::new(ReportForm::Dsn).with_action(action).with_status(status).with_text(text)
}

fn failed(status: &'static str, text: &'static str) -> Evidence<'static> {
    dsn(Some(Failed), Some(status), text)
}

fn feedback(feedback_type: &'static str) -> Evidence<'static> {
    Evidence::new(ReportForm::Feedback).with_feedback(feedback_type)
}

/// (evidence, the row that must decide it (1-based, as in the table comment), the kind).
fn examples() -> Vec<(Evidence<'static>, usize, BounceKind)> {
    vec![
        (feedback("auth-failure"), 1, Policy),
        (feedback("not-spam"), 2, Unclassified),
        (feedback("virus"), 3, Policy),
        (feedback("abuse"), 4, Complaint),
        (feedback("fraud"), 4, Complaint),
        (feedback("other"), 4, Complaint),
        (feedback("opt-out"), 4, Complaint),
        (Evidence::new(ReportForm::AutoReply).with_text("my mailbox is full"), 5, AutoReply),
        (dsn(Some(DsnAction::Delayed), Some("4.4.7"), "connection timed out"), 6, BounceKind::Delayed),
        (dsn(Some(DsnAction::Delayed), Some("5.1.1"), "user unknown"), 6, BounceKind::Delayed),
        (dsn(Some(DsnAction::Delivered), Some("2.0.0"), "250 ok"), 7, BounceKind::Delivered),
        (dsn(Some(Relayed), Some("2.0.0"), ""), 7, BounceKind::Delivered),
        (dsn(Some(Expanded), None, ""), 7, BounceKind::Delivered),
        (dsn(None, Some("2.1.5"), ""), 8, BounceKind::Delivered),
        (failed("5.1.8", "sender domain does not exist"), 9, Policy),
        (failed("5.1.7", "bad sender address"), 9, Policy),
        (failed("5.7.1", "message rejected as spam"), 10, Policy),
        (failed("5.7.26", "unauthenticated email from example.com is not accepted due to dmarc"), 10, Policy),
        (failed("5.7.515", "access denied, sending domain doesn't meet the required authentication level"), 10, Policy),
        (failed("5.1.1", "user unknown"), 11, Hard),
        (failed("5.1.10", "resolver.adr.recipientnotfound"), 11, Hard),
        (failed("5.1.2", "domain not found"), 11, Hard),
        (failed("5.1.3", "bad address syntax"), 11, Hard),
        (failed("5.1.1", "blocked"), 11, Hard),
        (failed("5.2.1", "mailbox disabled"), 12, Hard),
        (failed("5.2.3", "message too large for this recipient"), 13, Policy),
        (failed("5.3.4", "message size exceeds fixed limit"), 13, Policy),
        (failed("5.6.0", "content rejected"), 14, Policy),
        (failed("5.4.4", "host or domain name not found. name service error"), 15, Hard),
        (failed("5.2.2", "mailbox full"), 16, Soft),
        (failed("5.2.0", "mailbox unavailable"), 16, Soft),
        (failed("5.4.4", "unable to route"), 17, Soft),
        (failed("5.4.1", "recipient address rejected: access denied"), 17, Soft),
        (failed("5.4.7", "delivery time expired"), 17, Soft),
        (dsn(None, Some("4.2.0"), "greylisted"), 18, BounceKind::Delayed),
        (failed("5.5.0", "blocked using zen.spamhaus.org"), 19, Policy),
        (failed("4.7.0", "our system has detected an unusual rate of unsolicited mail"), 19, Policy),
        (
            Evidence::new(ReportForm::PlainBounce).with_action(Some(Failed)).with_text("your ip is blacklisted"),
            19,
            Policy,
        ),
        (failed("4.4.7", "delivery time expired"), 20, Soft),
        (failed("4.4.1", "connection refused"), 20, Soft),
        (failed("4.2.2", "mailbox full"), 21, Soft),
        (failed("4.3.0", "retry timeout exceeded"), 21, Soft),
        (failed("5.0.0", "rejected"), 22, Soft),
        (failed("5.5.1", "invalid command"), 22, Soft),
        (dsn(Some(Failed), None, ""), 23, Unclassified),
        (
            Evidence::new(ReportForm::PlainBounce).with_action(Some(Failed)).with_text("it did not work"),
            23,
            Unclassified,
        ),
    ]
}

#[test]
fn every_example_is_decided_by_its_row_with_its_kind() {
    for (evidence, row, kind) in examples() {
        let decided = decide(&evidence) + 1;
        assert_eq!(decided, row, "{evidence:?} was decided by row {decided}, not {row}");
        assert_eq!(classify(&evidence).0, kind, "{evidence:?}");
    }
}

#[test]
fn every_row_of_the_table_is_exercised_by_an_example() {
    let decided: Vec<usize> = examples().iter().map(|(evidence, _, _)| decide(evidence)).collect();
    for (row, rule) in RULES.iter().enumerate() {
        assert!(decided.contains(&row), "row {} ({}) has no example", row + 1, rule.reason);
    }
    assert_eq!(RULES.len(), 23, "the table comment at the top of classify.rs lists 23 rows");
}

#[test]
fn every_reason_is_one_short_line() {
    for rule in RULES {
        assert!(!rule.reason.contains('\n') && rule.reason.len() <= 100, "{}", rule.reason);
    }
}

#[test]
fn every_inference_row_is_found_by_each_of_its_phrases() {
    for (row, &(phrases, subject, detail)) in INFERRED.iter().enumerate() {
        for phrase in phrases {
            let text = format!("550 {phrase} here");
            let (found_subject, found_detail, _) = infer(&text).expect("a phrase of the table is found");
            let first = INFERRED.iter().position(|(p, _, _)| p.iter().any(|q| text.contains(q))).unwrap_or(row);
            if first == row {
                assert_eq!((found_subject, found_detail), (subject, detail), "{phrase}");
            }
        }
    }
    assert_eq!(infer("550 5.1.1 user unknown"), Some((1, 1, "user unknown")));
    assert_eq!(infer("domain does not exist"), Some((1, 2, "domain does not exist")));
    assert_eq!(infer("mailbox is full"), Some((2, 2, "mailbox is full")));
    assert_eq!(infer("account is disabled"), Some((2, 1, "account is disabled")));
    assert_eq!(infer("listed at zen.spamhaus.org"), Some((7, 1, "spam")));
    assert_eq!(infer("requested action not taken: mailbox unavailable"), Some((2, 0, "mailbox unavailable")));
    assert_eq!(infer("all is well"), None);
}

#[test]
fn status_patterns_match_whole_numbers_only() {
    assert!(status_matches("5.1.*", "5.1.10"));
    assert!(status_matches("*.1.7", "4.1.7"));
    assert!(!status_matches("5.1.*", "5.10.1"));
    assert!(!status_matches("5.2.1", "5.2.10"));
    assert!(!status_matches("5.*.*", "4.1.1"));
}
