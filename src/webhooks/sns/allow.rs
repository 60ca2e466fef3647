//! Which URLs a verifier may fetch: `https` only, on a host matching one of the configured patterns.
//!
//! A pattern is a host name whose labels are literal or `*`, and `*` stands for exactly one label (a region:
//! `sns.*.amazonaws.com` matches `sns.eu-west-1.amazonaws.com` and nothing deeper). The last two labels must
//! be literal, so no pattern can allow a whole top-level domain. Pure: no I/O.

use std::fmt;

use url::{Host, Url};

/// One allowed host pattern, lowercased. Built only by [`HostPattern::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct HostPattern(Vec<String>);

impl HostPattern {
    pub fn parse(pattern: &str) -> Result<Self, String> {
        let pattern = pattern.trim().trim_end_matches('.').to_ascii_lowercase();
        let labels: Vec<String> = pattern.split('.').map(str::to_owned).collect();
        let label_ok = |l: &String| {
            l == "*"
                || (!l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b':'))
        };
        if pattern.is_empty() || !labels.iter().all(label_ok) {
            return Err(format!("`{pattern}` is not a host name pattern (labels of letters, digits, '-' or '*')"));
        }
        if labels.iter().rev().take(2).any(|l| l == "*") {
            return Err(format!("`{pattern}`: the last two labels must be literal, not '*'"));
        }
        Ok(Self(labels))
    }

    /// Whether `host` (lowercased, without a trailing dot) matches.
    fn matches(&self, host: &str) -> bool {
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() == self.0.len()
            && self.0.iter().zip(&labels).all(|(p, l)| {
                if p == "*" {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                } else {
                    p == l
                }
            })
    }
}

impl fmt::Debug for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.join("."))
    }
}

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRefusal {
    NotAUrl,
    NotHttps(String),
    HostNotAllowed(String),
}

/// The URL, parsed, when it is `https` on an allowed host, with no user name or password in it.
pub(crate) fn allowed_url(value: &str, patterns: &[HostPattern]) -> Result<Url, UrlRefusal> {
    let url = Url::parse(value.trim()).map_err(|_| UrlRefusal::NotAUrl)?;
    if url.scheme() != "https" {
        return Err(UrlRefusal::NotHttps(url.scheme().to_owned()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefusal::NotAUrl);
    }
    let host = match url.host() {
        Some(Host::Domain(d)) => d.trim_end_matches('.').to_ascii_lowercase(),
        Some(Host::Ipv4(ip)) => ip.to_string(),
        Some(Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(UrlRefusal::NotAUrl),
    };
    if patterns.iter().any(|p| p.matches(&host)) { Ok(url) } else { Err(UrlRefusal::HostNotAllowed(host)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws() -> Vec<HostPattern> {
        ["sns.*.amazonaws.com", "sns.*.amazonaws.com.cn"].map(|p| HostPattern::parse(p).unwrap()).to_vec()
    }

    #[test]
    fn a_regional_sns_host_is_allowed_by_the_default_patterns() {
        for url in [
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://SNS.us-east-1.amazonaws.com./x.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/x.pem",
        ] {
            assert!(allowed_url(url, &aws()).is_ok(), "{url}");
        }
    }

    #[test]
    fn other_hosts_schemes_and_shapes_are_refused_with_their_reason() {
        let cases = [
            ("http://sns.eu-west-1.amazonaws.com/x.pem", UrlRefusal::NotHttps("http".into())),
            ("https://sns.amazonaws.com/x.pem", UrlRefusal::HostNotAllowed("sns.amazonaws.com".into())),
            ("https://sns.a.b.amazonaws.com/x.pem", UrlRefusal::HostNotAllowed("sns.a.b.amazonaws.com".into())),
            (
                "https://sns.eu-west-1.amazonaws.com.evil.example/x",
                UrlRefusal::HostNotAllowed("sns.eu-west-1.amazonaws.com.evil.example".into()),
            ),
            ("https://evil.example/sns.eu-west-1.amazonaws.com", UrlRefusal::HostNotAllowed("evil.example".into())),
            ("https://127.0.0.1/x.pem", UrlRefusal::HostNotAllowed("127.0.0.1".into())),
            ("https://u:p@sns.eu-west-1.amazonaws.com/x.pem", UrlRefusal::NotAUrl),
            ("sns.eu-west-1.amazonaws.com/x.pem", UrlRefusal::NotAUrl),
        ];
        for (url, expected) in cases {
            assert_eq!(allowed_url(url, &aws()).unwrap_err(), expected, "{url}");
        }
    }

    #[test]
    fn a_pattern_that_would_allow_a_whole_domain_is_refused() {
        for pattern in ["*.com", "sns.*", "", "sns..com", "s*s.amazonaws.com", "sns.a b.com"] {
            assert!(HostPattern::parse(pattern).is_err(), "{pattern}");
        }
        assert!(HostPattern::parse("localhost").is_ok());
    }
}
