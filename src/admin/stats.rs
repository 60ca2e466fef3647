//! `tidings stats [N]` and `tidings report N --out FILE.html`: read the figures from the store, hand them to
//! `stats` for text, JSON or HTML, and print or write the result.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use jiff::tz::TimeZone;

use super::AdminContext;
use super::issue::find;
use crate::stats::{self, IssueReport};
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
    let report = load(context, &list, &issue).await?;
    let html = stats::render_report(&report, context.clock.now()).context("cannot render the report")?;
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))?;
    writeln!(out, "{}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

/// Every figure of one issue. Time is counted from the start of sending (or, for an issue never started, from
/// when it was added: there is nothing to count then).
async fn load(context: &AdminContext, list: &ListRow, issue: &IssueRow) -> anyhow::Result<IssueReport> {
    let origin = issue.started_at.unwrap_or(issue.created_at);
    let span = context.store.delivered_span(issue.id).await?.map_or(0, |(_, last)| (last - origin).max(0));
    let mut detail = context.store.issue_detail(issue.id, origin, stats::delivery_bucket_width(span)).await?;
    detail.deliveries = std::mem::take(&mut detail.deliveries).for_issue(&issue.status);
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
    })
}

fn zone(list: &ListRow) -> TimeZone {
    TimeZone::get(&list.time_zone).unwrap_or(TimeZone::UTC)
}
