//! The relay, as the senders will meet it: reachable, STARTTLS offered and its certificate valid for the host
//! name (for `smtp.tls = "required"` or `"wrapper"`), AUTH accepted when credentials are set.
//!
//! It opens one connection with the senders' own code (`mailer::SmtpSender::probe`: TCP, EHLO, STARTTLS,
//! AUTH, QUIT) and sends no message. The password goes only where sending would send it.

use super::{Check, Group};
use crate::configuration::{Settings, TlsMode, TransportKind};
use crate::mailer::{ProbeStep, SendOutcome, Sender};

const G: Group = Group::Relay;

/// Runs the relay checks, appending `relay`, `relay-tls` and `relay-auth` to `checks`.
pub(crate) async fn run(settings: &Settings, checks: &mut Vec<Check>) {
    if settings.transport.kind == TransportKind::Outbox {
        let message = format!(
            "transport.kind is \"outbox\": messages are written to {} and never sent",
            settings.outbox.dir.display()
        );
        checks.push(Check::warning("relay", G, message, "set transport.kind = \"smtp\" and the [smtp] relay to send"));
        return;
    }
    let smtp = &settings.smtp;
    let relay = format!("{}:{}", smtp.host, smtp.port);
    let mut sender = match crate::startup::senders(settings, 1).map(|mut s| s.pop()) {
        Ok(Some(Sender::Smtp(sender))) => sender,
        Ok(_) => return,
        Err(e) => {
            checks.push(Check::failure(
                "relay",
                G,
                format!("{e:#}"),
                "fix the [smtp] settings (`tidings config check`)",
            ));
            return;
        }
    };
    let (tls_ok, auth_ok) = tls_and_auth_texts(settings, &relay);
    let not_checked = |what: &str| format!("not checked: {what}");
    match sender.probe().await {
        Ok(_) => {
            checks.push(Check::ok("relay", G, format!("{relay} answers EHLO")));
            checks.push(tls_check(settings, Ok(tls_ok)));
            checks.push(Check::ok("relay-auth", G, auth_ok));
        }
        Err(failure) => {
            let reason = explain(&failure.outcome);
            let (reached, tls, auth) = match failure.step {
                ProbeStep::Connect | ProbeStep::Hello => (Err(reason), not_checked("the relay did not answer"), None),
                ProbeStep::Tls => (Ok(()), reason, None),
                ProbeStep::Auth => (Ok(()), tls_ok, Some(reason)),
            };
            checks.push(match reached {
                Ok(()) => Check::ok("relay", G, format!("{relay} answers EHLO")),
                Err(why) => Check::failure(
                    "relay",
                    G,
                    why,
                    format!("check smtp.host and smtp.port ({relay}) and that the relay lets this machine connect"),
                ),
            });
            let tls_reached = failure.step != ProbeStep::Connect && failure.step != ProbeStep::Hello;
            checks.push(match (tls_reached, failure.step) {
                (false, _) => Check::warning("relay-tls", G, tls, "fix the relay check first"),
                (true, ProbeStep::Tls) => tls_check(settings, Err(tls)),
                (true, _) => tls_check(settings, Ok(tls)),
            });
            checks.push(match auth {
                Some(why) => Check::failure(
                    "relay-auth",
                    G,
                    why,
                    "check smtp.username and the password (TIDINGS_SMTP__PASSWORD or smtp.password_file)",
                ),
                None => Check::warning(
                    "relay-auth",
                    G,
                    not_checked("the connection stopped before AUTH"),
                    "fix the checks above first",
                ),
            });
        }
    }
}

/// What a successful TLS step and AUTH step mean with these settings.
fn tls_and_auth_texts(settings: &Settings, relay: &str) -> (String, String) {
    let host = &settings.smtp.host;
    let tls = match settings.smtp.tls {
        TlsMode::Required => format!("{relay} offers STARTTLS and its certificate is valid for {host}"),
        TlsMode::Wrapper => format!("{relay} speaks TLS and its certificate is valid for {host}"),
        TlsMode::None => format!("plaintext to {relay}, a loopback host: a local relay that sends on"),
    };
    let auth = if settings.smtp.username.trim().is_empty() {
        format!("no smtp.username is set; {relay} took the connection without AUTH")
    } else {
        format!("{relay} accepted AUTH for the configured user")
    };
    (tls, auth)
}

fn tls_check(settings: &Settings, result: Result<String, String>) -> Check {
    match result {
        Ok(message) => Check::ok("relay-tls", G, message),
        Err(why) => {
            let fix = match settings.smtp.tls {
                TlsMode::Wrapper => {
                    "use the relay's TLS port (465) and a certificate for smtp.host, or smtp.tls = \"required\" on 587"
                }
                _ => {
                    "enable STARTTLS on the relay with a certificate for smtp.host (or use its TLS port: smtp.tls = \"wrapper\", 465)"
                }
            };
            Check::failure("relay-tls", G, why, fix)
        }
    }
}

/// The outcome's own words (the relay's reply or what went wrong). Printed to the operator, never logged.
fn explain(outcome: &SendOutcome) -> String {
    match outcome {
        SendOutcome::Accepted { reply }
        | SendOutcome::Transient { reply, .. }
        | SendOutcome::Bounce { reply, .. }
        | SendOutcome::Rejected { reply, .. }
        | SendOutcome::Policy { reply, .. } => format!("the relay answered: {reply}"),
        SendOutcome::Unavailable { reason } | SendOutcome::Fatal { reason } | SendOutcome::Ambiguous { reason } => {
            reason.clone()
        }
    }
}
