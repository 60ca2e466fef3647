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
use crate::bounces::{BounceListener, ImapPoller, Intake, ListenerLimits, Pipeline};
use crate::clock::Clock;
use crate::configuration::{DkimAlgorithm, Settings, TlsMode, TransportKind};
use crate::domain::{LinkBuilder, ReturnPathFor};
use crate::http::{AppState, ConfirmationRequest, OpenWriter, ServerLimits, Site, WebParts, WebSettings};
use crate::mailer::{self, BounceTrace, DkimSigner, Outgoing, Sender};
use crate::render::{self, Branding, CompiledConfirm, ConfirmRecipient, Templates};
use crate::store::{ListRow, RateLimits, Store};
use crate::worker::{self, DeliveryConfig, DeliveryContext, SenderIdentity};

/// Confirmation emails waiting to be sent before the subscribe form waits for room.
const CONFIRMATION_QUEUE: usize = 256;

/// A built application, not yet running.
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    limits: ServerLimits,
    state: AppState,
    delivery: DeliveryContext,
    opens: OpenWriter,
    confirmations: Confirmations,
    /// The report listener and its writer, when `[bounces] listen` is set.
    reports: Option<(BounceListener, Intake, tokio::task::JoinHandle<()>)>,
    /// The poller of the IMAP mailbox, when `[bounces.imap] host` is set.
    imap: Option<ImapPoller>,
}

impl Application {
    /// Checks the configuration (a missing or short link signing key stops it here), binds the listener (when
    /// `http.base_url` is empty, links then point at the bound address), opens and migrates the store, and
    /// renders the confirmation email of each list.
    pub async fn build(mut settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        settings.link_builder()?;
        let limits = server_limits(&settings)?;
        let listener = bind(&settings).await?;
        let bound = listener.local_addr()?;
        if settings.http.base_url.trim().is_empty() {
            settings.http.base_url = crate::configuration::local_url(bound);
        }
        let links = settings.link_builder()?;
        let context = AdminContext::open(settings, clock.clone()).await?;
        let settings = context.settings;
        let store = context.store;
        let delivery = delivery_context(&settings, store.clone(), clock.clone(), links.clone())?;

        let lists = store.lists().await?;
        let (confirmation_queue, requests) = mpsc::channel(CONFIRMATION_QUEUE);
        let confirmations = Confirmations::new(&settings, &lists, links.clone(), clock.clone(), requests)?;
        let (opens, open_writer) = crate::http::open_recorder(store.clone());
        let webhooks =
            crate::webhooks::Webhooks::from_settings(&settings, store.clone(), clock.clone())?.map(std::sync::Arc::new);
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
            webhooks,
        };
        let reports = report_listener(&settings, &store, &delivery.clock).await?;
        let pipeline = Pipeline::from_settings(&settings)?.map(std::sync::Arc::new);
        let imap = ImapPoller::from_settings(&settings, pipeline, store.clone(), delivery.clock.clone())?;
        let state = AppState::new(store, parts)?;
        Ok(Application {
            listener,
            address: bound,
            limits,
            state,
            delivery,
            opens: open_writer,
            confirmations,
            reports,
            imap,
        })
    }

    /// The port of the report listener, when it runs.
    pub fn report_port(&self) -> Option<u16> {
        self.reports.as_ref().and_then(|(listener, _, _)| listener.local_addr().ok()).map(|a| a.port())
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The address the HTTP server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves HTTP and runs the delivery engine until `shutdown` is cancelled; then finishes the SMTP
    /// transactions in flight, records them, lets the server finish the requests it holds, writes every open
    /// still queued, sends the confirmation emails still queued, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let router = crate::http::router(self.state);
        let server = tokio::spawn(crate::http::serve(self.listener, router, self.limits, shutdown.clone()));
        // The writers stop only after the server: until then a handler may still be queueing.
        let after_server = CancellationToken::new();
        let opens = tokio::spawn(self.opens.run(after_server.clone()));
        let confirmations = tokio::spawn(self.confirmations.run(after_server.clone()));
        let reports = self.reports.map(|(listener, intake, writer)| {
            let serving = tokio::spawn(listener.serve(shutdown.clone()));
            (serving, intake, writer)
        });
        let imap = self.imap.map(|poller| tokio::spawn(poller.run(shutdown.clone())));
        let watchdog = crate::systemd::Watchdog::from_service_manager();
        let engine = tokio::spawn(worker::run(self.delivery, shutdown.clone(), watchdog));
        engine.await.context("the delivery engine stopped unexpectedly")?;
        let served = server.await.context("the HTTP server stopped unexpectedly");
        after_server.cancel();
        opens.await.context("the open pixel's writer stopped unexpectedly")?;
        confirmations.await.context("the confirmation email sender stopped unexpectedly")?;
        if let Some((serving, intake, writer)) = reports {
            // The sessions finish the reports they were given; then the writer commits what is queued.
            serving.await.context("the report listener stopped unexpectedly")?;
            drop(intake);
            writer.await.context("the report writer stopped unexpectedly")?;
        }
        if let Some(imap) = imap {
            imap.await.context("the IMAP poller stopped unexpectedly")?;
        }
        served?;
        store.close().await;
        Ok(())
    }
}

/// Binds the report listener of `[bounces]`, when `listen` is set.
async fn report_listener(
    settings: &Settings,
    store: &Store,
    clock: &Clock,
) -> anyhow::Result<Option<(BounceListener, Intake, tokio::task::JoinHandle<()>)>> {
    let listen = settings.bounces.listen.trim();
    if listen.is_empty() {
        return Ok(None);
    }
    let Some(pipeline) = Pipeline::from_settings(settings)? else {
        bail!("bounces.listen is set but bounces.address is empty: set the bounce address the listener takes mail for");
    };
    let pipeline = std::sync::Arc::new(pipeline);
    let (intake, writer) = Intake::start(store.clone(), pipeline.clone(), clock.clone());
    let b = &settings.bounces;
    let limits = ListenerLimits {
        max_connections: b.max_connections,
        max_connections_per_client: b.max_connections_per_client,
        per_client_per_minute: b.per_client_per_minute,
        idle_timeout: Duration::try_from(b.idle_timeout).unwrap_or(Duration::from_secs(60)),
    };
    let listener = BounceListener::bind(listen, pipeline, intake.clone(), b.protocol, limits).await?;
    tracing::info!(address = %listener.local_addr()?, protocol = ?b.protocol, "listening for bounces and complaints");
    Ok(Some((listener, intake, writer)))
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
        body_timeout: positive(http.body_timeout).unwrap_or(Duration::from_secs(30)),
        client_ip_header: http.client_ip_header.clone(),
        trusted_proxies: http.trusted_proxies.clone(),
        pending_expiry: settings.subscribe.pending_expiry,
        relay: relay_name(settings),
    }
}

/// Binds `http.bind`; an address in use or not allowed is an error that names the setting to change.
pub async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let bind = settings.http.bind.trim();
    let address: SocketAddr =
        bind.parse().map_err(|_| anyhow!("http.bind `{bind}` is not an address like 127.0.0.1:8080"))?;
    TcpListener::bind(address).await.map_err(|e| {
        anyhow!(
            "cannot listen on {address} (http.bind): {e}; choose another address or port with http.bind in the \
             config file or TIDINGS_HTTP__BIND, e.g. TIDINGS_HTTP__BIND=127.0.0.1:{}",
            address.port().wrapping_add(1).max(1)
        )
    })
}

/// The server's deadlines and caps from `[http]`: the cap in all is derived from the open-file limit (see
/// `http::connection_cap`), keeping room for the database pool, the SMTP connections and a few other files.
fn server_limits(settings: &Settings) -> anyhow::Result<ServerLimits> {
    let http = &settings.http;
    let header_timeout =
        positive(http.header_timeout).ok_or_else(|| anyhow!("http.header_timeout must be more than 0"))?;
    positive(http.body_timeout).ok_or_else(|| anyhow!("http.body_timeout must be more than 0"))?;
    let shutdown_timeout =
        Duration::try_from(http.shutdown_timeout).map_err(|_| anyhow!("http.shutdown_timeout must not be negative"))?;
    let reserved =
        u64::from(settings.database.max_connections) + u64::from(settings.smtp.pool_size) + crate::http::RESERVED_FILES;
    let open_files = crate::http::open_file_limit();
    let max_connections = crate::http::connection_cap(http.max_connections, open_files, reserved);
    if http.max_connections != 0 && max_connections < http.max_connections as usize {
        tracing::warn!(
            configured = http.max_connections,
            max_connections,
            open_files,
            "http.max_connections lowered to leave the delivery engine its files"
        );
    }
    Ok(ServerLimits {
        header_timeout,
        max_connections,
        per_address: (http.max_connections_per_address > 0).then_some(http.max_connections_per_address as usize),
        proxies: match http.client_ip_header.trim() {
            "" => Vec::new(),
            _ => crate::http::trusted_proxies(&http.trusted_proxies)?,
        },
        shutdown_timeout,
    })
}

/// A duration above zero as a `std` one.
fn positive(duration: jiff::SignedDuration) -> Option<Duration> {
    Duration::try_from(duration).ok().filter(|d| !d.is_zero())
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
        let trace =
            self.identity.bounce_trace(self.links.keys(), ReturnPathFor::Confirmation { list_id, subscriber_id });
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
            bounce: trace.as_ref().map(|(return_path, trace)| BounceTrace { return_path, trace }),
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
        idle_poll: delivery.idle_poll,
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
    let bounce = settings.bounce_address()?;
    Ok(SenderIdentity { from, reply_to, domain, bounce })
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
                    ca_file: (!smtp.ca_file.trim().is_empty()).then(|| smtp.ca_file.trim().into()),
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
/// Cancels `shutdown` on SIGTERM or SIGINT. The handlers are in place when this returns.
pub fn cancel_on_signal(shutdown: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot catch SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot catch SIGINT")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("stopping: finishing the messages being sent");
        crate::systemd::stopping();
        shutdown.cancel();
    });
    Ok(())
}

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
