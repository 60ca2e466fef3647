//! Reports that come back after sending (bounces, complaints, auto-replies): stored once and applied in the
//! same transaction, so a sender that retries after a lost reply changes nothing twice.
//!
//! The caller (`bounces`) has parsed and classified each report and says what it may change (`Effect`); this
//! file finds the delivery it is about, applies the effect to the delivery, the subscription, the suppression
//! list and the soft-bounce score, and records what it did. A report whose subscriber was erased, or that names
//! a subscriber of another list than its token, changes nothing.

use jiff::Timestamp;
use serde::Serialize;

use super::Store;
use crate::clock::to_millis;
use crate::domain::{ReturnPathFor, SubscriberEmail};

/// What a report may change, decided by the classification table (`reports::classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// A hard bounce: the delivery bounced, the address is suppressed at once.
    Suppress,
    /// A soft bounce: the delivery failed, the address's score rises; at the threshold it is suppressed.
    Score,
    /// A policy or reputation refusal: the delivery failed, nobody is suppressed; the admin is told.
    Policy,
    /// A complaint: the person is unsubscribed from the list (`complained`) and the address suppressed.
    Complaint,
    /// A report that a message was delivered: the soft-bounce score starts again from 0.
    ResetScore,
    /// Counted only (auto-replies, delayed notices, what could not be classified).
    Nothing,
}

/// How a report names what it is about, best key first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    /// A verified return path or trace header.
    Signed { what: ReturnPathFor, matched_by: &'static str },
    /// The original message's Message-IDs, looked up among the deliveries.
    MessageIds(Vec<String>),
    /// Nothing that maps back: stored and counted as unmatched.
    Unmatched,
}

/// One report to store and apply. `raw` is already capped and scrubbed of other people's addresses.
#[derive(Debug, Clone)]
pub struct NewReport {
    pub source: String,
    pub fingerprint: String,
    pub form: String,
    pub kind: String,
    pub effect: Effect,
    pub target: ReportTarget,
    pub status_code: String,
    pub reason: String,
    pub subject: String,
    pub raw: String,
    pub raw_bytes: i64,
}

/// The soft-bounce rule, from `[bounces]`.
#[derive(Debug, Clone, Copy)]
pub struct ScoreRule {
    pub threshold: f64,
    /// Milliseconds without a soft bounce after which the score starts again from 0.
    pub window_ms: i64,
}

/// What storing and applying one report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedReport {
    pub report_id: i64,
    /// The same report (fingerprint) was stored before: nothing changed now.
    pub duplicate: bool,
    pub issue_id: Option<i64>,
    /// A return path, trace header or Message-ID named one of our messages (even one since erased).
    pub matched: bool,
    /// The issue was still sending when the report was applied: only then can a guardrail pause it.
    pub issue_sending: bool,
    pub effect: String,
}

/// A stored report, as `bounce list` and `bounce show` print it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReportRow {
    pub id: i64,
    pub received_at: i64,
    pub source: String,
    pub form: String,
    pub kind: String,
    pub matched_by: Option<String>,
    pub issue_number: Option<i64>,
    pub list: Option<String>,
    pub subscriber_email: Option<String>,
    pub is_test: bool,
    pub status_code: String,
    pub reason: String,
    pub effect: String,
    pub subject: String,
    pub raw_bytes: i64,
}

/// A hard bounce's effects beyond the delivery, the same whether the relay refused the address during the send
/// (`recording.rs`) or a report said so later (here): every subscription of the address that could still receive
/// mail becomes `bounced` ($1 subscriber, $2 time)...
pub(super) const BOUNCE_SUBSCRIPTIONS: &str = "UPDATE subscriptions SET status = 'bounced', updated_at = $2 \
     WHERE subscriber_id = $1 AND status IN ('active', 'pending')";
/// ... the address is suppressed ($1 hash, $2 reason, $3 detail, $4 time; an existing entry keeps its reason) ...
pub(super) const SUPPRESS: &str = "INSERT INTO suppressions (email_hash, reason, detail, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (email_hash) DO NOTHING";
/// ... and the event is recorded ($1 kind, $2 list, $3 issue, $4 subscriber, $5 delivery, $6 detail, $7 time).
pub(super) const EVENT: &str = "INSERT INTO events (kind, list_id, issue_id, subscriber_id, delivery_id, detail, \
     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// The issue and subscriber ids an issue's Message-ID (`<issue.subscriber.suffix@domain>`) names.
fn ids_in_message_id(message_id: &str) -> Option<(i64, i64)> {
    let mut parts = message_id.trim().trim_start_matches('<').splitn(3, '.');
    let issue = parts.next()?.parse().ok()?;
    let subscriber = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((issue, subscriber))
}

/// The delivery a report is about, found in the database.
#[derive(Debug, Default)]
struct Found {
    delivery_id: Option<i64>,
    delivery_status: Option<String>,
    /// A report already changed this delivery: a second soft bounce for it does not count again.
    reported: bool,
    list_id: Option<i64>,
    issue_id: Option<i64>,
    subscriber_id: Option<i64>,
    email: Option<String>,
    /// A test send, a confirmation email or a notice: never counted in an issue's figures.
    is_test: bool,
    /// The issue's status is `sending`.
    issue_sending: bool,
}

impl Store {
    /// Stores and applies a batch of reports in one transaction (the listener's group commit). A report seen
    /// before (same fingerprint) is not applied again.
    pub async fn apply_reports(
        &self,
        reports: &[NewReport],
        rule: ScoreRule,
        now: Timestamp,
    ) -> anyhow::Result<Vec<AppliedReport>> {
        let now = to_millis(now);
        let mut applied = Vec::with_capacity(reports.len());
        match self {
            Store::Sqlite(pool) => {
                let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
                for report in reports {
                    applied.push(on_sqlite::apply_one(&mut tx, report, rule, now).await?);
                }
                tx.commit().await?;
            }
            Store::Postgres(pool) => {
                let mut tx = pool.begin_with(crate::store::write_begin(pool)).await?;
                for report in reports {
                    applied.push(on_postgres::apply_one(&mut tx, report, rule, now).await?);
                }
                tx.commit().await?;
            }
        }
        Ok(applied)
    }
}

/// The statements of one report, compiled once per backend (the same text on both).
macro_rules! report_statements {
    ($module:ident, $db:ty) => {
        mod $module {
            use super::*;

            type Tx = sqlx::Transaction<'static, $db>;

            pub(super) async fn apply_one(
                tx: &mut Tx,
                report: &NewReport,
                rule: ScoreRule,
                now: i64,
            ) -> anyhow::Result<AppliedReport> {
                let inserted: Option<(i64,)> = sqlx::query_as(
                    "INSERT INTO bounce_reports (received_at, source, fingerprint, form, kind, status_code, reason, \
                     subject, raw, raw_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                )
                .bind(now)
                .bind(&report.source)
                .bind(&report.fingerprint)
                .bind(&report.form)
                .bind(&report.kind)
                .bind(&report.status_code)
                .bind(&report.reason)
                .bind(&report.subject)
                .bind(&report.raw)
                .bind(report.raw_bytes)
                .fetch_optional(&mut **tx)
                .await?;
                let Some((report_id,)) = inserted else {
                    let (report_id, issue_id, matched_by): (i64, Option<i64>, Option<String>) =
                        sqlx::query_as("SELECT id, issue_id, matched_by FROM bounce_reports WHERE fingerprint = $1")
                            .bind(&report.fingerprint)
                            .fetch_one(&mut **tx)
                            .await?;
                    let effect = "nothing: the same report was applied before".to_owned();
                    let matched = matched_by.is_some();
                    return Ok(AppliedReport { report_id, duplicate: true, issue_id, matched, issue_sending: false, effect });
                };

                let (found, matched_by) = match &report.target {
                    ReportTarget::Signed { what, matched_by } => (find_signed(tx, *what).await?, Some(*matched_by)),
                    ReportTarget::MessageIds(ids) => {
                        let found = find_by_message_id(tx, ids).await?;
                        let matched_by = found.is_some().then_some("message-id");
                        (found, matched_by)
                    }
                    ReportTarget::Unmatched => (None, None),
                };
                let effect = match &found {
                    None if matched_by.is_some() => "nothing: what it names is no longer in the database".to_owned(),
                    None => "nothing: it names no message of ours".to_owned(),
                    Some(found) => apply_effect(tx, report, found, rule, now).await?,
                };
                let found = found.unwrap_or_default();
                sqlx::query(
                    "UPDATE bounce_reports SET matched_by = $2, list_id = $3, issue_id = $4, subscriber_id = $5, \
                     delivery_id = $6, is_test = $7, effect = $8 WHERE id = $1",
                )
                .bind(report_id)
                .bind(matched_by)
                .bind(found.list_id)
                .bind(found.issue_id)
                .bind(found.subscriber_id)
                .bind(found.delivery_id)
                .bind(found.is_test)
                .bind(&effect)
                .execute(&mut **tx)
                .await?;
                let matched = matched_by.is_some();
                Ok(AppliedReport {
                    report_id,
                    duplicate: false,
                    issue_id: found.issue_id,
                    matched,
                    issue_sending: found.issue_sending,
                    effect,
                })
            }

            /// The delivery (or subscription) a verified return path names; `None` when it is gone (erased).
            async fn find_signed(tx: &mut Tx, what: ReturnPathFor) -> anyhow::Result<Option<Found>> {
                Ok(match what {
                    ReturnPathFor::Delivery { list_id, subscriber_id, issue_id } => {
                        // The issue must be of the token's list: a token only ever names its own list's people.
                        let row: Option<(i64, String, Option<i64>, Option<String>, String)> = sqlx::query_as(
                            "SELECT d.id, d.status, d.reported_at, s.email, i.status FROM deliveries d \
                             JOIN issues i ON i.id = d.issue_id JOIN subscribers s ON s.id = d.subscriber_id \
                             WHERE d.issue_id = $1 AND d.subscriber_id = $2 AND d.is_test = false AND i.list_id = $3",
                        )
                        .bind(issue_id)
                        .bind(subscriber_id)
                        .bind(list_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                        row.map(|(delivery_id, status, reported, email, issue_status)| Found {
                            delivery_id: Some(delivery_id),
                            delivery_status: Some(status),
                            reported: reported.is_some(),
                            list_id: Some(list_id),
                            issue_id: Some(issue_id),
                            subscriber_id: Some(subscriber_id),
                            email,
                            is_test: false,
                            issue_sending: issue_status == "sending",
                        })
                    }
                    ReturnPathFor::TestSend { list_id, issue_id } => {
                        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM issues WHERE id = $1 AND list_id = $2")
                            .bind(issue_id)
                            .bind(list_id)
                            .fetch_optional(&mut **tx)
                            .await?;
                        row.map(|_| Found { list_id: Some(list_id), issue_id: Some(issue_id), is_test: true, ..Found::default() })
                    }
                    ReturnPathFor::Confirmation { list_id, subscriber_id } => {
                        let row: Option<(String,)> = sqlx::query_as(
                            "SELECT s.email FROM subscriptions p JOIN subscribers s ON s.id = p.subscriber_id \
                             WHERE p.list_id = $1 AND p.subscriber_id = $2",
                        )
                        .bind(list_id)
                        .bind(subscriber_id)
                        .fetch_optional(&mut **tx)
                        .await?;
                        row.map(|(email,)| Found {
                            list_id: Some(list_id),
                            subscriber_id: Some(subscriber_id),
                            email: Some(email),
                            is_test: true,
                            ..Found::default()
                        })
                    }
                    ReturnPathFor::Notice => Some(Found { is_test: true, ..Found::default() }),
                })
            }

            /// The delivery of the first of `ids` (the original's Message-IDs) that is one of ours. An issue's
            /// Message-ID is `<issue.subscriber.suffix>`, so the lookup goes through the (issue, subscriber) index
            /// and then compares the whole ID; anything else is no Message-ID of ours and costs no query.
            async fn find_by_message_id(tx: &mut Tx, ids: &[String]) -> anyhow::Result<Option<Found>> {
                for id in ids.iter().take(5) {
                    let Some((issue_id, subscriber_id)) = ids_in_message_id(id) else { continue };
                    let row: Option<(i64, String, Option<i64>, Option<String>, i64, String)> = sqlx::query_as(
                        "SELECT d.id, d.status, d.reported_at, s.email, i.list_id, i.status FROM deliveries d \
                         JOIN issues i ON i.id = d.issue_id LEFT JOIN subscribers s ON s.id = d.subscriber_id \
                         WHERE d.issue_id = $1 AND d.subscriber_id = $2 AND d.is_test = false AND d.message_id = $3",
                    )
                    .bind(issue_id)
                    .bind(subscriber_id)
                    .bind(id)
                    .fetch_optional(&mut **tx)
                    .await?;
                    if let Some((delivery_id, status, reported, email, list_id, issue_status)) = row {
                        return Ok(Some(Found {
                            delivery_id: Some(delivery_id),
                            delivery_status: Some(status),
                            reported: reported.is_some(),
                            list_id: Some(list_id),
                            issue_id: Some(issue_id),
                            subscriber_id: Some(subscriber_id),
                            email,
                            is_test: false,
                            issue_sending: issue_status == "sending",
                        }));
                    }
                }
                Ok(None)
            }

            /// Applies the report's effect; returns what it did, in words for `bounce list`.
            async fn apply_effect(
                tx: &mut Tx,
                report: &NewReport,
                found: &Found,
                rule: ScoreRule,
                now: i64,
            ) -> anyhow::Result<String> {
                let person = match (found.subscriber_id, found.email.as_deref()) {
                    (Some(id), Some(email)) => Some((id, email)),
                    _ => None,
                };
                // A test send or a notice changes nobody's standing; a confirmation email's bounce does.
                let Some((subscriber_id, email)) = person else {
                    return Ok("nothing: a test send or a notice".to_owned());
                };
                Ok(match report.effect {
                    Effect::Suppress => {
                        settle_delivery(tx, found, "bounced", &report.reason, now).await?;
                        suppress(tx, found, subscriber_id, email, "bounced", &report.reason, now).await?;
                        "suppressed: the address bounced".to_owned()
                    }
                    Effect::Score => {
                        if found.reported {
                            return Ok("nothing: this delivery's bounce was counted before".to_owned());
                        }
                        settle_delivery(tx, found, "failed", &report.reason, now).await?;
                        let (score, at): (f64, Option<i64>) =
                            sqlx::query_as("SELECT bounce_score, bounce_score_at FROM subscribers WHERE id = $1")
                                .bind(subscriber_id)
                                .fetch_one(&mut **tx)
                                .await?;
                        let fresh = at.is_none_or(|at| now.saturating_sub(at) > rule.window_ms);
                        let score = if fresh { 1.0 } else { score + 1.0 };
                        sqlx::query("UPDATE subscribers SET bounce_score = $2, bounce_score_at = $3 WHERE id = $1")
                            .bind(subscriber_id)
                            .bind(score)
                            .bind(now)
                            .execute(&mut **tx)
                            .await?;
                        if score >= rule.threshold {
                            let detail = format!("{score} soft bounces: {}", report.reason);
                            suppress(tx, found, subscriber_id, email, "bounced", &detail, now).await?;
                            format!("suppressed: soft-bounce score {score} reached {}", rule.threshold)
                        } else {
                            format!("soft-bounce score {score} of {}", rule.threshold)
                        }
                    }
                    Effect::Policy => {
                        settle_delivery(tx, found, "failed", &report.reason, now).await?;
                        "recorded against the issue and the relay; nobody suppressed".to_owned()
                    }
                    Effect::Complaint => {
                        if let Some(list_id) = found.list_id {
                            sqlx::query(
                                "UPDATE subscriptions SET status = 'complained', unsubscribed_at = $3, updated_at = $3 \
                                 WHERE list_id = $1 AND subscriber_id = $2 AND status <> 'complained'",
                            )
                            .bind(list_id)
                            .bind(subscriber_id)
                            .bind(now)
                            .execute(&mut **tx)
                            .await?;
                        }
                        add_suppression(tx, email, "complained", &report.reason, now).await?;
                        event(tx, "complaint", found, subscriber_id, &report.reason, now).await?;
                        "unsubscribed and suppressed: a complaint".to_owned()
                    }
                    Effect::ResetScore => {
                        sqlx::query("UPDATE subscribers SET bounce_score = 0, bounce_score_at = NULL WHERE id = $1")
                            .bind(subscriber_id)
                            .execute(&mut **tx)
                            .await?;
                        "soft-bounce score reset: delivered".to_owned()
                    }
                    Effect::Nothing => "nothing (counted)".to_owned(),
                })
            }

            /// A delivery the relay had accepted is, after all, `bounced` or `failed`.
            async fn settle_delivery(tx: &mut Tx, found: &Found, status: &str, reason: &str, now: i64) -> anyhow::Result<()> {
                let Some(delivery_id) = found.delivery_id else { return Ok(()) };
                if !matches!(found.delivery_status.as_deref(), Some("sent" | "ambiguous" | "failed")) {
                    return Ok(());
                }
                sqlx::query(
                    "UPDATE deliveries SET status = $2, last_error = $3, reported_at = $4, updated_at = $4 \
                     WHERE id = $1 AND status IN ('sent', 'ambiguous', 'failed')",
                )
                .bind(delivery_id)
                .bind(status)
                .bind(reason)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// The address bounced: every subscription that could still receive mail becomes `bounced`, the
            /// address is suppressed, and the event is recorded.
            async fn suppress(
                tx: &mut Tx,
                found: &Found,
                subscriber_id: i64,
                email: &str,
                reason: &str,
                detail: &str,
                now: i64,
            ) -> anyhow::Result<()> {
                sqlx::query(BOUNCE_SUBSCRIPTIONS)
                    .bind(subscriber_id)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                add_suppression(tx, email, reason, detail, now).await?;
                event(tx, "bounce", found, subscriber_id, detail, now).await
            }

            async fn add_suppression(tx: &mut Tx, email: &str, reason: &str, detail: &str, now: i64) -> anyhow::Result<()> {
                let Ok(email) = SubscriberEmail::parse(email) else { return Ok(()) };
                sqlx::query(SUPPRESS)
                    .bind(email.suppression_hash())
                    .bind(reason)
                    .bind(detail)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            async fn event(
                tx: &mut Tx,
                kind: &str,
                found: &Found,
                subscriber_id: i64,
                detail: &str,
                now: i64,
            ) -> anyhow::Result<()> {
                sqlx::query(EVENT)
                    .bind(kind)
                    .bind(found.list_id)
                    .bind(found.issue_id)
                    .bind(subscriber_id)
                    .bind(found.delivery_id)
                    .bind(detail)
                    .bind(now)
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }
        }
    };
}

report_statements!(on_sqlite, sqlx::Sqlite);
report_statements!(on_postgres, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::ids_in_message_id;

    #[test]
    fn an_issue_message_id_names_its_issue_and_subscriber_and_nothing_else_does() {
        assert_eq!(ids_in_message_id("<122.4711.k3j2@example.com>"), Some((122, 4711)));
        assert_eq!(ids_in_message_id("<test.122.abc@example.com>"), None);
        assert_eq!(ids_in_message_id("<confirm.9.abc@example.com>"), None);
        assert_eq!(ids_in_message_id("<CAF=x@mail.gmail.com>"), None);
        assert_eq!(ids_in_message_id("<1.2@example.com>"), None);
    }
}
