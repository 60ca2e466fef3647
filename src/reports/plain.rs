//! Bounces that are not DSNs: the plain text of Exim, qmail, old Sendmail, Yahoo and Exchange without its DSN
//! part. The text before the copy of the original is split into one block per recipient: a line that holds
//! nothing but an address (`  a@example.com`, `<a@example.com>:`) starts a block, and the lines after it, up to
//! the next such line, say what happened to it. Blocks naming the same address are joined (Exchange names each
//! recipient twice). A text without such lines gives one block per address it mentions, or one block without
//! an address (the return path then says who it was).
//!
//! Performs no I/O; never panics; linear in the text.

use std::collections::{HashMap, HashSet};

use super::{MAX_RECIPIENTS, address};

/// Lines that start the copy of the original message (lowercased); reading stops at the first.
const COPY_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "this is a copy of the message",
    "original message follows",
    "received message follows",
    "original message headers",
    "----- original message -----",
    "message headers follow",
    "the header of the original message",
    "------ this is a copy of the message's headers",
];

/// What one plain bounce says about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Block {
    pub(crate) recipient: Option<String>,
    /// The lines about this recipient, whitespace collapsed.
    pub(crate) text: String,
    /// The text before the first recipient and this block's text, for phrase matching.
    pub(crate) context: String,
}

/// Reads the recipients of a plain bounce; `own` are the bounce's own addresses (its From and To), never
/// recipients.
pub(crate) fn read(text: &str, own: &[String]) -> Vec<Block> {
    let is_own = |found: &str| own.iter().any(|o| o.eq_ignore_ascii_case(found));
    let mut preamble = String::new();
    let mut blocks: Vec<(String, String)> = Vec::new();
    let mut index_of: HashMap<String, usize> = HashMap::new();
    // Where the next line belongs: the preamble, a recipient's block, or nowhere (past MAX_RECIPIENTS).
    let mut current: Option<Option<usize>> = None;
    for line in text.lines() {
        let lowered = line.to_lowercase();
        if COPY_MARKERS.iter().any(|marker| lowered.contains(marker)) {
            break;
        }
        match address_line(line).filter(|found| !is_own(found)) {
            Some(found) => {
                let key = found.to_lowercase();
                current = Some(match index_of.get(&key) {
                    Some(&index) => Some(index),
                    None if blocks.len() < MAX_RECIPIENTS => {
                        blocks.push((found.to_owned(), String::new()));
                        index_of.insert(key, blocks.len() - 1);
                        Some(blocks.len() - 1)
                    }
                    None => None,
                });
            }
            None => match current {
                None => push_words(&mut preamble, line),
                Some(Some(index)) => push_words(&mut blocks[index].1, line),
                Some(None) => {}
            },
        }
    }
    if !blocks.is_empty() {
        return blocks
            .into_iter()
            .map(|(recipient, text)| {
                let context = format!("{preamble} {text}");
                Block { recipient: Some(recipient), text, context }
            })
            .collect();
    }
    let mut mentioned: Vec<&str> = Vec::new();
    let mut seen = HashSet::new();
    for found in address::find(&preamble).filter(|found| !is_own(found)) {
        if mentioned.len() < MAX_RECIPIENTS && seen.insert(found.to_lowercase()) {
            mentioned.push(found);
        }
    }
    if mentioned.is_empty() {
        return vec![Block { recipient: None, text: preamble.clone(), context: preamble }];
    }
    mentioned
        .into_iter()
        .map(|recipient| Block {
            recipient: Some(recipient.to_owned()),
            text: preamble.clone(),
            context: preamble.clone(),
        })
        .collect()
}

/// The address a line holds when it holds nothing else but brackets, a colon, `mailto:` or the same address
/// twice (`a@example.com<mailto:a@example.com>`, `a@example.com (a@example.com)`).
fn address_line(line: &str) -> Option<&str> {
    let trimmed = line.trim();
    if trimmed.is_empty() || trimmed.len() > 600 {
        return None;
    }
    let mut found = address::find(trimmed);
    let first = found.next()?;
    if found.any(|other| !other.eq_ignore_ascii_case(first)) {
        return None;
    }
    let rest = trimmed.replace(first, "").replace("mailto:", "");
    rest.chars().all(|c| "<>:()[]\"', ".contains(c)).then_some(first)
}

fn push_words(target: &mut String, line: &str) {
    const MAX: usize = 16 * 1024;
    for word in line.split_whitespace() {
        if target.len() >= MAX {
            return;
        }
        if !target.is_empty() {
            target.push(' ');
        }
        target.push_str(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipients(blocks: &[Block]) -> Vec<Option<&str>> {
        blocks.iter().map(|b| b.recipient.as_deref()).collect()
    }

    #[test]
    fn lines_holding_only_an_address_start_a_block() {
        let text = "I'm afraid I wasn't able to deliver your message.\n\n<a@example.com>:\n\
                    192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 <a@example.com>... User unknown\n\n\
                    b@example.org<mailto:b@example.org>\nmailbox full\n\
                    --- Below this line is a copy of the message.\n\nTo: c@example.net\n";
        let blocks = read(text, &[]);
        assert_eq!(recipients(&blocks), [Some("a@example.com"), Some("b@example.org")]);
        assert!(blocks[0].text.starts_with("192.0.2.1 does not like recipient. Remote host said: 550 5.1.1"));
        assert_eq!(blocks[1].text, "mailbox full");
        assert!(blocks[1].context.starts_with("I'm afraid"));
    }

    #[test]
    fn the_same_address_twice_is_one_recipient() {
        let text = "Delivery has failed to these recipients or groups:\n\na@example.com\nnot found\n\n\
                    Diagnostic information for administrators:\n\nA@example.com\nRemote Server returned '550 5.1.10'\n";
        let blocks = read(text, &[]);
        assert_eq!(recipients(&blocks), [Some("a@example.com")]);
        assert!(blocks[0].text.contains("5.1.10") && blocks[0].text.contains("not found"));
    }

    #[test]
    fn without_address_lines_the_addresses_mentioned_are_the_recipients() {
        let own = vec!["bounces+x@news.example.com".to_owned()];
        let blocks = read("Your message from bounces+x@news.example.com to a@example.com failed: 550 unknown", &own);
        assert_eq!(recipients(&blocks), [Some("a@example.com")]);
        let blocks = read("Delivery failed: 550 no such user", &own);
        assert_eq!(recipients(&blocks), [None]);
        assert_eq!(blocks[0].text, "Delivery failed: 550 no such user");
    }

    #[test]
    fn past_the_recipient_limit_further_recipients_and_their_lines_are_dropped() {
        let mut text = String::from("Delivery failed for these:\n");
        for n in 0..MAX_RECIPIENTS + 500 {
            text.push_str(&format!("<r{n}@example.com>:\n550 5.1.1 user unknown {n}\n"));
        }
        let blocks = read(&text, &[]);
        assert_eq!(blocks.len(), MAX_RECIPIENTS);
        assert_eq!(blocks[MAX_RECIPIENTS - 1].text, format!("550 5.1.1 user unknown {}", MAX_RECIPIENTS - 1));
        assert_eq!(blocks[0].context, "Delivery failed for these: 550 5.1.1 user unknown 0");
    }

    #[test]
    fn prose_with_an_address_is_not_an_address_line() {
        assert_eq!(address_line("  a@example.com  "), Some("a@example.com"));
        assert_eq!(address_line("<a@example.com>:"), Some("a@example.com"));
        assert_eq!(address_line("a@example.com (a@example.com)"), Some("a@example.com"));
        assert_eq!(address_line("RCPT TO:<a@example.com>"), None);
        assert_eq!(address_line("a@example.com b@example.com"), None);
        assert_eq!(address_line(""), None);
    }
}
