//! This issue against the previous ones: each key figure of the issue beside the median of the list's 8 issues
//! before it, and its values over the last 12 issues (this one last) for a trend line.
//!
//! The figures are one table ([`FIGURES`]): a key (the same in the JSON), a label, how to read it from an
//! issue's summary and audience, and how it is shown. The store has counted everything; this only divides,
//! sorts and picks middles.

use super::{complaint_rate, delivery_rate, open_rate, round, thousands, unsubscribe_rate, vote_participation};
use crate::store::{Audience, IssueSummary};

/// How many earlier issues the median is taken over.
pub const MEDIAN_OF: usize = 8;
/// How many issues a trend line covers, this one included.
pub const TREND_OF: usize = 12;

/// How a figure is rounded and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Count,
    /// A share from 0 to 1, kept to this many decimal places in the JSON.
    Rate(i32),
    Rating,
}

impl Kind {
    /// The value as the JSON has it.
    pub fn rounded(self, value: f64) -> f64 {
        match self {
            // A median of an even number of counts can end in .5.
            Kind::Count => round(value, 1),
            Kind::Rate(places) => round(value, places),
            Kind::Rating => round(value, 2),
        }
    }

    /// The value as people read it: `1,204`, `66.7 %`, `4/5`, or `-` when there is none.
    pub fn shown(self, value: Option<f64>) -> String {
        let Some(value) = value else { return "-".to_owned() };
        match self {
            Kind::Count if value.fract() == 0.0 => thousands(value as i64),
            Kind::Count => format!("{value:.1}"),
            Kind::Rate(places) if places > 4 => format!("{:.2} %", value * 100.0),
            Kind::Rate(_) => format!("{:.1} %", value * 100.0),
            Kind::Rating => format!("{}/5", one_place(value)),
        }
    }
}

/// `4.0` as `4`, `3.64` as `3.6`: how every rating is written.
pub fn one_place(value: f64) -> String {
    let shown = format!("{value:.1}");
    shown.strip_suffix(".0").map(str::to_owned).unwrap_or(shown)
}

/// One issue as the comparison reads it.
#[derive(Debug, Clone)]
pub struct IssueFigures {
    pub summary: IssueSummary,
    pub audience: Option<Audience>,
}

type Reader = fn(&IssueFigures) -> Option<f64>;

/// The compared figures: JSON key, label, reader, kind.
pub const FIGURES: [(&str, &str, Reader, Kind); 8] = [
    ("delivered", "delivered", |i| Some(i.summary.deliveries.sent as f64), Kind::Count),
    ("delivery_rate", "delivery rate", |i| delivery_rate(&i.summary.deliveries), Kind::Rate(4)),
    ("open_rate_unverified", "open rate (unverified)", |i| open_rate(&i.summary), Kind::Rate(4)),
    ("unsubscribe_rate", "unsubscribe rate", |i| unsubscribe_rate(&i.summary), Kind::Rate(4)),
    ("complaint_rate", "complaint rate", |i| complaint_rate(&i.summary), Kind::Rate(5)),
    ("vote_participation", "vote participation", |i| vote_participation(&i.summary), Kind::Rate(4)),
    ("rating_average", "rating", |i| i.summary.tally.average(), Kind::Rating),
    ("active_subscribers", "active subscribers at send", |i| i.audience.map(|a| a.active_at_send as f64), Kind::Count),
];

/// One figure compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    pub key: &'static str,
    pub label: &'static str,
    pub kind: Kind,
    /// This issue's value, rounded as in the JSON.
    pub value: Option<f64>,
    /// The median of the earlier issues that have a value, rounded as in the JSON.
    pub median: Option<f64>,
    /// The value of each issue of the trend, oldest first, this one last.
    pub trend: Vec<Option<f64>>,
}

/// Every figure of the last issue of `issues` against the ones before it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Comparison {
    /// The numbers of the issues the medians are taken over.
    pub median_of: Vec<i64>,
    /// The numbers of the issues of the trend lines, oldest first.
    pub trend_of: Vec<i64>,
    pub figures: Vec<Compared>,
}

/// Compares the last of `issues` (sorted by number) with those before it.
pub fn compare(issues: &[IssueFigures]) -> Comparison {
    let trend = &issues[issues.len().saturating_sub(TREND_OF)..];
    let Some((_, earlier)) = trend.split_last() else { return Comparison::default() };
    let earlier = &earlier[earlier.len().saturating_sub(MEDIAN_OF)..];
    let figures = FIGURES
        .iter()
        .map(|(key, label, read, kind)| {
            let values: Vec<Option<f64>> = trend.iter().map(|issue| read(issue).map(|v| kind.rounded(v))).collect();
            let mut known: Vec<f64> = earlier.iter().filter_map(read).collect();
            Compared {
                key,
                label,
                kind: *kind,
                value: values.last().copied().flatten(),
                median: median(&mut known).map(|m| kind.rounded(m)),
                trend: values,
            }
        })
        .collect();
    Comparison {
        median_of: earlier.iter().map(|i| i.summary.number).collect(),
        trend_of: trend.iter().map(|i| i.summary.number).collect(),
        figures,
    }
}

/// The middle value, or the mean of the two middle ones; `None` for no values.
pub fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(values[n / 2]),
        _ => Some((values[n / 2 - 1] + values[n / 2]) / 2.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [3.0]), Some(3.0));
        assert_eq!(median(&mut [5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn ratings_and_rates_read_as_everywhere_else() {
        assert_eq!(Kind::Rating.shown(Some(4.0)), "4/5");
        assert_eq!(Kind::Rating.shown(Some(3.64)), "3.6/5");
        assert_eq!(Kind::Rate(4).shown(Some(0.6667)), "66.7 %");
        assert_eq!(Kind::Rate(5).shown(Some(0.0013)), "0.13 %");
        assert_eq!(Kind::Count.shown(Some(1204.0)), "1,204");
        assert_eq!(Kind::Count.shown(Some(8.5)), "8.5");
        assert_eq!(Kind::Count.shown(None), "-");
    }

    fn issue(number: i64, sent: i64, opens: i64) -> IssueFigures {
        let mut summary = IssueSummary {
            issue_id: number,
            number,
            subject: String::new(),
            status: "sent".to_owned(),
            started_at: Some(0),
            finished_at: Some(0),
            deliveries: Default::default(),
            unsubscribed: 0,
            unique_opens: opens,
            tally: Default::default(),
            flagged_votes: 0,
            reports: Default::default(),
        };
        summary.deliveries.sent = sent;
        summary.deliveries.total = sent;
        IssueFigures { summary, audience: None }
    }

    #[test]
    fn an_issue_is_compared_with_the_median_of_the_eight_before_it_over_a_trend_of_twelve() {
        let issues: Vec<IssueFigures> = (1..=14).map(|n| issue(n, 10, n % 10)).collect();
        let comparison = compare(&issues);
        assert_eq!(comparison.median_of, (6..=13).collect::<Vec<_>>());
        assert_eq!(comparison.trend_of, (3..=14).collect::<Vec<_>>());
        let opens = comparison.figures.iter().find(|f| f.key == "open_rate_unverified").expect("open rate");
        // Issues 6 to 13 opened 6, 7, 8, 9, 0, 1, 2, 3 of 10: the middle ones are 3 and 6.
        assert_eq!(opens.median, Some(0.45));
        assert_eq!(opens.value, Some(0.4));
        assert_eq!(opens.trend.len(), 12);
        let subscribers = comparison.figures.iter().find(|f| f.key == "active_subscribers").expect("subscribers");
        assert_eq!((subscribers.value, subscribers.median), (None, None));
        assert!(compare(&issues[..1]).figures.iter().all(|f| f.median.is_none()));
        assert_eq!(compare(&[]), Comparison::default());
    }
}
