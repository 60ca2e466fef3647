//! Header-field blocks: the body of a `message/delivery-status` part (RFC 3464: a per-message block, a blank
//! line, then one block per recipient), of a `message/feedback-report` part (RFC 5965: one block), and the
//! header section of an embedded original. Folded lines are unfolded; `type; value` fields are split.
//!
//! Lenient on purpose: a line that is not a field is skipped, never an error. Performs no I/O; never panics.

/// Most fields kept per block: a block is a handful of fields; this bounds the work on hostile input.
const MAX_FIELDS: usize = 500;
/// Longest value kept, in bytes: longer values are cut (at a character boundary).
const MAX_VALUE: usize = 16 * 1024;

/// One `Name: value` field, its value unfolded (continuation lines joined with one space) and trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub(crate) name: String,
    pub(crate) value: String,
}

impl Field {
    /// Whether the field has this name (case-insensitive, as field names are).
    pub(crate) fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// Every block of fields in `text`, in order; blocks are separated by blank lines; empty blocks are dropped.
pub(crate) fn blocks(text: &str) -> Vec<Vec<Field>> {
    let mut blocks = Vec::new();
    let mut block: Vec<Field> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            if !block.is_empty() {
                blocks.push(std::mem::take(&mut block));
            }
            continue;
        }
        add_line(&mut block, line);
    }
    if !block.is_empty() {
        blocks.push(block);
    }
    blocks
}

/// The fields of a header section: everything up to the first blank line.
pub(crate) fn header_section(text: &str) -> Vec<Field> {
    let mut fields = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            break;
        }
        add_line(&mut fields, line);
    }
    fields
}

fn add_line(block: &mut Vec<Field>, line: &str) {
    if line.starts_with([' ', '\t']) {
        if let Some(last) = block.last_mut() {
            append(&mut last.value, line.trim());
        }
        return;
    }
    let Some((name, value)) = line.split_once(':') else { return };
    let valid_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic());
    if valid_name && block.len() < MAX_FIELDS {
        let mut field = Field { name: name.to_owned(), value: String::new() };
        append(&mut field.value, value.trim());
        block.push(field);
    }
}

fn append(value: &mut String, more: &str) {
    if more.is_empty() || value.len() >= MAX_VALUE {
        return;
    }
    if !value.is_empty() {
        value.push(' ');
    }
    let room = MAX_VALUE.saturating_sub(value.len());
    let mut end = more.len().min(room);
    while !more.is_char_boundary(end) {
        end -= 1;
    }
    value.push_str(&more[..end]);
}

/// Splits a `type; value` field (`rfc822; a@example.com`, `smtp; 550 5.1.1 ...`) into its type, when there is
/// one, and the trimmed value. A value without a type-like prefix is returned whole.
pub(crate) fn typed(value: &str) -> (Option<&str>, &str) {
    match value.split_once(';') {
        Some((kind, rest)) if is_type(kind.trim()) => (Some(kind.trim()), rest.trim()),
        _ => (None, value.trim()),
    }
}

fn is_type(kind: &str) -> bool {
    !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// The address of a `Final-Recipient` or `Original-Recipient` value: without its type, angle brackets and
/// comments; `None` when what is left is not an address (no `@`, or redacted).
pub(crate) fn typed_address(value: &str) -> Option<String> {
    let (_, rest) = typed(value);
    let rest = rest.split_once('(').map_or(rest, |(before, _)| before).trim();
    let rest = rest.trim_start_matches('<').trim_end_matches('>').trim();
    let at = rest.rfind('@')?;
    let plausible = at > 0 && at + 1 < rest.len() && !rest.contains(char::is_whitespace);
    plausible.then(|| rest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(block: &[Field]) -> Vec<(&str, &str)> {
        block.iter().map(|f| (f.name.as_str(), f.value.as_str())).collect()
    }

    #[test]
    fn a_delivery_status_body_splits_into_its_per_message_and_per_recipient_blocks() {
        let text = "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Mon, 30 Nov 2026\r\n\r\n\
                    Final-Recipient: rfc822; a@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\
                    Diagnostic-Code: smtp; 550 5.1.1 <a@example.com>:\r\n    Recipient address rejected\r\n\r\n\r\n\
                    Final-Recipient: rfc822;b@example.com\nAction: delayed\nStatus: 4.4.7\n";
        let blocks = blocks(text);
        assert_eq!(blocks.len(), 3);
        assert_eq!(pairs(&blocks[0]), [("Reporting-MTA", "dns; mx.example.net"), ("Arrival-Date", "Mon, 30 Nov 2026")]);
        assert_eq!(blocks[1][3].value, "smtp; 550 5.1.1 <a@example.com>: Recipient address rejected");
        assert_eq!(pairs(&blocks[2])[1], ("Action", "delayed"));
    }

    #[test]
    fn lines_that_are_not_fields_are_skipped() {
        let blocks = blocks("this is not a field\nAction: failed\n: no name\nbad name: x\n\tstray fold\n");
        assert_eq!(pairs(&blocks[0]), [("Action", "failed stray fold")]);
        assert!(super::blocks("\n\n \n").is_empty());
    }

    #[test]
    fn a_header_section_ends_at_the_first_blank_line() {
        let fields = header_section("To: a@example.com\nX-Tidings-Ref: abc\n  def\n\nX-Tidings-Ref: body\n");
        assert_eq!(pairs(&fields), [("To", "a@example.com"), ("X-Tidings-Ref", "abc def")]);
    }

    #[test]
    fn typed_values_split_at_the_first_semicolon_after_a_type() {
        assert_eq!(typed("rfc822; a@example.com"), (Some("rfc822"), "a@example.com"));
        assert_eq!(typed("smtp;550 5.1.1 no; really"), (Some("smtp"), "550 5.1.1 no; really"));
        assert_eq!(typed("550 user unknown; bye"), (None, "550 user unknown; bye"));
        assert_eq!(typed("X-Unix; 127"), (Some("X-Unix"), "127"));
    }

    #[test]
    fn recipient_addresses_lose_their_type_brackets_and_comments() {
        assert_eq!(typed_address("rfc822; a@example.com"), Some("a@example.com".into()));
        assert_eq!(typed_address("rfc822;<A@Example.com> (the user)"), Some("A@Example.com".into()));
        assert_eq!(typed_address("<a@example.com>"), Some("a@example.com".into()));
        assert_eq!(typed_address("rfc822; redacted"), None);
        assert_eq!(typed_address("rfc822; @"), None);
        assert_eq!(typed_address(""), None);
    }

    #[test]
    fn huge_values_are_cut_and_never_split_a_character() {
        let long = format!("X-Long: {}\n", "é".repeat(MAX_VALUE));
        let fields = header_section(&long);
        assert!(fields[0].value.len() <= MAX_VALUE);
        assert!(fields[0].value.chars().all(|c| c == 'é'));
    }
}
