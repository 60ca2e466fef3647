//! The URLs in every email: where each link points and the signed token it carries.
//!
//! The web server routes these same paths; both sides use the constants here so they cannot drift apart.

use super::token::{LinkClaims, LinkKeys, Purpose};

/// `GET` shows a one-button page, `POST` unsubscribes (RFC 8058 one-click too).
pub const UNSUBSCRIBE_PATH: &str = "/u/";
/// `GET ?stars=N` shows the rating form, `POST` records the vote.
pub const RATE_PATH: &str = "/r/";
/// The open pixel, `/o/TOKEN.gif`.
pub const OPEN_PATH: &str = "/o/";
/// The issue as a web page, personalised for the subscriber.
pub const VIEW_PATH: &str = "/v/";
/// `GET` shows the double opt-in page, `POST` confirms.
pub const CONFIRM_PATH: &str = "/c/";

/// Builds the links of one installation: its public base URL plus signed tokens.
#[derive(Clone, Debug)]
pub struct LinkBuilder {
    /// Scheme, host, optional port and path, without a trailing slash.
    base: String,
    keys: LinkKeys,
}

/// The per-recipient links of one issue.
#[derive(Clone, PartialEq, Eq)]
pub struct IssueLinks {
    pub unsubscribe: String,
    pub rate: [String; 5],
    pub open: String,
    pub view: String,
}

impl LinkBuilder {
    /// `base_url` must be an absolute http(s) URL without query or fragment, e.g. `https://news.example.com`.
    pub fn new(base_url: &str, keys: LinkKeys) -> Result<Self, String> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"))
            .ok_or_else(|| format!("`{base_url}` must start with https:// (or http:// for local use)"))?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || rest.contains(['?', '#', ' ']) || rest.chars().any(char::is_control) {
            return Err(format!("`{base_url}` is not a base URL like https://news.example.com"));
        }
        Ok(Self { base: trimmed.to_owned(), keys })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn keys(&self) -> &LinkKeys {
        &self.keys
    }

    fn url(&self, path: &str, purpose: Purpose, list_id: i64, subscriber_id: i64, issue_id: Option<i64>) -> String {
        let token = self.keys.sign(&LinkClaims { purpose, list_id, subscriber_id, issue_id });
        format!("{}{path}{token}", self.base)
    }

    /// The unsubscribe link (also the `List-Unsubscribe` header's URL).
    pub fn unsubscribe(&self, list_id: i64, subscriber_id: i64, issue_id: Option<i64>) -> String {
        self.url(UNSUBSCRIBE_PATH, Purpose::Unsubscribe, list_id, subscriber_id, issue_id)
    }

    /// The double opt-in confirmation link.
    pub fn confirm(&self, list_id: i64, subscriber_id: i64) -> String {
        self.url(CONFIRM_PATH, Purpose::Confirm, list_id, subscriber_id, None)
    }

    /// Every link of one issue for one subscriber. The five rating links share one token.
    pub fn issue_links(&self, list_id: i64, subscriber_id: i64, issue_id: i64) -> IssueLinks {
        let rate = self.url(RATE_PATH, Purpose::Rate, list_id, subscriber_id, Some(issue_id));
        IssueLinks {
            unsubscribe: self.unsubscribe(list_id, subscriber_id, Some(issue_id)),
            rate: [1, 2, 3, 4, 5].map(|stars| format!("{rate}?stars={stars}")),
            open: format!("{}.gif", self.url(OPEN_PATH, Purpose::Open, list_id, subscriber_id, Some(issue_id))),
            view: self.url(VIEW_PATH, Purpose::View, list_id, subscriber_id, Some(issue_id)),
        }
    }
}

/// Links are capabilities: Debug output does not show them.
impl std::fmt::Debug for IssueLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssueLinks(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(base: &str) -> Result<LinkBuilder, String> {
        LinkBuilder::new(base, LinkKeys::parse(&format!("1:{}", "k".repeat(40))).unwrap())
    }

    #[test]
    fn links_carry_tokens_that_verify_for_their_purpose() {
        let links = builder("https://news.example.com/").unwrap().issue_links(1, 42, 7);
        let keys = builder("https://x.example").unwrap().keys().clone();
        let token = links.unsubscribe.strip_prefix("https://news.example.com/u/").unwrap();
        assert_eq!(keys.verify(token, Purpose::Unsubscribe).unwrap().subscriber_id, 42);
        let rate = links.rate[3].strip_prefix("https://news.example.com/r/").unwrap();
        let (token, stars) = rate.split_once("?stars=").unwrap();
        assert_eq!((keys.verify(token, Purpose::Rate).unwrap().issue_id, stars), (Some(7), "4"));
        assert!(links.open.ends_with(".gif"));
        assert!(links.view.starts_with("https://news.example.com/v/"));
    }

    #[test]
    fn a_base_url_must_be_absolute_http() {
        assert!(builder("news.example.com").is_err());
        assert!(builder("ftp://news.example.com").is_err());
        assert!(builder("https://").is_err());
        assert!(builder("https://x.example/?a=b").is_err());
        assert_eq!(builder("http://127.0.0.1:8080/news/").unwrap().base(), "http://127.0.0.1:8080/news");
    }
}
