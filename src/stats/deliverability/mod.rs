//! Deliverability: `tidings stats --deliverability [--days N]` and the section of the HTML report with the same
//! figures. Per list, over the messages first tried in the last N days: the complaint rate (complaints out of the
//! delivered) and the hard-bounce rate (hard bounces out of the messages tried), each against the lines the
//! big mailbox providers draw, with a verdict; and the split by mailbox provider of the recipients' domains.
//!
//! Two tables hold the policy: [`PROVIDERS`] (which domains are whose) and [`COMPLAINT_LINES`] /
//! [`BOUNCE_LINES`] (the thresholds, compared in integers so that a rate exactly on a line is never misread).
//! `views.rs` prints them for the terminal, as JSON, and as the report's section (`section.html`).
//!
//! Like the rest of `stats`, this performs no I/O and reads no clock: the window is passed in.

mod views;

pub use views::{deliverability_html, deliverability_json, deliverability_text};

use crate::store::DomainCounts;

/// A mailbox provider and the recipient domains it serves.
#[derive(Debug, PartialEq, Eq)]
pub struct Provider {
    /// The key in JSON and in the report's `data-provider`.
    pub key: &'static str,
    /// The name in the terminal table and the report (one word, so the table splits on spaces).
    pub name: &'static str,
    pub domains: &'static [&'static str],
}

/// The largest mailbox providers, by the domains their users' addresses have; every other domain is `others`
/// (the last row, with no domains of its own).
pub const PROVIDERS: [Provider; 5] = [
    Provider { key: "gmail", name: "Gmail", domains: &["gmail.com", "googlemail.com"] },
    Provider {
        key: "microsoft",
        name: "Microsoft",
        domains: &[
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "passport.com",
            "windowslive.com",
            "hotmail.co.uk",
            "hotmail.fr",
            "hotmail.de",
            "hotmail.it",
            "hotmail.es",
            "outlook.fr",
            "outlook.de",
            "live.co.uk",
            "live.fr",
            "live.nl",
        ],
    },
    Provider {
        key: "yahoo",
        name: "Yahoo/AOL",
        domains: &[
            "yahoo.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.co.uk",
            "yahoo.fr",
            "yahoo.de",
            "yahoo.it",
            "yahoo.es",
            "yahoo.ca",
            "yahoo.com.au",
            "yahoo.com.br",
            "aol.com",
            "aim.com",
        ],
    },
    Provider { key: "icloud", name: "iCloud", domains: &["icloud.com", "me.com", "mac.com"] },
    Provider { key: "others", name: "others", domains: &[] },
];

/// The provider of a recipient domain. A normalised address kept apart by the case migration ends in ` #id`
/// after its domain; that suffix is not part of the domain.
pub fn provider_of(domain: &str) -> &'static Provider {
    let domain = domain.split(' ').next().unwrap_or_default();
    PROVIDERS.iter().find(|p| p.domains.contains(&domain)).unwrap_or(&PROVIDERS[PROVIDERS.len() - 1])
}

/// Two lines a rate is held against, each as `parts` per `whole`.
#[derive(Debug, Clone, Copy)]
pub struct Lines {
    /// At or above this the rate needs attention.
    pub warning: (i64, i64),
    /// At or above this providers act against the sender.
    pub critical: (i64, i64),
}

/// Gmail (and Yahoo) ask bulk senders to keep the spam rate below 0.1 % and never to reach 0.3 %.
pub const COMPLAINT_LINES: Lines = Lines { warning: (1, 1000), critical: (3, 1000) };
/// Hard bounces: 2 % is the usual ceiling of a list kept clean (and what Amazon SES asks to stay under); at 5 %
/// SES puts an account under review, and Tidings' own guardrail (`max_bounce_rate`) pauses a sending issue.
pub const BOUNCE_LINES: Lines = Lines { warning: (2, 100), critical: (5, 100) };

/// Where a rate stands against its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to divide by in the window.
    NoData,
    Ok,
    Warning,
    Critical,
}

impl Verdict {
    /// `part` out of `whole` against `lines`, compared exactly in integers.
    pub fn of(part: i64, whole: i64, lines: Lines) -> Self {
        let reaches =
            |(parts, per): (i64, i64)| i128::from(part) * i128::from(per) >= i128::from(parts) * i128::from(whole);
        if whole <= 0 {
            Verdict::NoData
        } else if reaches(lines.critical) {
            Verdict::Critical
        } else if reaches(lines.warning) {
            Verdict::Warning
        } else {
            Verdict::Ok
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::NoData => "no_data",
            Verdict::Ok => "ok",
            Verdict::Warning => "warning",
            Verdict::Critical => "critical",
        }
    }
}

/// What each verdict means for each rate, as the terminal and the report say it.
const MEANINGS: [(&str, Verdict, &str); 8] = [
    ("complaint", Verdict::NoData, "nothing delivered in the window"),
    ("complaint", Verdict::Ok, "under 0.1 %, the line Gmail and Yahoo ask bulk senders to stay below"),
    ("complaint", Verdict::Warning, "0.1 % or more; Gmail and Yahoo ask to stay below 0.1 % and never reach 0.3 %"),
    ("complaint", Verdict::Critical, "0.3 % or more; Gmail and Yahoo filter or refuse bulk mail at this rate"),
    ("bounce", Verdict::NoData, "nothing tried in the window"),
    ("bounce", Verdict::Ok, "under 2 %, the ceiling of a list kept clean"),
    ("bounce", Verdict::Warning, "2 % or more; remove stale addresses (Amazon SES asks to stay below 2 %)"),
    ("bounce", Verdict::Critical, "5 % or more; Amazon SES reviews an account at this rate, Tidings pauses a send"),
];

fn meaning(rate: &str, verdict: Verdict) -> &'static str {
    MEANINGS.iter().find(|(r, v, _)| *r == rate && *v == verdict).map_or("", |(_, _, text)| text)
}

/// The days counted, ending now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub days: u32,
    /// The start of the window, in milliseconds: messages first tried at or after it count.
    pub since: i64,
    pub until: i64,
}

impl Window {
    pub fn ending(until: i64, days: u32) -> Self {
        Window { days, since: until - i64::from(days) * 86_400_000, until }
    }
}

/// One list's figures: the whole and one row per provider (every provider, in the table's order).
#[derive(Debug, Clone, PartialEq)]
pub struct ListDeliverability {
    pub slug: String,
    pub name: String,
    pub total: DomainCounts,
    pub providers: Vec<(&'static Provider, DomainCounts)>,
}

impl ListDeliverability {
    /// Adds up the store's rows of one list (rows of other lists are left out) by provider.
    pub fn from_rows(slug: &str, name: &str, list_id: i64, rows: &[DomainCounts]) -> Self {
        let mut providers: Vec<(&'static Provider, DomainCounts)> = PROVIDERS
            .iter()
            .map(|p| (p, DomainCounts { list_id, domain: p.key.to_owned(), ..Default::default() }))
            .collect();
        let mut total = DomainCounts { list_id, ..Default::default() };
        for row in rows.iter().filter(|r| r.list_id == list_id) {
            let provider = provider_of(&row.domain);
            if let Some((_, counts)) = providers.iter_mut().find(|(p, _)| *p == provider) {
                add(counts, row);
            }
            add(&mut total, row);
        }
        ListDeliverability { slug: slug.to_owned(), name: name.to_owned(), total, providers }
    }
}

fn add(into: &mut DomainCounts, row: &DomainCounts) {
    into.delivered += row.delivered;
    into.bounced += row.bounced;
    into.failed += row.failed;
    into.ambiguous += row.ambiguous;
    into.complained += row.complained;
    into.opened += row.opened;
}

fn rate(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// Complaints out of the delivered, with its verdict.
pub fn complaint_rate(c: &DomainCounts) -> (Option<f64>, Verdict) {
    (rate(c.complained, c.delivered), Verdict::of(c.complained, c.delivered, COMPLAINT_LINES))
}

/// Hard bounces out of the messages tried, with its verdict.
pub fn bounce_rate(c: &DomainCounts) -> (Option<f64>, Verdict) {
    (rate(c.bounced, c.attempted()), Verdict::of(c.bounced, c.attempted(), BOUNCE_LINES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_big_domain_belongs_to_its_provider_and_the_rest_to_others() {
        for (domain, key) in [
            ("gmail.com", "gmail"),
            ("googlemail.com", "gmail"),
            ("hotmail.com", "microsoft"),
            ("outlook.com", "microsoft"),
            ("live.com", "microsoft"),
            ("msn.com", "microsoft"),
            ("yahoo.com", "yahoo"),
            ("ymail.com", "yahoo"),
            ("aol.com", "yahoo"),
            ("icloud.com", "icloud"),
            ("me.com", "icloud"),
            ("mac.com", "icloud"),
            ("gmail.com #12", "gmail"),
            ("example.org", "others"),
            ("gmail.co", "others"),
            ("", "others"),
        ] {
            assert_eq!(provider_of(domain).key, key, "{domain}");
        }
    }

    #[test]
    fn a_rate_exactly_on_a_line_is_on_it_and_one_below_is_not() {
        assert_eq!(Verdict::of(0, 0, COMPLAINT_LINES), Verdict::NoData);
        assert_eq!(Verdict::of(0, 1000, COMPLAINT_LINES), Verdict::Ok);
        assert_eq!(Verdict::of(1, 1001, COMPLAINT_LINES), Verdict::Ok);
        assert_eq!(Verdict::of(1, 1000, COMPLAINT_LINES), Verdict::Warning);
        assert_eq!(Verdict::of(2, 667, COMPLAINT_LINES), Verdict::Warning);
        assert_eq!(Verdict::of(3, 1000, COMPLAINT_LINES), Verdict::Critical);
        assert_eq!(Verdict::of(1, 51, BOUNCE_LINES), Verdict::Ok);
        assert_eq!(Verdict::of(1, 50, BOUNCE_LINES), Verdict::Warning);
        assert_eq!(Verdict::of(1, 20, BOUNCE_LINES), Verdict::Critical);
    }

    #[test]
    fn every_verdict_of_every_rate_says_what_it_means() {
        for rate in ["complaint", "bounce"] {
            for verdict in [Verdict::NoData, Verdict::Ok, Verdict::Warning, Verdict::Critical] {
                assert!(!meaning(rate, verdict).is_empty(), "{rate} {verdict:?}");
            }
        }
    }
}
