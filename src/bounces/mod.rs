//! What comes back after the relay said 250: the one parse, match and classify step behind every way a report
//! arrives (the SMTP/LMTP listener, `bounce ingest` on standard input, the IMAP mailbox).
//!
//! [`Pipeline::prepare`] turns one raw message and its envelope recipients into a [`NewReport`]: `reports` parses
//! and classifies it, a signed return path (or, failing that, the signed trace header of the original, then
//! its Message-ID) says which delivery it is about, and the classification decides the effect. The store then
//! keeps it once and applies it in the same transaction ([`Pipeline::apply`]), after which the guardrails may
//! pause the issue. Nothing here logs an address or a token.
//!
//! Files: `mod.rs` the pipeline, `intake.rs` the group commit of the listener, `listener.rs` the SMTP/LMTP
//! server, `imap/` the poller of the IMAP mailbox.

mod imap;
mod intake;
mod listener;

use std::fmt::Write as _;

use anyhow::Context;
use jiff::Timestamp;

pub use imap::{ImapPoller, PollReport};
pub use intake::Intake;
pub use listener::{BounceListener, ListenerLimits};

use crate::configuration::{ConfigError, Settings};
use crate::domain::{BounceAddress, LinkKeys, ReturnPathFor, read_trace, sha256_hex};
use crate::reports::{self, BounceKind, Report, ReportForm};
use crate::store::{AppliedReport, Effect, NewReport, ReportTarget, ScoreRule, Store};

/// Where a report came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Smtp,
    Lmtp,
    Ingest,
    Imap,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Lmtp => "lmtp",
            Self::Ingest => "ingest",
            Self::Imap => "imap",
        }
    }
}

/// The guardrails of a sending issue, from `[bounces]`.
#[derive(Debug, Clone, Copy)]
pub struct Guardrails {
    pub max_complaint_rate: f64,
    pub max_bounce_rate: f64,
    pub min_deliveries: u32,
}

/// The checked `[bounces]` settings and the keys that verify return paths.
#[derive(Clone)]
pub struct Pipeline {
    keys: LinkKeys,
    /// `None` only for a pipeline built for the webhooks alone ([`Pipeline::for_webhooks`]): no return path
    /// is then ours, and reports are matched by trace header or Message-ID.
    bounce: Option<BounceAddress>,
    complaint_address: Option<String>,
    rule: ScoreRule,
    guardrails: Guardrails,
    keep_raw_bytes: usize,
    max_message_bytes: usize,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("bounce", &self.bounce).finish_non_exhaustive()
    }
}

/// What the effect of each kind is: one row per kind, the policy in one place.
pub const EFFECTS: [(BounceKind, Effect); 8] = [
    (BounceKind::Hard, Effect::Suppress),
    (BounceKind::Soft, Effect::Score),
    (BounceKind::Policy, Effect::Policy),
    (BounceKind::Complaint, Effect::Complaint),
    (BounceKind::Delivered, Effect::ResetScore),
    (BounceKind::Delayed, Effect::Nothing),
    (BounceKind::AutoReply, Effect::Nothing),
    (BounceKind::Unclassified, Effect::Nothing),
];

pub(crate) fn effect_of(kind: BounceKind) -> Effect {
    EFFECTS.iter().find(|(k, _)| *k == kind).map_or(Effect::Nothing, |(_, effect)| *effect)
}

/// Which outcome of a report with several recipients decides: the most serious for the subscriber.
fn severity(kind: BounceKind) -> u8 {
    match kind {
        BounceKind::Complaint => 7,
        BounceKind::Hard => 6,
        BounceKind::Soft => 5,
        BounceKind::Policy => 4,
        BounceKind::Delivered => 3,
        BounceKind::Delayed => 2,
        BounceKind::AutoReply => 1,
        BounceKind::Unclassified => 0,
    }
}

impl Pipeline {
    /// The pipeline of `[bounces]`; `None` when no bounce address is configured.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let Some(bounce) = settings.bounce_address()? else { return Ok(None) };
        Self::build(settings, Some(bounce)).map(Some)
    }

    /// The pipeline the webhooks feed: the one of `[bounces]` when a bounce address is set, else one built from
    /// the link keys and the `[bounces]` rules alone (a hosted relay's users may have no bounce domain).
    pub fn for_webhooks(settings: &Settings) -> Result<Self, ConfigError> {
        Self::build(settings, settings.bounce_address()?)
    }

    fn build(settings: &Settings, bounce: Option<BounceAddress>) -> Result<Self, ConfigError> {
        let b = &settings.bounces;
        let complaint_address = match b.complaint_address.trim() {
            "" => None,
            address if address.contains('@') => Some(address.to_ascii_lowercase()),
            address => {
                return Err(ConfigError::new(format!("bounces.complaint_address: `{address}` is not an address")));
            }
        };
        for (key, rate) in [("max_complaint_rate", b.max_complaint_rate), ("max_bounce_rate", b.max_bounce_rate)] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(format!("bounces.{key}: {rate} is not a share between 0 and 1")));
            }
        }
        if b.soft_threshold.is_nan() || b.soft_threshold < 1.0 {
            return Err(ConfigError::new("bounces.soft_threshold: must be at least 1"));
        }
        Ok(Self {
            keys: settings.link_keys()?,
            bounce,
            complaint_address,
            rule: ScoreRule { threshold: b.soft_threshold, window_ms: b.soft_window.as_millis() as i64 },
            guardrails: Guardrails {
                max_complaint_rate: b.max_complaint_rate,
                max_bounce_rate: b.max_bounce_rate,
                min_deliveries: b.min_deliveries,
            },
            keep_raw_bytes: b.keep_raw_bytes,
            max_message_bytes: b.max_message_bytes,
        })
    }

    /// The keys that verify trace values.
    pub(crate) fn keys(&self) -> &LinkKeys {
        &self.keys
    }

    /// Bytes of a report's raw text that are stored.
    pub(crate) fn keep_raw_bytes(&self) -> usize {
        self.keep_raw_bytes
    }

    /// `text` with every address removed but the bounce domain's.
    pub(crate) fn scrub(&self, text: &str) -> String {
        reports::scrub_addresses(text, |address| self.is_ours(address))
    }

    /// The largest message taken, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    /// Whether the listener takes mail for `recipient`: a valid signed return path or the complaint address.
    pub fn accepts_recipient(&self, recipient: &str) -> bool {
        let recipient = recipient.trim().trim_start_matches('<').trim_end_matches('>');
        self.bounce.as_ref().is_some_and(|bounce| bounce.read(&self.keys, recipient).is_ok())
            || self.complaint_address.as_deref().is_some_and(|c| recipient.eq_ignore_ascii_case(c))
    }

    /// Parses, matches and classifies one raw message. Never fails: what cannot be parsed is kept as
    /// `unrecognised` so that nothing is lost and it is counted.
    pub fn prepare(&self, raw: &[u8], recipients: &[String], source: Source) -> NewReport {
        let fingerprint = sha256_hex(&[raw]);
        let (report, error) = match reports::read_report(raw) {
            Ok(report) => (Some(report), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let target = self.target(report.as_ref(), recipients);
        let outcome = report
            .as_ref()
            .and_then(|r| r.recipients.iter().max_by_key(|o| severity(o.kind)))
            .map(|o| (o.kind, o.status.clone().unwrap_or_default(), o.reason.clone(), o.diagnostic.clone()));
        let (kind, status_code, mut reason, diagnostic) =
            outcome.unwrap_or((BounceKind::Unclassified, String::new(), String::new(), None));
        if let Some(error) = error {
            reason = format!("not parsed: {error}");
        } else if reason.is_empty() {
            reason = "no recipient outcome in the report".to_owned();
        }
        if let Some(diagnostic) = diagnostic {
            let _ = write!(reason, " ({diagnostic})");
        }
        let keep = |address: &str| self.is_ours(address);
        let cut = raw.len().min(self.keep_raw_bytes);
        NewReport {
            source: source.as_str().to_owned(),
            fingerprint,
            form: report.as_ref().map_or(ReportForm::Unrecognised, |r| r.form).as_str().to_owned(),
            kind: kind.as_str().to_owned(),
            effect: effect_of(kind),
            target,
            status_code,
            reason: reports::scrub_addresses(&reason, keep),
            subject: report.as_ref().map(|r| reports::scrub_addresses(&r.subject, keep)).unwrap_or_default(),
            raw: reports::scrub_addresses(&String::from_utf8_lossy(&raw[..cut]), keep),
            raw_bytes: raw.len() as i64,
        }
    }

    /// Stores and applies prepared reports in one transaction, then checks the guardrails of the issues they
    /// touched.
    pub async fn apply(
        &self,
        store: &Store,
        reports: &[NewReport],
        now: Timestamp,
    ) -> anyhow::Result<Vec<AppliedReport>> {
        let applied = store.apply_reports(reports, self.rule, now).await.context("cannot store the reports")?;
        let mut checked = Vec::new();
        for (report, result) in reports.iter().zip(&applied) {
            if result.duplicate {
                continue;
            }
            tracing::info!(report = result.report_id, kind = %report.kind, issue = ?result.issue_id, "report applied: {}", result.effect);
            if report.effect == Effect::Policy {
                tracing::warn!(
                    report = result.report_id,
                    issue = ?result.issue_id,
                    status = %report.status_code,
                    "a receiving server refused a message for policy or reputation reasons; nobody is suppressed: \
                     check `tidings bounce list --kind policy`"
                );
            }
            let Some(issue_id) = result.issue_id else { continue };
            // Only a sending issue can be paused: the rates (a pass over the issue's deliveries) are read only
            // then, so reports about issues sent long ago cost no scan of them.
            if result.issue_sending
                && matches!(report.effect, Effect::Suppress | Effect::Complaint)
                && !checked.contains(&issue_id)
            {
                checked.push(issue_id);
                if let Err(e) = self.guard(store, issue_id, now).await {
                    tracing::error!(issue = issue_id, error = format!("{e:#}"), "cannot check the issue's guardrails");
                }
            }
        }
        Ok(applied)
    }

    /// Pauses a sending issue whose complaint or hard-bounce rate passed its threshold.
    async fn guard(&self, store: &Store, issue_id: i64, now: Timestamp) -> anyhow::Result<()> {
        let rates = store.issue_report_rates(issue_id).await?;
        if !rates.sending || rates.attempted < i64::from(self.guardrails.min_deliveries) {
            return Ok(());
        }
        let complaint_rate = rates.complaints as f64 / rates.accepted.max(1) as f64;
        let bounce_rate = rates.bounced as f64 / rates.attempted.max(1) as f64;
        let reason = if complaint_rate > self.guardrails.max_complaint_rate {
            format!(
                "the complaint rate reached {:.2}% ({} of {} delivered), above bounces.max_complaint_rate {:.2}%: \
                 check the content and how these people subscribed before `issue resume`",
                complaint_rate * 100.0,
                rates.complaints,
                rates.accepted,
                self.guardrails.max_complaint_rate * 100.0
            )
        } else if bounce_rate > self.guardrails.max_bounce_rate {
            format!(
                "the hard-bounce rate reached {:.1}% ({} of {} sent), above bounces.max_bounce_rate {:.1}%: the \
                 list may hold old or bought addresses; clean it before `issue resume`",
                bounce_rate * 100.0,
                rates.bounced,
                rates.attempted,
                self.guardrails.max_bounce_rate * 100.0
            )
        } else {
            return Ok(());
        };
        if store.pause_issue(issue_id, &reason, now).await? {
            tracing::warn!(issue = issue_id, "issue paused by a guardrail: {reason}");
        }
        Ok(())
    }

    /// What a report is about: the envelope's signed return path, else the original's signed trace header,
    /// else the original's Message-ID. A forged or altered token is no key at all.
    fn target(&self, report: Option<&Report>, recipients: &[String]) -> ReportTarget {
        if let Some(what) = recipients.iter().find_map(|r| self.read_return_path(r)) {
            return ReportTarget::Signed { what, matched_by: "return-path" };
        }
        let Some(report) = report else { return ReportTarget::Unmatched };
        if let Some(what) = report.trace_refs.iter().find_map(|t| read_trace(&self.keys, t).ok()) {
            return ReportTarget::Signed { what, matched_by: "trace-header" };
        }
        // A return path quoted in the report (some MTAs name the original envelope sender).
        if let Some(what) = report.original_recipients.iter().find_map(|r| self.read_return_path(r)) {
            return ReportTarget::Signed { what, matched_by: "return-path" };
        }
        if !report.original_message_ids.is_empty() {
            return ReportTarget::MessageIds(report.original_message_ids.clone());
        }
        ReportTarget::Unmatched
    }

    fn read_return_path(&self, address: &str) -> Option<ReturnPathFor> {
        self.bounce.as_ref()?.read(&self.keys, address).ok()
    }

    /// Addresses that are ours (the bounce domain): kept in stored reports; every other address is removed.
    fn is_ours(&self, address: &str) -> bool {
        let Some(bounce) = &self.bounce else { return false };
        address.rsplit_once('@').is_some_and(|(_, domain)| domain.eq_ignore_ascii_case(bounce.domain()))
    }
}

/// The recipients an MTA's pipe or a mailbox says the message was for, from the headers that carry the
/// envelope recipient, for `bounce ingest` and IMAP where there is no SMTP envelope.
pub fn header_recipients(raw: &[u8]) -> Vec<String> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n").or_else(|| raw.windows(2).position(|w| w == b"\n\n"));
    let head = String::from_utf8_lossy(&raw[..head_end.unwrap_or(raw.len()).min(256 * 1024)]);
    let mut found = Vec::new();
    for line in head.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let name = name.trim().to_ascii_lowercase();
        if matches!(name.as_str(), "delivered-to" | "x-original-to" | "envelope-to" | "x-envelope-to" | "to") {
            for part in value.split(',') {
                let part = part.trim();
                let address = match (part.find('<'), part.rfind('>')) {
                    (Some(start), Some(end)) if start < end => &part[start + 1..end],
                    _ => part,
                };
                if address.contains('@') && found.len() < 20 {
                    found.push(address.to_owned());
                }
            }
        }
    }
    found
}
