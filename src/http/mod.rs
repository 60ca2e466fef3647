//! The public HTTP server of `tidings serve`: the pages behind the links in every email (unsubscribe, rating,
//! view online, confirm), the open pixel and click redirects, the archive, the subscribe form and its JSON
//! twin, and the operations endpoints (`/healthz`, `/readyz`, `/metrics`).
//!
//! Files: `server.rs` (connections: deadlines, caps, shutdown), `body.rs` (bodies read whole within a deadline
//! and a limit), `guard.rs` (rate limits, security headers, error pages, automated-request detection),
//! `metrics.rs`, `pages.rs` (server-rendered pages from `pages/*.html`), and one file per feature. Sending the
//! confirmation email and writing opens in batches run beside the server: `startup` drives them.
//!
//! Architecture Invariant: a GET never changes subscription state or votes; link scanners fetch every URL.
//! Architecture Invariant: every link is checked with `LinkKeys::verify` before anything else, and a link that
//! fails (forged, altered, truncated, another purpose, an unknown or erased subscriber) gets the same 404 page.
//! Architecture Invariant: no handler logs an email address, a name or a token, and only `clock` reads the time.

mod body;
mod guard;
mod metrics;
mod open;
mod pages;
mod rate;
mod ready;
mod recorder;
mod server;
mod subscribe;
mod unsubscribe;
mod view;
mod webhooks;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use jiff::SignedDuration;
use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::domain::{
    CONFIRM_PATH, LinkBuilder, LinkClaims, OPEN_PATH, Purpose, RATE_PATH, SubscriberEmail, UNSUBSCRIBE_PATH, VIEW_PATH,
};
use crate::store::{ListRow, Store};

pub(crate) use guard::trusted_proxies;
pub use open::{CLICK_PATH, click_url};
pub use recorder::{OpenRecorder, OpenWriter, open_recorder};
pub use server::{RESERVED_FILES, ServerLimits, connection_cap, open_file_limit, serve};

/// The `[http]`, `[tracking]` and `[subscribe]` settings the web needs, checked by `startup`.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Record opens from the pixel (it is served either way).
    pub track_opens: bool,
    /// Count clicks on tracked links (they redirect either way).
    pub track_clicks: bool,
    /// Requests per minute per client address to pages and forms; 0: no limit.
    pub rate_limit_per_minute: u32,
    pub rate_limit_burst: u32,
    /// Subscribe requests per hour per client address; 0: no limit.
    pub subscribe_per_hour: u32,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// How long a request's body may take to arrive whole.
    pub body_timeout: std::time::Duration,
    /// The header a reverse proxy passes the client's address in; empty: none.
    pub client_ip_header: String,
    /// The proxies (addresses or networks) whose header is believed.
    pub trusted_proxies: Vec<String>,
    /// How long a confirmation link stays valid.
    pub pending_expiry: SignedDuration,
    /// The relay whose circuit `/readyz` reports: `host:port`, or `outbox`.
    pub relay: String,
}

/// Who sends the newsletter, shown at the foot of every page as in every email.
#[derive(Debug, Clone)]
pub struct Site {
    pub organization: String,
    pub postal_address: String,
}

/// A confirmation email to send: the web records the pending subscription, `startup` renders and sends the
/// email outside any transaction. `Debug` shows no address or name.
pub struct ConfirmationRequest {
    pub list_id: i64,
    pub subscriber_id: i64,
    pub email: SubscriberEmail,
    /// The name given on the form; may be empty.
    pub name: String,
}

impl std::fmt::Debug for ConfirmationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmationRequest").field("subscriber_id", &self.subscriber_id).finish_non_exhaustive()
    }
}

/// What `startup` hands the web when it builds it.
pub struct WebParts {
    pub clock: Clock,
    pub links: LinkBuilder,
    pub settings: WebSettings,
    pub site: Site,
    /// Every list, for page titles; the subscribe form and archive serve `default_list`.
    pub lists: Vec<ListRow>,
    pub default_list: String,
    pub opens: OpenRecorder,
    pub confirmations: mpsc::Sender<ConfirmationRequest>,
    /// The relays' webhooks, when any is configured (`[webhooks]`).
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    web: Arc<Web>,
}

/// The shared parts behind [`AppState`].
struct Web {
    clock: Clock,
    links: LinkBuilder,
    settings: WebSettings,
    client_ip_header: Option<HeaderName>,
    trusted_proxies: Vec<ipnet::IpNet>,
    pages: pages::Pages,
    lists: HashMap<i64, ListRow>,
    default_list: ListRow,
    opens: OpenRecorder,
    confirmations: mpsc::Sender<ConfirmationRequest>,
    metrics: metrics::HttpMetrics,
    limits: guard::Limits,
    webhooks: Option<Arc<crate::webhooks::Webhooks>>,
}

impl AppState {
    /// Checks the parts (the default list exists, the proxy header is a header name and its proxies are addresses,
    /// the page templates parse).
    pub fn new(store: Store, parts: WebParts) -> anyhow::Result<AppState> {
        let default_list = (parts.lists.iter().find(|list| list.slug == parts.default_list).cloned())
            .ok_or_else(|| anyhow!("default_list `{}` is not a list in the database", parts.default_list))?;
        let client_ip_header = match parts.settings.client_ip_header.trim() {
            "" => None,
            name => Some(
                HeaderName::try_from(name)
                    .map_err(|_| anyhow!("http.client_ip_header `{name}` is not an HTTP header name"))?,
            ),
        };
        let trusted_proxies = guard::trusted_proxies(&parts.settings.trusted_proxies)?;
        let pages = pages::Pages::new(&parts.site, &default_list.name).context("cannot load the page templates")?;
        let web = Web {
            clock: parts.clock,
            links: parts.links,
            limits: guard::Limits::new(&parts.settings),
            settings: parts.settings,
            client_ip_header,
            trusted_proxies,
            pages,
            lists: parts.lists.into_iter().map(|list| (list.id, list)).collect(),
            default_list,
            opens: parts.opens,
            confirmations: parts.confirmations,
            metrics: metrics::HttpMetrics::default(),
            webhooks: parts.webhooks,
        };
        Ok(AppState { store, web: Arc::new(web) })
    }

    /// The claims of a link token that verifies for `purpose`; `None` for anything else, which every handler
    /// answers with the one 404 page.
    fn verify(&self, token: &str, purpose: Purpose) -> Option<LinkClaims> {
        self.web.links.keys().verify(token, purpose).ok()
    }

    /// The largest body a request to `path` may have: the webhooks' limit under their prefix, else the web's.
    fn body_limit(&self, path: &str) -> usize {
        match &self.web.webhooks {
            Some(webhooks) if path.starts_with(crate::webhooks::WEBHOOK_PREFIX) => webhooks.max_body_bytes(),
            _ => self.web.settings.max_body_bytes,
        }
    }

    fn not_found(&self) -> axum::response::Response {
        self.web.pages.status_page(StatusCode::NOT_FOUND)
    }

    /// The name of a list, for page headings; the default list's for an unknown id.
    fn list_name(&self, list_id: i64) -> &str {
        self.web.lists.get(&list_id).map_or(&self.web.default_list.name, |list| &list.name)
    }
}

/// Every route, with the layers every request passes (outermost first): metrics, security headers and error
/// pages, the body read whole (within its deadline and limit), and the per-address rate limit.
pub fn router(state: AppState) -> Router {
    let limit = state.web.settings.max_body_bytes;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(ready::readyz))
        .route("/metrics", get(metrics::scrape))
        .route(&format!("{UNSUBSCRIBE_PATH}{{token}}"), get(unsubscribe::show).post(unsubscribe::unsubscribe))
        .route(&format!("{UNSUBSCRIBE_PATH}{{token}}/resubscribe"), post(unsubscribe::resubscribe))
        .route(&format!("{RATE_PATH}{{token}}"), get(rate::show).post(rate::vote))
        .route(&format!("{OPEN_PATH}{{*file}}"), get(open::pixel))
        .route(OPEN_PATH, get(open::pixel))
        .route(&format!("{CLICK_PATH}{{token}}/{{position}}"), get(open::click))
        .route(&format!("{VIEW_PATH}{{token}}"), get(view::personal))
        .route("/issues/{number}", get(view::public))
        .route("/", get(view::archive))
        .route("/archive", get(view::archive))
        .route("/links", get(view::about_links))
        .route("/subscribe", get(subscribe::form).post(subscribe::submit))
        .route("/api/subscribe", post(subscribe::api))
        .route(&format!("{CONFIRM_PATH}{{token}}"), get(subscribe::show_confirm).post(subscribe::confirm))
        .merge(webhooks::routes(state.web.webhooks.as_ref()))
        .fallback(pages::not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(from_fn_with_state(state.clone(), guard::limit))
        .layer(from_fn_with_state(state.clone(), body::read_whole))
        .layer(from_fn_with_state(state.clone(), guard::finish))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.applied_migrations().await {
        Ok(_) => (StatusCode::OK, guard::Rendered, "ok\n"),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, guard::Rendered, "the database does not answer\n")
        }
    }
}

/// The error a handler met, logged once with its whole chain; the reader gets the plain 500 page.
fn internal_error(state: &AppState, what: &str, error: &anyhow::Error) -> axum::response::Response {
    tracing::error!(error = format!("{error:#}"), "{what}");
    state.web.pages.status_page(StatusCode::INTERNAL_SERVER_ERROR)
}
