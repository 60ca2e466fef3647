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
    let reachable = || Check::ok("relay", G, format!("{relay} is reachable and answers"));
    let unchecked = |id, why: &str| Check::warning(id, G, format!("not checked: {why}"), "fix the check above first");
    // Each step that failed: what it means for the three checks.
    let answers = match sender.probe().await {
        Ok(_) => [reachable(), Check::ok("relay-tls", G, tls_ok), Check::ok("relay-auth", G, auth_ok)],
        Err(failure) => {
            let why = explain(&failure.outcome);
            match failure.step {
                ProbeStep::Connect | ProbeStep::Hello => [
                    Check::failure(
                        "relay",
                        G,
                        why,
                        format!("check smtp.host and smtp.port ({relay}) and that the relay lets this machine connect"),
                    ),
                    unchecked("relay-tls", "the relay did not answer"),
                    unchecked("relay-auth", "the relay did not answer"),
                ],
                ProbeStep::Tls => {
                    [reachable(), tls_failure(settings, why), unchecked("relay-auth", "no TLS, so no AUTH was tried")]
                }
                ProbeStep::Auth => [
                    reachable(),
                    Check::ok("relay-tls", G, tls_ok),
                    Check::failure(
                        "relay-auth",
                        G,
                        why,
                        "check smtp.username and the password (TIDINGS_SMTP__PASSWORD or smtp.password_file)",
                    ),
                ],
            }
        }
    };
    checks.extend(answers);
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

fn tls_failure(settings: &Settings, why: String) -> Check {
    let fix = match settings.smtp.tls {
        TlsMode::Wrapper => {
            "use the relay's TLS port (465) with a certificate for smtp.host (a private CA: smtp.ca_file), or \
             smtp.tls = \"required\" on 587"
        }
        _ => {
            "enable STARTTLS on the relay with a certificate for smtp.host (a private CA: smtp.ca_file), or use its \
             TLS port (smtp.tls = \"wrapper\", 465)"
        }
    };
    Check::failure("relay-tls", G, why, fix)
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
