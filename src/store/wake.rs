//! Waking idle daemons: the command line tells daemons that there may be work (an issue sent, scheduled,
//! resumed or queued, a subscriber changed), so that an idle daemon sleeps until then or until its next timer
//! instead of polling.
//!
//! On PostgreSQL this is `NOTIFY tidings_wake` (delivered to every daemon on the server, at commit) and a
//! `LISTEN` connection per daemon. SQLite has no notification between processes, so the command line touches a
//! file beside the database (`tidings.db-wake`) and the daemon watches the database's folder with inotify: no
//! polling, and the CLI and the daemon must share the host, as they share the SQLite file anyway.
//!
//! A wake-up is a hint, never the only way work is found: a daemon also wakes for every timer it knows and at
//! least every `delivery.idle_poll`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use futures_util::StreamExt;
use sqlx::postgres::PgListener;
use tokio::sync::Notify;

use super::Store;

/// The PostgreSQL channel daemons listen on.
const CHANNEL: &str = "tidings_wake";

/// Where the command line says there is work for a daemon: a task listens and leaves a permit here.
pub struct WakeListener {
    permit: Arc<Notify>,
    task: tokio::task::AbortHandle,
    kind: &'static str,
}

impl std::fmt::Debug for WakeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeListener").field("kind", &self.kind).finish()
    }
}

impl Drop for WakeListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Store {
    /// Tells every idle daemon on this database to look for work now. Never fails the caller: a daemon that
    /// misses it finds the work at its next timer or `delivery.idle_poll`.
    pub async fn wake_daemons(&self) {
        let result = match self {
            Store::Postgres(pool) => sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(pool)
                .await
                .map(|_| ())
                .map_err(Into::into),
            Store::Sqlite(pool) => touch(&wake_file(pool.connect_options().get_filename())),
        };
        if let Err(e) = result {
            tracing::debug!(error = format!("{e:#}"), "cannot wake the daemons; they find the work at their next poll");
        }
    }

    /// Starts listening for [`Store::wake_daemons`].
    pub async fn wake_listener(&self) -> anyhow::Result<WakeListener> {
        let permit = Arc::new(Notify::new());
        let (task, kind) = match self {
            Store::Postgres(pool) => {
                let mut listener = PgListener::connect_with(pool).await.context("cannot open a LISTEN connection")?;
                listener.listen(CHANNEL).await.context("cannot LISTEN for wake-ups")?;
                (tokio::spawn(listen_postgres(listener, permit.clone())), "LISTEN tidings_wake")
            }
            Store::Sqlite(pool) => {
                let database = std::path::absolute(pool.connect_options().get_filename())
                    .context("cannot find the database's folder")?;
                let file = wake_file(&database);
                let folder = file.parent().unwrap_or(Path::new("/")).to_path_buf();
                let name = file.file_name().map(OsString::from).unwrap_or_default();
                let inotify = inotify::Inotify::init().context("cannot start inotify")?;
                let mask = inotify::WatchMask::CLOSE_WRITE | inotify::WatchMask::ATTRIB | inotify::WatchMask::MOVED_TO;
                inotify
                    .watches()
                    .add(&folder, mask)
                    .with_context(|| format!("cannot watch {} for wake-ups", folder.display()))?;
                let stream = inotify.into_event_stream(vec![0u8; 4096]).context("cannot read inotify events")?;
                (tokio::spawn(watch_file(stream, name, permit.clone())), "inotify")
            }
        };
        Ok(WakeListener { permit, task: task.abort_handle(), kind })
    }
}

impl WakeListener {
    /// Resolves at once if a wake-up arrived since the last call, else at the next one. Cancel-safe.
    pub async fn woken(&self) {
        self.permit.notified().await;
    }
}

/// Leaves a permit for every notification; a lost connection counts as one (something may have been missed).
async fn listen_postgres(mut listener: PgListener, permit: Arc<Notify>) {
    loop {
        match listener.try_recv().await {
            Ok(_) => permit.notify_one(),
            Err(sqlx::Error::PoolClosed) => return,
            Err(e) => {
                tracing::warn!(error = %e, "the LISTEN connection failed; reconnecting in a second");
                permit.notify_one();
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Leaves a permit whenever the wake file is written.
async fn watch_file(mut stream: inotify::EventStream<Vec<u8>>, name: OsString, permit: Arc<Notify>) {
    while let Some(event) = stream.next().await {
        match event {
            Ok(event) if event.name.as_deref() == Some(name.as_os_str()) => permit.notify_one(),
            Ok(_) => {}
            Err(e) => return tracing::warn!(error = %e, "cannot read inotify events; wake-ups stop"),
        }
    }
}

/// The wake file of a SQLite database: `tidings.db-wake` beside `tidings.db`.
fn wake_file(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wake");
    PathBuf::from(name)
}

/// Creates or rewrites the wake file: a close after writing is what the daemon's inotify watch sees.
fn touch(path: &Path) -> anyhow::Result<()> {
    std::fs::write(path, b"").with_context(|| format!("cannot write {}", path.display()))
}

impl Store {
    /// The earliest moment, after `now`, at which the database says a daemon has work that no wake-up
    /// announces: a scheduled issue's time, a lease that expires, a daemon holding deliveries that would be
    /// found dead (`dead_after` after its last heartbeat). Deliveries' own times are [`Store::next_due`].
    pub async fn next_timer(
        &self,
        now: jiff::Timestamp,
        dead_after: jiff::SignedDuration,
    ) -> anyhow::Result<Option<jiff::Timestamp>> {
        let scheduled = "SELECT MIN(send_at) FROM issues WHERE status = 'scheduled'";
        // `sending` is a short range of the deliveries_due index; the owners are a handful of daemons.
        let leases = "SELECT MIN(d.lease_expires_at), MIN(m.heartbeat_at) FROM deliveries d \
                      LEFT JOIN daemons m ON m.id = d.lease_owner WHERE d.status = 'sending'";
        let (scheduled, (lease, heartbeat)): (Option<i64>, (Option<i64>, Option<i64>)) =
            super::on_pool!(self, pool => {
                let scheduled: (Option<i64>,) = sqlx::query_as(scheduled).fetch_one(pool).await?;
                let leases: (Option<i64>, Option<i64>) = sqlx::query_as(leases).fetch_one(pool).await?;
                Ok::<_, sqlx::Error>((scheduled.0, leases))
            })
            .context("cannot read the next timer")?;
        let dead = heartbeat.map(|at| at.saturating_add(dead_after.as_millis() as i64));
        let now = crate::clock::to_millis(now);
        Ok([scheduled, lease, dead].into_iter().flatten().filter(|at| *at > now).min().map(crate::clock::from_millis))
    }
}
