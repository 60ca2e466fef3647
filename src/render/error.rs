//! `RenderError`: why an issue or a template could not be rendered, always naming the file and the place.
//!
//! This file owns the error type and the arithmetic that turns byte offsets into lines and columns. It must not
//! decide policy (what is an error): the parsers and the compiler do that.

use std::path::PathBuf;

/// Why rendering failed. Every message names the file or template and, where one exists, the line, so the
/// editor can go straight to it. Callers branch on the variant to tell the editor's mistakes (the first two)
/// from a template author's.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The front matter is missing, is not valid TOML, or holds a wrong, missing or unknown key.
    #[error("{file}:{line}:{column}: {message}")]
    FrontMatter { file: String, line: usize, column: usize, message: String },
    /// The Markdown body breaks a rule: a link with a refused scheme, no news items, an item without a source.
    #[error("{file}:{line}: {message}")]
    Markdown { file: String, line: usize, message: String },
    /// A template has a syntax error or uses a variable that does not exist.
    #[error("template {template}{}: {message}", at_line(*.line))]
    Template { template: String, line: Option<usize>, message: String },
    /// mrml refused the MJML the templates produced. `line` and `column` are in `template` when the failing
    /// line could be traced back to it, otherwise in the rendered MJML of the top template.
    #[error("MJML error in template {template}{}: {message}", at_line(*.line))]
    Mjml { template: String, line: Option<usize>, message: String },
    /// A template leaves out a per-recipient value the email needs (such as the unsubscribe link), places one
    /// where it is not allowed, or the content contains the text reserved for placeholders.
    #[error("template {template}: {message}")]
    Slots { template: String, message: String },
    /// A template file could not be read (only [`super::Templates::from_dir`] reads files).
    #[error("cannot read template {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn at_line(line: Option<usize>) -> String {
    line.map(|line| format!(", line {line}")).unwrap_or_default()
}

/// The 1-based line and column (in characters) of byte `offset` in `text`. Offsets past the end or inside a
/// character are clamped, so a bad offset from a library still gives a usable place.
pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_one_based_lines_and_character_columns() {
        let text = "ab\ncé\nx";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 6), (2, 3));
        assert_eq!(line_column(text, 99), (3, 2));
        assert_eq!(line_column(text, 5), (2, 2));
    }

    #[test]
    fn a_template_error_without_a_line_still_names_the_template() {
        let error = RenderError::Template { template: "digest.mjml".into(), line: None, message: "boom".into() };
        assert_eq!(error.to_string(), "template digest.mjml: boom");
        let error = RenderError::Template { template: "digest.mjml".into(), line: Some(4), message: "boom".into() };
        assert_eq!(error.to_string(), "template digest.mjml, line 4: boom");
    }
}
