//! The Markdown body of an issue: intro, one `##` section per news item, and an outro after `---`.
//!
//! This file owns the body's rules and the small document model ([`Block`], [`Inline`]) both email parts are
//! generated from. Raw HTML is kept as text (so it is shown escaped, never passed through), only http(s) and
//! mailto links are accepted, and constructs an email cannot carry well (images, code blocks, tables) are
//! refused with their line. It performs no I/O and renders nothing.

use std::iter::Peekable;
use std::ops::Range;

use pulldown_cmark::{Event, HeadingLevel, LinkType, OffsetIter, Options, Parser, Tag, TagEnd};

use super::error::{RenderError, line_column};

/// A paragraph or a list: the only blocks an issue's text is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    /// A flat list; `start` is the first number of an ordered list, `None` for bullets.
    List {
        start: Option<u64>,
        items: Vec<Vec<Inline>>,
    },
}

/// Running text. `Text` holds the characters as written (including any raw HTML): it is escaped on output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Code(String),
    Emphasis(Vec<Inline>),
    Strong(Vec<Inline>),
    /// `url` is an http, https or mailto URL.
    Link {
        url: String,
        content: Vec<Inline>,
    },
    LineBreak,
}

/// Where a news item comes from: the outlet's name and the link to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLink {
    pub text: String,
    pub url: String,
}

/// One numbered news item: a lead-in (the `##` heading), its text, and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The lead-in as plain text.
    pub heading: String,
    /// The item's paragraphs, without the source line when the source stood on a line of its own.
    pub body: Vec<Block>,
    pub source: SourceLink,
    /// The heading's line in the issue file, for messages.
    pub line: usize,
}

pub(crate) struct Body {
    pub intro: Vec<Block>,
    pub items: Vec<Item>,
    pub outro: Vec<Block>,
}

/// Parses the body, which starts at byte `body_start` of the file `text`, so lines in errors are file lines.
pub(crate) fn parse_body(file: &str, text: &str, body_start: usize) -> Result<Body, RenderError> {
    let events = Parser::new_ext(&text[body_start..], Options::empty()).into_offset_iter().peekable();
    let mut parser = BodyParser { file, text, base: body_start, events };
    let mut body = Body { intro: Vec::new(), items: Vec::new(), outro: Vec::new() };
    // The item being read: its heading, line and blocks so far. `None` before the first `##` and after `---`.
    let mut current: Option<(String, usize, Vec<Block>)> = None;
    let mut in_outro = false;

    while let Some((event, range)) = parser.events.next() {
        let blocks = match (&mut current, in_outro) {
            (Some((_, _, blocks)), _) => blocks,
            (None, false) => &mut body.intro,
            (None, true) => &mut body.outro,
        };
        match event {
            Event::Start(Tag::Heading { level: HeadingLevel::H2, .. }) if !in_outro => {
                let line = parser.line(&range);
                let inlines = parser.inlines(TagEnd::Heading(HeadingLevel::H2))?;
                if contains_link(&inlines) {
                    return Err(parser.error(&range, "a lead-in cannot hold a link: put the link in the text"));
                }
                let heading = plain_text(&inlines).trim().to_owned();
                if let Some(done) = current.replace((heading, line, Vec::new())) {
                    body.items.push(parser.finish_item(done)?);
                }
            }
            Event::Start(Tag::Heading { .. }) => {
                let message = "only `## ` headings are allowed, one per news item (and none after the `---`)";
                return Err(parser.error(&range, message));
            }
            Event::Start(Tag::Paragraph) => blocks.push(Block::Paragraph(parser.inlines(TagEnd::Paragraph)?)),
            Event::Start(Tag::List(start)) => blocks.push(parser.list(start)?),
            Event::Start(Tag::HtmlBlock) => blocks.push(Block::Paragraph(parser.html_block()?)),
            Event::Rule => match current.take() {
                Some(done) if !in_outro => {
                    body.items.push(parser.finish_item(done)?);
                    in_outro = true;
                }
                _ => return Err(parser.error(&range, "a `---` line may only follow the last news item, once")),
            },
            other => return Err(parser.unsupported(&other, &range)),
        }
    }
    if let Some(done) = current.take() {
        body.items.push(parser.finish_item(done)?);
    }
    if body.items.is_empty() {
        let (line, _) = line_column(text, body_start);
        let message = "the issue has no news items: start each one with a `## ` heading";
        return Err(RenderError::Markdown { file: file.to_owned(), line, message: message.to_owned() });
    }
    Ok(body)
}

struct BodyParser<'a> {
    file: &'a str,
    text: &'a str,
    base: usize,
    events: Peekable<OffsetIter<'a>>,
}

impl BodyParser<'_> {
    fn line(&self, range: &Range<usize>) -> usize {
        line_column(self.text, self.base + range.start).0
    }

    fn error(&self, range: &Range<usize>, message: &str) -> RenderError {
        RenderError::Markdown { file: self.file.to_owned(), line: self.line(range), message: message.to_owned() }
    }

    fn unsupported(&self, event: &Event<'_>, range: &Range<usize>) -> RenderError {
        let what = match event {
            Event::Start(Tag::Image { .. }) => "images are not supported in an issue: link to the picture instead",
            Event::Start(Tag::CodeBlock(_)) => "code blocks are not supported in an issue",
            Event::Start(Tag::BlockQuote(_)) => "block quotes are not supported in an issue",
            Event::Start(Tag::List(_)) => "nested lists are not supported in an issue",
            _ => "this Markdown construct is not supported in an issue",
        };
        self.error(range, what)
    }

    /// Reads inline content up to `end`, which closes the container just opened.
    fn inlines(&mut self, end: TagEnd) -> Result<Vec<Inline>, RenderError> {
        let mut out = Vec::new();
        while let Some((event, range)) = self.events.next() {
            match event {
                Event::End(tag) if tag == end => return Ok(out),
                event => self.inline(event, range, &mut out)?,
            }
        }
        Ok(out)
    }

    fn inline(&mut self, event: Event<'_>, range: Range<usize>, out: &mut Vec<Inline>) -> Result<(), RenderError> {
        match event {
            // Raw HTML is the editor's text, not markup: it becomes text and is escaped like any other.
            Event::Text(text) | Event::Html(text) | Event::InlineHtml(text) => push_text(out, &text),
            Event::SoftBreak => push_text(out, " "),
            Event::HardBreak => out.push(Inline::LineBreak),
            Event::Code(code) => out.push(Inline::Code(code.into_string())),
            Event::Start(Tag::Emphasis) => out.push(Inline::Emphasis(self.inlines(TagEnd::Emphasis)?)),
            Event::Start(Tag::Strong) => out.push(Inline::Strong(self.inlines(TagEnd::Strong)?)),
            Event::Start(Tag::Link { link_type, dest_url, .. }) => {
                let url = self.checked_url(link_type, &dest_url, &range)?;
                out.push(Inline::Link { url, content: self.inlines(TagEnd::Link)? });
            }
            other => return Err(self.unsupported(&other, &range)),
        }
        Ok(())
    }

    /// Only web and mail links: anything else (`javascript:`, `data:`, a relative path) would be a hazard or a
    /// dead link in an email.
    fn checked_url(&self, link_type: LinkType, dest: &str, range: &Range<usize>) -> Result<String, RenderError> {
        let url = if link_type == LinkType::Email { format!("mailto:{dest}") } else { dest.to_owned() };
        let scheme = url.split_once(':').map(|(scheme, _)| scheme.to_ascii_lowercase());
        let allowed = match scheme.as_deref() {
            Some("http" | "https") => url[url.find(':').unwrap_or(0)..].starts_with("://"),
            Some("mailto") => true,
            _ => false,
        };
        if allowed && !url.chars().any(char::is_whitespace) {
            Ok(url)
        } else {
            let shown: String = url.chars().take(60).collect();
            Err(self.error(range, &format!("the link `{shown}` is refused: only http, https and mailto links work")))
        }
    }

    fn list(&mut self, start: Option<u64>) -> Result<Block, RenderError> {
        let mut items = Vec::new();
        while let Some((event, range)) = self.events.next() {
            match event {
                Event::End(TagEnd::List(_)) => break,
                Event::Start(Tag::Item) => items.push(self.list_item()?),
                other => return Err(self.unsupported(&other, &range)),
            }
        }
        Ok(Block::List { start, items })
    }

    /// A list item's text. In a loose list each item holds paragraphs; they are joined with line breaks.
    fn list_item(&mut self) -> Result<Vec<Inline>, RenderError> {
        let mut out = Vec::new();
        while let Some((event, range)) = self.events.next() {
            match event {
                Event::End(TagEnd::Item) => break,
                Event::Start(Tag::Paragraph) => {
                    if !out.is_empty() {
                        out.push(Inline::LineBreak);
                    }
                    out.extend(self.inlines(TagEnd::Paragraph)?);
                }
                event => self.inline(event, range, &mut out)?,
            }
        }
        Ok(out)
    }

    /// A block of raw HTML, kept as the text the editor typed.
    fn html_block(&mut self) -> Result<Vec<Inline>, RenderError> {
        let mut out = Vec::new();
        while let Some((event, range)) = self.events.next() {
            match event {
                Event::End(TagEnd::HtmlBlock) => break,
                Event::Html(text) | Event::Text(text) => push_text(&mut out, &text),
                other => return Err(self.unsupported(&other, &range)),
            }
        }
        if let Some(Inline::Text(text)) = out.last_mut() {
            text.truncate(text.trim_end().len());
        }
        Ok(out)
    }

    /// Completes an item: its source is the last paragraph that is only a link (taken out of the text), or
    /// failing that the last link anywhere in its text (left in place).
    fn finish_item(&self, (heading, line, mut body): (String, usize, Vec<Block>)) -> Result<Item, RenderError> {
        let error = |message: String| RenderError::Markdown { file: self.file.to_owned(), line, message };
        if heading.is_empty() {
            return Err(error("a news item's `## ` heading (its lead-in) is empty".to_owned()));
        }
        let source = match body.iter().rposition(|block| lone_link(block).is_some()) {
            Some(index) => lone_link(&body.remove(index)),
            None => body.iter().rev().find_map(last_link),
        };
        let Some(source) = source else {
            return Err(error(format!(
                "the item \"{heading}\" has no source: end it with a line like [Outlet](https://...)"
            )));
        };
        if body.is_empty() {
            return Err(error(format!("the item \"{heading}\" has a source but no text")));
        }
        Ok(Item { heading, body, source, line })
    }
}

fn push_text(out: &mut Vec<Inline>, text: &str) {
    match out.last_mut() {
        Some(Inline::Text(last)) => last.push_str(text),
        _ => out.push(Inline::Text(text.to_owned())),
    }
}

/// The text of inline content without its markup.
pub(crate) fn plain_text(inlines: &[Inline]) -> String {
    let mut out = String::new();
    for inline in inlines {
        match inline {
            Inline::Text(text) | Inline::Code(text) => out.push_str(text),
            Inline::Emphasis(content) | Inline::Strong(content) | Inline::Link { content, .. } => {
                out.push_str(&plain_text(content));
            }
            Inline::LineBreak => out.push(' '),
        }
    }
    out
}

fn contains_link(inlines: &[Inline]) -> bool {
    inlines.iter().any(|inline| match inline {
        Inline::Link { .. } => true,
        Inline::Emphasis(content) | Inline::Strong(content) => contains_link(content),
        _ => false,
    })
}

/// The link of a paragraph that holds nothing else (besides spaces, parentheses or a "Source:" label).
fn lone_link(block: &Block) -> Option<SourceLink> {
    let Block::Paragraph(inlines) = block else { return None };
    let mut links = inlines.iter().filter(|inline| match inline {
        Inline::Text(text) => {
            let bare = text.trim_matches(|c: char| c.is_whitespace() || c == '(' || c == ')');
            !(bare.is_empty() || bare.eq_ignore_ascii_case("source:"))
        }
        _ => true,
    });
    match (links.next(), links.next()) {
        (Some(Inline::Link { url, content }), None) => {
            Some(SourceLink { text: plain_text(content).trim().to_owned(), url: url.clone() })
        }
        _ => None,
    }
}

fn last_link(block: &Block) -> Option<SourceLink> {
    fn in_inlines(inlines: &[Inline]) -> Option<SourceLink> {
        inlines.iter().rev().find_map(|inline| match inline {
            Inline::Link { url, content } => {
                Some(SourceLink { text: plain_text(content).trim().to_owned(), url: url.clone() })
            }
            Inline::Emphasis(content) | Inline::Strong(content) => in_inlines(content),
            _ => None,
        })
    }
    match block {
        Block::Paragraph(inlines) => in_inlines(inlines),
        Block::List { items, .. } => items.iter().rev().find_map(|item| in_inlines(item)),
    }
}

#[cfg(test)]
mod tests;
