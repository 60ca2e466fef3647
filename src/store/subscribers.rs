//! Subscribers and their subscriptions: add, find, list, count, remove and erase.

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use super::{Store, on_pool};
use crate::clock::to_millis;
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberName, SubscriptionStatus, SuppressionReason};

/// One subscription of one subscriber, as `subscriber list` and `export` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SubscriberRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    /// A JSON object of the extra columns of the import.
    pub attributes: String,
    pub time_zone: Option<String>,
    pub list: String,
    pub status: String,
    pub source: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub consent_at: Option<i64>,
    /// The rest of the consent evidence, which `export` writes so that an import keeps it.
    pub request_ip: Option<String>,
    pub request_user_agent: Option<String>,
    pub confirm_ip: Option<String>,
    pub confirm_user_agent: Option<String>,
    pub unsubscribed_at: Option<i64>,
}

/// A subscription with its consent evidence, as `subscriber show` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SubscriptionRow {
    pub list: String,
    pub status: String,
    pub source: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub consent_at: Option<i64>,
    pub request_ip: Option<String>,
    pub request_user_agent: Option<String>,
    pub confirm_ip: Option<String>,
    pub confirm_user_agent: Option<String>,
    pub expires_at: Option<i64>,
    pub unsubscribed_at: Option<i64>,
}

/// How many subscriptions of a list have a status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct StatusCount {
    pub list: String,
    pub status: String,
    pub count: i64,
}

/// Which subscriptions `list_subscribers` returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct SubscriberFilter {
    pub list_id: Option<i64>,
    pub status: Option<SubscriptionStatus>,
}

/// What `add_subscriber` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added {
        subscriber_id: i64,
    },
    /// Already on the list; its status is left alone (an unsubscribed person is not signed up again).
    AlreadyOnList {
        subscriber_id: i64,
        status: SubscriptionStatus,
    },
    /// The address is on the suppression list and was not added.
    Suppressed(SuppressionReason),
}

/// What `erase_subscriber` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EraseOutcome {
    /// A subscriber with that address existed and was deleted.
    pub erased: bool,
}

impl Store {
    /// Adds `email` to a list, creating the subscriber when new. Suppressed addresses are refused.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_subscriber(
        &self,
        list_id: i64,
        email: &SubscriberEmail,
        name: &SubscriberName,
        time_zone: Option<&str>,
        status: SubscriptionStatus,
        source: ConsentSource,
        now: Timestamp,
    ) -> anyhow::Result<AddOutcome> {
        let now = to_millis(now);
        let hash = email.suppression_hash();
        let consent_at = (status == SubscriptionStatus::Active).then_some(now);
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let suppressed: Option<(String,)> = sqlx::query_as("SELECT reason FROM suppressions WHERE email_hash = $1")
                .bind(&hash)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((reason,)) = suppressed {
                let reason = SuppressionReason::parse(&reason).unwrap_or(SuppressionReason::Manual);
                return Ok(AddOutcome::Suppressed(reason));
            }
            sqlx::query(
                "INSERT INTO subscribers (email, email_normalised, name, time_zone, created_at, updated_at) \
                 VALUES ($1, $5, $2, $3, $4, $4) ON CONFLICT (email_normalised) DO NOTHING",
            )
            .bind(email.as_str())
            .bind(name.as_str())
            .bind(time_zone)
            .bind(now)
            .bind(email.normalised())
            .execute(&mut *tx)
            .await?;
            let (subscriber_id,): (i64,) = sqlx::query_as("SELECT id FROM subscribers WHERE email_normalised = $1")
                .bind(email.normalised())
                .fetch_one(&mut *tx)
                .await?;
            let inserted = sqlx::query(
                "INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at) \
                 VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (list_id, subscriber_id) DO NOTHING",
            )
            .bind(list_id)
            .bind(subscriber_id)
            .bind(status.as_str())
            .bind(source.as_str())
            .bind(now)
            .bind(consent_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let outcome = if inserted == 1 {
                AddOutcome::Added { subscriber_id }
            } else {
                let (current,): (String,) =
                    sqlx::query_as("SELECT status FROM subscriptions WHERE list_id = $1 AND subscriber_id = $2")
                        .bind(list_id)
                        .bind(subscriber_id)
                        .fetch_one(&mut *tx)
                        .await?;
                let status = SubscriptionStatus::parse(&current).map_err(anyhow::Error::msg)?;
                AddOutcome::AlreadyOnList { subscriber_id, status }
            };
            tx.commit().await?;
            Ok::<_, anyhow::Error>(outcome)
        });
        outcome.context("cannot add the subscriber")
    }

    /// The subscriber with this address and all their subscriptions, with consent evidence.
    pub async fn find_subscriber(
        &self,
        email: &SubscriberEmail,
    ) -> anyhow::Result<Option<(SubscriberRow, Vec<SubscriptionRow>)>> {
        let person = "SELECT s.id, s.email, s.name, s.attributes, s.time_zone, '' AS list, '' AS status, \
                      '' AS source, s.created_at, NULL AS consent_at, NULL AS request_ip, NULL AS request_user_agent, \
                      NULL AS confirm_ip, NULL AS confirm_user_agent, NULL AS unsubscribed_at \
                      FROM subscribers s WHERE s.email_normalised = $1";
        let subscriptions = "SELECT l.slug AS list, sub.status, sub.source, sub.created_at, sub.updated_at, \
                             sub.consent_at, sub.request_ip, sub.request_user_agent, sub.confirm_ip, \
                             sub.confirm_user_agent, sub.expires_at, sub.unsubscribed_at \
                             FROM subscriptions sub JOIN lists l ON l.id = sub.list_id \
                             WHERE sub.subscriber_id = $1 ORDER BY l.slug";
        on_pool!(self, pool => {
            let row: Option<SubscriberRow> = sqlx::query_as(person).bind(email.normalised()).fetch_optional(pool).await?;
            let Some(row) = row else { return Ok(None) };
            let subs: Vec<SubscriptionRow> = sqlx::query_as(subscriptions).bind(row.id).fetch_all(pool).await?;
            Ok(Some((row, subs)))
        })
    }

    /// Up to `limit` subscriptions matching `filter`, ordered by subscriber id then list, starting after
    /// `after` (a `(subscriber id, list slug)` from the previous page): callers page through millions in
    /// constant memory.
    pub async fn list_subscribers(
        &self,
        filter: SubscriberFilter,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> anyhow::Result<Vec<SubscriberRow>> {
        let (after_id, after_list) = after.unwrap_or((0, String::new()));
        let sql = "SELECT s.id, s.email, s.name, s.attributes, s.time_zone, l.slug AS list, sub.status, sub.source, \
             s.created_at, sub.consent_at, sub.request_ip, sub.request_user_agent, sub.confirm_ip, \
             sub.confirm_user_agent, sub.unsubscribed_at FROM subscriptions sub \
             JOIN subscribers s ON s.id = sub.subscriber_id JOIN lists l ON l.id = sub.list_id \
             WHERE ($1 IS NULL OR sub.list_id = $1) AND ($2 IS NULL OR sub.status = $2) \
             AND (s.id > $3 OR (s.id = $3 AND l.slug > $4)) \
             ORDER BY s.id, l.slug LIMIT $5";
        let status = filter.status.map(|s| s.as_str());
        Ok(on_pool!(self, pool => sqlx::query_as(sql)
            .bind(filter.list_id)
            .bind(status)
            .bind(after_id)
            .bind(after_list)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await)?)
    }

    /// Subscriptions per list and status, optionally for one list.
    pub async fn status_counts(&self, list_id: Option<i64>) -> anyhow::Result<Vec<StatusCount>> {
        let sql = "SELECT l.slug AS list, sub.status, COUNT(*) AS count FROM subscriptions sub \
                   JOIN lists l ON l.id = sub.list_id WHERE ($1 IS NULL OR sub.list_id = $1) \
                   GROUP BY l.slug, sub.status ORDER BY l.slug, sub.status";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(list_id).fetch_all(pool).await)?)
    }

    /// Removes the subscriber from one list, or (with `list_id` `None`) deletes the subscriber, keeping
    /// anonymous history. Unlike erasure, the address may be added again. Returns how many subscriptions
    /// were removed, or `None` when there is no such subscriber.
    pub async fn remove_subscriber(
        &self,
        email: &SubscriberEmail,
        list_id: Option<i64>,
    ) -> anyhow::Result<Option<u64>> {
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            let id: Option<(i64,)> = sqlx::query_as("SELECT id FROM subscribers WHERE email_normalised = $1")
                .bind(email.normalised())
                .fetch_optional(&mut *tx)
                .await?;
            let Some((id,)) = id else { return Ok(None) };
            let removed = sqlx::query("DELETE FROM subscriptions WHERE subscriber_id = $1 AND ($2 IS NULL OR list_id = $2)")
                .bind(id)
                .bind(list_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if list_id.is_none() {
                sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(id).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(Some(removed))
        })
    }

    /// GDPR erasure: deletes the subscriber and every trace of their address, and puts the address's hash on
    /// the suppression list (keeping an existing entry's reason) so it is never mailed again. Aggregate
    /// history (deliveries, votes, opens) stays, no longer linked to anyone.
    pub async fn erase_subscriber(&self, email: &SubscriberEmail, now: Timestamp) -> anyhow::Result<EraseOutcome> {
        let now = to_millis(now);
        let hash = email.suppression_hash();
        let outcome = on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            sqlx::query(
                "INSERT INTO suppressions (email_hash, reason, detail, created_at) VALUES ($1, 'erased', '', $2) \
                 ON CONFLICT (email_hash) DO NOTHING",
            )
            .bind(&hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let id: Option<(i64,)> = sqlx::query_as("SELECT id FROM subscribers WHERE email_normalised = $1")
                .bind(email.normalised())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some((id,)) = id {
                // SMTP replies and event details can quote the address: clear them before unlinking the rows.
                sqlx::query("UPDATE deliveries SET last_error = NULL WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("UPDATE events SET detail = '' WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
                // Stored reports hold no address, but may quote a name or a diagnostic about the person.
                sqlx::query("UPDATE bounce_reports SET raw = '', subject = '', reason = 'erased' WHERE subscriber_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM subscribers WHERE id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("INSERT INTO events (kind, created_at) VALUES ('erase', $1)").bind(now).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok::<_, anyhow::Error>(EraseOutcome { erased: id.is_some() })
        })?;
        // With secure_delete the database file holds zeros where the person was, but the write-ahead log still
        // holds the pages as they were before: copy it into the database and empty it.
        // The erasure is committed whatever happens here; a log not emptied now is emptied by a later checkpoint.
        if let Store::Sqlite(pool) = self {
            let checkpoint: Result<(i64, i64, i64), _> =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await;
            if !matches!(checkpoint, Ok((0, _, _))) {
                tracing::warn!("erasure: the write-ahead log could not be emptied now (busy); a later checkpoint will");
            }
        }
        Ok(outcome)
    }

    /// Unsubscribes from one list, keeping the record (and the time) as evidence. Returns whether the status
    /// changed: unsubscribing twice is harmless.
    pub async fn unsubscribe(&self, list_id: i64, subscriber_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE subscriptions SET status = 'unsubscribed', unsubscribed_at = $3, updated_at = $3 \
                   WHERE list_id = $1 AND subscriber_id = $2 AND status <> 'unsubscribed'";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(list_id)
            .bind(subscriber_id)
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// Why the address is suppressed, if it is.
    pub async fn suppression_of(&self, email: &SubscriberEmail) -> anyhow::Result<Option<SuppressionReason>> {
        let row: Option<(String,)> = on_pool!(self, pool => sqlx::query_as("SELECT reason FROM suppressions WHERE email_hash = $1")
            .bind(email.suppression_hash())
            .fetch_optional(pool)
            .await)?;
        Ok(row.map(|(reason,)| SuppressionReason::parse(&reason).unwrap_or(SuppressionReason::Manual)))
    }
}
