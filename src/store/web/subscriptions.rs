//! Subscriptions made on the web: the subscribe form's pending subscription (double opt-in), its confirmation,
//! and the lapse of pending subscriptions nobody confirmed.
//!
//! A request never reveals anything to the requester: the outcome tells the web whether to send a
//! confirmation email, and the web says "check your inbox" whatever it is. An existing subscriber's name is
//! never changed by a form, so nobody can rename someone else by typing their address.

use anyhow::Context;
use jiff::{SignedDuration, Timestamp};

use super::begin_write;
use crate::clock::to_millis;
use crate::domain::{SubscriberEmail, SubscriberName, SubscriptionStatus};
use crate::store::{Store, on_pool};

/// A pending subscription gets at most one confirmation email per this long, so a form cannot be used to
/// flood someone's inbox.
const RESEND_AFTER: SignedDuration = SignedDuration::from_mins(5);
/// How long a lapsed pending subscription is kept (so its link can still say "expired") before the address
/// of someone who never confirmed is forgotten.
const FORGET_AFTER: SignedDuration = SignedDuration::from_hours(7 * 24);

/// A subscribe form's request, with the consent evidence of the request.
#[derive(Clone, Copy)]
pub struct SubscribeRequest<'a> {
    pub list_id: i64,
    pub email: &'a SubscriberEmail,
    pub name: &'a SubscriberName,
    /// An IANA zone name, checked, for local-time sends; kept only for a subscriber new to Tidings (a form
    /// anyone can fill in does not change an existing subscriber's data).
    pub time_zone: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    /// When the pending subscription lapses if it is not confirmed.
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for SubscribeRequest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscribeRequest").field("list_id", &self.list_id).finish_non_exhaustive()
    }
}

/// What a subscribe request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeOutcome {
    /// A pending subscription awaits confirmation: send the confirmation email to this subscriber.
    Confirm { subscriber_id: i64 },
    /// Nothing to send.
    Nothing(NoConfirmation),
}

/// Why a subscribe request sends no email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoConfirmation {
    AlreadyActive,
    /// A confirmation email went out a moment ago.
    RecentlyAsked,
    /// The address is suppressed, bounced or complained: it is never mailed.
    Blocked,
}

/// What [`Store::expire_pending_subscriptions`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryOutcome {
    /// Lapsed requests of people who had been subscribed before, back to `unsubscribed`.
    pub reverted: u64,
    /// Lapsed requests removed, with the subscriber when they had no other subscription.
    pub removed: u64,
}

impl Store {
    /// Records a subscribe request as a `pending` subscription with source `form` (a new subscriber, a new list
    /// for a known one, or a way back for someone who unsubscribed) and a `subscribe` event.
    pub async fn request_subscription(
        &self,
        request: &SubscribeRequest<'_>,
        now: Timestamp,
    ) -> anyhow::Result<SubscribeOutcome> {
        let now_ms = to_millis(now);
        let recent = to_millis(now.saturating_sub(RESEND_AFTER).unwrap_or(now));
        let expires_at = to_millis(request.expires_at);
        let list_id = request.list_id;
        let backend = self.backend();
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(backend)).await?;
            let suppressed: Option<(String,)> = sqlx::query_as("SELECT reason FROM suppressions WHERE email_hash = $1")
                .bind(request.email.suppression_hash())
                .fetch_optional(&mut *tx)
                .await?;
            if suppressed.is_some() {
                return Ok(SubscribeOutcome::Nothing(NoConfirmation::Blocked));
            }
            sqlx::query(
                "INSERT INTO subscribers (email, email_normalised, name, time_zone, created_at, updated_at) \
                 VALUES ($1, $5, $2, $4, $3, $3) ON CONFLICT (email_normalised) DO NOTHING",
            )
            .bind(request.email.as_str())
            .bind(request.name.as_str())
            .bind(now_ms)
            .bind(request.time_zone)
            .bind(request.email.normalised())
            .execute(&mut *tx)
            .await?;
            let (subscriber_id,): (i64,) = sqlx::query_as("SELECT id FROM subscribers WHERE email_normalised = $1")
                .bind(request.email.normalised())
                .fetch_one(&mut *tx)
                .await?;
            let current: Option<(String, i64)> =
                sqlx::query_as("SELECT status, updated_at FROM subscriptions WHERE list_id = $1 AND subscriber_id = $2")
                    .bind(list_id)
                    .bind(subscriber_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let status = current.as_ref().map(|(status, _)| SubscriptionStatus::parse(status)).transpose().map_err(anyhow::Error::msg)?;
            let refused = match (status, current.map(|(_, updated)| updated)) {
                (Some(SubscriptionStatus::Active), _) => Some(NoConfirmation::AlreadyActive),
                (Some(SubscriptionStatus::Bounced | SubscriptionStatus::Complained), _) => Some(NoConfirmation::Blocked),
                (Some(SubscriptionStatus::Pending), Some(updated)) if updated > recent => Some(NoConfirmation::RecentlyAsked),
                _ => None,
            };
            if let Some(reason) = refused {
                return Ok(SubscribeOutcome::Nothing(reason));
            }
            let sql = if status.is_none() {
                "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, request_ip, \
                 request_user_agent, expires_at) VALUES ($1, $2, 'pending', 'form', $3, $3, $4, $5, $6)"
            } else {
                // Pending (asked again) or unsubscribed (coming back): a fresh request. `unsubscribed_at` stays,
                // so a lapse returns the subscription to where it was.
                "UPDATE subscriptions SET status = 'pending', source = 'form', updated_at = $3, request_ip = $4, \
                 request_user_agent = $5, expires_at = $6 WHERE list_id = $1 AND subscriber_id = $2"
            };
            sqlx::query(sql)
                .bind(list_id)
                .bind(subscriber_id)
                .bind(now_ms)
                .bind(request.ip)
                .bind(request.user_agent)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
            sqlx::query("INSERT INTO events (kind, list_id, subscriber_id, detail, created_at) VALUES ('subscribe', $1, $2, 'form', $3)")
                .bind(list_id)
                .bind(subscriber_id)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(SubscribeOutcome::Confirm { subscriber_id })
        });
        outcome.context("cannot record the subscribe request")
    }

    /// Confirms a pending subscription that has not lapsed: it becomes `active`, with the time, IP address and
    /// user agent of the confirmation as consent evidence, and a `confirm` event. Returns whether it did.
    pub async fn confirm_subscription(
        &self,
        list_id: i64,
        subscriber_id: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let update = "UPDATE subscriptions SET status = 'active', consent_at = $3, confirm_ip = $4, \
                      confirm_user_agent = $5, expires_at = NULL, unsubscribed_at = NULL, updated_at = $3 \
                      WHERE list_id = $1 AND subscriber_id = $2 AND status = 'pending' \
                      AND (expires_at IS NULL OR expires_at > $3)";
        let event = "INSERT INTO events (kind, list_id, subscriber_id, detail, created_at) \
                     VALUES ('confirm', $1, $2, '', $3)";
        let now = to_millis(now);
        let confirmed = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let changed = sqlx::query(update)
                .bind(list_id)
                .bind(subscriber_id)
                .bind(now)
                .bind(ip)
                .bind(user_agent)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if changed == 1 {
                sqlx::query(event).bind(list_id).bind(subscriber_id).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed == 1)
        })
        .context("cannot confirm the subscription")?;
        Ok(confirmed)
    }

    /// Lapses pending subscriptions whose confirmation link expired before `now`: someone who had been
    /// subscribed before goes back to `unsubscribed` at once; a request nobody ever confirmed is kept a week
    /// longer (its link then says it expired), then removed with the subscriber when they have no other
    /// subscription. Cheap when there is nothing to do: the delivery engine calls it every step.
    pub async fn expire_pending_subscriptions(&self, now: Timestamp) -> anyhow::Result<ExpiryOutcome> {
        let revert = "UPDATE subscriptions SET status = 'unsubscribed', expires_at = NULL, updated_at = $1 \
                      WHERE status = 'pending' AND expires_at <= $1 AND unsubscribed_at IS NOT NULL";
        let remove = "DELETE FROM subscriptions WHERE status = 'pending' AND expires_at <= $1 RETURNING subscriber_id";
        let forget = "DELETE FROM subscribers WHERE id = $1 \
                      AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE subscriber_id = $1)";
        let forget_before = to_millis(now.saturating_sub(FORGET_AFTER).unwrap_or(now));
        let now = to_millis(now);
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let reverted = sqlx::query(revert).bind(now).execute(&mut *tx).await?.rows_affected();
            let removed: Vec<(i64,)> = sqlx::query_as(remove).bind(forget_before).fetch_all(&mut *tx).await?;
            for (subscriber_id,) in &removed {
                sqlx::query(forget).bind(subscriber_id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(ExpiryOutcome { reverted, removed: removed.len() as u64 })
        })
        .context("cannot lapse pending subscriptions")?;
        Ok(outcome)
    }
}
