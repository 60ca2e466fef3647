//! `tidings doctor`: before a send, what Gmail, Yahoo and Outlook.com will check, each check answered with
//! ok, warning or failure, what is wrong and how to fix it.
//!
//! Three groups: the sender's DNS (`dns_checks.rs`, through the resolver in `dns.rs` and the record readers in
//! `records.rs`), the relay (`relay.rs`: one connection opened as sending would, no message sent), and the
//! settings behind one-click unsubscribe and the footer (`settings_checks.rs`). This file holds the check's
//! shape, runs the groups and prints the result for people or as JSON. The exit status is 1 when any check
//! failed; warnings never fail. It opens no database and changes nothing anywhere.

mod dns;
mod dns_checks;
mod records;
mod relay;
mod settings_checks;

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::configuration::Settings;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth fixing, but receivers still take the mail; never fails the run.
    Warning,
    /// Receivers will refuse or junk the mail, or Tidings cannot send it.
    Failure,
}

/// The part of the set-up a check looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Dns,
    Relay,
    Settings,
}

/// One check's answer. `id` is stable, for scripts; `message` says what was found, `fix` what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub group: Group,
    pub status: Status,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(id: &'static str, group: Group, message: impl Into<String>) -> Self {
        Self { id, group, status: Status::Ok, message: message.into(), fix: None }
    }

    pub(crate) fn warning(id: &'static str, group: Group, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { id, group, status: Status::Warning, message: message.into(), fix: Some(fix.into()) }
    }

    pub(crate) fn failure(id: &'static str, group: Group, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Self { id, group, status: Status::Failure, message: message.into(), fix: Some(fix.into()) }
    }
}

/// Every check's answer, in the order they ran.
#[derive(Debug, Serialize)]
pub struct Report {
    /// True when no check failed.
    pub ok: bool,
    pub failures: usize,
    pub warnings: usize,
    pub checks: Vec<Check>,
}

/// Runs every check against the configured DNS server and relay.
pub async fn diagnose(settings: &Settings) -> anyhow::Result<Report> {
    let mut checks = Vec::new();
    let dns = dns::Dns::new(&settings.doctor)?;
    dns_checks::run(settings, &dns, &mut checks).await;
    relay::run(settings, &mut checks).await;
    settings_checks::run(settings, &mut checks);
    let count = |status| checks.iter().filter(|c| c.status == status).count();
    let (failures, warnings) = (count(Status::Failure), count(Status::Warning));
    Ok(Report { ok: failures == 0, failures, warnings, checks })
}

/// `tidings doctor [--json]`: prints the report; exit status 1 when a check failed.
pub async fn run(settings: &Settings, json: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let report = diagnose(settings).await?;
    if json {
        serde_json::to_writer_pretty(&mut *out, &report)?;
        writeln!(out)?;
    } else {
        print(&report, out)?;
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn print(report: &Report, out: &mut dyn Write) -> std::io::Result<()> {
    for (group, title) in [(Group::Dns, "DNS"), (Group::Relay, "Relay"), (Group::Settings, "Settings")] {
        writeln!(out, "{title}")?;
        for check in report.checks.iter().filter(|c| c.group == group) {
            let status = match check.status {
                Status::Ok => "ok",
                Status::Warning => "warning",
                Status::Failure => "FAILURE",
            };
            writeln!(out, "  {status:<8} {:<15} {}", check.id, check.message)?;
            if let Some(fix) = &check.fix {
                writeln!(out, "  {:<8} {:<15} fix: {fix}", "", "")?;
            }
        }
    }
    let verdict = match (report.failures, report.warnings) {
        (0, 0) => "every check passed".to_owned(),
        (0, w) => format!("no failure, {w} warning(s)"),
        (f, w) => {
            format!("{f} failure(s), {w} warning(s): receivers will refuse or junk this mail until they are fixed")
        }
    };
    writeln!(out, "\n{verdict}")
}
