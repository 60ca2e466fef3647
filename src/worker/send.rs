//! Sending one batch: reserve sends within the rate limits, claim that many due deliveries, hand them out to
//! the transport's connections (one task per connection), and record what happens as it happens: each
//! message's intent before its final dot and its outcome after the relay's reply, through the batch's
//! recorder (`recorder.rs`), whose group commits all connections share.
//!
//! The subscribers of a claimed batch are checked once, in one query, so that those who left since their
//! delivery was created are not even offered to the relay. The check that counts is the last one, made with
//! each message's intent just before its final dot (`recorder.rs`): an unsubscribe or a suppression committed
//! before that moment stops the message.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use super::DeliveryContext;
use super::recorder::{self, IntentVerdict, Recorder};
use super::settle::{BatchState, settle};
use crate::domain::{ReturnPathFor, SubscriberEmail};
use crate::mailer::{self, BounceTrace, Gate, Outgoing, Sender};
use crate::render::Recipient;
use crate::store::{ClaimedDelivery, DeliveryResult, EligibilityQuestion, Intent, Settlement};

/// Claims, sends and records one batch. Returns how many deliveries were settled, and `Some(t)` when nothing
/// can be sent before `t` (the circuit is open, the rate limit is used up, or nothing is due).
pub(super) async fn send_due(
    context: &DeliveryContext,
    now: Timestamp,
    shutdown: &CancellationToken,
) -> anyhow::Result<(usize, Option<Timestamp>)> {
    let config = &context.config;
    if let Some(open) = context.store.open_circuit(&config.relay, now).await? {
        return Ok((0, Some(open.open_until)));
    }
    let reservation = context.store.reserve_sends(&config.relay, config.limits, config.batch_size, now).await?;
    let granted = reservation.granted;
    if granted == 0 {
        return Ok((0, Some(reservation.retry_at.unwrap_or(now).max(now))));
    }
    let lease_until = now.saturating_add(config.lease).unwrap_or(now);
    let claimed = context.store.claim_deliveries(&context.daemon_id, granted, now, lease_until).await?;
    let unused = granted.saturating_sub(claimed.len() as u32);
    context.store.return_sends(&config.relay, config.limits, granted, unused, now).await?;
    if claimed.is_empty() {
        // Nothing due at all: sleep as long as an idle daemon may (a wake-up or a timer ends it sooner).
        let idle = now.saturating_add(config.idle_poll).unwrap_or(now);
        let next = context.store.next_due().await?.unwrap_or(idle);
        return Ok((0, Some(next.max(now))));
    }

    // Each address is parsed and hashed once for the batch: for its check here and for sending.
    let claimed: Vec<Queued> = claimed
        .into_iter()
        .map(|delivery| {
            let email = delivery.email.as_deref().and_then(|a| SubscriberEmail::parse(a).ok());
            let address = email.map(|email| {
                let hash = email.suppression_hash();
                (email, hash)
            });
            Queued { delivery, address }
        })
        .collect();
    let ineligible = ineligible_at_claim(context, &claimed).await;
    let queue = Mutex::new(VecDeque::from(claimed));
    let state = BatchState::default();
    let (recorder, entries) = Recorder::new();
    let sending = async {
        // Moved in, so that it is dropped (and the recorder finishes) once every connection is done.
        let recorder = recorder;
        let per_connection = context.senders.iter().map(|slot| async {
            let mut sender = slot.lock().await;
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                let Some(queued) = next else { break };
                let outcome = if ineligible.contains(&queued.delivery.id) {
                    let reason = "unsubscribed or suppressed before it went out".to_owned();
                    result_of(context, &queued.delivery, Settlement::Suppressed { reason }, false, None)
                } else {
                    send_one(context, &mut sender, queued, now, shutdown, &state, &recorder).await
                };
                recorder.outcome(outcome);
            }
        });
        futures_util::future::join_all(per_connection).await;
    };
    let (recorded, ()) = tokio::join!(recorder::run(context, entries), sending);
    Ok((recorded?, None))
}

/// A subscriber's address, parsed, and its suppression hash.
type Address = (SubscriberEmail, String);

/// A claimed delivery waiting for a connection, with its address parsed once for the batch (`None` when its
/// subscriber was erased or the stored address is not valid).
struct Queued {
    delivery: ClaimedDelivery,
    address: Option<Address>,
}

/// The claimed deliveries whose subscriber already left the list or whose address is suppressed, in one query.
/// Only a shortcut: when the query fails every delivery is offered, and the intent's check still holds.
async fn ineligible_at_claim(context: &DeliveryContext, claimed: &[Queued]) -> HashSet<i64> {
    let asked: Vec<(i64, EligibilityQuestion)> = claimed
        .iter()
        .filter_map(|Queued { delivery, address }| {
            let question = EligibilityQuestion {
                list_id: delivery.list_id,
                subscriber_id: delivery.subscriber_id?,
                suppression_hash: address.as_ref()?.1.clone(),
            };
            Some((delivery.id, question))
        })
        .collect();
    let questions: Vec<EligibilityQuestion> = asked.iter().map(|(_, q)| q.clone()).collect();
    match context.store.still_eligible_many(&questions).await {
        Ok(answers) => asked.iter().zip(answers).filter(|(_, eligible)| !eligible).map(|((id, _), _)| *id).collect(),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "cannot check a claimed batch's subscribers; each is checked before its final dot"
            );
            HashSet::new()
        }
    }
}

/// How `delivery` ended, now: `attempted` when it counts toward `delivery.max_attempts`, with the address's
/// suppression hash when a bounce needs it.
fn result_of(
    context: &DeliveryContext,
    delivery: &ClaimedDelivery,
    settlement: Settlement,
    attempted: bool,
    suppression_hash: Option<String>,
) -> DeliveryResult {
    DeliveryResult {
        delivery_id: delivery.id,
        list_id: delivery.list_id,
        issue_id: delivery.issue_id,
        subscriber_id: delivery.subscriber_id,
        suppression_hash,
        attempted,
        settlement,
        at: context.clock.now(),
    }
}

/// Sends one delivery over `sender` and says how it ended.
async fn send_one(
    context: &DeliveryContext,
    sender: &mut Sender,
    queued: Queued,
    now: Timestamp,
    shutdown: &CancellationToken,
    state: &BatchState,
    recorder: &Recorder,
) -> DeliveryResult {
    let Queued { delivery, address } = queued;
    let delivery = &delivery;
    let result = |settlement: Settlement, attempted: bool, hash: Option<String>| {
        result_of(context, delivery, settlement, attempted, hash)
    };
    let release = |not_before: Timestamp, why: &str| {
        result(Settlement::Released { not_before, error: Some(why.to_owned()) }, false, None)
    };
    if shutdown.is_cancelled() {
        return release(now, "the daemon stopped before sending it");
    }
    if state.relay_down() {
        return release(state.circuit_open_until().unwrap_or(now), "the relay is unavailable");
    }
    if state.is_paused(delivery.issue_id) {
        return release(now, "the issue was paused");
    }
    let (Some(subscriber_id), Some(stored)) = (delivery.subscriber_id, delivery.email.as_deref()) else {
        return result(Settlement::Suppressed { reason: "the subscriber was erased".to_owned() }, false, None);
    };
    let Some((email, hash)) = address else {
        return result(
            Settlement::Failed { code: None, error: "the stored address is not valid".to_owned() },
            false,
            None,
        );
    };
    let issue = match context.issue(delivery.issue_id).await {
        Ok(issue) => issue,
        Err(e) => return release(now, &format!("{e:#}")),
    };
    let links = context.links.issue_links(delivery.list_id, subscriber_id, delivery.issue_id);
    let name = delivery.name.as_deref().unwrap_or_default();
    let recipient = Recipient {
        name,
        unsubscribe_url: &links.unsubscribe,
        rate_urls: [&links.rate[0], &links.rate[1], &links.rate[2], &links.rate[3], &links.rate[4]],
        pixel_url: context.config.track_opens.then_some(links.open.as_str()),
        view_url: &links.view,
    };
    let personalised = issue.compiled.personalise(&recipient);
    let (html, text) = (personalised.html(), personalised.text());
    let what = ReturnPathFor::Delivery { list_id: delivery.list_id, subscriber_id, issue_id: delivery.issue_id };
    let trace = context.identity.bounce_trace(context.links.keys(), what);
    let outgoing = Outgoing {
        message_id: &delivery.message_id,
        from: &context.identity.from,
        reply_to: context.identity.reply_to.as_ref(),
        to_email: &email,
        to_name: name,
        subject: issue.compiled.subject(),
        date: now,
        list_id: &issue.list_id_header,
        unsubscribe_url: &links.unsubscribe,
        feedback_id: &issue.feedback_id,
        html: &html,
        text: &text,
        is_test: false,
        bounce: trace.as_ref().map(|(return_path, trace)| BounceTrace { return_path, trace }),
        eight_bit: sender.accepts_8bit(),
    };
    // An RSA signature costs milliseconds of CPU: let the runtime move other tasks off this thread meanwhile.
    let multi_thread = tokio::runtime::Handle::current().runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread;
    let built = match &context.dkim {
        Some(dkim) if multi_thread => tokio::task::block_in_place(|| mailer::build(&outgoing, Some(dkim))),
        dkim => mailer::build(&outgoing, dkim.as_ref()),
    };
    let message = match built {
        Ok(message) => message,
        Err(e) => return result(Settlement::Failed { code: None, error: e.to_string() }, false, None),
    };
    // The intent is handed over now and written, with the subscriber's last check, while MAIL, RCPT and DATA go
    // back and forth; the final dot waits until it is durable.
    let intent =
        Intent { delivery_id: delivery.id, list_id: delivery.list_id, subscriber_id, suppression_hash: hash.clone() };
    let written = recorder.intent(intent);
    let left = AtomicBool::new(false);
    let mut gate = Gate::new(async {
        match written.await {
            IntentVerdict::Written => Ok(()),
            IntentVerdict::Ineligible => {
                left.store(true, Ordering::SeqCst);
                Err("the subscriber unsubscribed or was suppressed".to_owned())
            }
            IntentVerdict::Failed(why) => Err(why),
        }
    });
    let span = tracing::debug_span!("send", delivery = delivery.id, issue = issue.number);
    let outcome = tracing::Instrument::instrument(sender.send_gated(&message, &mut gate), span).await;
    if gate.withheld() {
        if left.load(Ordering::SeqCst) {
            let reason = "unsubscribed or suppressed before it went out".to_owned();
            return result(Settlement::Suppressed { reason }, false, None);
        }
        return release(now, "its intent could not be recorded, so it was withheld before the final dot");
    }
    let replied = context.clock.now();
    let (settlement, attempted) = settle(context, delivery, &issue, outcome, replied, state, stored).await;
    result(settlement, attempted, Some(hash))
}
