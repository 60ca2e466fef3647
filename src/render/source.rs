//! The issue source: `emails/issues/<number>.md` split into TOML front matter and a Markdown body.
//!
//! This file owns the front matter (keys, types, and error places counted in the whole file) and
//! [`IssueSource`], the parsed issue. It takes the file's text as a string and performs no I/O; the body's
//! rules live in `markdown.rs`.

use serde::Deserialize;
use toml::Spanned;

use super::error::{RenderError, line_column};
use super::markdown::{self, Block, Item};
use super::slots::RESERVED;
use crate::domain::{IssueNumber, ListSlug};

/// One issue as the editor wrote it, checked: every link is http(s) or mailto, every item has a source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueSource {
    pub number: IssueNumber,
    /// The email's subject line; a single line of text.
    pub subject: String,
    /// The preview text mail clients show after the subject; hidden in the email itself.
    pub preheader: String,
    /// The period the issue covers, as the editor wrote it ("29 March – 4 April 2022").
    pub period: String,
    /// The list to send it to; `None`: the default list.
    pub list: Option<ListSlug>,
    /// When to send it, in the list's time zone; `None`: when the editor says so.
    pub send_at: Option<jiff::civil::DateTime>,
    /// Paragraphs before the first item; may be empty.
    pub intro: Vec<Block>,
    /// The numbered news items, in order; never empty.
    pub items: Vec<Item>,
    /// Paragraphs after the `---` that ends the items; may be empty.
    pub outro: Vec<Block>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    number: Spanned<i64>,
    subject: Spanned<String>,
    preheader: Spanned<String>,
    period: Spanned<String>,
    #[serde(default)]
    list: Option<Spanned<String>>,
    #[serde(default)]
    send_at: Option<Spanned<String>>,
}

/// Parses an issue. `path_for_messages` only names the file in errors; nothing is read from disk.
pub fn parse_issue(path_for_messages: &str, text: &str) -> Result<IssueSource, RenderError> {
    let file = path_for_messages;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let split = split_front_matter(file, text)?;
    if let Some(offset) = text.find(RESERVED) {
        let (line, _) = line_column(text, offset);
        let message = format!("the text `{RESERVED}` is reserved for Tidings' placeholders; please reword");
        return Err(RenderError::Markdown { file: file.to_owned(), line, message });
    }

    // Errors inside the front matter are placed in the whole file, so the opening `+++` line counts.
    let at = |offset: usize, message: String| {
        let (line, column) = line_column(text, split.front_matter_start + offset);
        RenderError::FrontMatter { file: file.to_owned(), line, column, message }
    };
    let front: FrontMatter = toml::from_str(split.front_matter).map_err(|error| {
        let offset = error.span().map_or(0, |span| span.start);
        at(offset, format!("front matter: {}", error.message().trim_end()))
    })?;

    let number = IssueNumber::try_from(*front.number.get_ref())
        .map_err(|error| at(front.number.span().start, format!("`number`: {error}")))?;
    let one_line = |field: &Spanned<String>, key: &str| -> Result<String, RenderError> {
        let value = field.get_ref().trim();
        if value.is_empty() {
            return Err(at(field.span().start, format!("`{key}` is empty")));
        }
        if value.chars().any(char::is_control) {
            return Err(at(field.span().start, format!("`{key}` must be one line of text")));
        }
        Ok(value.to_owned())
    };
    let list = match &front.list {
        Some(list) => Some(ListSlug::parse(list.get_ref()).map_err(|error| at(list.span().start, error))?),
        None => None,
    };
    let send_at = match &front.send_at {
        Some(send_at) => Some(send_at.get_ref().trim().parse::<jiff::civil::DateTime>().map_err(|error| {
            at(send_at.span().start, format!("`send_at` is not a date and time like \"2022-04-05 08:00\": {error}"))
        })?),
        None => None,
    };

    let body = markdown::parse_body(file, text, split.body_start)?;
    Ok(IssueSource {
        number,
        subject: one_line(&front.subject, "subject")?,
        preheader: one_line(&front.preheader, "preheader")?,
        period: one_line(&front.period, "period")?,
        list,
        send_at,
        intro: body.intro,
        items: body.items,
        outro: body.outro,
    })
}

struct Split<'a> {
    front_matter: &'a str,
    /// Byte offset of the front matter's first character in the file.
    front_matter_start: usize,
    /// Byte offset of the body's first character in the file.
    body_start: usize,
}

/// Finds the `+++` fences. The opening one must be the file's first line, so a stray `+++` later in the body
/// is never mistaken for front matter.
fn split_front_matter<'a>(file: &str, text: &'a str) -> Result<Split<'a>, RenderError> {
    let missing = |line: usize, message: &str| RenderError::FrontMatter {
        file: file.to_owned(),
        line,
        column: 1,
        message: message.to_owned(),
    };
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "+++" {
        return Err(missing(1, "the issue must start with TOML front matter between two `+++` lines"));
    }
    let front_matter_start = first.len();
    let mut offset = front_matter_start;
    for line in lines {
        if line.trim_end() == "+++" {
            return Ok(Split {
                front_matter: &text[front_matter_start..offset],
                front_matter_start,
                body_start: offset + line.len(),
            });
        }
        offset += line.len();
    }
    Err(missing(1, "the front matter opened on this line is never closed with a `+++` line"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "## Lead-in\nA paragraph.\n\n[Outlet](https://example.com/)\n";

    fn issue(front: &str) -> String {
        format!("+++\n{front}+++\n\n{BODY}")
    }

    const FRONT: &str = "number = 7\nsubject = \"Issue 7\"\npreheader = \"Pre\"\nperiod = \"This week\"\n";

    #[test]
    fn front_matter_fields_are_read_and_trimmed() {
        let text = issue(&format!("{FRONT}list = \"weekly\"\nsend_at = \"2022-04-05 08:00\"\n"));
        let source = parse_issue("7.md", &text).unwrap();
        assert_eq!(source.number.get(), 7);
        assert_eq!((source.subject.as_str(), source.period.as_str()), ("Issue 7", "This week"));
        assert_eq!(source.list.unwrap().as_str(), "weekly");
        assert_eq!(source.send_at.unwrap().to_string(), "2022-04-05T08:00:00");
        assert_eq!(source.items.len(), 1);
    }

    #[test]
    fn a_file_without_front_matter_is_refused_on_line_one() {
        let error = parse_issue("x.md", BODY).unwrap_err();
        assert!(error.to_string().starts_with("x.md:1:1: "), "{error}");
    }

    #[test]
    fn unclosed_front_matter_is_refused() {
        let error = parse_issue("x.md", "+++\nnumber = 1\n").unwrap_err();
        assert!(error.to_string().contains("never closed"), "{error}");
    }

    #[test]
    fn an_issue_number_of_zero_is_refused_at_its_value() {
        let error = parse_issue("x.md", &issue(&FRONT.replace("= 7", "= 0"))).unwrap_err();
        assert!(error.to_string().starts_with("x.md:2:10: `number`"), "{error}");
    }

    #[test]
    fn a_subject_with_a_line_break_is_refused() {
        let error = parse_issue("x.md", &issue(&FRONT.replace("\"Issue 7\"", "\"Issue\\n7\""))).unwrap_err();
        assert!(error.to_string().contains("`subject` must be one line"), "{error}");
    }

    #[test]
    fn a_bad_list_name_or_send_time_is_refused_at_its_value() {
        let error = parse_issue("x.md", &issue(&format!("{FRONT}list = \"Weekly!\"\n"))).unwrap_err();
        assert!(error.to_string().starts_with("x.md:6:8: "), "{error}");
        let error = parse_issue("x.md", &issue(&format!("{FRONT}send_at = \"next monday\"\n"))).unwrap_err();
        assert!(error.to_string().starts_with("x.md:6:11: `send_at`"), "{error}");
    }

    #[test]
    fn the_reserved_placeholder_text_is_refused_in_the_body() {
        let error = parse_issue("x.md", &issue(FRONT).replace("A paragraph", "tidingsslot_name_")).unwrap_err();
        assert!(error.to_string().starts_with("x.md:9: the text `tidingsslot"), "{error}");
    }
}
