//! What the engine works with: the store, the clock, its settings, the link builder, the sender identity, the
//! transport's senders (one per connection), and a cache of the issues being sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use jiff::SignedDuration;
use lettre::message::Mailbox;

use crate::clock::Clock;
use crate::domain::{BounceAddress, LinkBuilder, LinkKeys, ReturnPathFor, trace_value};
use crate::mailer::{DkimSigner, Sender};
use crate::render::CompiledIssue;
use crate::store::{RateLimits, Store};

/// The `[delivery]` settings the engine needs, checked.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Deliveries claimed per step.
    pub batch_size: u32,
    pub max_attempts: u32,
    pub retry_initial: SignedDuration,
    pub retry_max: SignedDuration,
    pub max_age: SignedDuration,
    pub max_late: SignedDuration,
    pub lease: SignedDuration,
    pub dead_after: SignedDuration,
    pub resend_ambiguous: bool,
    /// The longest an idle daemon sleeps without a timer or a wake-up.
    pub idle_poll: SignedDuration,
    pub limits: RateLimits,
    /// The relay the rate limits and the circuit belong to: `host:port`, or `outbox`.
    pub relay: String,
    /// Whether messages carry the open-tracking pixel.
    pub track_opens: bool,
    /// Where notices of an empty weekly queue go (`admin.email`); `None`: nowhere.
    pub admin_email: Option<Mailbox>,
    /// How long before a slot that notice goes out.
    pub notice_before: SignedDuration,
}

/// Who the mail is from.
#[derive(Debug, Clone)]
pub struct SenderIdentity {
    pub from: Mailbox,
    pub reply_to: Option<Mailbox>,
    /// The domain of the From address: Message-IDs, List-Id and Feedback-ID use it.
    pub domain: String,
    /// `[bounces] address`: when set, every message gets a signed return path and trace header.
    pub bounce: Option<BounceAddress>,
}

impl SenderIdentity {
    /// The signed return path and the trace value of a message about `what`, when `[bounces]` is on.
    pub fn bounce_trace(&self, keys: &LinkKeys, what: ReturnPathFor) -> Option<(String, String)> {
        let bounce = self.bounce.as_ref()?;
        let trace = trace_value(keys, what);
        Some((bounce.with_trace(&trace), trace))
    }
}

/// An issue ready to send, with the headers every copy shares.
pub(crate) struct IssueForSending {
    pub compiled: CompiledIssue,
    pub number: i64,
    pub list_id_header: String,
    pub feedback_id: String,
}

pub struct DeliveryContext {
    pub store: Store,
    pub clock: Clock,
    /// This daemon's id: the owner of its leases.
    pub daemon_id: String,
    pub config: DeliveryConfig,
    pub links: LinkBuilder,
    pub identity: SenderIdentity,
    pub dkim: Option<DkimSigner>,
    /// One sender per connection; a task takes one for the length of a batch.
    pub(crate) senders: Vec<tokio::sync::Mutex<Sender>>,
    issues: Mutex<HashMap<i64, Arc<IssueForSending>>>,
    /// When the heartbeat was last renewed.
    last_beat: Mutex<Option<jiff::Timestamp>>,
}

impl DeliveryContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        clock: Clock,
        daemon_id: String,
        config: DeliveryConfig,
        links: LinkBuilder,
        identity: SenderIdentity,
        dkim: Option<DkimSigner>,
        senders: Vec<Sender>,
    ) -> Self {
        Self {
            store,
            clock,
            daemon_id,
            config,
            links,
            identity,
            dkim,
            senders: senders.into_iter().map(tokio::sync::Mutex::new).collect(),
            issues: Mutex::new(HashMap::new()),
            last_beat: Mutex::new(None),
        }
    }

    /// Renews this daemon's heartbeat when it is due: while it beats, other daemons leave its leases alone.
    pub(crate) async fn heartbeat(&self, now: jiff::Timestamp) {
        let due = self
            .last_beat
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_none_or(|at| now.duration_since(at) >= super::HEARTBEAT);
        if !due {
            return;
        }
        let hostname =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        match self.store.heartbeat(&self.daemon_id, &hostname, std::process::id(), now).await {
            Ok(()) => *self.last_beat.lock().unwrap_or_else(|p| p.into_inner()) = Some(now),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot renew the daemon's heartbeat"),
        }
    }

    /// The issue, from the cache or the store (compiled once per daemon, not per message).
    pub(crate) async fn issue(&self, issue_id: i64) -> anyhow::Result<Arc<IssueForSending>> {
        if let Some(issue) = self.issues.lock().unwrap_or_else(|p| p.into_inner()).get(&issue_id) {
            return Ok(issue.clone());
        }
        let row = self.store.issue_by_id(issue_id).await?.ok_or_else(|| anyhow!("issue {issue_id} is gone"))?;
        let compiled: CompiledIssue = serde_json::from_str(&self.store.issue_compiled(issue_id).await?)
            .with_context(|| format!("the stored rendering of issue {} is unreadable", row.number))?;
        let list = self
            .store
            .lists()
            .await?
            .into_iter()
            .find(|list| list.id == row.list_id)
            .ok_or_else(|| anyhow!("the list of issue {} is gone", row.number))?;
        let domain = &self.identity.domain;
        let issue = Arc::new(IssueForSending {
            compiled,
            number: row.number,
            list_id_header: format!("{} <{}.{domain}>", list.name.replace(['<', '>', '\r', '\n'], ""), list.slug),
            feedback_id: format!("{}:{}:tidings:{domain}", row.number, list.slug),
        });
        self.issues.lock().unwrap_or_else(|p| p.into_inner()).insert(issue_id, issue.clone());
        Ok(issue)
    }

    /// Closes every connection politely.
    pub async fn close(&self) {
        for sender in &self.senders {
            sender.lock().await.close().await;
        }
    }
}
