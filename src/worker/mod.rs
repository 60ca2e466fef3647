//! The delivery engine: a loop around one step function, [`run_step`], that fills weekly slots from the queue,
//! starts due issues, claims a batch of deliveries under a lease, sends them over the transport's connections,
//! and records every outcome.
//!
//! Tests call [`run_step`] directly with a manual clock. The loop ([`run`]) adds heartbeats, idle waits and
//! shutdown: a cancelled token stops the next claim, lets messages already handed to the relay finish and be
//! recorded, and puts claimed-but-unsent deliveries back in the queue.
//!
//! Architecture Invariant: no database transaction is open while a message is being sent; claim, send and
//! record are separate steps, joined by the lease.

mod cadence;
mod context;
mod idle;
mod recorder;
mod schedule;
mod send;
mod settle;

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio_util::sync::CancellationToken;

use crate::systemd::Watchdog;

pub use cadence::CadenceReport;
pub use context::{DeliveryConfig, DeliveryContext, SenderIdentity};
pub use settle::backoff;

/// What one step did, and when there is more to do.
#[derive(Debug, Clone, Default)]
pub struct StepReport {
    /// What the weekly cadence did: slots filled, held, missed, notices sent.
    pub cadence: CadenceReport,
    /// Issues whose sending began (their outbox is being created).
    pub started: Vec<i64>,
    /// Scheduled issues found too late, now waiting for `issue resume`.
    pub held: Vec<i64>,
    /// Issues with every delivery settled, now `sent`.
    pub finished: Vec<i64>,
    /// Deliveries sent or otherwise settled in this step.
    pub settled: usize,
    /// Deliveries reclaimed as `ambiguous` from a daemon that stopped holding them after their final dot.
    pub reclaimed: u64,
    /// Deliveries put back in the queue from a daemon that stopped before handing them over.
    pub requeued: u64,
    /// `None`: more work is waiting now. `Some(t)`: nothing is due before `t` (as far as this step knows).
    pub idle_until: Option<Timestamp>,
}

/// One round of the engine at time `now`.
pub async fn run_step(
    context: &DeliveryContext,
    now: Timestamp,
    shutdown: &CancellationToken,
) -> anyhow::Result<StepReport> {
    let mut report = StepReport::default();
    context.heartbeat(now).await;
    report.cadence = cadence::run(context, now).await?;
    let (started, held) = schedule::start_due_issues(context, now).await?;
    report.started = started;
    report.held = held;
    let outbox_pending = schedule::build_outboxes(context, now).await?;
    let dead_before = now.saturating_sub(context.config.dead_after).unwrap_or(now);
    (report.reclaimed, report.requeued) = context.store.reclaim_abandoned(now, dead_before).await?;
    let expired = context.store.expire_pending_subscriptions(now).await?;
    if expired.reverted + expired.removed > 0 {
        tracing::info!(reverted = expired.reverted, removed = expired.removed, "unconfirmed subscriptions expired");
    }

    report.idle_until = if shutdown.is_cancelled() {
        Some(now)
    } else {
        let (settled, idle_until) = send::send_due(context, now, shutdown).await?;
        report.settled = settled;
        idle_until
    };
    report.finished = context.store.finish_issues(now).await?;
    for issue in &report.finished {
        tracing::info!(issue_id = issue, "issue sent: every delivery is settled");
    }
    if outbox_pending {
        report.idle_until = None;
    }
    Ok(report)
}

/// How long the engine waits before trying again after a step failed.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);
/// How often a daemon renews its heartbeat.
pub(crate) const HEARTBEAT: SignedDuration = SignedDuration::from_secs(5);

/// Runs the engine until `shutdown` is cancelled, then unregisters the daemon. Between steps with nothing to
/// do it sleeps until the next timer (`idle.rs`) or a wake-up from the command line. With a `watchdog`, each
/// completed step pings it and no sleep outlasts its interval, so an idle engine still pings and a stuck one
/// does not.
pub async fn run(context: DeliveryContext, shutdown: CancellationToken, watchdog: Option<Watchdog>) {
    let wake = match context.store.wake_listener().await {
        Ok(wake) => Some(wake),
        Err(e) => {
            let error = format!("{e:#}");
            tracing::warn!(error, "cannot listen for wake-ups; new work is found every delivery.idle_poll");
            None
        }
    };
    loop {
        let now = context.clock.now();
        if shutdown.is_cancelled() {
            break;
        }
        let wait = match run_step(&context, now, &shutdown).await {
            Ok(report) => {
                if let Some(watchdog) = &watchdog {
                    watchdog.ping();
                }
                if !report.started.is_empty() {
                    // Other daemons sharing the database join in as soon as the outbox is there.
                    context.store.wake_daemons().await;
                }
                match report.idle_until {
                    None => Duration::ZERO,
                    Some(until) => {
                        let sleep = idle::sleep_for(&context, now, until).await;
                        watchdog.as_ref().map_or(sleep, |watchdog| sleep.min(watchdog.interval()))
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "a delivery step failed; trying again shortly");
                RETRY_AFTER_ERROR
            }
        };
        if !wait.is_zero() {
            let woken = async {
                match &wake {
                    Some(wake) => wake.woken().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
                () = woken => {}
            }
        }
    }
    context.close().await;
    if let Err(e) = context.store.unregister_daemon(&context.daemon_id).await {
        tracing::warn!(error = format!("{e:#}"), "cannot unregister the daemon");
    }
}
