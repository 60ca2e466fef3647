//! The text as HTML fragments (for the MJML template) and as wrapped plain text with numbered link
//! references (for the text template), both generated from the same parsed [`Block`]s.
//!
//! This file owns HTML escaping and the link numbering shared by the text part and click tracking. It must not
//! add styling: the look belongs to the templates, which write it inline through the `inline_styles` filter
//! (`inline.rs`), so the tags written here must stay the ones that filter knows.

use std::borrow::Cow;

use super::markdown::{Block, Inline};
use super::text::{wrap, wrap_indented};

/// `text` with `&<>"'` replaced by entities, safe in HTML text and in quoted attributes. Borrows when there is
/// nothing to replace, which is the usual case for URLs, so personalising rarely allocates.
pub(crate) fn escape_html(text: &str) -> Cow<'_, str> {
    if !text.bytes().any(needs_escaping) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    push_escaped(&mut out, text);
    Cow::Owned(out)
}

fn needs_escaping(byte: u8) -> bool {
    matches!(byte, b'&' | b'<' | b'>' | b'"' | b'\'')
}

/// Appends `text` escaped, copying the runs between special characters whole. The special characters are
/// ASCII, so splitting at them never cuts a UTF-8 sequence.
pub(crate) fn push_escaped(out: &mut String, text: &str) {
    let mut start = 0;
    for (index, byte) in text.bytes().enumerate() {
        let entity = match byte {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.push_str(&text[start..index]);
        out.push_str(entity);
        start = index + 1;
    }
    out.push_str(&text[start..]);
}

/// Blocks as HTML: `<p>`, `<ul>`/`<ol>`, and inline `<strong>`, `<em>`, `<code>`, `<a>`, `<br />`. Void
/// elements are self-closed because mrml parses the fragment as XML-like markup.
pub(crate) fn blocks_html(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => {
                out.push_str("<p>");
                inlines_html(inlines, &mut out);
                out.push_str("</p>");
            }
            Block::List { start, items } => {
                match start {
                    Some(1) => out.push_str("<ol>"),
                    Some(start) => out.push_str(&format!("<ol start=\"{start}\">")),
                    None => out.push_str("<ul>"),
                }
                for item in items {
                    out.push_str("<li>");
                    inlines_html(item, &mut out);
                    out.push_str("</li>");
                }
                out.push_str(if start.is_some() { "</ol>" } else { "</ul>" });
            }
        }
    }
    out
}

fn inlines_html(inlines: &[Inline], out: &mut String) {
    for inline in inlines {
        match inline {
            Inline::Text(text) => push_escaped(out, text),
            Inline::Code(code) => {
                out.push_str("<code>");
                push_escaped(out, code);
                out.push_str("</code>");
            }
            Inline::Emphasis(content) => wrapped_html(out, "em", content),
            Inline::Strong(content) => wrapped_html(out, "strong", content),
            Inline::Link { url, content } => {
                out.push_str("<a href=\"");
                push_escaped(out, url);
                out.push_str("\">");
                inlines_html(content, out);
                out.push_str("</a>");
            }
            Inline::LineBreak => out.push_str("<br />"),
        }
    }
}

fn wrapped_html(out: &mut String, tag: &str, content: &[Inline]) {
    out.push_str(&format!("<{tag}>"));
    inlines_html(content, out);
    out.push_str(&format!("</{tag}>"));
}

/// The web links of an issue, numbered from 1 in order of first appearance. The text part refers to them as
/// `[n]`; the same numbers identify them for click tracking.
#[derive(Debug, Default)]
pub(crate) struct LinkTable {
    urls: Vec<String>,
}

impl LinkTable {
    /// The number of `url`, adding it if it is new. Issues hold a few dozen links, so a scan is enough.
    pub fn number(&mut self, url: &str) -> usize {
        match self.urls.iter().position(|known| known == url) {
            Some(index) => index + 1,
            None => {
                self.urls.push(url.to_owned());
                self.urls.len()
            }
        }
    }

    pub fn into_urls(self) -> Vec<String> {
        self.urls
    }

    pub fn urls(&self) -> &[String] {
        &self.urls
    }
}

/// Blocks as plain text wrapped to `width`, paragraphs separated by a blank line. Web links become `text [n]`;
/// mail links show their address, which is more use in plain text than a number.
pub(crate) fn blocks_text(blocks: &[Block], links: &mut LinkTable, width: usize) -> String {
    let mut parts = Vec::with_capacity(blocks.len());
    for block in blocks {
        match block {
            Block::Paragraph(inlines) => parts.push(wrap(&inlines_text(inlines, links), width)),
            Block::List { start, items } => {
                let mut lines = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    let marker = match start {
                        Some(start) => format!("{}. ", *start as usize + index),
                        None => "- ".to_owned(),
                    };
                    let indent = " ".repeat(marker.chars().count());
                    lines.push(wrap_indented(&inlines_text(item, links), width, &marker, &indent));
                }
                parts.push(lines.join("\n"));
            }
        }
    }
    parts.join("\n\n")
}

pub(crate) fn inlines_text(inlines: &[Inline], links: &mut LinkTable) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(text) | Inline::Code(text) => out.push_str(text),
            Inline::Emphasis(content) | Inline::Strong(content) => out.push_str(&inlines_text(content, links)),
            Inline::Link { url, content } => {
                let text = inlines_text(content, links);
                out.push_str(&text);
                match url.strip_prefix("mailto:") {
                    Some(address) if address == text => {}
                    Some(address) => out.push_str(&format!(" ({address})")),
                    None => out.push_str(&format!(" [{}]", links.number(url))),
                }
            }
            Inline::LineBreak => out.push('\n'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> Inline {
        Inline::Text(text.to_owned())
    }

    fn link(url: &str, label: &str) -> Inline {
        Inline::Link { url: url.to_owned(), content: vec![text(label)] }
    }

    #[test]
    fn html_escapes_text_and_attributes() {
        let blocks = vec![Block::Paragraph(vec![text("<b>\"x\" & 'y'</b> "), link("https://e.com/?a=1&b=2", "e")])];
        assert_eq!(
            blocks_html(&blocks),
            "<p>&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt; <a href=\"https://e.com/?a=1&amp;b=2\">e</a></p>"
        );
    }

    #[test]
    fn escaping_borrows_when_nothing_needs_escaping() {
        assert!(matches!(escape_html("https://example.com/u/abc"), Cow::Borrowed(_)));
        assert_eq!(escape_html("a&b"), "a&amp;b");
    }

    #[test]
    fn lists_keep_their_start_number() {
        let blocks = vec![Block::List { start: Some(3), items: vec![vec![text("c")], vec![text("d")]] }];
        assert_eq!(blocks_html(&blocks), "<ol start=\"3\"><li>c</li><li>d</li></ol>");
        let mut links = LinkTable::default();
        assert_eq!(blocks_text(&blocks, &mut links, 72), "3. c\n4. d");
    }

    #[test]
    fn text_numbers_each_web_link_once_and_spells_out_mail_links() {
        let mut links = LinkTable::default();
        let inlines = vec![
            link("https://a.example/", "A"),
            text(", "),
            link("https://b.example/", "B"),
            text(", "),
            link("https://a.example/", "A again"),
            text(", "),
            link("mailto:ed@example.com", "write"),
        ];
        assert_eq!(inlines_text(&inlines, &mut links), "A [1], B [2], A again [1], write (ed@example.com)");
        assert_eq!(links.urls(), ["https://a.example/", "https://b.example/"]);
    }
}
