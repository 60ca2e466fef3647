//! The parts of the report that look back over a list's issues: this issue against the previous ones (the
//! `compare` value that `compare.html` draws: a row per figure with its median and trend line, and the trend
//! lines' numbers as a table for screen readers), and `tidings report --last N`, the same page for a list
//! (`render_list_report`: the comparison of its latest issue and one line per issue).

use jiff::Timestamp;
use minijinja::context;
use minijinja::value::Value;

use super::chart;
use super::compare::{Comparison, FIGURES, IssueFigures};
use super::local;
use super::report::{data, environment};

/// The comparison as the template draws it: one row per figure with its trend line, and the numbers of every
/// trend line as a table for screen readers.
pub(super) fn comparison_context(comparison: &Comparison, this: &str) -> Value {
    let rows: Vec<Value> = comparison
        .figures
        .iter()
        .map(|f| {
            let trend: Vec<Value> =
                f.trend.iter().map(|v| context! { value => data(*v), shown => f.kind.shown(*v) }).collect();
            context! {
                key => f.key,
                label => f.label,
                value => data(f.value),
                shown => f.kind.shown(f.value),
                median => data(f.median),
                median_shown => f.kind.shown(f.median),
                spark => Value::from_safe_string(chart::sparkline(&f.trend, f.median)),
                trend,
            }
        })
        .collect();
    context! {
        rows,
        this,
        median_count => comparison.median_of.len(),
        trend_count => comparison.trend_of.len(),
        trend_issues => comparison.trend_of.clone(),
        median_range => range(&comparison.median_of),
        trend_range => range(&comparison.trend_of),
    }
}

/// `110 to 117`, `117`, or `none`.
fn range(numbers: &[i64]) -> String {
    match (numbers.first(), numbers.last()) {
        (Some(first), Some(last)) if first != last => format!("{first} to {last}"),
        (Some(first), _) => first.to_string(),
        _ => "none".to_owned(),
    }
}

/// The report of a list's last issues: the comparison of the latest one with those before it and one line per
/// issue. `issues` are sorted by number; `generated_at` is printed in the footer.
pub fn render_list_report(
    list_name: &str,
    zone: &jiff::tz::TimeZone,
    issues: &[IssueFigures],
    comparison: &Comparison,
    generated_at: Timestamp,
) -> anyhow::Result<String> {
    let lines: Vec<Value> = issues
        .iter()
        .map(|issue| {
            let cells: Vec<Value> = FIGURES
                .iter()
                .map(|(key, _, read, kind)| {
                    let value = read(issue).map(|v| kind.rounded(v));
                    context! { key => *key, value => data(value), shown => kind.shown(value) }
                })
                .collect();
            let s = &issue.summary;
            context! {
                number => s.number,
                subject => &s.subject,
                date => s.started_at.map_or("-".to_owned(), |at| {
                    crate::clock::from_millis(at).to_zoned_datetime(zone.clone()).strftime("%Y-%m-%d").to_string()
                }),
                cells,
            }
        })
        .collect();
    let heads: Vec<&str> = FIGURES.iter().map(|(_, label, _, _)| *label).collect();
    let page = environment()?.get_template("report.html")?.render(context! {
        issue_page => false,
        list_name,
        title => format!("{list_name}: the last {} issues", issues.len()),
        subject => format!("The last {} issues", issues.len()),
        when => match (issues.first().and_then(|i| i.summary.started_at), issues.last().and_then(|i| i.summary.started_at)) {
            (Some(first), Some(last)) => format!(
                "Issues {}, sent from {} to {}",
                range(&issues.iter().map(|i| i.summary.number).collect::<Vec<_>>()),
                local(first, zone),
                local(last, zone)
            ),
            _ => "No issue sent yet".to_owned(),
        },
        compare => comparison_context(comparison, "Latest issue"),
        lines,
        heads,
        generated => local(crate::clock::to_millis(generated_at), zone),
    })?;
    Ok(page)
}
