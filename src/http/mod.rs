//! The public HTTP server of `tidings serve`: the pages behind the links in every email, and operations
//! endpoints.
//!
//! Architecture Invariant: a GET never changes subscription state or votes; link scanners fetch every URL.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::store::Store;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
}

/// Every route.
pub fn router(state: AppState) -> Router {
    Router::new().route("/healthz", get(healthz)).with_state(state)
}

/// 200 when the database answers, 503 otherwise.
async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store.applied_migrations().await {
        Ok(_) => (StatusCode::OK, "ok\n"),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "health check: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "the database does not answer\n")
        }
    }
}
