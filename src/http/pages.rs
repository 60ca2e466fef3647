//! Server-rendered pages: the templates under `src/http/pages/` (built into the binary), rendered with
//! minijinja with HTML auto-escaping, in the look of the email (its colours, fonts and card). No page has a
//! script or an external asset; every one works on a 375 px phone.
//!
//! Handlers describe a page ([`Message`] for the plain ones) and get a finished response. This file owns the
//! plain status pages too: every 404 looks the same, whatever was wrong with the link.

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use minijinja::value::Value;
use minijinja::{Environment, context};

use super::Site;
use super::guard::Rendered;

/// The page templates, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("pages/base.html")),
    ("message.html", include_str!("pages/message.html")),
    ("rate.html", include_str!("pages/rate.html")),
    ("rated.html", include_str!("pages/rated.html")),
    ("archive.html", include_str!("pages/archive.html")),
    ("subscribe.html", include_str!("pages/subscribe.html")),
];

/// A plain page: a heading, paragraphs, at most one button (a form that POSTs), and links.
#[derive(Debug, Clone, Default)]
pub(crate) struct Message {
    pub title: String,
    pub lines: Vec<String>,
    pub form: Option<Button>,
    pub links: Vec<Link>,
}

/// A one-button form.
#[derive(Debug, Clone)]
pub(crate) struct Button {
    pub action: String,
    pub label: String,
    /// Drawn as an outline (the way back, beside a done deed) rather than filled.
    pub secondary: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub href: String,
    pub text: String,
}

impl Link {
    pub fn new(href: impl Into<String>, text: impl Into<String>) -> Self {
        Self { href: href.into(), text: text.into() }
    }
}

impl Message {
    pub fn new(title: impl Into<String>, lines: &[&str]) -> Self {
        Self { title: title.into(), lines: lines.iter().map(|line| (*line).to_owned()).collect(), ..Self::default() }
    }

    pub fn button(mut self, action: impl Into<String>, label: impl Into<String>, secondary: bool) -> Self {
        self.form = Some(Button { action: action.into(), label: label.into(), secondary });
        self
    }

    pub fn link(mut self, href: impl Into<String>, text: impl Into<String>) -> Self {
        self.links.push(Link::new(href, text));
        self
    }

    /// The template context of `message.html`.
    fn to_value(&self) -> Value {
        let form = self.form.as_ref().map(|form| {
            context! { action => &form.action, label => &form.label, secondary => form.secondary }
        });
        let links: Vec<Value> =
            self.links.iter().map(|link| context! { href => &link.href, text => &link.text }).collect();
        context! { title => &self.title, lines => self.lines.clone(), form, links }
    }
}

pub(crate) struct Pages {
    env: Environment<'static>,
    /// What every page shows: the default list's name and the sender's identity.
    site: Value,
}

impl Pages {
    pub fn new(site: &Site, list_name: &str) -> anyhow::Result<Pages> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        let site = context! {
            list_name => list_name,
            organization => &site.organization,
            postal_address => &site.postal_address,
        };
        let pages = Pages { env, site };
        // Render every status page once, so a broken template stops startup rather than a request.
        for status in [StatusCode::NOT_FOUND, StatusCode::INTERNAL_SERVER_ERROR] {
            pages.try_render("message.html", status_message(status).to_value(), None)?;
        }
        Ok(pages)
    }

    fn try_render(&self, name: &str, context: Value, list_name: Option<&str>) -> anyhow::Result<String> {
        let list = list_name.map(|list_name| context! { list_name });
        let context = match list {
            Some(list) => context! { ..list, ..context, ..self.site.clone() },
            None => context! { ..context, ..self.site.clone() },
        };
        Ok(self.env.get_template(name)?.render(context)?)
    }

    /// Renders template `name` with `context` (plus the site's details) as a page with `status`. `list_name`
    /// overrides the default list's name in the heading, for links of another list.
    pub fn render(&self, status: StatusCode, name: &str, context: Value, list_name: Option<&str>) -> Response {
        match self.try_render(name, context, list_name) {
            Ok(html) => html_response(status, html),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), template = name, "cannot render a page");
                html_response(StatusCode::INTERNAL_SERVER_ERROR, FALLBACK.to_owned())
            }
        }
    }

    /// A plain page.
    pub fn message(&self, status: StatusCode, message: Message, list_name: Option<&str>) -> Response {
        self.render(status, "message.html", message.to_value(), list_name)
    }

    /// The plain page for an error status, the same every time (a 404 says nothing about what was wrong).
    pub fn status_page(&self, status: StatusCode) -> Response {
        self.message(status, status_message(status), None)
    }
}

/// An HTML response that [`super::guard::finish`] leaves alone.
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    (status, Rendered, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// The last resort when a template fails: no template, no details.
const FALLBACK: &str = "<!doctype html><html lang=\"en\"><meta charset=\"utf-8\"><title>Something went wrong</title>\
                        <h1>Something went wrong</h1><p>Please try again in a moment.</p></html>";

fn status_message(status: StatusCode) -> Message {
    let (title, line) = match status.as_u16() {
        404 => ("Page not found", "This link is not valid. If you copied it from an email, check that it is complete."),
        405 => ("Not possible here", "This page cannot be used that way."),
        408 => ("That took too long", "The request did not arrive in time. Please try again."),
        413 => ("Too much data", "That request was larger than this site accepts."),
        415 | 422 | 400 => ("That did not work", "The form could not be read. Please go back and try again."),
        429 => ("Slow down, please", "Too many requests came from your address. Please wait a minute and try again."),
        _ => ("Something went wrong", "Please try again in a moment."),
    };
    Message::new(title, &[line]).link("/archive", "All issues")
}

/// The fallback route: the same page as every other 404.
pub(crate) async fn not_found(axum::extract::State(state): axum::extract::State<super::AppState>) -> Response {
    state.web.pages.status_page(StatusCode::NOT_FOUND)
}
