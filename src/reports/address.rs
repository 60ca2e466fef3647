//! Email addresses inside free text: finding them (plain bounces name their recipients in prose) and scrubbing
//! them (a stored report keeps no third party's address; erasure keeps none).
//!
//! The scanner looks for `@` and widens to the characters an address can hold, so it finds `a@b` inside
//! `<a@b>`, `rfc822;a@b`, `"a@b"`, `mailto:a@b` and `"quoted local"@b`. It errs towards finding too much: a
//! Message-ID such as `<123@host>` is found (and scrubbed) too. Linear in the text; never panics.

/// The text that replaces a scrubbed address.
pub const REMOVED: &str = "[address removed]";

/// Longest local part and domain the scanner widens to (RFC 5321 allows 64 and 255; some margin for junk).
const MAX_LOCAL: usize = 128;
const MAX_DOMAIN: usize = 255;

/// Replaces every email address in `text` for which `keep` returns false with `[address removed]`, so a stored
/// report keeps no third party's address. `keep` gets the address as written; compare it case-insensitively.
/// Erasure passes `|_| false`.
pub fn scrub_addresses(text: &str, keep: impl Fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in spans(text) {
        let address = &text[start..end];
        if keep(address) {
            continue;
        }
        out.push_str(&text[copied..start]);
        out.push_str(REMOVED);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Every address in `text`, in order.
pub(crate) fn find(text: &str) -> impl Iterator<Item = &str> {
    spans(text).into_iter().map(move |(start, end)| &text[start..end])
}

/// The byte ranges of the addresses in `text`, in order, not overlapping.
fn spans(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    while let Some(offset) = bytes.get(from..).and_then(|rest| rest.iter().position(|&b| b == b'@')) {
        let at = from + offset;
        from = at + 1;
        let floor = spans.last().map_or(0, |&(_, end)| end);
        let Some(start) = local_start(text, at, floor) else { continue };
        let end = domain_end(text, at + 1);
        if end > at + 1 {
            spans.push((start, end));
            from = end;
        }
    }
    spans
}

fn is_local_char(c: char) -> bool {
    c.is_alphanumeric() || "!#$%&*+/=?^_{|}~.-".contains(c)
}

fn is_domain_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '.'
}

/// Where the local part before the `@` at `at` starts, not before `floor`; `None` when there is none.
fn local_start(text: &str, at: usize, floor: usize) -> Option<usize> {
    let before = &text[floor..at];
    if let Some(quoted) = before.strip_suffix('"') {
        // A quoted local part: "john doe"@example.com. Only the last MAX_LOCAL bytes are searched, so text full of
        // stray quotes stays linear.
        let mut window = quoted.len().saturating_sub(MAX_LOCAL);
        while !quoted.is_char_boundary(window) {
            window += 1;
        }
        let open = window + quoted[window..].rfind('"')?;
        let inside = &quoted[open + 1..];
        let plausible = !inside.is_empty() && !inside.contains(['\n', '\r']);
        return plausible.then_some(floor + open);
    }
    let mut start = at;
    for (index, c) in before.char_indices().rev() {
        if !is_local_char(c) || before.len() - index > MAX_LOCAL {
            break;
        }
        start = floor + index;
    }
    // Dots cannot start a local part; a leading one is sentence punctuation.
    while text[start..at].starts_with('.') {
        start += 1;
    }
    (start < at).then_some(start)
}

/// Where the domain after an `@` ends: after its last letter or digit (a trailing dot ends a sentence), or an
/// address literal `[192.0.2.1]`.
fn domain_end(text: &str, from: usize) -> usize {
    let rest = &text[from..];
    if rest.starts_with('[') {
        return match rest.find(']') {
            Some(close) if close < 64 && rest[1..close].chars().all(|c| c.is_ascii_hexdigit() || ".:".contains(c)) => {
                from + close + 1
            }
            _ => from,
        };
    }
    let mut end = from;
    for (index, c) in rest.char_indices() {
        if !is_domain_char(c) || index >= MAX_DOMAIN {
            break;
        }
        if c.is_alphanumeric() {
            end = from + index + c.len_utf8();
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        find(text).collect()
    }

    #[test]
    fn addresses_are_found_in_the_forms_reports_write_them() {
        assert_eq!(found("<a@example.com>"), ["a@example.com"]);
        assert_eq!(found("rfc822;a@example.com"), ["a@example.com"]);
        assert_eq!(found("Final-Recipient: rfc822; <b.c+tag@mx.example.org>."), ["b.c+tag@mx.example.org"]);
        assert_eq!(found("mailto:d@example.com, 'e@example.com'"), ["d@example.com", "e@example.com"]);
        assert_eq!(found("\"John Doe\"@example.com wrote"), ["\"John Doe\"@example.com"]);
        assert_eq!(found("RCPT TO:<f@[192.0.2.1]>"), ["f@[192.0.2.1]"]);
        assert_eq!(found("jürgen@bücher.example"), ["jürgen@bücher.example"]);
        assert_eq!(found("a@b"), ["a@b"]);
    }

    #[test]
    fn an_at_sign_without_an_address_around_it_is_not_an_address() {
        assert!(found("meet @ noon, @@, x@, @y, .@.").is_empty());
        assert!(found("").is_empty());
        assert_eq!(found("a@b@c"), ["a@b"]);
    }

    #[test]
    fn scrubbing_keeps_the_one_kept_address_and_removes_every_other() {
        let text = "To: <kept@example.com>, other@example.net\nrfc822;third@example.org \"Quoted Name\"@example.com";
        let scrubbed = scrub_addresses(text, |a| a.eq_ignore_ascii_case("KEPT@example.com"));
        assert_eq!(scrubbed, "To: <kept@example.com>, [address removed]\nrfc822;[address removed] [address removed]");
    }

    #[test]
    fn scrubbing_with_nothing_to_keep_removes_every_address() {
        let scrubbed = scrub_addresses("a@example.com <b@example.com> 'c@example.com'", |_| false);
        assert_eq!(scrubbed, "[address removed] <[address removed]> '[address removed]'");
        assert_eq!(scrub_addresses("no address here", |_| false), "no address here");
    }

    #[test]
    fn very_long_runs_are_scrubbed_in_linear_time_without_leaking_a_prefix_address() {
        let text = format!("{}@example.com", "x".repeat(10_000));
        let scrubbed = scrub_addresses(&text, |_| false);
        assert!(scrubbed.ends_with(REMOVED));
        assert!(!scrubbed.contains('@'));
        let many = "a@".repeat(50_000);
        assert!(scrub_addresses(&many, |_| false).len() < many.len() * 10);
    }
}
