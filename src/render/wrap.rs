//! Short lines for HTML: mrml writes lines of many kilobytes, and a mail line may not exceed 998 octets. Lines
//! are broken once per issue, at a space that HTML treats as insignificant (between attributes, or in text,
//! where a line break and a space render alike), so per recipient the parts can go as 8-bit text without any
//! encoding.

/// Literal lines are kept under this many bytes, leaving room for a slot value (a URL, a name) on the line.
pub(crate) const MAX_LINE: usize = 700;

/// How many bytes a slot placeholder counts for: about what a signed link or a long name puts in its place.
const SLOT_WIDTH: usize = 160;

/// Elements around which a line break renders as nothing: whitespace next to a block or table boundary is not
/// rendered (and the reference MJML compiler puts line breaks and indentation between all of these).
const BLOCKS: [&str; 17] =
    ["table", "tbody", "thead", "tr", "td", "th", "div", "p", "center", "h1", "h2", "h3", "h4", "ul", "ol", "li", "hr"];

/// Whether the tag that starts `at` (`<name`, `</name` or a conditional comment) is a block or table element.
fn is_block(at: &str) -> bool {
    if at.starts_with("<!--[if") || at.starts_with("<![endif]") {
        return true;
    }
    let name = at.trim_start_matches('<').trim_start_matches('/');
    let end = name.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(name.len());
    let name = name[..end].to_ascii_lowercase();
    BLOCKS.contains(&name.as_str())
}

/// Breaks lines longer than `max` bytes at the first space after `max` between two attributes of a tag; a line
/// that grows past `max + max / 4` without one is broken at a space in its text (outside `<pre>` and
/// `<textarea>`). Spaces inside quoted attribute values, comments (Outlook's conditional comments) and
/// declarations are never touched. Past `max`, a line also breaks between two tags when either is a block or
/// table element (or a conditional comment): a run of closing tags and comments has no space to break at. A
/// slot placeholder counts as [`SLOT_WIDTH`] bytes, the value it will become. A line without any such place
/// stays as it is (the mailer then falls back to quoted-printable).
pub(crate) fn wrap_html(html: &str, max: usize) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / max + 8);
    let (mut line, mut in_tag, mut quote, mut preformatted) = (0usize, false, None::<char>, 0usize);
    // Whether the tag being read is a block element; and, when the last thing written was a whole tag or
    // comment, whether that one was.
    let (mut tag_block, mut after_tag) = (false, None::<bool>);
    let mut rest = html;
    while let Some(ch) = rest.chars().next() {
        if ch == '<' && quote.is_none() && !in_tag {
            tag_block = is_block(rest);
            if line >= max && preformatted == 0 && after_tag.is_some_and(|previous| previous || tag_block) {
                out.push('\n');
                line = 0;
            }
        }
        // A comment (Outlook's `<!--[if mso | IE]>...<![endif]-->` among them) and a declaration are copied
        // whole: Outlook stops recognising a conditional comment that a line break splits.
        if quote.is_none() && !in_tag && rest.starts_with("<!") {
            let end =
                if rest.starts_with("<!--") { rest.find("-->").map(|i| i + 3) } else { rest.find('>').map(|i| i + 1) };
            let chunk = &rest[..end.unwrap_or(rest.len())];
            out.push_str(chunk);
            line = match chunk.rfind('\n') {
                Some(newline) => chunk.len() - newline - 1,
                None => line + chunk.len(),
            };
            after_tag = Some(tag_block);
            rest = &rest[chunk.len()..];
            continue;
        }
        if rest.starts_with(super::slots::RESERVED) {
            line += SLOT_WIDTH;
        }
        let closes_tag = ch == '>' && in_tag && quote.is_none();
        match ch {
            '\n' => line = 0,
            '<' if quote.is_none() => {
                in_tag = true;
                let tag = rest.get(..10).unwrap_or(rest).to_ascii_lowercase();
                if tag.starts_with("<pre") || tag.starts_with("<textarea") {
                    preformatted += 1;
                } else if tag.starts_with("</pre") || tag.starts_with("</textarea") {
                    preformatted = preformatted.saturating_sub(1);
                }
            }
            '>' if quote.is_none() => in_tag = false,
            '"' | '\'' if in_tag => {
                quote = match quote {
                    None => Some(ch),
                    Some(open) if open == ch => None,
                    other => other,
                }
            }
            ' ' if quote.is_none() && ((in_tag && line >= max) || (line >= max + max / 4 && preformatted == 0)) => {
                out.push('\n');
                line = 0;
                if !in_tag {
                    after_tag = None;
                }
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        after_tag = if closes_tag {
            Some(tag_block)
        } else if in_tag {
            after_tag
        } else {
            None
        };
        out.push(ch);
        line += ch.len_utf8();
        rest = &rest[ch.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_break_at_spaces_outside_attribute_values() {
        let html = r#"<td style="a: b; c: d" class="x">one two three four</td>"#;
        let wrapped = wrap_html(html, 5);
        assert!(wrapped.contains(r#"style="a: b; c: d""#), "{wrapped}");
        assert!(wrapped.contains("\"\nclass=\"x\">"), "the tag breaks between its attributes: {wrapped}");
        assert_eq!(wrapped.replace('\n', " "), html);
    }

    #[test]
    fn preformatted_text_and_short_lines_are_left_alone() {
        let html = "<pre>a b c d e f</pre>";
        assert_eq!(wrap_html(html, 2), html);
        assert_eq!(wrap_html("<p>short line</p>\n<p>another</p>", 700), "<p>short line</p>\n<p>another</p>");
    }

    #[test]
    fn conditional_comments_are_never_split() {
        let html = format!(
            "<div>{}</div><!--[if mso | IE]><table border=\"0\" width=\"600\"><tr><td><![endif]--><p>{}</p>\
             <!--[if mso | IE]></td></tr></table><![endif]--><!DOCTYPE html>",
            "word ".repeat(40),
            "more text ".repeat(30)
        );
        for max in [5, 20, 60, 120] {
            let wrapped = wrap_html(&html, max);
            let bare = |text: &str| text.split_whitespace().collect::<String>();
            assert_eq!(bare(&wrapped), bare(&html), "only line breaks were added or replaced spaces");
            for line in wrapped.lines() {
                assert_eq!(line.matches("<!--").count(), line.matches("-->").count(), "split at {max}: {line}");
            }
        }
    }

    #[test]
    fn a_run_of_tags_breaks_only_next_to_a_block_element() {
        let html = format!(
            "<p>{}</p></td></tr><!--[if mso | IE]></td><![endif]--></table><a>a</a><b>b</b><i>i</i>",
            "x".repeat(20)
        );
        let wrapped = wrap_html(&html, 10);
        assert_eq!(wrapped.replace('\n', ""), html, "only line breaks were added");
        assert!(wrapped.lines().count() >= 4, "{wrapped}");
        assert!(
            wrapped.lines().all(|line| line.starts_with('<') && line.ends_with('>')),
            "breaks fall between tags: {wrapped}"
        );
        assert!(wrapped.contains("<a>a</a><b>b</b><i>i</i>"), "{wrapped}");
        let inline = "<b>b</b><i>i</i><a>a</a>".repeat(20);
        assert_eq!(wrap_html(&inline, 10), inline, "a line break between inline tags would render as a space");
    }

    #[test]
    fn a_placeholder_counts_as_the_value_it_becomes() {
        let html = format!("<p>{} {} end</p>", "a".repeat(20), super::super::slots::RESERVED);
        assert_eq!(wrap_html(&html, 200), html);
        assert!(wrap_html(&html, 100).contains('\n'), "the slot's width pushes the line past 100 + 25");
        assert!(!wrap_html(&html.replace(super::super::slots::RESERVED, "short"), 100).contains('\n'));
    }

    #[test]
    fn apostrophes_in_text_do_not_open_a_quote() {
        let html = "<p>China's regulators say it's fine and more words here</p>";
        let wrapped = wrap_html(html, 10);
        assert!(wrapped.lines().all(|line| line.len() < 30), "{wrapped}");
        assert_eq!(wrapped.replace('\n', " "), html);
    }
}
