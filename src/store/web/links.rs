//! What a signed link names: the subscriber's standing with the link's list, the issue it belongs to, and the
//! two changes an unsubscribe link can make (unsubscribe, and the way back).
//!
//! The web calls these only after a link's signature has been verified. A subscriber who was erased, or an
//! issue of another list, is simply not found, so the web answers such a link like a forged one.

use std::fmt;

use anyhow::Context;
use jiff::Timestamp;

use super::begin_write;
use crate::clock::to_millis;
use crate::domain::{SubscriberEmail, SubscriptionStatus};
use crate::store::{Store, on_pool};

/// A subscriber as a link names them, with their standing on the link's list. `Debug` hides the name.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkSubscriber {
    pub subscriber_id: i64,
    /// The display name; may be empty.
    pub name: String,
    pub status: SubscriptionStatus,
    /// When a pending subscription lapses (milliseconds since the epoch).
    pub expires_at: Option<i64>,
}

impl fmt::Debug for LinkSubscriber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkSubscriber")
            .field("subscriber_id", &self.subscriber_id)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// An issue as a rating or view link names it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LinkIssue {
    pub id: i64,
    pub number: i64,
    pub subject: String,
    pub period: String,
    pub status: String,
    /// When the relay accepted this subscriber's copy (milliseconds); `None` when it has not (yet) been sent.
    pub sent_at: Option<i64>,
}

/// What a resubscribe request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resubscribe {
    /// Active again.
    Done,
    /// Nothing changed; the subscription has this status (already active, bounced, ...).
    Unchanged(SubscriptionStatus),
    /// The address is on the suppression list and may never be mailed again.
    Suppressed,
}

impl Store {
    /// The subscriber a link names, with their subscription to `list_id`; `None` when either does not exist.
    pub async fn link_subscriber(&self, list_id: i64, subscriber_id: i64) -> anyhow::Result<Option<LinkSubscriber>> {
        let sql = "SELECT s.name, sub.status, sub.expires_at FROM subscriptions sub \
                   JOIN subscribers s ON s.id = sub.subscriber_id WHERE sub.list_id = $1 AND sub.subscriber_id = $2";
        let row: Option<(String, String, Option<i64>)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(list_id)
            .bind(subscriber_id)
            .fetch_optional(pool)
            .await)
        .context("cannot look up a link's subscriber")?;
        let Some((name, status, expires_at)) = row else { return Ok(None) };
        let status = SubscriptionStatus::parse(&status).map_err(anyhow::Error::msg)?;
        Ok(Some(LinkSubscriber { subscriber_id, name, status, expires_at }))
    }

    /// The issue a link names, when it belongs to `list_id`, with when this subscriber's copy was sent.
    pub async fn link_issue(
        &self,
        list_id: i64,
        subscriber_id: i64,
        issue_id: i64,
    ) -> anyhow::Result<Option<LinkIssue>> {
        let sql = "SELECT i.id, i.number, i.subject, i.period, i.status, \
                   (SELECT d.sent_at FROM deliveries d WHERE d.issue_id = i.id AND d.subscriber_id = $2 \
                   AND d.is_test = false) AS sent_at \
                   FROM issues i WHERE i.id = $1 AND i.list_id = $3";
        on_pool!(self, pool => sqlx::query_as(sql)
            .bind(issue_id)
            .bind(subscriber_id)
            .bind(list_id)
            .fetch_optional(pool)
            .await)
        .context("cannot look up a link's issue")
    }

    /// Unsubscribes an active or pending subscription through a link and records an `unsubscribe` event with
    /// the issue the link came from and `detail` (how: `one-click` or `page`). Returns whether the status
    /// changed: repeating it, or unsubscribing a bounced address, changes nothing.
    pub async fn unsubscribe_by_link(
        &self,
        list_id: i64,
        subscriber_id: i64,
        issue_id: Option<i64>,
        detail: &str,
        now: Timestamp,
    ) -> anyhow::Result<bool> {
        let update = "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3, expires_at = NULL, \
                      updated_at = $3 WHERE list_id = $1 AND subscriber_id = $2 AND status IN ('active', 'pending')";
        let event = "INSERT INTO events (kind, list_id, issue_id, subscriber_id, delivery_id, detail, created_at) \
                     VALUES ('unsubscribe', $1, (SELECT id FROM issues WHERE id = $2), $3, \
                     (SELECT d.id FROM deliveries d WHERE d.issue_id = $2 AND d.subscriber_id = $3 AND d.is_test = false), \
                     $4, $5)";
        let now = to_millis(now);
        let changed = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let changed = sqlx::query(update).bind(list_id).bind(subscriber_id).bind(now).execute(&mut *tx).await?.rows_affected();
            if changed == 1 {
                sqlx::query(event).bind(list_id).bind(issue_id).bind(subscriber_id).bind(detail).bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed == 1)
        })
        .context("cannot unsubscribe")?;
        Ok(changed)
    }

    /// The way back after an unsubscribe: an `unsubscribed` subscription becomes `active` again, with a
    /// `resubscribe` event. Bounced, complained and suppressed addresses stay as they are.
    pub async fn resubscribe_by_link(
        &self,
        list_id: i64,
        subscriber_id: i64,
        issue_id: Option<i64>,
        now: Timestamp,
    ) -> anyhow::Result<Option<Resubscribe>> {
        let lookup = "SELECT s.email, sub.status FROM subscriptions sub JOIN subscribers s ON s.id = sub.subscriber_id \
                      WHERE sub.list_id = $1 AND sub.subscriber_id = $2";
        let update = "UPDATE subscriptions SET status = 'active', unsubscribed_at = NULL, updated_at = $3 \
                      WHERE list_id = $1 AND subscriber_id = $2 AND status = 'unsubscribed'";
        let event = "INSERT INTO events (kind, list_id, issue_id, subscriber_id, detail, created_at) \
                     VALUES ('resubscribe', $1, (SELECT id FROM issues WHERE id = $2), $3, 'page', $4)";
        let now = to_millis(now);
        let backend = self.backend();
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(begin_write(backend)).await?;
            let row: Option<(String, String)> =
                sqlx::query_as(lookup).bind(list_id).bind(subscriber_id).fetch_optional(&mut *tx).await?;
            let Some((email, status)) = row else { return Ok(None) };
            let status = SubscriptionStatus::parse(&status).map_err(anyhow::Error::msg)?;
            if status != SubscriptionStatus::Unsubscribed {
                return Ok(Some(Resubscribe::Unchanged(status)));
            }
            // An address may have been suppressed (by an admin, or a complaint) since it unsubscribed.
            if let Ok(email) = SubscriberEmail::parse(&email) {
                let suppressed: Option<(String,)> = sqlx::query_as("SELECT reason FROM suppressions WHERE email_hash = $1")
                    .bind(email.suppression_hash())
                    .fetch_optional(&mut *tx)
                    .await?;
                if suppressed.is_some() {
                    return Ok(Some(Resubscribe::Suppressed));
                }
            }
            sqlx::query(update).bind(list_id).bind(subscriber_id).bind(now).execute(&mut *tx).await?;
            sqlx::query(event).bind(list_id).bind(issue_id).bind(subscriber_id).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, anyhow::Error>(Some(Resubscribe::Done))
        });
        outcome.context("cannot resubscribe")
    }
}
