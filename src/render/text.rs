//! Word wrapping for the plain-text part: lines of at most a given width, counted in characters.
//!
//! This file owns only the wrapping rule: break at spaces, keep hard line breaks, and never break a word, so a
//! long URL stands alone on an overlong line rather than being cut (a cut URL is a dead link).

/// Wraps every line of `text` to `width` characters.
pub(crate) fn wrap(text: &str, width: usize) -> String {
    wrap_indented(text, width, "", "")
}

/// Wraps `text`, starting its first line with `first` and every other line with `rest` (a hanging indent for
/// list items). Runs of spaces collapse to one; a `\n` in `text` always starts a new line.
pub(crate) fn wrap_indented(text: &str, width: usize, first: &str, rest: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width.max(1) * (rest.len() + 1));
    let mut prefix = first;
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            out.push('\n');
            prefix = rest;
        }
        out.push_str(prefix);
        let mut column = prefix.chars().count();
        let mut line_is_empty = true;
        for word in line.split_whitespace() {
            let length = word.chars().count();
            if !line_is_empty && column + 1 + length > width {
                out.push('\n');
                out.push_str(rest);
                column = rest.chars().count();
                line_is_empty = true;
            }
            if !line_is_empty {
                out.push(' ');
                column += 1;
            }
            out.push_str(word);
            column += length;
            line_is_empty = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_broken_at_spaces_before_the_width() {
        let wrapped = wrap("one two three four five six seven", 14);
        assert_eq!(wrapped, "one two three\nfour five six\nseven");
        assert!(wrapped.lines().all(|line| line.chars().count() <= 14));
    }

    #[test]
    fn a_long_url_is_never_broken() {
        let url = "https://example.com/a/very/long/path/that/does/not/fit/anywhere";
        let wrapped = wrap(&format!("see {url} now"), 20);
        assert_eq!(wrapped, format!("see\n{url}\nnow"));
    }

    #[test]
    fn hard_breaks_are_kept_and_hanging_indents_apply_to_later_lines() {
        assert_eq!(wrap("a\nb", 72), "a\nb");
        assert_eq!(wrap_indented("alpha beta gamma", 11, "- ", "  "), "- alpha\n  beta\n  gamma");
    }

    #[test]
    fn width_counts_characters_not_bytes() {
        assert_eq!(wrap("été été", 7), "été été");
    }
}
