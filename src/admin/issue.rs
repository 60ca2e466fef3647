//! `tidings issue ...`: add (check, render, store a draft), list, show and preview issues.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, anyhow, bail};
use serde_json::json;

use super::{AdminContext, format_millis};
use crate::cli::IssueCommand;
use crate::configuration::Settings;
use crate::domain::{LinkBuilder, LinkKeys, sha256_hex};
use crate::render::{self, Branding, CompiledIssue, Recipient, Templates};
use crate::store::{IssueRow, ListRow, NewIssue, SaveOutcome};

/// The fictional subscriber a preview is personalised for.
const SAMPLE_NAME: &str = "Alex Sample";

pub async fn run(context: &AdminContext, command: IssueCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        IssueCommand::Add { file, list } => add(context, &file, list.as_deref(), out).await,
        IssueCommand::List { list, json } => {
            let list = context.list(list.as_deref()).await?;
            let issues = context.store.issues(list.id).await?;
            if json {
                let rows: Vec<serde_json::Value> = issues.iter().map(issue_json).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
            } else if issues.is_empty() {
                writeln!(out, "no issues on `{}` yet; add one with `tidings issue add FILE.md`", list.slug)?;
            } else {
                writeln!(out, "{:>6}  {:<10}  {:<20}  SUBJECT", "NUMBER", "STATUS", "UPDATED")?;
                for issue in &issues {
                    let updated = format_millis(issue.updated_at);
                    writeln!(out, "{:>6}  {:<10}  {:<20}  {}", issue.number, issue.status, updated, issue.subject)?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        IssueCommand::Show { number, list, json } => {
            let (list, issue) = find(context, number, list.as_deref()).await?;
            let compiled = load_compiled(context, &issue).await?;
            let sample = preview_parts(&context.settings, &list, &issue, &compiled)?;
            if json {
                let mut value = issue_json(&issue);
                value["links"] = json!(compiled.links());
                value["html_bytes"] = json!(sample.0.len());
                value["text_bytes"] = json!(sample.1.len());
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "issue {} of `{}`: {}", issue.number, list.slug, issue.subject)?;
            writeln!(out, "  status:     {}", issue.status)?;
            if let Some(reason) = &issue.hold_reason {
                writeln!(out, "  waiting:    {reason}")?;
            }
            writeln!(out, "  preheader:  {}", issue.preheader)?;
            writeln!(out, "  period:     {}", issue.period)?;
            writeln!(out, "  source:     {} (sha256 {})", issue.source_path, &issue.source_hash[..12])?;
            writeln!(out, "  size:       HTML {} bytes, text {} bytes", sample.0.len(), sample.1.len())?;
            writeln!(out, "  links:      {}", compiled.links().len())?;
            for (index, link) in compiled.links().iter().enumerate() {
                writeln!(out, "    [{}] {link}", index + 1)?;
            }
            writeln!(
                out,
                "  added:      {}, updated {}",
                format_millis(issue.created_at),
                format_millis(issue.updated_at)
            )?;
            Ok(ExitCode::SUCCESS)
        }
        IssueCommand::TestSend { number, to, list } => {
            super::delivery::test_send(context, number, list.as_deref(), &to, out).await
        }
        IssueCommand::Schedule { number, at, tz, local_time, list } => {
            super::delivery::schedule(context, number, list.as_deref(), &at, tz.as_deref(), local_time, out).await
        }
        IssueCommand::Queue { number, list } => super::queue::queue(context, number, list.as_deref(), out).await,
        IssueCommand::Unqueue { number, list } => super::queue::unqueue(context, number, list.as_deref(), out).await,
        IssueCommand::Send { number, list } => super::delivery::send(context, number, list.as_deref(), out).await,
        IssueCommand::Pause { number, list } => {
            super::delivery::change(context, number, list.as_deref(), "pause", out).await
        }
        IssueCommand::Resume { number, list } => {
            super::delivery::change(context, number, list.as_deref(), "resume", out).await
        }
        IssueCommand::Cancel { number, list } => {
            super::delivery::change(context, number, list.as_deref(), "cancel", out).await
        }
        IssueCommand::Status { number, list, follow, json } => {
            super::delivery::status(context, number, list.as_deref(), follow, json, out).await
        }
        IssueCommand::Preview { number, list, out: dir } => {
            let (list, issue) = find(context, number, list.as_deref()).await?;
            let compiled = load_compiled(context, &issue).await?;
            let (html, text) = preview_parts(&context.settings, &list, &issue, &compiled)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let html_path = dir.join(format!("{}.html", issue.number));
            let text_path = dir.join(format!("{}.txt", issue.number));
            std::fs::write(&html_path, html).with_context(|| format!("cannot write {}", html_path.display()))?;
            std::fs::write(&text_path, text).with_context(|| format!("cannot write {}", text_path.display()))?;
            writeln!(out, "{}", html_path.display())?;
            writeln!(out, "{}", text_path.display())?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The templates named by `render.templates_dir`, or the built-in ones.
pub(crate) fn templates(settings: &Settings) -> anyhow::Result<Templates> {
    let dir = settings.render.templates_dir.trim();
    if dir.is_empty() {
        return Ok(Templates::embedded());
    }
    Templates::from_dir(Path::new(dir)).map_err(|e| anyhow!("render.templates_dir: {e}"))
}

/// What every email of `list` shows about its sender.
pub(crate) fn branding(settings: &Settings, list: &ListRow) -> anyhow::Result<Branding> {
    let from = lettre::message::Mailbox::from_str(&settings.sender.from).map_err(|e| {
        anyhow!("sender.from `{}` is not a mailbox like \"Name <news@example.com>\": {e}", settings.sender.from)
    })?;
    Ok(Branding {
        list_name: list.name.clone(),
        organization: settings.sender.organization.clone(),
        postal_address: settings.sender.postal_address.clone(),
        sender_email: from.email.to_string(),
    })
}

async fn add(context: &AdminContext, file: &Path, list: Option<&str>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let shown = file.display().to_string();
    let source = render::parse_issue(&shown, &text).map_err(|e| anyhow!("{e}"))?;
    let slug = match (list, &source.list) {
        (Some(flag), Some(front)) if flag != front.as_str() => {
            bail!("{shown}: the front matter says list `{front}` but --list says `{flag}`")
        }
        (Some(flag), _) => Some(flag.to_owned()),
        (None, front) => front.as_ref().map(|slug| slug.as_str().to_owned()),
    };
    let list = context.list(slug.as_deref()).await?;
    let compiled = render::compile_issue(&templates(&context.settings)?, &source, &branding(&context.settings, &list)?)
        .map_err(|e| anyhow!("{e}"))?;
    let serialized = serde_json::to_string(&compiled).context("cannot serialize the rendered issue")?;
    let hash = sha256_hex(&[text.as_bytes()]);
    let number = i64::from(source.number.get());
    let new = NewIssue {
        list_id: list.id,
        number,
        subject: &source.subject,
        preheader: &source.preheader,
        period: &source.period,
        source_path: &shown,
        source_hash: &hash,
        source: &text,
        compiled: &serialized,
    };
    let items = source.items.len();
    let outcome = context.store.save_issue(&new, context.clock.now()).await?;
    if let SaveOutcome::Added { id } | SaveOutcome::Updated { id } | SaveOutcome::Unchanged { id } = &outcome {
        // The links click tracking may redirect to; kept while the issue is a draft (also when unchanged, so a
        // run interrupted between the two writes is completed by adding the file again).
        context.store.save_issue_links(*id, compiled.links()).await?;
    }
    match outcome {
        SaveOutcome::Added { .. } => writeln!(
            out,
            "added issue {number} to `{}` as a draft: \"{}\" ({items} {})",
            list.slug,
            source.subject,
            plural(items, "item")
        )?,
        SaveOutcome::Updated { .. } => {
            writeln!(out, "updated draft issue {number}: \"{}\" ({items} {})", source.subject, plural(items, "item"))?
        }
        SaveOutcome::Unchanged { .. } => writeln!(out, "issue {number} is unchanged; nothing to do")?,
        SaveOutcome::Refused { status, .. } => {
            bail!("issue {number} is {status} and can no longer be changed; give the new version another number")
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn find(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
) -> anyhow::Result<(ListRow, IssueRow)> {
    let list = context.list(list).await?;
    match context.store.issue_by_number(list.id, i64::from(number)).await? {
        Some(issue) => Ok((list, issue)),
        None => bail!("there is no issue {number} on `{}`; add it with `tidings issue add FILE.md`", list.slug),
    }
}

pub(crate) async fn load_compiled(context: &AdminContext, issue: &IssueRow) -> anyhow::Result<CompiledIssue> {
    let stored = context.store.issue_compiled(issue.id).await?;
    serde_json::from_str(&stored)
        .with_context(|| format!("the stored rendering of issue {} is unreadable", issue.number))
}

/// The issue personalised for the sample subscriber (id 0). Its links use the configured signing keys when
/// there are any, else a throwaway key: they show the shape of real links but lead nowhere.
fn preview_parts(
    settings: &Settings,
    list: &ListRow,
    issue: &IssueRow,
    compiled: &CompiledIssue,
) -> anyhow::Result<(String, String)> {
    let links = match settings.link_builder() {
        Ok(builder) => builder,
        Err(_) => {
            let throwaway =
                LinkKeys::parse(&format!("1:{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()))
                    .map_err(|e| anyhow!("{e}"))?;
            LinkBuilder::new(&settings.base_url(), throwaway).map_err(|e| anyhow!("http.base_url: {e}"))?
        }
    };
    let urls = links.issue_links(list.id, 0, issue.id);
    let pixel = settings.tracking.opens.then_some(urls.open.as_str());
    let recipient = Recipient {
        name: SAMPLE_NAME,
        unsubscribe_url: &urls.unsubscribe,
        rate_urls: [&urls.rate[0], &urls.rate[1], &urls.rate[2], &urls.rate[3], &urls.rate[4]],
        pixel_url: pixel,
        view_url: &urls.view,
    };
    let personalised = compiled.personalise(&recipient);
    Ok((personalised.html(), personalised.text()))
}

fn issue_json(issue: &IssueRow) -> serde_json::Value {
    json!({
        "number": issue.number,
        "subject": issue.subject,
        "preheader": issue.preheader,
        "period": issue.period,
        "status": issue.status,
        "source_path": issue.source_path,
        "source_sha256": issue.source_hash,
        "send_at": issue.send_at.map(format_millis),
        "hold_reason": issue.hold_reason,
        "created_at": format_millis(issue.created_at),
        "updated_at": format_millis(issue.updated_at),
    })
}

/// `noun` or its plural for `count` of them.
fn plural(count: usize, noun: &str) -> String {
    if count == 1 { noun.to_owned() } else { format!("{noun}s") }
}
