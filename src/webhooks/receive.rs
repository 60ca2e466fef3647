//! One webhook request from end to end ([`Webhooks::receive`]): the provider's authentication, its events, the
//! replay check of a signed token, then the bounce pipeline; and the answer each outcome gets. Also the set of
//! configured endpoints, built from the table of providers, and the checks `config check` runs on them.

use std::fmt;
use std::sync::Arc;

use axum::http::HeaderMap;

use super::sns::{SnsConfig, SnsVerifier};
use super::{Endpoint, PROVIDERS, Provider, ProviderEvent, Refusal, mailgun, postmark, sendgrid, ses};
use crate::bounces::Pipeline;
use crate::clock::Clock;
use crate::configuration::{ConfigError, Settings};
use crate::store::{NewReport, Store};

/// A configured provider and its endpoint.
type Configured = (Provider, Box<dyn Endpoint>);

/// The answer to a webhook request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub message: String,
    /// Ask for basic-auth credentials (`WWW-Authenticate`), on Postmark's 401.
    pub challenge: bool,
}

impl From<Refusal> for Reply {
    fn from(refusal: Refusal) -> Self {
        Reply { challenge: refusal.status == 401, status: refusal.status, message: refusal.message }
    }
}

/// The configured webhooks and what they feed.
pub struct Webhooks {
    store: Store,
    pipeline: Arc<Pipeline>,
    clock: Clock,
    endpoints: Vec<Configured>,
    /// Amazon SES through SNS, when `[webhooks.ses] enabled`.
    ses: Option<SnsVerifier>,
    max_body_bytes: usize,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let providers: Vec<_> = self.endpoints.iter().map(|(p, _)| p.name()).collect();
        f.debug_struct("Webhooks").field("providers", &providers).finish_non_exhaustive()
    }
}

impl Webhooks {
    /// The webhooks of `[webhooks]`; `None` when no provider is configured. Their pipeline is `[bounces]`'s, or
    /// one of the link keys and the bounce rules alone when no bounce address is set.
    pub fn from_settings(settings: &Settings, store: Store, clock: Clock) -> Result<Option<Self>, ConfigError> {
        let endpoints = endpoints(settings)?;
        let ses = ses_verifier(settings)?;
        if endpoints.is_empty() && ses.is_none() {
            return Ok(None);
        }
        let pipeline = Arc::new(Pipeline::for_webhooks(settings)?);
        let max_body_bytes = settings.webhooks.max_body_bytes;
        Ok(Some(Self { store, pipeline, clock, endpoints, ses, max_body_bytes }))
    }

    /// The configured providers, in table order.
    pub fn providers(&self) -> impl Iterator<Item = Provider> + '_ {
        let ses = self.ses.as_ref().map(|_| Provider::Ses);
        self.endpoints.iter().map(|(provider, _)| *provider).chain(ses)
    }

    /// The largest body a webhook request may have.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Runs one request: authentication, the events, the replay check, then the pipeline. Refusals change
    /// nothing; events about unknown messages are stored unmatched and answered 200 (so the provider does not
    /// retry forever); a storage failure answers 500, so the provider retries.
    pub async fn receive(&self, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Reply {
        let name = provider.name();
        if provider == Provider::Ses
            && let Some(verifier) = &self.ses
        {
            return self.receive_ses(verifier, body).await;
        }
        let Some((_, endpoint)) = self.endpoints.iter().find(|(p, _)| *p == provider) else {
            return Reply { status: 404, message: "this webhook is not configured\n".to_owned(), challenge: false };
        };
        let now = self.clock.now();
        let authenticated = match endpoint.authenticate(headers, body, now) {
            Ok(authenticated) => authenticated,
            Err(refusal) => {
                tracing::warn!(provider = name, status = refusal.status, "webhook refused: {}", refusal.message);
                return refusal.into();
            }
        };
        let events = match endpoint.events(body) {
            Ok(events) => events,
            Err(refusal) => {
                tracing::warn!(provider = name, status = refusal.status, "webhook refused: {}", refusal.message);
                return refusal.into();
            }
        };
        if let Some((token, expires)) = &authenticated.replay_token {
            match self.store.claim_webhook_token(name, token, *expires, now).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(provider = name, "webhook refused: its token was used before (a replay)");
                    return Refusal::forbidden("this request's token was used before: a replay\n").into();
                }
                Err(e) => return storage_failure(name, &e),
            }
        }
        let replay_token = authenticated.replay_token.as_ref().map(|(token, _)| token.as_str());
        self.apply(provider, &events, replay_token).await
    }

    /// One SES request: SNS's signature (which may fetch the certificate), a subscription to confirm, or a
    /// notification read into one event.
    async fn receive_ses(&self, verifier: &SnsVerifier, body: &[u8]) -> Reply {
        let event = match ses::receive(verifier, body, self.clock.now()).await {
            Ok(ses::SesReceipt::Event(event)) => event,
            Ok(ses::SesReceipt::SubscriptionConfirmed) => {
                tracing::info!(provider = "ses", "SNS subscription confirmed");
                return ok("subscription confirmed\n".to_owned());
            }
            Ok(ses::SesReceipt::Unsubscribed) => return ok("unsubscribed\n".to_owned()),
            Ok(ses::SesReceipt::Ignored) => return ok("no bounce, complaint or delivery in this request\n".to_owned()),
            Err(refusal) => {
                tracing::warn!(provider = "ses", status = refusal.status, "webhook refused: {}", refusal.message);
                return Reply { status: refusal.status, message: format!("{}\n", refusal.message), challenge: false };
            }
        };
        let event = ProviderEvent {
            provider: Provider::Ses,
            event_id: event.event_id,
            kind: event.kind,
            trace: event.trace,
            message_id: event.message_ids.into_iter().next(),
            status_code: event.status_code,
            reason: event.reason,
            raw: event.raw,
        };
        self.apply(Provider::Ses, std::slice::from_ref(&event), None).await
    }

    /// Stores and applies authenticated events through the pipeline; a storage failure releases the replay
    /// token, so the provider's retry is taken.
    async fn apply(&self, provider: Provider, events: &[ProviderEvent], replay_token: Option<&str>) -> Reply {
        let name = provider.name();
        let now = self.clock.now();
        let reports: Vec<NewReport> = events.iter().map(|event| event.to_report(&self.pipeline)).collect();
        if reports.is_empty() {
            return ok("no bounce, complaint or delivery in this request\n".to_owned());
        }
        match self.pipeline.apply(&self.store, &reports, now).await {
            Ok(applied) => {
                let duplicates = applied.iter().filter(|a| a.duplicate).count();
                let unmatched = applied.iter().filter(|a| !a.duplicate && !a.matched).count();
                tracing::info!(provider = name, events = applied.len(), duplicates, unmatched, "webhook events taken");
                ok(format!(
                    "{} events: {} applied, {duplicates} seen before, {unmatched} about no message of ours\n",
                    applied.len(),
                    applied.len() - duplicates - unmatched
                ))
            }
            Err(e) => {
                if let Some(token) = replay_token
                    && let Err(release) = self.store.release_webhook_token(name, token).await
                {
                    tracing::error!(provider = name, error = format!("{release:#}"), "cannot forget a webhook token");
                }
                storage_failure(name, &e)
            }
        }
    }
}

/// The endpoint of every configured provider, from the table.
fn endpoints(settings: &Settings) -> Result<Vec<Configured>, ConfigError> {
    let mut endpoints: Vec<Configured> = Vec::new();
    for (provider, _, _) in PROVIDERS {
        let endpoint: Option<Box<dyn Endpoint>> = match provider {
            Provider::Postmark => postmark::Postmark::from_settings(settings)?.map(|e| Box::new(e) as _),
            Provider::Sendgrid => sendgrid::Sendgrid::from_settings(settings)?.map(|e| Box::new(e) as _),
            Provider::Mailgun => mailgun::Mailgun::from_settings(settings)?.map(|e| Box::new(e) as _),
            // Not an `Endpoint`: its check is asynchronous (`ses_verifier`).
            Provider::Ses => None,
        };
        endpoints.extend(endpoint.map(|endpoint| (provider, endpoint)));
    }
    Ok(endpoints)
}

/// The SNS verifier of `[webhooks.ses]`, when enabled.
fn ses_verifier(settings: &Settings) -> Result<Option<SnsVerifier>, ConfigError> {
    if !settings.webhooks.ses.enabled {
        return Ok(None);
    }
    SnsVerifier::new(SnsConfig::from_settings(&settings.webhooks.ses)?).map(Some)
}

/// The checks `serve` makes on `[webhooks]` (for `config check`): keys, credentials, tolerances, the pipeline.
pub fn check_settings(settings: &Settings) -> Result<(), ConfigError> {
    if !endpoints(settings)?.is_empty() || ses_verifier(settings)?.is_some() {
        Pipeline::for_webhooks(settings)?;
    }
    Ok(())
}

fn ok(message: String) -> Reply {
    Reply { status: 200, message, challenge: false }
}

fn storage_failure(name: &str, error: &anyhow::Error) -> Reply {
    tracing::error!(
        provider = name,
        error = format!("{error:#}"),
        "cannot store webhook events; the provider will retry"
    );
    Reply { status: 500, message: "the events could not be stored; try again later\n".to_owned(), challenge: false }
}
