//! Upgrades and backups: `tidings migrate [--dry-run]` and `tidings backup --out FILE`; and which commands
//! wake idle daemons.
//!
//! Neither migrates on opening: a backup is what one takes before an upgrade, and a dry run changes nothing.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};

use super::{format_millis, store_options};
use crate::cli::{IssueCommand, SubscriberCommand};
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::store::Store;

/// `tidings migrate`: applies the pending migrations, or with `dry_run` only lists them.
pub(super) async fn migrate(settings: &Settings, dry_run: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let store = Store::connect(&store_options(settings)).await?;
    if dry_run {
        let pending = store.pending_migrations().await?;
        store.close().await;
        for migration in &pending {
            writeln!(out, "pending {migration}")?;
        }
        match pending.len() {
            0 => writeln!(out, "the database is up to date; nothing would be applied")?,
            n => writeln!(out, "{n} migrations would be applied by `tidings migrate`; nothing was applied")?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    let applied = store.migrate().await?;
    let all = store.applied_migrations().await?;
    for migration in &applied {
        writeln!(out, "applied {migration}")?;
    }
    writeln!(out, "the database is up to date ({} migrations applied in all)", all.len())?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `tidings backup --out FILE`: a consistent copy of the SQLite database, taken while daemons run, marked so
/// that a restore lists what it may send again; prints how to restore it.
pub(super) async fn backup(
    settings: &Settings,
    clock: &Clock,
    path: &Path,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let url = settings.database.url.as_str();
    let Some(database) = sqlite_path(url) else {
        bail!(
            "tidings backup copies SQLite databases; for PostgreSQL run `pg_dump -Fc -f tidings.dump DATABASE_URL` \
             (and `pg_restore --clean --if-exists -d DATABASE_URL tidings.dump` to restore; see the README)"
        )
    };
    // Created here, empty and new, so that an existing file is never overwritten (VACUUM INTO fills it).
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => {
            anyhow::anyhow!("{} already exists; tidings backup never overwrites a file", path.display())
        }
        _ => anyhow::Error::new(e).context(format!("cannot create {}", path.display())),
    })?;
    let result = copy_and_mark(settings, clock, path).await;
    let (taken_at, mark) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
    };
    std::fs::File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))?;
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let when = format_millis(crate::clock::to_millis(taken_at));
    writeln!(out, "backup written to {} ({size} bytes): the database as it was at {when}", path.display())?;
    writeln!(
        out,
        "deliveries not settled at that moment: {} (of which {} were being sent); a restore may send them again, \
         and `tidings issue status N` lists them as possibly received twice",
        mark.unsettled + mark.in_flight,
        mark.in_flight
    )?;
    if mark.outbox_incomplete > 0 {
        writeln!(
            out,
            "issues still creating their delivery rows, paused in the copy (`issue status` says why; `issue resume` \
             sends them on after a restore): {}",
            mark.outbox_incomplete
        )?;
    }
    writeln!(out, "to restore it: stop every tidings daemon, then")?;
    writeln!(out, "  rm -f {database}-wal {database}-shm")?;
    writeln!(out, "  cp {} {database}", path.display())?;
    writeln!(out, "and start the daemon again; it resumes every issue that was being sent")?;
    Ok(ExitCode::SUCCESS)
}

/// Copies the database into `path` (empty) and marks the copy; returns when the copy was taken.
async fn copy_and_mark(
    settings: &Settings,
    clock: &Clock,
    path: &Path,
) -> anyhow::Result<(jiff::Timestamp, crate::store::BackupMark)> {
    let store = Store::connect(&store_options(settings)).await?;
    // Deliveries recorded from this moment on may be missing from the copy.
    let taken_at = clock.now();
    let copied = store.backup_into(path).await;
    store.close().await;
    copied?;
    let copy = Store::open_sqlite_file(path).await?;
    let mark = copy.mark_as_backup(taken_at).await;
    copy.close().await;
    Ok((taken_at, mark?))
}

/// Whether an issue command may change what is due, so idle daemons should look now (`store/wake.rs`).
pub(super) fn issue_wakes_daemons(command: &IssueCommand) -> bool {
    use IssueCommand::*;
    match command {
        Schedule { .. } | Send { .. } | Resume { .. } | Queue { .. } | Unqueue { .. } => true,
        Add { .. } | List { .. } | Show { .. } | Preview { .. } | TestSend { .. } | Pause { .. } | Cancel { .. } => {
            false
        }
        Status { .. } => false,
    }
}

/// Whether a subscriber command changes subscribers, which a send in progress checks before each message.
pub(super) fn subscriber_wakes_daemons(command: &SubscriberCommand) -> bool {
    use SubscriberCommand::*;
    match command {
        Add { .. } | Import { .. } | Remove { .. } | Erase { .. } => true,
        List { .. } | Show { .. } | Export { .. } => false,
    }
}

/// The file of a `sqlite://` URL, without its query; `None` for another database.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::sqlite_path;

    #[test]
    fn the_database_file_is_read_from_a_sqlite_url_only() {
        assert_eq!(sqlite_path("sqlite://tidings.db"), Some("tidings.db"));
        assert_eq!(sqlite_path("sqlite:///var/lib/tidings/tidings.db?mode=rwc"), Some("/var/lib/tidings/tidings.db"));
        assert_eq!(sqlite_path("postgres://tidings@db/tidings"), None);
    }
}
