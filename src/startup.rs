//! Building the running application: the only place that knows every concrete type. It opens the store,
//! builds the senders of the configured transport and the DKIM signer, binds the HTTP listener (port 0 in
//! tests), and runs the server, the delivery engine, the open pixel's writer and the confirmation emails'
//! sender until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use lettre::message::Mailbox;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminContext;
use crate::clock::Clock;
use crate::configuration::{DkimAlgorithm, Settings, TlsMode, TransportKind};
use crate::domain::LinkBuilder;
use crate::http::{AppState, ConfirmationRequest, OpenWriter, Site, WebParts, WebSettings};
use crate::mailer::{self, DkimSigner, Outgoing, Sender};
use crate::render::{self, Branding, CompiledConfirm, ConfirmRecipient, Templates};
use crate::store::{ListRow, RateLimits, Store};
use crate::worker::{self, DeliveryConfig, DeliveryContext, SenderIdentity};

/// Confirmation emails waiting to be sent before the subscribe form waits for room.
const CONFIRMATION_QUEUE: usize = 256;

/// A built application, not yet running.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: AppState,
    delivery: DeliveryContext,
    opens: OpenWriter,
    confirmations: Confirmations,
}

impl Application {
    /// Checks the configuration (a missing or short link signing key stops it here), opens and migrates the
    /// store, renders the confirmation email of each list, and binds the listener.
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        let links = settings.link_builder()?;
        let context = AdminContext::open(settings, clock.clone()).await?;
        let settings = context.settings;
        let store = context.store;
        let delivery = delivery_context(&settings, store.clone(), clock.clone(), links.clone())?;
        let address: SocketAddr = settings
            .http
            .bind
            .parse()
            .map_err(|_| anyhow!("http.bind `{}` is not an address like 127.0.0.1:8080", settings.http.bind))?;

        let lists = store.lists().await?;
        let (confirmation_queue, requests) = mpsc::channel(CONFIRMATION_QUEUE);
        let confirmations = Confirmations::new(&settings, &lists, links.clone(), clock.clone(), requests)?;
        let (opens, open_writer) = crate::http::open_recorder(store.clone());
        let parts = WebParts {
            clock,
            links,
            settings: web_settings(&settings),
            site: Site {
                organization: settings.sender.organization.clone(),
                postal_address: settings.sender.postal_address.clone(),
            },
            lists,
            default_list: settings.default_list.clone(),
            opens,
            confirmations: confirmation_queue,
        };
        let state = AppState::new(store, parts)?;

        let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
        let port = listener.local_addr()?.port();
        Ok(Application { listener, port, state, delivery, opens: open_writer, confirmations })
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves HTTP and runs the delivery engine until `shutdown` is cancelled; then finishes the SMTP
    /// transactions in flight, records them, lets the server finish the requests it holds, writes every open
    /// still queued, sends the confirmation emails still queued, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let router = crate::http::router(self.state);
        let server_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
                .await
        });
        // The writers stop only after the server: until then a handler may still be queueing.
        let after_server = CancellationToken::new();
        let opens = tokio::spawn(self.opens.run(after_server.clone()));
        let confirmations = tokio::spawn(self.confirmations.run(after_server.clone()));
        let watchdog = crate::systemd::Watchdog::from_service_manager();
        let engine = tokio::spawn(worker::run(self.delivery, shutdown.clone(), watchdog));
        engine.await.context("the delivery engine stopped unexpectedly")?;
        let served = server.await.context("the HTTP server stopped unexpectedly");
        after_server.cancel();
        opens.await.context("the open pixel's writer stopped unexpectedly")?;
        confirmations.await.context("the confirmation email sender stopped unexpectedly")?;
        served?.context("the HTTP server failed")?;
        store.close().await;
        Ok(())
    }
}

/// The web's settings from `[http]`, `[tracking]` and `[subscribe]`.
fn web_settings(settings: &Settings) -> WebSettings {
    let http = &settings.http;
    WebSettings {
        track_opens: settings.tracking.opens,
        track_clicks: settings.tracking.clicks,
        rate_limit_per_minute: http.rate_limit_per_minute,
        rate_limit_burst: http.rate_limit_burst,
        subscribe_per_hour: http.subscribe_per_hour,
        max_body_bytes: http.max_body_bytes,
        client_ip_header: http.client_ip_header.clone(),
        pending_expiry: settings.subscribe.pending_expiry,
        relay: relay_name(settings),
    }
}

/// The double opt-in email of one list, rendered once, with the headers every copy shares.
struct ConfirmEmail {
    compiled: CompiledConfirm,
    list_header: String,
    feedback_id: String,
}

/// Sends the confirmation emails the subscribe form queues, one at a time over one connection of the
/// configured transport, outside any database transaction.
struct Confirmations {
    requests: mpsc::Receiver<ConfirmationRequest>,
    sender: Sender,
    emails: HashMap<i64, ConfirmEmail>,
    links: LinkBuilder,
    identity: SenderIdentity,
    dkim: Option<DkimSigner>,
    clock: Clock,
}

impl Confirmations {
    fn new(
        settings: &Settings,
        lists: &[ListRow],
        links: LinkBuilder,
        clock: Clock,
        requests: mpsc::Receiver<ConfirmationRequest>,
    ) -> anyhow::Result<Self> {
        let identity = sender_identity(settings)?;
        let templates = match settings.render.templates_dir.trim() {
            "" => Templates::embedded(),
            dir => Templates::from_dir(Path::new(dir)).map_err(|e| anyhow!("render.templates_dir: {e}"))?,
        };
        let domain = identity.domain.clone();
        let mut emails = HashMap::new();
        for list in lists {
            let branding = Branding {
                list_name: list.name.clone(),
                organization: settings.sender.organization.clone(),
                postal_address: settings.sender.postal_address.clone(),
                sender_email: identity.from.email.to_string(),
            };
            let compiled = render::compile_confirm(&templates, &branding, &list.name)
                .map_err(|e| anyhow!("the confirmation email of list `{}`: {e}", list.slug))?;
            let name = list.name.replace(['<', '>', '\r', '\n'], "");
            let email = ConfirmEmail {
                compiled,
                list_header: format!("{name} <{}.{domain}>", list.slug),
                feedback_id: format!("confirm:{}:tidings:{domain}", list.slug),
            };
            emails.insert(list.id, email);
        }
        let sender = senders(settings, 1)?.pop().ok_or_else(|| anyhow!("no sender for confirmation emails"))?;
        Ok(Self { requests, sender, emails, links, identity, dkim: dkim_signer(settings)?, clock })
    }

    /// Sends until `stop` is cancelled, then sends what is still queued and closes the connection.
    async fn run(mut self, stop: CancellationToken) {
        loop {
            tokio::select! {
                request = self.requests.recv() => match request {
                    Some(request) => self.send(request).await,
                    None => break,
                },
                () = stop.cancelled() => break,
            }
        }
        self.requests.close();
        while let Some(request) = self.requests.recv().await {
            self.send(request).await;
        }
        self.sender.close().await;
    }

    /// Sends one confirmation email, trying again twice after a temporary failure.
    async fn send(&mut self, request: ConfirmationRequest) {
        let (list_id, subscriber_id) = (request.list_id, request.subscriber_id);
        let Some(email) = self.emails.get(&list_id) else {
            tracing::error!(list_id, subscriber_id, "no confirmation email for this list; not sent");
            return;
        };
        let confirm_url = self.links.confirm(list_id, subscriber_id);
        let unsubscribe_url = self.links.unsubscribe(list_id, subscriber_id, None);
        let personalised =
            email.compiled.personalise(&ConfirmRecipient { name: &request.name, confirm_url: &confirm_url });
        let (html, text) = (personalised.html(), personalised.text());
        let message_id = format!("<confirm.{subscriber_id}.{:016x}@{}>", rand::random::<u64>(), self.identity.domain);
        let outgoing = Outgoing {
            message_id: &message_id,
            from: &self.identity.from,
            reply_to: self.identity.reply_to.as_ref(),
            to_email: &request.email,
            to_name: &request.name,
            subject: email.compiled.subject(),
            date: self.clock.now(),
            list_id: &email.list_header,
            unsubscribe_url: &unsubscribe_url,
            feedback_id: &email.feedback_id,
            html: &html,
            text: &text,
            is_test: false,
            eight_bit: self.sender.accepts_8bit(),
        };
        let message = match mailer::build(&outgoing, self.dkim.as_ref()) {
            Ok(message) => message,
            Err(e) => return tracing::error!(error = %e, subscriber_id, "cannot build a confirmation email"),
        };
        for attempt in 1..=3u32 {
            let outcome = self.sender.send(&message).await;
            let retry =
                matches!(outcome, mailer::SendOutcome::Transient { .. } | mailer::SendOutcome::Unavailable { .. });
            if outcome.is_accepted() {
                return tracing::info!(list_id, subscriber_id, "confirmation email sent");
            }
            if !retry || attempt == 3 {
                return tracing::warn!(list_id, subscriber_id, outcome = %outcome, "confirmation email not sent");
            }
            tokio::time::sleep(Duration::from_secs(2 * u64::from(attempt))).await;
        }
    }
}

/// The engine's context from the settings.
pub fn delivery_context(
    settings: &Settings,
    store: Store,
    clock: Clock,
    links: crate::domain::LinkBuilder,
) -> anyhow::Result<DeliveryContext> {
    let identity = sender_identity(settings)?;
    let delivery = &settings.delivery;
    let relay = relay_name(settings);
    let config = DeliveryConfig {
        batch_size: delivery.batch_size.max(1),
        max_attempts: delivery.max_attempts.max(1),
        retry_initial: delivery.retry_initial,
        retry_max: delivery.retry_max,
        max_age: delivery.max_age,
        max_late: delivery.max_late,
        lease: delivery.lease,
        dead_after: delivery.dead_after,
        resend_ambiguous: delivery.resend_ambiguous,
        limits: RateLimits { per_second: delivery.per_second, per_hour: delivery.per_hour, per_day: delivery.per_day },
        relay,
        track_opens: settings.tracking.opens,
        admin_email: admin_mailbox(settings)?,
        notice_before: settings.admin.notice_before,
    };
    let daemon_id = format!("{}-{:08x}", std::process::id(), rand::random::<u32>());
    Ok(DeliveryContext::new(
        store,
        clock,
        daemon_id,
        config,
        links,
        identity,
        dkim_signer(settings)?,
        senders(settings, settings.smtp.pool_size.max(1) as usize)?,
    ))
}

/// `admin.email` as a mailbox; `None` when it is empty.
pub fn admin_mailbox(settings: &Settings) -> anyhow::Result<Option<Mailbox>> {
    let email = settings.admin.email.trim();
    if email.is_empty() {
        return Ok(None);
    }
    let address = crate::domain::SubscriberEmail::parse(email).map_err(|e| anyhow!("admin.email: {e}"))?;
    Ok(Some(Mailbox::new(Some("Tidings admin".to_owned()), address.address().clone())))
}

/// The relay the rate limits and the circuit belong to: `host:port`, or `outbox`.
pub fn relay_name(settings: &Settings) -> String {
    match settings.transport.kind {
        TransportKind::Smtp => format!("{}:{}", settings.smtp.host, settings.smtp.port),
        TransportKind::Outbox => "outbox".to_owned(),
    }
}

/// The From, Reply-To and domain of every message.
pub fn sender_identity(settings: &Settings) -> anyhow::Result<SenderIdentity> {
    let from = Mailbox::from_str(&settings.sender.from).map_err(|e| {
        anyhow!("sender.from `{}` is not a mailbox like \"Name <news@example.com>\": {e}", settings.sender.from)
    })?;
    let reply_to = match settings.sender.reply_to.trim() {
        "" => None,
        text => Some(Mailbox::from_str(text).map_err(|e| anyhow!("sender.reply_to `{text}` is not a mailbox: {e}"))?),
    };
    let domain = from.email.domain().to_owned();
    Ok(SenderIdentity { from, reply_to, domain })
}

/// `count` senders of the configured transport, one per connection.
pub fn senders(settings: &Settings, count: usize) -> anyhow::Result<Vec<Sender>> {
    let mut senders = Vec::with_capacity(count);
    match settings.transport.kind {
        TransportKind::Outbox => {
            for _ in 0..count {
                senders
                    .push(Sender::Outbox(mailer::OutboxSender::new(&settings.outbox.dir).map_err(|e| anyhow!("{e}"))?));
            }
        }
        TransportKind::Smtp => {
            let smtp = &settings.smtp;
            let password = settings.smtp_password()?;
            let tls = match smtp.tls {
                TlsMode::Required => mailer::SmtpTls::Required,
                TlsMode::Wrapper => mailer::SmtpTls::Wrapper,
                TlsMode::None => mailer::SmtpTls::None,
            };
            for _ in 0..count {
                let config = mailer::SmtpConfig {
                    host: smtp.host.clone(),
                    port: smtp.port,
                    tls,
                    username: (!smtp.username.is_empty()).then(|| smtp.username.clone()),
                    password: password.clone(),
                    connect_timeout: Duration::try_from(smtp.connect_timeout).unwrap_or(Duration::from_secs(10)),
                    command_timeout: Duration::try_from(smtp.command_timeout).unwrap_or(Duration::from_secs(60)),
                    hello_name: None,
                };
                senders.push(Sender::Smtp(mailer::SmtpSender::new(config).map_err(|e| anyhow!("{e}"))?));
            }
        }
    }
    Ok(senders)
}

/// The DKIM signer when `[dkim]` is enabled.
pub fn dkim_signer(settings: &Settings) -> anyhow::Result<Option<DkimSigner>> {
    let dkim = &settings.dkim;
    if !dkim.enabled {
        return Ok(None);
    }
    let Some(key) = settings.dkim_private_key()? else {
        bail!("dkim.enabled is true but no key is set: set TIDINGS_DKIM__PRIVATE_KEY or dkim.key_file");
    };
    let algorithm = match dkim.algorithm {
        DkimAlgorithm::RsaSha256 => mailer::DkimAlgorithm::RsaSha256,
        DkimAlgorithm::Ed25519Sha256 => mailer::DkimAlgorithm::Ed25519Sha256,
    };
    let signer =
        DkimSigner::new(&dkim.domain, &dkim.selector, algorithm, key.expose_secret()).map_err(|e| anyhow!("{e}"))?;
    Ok(Some(signer))
}

/// Resolves when the process gets SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
