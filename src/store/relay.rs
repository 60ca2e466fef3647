//! What all daemons on one database share about a relay: its send budget per second (a smooth schedule, see
//! `pace.rs`), hour and day (fixed windows), kept across restarts, and its circuit breaker. Also the daemons
//! themselves, whose heartbeats keep their leases alive.

use anyhow::Context;
use jiff::Timestamp;

use super::pace::{Pace, micros_to_millis};
use super::{Backend, Store, on_pool};
use crate::clock::{from_millis, to_millis};

/// A relay's limits: messages per second, hour and day; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    pub per_second: u32,
    pub per_hour: u32,
    pub per_day: u32,
}

impl RateLimits {
    /// The fixed windows: per hour and per day. The per-second limit is a smooth schedule instead.
    fn windows(&self) -> impl Iterator<Item = (&'static str, i64, i64)> {
        [("hour", 3_600_000, self.per_hour), ("day", 86_400_000, self.per_day)]
            .into_iter()
            .filter(|(_, _, limit)| *limit > 0)
            .map(|(period, length, limit)| (period, length, i64::from(limit)))
    }
}

/// An open circuit: the relay refused or throttled us; nobody sends to it before `open_until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCircuit {
    pub open_until: Timestamp,
    pub failures: i64,
    pub reason: String,
}

/// What [`Store::reserve_sends`] granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// Sends that may go now.
    pub granted: u32,
    /// When nothing was granted: the earliest a reservation can get a send (the per-second schedule's next
    /// slot, or the end of a used-up hour or day).
    pub retry_at: Option<Timestamp>,
}

impl Store {
    /// Reserves up to `wanted` sends to `relay` now: within the per-second schedule (no sliding second holds
    /// more than `per_second`) and the hour and day windows. Shared by every daemon, kept across restarts.
    pub async fn reserve_sends(
        &self,
        relay: &str,
        limits: RateLimits,
        wanted: u32,
        now: Timestamp,
    ) -> anyhow::Result<Reservation> {
        let windows: Vec<(&str, i64, i64)> = limits.windows().collect();
        let pace = Pace::new(limits.per_second);
        if (windows.is_empty() && pace.is_none()) || wanted == 0 {
            return Ok(Reservation { granted: wanted, retry_at: None });
        }
        let now = to_millis(now);
        let lock = match self.backend() {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE",
        };
        let used_sql =
            format!("SELECT used FROM relay_usage WHERE relay = $1 AND period = $2 AND window_start = $3 {lock}");
        let pace_sql = format!("SELECT tat_micros FROM relay_pace WHERE relay = $1 {lock}");
        let result = on_pool!(self, pool => {
            let begin = if self.backend() == Backend::Sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" };
            let mut connection = pool.acquire().await?;
            let mut tx = sqlx::Connection::begin_with(&mut *connection, begin).await?;
            let mut granted = i64::from(wanted);
            let mut retry_at = None;
            // The per-second schedule first: it may grant fewer, and its TAT is written only for what is granted.
            if let Some(pace) = pace {
                // The row exists before it is locked, so two daemons starting together cannot both see none.
                sqlx::query("INSERT INTO relay_pace (relay, tat_micros) VALUES ($1, 0) ON CONFLICT (relay) DO NOTHING")
                    .bind(relay)
                    .execute(&mut *tx)
                    .await?;
                let tat: Option<(i64,)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(pace_sql)).bind(relay).fetch_optional(&mut *tx).await?;
                let grant = pace.reserve(tat.map(|(tat,)| tat), now, granted);
                granted = grant.granted;
                retry_at = (granted == 0).then_some(micros_to_millis(grant.next_at));
            }
            for (period, length, limit) in &windows {
                let start = now - now.rem_euclid(*length);
                sqlx::query("INSERT INTO relay_usage (relay, period, window_start, used) VALUES ($1, $2, $3, 0) \
                             ON CONFLICT (relay, period, window_start) DO NOTHING")
                    .bind(relay)
                    .bind(*period)
                    .bind(start)
                    .execute(&mut *tx)
                    .await?;
                let (used,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(used_sql.clone()))
                    .bind(relay)
                    .bind(*period)
                    .bind(start)
                    .fetch_one(&mut *tx)
                    .await?;
                if used >= *limit && retry_at.is_none() {
                    retry_at = Some(start + length);
                }
                granted = granted.min((limit - used).max(0));
            }
            if granted > 0 {
                if let Some(pace) = pace {
                    // The windows may have cut the grant: the schedule counts only what goes.
                    let tat = pace.tat_after(now, granted);
                    sqlx::query("UPDATE relay_pace SET tat_micros = $2 WHERE relay = $1")
                        .bind(relay)
                        .bind(tat)
                        .execute(&mut *tx)
                        .await?;
                }
                for (period, length, _) in &windows {
                    let start = now - now.rem_euclid(*length);
                    sqlx::query("UPDATE relay_usage SET used = used + $4 WHERE relay = $1 AND period = $2 AND window_start = $3")
                        .bind(relay)
                        .bind(*period)
                        .bind(start)
                        .bind(granted)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            // Old windows are of no use to anyone.
            sqlx::query("DELETE FROM relay_usage WHERE relay = $1 AND window_start < $2")
                .bind(relay)
                .bind(now - 2 * 86_400_000)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Reservation {
                granted: granted as u32,
                retry_at: if granted == 0 { retry_at.map(from_millis) } else { None },
            })
        });
        result.context("cannot reserve sends in the rate limit")
    }

    /// Gives back `unused` of the `granted` sends reserved at `reserved_at`, in the windows they were reserved
    /// in, and in the per-second schedule unless another reservation came since (then they are simply lost).
    pub async fn return_sends(
        &self,
        relay: &str,
        limits: RateLimits,
        granted: u32,
        unused: u32,
        reserved_at: Timestamp,
    ) -> anyhow::Result<()> {
        if unused == 0 {
            return Ok(());
        }
        let at = to_millis(reserved_at);
        if let Some(pace) = Pace::new(limits.per_second) {
            let (expected, back) = pace.returned(at, i64::from(granted), i64::from(unused));
            let sql = "UPDATE relay_pace SET tat_micros = $3 WHERE relay = $1 AND tat_micros = $2";
            on_pool!(self, pool => sqlx::query(sql)
                .bind(relay)
                .bind(expected)
                .bind(back)
                .execute(pool)
                .await.map(|_| ()))?;
        }
        for (period, length, _) in limits.windows() {
            let start = at - at.rem_euclid(length);
            let sql = "UPDATE relay_usage SET used = CASE WHEN used > $4 THEN used - $4 ELSE 0 END \
                       WHERE relay = $1 AND period = $2 AND window_start = $3";
            on_pool!(self, pool => sqlx::query(sql)
                .bind(relay)
                .bind(period)
                .bind(start)
                .bind(i64::from(unused))
                .execute(pool)
                .await.map(|_| ()))?;
        }
        Ok(())
    }

    /// The relay's circuit, when it is open at `now`.
    pub async fn open_circuit(&self, relay: &str, now: Timestamp) -> anyhow::Result<Option<OpenCircuit>> {
        let sql = "SELECT open_until, failures, reason FROM relay_circuits WHERE relay = $1 AND open_until > $2";
        let row: Option<(i64, i64, String)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(relay).bind(to_millis(now)).fetch_optional(pool).await)?;
        Ok(row.map(|(until, failures, reason)| OpenCircuit { open_until: from_millis(until), failures, reason }))
    }

    /// Counts one more failure of the relay and opens its circuit until `backoff(failures)` from now.
    pub async fn trip_circuit(
        &self,
        relay: &str,
        reason: &str,
        now: Timestamp,
        backoff: impl Fn(i64) -> jiff::SignedDuration,
    ) -> anyhow::Result<OpenCircuit> {
        let (failures,): (i64,) = on_pool!(self, pool => sqlx::query_as(
            "INSERT INTO relay_circuits (relay, open_until, failures, reason, updated_at) VALUES ($1, $2, 1, $3, $2) \
             ON CONFLICT (relay) DO UPDATE SET failures = relay_circuits.failures + 1, reason = $3, updated_at = $2 \
             RETURNING failures")
            .bind(relay)
            .bind(to_millis(now))
            .bind(reason)
            .fetch_one(pool)
            .await)?;
        let open_until = now.saturating_add(backoff(failures)).unwrap_or(now);
        on_pool!(self, pool => sqlx::query("UPDATE relay_circuits SET open_until = $2 WHERE relay = $1")
            .bind(relay)
            .bind(to_millis(open_until))
            .execute(pool)
            .await.map(|_| ()))?;
        Ok(OpenCircuit { open_until, failures, reason: reason.to_owned() })
    }

    /// Closes the relay's circuit after a success.
    pub async fn reset_circuit(&self, relay: &str) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM relay_circuits WHERE relay = $1").bind(relay).execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Registers a running daemon (or renews its heartbeat).
    pub async fn heartbeat(&self, daemon: &str, hostname: &str, pid: u32, now: Timestamp) -> anyhow::Result<()> {
        let sql = "INSERT INTO daemons (id, hostname, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4) \
                   ON CONFLICT (id) DO UPDATE SET heartbeat_at = $4";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(daemon)
            .bind(hostname)
            .bind(i64::from(pid))
            .bind(to_millis(now))
            .execute(pool)
            .await.map(|_| ()))?;
        Ok(())
    }

    /// Removes a daemon that stops cleanly, after it released its leases.
    pub async fn unregister_daemon(&self, daemon: &str) -> anyhow::Result<()> {
        on_pool!(self, pool => sqlx::query("DELETE FROM daemons WHERE id = $1").bind(daemon).execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
