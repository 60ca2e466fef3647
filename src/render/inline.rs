//! The `inline_styles` template filter: the shared inline styles of `partials/look.mjml` written onto the
//! HTML generated from an issue's Markdown, so its paragraphs, lists and links keep their look in clients that
//! drop the `<style>` block.
//!
//! The Markdown's HTML comes from `fragment::blocks_html`, whose tags are exactly `<p>`, `<ul>`, `<ol>` (or
//! `<ol start="n">`) and `<a href="...">`, never with other attributes: each is matched literally. Styling stays
//! with the templates; this file only places what they pass.

use minijinja::value::{Kwargs, Value};

use super::fragment::push_escaped;

/// What each generated tag starts with, and the filter argument whose style it takes.
const TAGS: [(&str, &str); 4] = [("<p>", "p"), ("<ul>", "list"), ("<ol", "list"), ("<a href=", "a")];

/// `{{ html | inline_styles(p="...", list="...", a="...") }}`: every argument optional, unknown ones refused.
pub(crate) fn inline_styles(html: Value, kwargs: Kwargs) -> Result<Value, minijinja::Error> {
    let mut styles = Vec::with_capacity(TAGS.len());
    for (tag, name) in TAGS {
        styles.push((tag, kwargs.get::<Option<String>>(name)?));
    }
    kwargs.assert_all_used()?;
    let text = html.as_str().unwrap_or_default();
    Ok(Value::from_safe_string(styled(text, &styles)))
}

/// `html` with ` style="..."` added to each tag in `styles` that has one.
fn styled(html: &str, styles: &[(&str, Option<String>)]) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let found = styles.iter().find(|(tag, style)| style.is_some() && rest.starts_with(tag));
        match found {
            Some((tag, Some(style))) => {
                // Insert right after the tag's name: `<p style="..">`, `<a style=".." href=`.
                let name_end = tag.find(['>', ' ']).unwrap_or(tag.len());
                out.push_str(&tag[..name_end]);
                out.push_str(" style=\"");
                push_escaped(&mut out, style);
                out.push('"');
                rest = &rest[name_end..];
            }
            _ => {
                out.push('<');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::styled;

    #[test]
    fn each_generated_tag_gets_its_style_and_nothing_else_changes() {
        let styles = [
            ("<p>", Some("margin:0;".to_owned())),
            ("<ul>", Some("pad\"x".to_owned())),
            ("<ol", Some("o;".to_owned())),
            ("<a href=", Some("color:red;".to_owned())),
        ];
        let html = "<p>A <a href=\"https://a.example/\">link</a> &lt;p&gt;</p><ol start=\"3\"><li>x</li></ol><ul><li><em>y</em></li></ul>";
        assert_eq!(
            styled(html, &styles),
            "<p style=\"margin:0;\">A <a style=\"color:red;\" href=\"https://a.example/\">link</a> &lt;p&gt;</p>\
             <ol style=\"o;\" start=\"3\"><li>x</li></ol><ul style=\"pad&quot;x\"><li><em>y</em></li></ul>"
        );
    }

    #[test]
    fn without_styles_the_html_is_unchanged() {
        let html = "<p>A <a href=\"https://a.example/\">b</a></p><ol><li>c</li></ol>";
        assert_eq!(styled(html, &[("<p>", None), ("<a href=", None)]), html);
    }
}
