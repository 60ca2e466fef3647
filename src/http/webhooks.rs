//! The routes of the relays' webhooks: one `POST` route per configured provider (the paths are the table in
//! `webhooks::PROVIDERS`), each handing the headers and the whole body to `webhooks::Webhooks::receive` and
//! answering what it says, as plain text. Their bodies may be up to `webhooks.max_body_bytes` (SendGrid
//! batches events); they are exempt from the per-address rate limit (a relay posts from a few addresses).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use super::AppState;
use super::guard::Rendered;
use crate::webhooks::{Provider, Webhooks};

/// The routes of the configured providers; none when no webhook is configured.
pub(super) fn routes(webhooks: Option<&Arc<Webhooks>>) -> Router<AppState> {
    let Some(webhooks) = webhooks else { return Router::new() };
    let mut router = Router::new();
    for provider in webhooks.providers() {
        let handler = move |State(state): State<AppState>, headers: HeaderMap, body: Bytes| {
            receive(state, provider, headers, body)
        };
        router = router.route(provider.path(), post(handler));
    }
    router.layer(DefaultBodyLimit::max(webhooks.max_body_bytes()))
}

async fn receive(state: AppState, provider: Provider, headers: HeaderMap, body: Bytes) -> Response {
    let Some(webhooks) = state.web.webhooks.as_ref() else { return StatusCode::NOT_FOUND.into_response() };
    let reply = webhooks.receive(provider, &headers, &body).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    let mut response = (status, Rendered, [(CONTENT_TYPE, plain)], reply.message).into_response();
    if reply.challenge {
        response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tidings webhooks\""));
    }
    response
}
