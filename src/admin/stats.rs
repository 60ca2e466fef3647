//! `tidings stats [N]`, `tidings stats --deliverability`, `tidings report N --out FILE.html` and `tidings report
//! --last N`: read the figures from the store, hand them to `stats` for text, JSON or HTML, and print or write
//! the result. The comparison with earlier issues reads every issue's line at once (`issue_summaries`) and the
//! list's subscribers at the last issues in one statement (`audiences`).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use jiff::tz::TimeZone;

use super::AdminContext;
use super::issue::find;
use crate::stats::{self, IssueFigures, IssueReport, ListDeliverability, Window};
use crate::store::{IssueRow, ListRow};

pub async fn stats(
    context: &AdminContext,
    number: Option<u32>,
    list: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let Some(number) = number else { return overview(context, list, json, out).await };
    let (list, issue) = find(context, number, list).await?;
    let report = load(context, &list, &issue).await?;
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats::detail_json(&report))?)?;
    } else {
        write!(out, "{}", stats::detail_text(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn overview(
    context: &AdminContext,
    list: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let list = context.list(list).await?;
    let summaries = context.store.issue_summaries(list.id).await?;
    if json {
        let rows: Vec<serde_json::Value> = summaries.iter().map(stats::summary_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let not_started = context.store.issues(list.id).await?.len().saturating_sub(summaries.len());
    write!(out, "{}", stats::overview_text(&list.slug, &summaries, not_started, &zone(&list)))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn report(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    let mut report = load(context, &list, &issue).await?;
    let window = Window::ending(crate::clock::to_millis(context.clock.now()), DEFAULT_DAYS);
    let rows = context.store.deliverability(window.since, Some(list.id)).await?;
    report.deliverability = Some((window, ListDeliverability::from_rows(&list.slug, &list.name, list.id, &rows)));
    let html = stats::render_report(&report, context.clock.now()).context("cannot render the report")?;
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// The days the report's deliverability section counts (the default of `stats --deliverability`).
const DEFAULT_DAYS: u32 = 30;

/// `tidings stats --deliverability [--days N] [--list L]`: every list's figures, or one list's.
pub async fn deliverability(
    context: &AdminContext,
    days: u32,
    list: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let lists = match list {
        Some(slug) => vec![context.list(Some(slug)).await?],
        None => context.store.lists().await?,
    };
    let window = Window::ending(crate::clock::to_millis(context.clock.now()), days);
    let only = list.and(lists.first()).map(|l| l.id);
    let rows = context.store.deliverability(window.since, only).await?;
    let figures: Vec<ListDeliverability> =
        lists.iter().map(|l| ListDeliverability::from_rows(&l.slug, &l.name, l.id, &rows)).collect();
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&stats::deliverability_json(&window, &figures))?)?;
    } else {
        write!(out, "{}", stats::deliverability_text(&window, &figures))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The list's last `last` issues: the comparison of the latest with those before it, and one line per issue.
pub async fn list_report(
    context: &AdminContext,
    last: u32,
    list: Option<&str>,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let list = context.list(list).await?;
    let Some(latest) = context.store.recent_issue_summaries(list.id, i64::MAX, 1).await?.last().map(|s| s.number)
    else {
        anyhow::bail!("no issue of `{}` has been sent yet: there is nothing to report", list.slug);
    };
    let issues = figures(context, &list, latest, i64::from(last)).await?;
    // The comparison of the latest issue takes the issues before it that are in the page, up to 8.
    let comparison = stats::compare(&issues[issues.len().saturating_sub(stats::TREND_OF)..]);
    let html = stats::render_list_report(&list.name, &zone(&list), &issues, &comparison, context.clock.now())
        .context("cannot render the report")?;
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// The last `count` started issues of a list numbered up to `number`, by number, with their audiences.
async fn figures(context: &AdminContext, list: &ListRow, number: i64, count: i64) -> anyhow::Result<Vec<IssueFigures>> {
    let summaries = context.store.recent_issue_summaries(list.id, number, count).await?;
    let audiences = context.store.audiences(list.id, number, count).await?;
    Ok(summaries
        .into_iter()
        .map(|summary| IssueFigures { audience: audiences.get(&summary.issue_id).copied(), summary })
        .collect())
}

/// Every figure of one issue. Time is counted from the start of sending (or, for an issue never started, from
/// when it was added: there is nothing to count then).
async fn load(context: &AdminContext, list: &ListRow, issue: &IssueRow) -> anyhow::Result<IssueReport> {
    let origin = issue.started_at.unwrap_or(issue.created_at);
    let span = context.store.delivered_span(issue.id).await?.map_or(0, |(_, last)| (last - origin).max(0));
    let mut detail = context.store.issue_detail(issue.id, origin, stats::delivery_bucket_width(span)).await?;
    detail.deliveries = std::mem::take(&mut detail.deliveries).for_issue(&issue.status);
    let history = figures(context, list, issue.number, stats::TREND_OF as i64).await?;
    let this = history.last().filter(|f| f.summary.issue_id == issue.id);
    let audience = this.and_then(|f| f.audience);
    let comparison = if this.is_some() { stats::compare(&history) } else { stats::Comparison::default() };
    Ok(IssueReport {
        list_slug: list.slug.clone(),
        list_name: list.name.clone(),
        zone: zone(list),
        number: issue.number,
        subject: issue.subject.clone(),
        status: issue.status.clone(),
        started_at: issue.started_at,
        finished_at: issue.finished_at,
        detail,
        deliverability: None,
        audience,
        comparison,
        click_tracking: context.settings.tracking.clicks,
    })
}

fn zone(list: &ListRow) -> TimeZone {
    TimeZone::get(&list.time_zone).unwrap_or(TimeZone::UTC)
}
