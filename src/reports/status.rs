//! Which enhanced status code (RFC 3463) a recipient's outcome has: the one a DSN states, a more specific one
//! its diagnostic text gives, one found in a plain bounce's text (`5.1.1`, `#5.1.1`, `550-5.1.1`), or one
//! inferred from the reply code and a known phrase (the phrases are a table in `classify.rs`).
//!
//! Performs no I/O; never panics; linear in the text.

use super::DsnAction;
use super::classify;

/// The status settled for one recipient, and a note saying where it came from when it was not stated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settled {
    pub(crate) status: Option<String>,
    pub(crate) note: Option<String>,
}

/// Settles the status from a `Status:` value (if any) and the diagnostic text.
pub(crate) fn settle(stated: Option<&str>, text: &str, action: Option<DsnAction>) -> Settled {
    let stated_code = stated.and_then(|s| s.split_whitespace().next()).and_then(|s| parse(s.trim_end_matches(';')));
    let found = find_enhanced(text).and_then(parse);
    let (mut code, mut note) = match (stated_code, found) {
        (Some(stated), Some(found)) if stated.detail == 0 && found.detail != 0 && found.class == stated.class => {
            (Some(found), Some("the status from the diagnostic text".to_owned()))
        }
        (Some(stated), _) => (Some(stated), None),
        (None, Some(found)) => (Some(found), Some("the status found in the text".to_owned())),
        (None, None) => (None, None),
    };
    let lowered = text.to_lowercase();
    let inferred = classify::infer(&lowered);
    if code.is_none() {
        let basic = stated.and_then(find_basic).or_else(|| find_basic(text));
        let class = basic.map(|b| b / 100).unwrap_or(if action == Some(DsnAction::Delayed) { 4 } else { 5 });
        code = match (inferred, basic) {
            (Some((subject, detail, phrase)), _) => {
                note = Some(format!("status inferred from \"{phrase}\""));
                Some(Code { class, subject, detail })
            }
            (None, Some(basic)) => {
                note = Some(format!("status inferred from the reply code {basic}"));
                Some(Code { class, subject: 0, detail: 0 })
            }
            (None, None) => None,
        };
    } else if let (Some(current), Some((subject, detail, phrase))) = (code, inferred) {
        // X.Y.0 says nothing specific (X.7.0 already says "policy"), so a known phrase refines it.
        if current.detail == 0 && current.subject != 7 && current.class != 2 {
            code = Some(Code { subject, detail, ..current });
            note = Some(format!("{}.{}.{} refined by \"{phrase}\"", current.class, current.subject, current.detail));
        }
    }
    Settled { status: code.map(|c| format!("{}.{}.{}", c.class, c.subject, c.detail)), note }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Code {
    class: u16,
    subject: u16,
    detail: u16,
}

/// Parses `5.1.1` (class 2, 4 or 5, subject of one digit, detail of one to three digits).
fn parse(code: &str) -> Option<Code> {
    let mut parts = code.split('.');
    let (class, subject, detail) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |part: &str, max: usize| (1..=max).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
    let valid = matches!(class, "2" | "4" | "5") && digits(subject, 1) && digits(detail, 3) && parts.next().is_none();
    if !valid {
        return None;
    }
    Some(Code { class: class.parse().ok()?, subject: subject.parse().ok()?, detail: detail.parse().ok()? })
}

/// The first enhanced status code in free text: `5.1.1`, `#5.1.1`, `550-5.1.1`, `550 5.1.10`, `(5.7.1)`. Not
/// inside a longer number (an IP address, a version, a date).
pub(crate) fn find_enhanced(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index + 5 <= bytes.len() {
        let b = bytes[index];
        let starts = matches!(b, b'2' | b'4' | b'5')
            && (index == 0 || !(bytes[index - 1].is_ascii_alphanumeric() || bytes[index - 1] == b'.'));
        if starts && let Some(len) = enhanced_len(&bytes[index..]) {
            return text.get(index..index + len);
        }
        index += 1;
    }
    None
}

/// The length of an enhanced code at the start of `bytes`, if one is there and ends at a boundary.
fn enhanced_len(bytes: &[u8]) -> Option<usize> {
    let digits = |from: usize| bytes.iter().skip(from).take(4).take_while(|b| b.is_ascii_digit()).count();
    if bytes.get(1) != Some(&b'.') || digits(2) != 1 || bytes.get(3) != Some(&b'.') {
        return None;
    }
    let detail = digits(4);
    if !(1..=3).contains(&detail) {
        return None;
    }
    let end = 4 + detail;
    let continues = bytes.get(end).is_some_and(|b| b.is_ascii_alphanumeric())
        || (bytes.get(end) == Some(&b'.') && bytes.get(end + 1).is_some_and(u8::is_ascii_digit));
    (!continues).then_some(end)
}

/// The first basic reply code (4xx or 5xx) in free text, standing on its own: `550 `, `554:`, `#550`, `550-`.
fn find_basic(text: &str) -> Option<u16> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(2)).find_map(|index| {
        let code = &bytes[index..index + 3];
        let left_ok = index == 0 || !(bytes[index - 1].is_ascii_alphanumeric() || b".-_/".contains(&bytes[index - 1]));
        let right = bytes.get(index + 3);
        let right_ok = match right {
            None => true,
            Some(b'.') => !bytes.get(index + 4).is_some_and(u8::is_ascii_digit),
            Some(&b) => !b.is_ascii_alphanumeric() && b != b'_',
        };
        let valid = matches!(code[0], b'4' | b'5') && code[1..].iter().all(u8::is_ascii_digit);
        (valid && left_ok && right_ok)
            .then(|| u16::from(code[0] - b'0') * 100 + u16::from(code[1] - b'0') * 10 + u16::from(code[2] - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settled(stated: Option<&str>, text: &str) -> Option<String> {
        settle(stated, text, Some(DsnAction::Failed)).status
    }

    #[test]
    fn enhanced_codes_are_found_in_the_ways_servers_write_them() {
        assert_eq!(find_enhanced("550 5.1.1 <a@example.com>: user unknown"), Some("5.1.1"));
        assert_eq!(find_enhanced("550-5.1.1 The email account"), Some("5.1.1"));
        assert_eq!(find_enhanced("Remote Server returned '550 5.1.10 RESOLVER'"), Some("5.1.10"));
        assert_eq!(find_enhanced("does not like recipient. (#5.1.1)"), Some("5.1.1"));
        assert_eq!(find_enhanced("550 5.7.515 Access denied"), Some("5.7.515"));
        assert_eq!(find_enhanced("quota exceeded 4.2.2."), Some("4.2.2"));
    }

    #[test]
    fn numbers_that_only_look_like_codes_are_not_codes() {
        assert_eq!(find_enhanced("host [192.0.2.1] said 5.6.7.8"), None);
        assert_eq!(find_enhanced("Exim 4.94.2 and Postfix 3.5.6"), None);
        assert_eq!(find_enhanced("on 5.12.2026"), None);
        assert_eq!(find_enhanced("v5.1.1a x5.1.1"), None);
        assert_eq!(find_enhanced(""), None);
    }

    #[test]
    fn basic_codes_stand_on_their_own() {
        assert_eq!(find_basic("554: delivery error"), Some(554));
        assert_eq!(find_basic("Remote host said: 550 sorry"), Some(550));
        assert_eq!(find_basic("(554.30) at 192.0.2.55 in 2026"), None);
        assert_eq!(find_basic("retry timeout 4500"), None);
        assert_eq!(find_basic("452"), Some(452));
    }

    #[test]
    fn a_stated_status_wins_unless_it_is_generic_and_the_text_is_specific() {
        assert_eq!(settled(Some("5.1.1"), "550 5.7.1 blocked"), Some("5.1.1".into()));
        assert_eq!(settled(Some("5.0.0 (permanent failure)"), "smtp; 550 5.1.1 unknown"), Some("5.1.1".into()));
        assert_eq!(settled(Some("5.0.0"), "550 user unknown"), Some("5.1.1".into()));
        assert_eq!(settled(Some("5.0.0"), "550 rejected"), Some("5.0.0".into()));
        assert_eq!(settled(Some("5.7.0"), "user unknown"), Some("5.7.0".into()));
        assert_eq!(settled(Some("4.0.0"), "4.4.7 delivery time expired"), Some("4.4.7".into()));
    }

    #[test]
    fn without_a_status_the_text_gives_one() {
        assert_eq!(settled(None, "550 5.2.2 mailbox full"), Some("5.2.2".into()));
        assert_eq!(settled(None, "554: This user doesn't have a yahoo.com account"), Some("5.1.1".into()));
        assert_eq!(settled(None, "452 mailbox full"), Some("4.2.2".into()));
        assert_eq!(settled(None, "Host or domain name not found"), Some("5.1.2".into()));
        assert_eq!(settled(None, "550 go away"), Some("5.0.0".into()));
        assert_eq!(settled(None, "it did not work"), None);
        let settled = settle(None, "no such user here", Some(DsnAction::Failed));
        assert_eq!(settled.note.as_deref(), Some("status inferred from \"no such user\""));
    }
}
