//! The weekly cadence: at each list's slot the next queued issue (by number) is scheduled through the same
//! path as `issue schedule`, so `schedule::start_due_issues` starts it in the same step. An empty queue at a
//! slot is recorded as missed, and the admin hears of it `admin.notice_before` ahead.
//!
//! A slot that passed while no daemon ran is filled when a daemon starts, if it is at most `delivery.max_late`
//! late; later than that its issue is assigned but held for `issue resume`, with the reason. When several
//! slots passed, only the latest is filled; the earlier ones are recorded as skipped.

use jiff::{SignedDuration, Timestamp};
use lettre::message::Mailbox;

use super::DeliveryContext;
use crate::clock::from_millis;
use crate::domain::{Cadence, ForPeople, ReturnPathFor, SlotTime};
use crate::mailer;
use crate::store::{ListRow, SlotFill, SlotOutcome};

/// At most this many passed slots are looked at on start (ten years of weekly slots).
const MAX_PASSED: usize = 520;

/// What the cadence did in one step.
#[derive(Debug, Clone, Default)]
pub struct CadenceReport {
    /// Issues scheduled for their slot.
    pub filled: Vec<i64>,
    /// Issues assigned to a slot found too late, held for `issue resume`.
    pub waiting: Vec<i64>,
    /// Slots missed for an empty queue.
    pub missed: usize,
    /// Notices of an empty queue sent to the admin.
    pub notices: usize,
}

pub(super) async fn run(context: &DeliveryContext, now: Timestamp) -> anyhow::Result<CadenceReport> {
    let mut report = CadenceReport::default();
    for list in context.store.lists().await? {
        let (Some(weekly), Some(since)) = (&list.weekly_slot, list.cadence_since) else { continue };
        let cadence = match Cadence::new(weekly, &list.time_zone, list.local_time) {
            Ok(cadence) => cadence,
            Err(e) => {
                tracing::warn!(list = list.slug, error = e, "the list's weekly slot is unusable; no slot is filled");
                continue;
            }
        };
        let since = from_millis(since);
        let from = context.store.last_decided_slot(list.id).await?.map_or(since, |last| from_millis(last).max(since));

        let mut due: Vec<SlotTime> = Vec::new();
        let mut cursor = from;
        loop {
            let slot = cadence.next_after(cursor);
            if cadence.trigger(&slot) > now || due.len() == MAX_PASSED {
                break;
            }
            cursor = slot.at;
            due.push(slot);
        }
        if let Some((latest, earlier)) = due.split_last() {
            if !earlier.is_empty() {
                let slots: Vec<Timestamp> = earlier.iter().map(|slot| slot.at).collect();
                let detail = "no daemon was running at this slot, and a later slot had passed too when one started";
                context.store.skip_slots(list.id, &slots, detail, now).await?;
                tracing::warn!(list = list.slug, skipped = slots.len(), "weekly slots passed while no daemon ran");
            }
            decide(context, &list, &cadence, latest, now, &mut report).await?;
        }
        notify_if_empty(context, &list, &cadence, cadence.next_after(cursor), now, &mut report).await?;
    }
    Ok(report)
}

/// Fills one due slot with the next queued issue, or records it missed.
async fn decide(
    context: &DeliveryContext,
    list: &ListRow,
    cadence: &Cadence,
    slot: &SlotTime,
    now: Timestamp,
    report: &mut CadenceReport,
) -> anyhow::Result<()> {
    let send_at = cadence.trigger(slot);
    let late = now.duration_since(send_at);
    let max_late = context.config.max_late;
    let local_at = cadence.local_time.then(|| slot.local.strftime("%Y-%m-%dT%H:%M:%S").to_string());
    let late_reason = (late > max_late).then(|| {
        format!(
            "its weekly slot, {} {}, passed at {send_at} while no daemon was running; a daemon found it {} late, \
             more than delivery.max_late ({}). Run `tidings issue resume {{number}}` to send it now, or \
             `tidings issue cancel {{number}}` to drop it",
            slot.local.strftime("%a %Y-%m-%d %H:%M"),
            cadence.zone_name,
            ForPeople(late),
            ForPeople(max_late),
        )
    });
    let fill = SlotFill {
        list_id: list.id,
        slot_at: slot.at,
        send_at,
        local_at: local_at.as_deref(),
        late_reason: late_reason.as_deref(),
    };
    match context.store.fill_slot(&fill, now).await? {
        SlotOutcome::Filled { issue_id, number } => {
            tracing::info!(list = list.slug, issue = number, slot = %slot.at, "the weekly slot starts the next queued issue");
            report.filled.push(issue_id);
        }
        SlotOutcome::Waiting { issue_id, number } => {
            tracing::warn!(list = list.slug, issue = number, slot = %slot.at, late = %ForPeople(late),
                "the weekly slot was found too late; its issue waits for `issue resume`");
            report.waiting.push(issue_id);
        }
        SlotOutcome::Missed => {
            tracing::warn!(list = list.slug, slot = %slot.at, "weekly slot missed: nothing was queued");
            report.missed += 1;
        }
        SlotOutcome::AlreadyDecided => {}
    }
    Ok(())
}

/// Tells the admin, once per slot, that the queue is empty when the next slot is `admin.notice_before` away.
async fn notify_if_empty(
    context: &DeliveryContext,
    list: &ListRow,
    cadence: &Cadence,
    next: SlotTime,
    now: Timestamp,
    report: &mut CadenceReport,
) -> anyhow::Result<()> {
    let Some(admin) = &context.config.admin_email else { return Ok(()) };
    let trigger = cadence.trigger(&next);
    if trigger.duration_since(now) > context.config.notice_before {
        return Ok(());
    }
    if !context.store.queued_issues(list.id).await?.is_empty() {
        return Ok(());
    }
    if !context.store.claim_slot_notice(list.id, next.at, now).await? {
        return Ok(());
    }
    let sent = send_notice(context, list, cadence, &next, admin, now).await;
    match sent {
        Ok(()) => {
            tracing::info!(list = list.slug, slot = %next.at, "the admin was told the weekly queue is empty");
            report.notices += 1;
        }
        Err(e) => {
            tracing::warn!(
                list = list.slug,
                error = format!("{e:#}"),
                "cannot send the empty-queue notice; trying again"
            );
            context.store.release_slot_notice(list.id, next.at).await?;
        }
    }
    Ok(())
}

async fn send_notice(
    context: &DeliveryContext,
    list: &ListRow,
    cadence: &Cadence,
    slot: &SlotTime,
    admin: &Mailbox,
    now: Timestamp,
) -> anyhow::Result<()> {
    let when = slot.local.strftime("%A %Y-%m-%d %H:%M").to_string();
    let subject = format!("Nothing is queued for {} on {when}", list.name.replace(['\r', '\n'], " "));
    let hours = ForPeople(SignedDuration::from_secs(cadence.trigger(slot).duration_since(now).as_secs().max(0)));
    let text = format!(
        "The weekly slot of `{slug}` ({describe}) comes on {when} ({at}), in about {hours}, and no issue is queued \
         for it.\n\nQueue one with:\n\n    tidings issue add FILE.md --list {slug}\n    tidings issue queue NUMBER --list {slug}\n\n\
         If nothing is queued by then, nothing is sent and the slot is recorded as missed (`tidings queue`).\n\n\
         -- Tidings\n",
        slug = list.slug,
        describe = cadence.describe(),
        at = slot.at,
    );
    let message_id = format!("<notice.{}.{}@{}>", list.id, slot.at.as_millisecond(), context.identity.domain);
    let return_path = context.identity.bounce_trace(context.links.keys(), ReturnPathFor::Notice).map(|(path, _)| path);
    let message = mailer::build_notice(
        &message_id,
        &context.identity.from,
        admin,
        &subject,
        &text,
        now,
        context.dkim.as_ref(),
        return_path.as_deref(),
    )?;
    let Some(sender) = context.senders.first() else { anyhow::bail!("no connection to send with") };
    let outcome = sender.lock().await.send(&message).await;
    if outcome.is_accepted() { Ok(()) } else { anyhow::bail!("the relay did not accept it: {outcome}") }
}
