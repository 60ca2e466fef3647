//! `/readyz`: whether this daemon can do its work. 200 when the database answers and has every migration this
//! binary carries; 503 otherwise. The relay's circuit is reported but does not make it unready: the pages
//! behind email links (unsubscribe above all) work while the relay is down, and the engine resumes by itself.
//! `/healthz` (in `mod.rs`) only says the process is alive and its database answers.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use super::AppState;

pub(super) async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let now = state.web.clock.now();
    let relay = &state.web.settings.relay;
    let migrations = state.store.migration_state().await;
    let circuit = state.store.open_circuit(relay, now).await;
    let (status, database, migrations) = match &migrations {
        Ok(m) if m.pending == 0 => ("ready", "ok", json!({ "applied": m.applied, "pending": 0 })),
        Ok(m) => ("not ready", "ok", json!({ "applied": m.applied, "pending": m.pending })),
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "readiness check: the database does not answer");
            ("not ready", "unreachable", serde_json::Value::Null)
        }
    };
    let circuit = match &circuit {
        Ok(None) => json!({ "name": relay, "circuit": "closed" }),
        Ok(Some(open)) => json!({
            "name": relay,
            "circuit": "open",
            "open_until": open.open_until.to_string(),
            "failures": open.failures,
        }),
        Err(_) => json!({ "name": relay, "circuit": "unknown" }),
    };
    let code = if status == "ready" { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({ "status": status, "database": database, "migrations": migrations, "relay": circuit });
    (code, super::guard::Rendered, Json(body))
}
