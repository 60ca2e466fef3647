//! Reading the DNS records receivers look at: SPF (RFC 7208), DKIM keys (RFC 6376) and DMARC policies
//! (RFC 7489), and the relaxed alignment rule between two domains.
//!
//! Pure text in, values out: no I/O, so every rule is tested below with plain strings. `dns_checks.rs` fetches
//! the records and follows SPF's includes.

/// The SPF terms that cost a DNS lookup (RFC 7208 4.6.4): the receiver gives up past 10 of them in all.
const LOOKUP_TERMS: [&str; 6] = ["include", "a", "mx", "ptr", "exists", "redirect"];

/// The most DNS-querying SPF terms a receiver evaluates before it answers `permerror`.
pub(crate) const SPF_LOOKUP_LIMIT: usize = 10;

/// Whether a TXT record is an SPF record: `v=spf1` alone or followed by a space (case-insensitive).
pub(crate) fn is_spf(record: &str) -> bool {
    let record = record.trim_start();
    record.len() >= 6
        && record[..6].eq_ignore_ascii_case("v=spf1")
        && record[6..].chars().next().is_none_or(|c| c == ' ')
}

/// The SPF terms of a record that cost a lookup, and the domains among them to follow (`include:` and
/// `redirect=` targets without macros).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct SpfLookups {
    /// How many terms of this record query DNS.
    pub(crate) count: usize,
    /// The domains whose own SPF records count too.
    pub(crate) follow: Vec<String>,
}

/// The lookup-costing terms of one SPF record (its qualifiers `+ - ~ ?` ignored).
pub(crate) fn spf_lookups(record: &str) -> SpfLookups {
    let mut lookups = SpfLookups::default();
    for term in record.split_ascii_whitespace().skip(1) {
        let term = term.trim_start_matches(['+', '-', '~', '?']);
        let (name, value) = match term.find([':', '=', '/']) {
            Some(at) => (&term[..at], Some(&term[at + 1..])),
            None => (term, None),
        };
        let name = name.to_ascii_lowercase();
        if !LOOKUP_TERMS.contains(&name.as_str()) {
            continue;
        }
        lookups.count += 1;
        if let ("include" | "redirect", Some(domain)) = (name.as_str(), value)
            && !domain.contains('%')
            && !domain.is_empty()
        {
            lookups.follow.push(domain.trim_end_matches('.').to_ascii_lowercase());
        }
    }
    lookups
}

/// The tags of a DKIM key or DMARC record (`k=v; k=v`), names lowercased, values trimmed. A tag without `=`
/// is ignored, as receivers do.
pub(crate) fn tags(record: &str) -> Vec<(String, String)> {
    record
        .split(';')
        .filter_map(|tag| tag.split_once('='))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The public key (`p=`) of a DKIM key record, with the whitespace DNS tools leave in long values removed;
/// `None` when the record has no `p=` tag. An empty key means the key was revoked.
pub(crate) fn dkim_public_key(record: &str) -> Option<String> {
    tag(&tags(record), "p").map(|p| p.chars().filter(|c| !c.is_whitespace()).collect())
}

/// A DMARC policy record, read as far as the doctor needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Dmarc {
    /// `none`, `quarantine` or `reject`.
    pub(crate) policy: String,
}

/// Reads a DMARC record: `v=DMARC1` first, then a `p=` of `none`, `quarantine` or `reject`.
pub(crate) fn dmarc(record: &str) -> Result<Dmarc, String> {
    let tags = tags(record);
    match tags.first() {
        Some((name, value)) if name == "v" && value == "DMARC1" => {}
        _ => return Err("it does not start with `v=DMARC1`".to_owned()),
    }
    match tag(&tags, "p").map(str::to_ascii_lowercase) {
        Some(policy) if ["none", "quarantine", "reject"].contains(&policy.as_str()) => Ok(Dmarc { policy }),
        Some(policy) => Err(format!("its policy `p={policy}` is not none, quarantine or reject")),
        None => Err("it has no policy (`p=none`, `p=quarantine` or `p=reject`)".to_owned()),
    }
}

/// Relaxed alignment, simplified: the two domains are equal, or one is a subdomain of the other. (DMARC's
/// rule compares organisational domains from the public suffix list; this never says aligned where that rule
/// would not, for domains under the same registered name.)
pub(crate) fn aligned(a: &str, b: &str) -> bool {
    let a = a.trim_end_matches('.').to_ascii_lowercase();
    let b = b.trim_end_matches('.').to_ascii_lowercase();
    a == b || a.ends_with(&format!(".{b}")) || b.ends_with(&format!(".{a}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_records_are_told_from_other_txt_records() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1 include:_spf.example.net ~all"));
        assert!(is_spf("v=spf1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("google-site-verification=abc"));
        assert!(!is_spf("v=DMARC1; p=none"));
    }

    #[test]
    fn spf_terms_that_query_dns_are_counted_and_includes_are_followed() {
        let lookups =
            spf_lookups("v=spf1 ip4:192.0.2.0/24 a mx/24 ~include:_spf.Example.net. ptr exists:%{i}.x.org -all");
        assert_eq!(lookups.count, 5);
        assert_eq!(lookups.follow, vec!["_spf.example.net".to_owned()]);
        let redirect = spf_lookups("v=spf1 redirect=_spf.example.org");
        assert_eq!(redirect, SpfLookups { count: 1, follow: vec!["_spf.example.org".to_owned()] });
        assert_eq!(spf_lookups("v=spf1 ip4:192.0.2.1 ip6:2001:db8::1 all").count, 0);
        assert_eq!(spf_lookups("v=spf1 a:mail.example.com a/24 include:%{d}.x.org").follow, Vec::<String>::new());
    }

    #[test]
    fn dkim_keys_are_read_without_whitespace() {
        assert_eq!(dkim_public_key("v=DKIM1; k=rsa; p=MIIB AQAB").as_deref(), Some("MIIBAQAB"));
        assert_eq!(dkim_public_key("v=DKIM1; p=").as_deref(), Some(""));
        assert_eq!(dkim_public_key("v=DKIM1; k=rsa"), None);
    }

    #[test]
    fn dmarc_records_need_the_version_first_and_a_known_policy() {
        assert_eq!(dmarc("v=DMARC1; p=reject; rua=mailto:d@example.com").unwrap().policy, "reject");
        assert_eq!(dmarc("v=DMARC1;p=None").unwrap().policy, "none");
        assert!(dmarc("p=reject; v=DMARC1").unwrap_err().contains("v=DMARC1"));
        assert!(dmarc("v=DMARC1; rua=mailto:d@example.com").unwrap_err().contains("no policy"));
        assert!(dmarc("v=DMARC1; p=block").unwrap_err().contains("p=block"));
    }

    #[test]
    fn domains_align_when_one_is_the_other_or_under_it() {
        assert!(aligned("example.com", "EXAMPLE.com."));
        assert!(aligned("news.example.com", "example.com"));
        assert!(aligned("example.com", "bounces.example.com"));
        assert!(!aligned("example.com", "example.net"));
        assert!(!aligned("badexample.com", "example.com"));
    }
}
