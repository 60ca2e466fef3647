//! The original message a report is about: its `X-Tidings-Ref` trace values, Message-IDs and recipients, read
//! from an embedded `message/rfc822` (or `message/global`) part, a `text/rfc822-headers` or
//! `message/rfc822-headers` part, or header lines quoted in a plain-text body (qmail, Exim and Exchange copy
//! the original's headers below their text; replies quote them with `>`).
//!
//! Only header sections are read, never the original's body. Performs no I/O; never panics.

use mail_parser::{Message, PartType};

use super::fields::{self, Field};
use super::{address, content_type, part_text, recognise};

/// The header that carries our signed trace value.
pub(crate) const TRACE_HEADER: &str = "X-Tidings-Ref";
/// Longer trace values are ignored: ours are short, and a huge one is junk.
const MAX_REF: usize = 512;
/// Most trace refs, Message-IDs and recipients kept from one report.
pub(crate) const MAX_VALUES: usize = 100;
/// Headers of the original that name its recipients.
const RECIPIENT_HEADERS: &[&str] =
    &["To", "Delivered-To", "X-Original-To", "X-HmXmrOriginalRecipient", "X-Envelope-To"];

#[derive(Debug, Default)]
pub(crate) struct Original {
    pub(crate) trace_refs: Vec<String>,
    pub(crate) message_ids: Vec<String>,
    pub(crate) recipients: Vec<String>,
    /// Each embedded original's recipients, in order (for a complaint that names nobody else).
    pub(crate) first_recipients: Vec<String>,
}

/// Reads every embedded original of `message`, then the header lines quoted in its text.
pub(crate) fn collect(message: &Message<'_>) -> Original {
    let mut original = Original::default();
    for part in &message.parts {
        let (ctype, subtype) = content_type(part);
        let headers = match &part.body {
            PartType::Message(nested) => Some(nested_headers(nested)),
            body if is_headers_part(&ctype, &subtype) => part_text(body).map(|text| fields::header_section(&text)),
            _ => None,
        };
        if let Some(headers) = headers {
            original.add(&headers);
        }
    }
    quoted(&recognise::body_text(message), &mut original);
    original
}

fn is_headers_part(ctype: &str, subtype: &str) -> bool {
    matches!((ctype, subtype), ("text" | "message", "rfc822-headers" | "global-headers"))
        || (ctype == "message" && matches!(subtype, "rfc822" | "global"))
}

/// The header fields of a nested message, from the raw bytes mail-parser kept.
fn nested_headers(nested: &Message<'_>) -> Vec<Field> {
    let Some(root) = nested.parts.first() else { return Vec::new() };
    let range = root.offset_header as usize..root.offset_body as usize;
    match nested.raw_message.get(range) {
        Some(bytes) => fields::header_section(&String::from_utf8_lossy(bytes)),
        None => Vec::new(),
    }
}

impl Original {
    fn add(&mut self, headers: &[Field]) {
        let mut found = Vec::new();
        for field in headers {
            if field.is(TRACE_HEADER) {
                self.add_ref(&field.value);
            } else if field.is("Message-ID") {
                let id = field.value.trim();
                if !id.is_empty() {
                    push_unique(&mut self.message_ids, bracketed(id));
                }
            } else if RECIPIENT_HEADERS.iter().any(|name| field.is(name)) {
                for address in address::find(&field.value) {
                    if found.len() < MAX_VALUES && !found.iter().any(|f: &String| f.eq_ignore_ascii_case(address)) {
                        found.push(address.to_owned());
                    }
                }
            }
        }
        if self.first_recipients.is_empty() {
            self.first_recipients.clone_from(&found);
        }
        for recipient in found {
            push_unique(&mut self.recipients, recipient);
        }
    }

    fn add_ref(&mut self, value: &str) {
        let value = value.trim();
        if !value.is_empty() && value.len() <= MAX_REF {
            push_unique(&mut self.trace_refs, value.to_owned());
        }
    }
}

/// Trace values and Message-IDs in header lines quoted in a text body (`X-Tidings-Ref: v`, `> Message-ID: <i>`).
fn quoted(text: &str, original: &mut Original) {
    for line in text.lines() {
        let line = line.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case(TRACE_HEADER) {
            original.add_ref(value);
        } else if name.eq_ignore_ascii_case("Message-ID") {
            let id = value.trim();
            if id.starts_with('<') && id.ends_with('>') && id.len() > 2 {
                push_unique(&mut original.message_ids, id.to_owned());
            }
        }
    }
}

/// The person who complained, when a complaint names nobody else: the first embedded original's only recipient.
pub(crate) fn complainant(original: &Original) -> Option<String> {
    match original.first_recipients.as_slice() {
        [only] => Some(only.clone()),
        _ => None,
    }
}

/// A Message-ID with angle brackets.
pub(crate) fn bracketed(id: &str) -> String {
    let id = id.trim();
    if id.starts_with('<') { id.to_owned() } else { format!("<{id}>") }
}

/// Adds a value not yet in the list, up to [`MAX_VALUES`] of them (so hostile input stays cheap).
pub(crate) fn push_unique(list: &mut Vec<String>, value: String) {
    if list.len() < MAX_VALUES && !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_header_lines_give_trace_refs_and_message_ids() {
        let mut original = Original::default();
        let text = "--- Below this line is a copy of the message.\n\nMessage-ID: <1@example.com>\n\
                    X-Tidings-Ref: v1.abc\n> x-tidings-ref:  v1.def  \n>> X-Tidings-Ref: v1.abc\nMessage-ID: junk\n";
        quoted(text, &mut original);
        assert_eq!(original.trace_refs, ["v1.abc", "v1.def"]);
        assert_eq!(original.message_ids, ["<1@example.com>"]);
    }

    #[test]
    fn embedded_headers_give_refs_ids_and_recipients() {
        let mut original = Original::default();
        let headers = fields::header_section(
            "To: \"A\" <a@example.com>\nMessage-ID: 2@example.com\nX-Tidings-Ref: r1\nX-Tidings-Ref: r2\n\
             X-Tidings-Ref: {}\n",
        );
        original.add(&headers);
        assert_eq!(original.trace_refs, ["r1", "r2", "{}"]);
        assert_eq!(original.message_ids, ["<2@example.com>"]);
        assert_eq!(complainant(&original).as_deref(), Some("a@example.com"));
        let long = format!("X-Tidings-Ref: {}\n", "x".repeat(MAX_REF + 1));
        original.add(&fields::header_section(&long));
        assert_eq!(original.trace_refs.len(), 3);
    }
}
