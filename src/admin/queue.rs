//! `tidings issue queue | unqueue` and `tidings queue`: the weekly queue of each list and its slots.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{anyhow, bail};
use jiff::Timestamp;
use serde_json::{Value, json};

use super::issue::{find, load_compiled};
use super::{AdminContext, format_millis};
use crate::clock::{from_millis, to_millis};
use crate::domain::{Cadence, SlotTime};
use crate::store::{IssueRow, ListRow, SlotRow};

/// Passed slots looked at when working out the coming ones (ten years of weekly slots).
const MAX_PASSED: usize = 520;

pub async fn queue(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    if issue.status != "draft" {
        bail!("issue {number} is {}; only a draft can be queued", issue.status);
    }
    // Only an issue whose stored rendering is sound may wait in the queue: nobody checks it at 08:00 on Monday.
    let compiled = load_compiled(context, &issue).await?;
    if compiled.subject().trim().is_empty() {
        bail!("issue {number} has an empty subject; fix its file and `tidings issue add` it again");
    }
    if !context.store.queue_issue(issue.id, context.clock.now()).await? {
        bail!("issue {number} changed while it was being queued; try again");
    }
    writeln!(out, "issue {number} is queued on `{}`", list.slug)?;
    // Enough coming slots to reach this issue: one per issue queued, plus one that may be overdue.
    let queued = context.store.queued_issues(list.id).await?.len();
    let weeks = u32::try_from(queued + 1).unwrap_or(u32::MAX).min(520);
    let plan = plan(context, &list, context.clock.now(), weeks).await?;
    match plan {
        None => writeln!(
            out,
            "`{}` has no weekly slot (lists.{}.weekly in the configuration): nothing sends queued issues until one \
             is set; `tidings issue send {number}` sends it now",
            list.slug, list.slug
        )?,
        Some(plan) => match plan.coming.iter().find(|slot| slot.issue.as_ref().is_some_and(|i| i.id == issue.id)) {
            Some(slot) => writeln!(out, "it fills the slot of {} ({})", slot.describe(&plan.cadence), slot.time.at)?,
            None => writeln!(out, "it waits behind the issues queued before it (`tidings queue` shows the order)")?,
        },
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn unqueue(
    context: &AdminContext,
    number: u32,
    list: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let (list, issue) = find(context, number, list).await?;
    if !context.store.unqueue_issue(issue.id, context.clock.now()).await? {
        bail!("issue {number} is {}; only a queued issue can be taken out of the queue", issue.status);
    }
    writeln!(out, "issue {number} is out of the queue of `{}` (a draft again)", list.slug)?;
    Ok(ExitCode::SUCCESS)
}

/// One coming slot and the issue that will fill it.
struct ComingSlot {
    time: SlotTime,
    /// Its time has passed but no daemon has decided it yet: one will when it starts (see delivery.max_late).
    overdue: bool,
    issue: Option<IssueRow>,
    notice_sent_at: Option<i64>,
}

impl ComingSlot {
    fn describe(&self, cadence: &Cadence) -> String {
        format!("{} {}", self.time.local.strftime("%a %Y-%m-%d %H:%M"), cadence.zone_name)
    }
}

/// A list's slots: what happened at past ones, what will fill the coming ones.
struct Plan {
    cadence: Cadence,
    queued: Vec<IssueRow>,
    past: Vec<SlotRow>,
    coming: Vec<ComingSlot>,
}

/// The plan of a list with a cadence; `None` for a list without one.
async fn plan(context: &AdminContext, list: &ListRow, now: Timestamp, weeks: u32) -> anyhow::Result<Option<Plan>> {
    let Some(weekly) = &list.weekly_slot else { return Ok(None) };
    let cadence = Cadence::new(weekly, &list.time_zone, list.local_time)
        .map_err(|e| anyhow!("lists.{}.weekly: {e}", list.slug))?;
    let store = &context.store;
    let mut past = store.decided_slots(list.id, i64::from(weeks)).await?;
    past.reverse();
    let queued = store.queued_issues(list.id).await?;

    // Coming slots start after the last decided one (or when the cadence was set). Of the slots that passed
    // undecided (no daemon ran), only the latest can still be filled; the earlier ones will be skipped.
    let since = list.cadence_since.map_or(now, from_millis);
    let mut cursor = store.last_decided_slot(list.id).await?.map_or(since, |last| from_millis(last).max(since));
    let mut overdue = None;
    for _ in 0..MAX_PASSED {
        let slot = cadence.next_after(cursor);
        if cadence.trigger(&slot) > now {
            break;
        }
        overdue = Some(slot);
        cursor = slot.at;
    }
    let mut times: Vec<(SlotTime, bool)> = overdue.into_iter().map(|slot| (slot, true)).collect();
    while times.len() < weeks as usize {
        let slot = cadence.next_after(cursor);
        cursor = slot.at;
        times.push((slot, false));
    }
    let pending = store.pending_slots(list.id).await?;
    let mut issues = queued.clone().into_iter();
    let coming = times
        .into_iter()
        .map(|(time, overdue)| {
            let at = to_millis(time.at);
            let notice_sent_at = pending.iter().find(|row| row.slot_at == at).and_then(|row| row.notice_sent_at);
            ComingSlot { time, overdue, issue: issues.next(), notice_sent_at }
        })
        .collect();
    Ok(Some(Plan { cadence, queued, past, coming }))
}

pub async fn show(
    context: &AdminContext,
    weeks: u32,
    only: Option<&str>,
    json: bool,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let lists = match only {
        Some(slug) => vec![context.list(Some(slug)).await?],
        None => context.store.lists().await?,
    };
    let now = context.clock.now();
    let notice_before = context.settings.admin.notice_before;
    let admin = !context.settings.admin.email.trim().is_empty();
    let mut values = Vec::new();
    let mut printed = 0;
    for list in &lists {
        let Some(plan) = plan(context, list, now, weeks).await? else {
            if !json && only.is_some() {
                writeln!(
                    out,
                    "`{}` has no weekly slot: set lists.{}.weekly, e.g. \"Mon 08:00\"",
                    list.slug, list.slug
                )?;
            }
            continue;
        };
        if json {
            values.push(plan_json(list, &plan));
            continue;
        }
        printed += 1;
        writeln!(out, "`{}` ({}): {}", list.slug, list.name, plan.cadence.describe())?;
        let queued: Vec<String> = plan.queued.iter().map(|i| i.number.to_string()).collect();
        writeln!(out, "  queued:  {}", if queued.is_empty() { "nothing".to_owned() } else { queued.join(", ") })?;
        if !plan.past.is_empty() {
            writeln!(out, "  past slots")?;
            for slot in &plan.past {
                let local = from_millis(slot.slot_at).to_zoned_datetime(plan.cadence.zone.clone());
                let issue = match (slot.issue_number, &slot.issue_status) {
                    (Some(n), Some(status)) => format!(" issue {n} (now {status})"),
                    (Some(n), None) => format!(" issue {n}"),
                    _ => String::new(),
                };
                // The reason follows the issue, or the status itself when no issue is named ("missed: ...").
                let what = match (issue.is_empty(), slot.detail.is_empty()) {
                    (true, true) => slot.status.clone(),
                    (true, false) => format!("{}: {}", slot.status, slot.detail),
                    (false, true) => format!("{:<8}{issue}", slot.status),
                    (false, false) => format!("{:<8}{issue}: {}", slot.status, slot.detail),
                };
                writeln!(out, "    {}  {what}", local.strftime("%a %Y-%m-%d %H:%M %Z"))?;
            }
        }
        writeln!(out, "  coming slots")?;
        for slot in &plan.coming {
            let when = slot.describe(&plan.cadence);
            let what = match &slot.issue {
                Some(issue) => format!("issue {}: {}", issue.number, issue.subject),
                None if admin => {
                    format!(
                        "nothing queued: nothing will be sent (the admin is told {} before)",
                        crate::domain::ForPeople(notice_before)
                    )
                }
                None => "nothing queued: nothing will be sent (set admin.email to be told ahead)".to_owned(),
            };
            let overdue = if slot.overdue {
                " [passed while no daemon ran: a daemon sends it on start if at most delivery.max_late late, else it waits for `issue resume`]"
            } else {
                ""
            };
            let notice =
                slot.notice_sent_at.map_or(String::new(), |at| format!(" [admin told at {}]", format_millis(at)));
            writeln!(out, "    {when}  {what}{overdue}{notice}")?;
        }
    }
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&json!({ "lists": values }))?)?;
    } else if printed == 0 && only.is_none() {
        writeln!(out, "no list has a weekly slot: set lists.NAME.weekly, e.g. \"Mon 08:00\"")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn plan_json(list: &ListRow, plan: &Plan) -> Value {
    let local = |at: i64| {
        from_millis(at).to_zoned_datetime(plan.cadence.zone.clone()).strftime("%Y-%m-%dT%H:%M:%S").to_string()
    };
    json!({
        "list": list.slug,
        "weekly": plan.cadence.slot.to_string(),
        "time_zone": plan.cadence.zone_name,
        "local_time": plan.cadence.local_time,
        "queued": plan.queued.iter().map(|i| i.number).collect::<Vec<_>>(),
        "past": plan.past.iter().map(|slot| json!({
            "slot_at": format_millis(slot.slot_at),
            "local": local(slot.slot_at),
            "status": slot.status,
            "issue": slot.issue_number,
            "issue_status": slot.issue_status,
            "detail": slot.detail,
            "notice_sent_at": slot.notice_sent_at.map(format_millis),
        })).collect::<Vec<_>>(),
        "coming": plan.coming.iter().map(|slot| json!({
            "slot_at": format_millis(to_millis(slot.time.at)),
            "local": slot.time.local.strftime("%Y-%m-%dT%H:%M:%S").to_string(),
            "overdue": slot.overdue,
            "issue": slot.issue.as_ref().map(|i| i.number),
            "subject": slot.issue.as_ref().map(|i| i.subject.clone()),
            "notice_sent_at": slot.notice_sent_at.map(format_millis),
        })).collect::<Vec<_>>(),
    })
}
