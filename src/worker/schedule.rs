//! Starting issues: a scheduled issue whose time has come starts (its audience is fixed and its outbox
//! created), unless the daemon finds it more than `delivery.max_late` late: then it waits for `issue resume`
//! and says why, rather than surprising subscribers with a stale issue.

use anyhow::Context;
use jiff::Timestamp;

use super::DeliveryContext;
use crate::domain::{ForPeople, sha256_hex};
use crate::store::LocalSchedule;

/// Outbox chunks created per step, so that sending starts while a large outbox is still being written.
const CHUNKS_PER_STEP: usize = 4;

/// Starts or holds every due scheduled issue; returns (started, held) issue ids.
pub(super) async fn start_due_issues(
    context: &DeliveryContext,
    now: Timestamp,
) -> anyhow::Result<(Vec<i64>, Vec<i64>)> {
    let (mut started, mut held) = (Vec::new(), Vec::new());
    for issue in context.store.due_issues(now).await? {
        let due = crate::clock::from_millis(issue.send_at.unwrap_or(issue.created_at));
        let late = now.duration_since(due);
        if late > context.config.max_late {
            let reason = format!(
                "it was due at {due} but the daemon found it {} late, more than delivery.max_late ({}); \
                 run `tidings issue resume {}` to send it now, or `tidings issue cancel {}`",
                ForPeople(late),
                ForPeople(context.config.max_late),
                issue.number,
                issue.number
            );
            if context.store.hold_issue(issue.id, "scheduled", &reason, now).await? {
                tracing::warn!(issue = issue.number, "a scheduled issue is too late to send without an admin's word");
                held.push(issue.id);
            }
        } else if context.store.start_issue(issue.id, now).await? {
            tracing::info!(issue = issue.number, "sending begins");
            started.push(issue.id);
        }
    }
    Ok((started, held))
}

/// Creates delivery rows for issues that started and whose outbox is incomplete, a few chunks per step.
/// Returns whether any outbox is still incomplete.
pub(super) async fn build_outboxes(context: &DeliveryContext, now: Timestamp) -> anyhow::Result<bool> {
    let mut chunks = 0;
    for issue in context.store.issues_without_outbox().await? {
        // A Message-ID suffix unique to the issue; stable across daemons and restarts.
        let salt = &sha256_hex(&[b"tidings-message-id:", issue.source_hash.as_bytes(), &issue.id.to_le_bytes()])[..12];
        let suffix = format!("{salt}@{}>", context.identity.domain);
        let local = match &issue.local_at {
            None => None,
            Some(local_at) => {
                let local_at: jiff::civil::DateTime = local_at.parse().with_context(|| {
                    format!("issue {}: the stored local time `{local_at}` is unreadable", issue.number)
                })?;
                let zone = context.store.list_by_id(issue.list_id).await?.map(|list| list.time_zone);
                Some(LocalSchedule::new(local_at, zone.as_deref().unwrap_or("UTC"))?)
            }
        };
        let mut after = context.store.outbox_progress(issue.id).await?;
        loop {
            if chunks == CHUNKS_PER_STEP {
                return Ok(true);
            }
            chunks += 1;
            match context.store.create_outbox_chunk(&issue, after, &suffix, now, local.as_ref(), now).await? {
                Some(last) => after = last,
                None => {
                    context.store.mark_outbox_ready(issue.id, now).await?;
                    tracing::info!(issue = issue.number, "every delivery row is created");
                    break;
                }
            }
        }
    }
    Ok(false)
}
