//! `tidings bounce list | show | ingest` and `tidings suppression list | add | remove`.
//!
//! `bounce ingest` is the pipe an MTA runs for each message to the bounce address: it answers in sysexits codes
//! so that the MTA keeps the message when the database cannot take it (75, EX_TEMPFAIL) and never loses one.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{anyhow, bail};

use super::{AdminContext, format_millis};
use crate::bounces::{Pipeline, Source, header_recipients};
use crate::cli::{BounceCommand, SuppressionCommand};
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::domain::SubscriberEmail;
use crate::reports::BounceKind;
use crate::store::{ReportFilter, ReportRow};

/// sysexits(3): the input data was incorrect (here: too big).
const EX_DATAERR: u8 = 65;
/// sysexits(3): an error reading the input.
const EX_IOERR: u8 = 74;
/// sysexits(3): a temporary failure; the MTA keeps the message and tries again later.
const EX_TEMPFAIL: u8 = 75;
/// sysexits(3): a configuration error.
const EX_CONFIG: u8 = 78;

/// `bounce list` and `bounce show`.
pub async fn run(context: &AdminContext, command: BounceCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        BounceCommand::List { issue, kind, list, limit, json } => {
            if let Some(kind) = &kind
                && BounceKind::parse(kind).is_none()
            {
                bail!(
                    "--kind `{kind}` is not a kind of report; the kinds are hard, soft, policy, complaint, auto-reply, \
                     delayed, delivered and unclassified"
                );
            }
            let issue_id = match issue {
                Some(number) => {
                    let list = context.list(list.as_deref()).await?;
                    let row = context.store.issue_by_number(list.id, i64::from(number)).await?;
                    Some(row.ok_or_else(|| anyhow!("there is no issue {number} in list `{}`", list.slug))?.id)
                }
                None => None,
            };
            let filter = ReportFilter { issue_id, kind, limit: i64::from(limit) };
            let rows = context.store.bounce_reports(&filter).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else if rows.is_empty() {
                writeln!(out, "no reports")?;
            } else {
                print_table(&rows, out)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        BounceCommand::Show { id } => {
            let Some((row, raw)) = context.store.bounce_report(id).await? else {
                bail!("there is no report {id}; `tidings bounce list` shows them");
            };
            writeln!(out, "report {}  received {} through {}", row.id, format_millis(row.received_at), row.source)?;
            writeln!(out, "kind     {} ({})", row.kind, row.form)?;
            let about = match (&row.issue_number, &row.list) {
                (Some(number), Some(list)) if row.is_test => format!("a test send of issue {number} of `{list}`"),
                (Some(number), Some(list)) => format!("issue {number} of `{list}`"),
                (None, Some(list)) => format!("a confirmation email of `{list}`"),
                _ => "no message of ours".to_owned(),
            };
            writeln!(
                out,
                "about    {about}{}",
                row.subscriber_email.as_ref().map(|e| format!(", to {e}")).unwrap_or_default()
            )?;
            writeln!(out, "matched  {}", row.matched_by.as_deref().unwrap_or("no (unmatched)"))?;
            if !row.status_code.is_empty() {
                writeln!(out, "status   {}", row.status_code)?;
            }
            writeln!(out, "reason   {}", row.reason)?;
            writeln!(out, "effect   {}", row.effect)?;
            writeln!(out, "size     {} bytes as received", row.raw_bytes)?;
            writeln!(out, "\n{raw}")?;
            Ok(ExitCode::SUCCESS)
        }
        BounceCommand::Ingest { .. } => bail!("bounce ingest runs without an open store"),
    }
}

fn print_table(rows: &[ReportRow], out: &mut dyn Write) -> anyhow::Result<()> {
    writeln!(
        out,
        "{:>6}  {:<20}  {:<12}  {:<12}  {:>6}  {:<7}  {:<12}  effect",
        "id", "received", "kind", "form", "issue", "status", "matched"
    )?;
    for row in rows {
        let issue = match (row.issue_number, row.is_test) {
            (Some(number), false) => number.to_string(),
            (_, true) => "test".to_owned(),
            (None, false) => "-".to_owned(),
        };
        writeln!(
            out,
            "{:>6}  {:<20}  {:<12}  {:<12}  {:>6}  {:<7}  {:<12}  {}",
            row.id,
            format_millis(row.received_at),
            row.kind,
            row.form,
            issue,
            if row.status_code.is_empty() { "-" } else { &row.status_code },
            row.matched_by.as_deref().unwrap_or("unmatched"),
            row.effect
        )?;
    }
    Ok(())
}

/// `bounce ingest`: one message on standard input, stored and applied once.
pub async fn ingest(
    settings: Settings,
    clock: Clock,
    recipient: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let pipeline = match Pipeline::from_settings(&settings) {
        Ok(Some(pipeline)) => pipeline,
        Ok(None) => {
            eprintln!("tidings: bounces.address is not set: there is no bounce address to take reports for");
            return Ok(ExitCode::from(EX_CONFIG));
        }
        Err(e) => {
            eprintln!("tidings: configuration error: {e}");
            return Ok(ExitCode::from(EX_CONFIG));
        }
    };
    let max = pipeline.max_message_bytes();
    let read = tokio::task::spawn_blocking(move || {
        let mut raw = Vec::new();
        std::io::stdin().lock().take(max as u64 + 1).read_to_end(&mut raw).map(|_| raw)
    })
    .await?;
    let raw = match read {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("tidings: cannot read the message from standard input: {e}");
            return Ok(ExitCode::from(EX_IOERR));
        }
    };
    if raw.len() > max {
        eprintln!("tidings: the message is larger than bounces.max_message_bytes ({max} bytes); not stored");
        return Ok(ExitCode::from(EX_DATAERR));
    }
    let recipients = match recipient {
        Some(recipient) => vec![recipient],
        None => header_recipients(&raw),
    };
    let report = pipeline.prepare(&raw, &recipients, Source::Ingest);
    let context = match AdminContext::open(settings, clock.clone()).await {
        Ok(context) => context,
        Err(e) => {
            eprintln!("tidings: {e:#}; the MTA keeps the message and tries again");
            return Ok(ExitCode::from(EX_TEMPFAIL));
        }
    };
    let applied = pipeline.apply(&context.store, std::slice::from_ref(&report), clock.now()).await;
    context.store.close().await;
    match applied.map(|mut a| a.pop()) {
        Ok(Some(applied)) => {
            writeln!(out, "report {}: {} ({}); {}", applied.report_id, report.kind, report.form, applied.effect)?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => {
            eprintln!("tidings: the report was not stored; the MTA keeps the message and tries again");
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
        Err(e) => {
            eprintln!("tidings: {e:#}; the MTA keeps the message and tries again");
            Ok(ExitCode::from(EX_TEMPFAIL))
        }
    }
}

/// `suppression list | add | remove`.
pub async fn suppression(
    context: &AdminContext,
    command: SuppressionCommand,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let now = context.clock.now();
    match command {
        SuppressionCommand::List { limit, json } => {
            let rows = context.store.suppressions(i64::from(limit)).await?;
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else if rows.is_empty() {
                writeln!(out, "the suppression list is empty")?;
            } else {
                writeln!(out, "{:<20}  {:<10}  {:<34}  detail", "since", "reason", "address (or its hash)")?;
                for row in rows {
                    let who = row
                        .email
                        .clone()
                        .unwrap_or_else(|| format!("sha256:{}…", &row.email_hash[..16.min(row.email_hash.len())]));
                    let detail: String = row.detail.chars().take(80).collect();
                    writeln!(out, "{:<20}  {:<10}  {:<34}  {detail}", format_millis(row.created_at), row.reason, who)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        SuppressionCommand::Add { email, reason } => {
            let email = SubscriberEmail::parse(&email).map_err(|e| anyhow!("`{email}`: {e}"))?;
            if context.store.add_suppression(&email, reason.trim(), now).await? {
                writeln!(out, "suppressed {email}: it is never mailed again (until `suppression remove`)")?;
            } else {
                writeln!(out, "{email} was suppressed already")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        SuppressionCommand::Remove { email, reason } => {
            let email = SubscriberEmail::parse(&email).map_err(|e| anyhow!("`{email}`: {e}"))?;
            if reason.trim().is_empty() {
                bail!("--reason must say why {email} may be mailed again");
            }
            match context.store.remove_suppression(&email, reason.trim(), now).await? {
                Some(was) => {
                    writeln!(
                        out,
                        "{email} is no longer suppressed (it was: {}); its subscriptions stay as they are",
                        was.as_str()
                    )?;
                    Ok(ExitCode::SUCCESS)
                }
                None => bail!("{email} is not on the suppression list"),
            }
        }
    }
}
