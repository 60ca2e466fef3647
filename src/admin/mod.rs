//! What the admin commands do: each opens the store, acts through it, and prints for people or as JSON.
//!
//! Admin commands never talk to a running daemon: the database is the only channel between them.
//! Output for the user goes to the writer they are given (stdout); per-row problems go to stderr.

mod bounces;
mod delivery;
mod demo;
pub mod import;
mod issue;
mod lifecycle;
mod queue;
mod stats;
mod subscriber;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cli::Command;
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::store::{ListRow, Store, StoreOptions};

pub(crate) use issue::run as run_issue_command;
pub use subscriber::run as run_subscriber;

/// What every command needs: the settings, an open and migrated store, and the clock.
pub struct AdminContext {
    pub settings: Settings,
    pub store: Store,
    pub clock: Clock,
}

impl AdminContext {
    /// Opens the store, applies migrations and records the configured lists.
    pub async fn open(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        let lists = settings.list_specs()?;
        let store = Store::open(&store_options(&settings)).await.context("cannot open the database")?;
        store.sync_lists(&lists, clock.now()).await?;
        Ok(Self { settings, store, clock })
    }

    /// The list named on the command line, or the configured default list.
    pub async fn list(&self, slug: Option<&str>) -> anyhow::Result<ListRow> {
        let slug = slug.unwrap_or(&self.settings.default_list);
        if let Some(list) = self.store.list_by_slug(slug).await? {
            return Ok(list);
        }
        let known: Vec<String> = self.store.lists().await?.into_iter().map(|l| l.slug).collect();
        anyhow::bail!("there is no list `{slug}`; the lists are: {}", known.join(", "))
    }
}

/// `[database]` as the store wants it.
pub fn store_options(settings: &Settings) -> StoreOptions {
    StoreOptions {
        url: settings.database.url.clone(),
        max_connections: settings.database.max_connections,
        busy_timeout: Duration::try_from(settings.database.busy_timeout).unwrap_or(Duration::from_secs(5)),
    }
}

/// Runs one command; the error, if any, is printed by the caller as one line.
pub async fn run(command: Command, settings: Settings, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    run_with_clock(command, settings, Clock::system(), out).await
}

/// [`run`] with a given clock: tests run commands in-process at a time of their choosing.
pub async fn run_with_clock(
    command: Command,
    settings: Settings,
    clock: Clock,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Migrate { dry_run } => lifecycle::migrate(&settings, dry_run, out).await,
        Command::Backup { out: path } => lifecycle::backup(&settings, &clock, &path, out).await,
        Command::Subscriber(command) => {
            let context = AdminContext::open(settings, clock).await?;
            let wake = lifecycle::subscriber_wakes_daemons(&command);
            let code = subscriber::run(&context, command, out).await;
            if wake && code.is_ok() {
                context.store.wake_daemons().await;
            }
            context.store.close().await;
            code
        }
        Command::Serve => {
            // Signals are caught from the start: a SIGTERM while the store opens still ends the daemon cleanly.
            let shutdown = tokio_util::sync::CancellationToken::new();
            crate::startup::cancel_on_signal(shutdown.clone())?;
            let application = crate::startup::Application::build(settings, clock).await?;
            writeln!(
                out,
                "tidings serves {} and sends due issues; Ctrl-C or SIGTERM stops it",
                crate::configuration::local_url(application.address())
            )?;
            out.flush()?;
            // The store is open, migrations are applied and the listener is bound: systemd may start what
            // depends on us.
            crate::systemd::ready(application.port());
            application.run_until_stopped(shutdown).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo => demo::run(settings, clock, out).await,
        // Opens no database: it asks DNS and the relay only.
        Command::Doctor { json } => crate::doctor::run(&settings, json, out).await,
        // `main` runs these before loading settings (so `--config` reaches them); here they see the environment.
        Command::Ops(command) => crate::ops::run(command, None, out),
        Command::Queue { weeks, list, json } => {
            let context = AdminContext::open(settings, clock).await?;
            let code = queue::show(&context, weeks, list.as_deref(), json, out).await;
            context.store.close().await;
            code
        }
        Command::Stats { number, list, json, deliverability, days } => {
            let context = AdminContext::open(settings, clock).await?;
            let code = if deliverability {
                stats::deliverability(&context, days, list.as_deref(), json, out).await
            } else {
                stats::stats(&context, number, list.as_deref(), json, out).await
            };
            context.store.close().await;
            code
        }
        Command::Report { number, last, out: path, list } => {
            let context = AdminContext::open(settings, clock).await?;
            let code = match (number, last) {
                (Some(number), _) => stats::report(&context, number, list.as_deref(), &path, out).await,
                (None, last) => stats::list_report(&context, last.unwrap_or(12), list.as_deref(), &path, out).await,
            };
            context.store.close().await;
            code
        }
        Command::Bounce(crate::cli::BounceCommand::Ingest { recipient }) => {
            bounces::ingest(settings, clock, recipient, out).await
        }
        Command::Bounce(command) => {
            let context = AdminContext::open(settings, clock).await?;
            let code = bounces::run(&context, command, out).await;
            context.store.close().await;
            code
        }
        Command::Suppression(command) => {
            let context = AdminContext::open(settings, clock).await?;
            let code = bounces::suppression(&context, command, out).await;
            context.store.close().await;
            code
        }
        Command::Issue(command) => {
            let context = AdminContext::open(settings, clock).await?;
            let wake = lifecycle::issue_wakes_daemons(&command);
            let code = issue::run(&context, command, out).await;
            if wake && code.is_ok() {
                context.store.wake_daemons().await;
            }
            context.store.close().await;
            code
        }
    }
}

/// A stored timestamp (milliseconds) as `2026-12-07T08:00:00Z`, to the second.
pub(crate) fn format_millis(millis: i64) -> String {
    let at = crate::clock::from_millis(millis);
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
