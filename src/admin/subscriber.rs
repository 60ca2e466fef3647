//! `tidings subscriber ...`: add, import, list, show, remove, export, erase.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use serde_json::json;

use super::{AdminContext, format_millis, import};
use crate::cli::SubscriberCommand;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus};
use crate::store::{AddOutcome, SubscriberFilter, SubscriberRow};

/// Rows fetched per page when listing or exporting.
const PAGE: u32 = 1_000;

pub async fn run(context: &AdminContext, command: SubscriberCommand, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        SubscriberCommand::Add { email, name, list, pending, tz } => {
            add(context, &email, name.as_deref(), list.as_deref(), pending, tz.as_deref(), out).await
        }
        SubscriberCommand::Import { file, list } => {
            let list = context.list(list.as_deref()).await?;
            let summary = import::import_file(&context.store, &context.clock, list.id, &file, |problem| {
                eprintln!("line {}: {}", problem.line, problem.message);
            })
            .await?;
            writeln!(
                out,
                "{}: {} rows into `{}`: {} added, {} already subscribed, {} refused, {} skipped (suppressed)",
                file.display(),
                summary.rows,
                list.slug,
                summary.added,
                summary.already_subscribed,
                summary.rejected,
                summary.suppressed
            )?;
            if summary.opted_out > 0 {
                writeln!(
                    out,
                    "{} subscriptions ended: the file says these people unsubscribed, bounced or complained",
                    summary.opted_out
                )?;
            }
            if summary.rejected > 0 {
                eprintln!(
                    "tidings: {} rows were refused (see the lines above); the other rows were imported",
                    summary.rejected
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscriberCommand::List { status, list, limit, json } => {
            list_subscribers(context, status.as_deref(), list.as_deref(), limit, json, out).await
        }
        SubscriberCommand::Show { email, json } => show(context, &email, json, out).await,
        SubscriberCommand::Remove { email, list } => {
            let email = parse_email(&email)?;
            let list_id = match list.as_deref() {
                Some(slug) => Some(context.list(Some(slug)).await?.id),
                None => None,
            };
            match context.store.remove_subscriber(&email, list_id).await? {
                None => bail!("there is no subscriber with the address {email}"),
                Some(0) if list_id.is_some() => bail!("{email} is not on that list"),
                Some(removed) => writeln!(out, "removed {email} ({removed} subscriptions)")?,
            }
            Ok(ExitCode::SUCCESS)
        }
        SubscriberCommand::Export { out: file, list, status } => {
            export(context, file.as_deref(), list.as_deref(), status.as_deref(), out).await
        }
        SubscriberCommand::Erase { email } => {
            let email = parse_email(&email)?;
            let outcome = context.store.erase_subscriber(&email, context.clock.now()).await?;
            if outcome.erased {
                writeln!(
                    out,
                    "erased {email}: their personal data is deleted; a hash of the address stays on the suppression list, so it is never mailed again"
                )?;
            } else {
                writeln!(
                    out,
                    "no subscriber had the address {email}; a hash of it is now on the suppression list, so it is never mailed"
                )?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_email(input: &str) -> anyhow::Result<SubscriberEmail> {
    SubscriberEmail::parse(input).map_err(|e| anyhow!("{e}"))
}

fn parse_status(input: Option<&str>) -> anyhow::Result<Option<SubscriptionStatus>> {
    input.map(|s| SubscriptionStatus::parse(s).map_err(|e| anyhow!("--status: {e}"))).transpose()
}

async fn add(
    context: &AdminContext,
    email: &str,
    name: Option<&str>,
    list: Option<&str>,
    pending: bool,
    tz: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let email = parse_email(email)?;
    let name = SubscriberName::parse(name.unwrap_or("")).map_err(|e| anyhow!("--name: {e}"))?;
    if let Some(zone) = tz {
        jiff::tz::TimeZone::get(zone)
            .map_err(|_| anyhow!("--tz: `{zone}` is not an IANA time zone, e.g. Europe/Berlin"))?;
    }
    let list = context.list(list).await?;
    let status = if pending { SubscriptionStatus::Pending } else { SubscriptionStatus::Active };
    let outcome = context
        .store
        .add_subscriber(list.id, &email, &name, tz, status, ConsentSource::Cli, context.clock.now())
        .await?;
    match outcome {
        AddOutcome::Added { .. } => writeln!(out, "added {email} to `{}` ({status})", list.slug)?,
        AddOutcome::AlreadyOnList { status, .. } => {
            writeln!(out, "{email} is already on `{}` ({status}); nothing changed", list.slug)?
        }
        AddOutcome::Suppressed(reason) => {
            bail!("{email} is on the suppression list ({reason}) and cannot be added")
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn list_subscribers(
    context: &AdminContext,
    status: Option<&str>,
    list: Option<&str>,
    limit: Option<u64>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let status = parse_status(status)?;
    let list_id = match list {
        Some(slug) => Some(context.list(Some(slug)).await?.id),
        None => None,
    };
    let filter = SubscriberFilter { list_id, status };
    let mut shown: u64 = 0;
    let limit = limit.unwrap_or(u64::MAX);
    if json {
        write!(out, "[")?;
    } else {
        writeln!(out, "{:>8}  {:<12}  {:<12}  {:<20}  EMAIL / NAME", "ID", "LIST", "STATUS", "SINCE")?;
    }
    let mut after = None;
    'pages: loop {
        let page = context.store.list_subscribers(filter, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.id, last.list.clone()));
        for row in &page {
            if shown == limit {
                break 'pages;
            }
            if json {
                let separator = if shown == 0 { "\n" } else { ",\n" };
                write!(out, "{separator}{}", serde_json::to_string(&row_json(row))?)?;
            } else {
                let since = format_millis(row.created_at);
                let name = if row.name.is_empty() { String::new() } else { format!("  {}", row.name) };
                writeln!(
                    out,
                    "{:>8}  {:<12}  {:<12}  {:<20}  {}{name}",
                    row.id, row.list, row.status, since, row.email
                )?;
            }
            shown += 1;
        }
    }
    if json {
        writeln!(out, "\n]")?;
        return Ok(ExitCode::SUCCESS);
    }
    let counts = context.store.status_counts(list_id).await?;
    let mut summary: Vec<String> = Vec::new();
    for list in counts.iter().map(|c| c.list.as_str()).collect::<std::collections::BTreeSet<_>>() {
        let parts: Vec<String> =
            counts.iter().filter(|c| c.list == list).map(|c| format!("{} {}", c.count, c.status)).collect();
        summary.push(format!("{list}: {}", parts.join(", ")));
    }
    writeln!(
        out,
        "{shown} shown. {}",
        if summary.is_empty() { "No subscriptions yet.".to_owned() } else { summary.join("; ") }
    )?;
    Ok(ExitCode::SUCCESS)
}

fn row_json(row: &SubscriberRow) -> serde_json::Value {
    let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap_or_else(|_| json!({}));
    json!({
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "list": row.list,
        "status": row.status,
        "source": row.source,
        "time_zone": row.time_zone,
        "attributes": attributes,
        "created_at": format_millis(row.created_at),
        "consent_at": row.consent_at.map(format_millis),
    })
}

async fn show(context: &AdminContext, email: &str, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let email = parse_email(email)?;
    let Some((person, subscriptions)) = context.store.find_subscriber(&email).await? else {
        bail!("there is no subscriber with the address {email}");
    };
    let suppression = context.store.suppression_of(&email).await?;
    let subscriptions: Vec<serde_json::Value> = subscriptions
        .iter()
        .map(|s| {
            json!({
                "list": s.list,
                "status": s.status,
                "source": s.source,
                "subscribed_at": format_millis(s.created_at),
                "updated_at": format_millis(s.updated_at),
                "consent_at": s.consent_at.map(format_millis),
                "request_ip": s.request_ip,
                "request_user_agent": s.request_user_agent,
                "confirm_ip": s.confirm_ip,
                "confirm_user_agent": s.confirm_user_agent,
                "expires_at": s.expires_at.map(format_millis),
                "unsubscribed_at": s.unsubscribed_at.map(format_millis),
            })
        })
        .collect();
    let attributes: serde_json::Value = serde_json::from_str(&person.attributes).unwrap_or_else(|_| json!({}));
    if json {
        let value = json!({
            "id": person.id,
            "email": person.email,
            "name": person.name,
            "time_zone": person.time_zone,
            "attributes": attributes,
            "created_at": format_millis(person.created_at),
            "suppressed": suppression.map(|r| r.as_str()),
            "subscriptions": subscriptions,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "{} (subscriber {})", person.email, person.id)?;
    writeln!(out, "  name:       {}", if person.name.is_empty() { "-" } else { &person.name })?;
    writeln!(out, "  time zone:  {}", person.time_zone.as_deref().unwrap_or("- (the list's)"))?;
    writeln!(out, "  since:      {}", format_millis(person.created_at))?;
    if let Some(map) = attributes.as_object().filter(|m| !m.is_empty()) {
        let pairs: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
        writeln!(out, "  attributes: {}", pairs.join(", "))?;
    }
    if let Some(reason) = suppression {
        writeln!(out, "  SUPPRESSED: {reason} (never mailed)")?;
    }
    for s in &subscriptions {
        let field = |key: &str| s[key].as_str().map(str::to_owned).unwrap_or_else(|| "-".to_owned());
        writeln!(
            out,
            "  list `{}`: {} (source {}, since {})",
            field("list"),
            field("status"),
            field("source"),
            field("subscribed_at")
        )?;
        writeln!(
            out,
            "    consent at {}, confirmed from {} ({})",
            field("consent_at"),
            field("confirm_ip"),
            field("confirm_user_agent")
        )?;
        if s["unsubscribed_at"].is_string() {
            writeln!(out, "    unsubscribed at {}", field("unsubscribed_at"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn export(
    context: &AdminContext,
    file: Option<&std::path::Path>,
    list: Option<&str>,
    status: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let status = parse_status(status)?;
    let list_id = match list {
        Some(slug) => Some(context.list(Some(slug)).await?.id),
        None => None,
    };
    let filter = SubscriberFilter { list_id, status };

    // First pass: the attribute names, so every row has the same columns.
    let mut keys = std::collections::BTreeSet::new();
    let mut after = None;
    loop {
        let page = context.store.list_subscribers(filter, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.id, last.list.clone()));
        for row in &page {
            if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(&row.attributes) {
                keys.extend(map.into_iter().map(|(k, _)| k));
            }
        }
    }
    let keys: Vec<String> = keys.into_iter().collect();

    let sink: Box<dyn Write + '_> = match file {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
        }
        None => Box::new(&mut *out),
    };
    let mut writer = csv::Writer::from_writer(sink);
    let mut header = vec!["email", "name", "tz"];
    header.extend(super::import::RESERVED_COLUMNS);
    header.extend(keys.iter().map(String::as_str));
    writer.write_record(&header)?;
    let mut written: u64 = 0;
    let mut after = None;
    loop {
        let page = context.store.list_subscribers(filter, after.clone(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.id, last.list.clone()));
        for row in &page {
            let attributes: serde_json::Value = serde_json::from_str(&row.attributes).unwrap_or_else(|_| json!({}));
            let mut record = vec![
                row.email.clone(),
                row.name.clone(),
                row.time_zone.clone().unwrap_or_default(),
                row.list.clone(),
                row.status.clone(),
                row.source.clone(),
                format_millis(row.created_at),
                row.consent_at.map(format_millis).unwrap_or_default(),
                row.request_ip.clone().unwrap_or_default(),
                row.request_user_agent.clone().unwrap_or_default(),
                row.confirm_ip.clone().unwrap_or_default(),
                row.confirm_user_agent.clone().unwrap_or_default(),
                row.unsubscribed_at.map(format_millis).unwrap_or_default(),
            ];
            record.extend(keys.iter().map(|k| attributes[k].as_str().unwrap_or_default().to_owned()));
            writer.write_record(&record)?;
            written += 1;
        }
    }
    writer.flush()?;
    drop(writer);
    if let Some(path) = file {
        writeln!(out, "wrote {written} subscriptions to {}", path.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
