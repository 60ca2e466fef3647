//! MJML to HTML with mrml, and mrml's errors traced back to the template line that produced them.
//!
//! This file owns the mrml options (no comments, no web fonts: an email must not load external assets) and
//! error placement. mrml reports byte offsets in the rendered MJML, after minijinja has inlined the partials;
//! the failing line is matched against the templates' lines to name the template the editor should open.

use mrml::prelude::parser::Error as ParseError;
use mrml::prelude::render::RenderOptions;

use super::error::{RenderError, line_column};
use super::template::Templates;

/// The HTML of an email, and its `<mj-title>` as plain text.
pub(crate) struct Rendered {
    pub html: String,
    pub title: Option<String>,
}

/// Turns `mjml`, rendered from template `top`, into HTML.
pub(crate) fn to_html(templates: &Templates, top: &str, mjml: &str) -> Result<Rendered, RenderError> {
    if let Some((offset, name)) = unknown_element(mjml) {
        return Err(place(templates, top, mjml, Some(offset), &format!("unknown MJML element `<{name}>`")));
    }
    let parsed = mrml::parse(mjml).map_err(|error| parse_error(templates, top, mjml, &error))?;
    // mrml only warns about attributes it does not know; in a template that is a typo worth stopping for.
    if let Some(warning) = parsed.warnings.first() {
        return Err(place(templates, top, mjml, Some(warning.span.start), &warning.kind.to_string()));
    }
    let options = RenderOptions { disable_comments: true, social_icon_origin: None, fonts: Default::default() };
    let html = parsed.element.render(&options).map_err(|error| RenderError::Mjml {
        template: top.to_owned(),
        line: None,
        message: error.to_string(),
    })?;
    Ok(Rendered { html, title: parsed.element.get_title().map(|title| unescape(&title)) })
}

/// Every element MJML defines. mrml accepts any `mj-` name (and a mistyped one silently renders nothing), so
/// names are checked here first.
const ELEMENTS: &[&str] = &[
    "mj-accordion",
    "mj-accordion-element",
    "mj-accordion-text",
    "mj-accordion-title",
    "mj-all",
    "mj-attributes",
    "mj-body",
    "mj-breakpoint",
    "mj-button",
    "mj-carousel",
    "mj-carousel-image",
    "mj-class",
    "mj-column",
    "mj-divider",
    "mj-font",
    "mj-group",
    "mj-head",
    "mj-hero",
    "mj-html-attribute",
    "mj-html-attributes",
    "mj-image",
    "mj-include",
    "mj-navbar",
    "mj-navbar-link",
    "mj-preview",
    "mj-raw",
    "mj-section",
    "mj-selector",
    "mj-social",
    "mj-social-element",
    "mj-spacer",
    "mj-style",
    "mj-table",
    "mj-text",
    "mj-title",
    "mj-wrapper",
];

/// The first `<mj-...>` or `</mj-...>` tag whose name MJML does not define, with its byte offset. Content
/// from issues is escaped before it reaches the MJML, so only template markup can match.
fn unknown_element(mjml: &str) -> Option<(usize, String)> {
    let mut rest = mjml;
    let mut base = 0;
    while let Some(found) = rest.find("<") {
        let tag = &rest[found + 1..];
        let tag = tag.strip_prefix('/').unwrap_or(tag);
        if tag.starts_with("mj-") {
            let name: String = tag.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            if !ELEMENTS.contains(&name.as_str()) {
                return Some((base + found, name));
            }
        }
        base += found + 1;
        rest = &rest[found + 1..];
    }
    None
}

/// Undoes the escaping minijinja applied to values in MJML (see `template::format_value`), for a title that
/// becomes a subject header.
fn unescape(text: &str) -> String {
    (text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&#39;", "'")).replace("&amp;", "&")
}

fn parse_error(templates: &Templates, top: &str, mjml: &str, error: &ParseError) -> RenderError {
    let at = |offset: usize, message: &str| place(templates, top, mjml, Some(offset), message);
    match error {
        ParseError::UnexpectedElement { position, .. } => at(position.start, "unexpected element"),
        ParseError::UnexpectedToken { position, .. } => at(position.start, "unexpected token"),
        ParseError::MissingAttribute { name, position, .. } => {
            at(position.start, &format!("missing attribute `{name}`"))
        }
        ParseError::InvalidAttribute { position, .. } => at(position.start, "invalid attribute"),
        ParseError::InvalidFormat { position, .. } => at(position.start, "invalid format"),
        ParseError::ParserError { source, .. } => {
            let position = source.pos();
            let offset = offset_of(mjml, position.row as usize, position.col as usize);
            at(offset, &format!("malformed markup: {source}"))
        }
        ParseError::EndOfStream { .. } => {
            place(templates, top, mjml, None, "the document ends inside an element: a tag is not closed")
        }
        other => place(templates, top, mjml, None, &other.to_string()),
    }
}

/// Byte offset of a 1-based row and column (in characters).
fn offset_of(text: &str, row: usize, column: usize) -> usize {
    let line_start: usize = text.split_inclusive('\n').take(row.saturating_sub(1)).map(str::len).sum();
    let line = text[line_start..].lines().next().unwrap_or_default();
    line_start + line.char_indices().nth(column.saturating_sub(1)).map_or(line.len(), |(index, _)| index)
}

/// Builds the error, naming the template line the failing MJML line came from when it can be found, and the
/// rendered position otherwise.
fn place(templates: &Templates, top: &str, mjml: &str, offset: Option<usize>, message: &str) -> RenderError {
    let Some(offset) = offset else {
        return RenderError::Mjml { template: top.to_owned(), line: None, message: message.to_owned() };
    };
    let (line, column) = line_column(mjml, offset);
    let rendered_line = mjml.lines().nth(line - 1).unwrap_or_default();
    let excerpt: String = rendered_line.trim().chars().take(80).collect();
    match find_origin(templates, top, rendered_line) {
        Some((template, template_line)) => RenderError::Mjml {
            template: template.to_owned(),
            line: Some(template_line),
            message: format!("{message} in `{excerpt}`"),
        },
        None => RenderError::Mjml {
            template: top.to_owned(),
            line: None,
            message: format!("{message} at line {line}, column {column} of the rendered MJML, in `{excerpt}`"),
        },
    }
}

/// The template line whose literal text (everything outside `{{ }}`, `{% %}` and `{# #}`) appears, in order, in
/// `rendered_line` and covers most of it; the first such line on a tie. Lines with fewer than three literal
/// characters are skipped: they would match almost anything.
fn find_origin<'t>(templates: &'t Templates, top: &str, rendered_line: &str) -> Option<(&'t str, usize)> {
    let rendered = rendered_line.trim();
    // The top template and the partials are the candidates: other top templates were not rendered.
    let candidates = templates.sources().filter(|(name, _)| *name == top || name.starts_with("partials/"));
    let mut best: Option<(usize, &str, usize)> = None;
    for (name, source) in candidates.filter(|(name, _)| name.ends_with(".mjml")) {
        for (index, line) in source.lines().enumerate() {
            let pieces = literal_pieces(line.trim());
            let covered: usize = pieces.iter().map(|piece| piece.trim().len()).sum();
            if covered >= 3 && best.is_none_or(|(most, ..)| covered > most) && appears_in_order(&pieces, rendered) {
                best = Some((covered, name, index + 1));
            }
        }
    }
    best.map(|(_, name, line)| (name, line))
}

fn literal_pieces(line: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = line;
    loop {
        let opening = ["{{", "{%", "{#"].iter().filter_map(|open| rest.find(open).map(|at| (at, *open))).min();
        let Some((at, open)) = opening else { break };
        let close = match open {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        pieces.push(&rest[..at]);
        rest = rest[at..].find(close).map_or("", |end| &rest[at + end + 2..]);
    }
    pieces.push(rest);
    pieces.retain(|piece| !piece.trim().is_empty());
    pieces
}

fn appears_in_order(pieces: &[&str], rendered: &str) -> bool {
    let mut rest = rendered;
    pieces.iter().all(|piece| match rest.find(piece.trim()) {
        Some(at) => {
            rest = &rest[at + piece.trim().len()..];
            true
        }
        None => false,
    })
}

#[cfg(test)]
mod element_tests {
    use super::unknown_element;

    #[test]
    fn a_mistyped_element_is_found_with_its_offset() {
        assert_eq!(
            unknown_element("<mjml><mj-body><mj-txt>x</mj-txt></mj-body></mjml>"),
            Some((15, "mj-txt".to_owned()))
        );
        assert_eq!(unknown_element("<mjml><mj-body><mj-text>&lt;mj-x</mj-text></mj-body></mjml>"), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_tags_are_wildcards_when_matching_a_line() {
        assert_eq!(literal_pieces("<p>{{ a }} and {% if b %}x{% endif %}</p>"), ["<p>", " and ", "x", "</p>"]);
        assert!(appears_in_order(&literal_pieces("<p>{{ a }}</p>"), "<p>anything</p>"));
        assert!(!appears_in_order(&literal_pieces("<p>{{ a }}</p>"), "</p>anything<p>"));
    }

    #[test]
    fn placeholders_survive_mrml_in_attributes_and_text() {
        let markers = ["tidingsslot_view_", "tidingsslot_confirm_", "tidingsslot_name_", "tidingsslot_pixel_"];
        let mjml = format!(
            "<mjml><mj-body><mj-section><mj-column>\
             <mj-button href=\"{0}\">Go</mj-button>\
             <mj-image src=\"https://x.example/a.png\" href=\"{1}\" alt=\"{2}\" />\
             <mj-text><a href=\"{1}\" title=\"{2}\">Hi {2}</a></mj-text>\
             </mj-column></mj-section><mj-raw><img src=\"{3}\" /></mj-raw></mj-body></mjml>",
            markers[0], markers[1], markers[2], markers[3]
        );
        let templates = Templates::embedded();
        let html = to_html(&templates, "digest.mjml", &mjml).expect("renders").html;
        for marker in markers {
            assert!(html.contains(&format!("\"{marker}\"")), "{marker} was changed inside an attribute");
        }
        assert!(html.contains("Hi tidingsslot_name_</a>"));
    }

    #[test]
    fn rows_and_columns_become_byte_offsets() {
        assert_eq!(offset_of("ab\ncdé\n", 2, 3), 5);
        assert_eq!(offset_of("ab\ncd", 2, 9), 5);
    }
}
