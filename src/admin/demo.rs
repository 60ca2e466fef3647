//! `tidings demo`: the whole journey on the built-in defaults (SQLite in ./tidings.db, the outbox transport):
//! import the sample subscribers, add and send the sample issue, and keep serving HTTP so that the links in the
//! written `.eml` files work. Every step is idempotent, so the demo can be run again.
//!
//! The sample files are built into the binary and written into `./sample/` when missing, so the demo runs from
//! any folder (an installed `tidings` has no clone beside it) and the editor has an issue file to copy.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

use super::{AdminContext, import};
use crate::clock::Clock;
use crate::configuration::Settings;
use crate::render;

const SUBSCRIBERS: &str = "sample/subscribers.csv";
const ISSUE: &str = "sample/122.md";
/// The sample files, as in `emails/samples/` and `emails/issues/` of the repository.
const SAMPLES: [(&str, &str); 2] = [
    (SUBSCRIBERS, include_str!("../../emails/samples/subscribers.csv")),
    (ISSUE, include_str!("../../emails/issues/122.md")),
];
/// Where the demo keeps the link signing key it made, so links in mail it wrote keep working next time.
const KEY_FILE: &str = ".tidings-demo-key";

pub async fn run(mut settings: Settings, clock: Clock, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    write_samples()?;
    let tidings = crate::configuration::invocation();
    if settings.link_keys().is_err() {
        settings.links.signing_keys = Some(demo_key()?);
        settings.links.signing_keys_file = String::new();
        writeln!(
            out,
            "links are signed with a demo key kept in {KEY_FILE} (set TIDINGS_LINKS__SIGNING_KEYS for real use)"
        )?;
    }
    // A port in use stops the demo here, before it sends anything, with the setting that changes it.
    drop(crate::startup::bind(&settings).await?);
    let context = AdminContext::open(settings.clone(), clock.clone()).await?;
    let list = context.list(None).await?;

    let summary = import::import_file(&context.store, &clock, list.id, Path::new(SUBSCRIBERS), |_| {}).await?;
    writeln!(
        out,
        "1. imported {SUBSCRIBERS}: {} new subscribers, {} already there",
        summary.added, summary.already_subscribed
    )?;

    let text = std::fs::read_to_string(ISSUE).with_context(|| format!("cannot read {ISSUE}"))?;
    let source = render::parse_issue(ISSUE, &text).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut sink = Vec::new();
    super::run_issue_command(&context, crate::cli::IssueCommand::Add { file: ISSUE.into(), list: None }, &mut sink)
        .await?;
    let number = source.number.get();
    let issue =
        context.store.issue_by_number(list.id, i64::from(number)).await?.context("the sample issue was not stored")?;
    writeln!(out, "2. issue {number} is stored ({}): {}", issue.status, issue.subject)?;
    if issue.status == "draft" {
        context.store.start_issue(issue.id, clock.now()).await?;
        writeln!(out, "3. sending issue {number} to the active subscribers of `{}`", list.slug)?;
    } else {
        writeln!(out, "3. issue {number} is already {}; nothing new to send", issue.status)?;
    }
    context.store.close().await;

    let application = crate::startup::Application::build(settings.clone(), clock.clone()).await?;
    let port = application.port();
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        crate::startup::shutdown_signal().await;
        trigger.cancel();
    });
    let serving = tokio::spawn(application.run_until_stopped(shutdown.clone()));

    let context = AdminContext::open(settings.clone(), clock.clone()).await?;
    loop {
        let status = context.store.issue_by_id(issue.id).await?.map(|issue| issue.status).unwrap_or_default();
        if status != "sending" || shutdown.is_cancelled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let counts = context.store.delivery_counts(issue.id).await?;
    let outbox = &settings.outbox.dir;
    let written = std::fs::read_dir(outbox).map(|dir| dir.count()).unwrap_or(0);
    writeln!(
        out,
        "4. {} messages sent; the mail is in {}/ ({written} .eml files: open one in a mail program)",
        counts.sent,
        outbox.display()
    )?;

    let base = settings.base_url();
    let base = base.trim_end_matches('/');
    let links = settings.link_builder()?;
    let first = context.store.list_subscribers(Default::default(), None, 1).await?;
    let served_at = match settings.http.bind.trim().parse::<std::net::SocketAddr>() {
        Ok(bind) => crate::configuration::local_url(std::net::SocketAddr::new(bind.ip(), port)),
        Err(_) => format!("http://127.0.0.1:{port}"),
    };
    writeln!(out, "\nTidings serves {served_at} (links in the mail use {base}). Try:")?;
    if let Some(subscriber) = first.first() {
        let urls = links.issue_links(list.id, subscriber.id, issue.id);
        writeln!(out, "  the issue as {} sees it:   {}", subscriber.email, urls.view)?;
        writeln!(out, "  rate it 5 stars:              {}", urls.rate[4])?;
        writeln!(out, "  unsubscribe:                  {}", urls.unsubscribe)?;
    }
    writeln!(out, "  the archive:                  {base}/archive")?;
    writeln!(out, "  subscribe:                    {base}/subscribe")?;
    writeln!(out, "  metrics:                      {base}/metrics")?;
    writeln!(out, "  watch it:                     {tidings} issue status {number}")?;
    writeln!(
        out,
        "  what happened (another shell): {tidings} stats {number}; {tidings} report {number} --out report.html"
    )?;
    writeln!(out, "  the weekly queue:             {tidings} queue")?;
    writeln!(out, "  your own issue:               copy {ISSUE} to 123.md, edit it, then {tidings} issue add 123.md")?;
    writeln!(out, "Ctrl-C stops the demo.")?;
    out.flush()?;
    context.store.close().await;
    serving.await.context("the server stopped unexpectedly")??;
    Ok(ExitCode::SUCCESS)
}

/// Writes the sample files that are missing (an edited one is left as it is).
fn write_samples() -> anyhow::Result<()> {
    for (path, content) in SAMPLES {
        let path = Path::new(path);
        if path.exists() {
            continue;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        std::fs::write(path, content).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The demo's link signing key: read from [`KEY_FILE`], or made and saved there (mode 0600).
fn demo_key() -> anyhow::Result<SecretString> {
    if let Ok(text) = std::fs::read_to_string(KEY_FILE) {
        let mode = std::fs::metadata(KEY_FILE)?.permissions().mode() & 0o777;
        if mode & 0o077 == 0 && !text.trim().is_empty() {
            return Ok(SecretString::from(text.trim().to_owned()));
        }
    }
    let key = format!("1:{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>());
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(KEY_FILE)
        .with_context(|| format!("cannot write {KEY_FILE}"))?;
    writeln!(file, "{key}")?;
    Ok(SecretString::from(key))
}
