//! The settings receivers see the effects of: links on HTTPS, link keys long enough, one-click unsubscribe
//! that Gmail and Yahoo will honour, the postal address CAN-SPAM asks for, and the open pixel disclosed.
//!
//! No I/O but reading the templates of `render.templates_dir` when one is set.

use super::{Check, Group};
use crate::configuration::Settings;
use crate::render::Templates;

const G: Group = Group::Settings;

/// Words in a template's visible text that tell the reader about open tracking.
const DISCLOSURE_WORDS: [&str; 3] = ["pixel", "track", "when you open"];

/// Runs the settings checks, appending one answer per check to `checks`.
pub(crate) fn run(settings: &Settings, checks: &mut Vec<Check>) {
    let base_url = settings.base_url();
    let https = base_url.to_ascii_lowercase().starts_with("https://");
    checks.push(if https {
        Check::ok("base-url", G, format!("links use {base_url}"))
    } else {
        Check::failure(
            "base-url",
            G,
            format!("http.base_url is {base_url}, not HTTPS: every link, and the one-click unsubscribe URL, would be plain HTTP"),
            "serve Tidings behind an HTTPS reverse proxy and set http.base_url = \"https://news.example.com\"",
        )
    });
    checks.push(match settings.link_keys() {
        Ok(_) => Check::ok("link-keys", G, "the link signing keys are set and at least 32 bytes long"),
        Err(e) => Check::failure(
            "link-keys",
            G,
            e.to_string(),
            "set TIDINGS_LINKS__SIGNING_KEYS=\"1:$(openssl rand -base64 32)\"",
        ),
    });
    checks.push(if settings.dkim.enabled {
        Check::ok(
            "one-click",
            G,
            "every message carries List-Unsubscribe and List-Unsubscribe-Post: List-Unsubscribe=One-Click (RFC 8058), covered by the DKIM signature",
        )
    } else {
        Check::failure(
            "one-click",
            G,
            "List-Unsubscribe one-click is sent, but receivers honour it only when a DKIM signature covers those headers, and DKIM is off",
            "turn on [dkim] (see the dkim check)",
        )
    });
    checks.push(if settings.sender.postal_address.trim().is_empty() {
        Check::failure(
            "postal-address",
            G,
            "sender.postal_address is empty: CAN-SPAM requires a valid postal address in every commercial email",
            "set sender.postal_address to the organisation's postal address, e.g. \"1 Example Street, London EC1A 1AA\"",
        )
    } else {
        Check::ok("postal-address", G, "sender.postal_address is in every footer")
    });
    checks.push(open_pixel(settings));
}

/// With `tracking.opens` on, the footer's text should tell readers that opens are recorded.
fn open_pixel(settings: &Settings) -> Check {
    if !settings.tracking.opens {
        return Check::ok("open-pixel", G, "tracking.opens is off: no open pixel is sent");
    }
    let dir = settings.render.templates_dir.trim();
    let templates = if dir.is_empty() { Ok(Templates::embedded()) } else { Templates::from_dir(dir.as_ref()) };
    let templates = match templates {
        Ok(templates) => templates,
        Err(e) => return Check::failure("open-pixel", G, format!("render.templates_dir: {e}"), "fix the templates"),
    };
    let disclosed = templates.sources().filter(|(name, _)| name.starts_with("digest") || name.contains("footer")).any(
        |(_, source)| {
            let text = visible_text(source).to_ascii_lowercase();
            DISCLOSURE_WORDS.iter().any(|word| text.contains(word))
        },
    );
    if disclosed {
        Check::ok("open-pixel", G, "tracking.opens is on and the digest's text tells readers opens are recorded")
    } else {
        Check::warning(
            "open-pixel",
            G,
            "tracking.opens is on, but no text in the digest tells readers that an image records when they open it",
            "say so in the footer of your own templates (render.templates_dir, partials/footer.mjml and digest.txt), or set tracking.opens = false",
        )
    }
}

/// A template's source without `{# comments #}` and `{{ expressions }}`/`{% tags %}`: what a reader can see.
fn visible_text(source: &str) -> String {
    let mut text = String::with_capacity(source.len());
    let mut rest = source;
    while let Some(start) = rest.find('{') {
        text.push_str(&rest[..start]);
        let close = match rest[start..].chars().nth(1) {
            Some('#') => "#}",
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                text.push('{');
                rest = &rest[start + 1..];
                continue;
            }
        };
        match rest[start..].find(close) {
            Some(end) => rest = &rest[start + end + 2..],
            None => return text,
        }
    }
    text.push_str(rest);
    text
}

#[cfg(test)]
mod tests {
    use super::visible_text;

    #[test]
    fn comments_expressions_and_tags_are_not_visible_text() {
        let source = "{#- the open-tracking pixel -#}Hello {{ slots.if_pixel }}{% if x %}a{ b{% endif %}";
        assert_eq!(visible_text(source), "Hello a{ b");
    }
}
