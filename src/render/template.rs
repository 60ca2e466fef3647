//! `Templates`: the email templates (MJML and plain text) loaded into a minijinja environment.
//!
//! This file owns where templates come from (embedded in the binary, a directory, or strings), how minijinja
//! is set up (strict undefined variables, HTML escaping in `.mjml` files, trimmed block tags), and how its
//! errors are placed. [`Templates::from_dir`] is the only place in `render` that touches the file system.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::value::Value;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};

use super::error::RenderError;
use super::fragment::push_escaped;
use super::inline::inline_styles;
use super::text::wrap;

/// The top-level templates; partials live under `partials/` and are found through `{% include %}`.
pub(crate) const DIGEST_MJML: &str = "digest.mjml";
pub(crate) const DIGEST_TEXT: &str = "digest.txt";
pub(crate) const CONFIRM_MJML: &str = "confirm.mjml";
pub(crate) const CONFIRM_TEXT: &str = "confirm.txt";
const REQUIRED: [&str; 4] = [DIGEST_MJML, DIGEST_TEXT, CONFIRM_MJML, CONFIRM_TEXT];

macro_rules! embedded {
    ($($name:literal),+ $(,)?) => {
        &[$(($name, include_str!(concat!("../../emails/templates/", $name)))),+]
    };
}

/// `emails/templates/`, compiled into the binary so `tidings` works with no files beside it.
const EMBEDDED: &[(&str, &str)] = embedded!(
    "digest.mjml",
    "digest.txt",
    "confirm.mjml",
    "confirm.txt",
    "partials/head.mjml",
    "partials/header.mjml",
    "partials/item.mjml",
    "partials/rating.mjml",
    "partials/footer.mjml",
    "partials/identity.mjml",
    "partials/look.mjml",
    "partials/filler.mjml",
);

/// The digest and confirmation templates with their partials, parsed and ready to render. Build it once
/// (parsing every template takes about a tenth of a millisecond) and share it: rendering borrows it.
#[derive(Clone)]
pub struct Templates {
    env: Environment<'static>,
    /// Template sources by name, kept to point MJML errors back at a template line.
    sources: BTreeMap<String, String>,
}

impl fmt::Debug for Templates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Templates").field("names", &self.sources.keys().collect::<Vec<_>>()).finish()
    }
}

impl Templates {
    /// The templates shipped in `emails/templates/`, as compiled into the binary.
    pub fn embedded() -> Self {
        // The embedded templates are covered by the snapshot tests, so a syntax error cannot ship.
        Self::from_sources(EMBEDDED.iter().copied()).expect("the embedded templates are valid")
    }

    /// Reads `digest.mjml`, `digest.txt`, `confirm.mjml`, `confirm.txt` and every file under `partials/` from
    /// `dir`, so an operator can restyle emails without rebuilding.
    pub fn from_dir(dir: &Path) -> Result<Self, RenderError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| RenderError::Io { path, source })
        };
        let mut sources = Vec::new();
        for name in REQUIRED {
            sources.push((name.to_owned(), read(name)?));
        }
        let partials = dir.join("partials");
        if partials.is_dir() {
            let entries = std::fs::read_dir(&partials).map_err(|source| RenderError::Io { path: partials, source })?;
            for entry in entries {
                let entry = entry.map_err(|source| RenderError::Io { path: dir.join("partials"), source })?;
                if entry.file_type().is_ok_and(|kind| kind.is_file()) {
                    let name = format!("partials/{}", entry.file_name().to_string_lossy());
                    sources.push((name.clone(), read(&name)?));
                }
            }
        }
        Self::from_sources(sources)
    }

    /// Builds templates from `(name, source)` pairs, such as `("partials/item.mjml", "...")`. The four
    /// top-level templates must be among them.
    pub fn from_sources<N, S>(sources: impl IntoIterator<Item = (N, S)>) -> Result<Self, RenderError>
    where
        N: Into<String>,
        S: Into<String>,
    {
        let sources: BTreeMap<String, String> =
            sources.into_iter().map(|(name, source)| (name.into(), source.into())).collect();
        if let Some(missing) = REQUIRED.iter().find(|name| !sources.contains_key(**name)) {
            let message = "this template is required but was not given".to_owned();
            return Err(RenderError::Template { template: (*missing).to_owned(), line: None, message });
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_debug(false);
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).keep_trailing_newline(true).build();
        env.set_syntax(syntax.expect("the default delimiters are valid"));
        // MJML is markup, so values are escaped there; plain text is not.
        env.set_auto_escape_callback(|name| if name.ends_with(".mjml") { AutoEscape::Html } else { AutoEscape::None });
        env.set_formatter(format_value);
        env.add_filter("wrap", |text: String, width: Option<usize>| wrap(&text, width.unwrap_or(72)));
        env.add_filter("inline_styles", inline_styles);
        for (name, source) in &sources {
            env.add_template_owned(name.clone(), source.clone()).map_err(|error| template_error(&sources, error))?;
        }
        Ok(Self { env, sources })
    }

    /// Renders template `name` with `context`.
    pub(crate) fn render(&self, name: &str, context: Value) -> Result<String, RenderError> {
        let template = self.env.get_template(name).map_err(|error| template_error(&self.sources, error))?;
        template.render(context).map_err(|error| template_error(&self.sources, error))
    }

    /// Every template's name and source, in name order.
    pub(crate) fn sources(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sources.iter().map(|(name, source)| (name.as_str(), source.as_str()))
    }
}

/// Writes values escaped like [`push_escaped`]: the five characters that matter, and not `/` as minijinja's
/// default does, so URLs stay readable in the HTML and the same as in the text part.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match (state.auto_escape(), value.as_str()) {
        (AutoEscape::Html, Some(text)) if !value.is_safe() => {
            let mut escaped = String::with_capacity(text.len());
            push_escaped(&mut escaped, text);
            out.write_str(&escaped).map_err(minijinja::Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// Places a minijinja error at the innermost template that failed: errors inside an `{% include %}` arrive
/// wrapped in an error about the include. The failing expression is quoted from the source when known.
fn template_error(sources: &BTreeMap<String, String>, error: minijinja::Error) -> RenderError {
    let mut innermost = &error;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(&error);
    while let Some(next) = cause {
        if let Some(inner) = next.downcast_ref::<minijinja::Error>() {
            innermost = inner;
        }
        cause = next.source();
    }
    let mut message = match innermost.detail() {
        Some(detail) => format!("{}: {detail}", innermost.kind()),
        None => innermost.kind().to_string(),
    };
    let source = innermost.name().and_then(|name| sources.get(name));
    if let Some(excerpt) = source.zip(innermost.range()).and_then(|(source, range)| source.get(range)) {
        message.push_str(&format!(" in `{}`", excerpt.trim()));
    }
    RenderError::Template {
        template: innermost.name().unwrap_or("(unnamed)").to_owned(),
        line: innermost.line(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    fn templates(digest: &str) -> Templates {
        let sources =
            [(DIGEST_MJML, digest), (DIGEST_TEXT, "{{ text | wrap(10) }}"), (CONFIRM_MJML, ""), (CONFIRM_TEXT, "")];
        Templates::from_sources(sources).expect("valid templates")
    }

    #[test]
    fn values_in_mjml_are_escaped_but_slashes_are_kept() {
        let rendered = templates("<a href=\"{{ url }}\">{{ name }}</a>")
            .render(DIGEST_MJML, context! { url => "https://x.example/?a=1&b=2", name => "<b>'Al'</b>" })
            .unwrap();
        assert_eq!(rendered, "<a href=\"https://x.example/?a=1&amp;b=2\">&lt;b&gt;&#39;Al&#39;&lt;/b&gt;</a>");
    }

    #[test]
    fn plain_text_templates_are_not_escaped_and_can_wrap() {
        let rendered = templates("").render(DIGEST_TEXT, context! { text => "a <b> & c d e f" }).unwrap();
        assert_eq!(rendered, "a <b> & c\nd e f");
    }

    #[test]
    fn an_undefined_variable_is_an_error_naming_the_expression() {
        let error = templates("line one\n{{ issue.titel }}").render(DIGEST_MJML, context! { issue => context! {} });
        let message = error.unwrap_err().to_string();
        assert!(message.starts_with("template digest.mjml, line 2: undefined value"), "{message}");
        assert!(message.contains("issue.titel"), "{message}");
    }

    #[test]
    fn templates_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Templates>();
    }

    #[test]
    fn the_four_top_level_templates_are_required() {
        let error = Templates::from_sources([(DIGEST_MJML, "")]).unwrap_err();
        assert!(error.to_string().starts_with("template digest.txt: "), "{error}");
    }
}
