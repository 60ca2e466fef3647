//! `tidings issue send | schedule | pause | resume | cancel | status | test-send`: the admin's side of sending.
//!
//! These commands only change rows; a running `tidings serve` does the sending. The one exception is
//! `test-send`, which sends its single message itself so the editor sees the result at once.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::issue::{find, load_compiled};
use super::{AdminContext, format_millis};
use crate::clock::{from_millis, to_millis};
use crate::domain::{
    ForPeople, LinkBuilder, LinkKeys, ReturnPathFor, SubscriberEmail, check_time_zone, earliest_instant,
    resolve_local_time,
};
use crate::mailer::{self, BounceTrace, Outgoing, SendOutcome};
use crate::render::Recipient;
use crate::store::{DeliveryCounts, IssueRow, ReportCounts};

#[allow(clippy::too_many_arguments)]
pub async fn schedule(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    at: &str,
    tz: Option<&str>,
    local_time: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    if local_time && tz.is_some() {
        bail!("--local-time and --tz do not go together: with --local-time, --at is each subscriber's own time");
    }
    let zone_name = tz.unwrap_or(&list.time_zone);
    let zone = check_time_zone(zone_name).map_err(|e| anyhow!("--tz: {e}"))?;
    let local: jiff::civil::DateTime = at
        .trim()
        .parse()
        .map_err(|e| anyhow!("--at: `{at}` is not a local date and time like \"2026-12-07 08:00\" ({e})"))?;
    // A time skipped by a daylight-saving change runs at the first valid instant after it; a repeated one
    // runs once, at the earlier instant.
    let when = resolve_local_time(&zone, local).to_zoned_datetime(zone);
    // A local-time send starts when the first zone on Earth reaches that hour.
    let (send_at, local_at) = if local_time {
        (earliest_instant(local), Some(local.strftime("%Y-%m-%dT%H:%M:%S").to_string()))
    } else {
        (when.timestamp(), None)
    };
    let now = context.clock.now();
    if !context.store.schedule_issue(issue.id, send_at, local_at.as_deref(), now).await? {
        bail!(
            "issue {number} is {}; only a draft, a queued or scheduled issue, or a paused one that has not started \
             can be scheduled",
            issue.status
        );
    }
    if local_time {
        writeln!(
            out,
            "issue {number} is scheduled for {} in each subscriber's own time zone ({} for those without one); \
             sending starts at {send_at}, when the first zone reaches that time",
            local.strftime("%Y-%m-%d %H:%M"),
            list.time_zone
        )?;
    } else {
        writeln!(
            out,
            "issue {number} is scheduled for {} ({})",
            when.strftime("%Y-%m-%d %H:%M %Z (%:z)"),
            when.timestamp()
        )?;
    }
    if send_at < now {
        writeln!(
            out,
            "that time has passed: a running daemon sends it now, unless it is more than delivery.max_late late"
        )?;
    }
    writeln!(out, "`tidings serve` sends it; watch with `tidings issue status {number} --follow`")?;
    Ok(ExitCode::SUCCESS)
}

pub async fn send(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    if !context.store.start_issue(issue.id, context.clock.now()).await? {
        bail!(
            "issue {number} is {}; only a draft or a scheduled issue can be sent (a paused one is resumed)",
            issue.status
        );
    }
    let active = context
        .store
        .status_counts(Some(list.id))
        .await?
        .into_iter()
        .find(|count| count.status == "active")
        .map_or(0, |count| count.count);
    writeln!(out, "issue {number} is sending to the {active} active subscribers of `{}`", list.slug)?;
    writeln!(out, "`tidings serve` delivers it; watch with `tidings issue status {number} --follow`")?;
    Ok(ExitCode::SUCCESS)
}

/// `pause`, `resume` or `cancel`.
pub async fn change(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    action: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (_, issue) = find(context, number, list).await?;
    let now = context.clock.now();
    let (done, allowed, verb) = match action {
        "pause" => (
            context.store.pause_issue(issue.id, "paused by an admin (`tidings issue resume` continues)", now).await?,
            "a scheduled or sending issue",
            "paused",
        ),
        "resume" => (context.store.resume_issue(issue.id, now).await?, "a paused issue", "resumed"),
        "cancel" => (context.store.cancel_issue(issue.id, now).await?, "an issue that has not finished", "cancelled"),
        other => bail!("unknown action {other}"),
    };
    if !done {
        bail!("issue {number} is {}; only {allowed} can be {verb}", issue.status);
    }
    writeln!(out, "issue {number} is {verb}")?;
    Ok(ExitCode::SUCCESS)
}

/// The figures `issue status` shows.
struct Progress {
    issue: IssueRow,
    counts: DeliveryCounts,
    /// Messages sent in the last minute.
    per_minute: i64,
    /// For a local-time send: the next time zone still to reach its hour, and when it does.
    next_zone: Option<(String, Timestamp)>,
    now: Timestamp,
}

async fn progress(context: &AdminContext, issue: &IssueRow, now: Timestamp) -> anyhow::Result<Progress> {
    let issue = context.store.issue_by_id(issue.id).await?.unwrap_or_else(|| issue.clone());
    let counts = context.store.delivery_counts(issue.id).await?.for_issue(&issue.status);
    let minute_ago = now.saturating_sub(SignedDuration::from_mins(1)).unwrap_or(now);
    let per_minute = context.store.sent_since(issue.id, minute_ago).await?;
    let next_zone = match issue.local_at {
        Some(_) => context
            .store
            .zone_progress(issue.id)
            .await?
            .into_iter()
            .filter(|zone| zone.pending > 0 && zone.first_not_before > to_millis(now))
            .min_by_key(|zone| zone.first_not_before)
            .map(|zone| (zone.time_zone, from_millis(zone.first_not_before))),
        None => None,
    };
    Ok(Progress { issue, counts, per_minute, next_zone, now })
}

impl Progress {
    /// The time left at the current rate; none while a local-time send waits for a zone to reach its hour (the
    /// rate then says nothing about when the rest goes), and none once the issue is no longer sending.
    fn eta(&self) -> Option<SignedDuration> {
        let sending = self.active() && self.next_zone.is_none();
        (sending && self.per_minute > 0)
            .then(|| SignedDuration::from_secs(self.counts.pending() * 60 / self.per_minute))
    }

    fn line(&self) -> String {
        let c = &self.counts;
        let counts = format!(
            "sent {} of {}, {}failed {}, bounced {}, suppressed {}, ambiguous {}",
            c.sent,
            c.total,
            match self.issue.status.as_str() {
                "cancelled" => format!("cancelled (never sent) {}, ", c.cancelled),
                _ => format!("queued {}, sending {}, retrying {}, ", c.queued, c.sending, c.retry_wait),
            },
            c.failed,
            c.bounced,
            c.suppressed,
            c.ever_ambiguous,
        );
        let pace = match (&self.next_zone, self.eta()) {
            _ if !self.active() => String::new(),
            (Some((zone, at)), _) => format!(
                "; {}/min, the next time zone ({}) starts at {} (in {})",
                self.per_minute,
                if zone.is_empty() { "the list's" } else { zone },
                format_millis(to_millis(*at)),
                ForPeople(at.duration_since(self.now))
            ),
            (None, Some(eta)) => format!("; {}/min, about {} left", self.per_minute, ForPeople(eta)),
            (None, None) => format!("; {}/min", self.per_minute),
        };
        format!("{counts}{pace}")
    }

    fn active(&self) -> bool {
        matches!(self.issue.status.as_str(), "scheduled" | "sending" | "queued")
    }
}

pub async fn status(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    follow: bool,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    let relay = crate::startup::relay_name(&context.settings);
    let now = context.clock.now();
    let report = progress(context, &issue, now).await?;
    let circuit = context.store.open_circuit(&relay, now).await?;
    let ambiguous = context.store.ambiguous_deliveries(issue.id).await?;
    let zones = match report.issue.local_at {
        Some(_) => context.store.zone_progress(issue.id).await?,
        None => Vec::new(),
    };
    let slot = context.store.slot_of_issue(issue.id).await?;
    let came_back = context.store.issue_report_counts(issue.id).await?;
    if json {
        let value = json!({
            "number": report.issue.number,
            "list": list.slug,
            "status": report.issue.status,
            "hold_reason": report.issue.hold_reason,
            "send_at": report.issue.send_at.map(format_millis),
            "local_at": report.issue.local_at,
            "slot": slot.as_ref().map(|slot| json!({
                "slot_at": format_millis(slot.slot_at), "status": slot.status, "detail": slot.detail,
            })),
            "zones": zones.iter().map(|z| json!({
                "time_zone": z.time_zone, "total": z.total, "sent": z.sent, "pending": z.pending,
                "first_not_before": format_millis(z.first_not_before),
            })).collect::<Vec<_>>(),
            "started_at": report.issue.started_at.map(format_millis),
            "finished_at": report.issue.finished_at.map(format_millis),
            "deliveries": report.counts,
            "sent_last_minute": report.per_minute,
            "reported_later": came_back,
            "eta_seconds": report.eta().map(|eta| eta.as_secs()),
            "relay_unavailable_until": circuit.as_ref().map(|c| c.open_until.to_string()),
            "relay_unavailable_reason": circuit.as_ref().map(|c| c.reason.clone()),
            "ambiguous": ambiguous.iter().map(|a| json!({
                "delivery": a.delivery_id, "email": a.email, "status": a.status,
                "at": format_millis(a.ambiguous_at), "error": a.last_error,
            })).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(out, "issue {} of `{}`: {}", issue.number, list.slug, issue.subject)?;
    writeln!(out, "  status:     {}", report.issue.status)?;
    if let Some(reason) = &report.issue.hold_reason {
        writeln!(out, "  waiting:    {reason}")?;
    }
    if let Some(slot) = &slot {
        writeln!(out, "  slot:       weekly slot of {} ({})", format_millis(slot.slot_at), slot.status)?;
    }
    match (&report.issue.local_at, report.issue.send_at) {
        (Some(local), Some(at)) => writeln!(
            out,
            "  send at:    {} in each subscriber's own time zone (from {} on, as zones reach it)",
            local.replace('T', " "),
            format_millis(at)
        )?,
        (None, Some(at)) => writeln!(out, "  send at:    {}", format_millis(at))?,
        _ => {}
    }
    if let Some(circuit) = &circuit {
        writeln!(out, "  relay:      unavailable ({}); trying again at {}", circuit.reason, circuit.open_until)?;
    }
    writeln!(out, "  deliveries: {}", report.line())?;
    if came_back != ReportCounts::default() {
        let c = &came_back;
        writeln!(
            out,
            "  came back:  {} hard and {} soft bounces, {} complaints, {} policy refusals{}",
            c.hard,
            c.soft,
            c.complaints,
            c.policy,
            if c.policy > 0 {
                format!(
                    " (the receivers refused the sender: `tidings bounce list --issue {} --kind policy`)",
                    issue.number
                )
            } else {
                String::new()
            }
        )?;
    }
    if !zones.is_empty() {
        writeln!(out, "  per time zone (earliest first):")?;
        for zone in &zones {
            writeln!(
                out,
                "    {:<32} from {}  sent {} of {}, {} pending",
                zone.time_zone,
                format_millis(zone.first_not_before),
                zone.sent,
                zone.total,
                zone.pending
            )?;
        }
    }
    if !ambiguous.is_empty() {
        writeln!(out, "  possibly received twice (the outcome of an attempt was unknown): {}", ambiguous.len())?;
        for a in &ambiguous {
            let email = a.email.as_deref().unwrap_or("(erased)");
            writeln!(
                out,
                "    {email} (delivery {}, {}), at {}",
                a.delivery_id,
                a.status,
                format_millis(a.ambiguous_at)
            )?;
        }
    }
    if follow && report.active() {
        follow_progress(context, &report.issue, out).await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Watches until the issue is no longer scheduled or sending: a progress bar on a terminal, a line every
/// five seconds otherwise.
async fn follow_progress(context: &AdminContext, issue: &IssueRow, out: &mut dyn Write) -> anyhow::Result<()> {
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        let template = "{wide_bar} {pos}/{len} {msg}";
        bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
        bar
    });
    for tick in 0u64.. {
        let report = progress(context, issue, context.clock.now()).await?;
        match &bar {
            Some(bar) => {
                bar.set_length(report.counts.total.max(0) as u64);
                bar.set_position((report.counts.total - report.counts.pending()).max(0) as u64);
                bar.set_message(format!("{} ({}/min)", report.issue.status, report.per_minute));
            }
            None if tick % 5 == 0 || !report.active() => writeln!(out, "{}: {}", report.issue.status, report.line())?,
            None => {}
        }
        if !report.active() {
            if let Some(bar) = &bar {
                bar.finish_with_message(format!("{}: {}", report.issue.status, report.line()));
            }
            break;
        }
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    Ok(())
}

pub async fn test_send(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    to: &str,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let email = SubscriberEmail::parse(to).map_err(|e| anyhow!("--to: {e}"))?;
    let (list, issue) = find(context, number, list).await?;
    let compiled = load_compiled(context, &issue).await?;
    let settings = &context.settings;
    // Links carry the address's subscriber id when it is on the list, so a test lets the editor try them.
    let subscriber = context.store.find_subscriber(&email).await?;
    let (subscriber_id, name) = subscriber.map_or((0, String::new()), |(row, _)| (row.id, row.name));
    let links = match settings.link_builder() {
        Ok(builder) => builder,
        Err(_) => {
            let throwaway =
                LinkKeys::parse(&format!("1:{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()))
                    .map_err(|e| anyhow!("{e}"))?;
            writeln!(out, "no link signing key is set: the links in this test lead nowhere")?;
            LinkBuilder::new(&settings.base_url(), throwaway).map_err(|e| anyhow!("http.base_url: {e}"))?
        }
    };
    let urls = links.issue_links(list.id, subscriber_id, issue.id);
    let personalised = compiled.personalise(&Recipient {
        name: &name,
        unsubscribe_url: &urls.unsubscribe,
        rate_urls: [&urls.rate[0], &urls.rate[1], &urls.rate[2], &urls.rate[3], &urls.rate[4]],
        pixel_url: None,
        view_url: &urls.view,
    });
    let identity = crate::startup::sender_identity(settings)?;
    let now = context.clock.now();
    let message_id = format!("<test.{}.{:016x}@{}>", issue.id, rand::random::<u64>(), identity.domain);
    let (html, text) = (personalised.html(), personalised.text());
    let list_id = format!("{} <{}.{}>", list.name.replace(['<', '>'], ""), list.slug, identity.domain);
    let feedback_id = format!("{}:{}:tidings:{}", issue.number, list.slug, identity.domain);
    let trace = identity.bounce_trace(links.keys(), ReturnPathFor::TestSend { list_id: list.id, issue_id: issue.id });
    let outgoing = Outgoing {
        message_id: &message_id,
        from: &identity.from,
        reply_to: identity.reply_to.as_ref(),
        to_email: &email,
        to_name: &name,
        subject: compiled.subject(),
        date: now,
        list_id: &list_id,
        unsubscribe_url: &urls.unsubscribe,
        feedback_id: &feedback_id,
        html: &html,
        text: &text,
        is_test: true,
        bounce: trace.as_ref().map(|(return_path, trace)| BounceTrace { return_path, trace }),
        eight_bit: true,
    };
    let message =
        mailer::build(&outgoing, crate::startup::dkim_signer(settings)?.as_ref()).map_err(|e| anyhow!("{e}"))?;
    let mut sender = crate::startup::senders(settings, 1)?.into_iter().next().ok_or_else(|| anyhow!("no sender"))?;
    let outcome = sender.send(&message).await;
    sender.close().await;
    let status = if outcome.is_accepted() { "sent" } else { "failed" };
    context.store.record_test_send(issue.id, email.as_str(), &message_id, status, &outcome.to_string(), now).await?;
    match outcome {
        SendOutcome::Accepted { reply } => {
            writeln!(out, "sent a test of issue {number} to {email} ({})", reply.trim())?;
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("the test of issue {number} to {email} was not accepted: {other}"),
    }
}
