//! The recorder: one writer shared by every connection of a batch, which commits intents and outcomes as they
//! arrive (a group commit), instead of the batch's results at its end.
//!
//! Connections hand it entries through a channel and go on. It takes whatever has arrived, writes it as one wave
//! (`Store::record_wave`: one transaction, one multi-row statement per kind), tells the waiting connections,
//! and takes the next: while a wave commits the next one gathers, so a wave lasts about one commit (a few
//! milliseconds) and durability stays what the database gives every commit. A wave of outcomes alone (which
//! nobody waits on) first waits a few milliseconds for an intent to share its commit. Entries of one connection are
//! written in the order it sent them, so when a connection's intent for its next message is durable, the
//! outcome of its previous message is too: after a crash each connection leaves at most one delivery with an
//! intent and no outcome (the one whose final dot may have been on the wire), and that is all that becomes
//! ambiguous.
//!
//! An intent is also the subscriber's last check: it is written only if they are still subscribed and not
//! suppressed when the wave is written, so an unsubscribe committed before that moment stops the message, and
//! the check costs no statement of its own.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

use super::DeliveryContext;
use crate::store::{DeliveryResult, Intent};

/// What became of an intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum IntentVerdict {
    /// Durable: the final dot may go.
    Written,
    /// Not written: the subscriber unsubscribed or was suppressed meanwhile, so the message must not go.
    Ineligible,
    /// Not written, for this reason (the database failed): the message must not go either.
    Failed(String),
}

/// The most entries one wave writes; more wait for the next one.
const MAX_WAVE: usize = 1_000;

/// How long a wave of outcomes alone waits for an intent to share its commit. Nobody waits on an outcome, and
/// each connection hands over its next intent moments after its last outcome, so outcomes then ride on the
/// commit the intents need anyway: about half as many commits (each costs the database a disk sync).
const OUTCOME_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

pub(super) enum Entry {
    /// The delivery's final dot is about to be written: check its subscriber once more, make the intent durable,
    /// then say so.
    Intent { intent: Intent, written: oneshot::Sender<IntentVerdict> },
    /// How the delivery's attempt ended.
    Outcome(DeliveryResult),
}

/// The connections' side of the recorder. Dropping it (and every clone) ends [`run`] once all is written.
pub(super) struct Recorder {
    entries: mpsc::UnboundedSender<Entry>,
}

impl Recorder {
    pub(super) fn new() -> (Self, mpsc::UnboundedReceiver<Entry>) {
        let (entries, receiver) = mpsc::unbounded_channel();
        (Self { entries }, receiver)
    }

    /// Hands over the delivery's intent now; the future resolves once it is durable, or says why it is not.
    pub(super) fn intent(&self, intent: Intent) -> impl Future<Output = IntentVerdict> + Send + 'static {
        let (written, told) = oneshot::channel();
        let handed = self.entries.send(Entry::Intent { intent, written }).is_ok();
        async move {
            let stopped = || IntentVerdict::Failed("the recorder stopped".to_owned());
            if !handed {
                return stopped();
            }
            told.await.unwrap_or_else(|_| stopped())
        }
    }

    /// Hands over an outcome to record with the next wave.
    pub(super) fn outcome(&self, result: DeliveryResult) {
        if let Err(mpsc::error::SendError(Entry::Outcome(result))) = self.entries.send(Entry::Outcome(result)) {
            // Only after `run` returned, which it does not while a sender lives.
            tracing::error!(delivery = result.delivery_id, "an outcome arrived after the recorder stopped");
        }
    }
}

/// Writes waves until every [`Recorder`] is dropped and everything sent is written. Returns how many outcomes
/// were recorded, or the first error (later waves are still tried: an outcome not written leaves its delivery
/// `sending`, and its lease's expiry settles it).
pub(super) async fn run(
    context: &DeliveryContext,
    mut entries: mpsc::UnboundedReceiver<Entry>,
) -> anyhow::Result<usize> {
    let mut recorded = 0;
    let mut failure = None;
    let mut wave = Vec::new();
    while entries.recv_many(&mut wave, MAX_WAVE).await > 0 {
        gather_outcomes(&mut entries, &mut wave).await;
        let mut intents = Vec::new();
        let mut waiting = Vec::new();
        let mut outcomes = Vec::new();
        for entry in wave.drain(..) {
            match entry {
                Entry::Intent { intent, written } => {
                    waiting.push((intent.delivery_id, written));
                    intents.push(intent);
                }
                Entry::Outcome(result) => outcomes.push(result),
            }
        }
        match context.store.record_wave(&intents, &outcomes, context.clock.now()).await {
            Ok(refused) => {
                recorded += outcomes.len();
                for (delivery_id, written) in waiting {
                    let verdict =
                        if refused.contains(&delivery_id) { IntentVerdict::Ineligible } else { IntentVerdict::Written };
                    let _ = written.send(verdict);
                }
            }
            Err(e) => {
                let why = format!("{e:#}");
                tracing::error!(error = why, "cannot record a wave of intents and outcomes");
                failure.get_or_insert(e);
                for (_, written) in waiting {
                    let _ = written.send(IntentVerdict::Failed(why.clone()));
                }
            }
        }
    }
    match failure {
        None => Ok(recorded),
        Some(e) => Err(e),
    }
}

/// Lets a wave that holds no intent gather more entries, until an intent arrives (someone waits on it), the
/// wave is full, every connection is done, or [`OUTCOME_WAIT`] has passed.
async fn gather_outcomes(entries: &mut mpsc::UnboundedReceiver<Entry>, wave: &mut Vec<Entry>) {
    let waited = tokio::time::sleep(OUTCOME_WAIT);
    tokio::pin!(waited);
    while wave.len() < MAX_WAVE && !wave.iter().any(|entry| matches!(entry, Entry::Intent { .. })) {
        tokio::select! {
            received = entries.recv_many(wave, MAX_WAVE - wave.len()) => {
                if received == 0 {
                    return;
                }
            }
            () = &mut waited => return,
        }
    }
}
