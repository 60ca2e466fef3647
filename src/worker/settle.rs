//! What each transport outcome means for the delivery, the issue and the relay.
//!
//! | outcome | delivery | and also |
//! |---|---|---|
//! | accepted | `sent` | the relay's circuit closes |
//! | temporary (4xx, network) | `retry_wait` with backoff, `failed` after `max_attempts` or `max_age` | |
//! | hard bounce (5.1.x, 5.2.1) | `bounced` | subscription `bounced`, address suppressed |
//! | other permanent 5xx | `failed` | |
//! | policy (5.7.x) | back to the queue | the issue pauses with the reply as its reason |
//! | TLS or auth failure | back to the queue | the issue pauses with the reason |
//! | relay unavailable (refused, 421, throttled) | back to the queue until the circuit closes | the circuit opens |
//! | lost after the final dot | `ambiguous`, sent again (unless `resend_ambiguous` is off) | |

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::{SignedDuration, Timestamp};

use super::DeliveryContext;
use super::context::IssueForSending;
use crate::mailer::SendOutcome;
use crate::store::{ClaimedDelivery, Settlement};

/// What the tasks of one batch learn about the relay and the issues while they send.
#[derive(Default)]
pub(super) struct BatchState {
    /// The circuit opened during this batch: nobody sends to the relay before this.
    circuit: Mutex<Option<Timestamp>>,
    /// Set by the one task that trips the circuit, so that a batch counts one failure of the relay, not one
    /// per connection.
    tripping: std::sync::atomic::AtomicBool,
    /// Issues paused during this batch: their remaining deliveries go back to the queue.
    paused: Mutex<HashSet<i64>>,
}

impl BatchState {
    pub(super) fn circuit_open_until(&self) -> Option<Timestamp> {
        *self.circuit.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the relay went down during this batch (the circuit is open, or being opened).
    pub(super) fn relay_down(&self) -> bool {
        self.tripping.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn is_paused(&self, issue_id: i64) -> bool {
        self.paused.lock().unwrap_or_else(|p| p.into_inner()).contains(&issue_id)
    }
}

/// The wait before attempt `attempts + 1`: `retry_initial` doubled per attempt, at most `retry_max`, with
/// ±20 % jitter so that retries of one batch do not come back at once.
pub fn backoff(initial: SignedDuration, max: SignedDuration, attempts: i64, jitter: f64) -> SignedDuration {
    let exponent = attempts.clamp(0, 30) as i32;
    let base = initial.as_secs_f64() * 2f64.powi(exponent);
    let capped = base.min(max.as_secs_f64());
    SignedDuration::from_secs_f64(capped * (0.8 + 0.4 * jitter.clamp(0.0, 1.0)))
}

/// How long the circuit stays open after `failures` consecutive failures: 30 s doubling up to 15 min.
fn circuit_backoff(failures: i64) -> SignedDuration {
    let secs = (30.0 * 2f64.powi((failures - 1).clamp(0, 10) as i32)).min(900.0);
    SignedDuration::from_secs_f64(secs)
}

/// Maps a transport outcome to the delivery's settlement (and whether it counts as an attempt), applying its
/// effect on the relay's circuit and the issue.
pub(super) async fn settle(
    context: &DeliveryContext,
    delivery: &ClaimedDelivery,
    issue: &IssueForSending,
    outcome: SendOutcome,
    now: Timestamp,
    state: &BatchState,
    address: &str,
) -> (Settlement, bool) {
    let config = &context.config;
    match outcome {
        SendOutcome::Accepted { reply } => {
            (Settlement::Sent { code: reply_code(&reply), reply: scrub(&reply, address) }, true)
        }
        SendOutcome::Transient { code, reply } => {
            let attempts = delivery.attempts + 1;
            let first = delivery.first_attempt_at.map(crate::clock::from_millis).unwrap_or(now);
            let error = scrub(&reply, address);
            if attempts >= i64::from(config.max_attempts) || now.duration_since(first) >= config.max_age {
                let error = format!("gave up after {attempts} attempts: {error}");
                (Settlement::Failed { code, error }, true)
            } else {
                let wait = backoff(config.retry_initial, config.retry_max, attempts - 1, rand::random::<f64>());
                (Settlement::Retry { not_before: now.saturating_add(wait).unwrap_or(now), code, error }, true)
            }
        }
        SendOutcome::Bounce { code, enhanced, reply } => {
            // The reply starts with its code and carries the enhanced code already ("550 5.1.1 no such user").
            let reply = scrub(&reply, address);
            let error = if reply.contains(enhanced.as_str()) { reply } else { format!("{code} {enhanced}: {reply}") };
            (Settlement::Bounced { code, error }, true)
        }
        SendOutcome::Rejected { code, reply } => {
            (Settlement::Failed { code: Some(code), error: scrub(&reply, address) }, true)
        }
        SendOutcome::Policy { code, reply } => {
            let reason = format!(
                "the relay refused a message of this issue on policy grounds ({code} {}); fix the cause (sender \
                 authorization, content, reputation), then run `tidings issue resume {}`",
                scrub(&reply, address),
                issue.number
            );
            pause(context, state, delivery.issue_id, &reason, now).await;
            (Settlement::Released { not_before: now, error: Some(reason) }, false)
        }
        SendOutcome::Fatal { reason } => {
            let reason = format!(
                "sending stopped: {reason}; fix the [smtp] settings, then run `tidings issue resume {}`",
                issue.number
            );
            pause(context, state, delivery.issue_id, &reason, now).await;
            (Settlement::Released { not_before: now, error: Some(reason) }, false)
        }
        SendOutcome::Unavailable { reason } => {
            // The first task to see the outage trips the circuit; the others just put their delivery back (the
            // open circuit keeps anyone from claiming it early).
            let until = if state.tripping.swap(true, std::sync::atomic::Ordering::SeqCst) {
                state.circuit_open_until().unwrap_or(now)
            } else {
                let open = context.store.trip_circuit(&config.relay, &reason, now, circuit_backoff).await;
                let until = open.map(|open| open.open_until).unwrap_or(now);
                tracing::warn!(relay = config.relay, %until, "the relay is unavailable: sending waits");
                *state.circuit.lock().unwrap_or_else(|p| p.into_inner()) = Some(until);
                until
            };
            (
                Settlement::Released { not_before: until, error: Some(format!("the relay is unavailable: {reason}")) },
                false,
            )
        }
        SendOutcome::Ambiguous { reason } => {
            let error = format!("the outcome is unknown ({reason}); the subscriber may receive it twice");
            let not_before = now.saturating_add(config.retry_initial).unwrap_or(now);
            (Settlement::Ambiguous { not_before, error, resend: config.resend_ambiguous }, true)
        }
    }
}

async fn pause(context: &DeliveryContext, state: &BatchState, issue_id: i64, reason: &str, now: Timestamp) {
    let newly = state.paused.lock().unwrap_or_else(|p| p.into_inner()).insert(issue_id);
    if newly {
        match context.store.hold_issue(issue_id, "sending", reason, now).await {
            Ok(_) => tracing::warn!(issue = issue_id, "the issue is paused: {reason}"),
            Err(e) => tracing::error!(issue = issue_id, error = format!("{e:#}"), "cannot pause the issue"),
        }
    }
}

/// The reply code at the start of an SMTP reply, if any.
fn reply_code(reply: &str) -> Option<u16> {
    reply.get(..3).and_then(|code| code.parse().ok())
}

/// The reply text without the recipient's address, which relays like to quote: stored replies hold no
/// personal data.
fn scrub(reply: &str, address: &str) -> String {
    // ASCII lowercasing keeps byte offsets, so the matches index the original text.
    let lower = reply.to_ascii_lowercase();
    let needle = address.to_ascii_lowercase();
    if needle.is_empty() || !lower.contains(&needle) {
        return reply.to_owned();
    }
    let mut out = String::with_capacity(reply.len());
    let mut rest = 0;
    for (at, _) in lower.match_indices(&needle) {
        out.push_str(&reply[rest..at]);
        out.push_str("<recipient>");
        rest = at + needle.len();
    }
    out.push_str(&reply[rest..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_wait_up_to_the_maximum_with_jitter() {
        let (initial, max) = (SignedDuration::from_mins(1), SignedDuration::from_hours(1));
        assert_eq!(backoff(initial, max, 0, 0.5), SignedDuration::from_mins(1));
        assert_eq!(backoff(initial, max, 3, 0.5), SignedDuration::from_mins(8));
        assert_eq!(backoff(initial, max, 20, 0.5), SignedDuration::from_hours(1));
        assert_eq!(backoff(initial, max, 0, 0.0), SignedDuration::from_secs(48));
        assert_eq!(backoff(initial, max, 0, 1.0), SignedDuration::from_secs(72));
    }

    #[test]
    fn the_circuit_stays_open_longer_after_each_failure() {
        assert_eq!(circuit_backoff(1), SignedDuration::from_secs(30));
        assert_eq!(circuit_backoff(3), SignedDuration::from_mins(2));
        assert_eq!(circuit_backoff(50), SignedDuration::from_mins(15));
    }

    #[test]
    fn the_recipient_address_is_scrubbed_from_replies() {
        let reply = "550 5.1.1 <Ana@Example.com>: user unknown (ana@example.com)";
        assert_eq!(scrub(reply, "ana@example.com"), "550 5.1.1 <<recipient>>: user unknown (<recipient>)");
        assert_eq!(reply_code(reply), Some(550));
    }
}
