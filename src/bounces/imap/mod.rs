//! The IMAP mailbox, the third way in for reports: `tidings serve` polls the mailbox of `[bounces.imap]`, runs
//! each message through the one pipeline (`Pipeline::prepare`, then `Pipeline::apply`), and only after its
//! report is committed moves it to `processed_folder` (UID MOVE, or COPY + STORE \Deleted + UID EXPUNGE of that
//! one UID where the server lacks MOVE). A message that could not be parsed or matched stays where it is, or is
//! moved to `unparsed_folder`: nothing is ever deleted.
//!
//! No message is applied twice. A cursor in the database (`imap_cursors`: the highest UID handled under the
//! mailbox's UIDVALIDITY) advances only after a message was stored and moved, so a message left in place is
//! never taken again. A crash between the commit and the move takes it again on the next poll, where the
//! report's fingerprint makes it a duplicate that changes nothing, and it is then moved.
//!
//! [`ImapPoller::poll_once`] is one step (tests call it); [`ImapPoller::run`] repeats it every `poll_interval`,
//! backing off after a network, login or database error, and never stops the daemon. Nothing here logs an
//! address, a token or the password.

mod config;
mod connect;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::TryStreamExt;
use tokio_util::sync::CancellationToken;

use self::config::ImapConfig;
use self::connect::{Connector, Session};
use super::{Pipeline, Source, header_recipients};
use crate::clock::Clock;
use crate::configuration::{ConfigError, Settings};
use crate::reports::ReportForm;
use crate::store::{ImapCursor, Store};

/// What one poll did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// Messages newer than the cursor that this poll looked at.
    pub taken: usize,
    /// Stored, applied and moved to `processed_folder`.
    pub processed: usize,
    /// Not parsed or not matched: left in place, or moved to `unparsed_folder`.
    pub unparsed: usize,
    /// Larger than `[bounces] max_message_bytes`: not read, handled like unparsed messages.
    pub too_large: usize,
    /// Of the processed and unparsed ones, reports stored before (same fingerprint): nothing changed again.
    pub duplicates: usize,
    /// More messages wait than `max_per_poll`: the next poll should follow at once.
    pub more: bool,
}

/// The poller of `[bounces.imap]`.
#[derive(Debug)]
pub struct ImapPoller {
    config: ImapConfig,
    pipeline: Arc<Pipeline>,
    store: Store,
    clock: Clock,
}

impl ImapPoller {
    /// The poller of `[bounces.imap]`, checked; `None` when `host` is empty. Every error names its key.
    /// `pipeline` is `None` when `[bounces] address` is empty, which is an error when `host` is set.
    pub fn from_settings(
        settings: &Settings,
        pipeline: Option<Arc<Pipeline>>,
        store: Store,
        clock: Clock,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(config) = ImapConfig::from_settings(settings)? else { return Ok(None) };
        let Some(pipeline) = pipeline else {
            return Err(ConfigError::new(
                "bounces.imap.host is set but bounces.address is empty: set the bounce address whose reports the \
                 mailbox receives",
            ));
        };
        Ok(Some(Self { config, pipeline, store, clock }))
    }

    /// Polls every `poll_interval` until `shutdown`; after an error waits twice as long each time, up to
    /// `retry_max`. Shutdown is checked between messages: a poll in progress finishes the message it holds
    /// (each command bounded by `timeout`) before the poller stops.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut pause = self.config.poll_interval;
        tracing::info!(
            server = %self.config.connector.server(),
            every = ?pause,
            "polling the IMAP mailbox for bounces and complaints"
        );
        while !shutdown.is_cancelled() {
            let wait = match self.poll(&shutdown).await {
                Ok(report) => {
                    if report.taken > 0 {
                        tracing::info!(
                            processed = report.processed,
                            unparsed = report.unparsed,
                            too_large = report.too_large,
                            duplicates = report.duplicates,
                            "IMAP mailbox polled"
                        );
                    }
                    pause = self.config.poll_interval;
                    if report.more { Duration::ZERO } else { pause }
                }
                Err(e) => {
                    pause = pause.saturating_mul(2).min(self.config.retry_max);
                    tracing::warn!(error = format!("{e:#}"), retry_in = ?pause, "cannot poll the IMAP mailbox");
                    pause
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One poll: logs in, takes the messages after the cursor (at most `max_per_poll`), stores and applies each
    /// one's report, moves it, advances the cursor, and logs out. An error stops at the message it happened
    /// on; the next poll starts again there.
    pub async fn poll_once(&self) -> anyhow::Result<PollReport> {
        self.poll(&CancellationToken::new()).await
    }

    async fn poll(&self, shutdown: &CancellationToken) -> anyhow::Result<PollReport> {
        let mut session = self.config.connector.open().await?;
        let result = self.poll_session(&mut session, shutdown).await;
        // A failed LOGOUT changes nothing: what was done is done.
        let _ = self.config.connector.within(session.logout()).await;
        result
    }

    async fn poll_session(&self, session: &mut Session, shutdown: &CancellationToken) -> anyhow::Result<PollReport> {
        let mut report = PollReport::default();
        let separator = self.separator(session).await?;
        let folder = |name: &str| name.replace('/', &separator);
        let mailbox = folder(&self.config.mailbox);
        let selected = self
            .config
            .connector
            .within(session.select(&mailbox))
            .await?
            .with_context(|| format!("cannot select the mailbox `{}`", self.config.mailbox))?;
        let validity = selected.uid_validity.ok_or_else(|| anyhow!("the IMAP server gave no UIDVALIDITY"))?;
        let account = self.config.connector.account();
        let mut cursor = match self.store.imap_cursor(&account, &self.config.mailbox).await? {
            Some(cursor) if cursor.uid_validity == validity => cursor,
            Some(_) => {
                tracing::info!("the IMAP mailbox's UIDVALIDITY changed: reading it again from the start");
                ImapCursor { uid_validity: validity, last_uid: 0 }
            }
            None => ImapCursor { uid_validity: validity, last_uid: 0 },
        };
        if selected.exists == 0 {
            return Ok(report);
        }
        let waiting = self.waiting(session, cursor.last_uid).await?;
        report.more = waiting.len() > self.config.max_per_poll;
        if waiting.is_empty() {
            return Ok(report);
        }
        let processed = folder(&self.config.processed_folder);
        let unparsed = self.config.unparsed_folder.as_deref().map(folder);
        for name in std::iter::once(&processed).chain(unparsed.as_ref()) {
            self.ensure_folder(session, name).await?;
        }
        let capabilities = self.config.connector.within(session.capabilities()).await??;
        let moves = Mover { can_move: capabilities.has_str("MOVE"), uidplus: capabilities.has_str("UIDPLUS") };

        for &(uid, size) in waiting.iter().take(self.config.max_per_poll) {
            if shutdown.is_cancelled() {
                break;
            }
            report.taken += 1;
            let destination = match self.take(session, uid, size, &mut report).await? {
                Some(true) => Some(processed.as_str()),
                Some(false) | None => unparsed.as_deref(),
            };
            if let Some(destination) = destination {
                moves.apply(&self.config.connector, session, uid, destination).await?;
            }
            cursor.last_uid = uid;
            self.store.set_imap_cursor(&account, &self.config.mailbox, cursor, self.clock.now()).await?;
        }
        Ok(report)
    }

    /// Reads, stores and applies the message `uid`: `Some(true)` when its report was parsed and matched,
    /// `Some(false)` when not, `None` when it was too large to read or is gone.
    async fn take(
        &self,
        session: &mut Session,
        uid: u32,
        size: u32,
        report: &mut PollReport,
    ) -> anyhow::Result<Option<bool>> {
        if size as usize > self.pipeline.max_message_bytes() {
            tracing::warn!(uid, size, "an IMAP message is larger than bounces.max_message_bytes: not read");
            report.too_large += 1;
            return Ok(None);
        }
        let fetched: Vec<_> = self
            .config
            .connector
            .within(async { session.uid_fetch(uid.to_string(), "BODY.PEEK[]").await?.try_collect::<Vec<_>>().await })
            .await?
            .with_context(|| format!("cannot read the IMAP message with UID {uid}"))?;
        let Some(raw) = fetched.iter().find(|f| f.uid == Some(uid)).and_then(|f| f.body()) else {
            tracing::warn!(uid, "an IMAP message disappeared before it was read");
            return Ok(None);
        };
        let prepared = self.pipeline.prepare(raw, &header_recipients(raw), Source::Imap);
        let parsed = prepared.form != ReportForm::Unrecognised.as_str();
        let applied = self.pipeline.apply(&self.store, std::slice::from_ref(&prepared), self.clock.now()).await?;
        let applied = applied.into_iter().next().ok_or_else(|| anyhow!("the store applied no report"))?;
        report.duplicates += usize::from(applied.duplicate);
        let recognised = parsed && applied.matched;
        if recognised {
            report.processed += 1;
        } else {
            report.unparsed += 1;
            tracing::info!(uid, report = applied.report_id, "an IMAP message could not be parsed or matched: kept");
        }
        Ok(Some(recognised))
    }

    /// The UIDs and sizes of the messages after `last_uid`, oldest first.
    async fn waiting(&self, session: &mut Session, last_uid: u32) -> anyhow::Result<Vec<(u32, u32)>> {
        let from = last_uid.saturating_add(1);
        let fetched: Vec<_> = self
            .config
            .connector
            .within(async {
                session.uid_fetch(format!("{from}:*"), "(UID RFC822.SIZE)").await?.try_collect::<Vec<_>>().await
            })
            .await?
            .context("cannot list the IMAP mailbox")?;
        // `N:*` always names the newest message, even one below N: keep only what is after the cursor.
        let mut waiting: Vec<(u32, u32)> = fetched
            .iter()
            .filter_map(|f| Some((f.uid?, f.size.unwrap_or(0))))
            .filter(|(uid, _)| *uid >= from)
            .collect();
        waiting.sort_unstable();
        waiting.dedup_by_key(|(uid, _)| *uid);
        Ok(waiting)
    }

    /// The server's hierarchy separator (`/` in the settings becomes it).
    async fn separator(&self, session: &mut Session) -> anyhow::Result<String> {
        let names: Vec<_> = self
            .config
            .connector
            .within(async { session.list(Some(""), Some("\"\"")).await?.try_collect::<Vec<_>>().await })
            .await?
            .context("cannot ask the IMAP server for its folder separator")?;
        Ok(names.iter().find_map(|n| n.delimiter().map(str::to_owned)).unwrap_or_else(|| "/".to_owned()))
    }

    /// Creates `name` (and its parents, as servers do) when it does not exist.
    async fn ensure_folder(&self, session: &mut Session, name: &str) -> anyhow::Result<()> {
        let pattern = quote(name)?;
        let found: Vec<_> = self
            .config
            .connector
            .within(async { session.list(Some(""), Some(&pattern)).await?.try_collect::<Vec<_>>().await })
            .await?
            .with_context(|| format!("cannot look for the folder `{name}`"))?;
        if found.iter().any(|n| n.name() == name) {
            return Ok(());
        }
        self.config
            .connector
            .within(session.create(name))
            .await?
            .with_context(|| format!("cannot create the folder `{name}`"))?;
        tracing::info!(folder = name, "created an IMAP folder for reports");
        Ok(())
    }
}

/// How a message leaves the mailbox: UID MOVE (RFC 6851) where the server has it; else a copy, the original
/// flagged \Deleted, and, with UIDPLUS (RFC 4315), UID EXPUNGE of that one UID, so no other message flagged
/// by someone else is removed. Without UIDPLUS the flagged original stays until the owner's client expunges.
struct Mover {
    can_move: bool,
    uidplus: bool,
}

impl Mover {
    async fn apply(&self, connector: &Connector, session: &mut Session, uid: u32, folder: &str) -> anyhow::Result<()> {
        let uid_text = uid.to_string();
        let moved = async {
            if self.can_move {
                return session.uid_mv(&uid_text, folder).await;
            }
            session.uid_copy(&uid_text, folder).await?;
            session.uid_store(&uid_text, "+FLAGS.SILENT (\\Deleted)").await?.try_collect::<Vec<_>>().await?;
            if self.uidplus {
                session.uid_expunge(&uid_text).await?.try_collect::<Vec<_>>().await?;
            }
            Ok(())
        };
        connector.within(moved).await?.with_context(|| format!("cannot move the IMAP message with UID {uid}"))
    }
}

/// `name` as an IMAP quoted string, for LIST patterns (which async-imap passes as they are).
fn quote(name: &str) -> anyhow::Result<String> {
    if name.chars().any(|c| c.is_control()) {
        bail!("the folder name `{name}` holds a control character");
    }
    Ok(format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\"")))
}
