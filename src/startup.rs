//! Building the running application: the only place that knows every concrete type. It opens the store,
//! builds the senders of the configured transport and the DKIM signer, binds the HTTP listener (port 0 in
//! tests), and runs the server and the delivery engine until shutdown.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use lettre::message::Mailbox;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminContext;
use crate::clock::Clock;
use crate::configuration::{DkimAlgorithm, Settings, TlsMode, TransportKind};
use crate::mailer::{self, DkimSigner, Sender};
use crate::store::{RateLimits, Store};
use crate::worker::{self, DeliveryConfig, DeliveryContext, SenderIdentity};

/// A built application, not yet running.
pub struct Application {
    listener: TcpListener,
    port: u16,
    state: crate::http::AppState,
    delivery: DeliveryContext,
}

impl Application {
    /// Checks the configuration (a missing or short link signing key stops it here), opens and migrates the
    /// store, and binds the listener.
    pub async fn build(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        let links = settings.link_builder()?;
        let context = AdminContext::open(settings, clock.clone()).await.context("cannot open the database")?;
        let settings = context.settings;
        let store = context.store;
        let delivery = delivery_context(&settings, store.clone(), clock.clone(), links)?;
        let address: SocketAddr = settings
            .http
            .bind
            .parse()
            .map_err(|_| anyhow!("http.bind `{}` is not an address like 127.0.0.1:8080", settings.http.bind))?;
        let listener = TcpListener::bind(address).await.with_context(|| format!("cannot listen on {address}"))?;
        let port = listener.local_addr()?.port();
        Ok(Application { listener, port, state: crate::http::AppState { store }, delivery })
    }

    /// The port the HTTP server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves HTTP and runs the delivery engine until `shutdown` is cancelled; then finishes the SMTP
    /// transactions in flight, records them, and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let store = self.state.store.clone();
        let router = crate::http::router(self.state);
        let server_shutdown = shutdown.clone();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { server_shutdown.cancelled().await })
                .await
        });
        let engine = tokio::spawn(worker::run(self.delivery, shutdown.clone()));
        engine.await.context("the delivery engine stopped unexpectedly")?;
        server.await.context("the HTTP server stopped unexpectedly")?.context("the HTTP server failed")?;
        store.close().await;
        Ok(())
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
