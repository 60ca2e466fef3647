//! The weekly queue and its slots: queueing issues, deciding each slot once (which issue fills it, or why none
//! does), and the notice of an empty queue.
//!
//! Each slot of a list is one `issue_slots` row, decided by a compare-and-set from `pending`, so two daemons on
//! one PostgreSQL database (or a daemon restarted mid-step) never fill a slot twice or start two issues for it.

use anyhow::Context;
use jiff::Timestamp;
use serde::Serialize;

use super::issues::ISSUE_COLUMNS;
use super::{IssueRow, Store, on_pool};
use crate::clock::to_millis;

/// A slot as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct SlotRow {
    pub list_id: i64,
    pub slot_at: i64,
    /// `pending` (coming; a notice may have gone out), `sent` (an issue started at it), `waiting` (an issue was
    /// assigned but the daemon found the slot too late: it waits for `issue resume`), `missed` (the queue was
    /// empty), `skipped` (the daemon was not running, and a later slot had also passed).
    pub status: String,
    pub issue_id: Option<i64>,
    pub issue_number: Option<i64>,
    /// Where that issue stands now (a `waiting` slot's issue may have been resumed and sent since).
    pub issue_status: Option<String>,
    pub notice_sent_at: Option<i64>,
    pub detail: String,
}

/// How a slot is to be filled when the daemon decides it.
#[derive(Debug, Clone)]
pub struct SlotFill<'a> {
    pub list_id: i64,
    /// The slot's instant in the list's zone: its key.
    pub slot_at: Timestamp,
    /// When the issue becomes due: the slot, or for a local-time list the moment the first zone reaches it.
    pub send_at: Timestamp,
    /// For a local-time list, the slot's wall-clock date and time.
    pub local_at: Option<&'a str>,
    /// `Some(reason)`: the slot was found too late; the issue is assigned but held with this reason, in which
    /// `{number}` stands for the issue's number.
    pub late_reason: Option<&'a str>,
}

/// What deciding a slot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The next queued issue is scheduled for the slot.
    Filled { issue_id: i64, number: i64 },
    /// The next queued issue is assigned to the slot but held for `issue resume`.
    Waiting { issue_id: i64, number: i64 },
    /// Nothing was queued.
    Missed,
    /// Another daemon (or an earlier step) decided it already.
    AlreadyDecided,
}

/// A local-time issue's progress in one time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ZoneProgress {
    pub time_zone: String,
    pub total: i64,
    pub sent: i64,
    pub pending: i64,
    /// The earliest a delivery in this zone may go (its local hour, unless a retry moved it).
    pub first_not_before: i64,
}

const SLOT_COLUMNS: &str = "s.list_id, s.slot_at, s.status, s.issue_id, i.number AS issue_number, \
                            i.status AS issue_status, s.notice_sent_at, s.detail";

impl Store {
    /// Puts a draft in the weekly queue. Returns false when the issue is not a draft.
    pub async fn queue_issue(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "UPDATE issues SET status = 'queued', queued_at = $2, send_at = NULL, local_at = NULL, \
                   hold_reason = NULL, updated_at = $2 WHERE id = $1 AND status = 'draft'";
        let changed = on_pool!(self, pool => sqlx::query(sql).bind(issue_id).bind(to_millis(now)).execute(pool).await?.rows_affected());
        Ok(changed == 1)
    }

    /// Takes a queued issue out of the queue, back to draft. Returns false when it was not queued.
    pub async fn unqueue_issue(&self, issue_id: i64, now: Timestamp) -> anyhow::Result<bool> {
        let sql =
            "UPDATE issues SET status = 'draft', queued_at = NULL, updated_at = $2 WHERE id = $1 AND status = 'queued'";
        let changed = on_pool!(self, pool => sqlx::query(sql).bind(issue_id).bind(to_millis(now)).execute(pool).await?.rows_affected());
        Ok(changed == 1)
    }

    /// The queued issues of a list in the order they fill slots: by number.
    pub async fn queued_issues(&self, list_id: i64) -> anyhow::Result<Vec<IssueRow>> {
        let sql =
            format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE list_id = $1 AND status = 'queued' ORDER BY number");
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list_id).fetch_all(pool).await)?)
    }

    /// The latest slot of a list that has been decided (anything but `pending`), in milliseconds.
    pub async fn last_decided_slot(&self, list_id: i64) -> anyhow::Result<Option<i64>> {
        let sql = "SELECT MAX(slot_at) FROM issue_slots WHERE list_id = $1 AND status <> 'pending'";
        let (last,): (Option<i64>,) = on_pool!(self, pool => sqlx::query_as(sql).bind(list_id).fetch_one(pool).await)?;
        Ok(last)
    }

    /// The decided slots of a list, newest first, at most `limit`.
    pub async fn decided_slots(&self, list_id: i64, limit: i64) -> anyhow::Result<Vec<SlotRow>> {
        let sql = format!(
            "SELECT {SLOT_COLUMNS} FROM issue_slots s LEFT JOIN issues i ON i.id = s.issue_id \
             WHERE s.list_id = $1 AND s.status <> 'pending' ORDER BY s.slot_at DESC LIMIT $2"
        );
        Ok(
            on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list_id).bind(limit).fetch_all(pool).await)?,
        )
    }

    /// The coming slots of a list that are recorded already (an empty-queue notice went out for them).
    pub async fn pending_slots(&self, list_id: i64) -> anyhow::Result<Vec<SlotRow>> {
        let sql = format!(
            "SELECT {SLOT_COLUMNS} FROM issue_slots s LEFT JOIN issues i ON i.id = s.issue_id \
             WHERE s.list_id = $1 AND s.status = 'pending' ORDER BY s.slot_at"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(list_id).fetch_all(pool).await)?)
    }

    /// The slot an issue was assigned to, if any.
    pub async fn slot_of_issue(&self, issue_id: i64) -> anyhow::Result<Option<SlotRow>> {
        let sql = format!(
            "SELECT {SLOT_COLUMNS} FROM issue_slots s LEFT JOIN issues i ON i.id = s.issue_id \
             WHERE s.issue_id = $1 ORDER BY s.slot_at DESC LIMIT 1"
        );
        Ok(on_pool!(self, pool => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(issue_id).fetch_optional(pool).await)?)
    }

    /// Records slots that passed unfilled because the daemon was not running (a later slot had passed too).
    pub async fn skip_slots(
        &self,
        list_id: i64,
        slots: &[Timestamp],
        detail: &str,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO issue_slots (list_id, slot_at, status, detail, updated_at) VALUES ($1, $2, 'skipped', $3, $4) \
                   ON CONFLICT (list_id, slot_at) DO UPDATE SET status = 'skipped', detail = excluded.detail, \
                   updated_at = excluded.updated_at WHERE issue_slots.status = 'pending'";
        on_pool!(self, pool => {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            for slot in slots {
                sqlx::query(sql).bind(list_id).bind(to_millis(*slot)).bind(detail).bind(to_millis(now)).execute(&mut *tx).await?;
            }
            tx.commit().await
        })
        .context("cannot record skipped slots")
    }

    /// Decides a slot once: the next queued issue (by number) is scheduled for it, or assigned and held when
    /// the slot was found too late; with nothing queued the slot is missed.
    pub async fn fill_slot(&self, fill: &SlotFill<'_>, now: Timestamp) -> anyhow::Result<SlotOutcome> {
        let (list_id, slot_at, now) = (fill.list_id, to_millis(fill.slot_at), to_millis(now));
        let ensure = "INSERT INTO issue_slots (list_id, slot_at, status, updated_at) VALUES ($1, $2, 'pending', $3) \
                      ON CONFLICT (list_id, slot_at) DO NOTHING";
        // The compare-and-set that makes this daemon the one deciding the slot (a row lock on PostgreSQL until
        // commit; a competitor then finds it decided).
        let claim = "UPDATE issue_slots SET status = 'missed', detail = 'nothing was queued', updated_at = $3 \
                     WHERE list_id = $1 AND slot_at = $2 AND status = 'pending'";
        let next = "SELECT id, number FROM issues WHERE list_id = $1 AND status = 'queued' ORDER BY number LIMIT 1";
        let schedule = "UPDATE issues SET status = $2, send_at = $3, local_at = $4, local_time = $5, hold_reason = $6, \
                        updated_at = $7 WHERE id = $1 AND status = 'queued'";
        let record =
            "UPDATE issue_slots SET status = $3, issue_id = $4, detail = $5 WHERE list_id = $1 AND slot_at = $2";
        let outcome: Result<SlotOutcome, sqlx::Error> = on_pool!(self, pool => async {
            let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
            sqlx::query(ensure).bind(list_id).bind(slot_at).bind(now).execute(&mut *tx).await?;
            let claimed = sqlx::query(claim).bind(list_id).bind(slot_at).bind(now).execute(&mut *tx).await?.rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(SlotOutcome::AlreadyDecided);
            }
            let next: Option<(i64, i64)> = sqlx::query_as(next).bind(list_id).fetch_optional(&mut *tx).await?;
            let outcome = match next {
                None => SlotOutcome::Missed,
                Some((issue_id, number)) => {
                    let reason = fill.late_reason.map(|reason| reason.replace("{number}", &number.to_string()));
                    let status = if reason.is_some() { "paused" } else { "scheduled" };
                    let changed = sqlx::query(schedule)
                        .bind(issue_id)
                        .bind(status)
                        .bind(to_millis(fill.send_at))
                        .bind(fill.local_at)
                        .bind(fill.local_at.is_some())
                        .bind(reason.as_deref())
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if changed == 0 {
                        // Taken out of the queue between the two statements: decide the slot again next step.
                        tx.rollback().await?;
                        return Ok(SlotOutcome::AlreadyDecided);
                    }
                    let (slot_status, detail) = match &reason {
                        Some(reason) => ("waiting", reason.clone()),
                        None => ("sent", String::new()),
                    };
                    sqlx::query(record).bind(list_id).bind(slot_at).bind(slot_status).bind(issue_id).bind(&detail)
                        .execute(&mut *tx).await?;
                    if reason.is_some() {
                        SlotOutcome::Waiting { issue_id, number }
                    } else {
                        SlotOutcome::Filled { issue_id, number }
                    }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        }
        .await);
        outcome.context("cannot decide the weekly slot")
    }

    /// Claims the empty-queue notice of a coming slot: true once per slot (until released).
    pub async fn claim_slot_notice(&self, list_id: i64, slot_at: Timestamp, now: Timestamp) -> anyhow::Result<bool> {
        let sql = "INSERT INTO issue_slots (list_id, slot_at, status, notice_sent_at, updated_at) \
                   VALUES ($1, $2, 'pending', $3, $3) ON CONFLICT (list_id, slot_at) DO UPDATE \
                   SET notice_sent_at = excluded.notice_sent_at, updated_at = excluded.updated_at \
                   WHERE issue_slots.notice_sent_at IS NULL AND issue_slots.status = 'pending'";
        let changed = on_pool!(self, pool => sqlx::query(sql)
            .bind(list_id)
            .bind(to_millis(slot_at))
            .bind(to_millis(now))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(changed == 1)
    }

    /// Gives a notice claim back after the notice could not be sent, so a later step tries again.
    pub async fn release_slot_notice(&self, list_id: i64, slot_at: Timestamp) -> anyhow::Result<()> {
        let sql =
            "UPDATE issue_slots SET notice_sent_at = NULL WHERE list_id = $1 AND slot_at = $2 AND status = 'pending'";
        on_pool!(self, pool => sqlx::query(sql).bind(list_id).bind(to_millis(slot_at)).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// A local-time issue's deliveries per zone, the earliest zone first.
    pub async fn zone_progress(&self, issue_id: i64) -> anyhow::Result<Vec<ZoneProgress>> {
        let sql = "SELECT COALESCE(time_zone, '') AS time_zone, COUNT(*) AS total, \
                   CAST(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END) AS BIGINT) AS sent, \
                   CAST(SUM(CASE WHEN status IN ('queued', 'sending', 'retry_wait', 'ambiguous') THEN 1 ELSE 0 END) AS BIGINT) AS pending, \
                   MIN(not_before) AS first_not_before \
                   FROM deliveries WHERE issue_id = $1 AND is_test = false GROUP BY time_zone ORDER BY MIN(not_before), 1";
        Ok(on_pool!(self, pool => sqlx::query_as(sql).bind(issue_id).fetch_all(pool).await)?)
    }

    /// Slots missed for an empty queue, over every list: for `/metrics`.
    pub async fn missed_slot_count(&self) -> anyhow::Result<i64> {
        let sql = "SELECT COUNT(*) FROM issue_slots WHERE status = 'missed'";
        let (count,): (i64,) = on_pool!(self, pool => sqlx::query_as(sql).fetch_one(pool).await)?;
        Ok(count)
    }
}
