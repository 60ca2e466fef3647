//! How long an idle engine sleeps: until the next moment it knows something is due (a delivery's time or
//! retry, the relay's circuit or rate window, a scheduled issue, a weekly slot or its notice to the admin, a
//! lease that expires), at most `delivery.idle_poll`, and less when the command line wakes it
//! (`store/wake.rs`: LISTEN/NOTIFY on PostgreSQL, an inotify-watched file on SQLite).
//!
//! Timers are computed, never polled for: the step reports what it found (`StepReport::idle_until`), and
//! [`next_timer`] adds what only the clock brings (slots and schedules).

use std::time::Duration;

use jiff::Timestamp;

use super::DeliveryContext;
use crate::clock::from_millis;
use crate::domain::Cadence;

/// The sleep before the next step, after a step found nothing to do before `idle_until`.
pub(super) async fn sleep_for(context: &DeliveryContext, now: Timestamp, idle_until: Timestamp) -> Duration {
    let poll = now.saturating_add(context.config.idle_poll).unwrap_or(now);
    let timer = match next_timer(context, now).await {
        Ok(timer) => timer,
        Err(e) => {
            tracing::warn!(error = format!("{e:#}"), "cannot work out the next timer; looking again in a second");
            Some(now.saturating_add(jiff::SignedDuration::from_secs(1)).unwrap_or(now))
        }
    };
    let until = [Some(idle_until), timer, Some(poll)].into_iter().flatten().min().unwrap_or(poll);
    Duration::try_from(until.duration_since(now)).unwrap_or(Duration::ZERO)
}

/// The earliest moment after `now` at which a scheduled issue, a lease or a weekly slot (or the admin's notice
/// of an empty queue before it) needs the engine.
pub(super) async fn next_timer(context: &DeliveryContext, now: Timestamp) -> anyhow::Result<Option<Timestamp>> {
    let mut next = context.store.next_timer(now, context.config.dead_after).await?;
    let mut consider = |at: Timestamp| {
        if at > now {
            next = Some(next.map_or(at, |n| n.min(at)));
        }
    };
    for list in context.store.lists().await? {
        let (Some(weekly), Some(since)) = (&list.weekly_slot, list.cadence_since) else { continue };
        let Ok(cadence) = Cadence::new(weekly, &list.time_zone, list.local_time) else { continue };
        let since = from_millis(since);
        let from = context.store.last_decided_slot(list.id).await?.map_or(since, |last| from_millis(last).max(since));
        let slot = cadence.next_after(from);
        let trigger = cadence.trigger(&slot);
        consider(trigger);
        if context.config.admin_email.is_some() {
            consider(trigger.saturating_sub(context.config.notice_before).unwrap_or(trigger));
        }
    }
    Ok(next)
}
