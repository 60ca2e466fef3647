//! Subscribing: the form (`/subscribe`), its JSON twin (`POST /api/subscribe`), and the double opt-in link
//! (`/c/TOKEN`: the GET shows a page with a button, the POST confirms).
//!
//! A request records a pending subscription with the request's address and user agent and hands the
//! confirmation email to `startup`'s sender, which sends it outside any transaction. The answer is the same
//! whatever happened ("check your inbox"): it never tells whether an address is already subscribed. A filled-in
//! honeypot field gets that same answer and changes nothing.

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::mpsc::error::TrySendError;

use super::guard::{ClientIp, Rendered, prefetch, user_agent};
use super::pages::Message;
use super::{AppState, ConfirmationRequest};
use crate::domain::{CONFIRM_PATH, Purpose, SubscriberEmail, SubscriberName, SubscriptionStatus, check_time_zone};
use crate::store::{SubscribeOutcome, SubscribeRequest};

const CHECK_INBOX: &str = "If this address can receive it, a confirmation email is on its way. Open the link in it \
                           to start your subscription.";

/// The form's fields (the JSON endpoint takes the same names).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SubscribeFields {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: Option<String>,
    /// An IANA time zone name, optional: issues sent at local time reach the subscriber at that hour there.
    #[serde(default)]
    tz: Option<String>,
    /// The honeypot: hidden from people, filled in by bots.
    #[serde(default)]
    website: Option<String>,
}

/// Why a request was refused; shown to the person who typed it.
enum Refusal {
    /// A field's value was refused: which field (`email`, `name` or `tz`, as in the form) and why.
    Invalid(&'static str, String),
    Failed,
}

/// A message for people: `code` spans written with backticks become quoted text.
fn for_people(reason: &str) -> String {
    let mut out = String::with_capacity(reason.len());
    for (index, part) in reason.split('`').enumerate() {
        if index > 0 {
            out.push(if index % 2 == 1 { '“' } else { '”' });
        }
        out.push_str(part);
    }
    out
}

/// `GET /subscribe`.
pub(crate) async fn form(State(state): State<AppState>) -> Response {
    form_page(&state, StatusCode::OK, &SubscribeFields::default(), None)
}

fn form_page(state: &AppState, status: StatusCode, fields: &SubscribeFields, error: Option<(&str, &str)>) -> Response {
    let email = fields.email.as_str();
    let name = fields.name.as_deref().unwrap_or_default();
    let tz = fields.tz.as_deref().unwrap_or_default();
    let (error_field, error) = match error {
        Some((field, reason)) => (Some(field), Some(for_people(reason))),
        None => (None, None),
    };
    let context = context! { title => "Subscribe", email, name, tz, error, error_field };
    state.web.pages.render(status, "subscribe.html", context, None)
}

/// `POST /subscribe` (form).
pub(crate) async fn submit(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    fields: Result<Form<SubscribeFields>, FormRejection>,
) -> Response {
    let fields = match fields {
        Ok(Form(fields)) => fields,
        Err(rejection) => return rejection.into_response(),
    };
    match request(&state, &fields, ip.map(|ip| ip.0.0), &headers).await {
        Ok(()) => {
            let page = Message::new("Check your inbox", &[CHECK_INBOX, "Nothing there? Look in your spam folder."]);
            state.web.pages.message(StatusCode::OK, page, None)
        }
        Err(Refusal::Invalid(field, reason)) => {
            form_page(&state, StatusCode::UNPROCESSABLE_ENTITY, &fields, Some((field, &reason)))
        }
        Err(Refusal::Failed) => state.web.pages.status_page(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// `POST /api/subscribe` with `{"email": ..., "name": ..., "tz": ...}`: 202 and the same message whatever happened, 422
/// with the reason for an invalid address or name.
pub(crate) async fn api(
    State(state): State<AppState>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
    fields: Result<Json<SubscribeFields>, JsonRejection>,
) -> Response {
    let fields = match fields {
        Ok(Json(fields)) => fields,
        Err(rejection) => {
            let body = json!({ "error": rejection.body_text() });
            return (rejection.status(), Rendered, Json(body)).into_response();
        }
    };
    match request(&state, &fields, ip.map(|ip| ip.0.0), &headers).await {
        Ok(()) => (StatusCode::ACCEPTED, Rendered, Json(json!({ "status": "check_inbox", "message": CHECK_INBOX })))
            .into_response(),
        Err(Refusal::Invalid(field, reason)) => {
            (StatusCode::UNPROCESSABLE_ENTITY, Rendered, Json(json!({ "error": reason, "field": field })))
                .into_response()
        }
        Err(Refusal::Failed) => api_error(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// The JSON body of an error status under `/api/`.
pub(crate) fn api_error(status: StatusCode) -> Response {
    let reason = status.canonical_reason().unwrap_or("error").to_lowercase();
    (status, Rendered, Json(json!({ "error": reason }))).into_response()
}

/// Records the request and queues the confirmation email when there should be one.
async fn request(
    state: &AppState,
    fields: &SubscribeFields,
    ip: Option<std::net::IpAddr>,
    headers: &HeaderMap,
) -> Result<(), Refusal> {
    if fields.website.as_deref().is_some_and(|trap| !trap.trim().is_empty()) {
        tracing::info!("subscribe: the honeypot field was filled in; ignored");
        return Ok(());
    }
    let email = SubscriberEmail::parse(&fields.email).map_err(|e| Refusal::Invalid("email", e.to_string()))?;
    let name = SubscriberName::parse(fields.name.as_deref().unwrap_or_default())
        .map_err(|e| Refusal::Invalid("name", e.to_string()))?;
    let time_zone = match fields.tz.as_deref().map(str::trim).filter(|tz| !tz.is_empty()) {
        Some(tz) => {
            Some(check_time_zone(tz).map(|_| tz).map_err(|e| Refusal::Invalid("tz", format!("Time zone: {e}")))?)
        }
        None => None,
    };
    let now = state.web.clock.now();
    let list_id = state.web.default_list.id;
    let (ip, agent) = (ip.map(|ip| ip.to_string()), user_agent(headers));
    let request = SubscribeRequest {
        list_id,
        email: &email,
        name: &name,
        time_zone,
        ip: ip.as_deref(),
        user_agent: agent.as_deref(),
        expires_at: now.saturating_add(state.web.settings.pending_expiry).unwrap_or(now),
    };
    let outcome = state.store.request_subscription(&request, now).await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "subscribe: cannot record the request");
        Refusal::Failed
    })?;
    match outcome {
        SubscribeOutcome::Confirm { subscriber_id } => {
            tracing::info!(list_id, subscriber_id, "subscribe: confirmation email queued");
            let confirmation = ConfirmationRequest { list_id, subscriber_id, email, name: name.as_str().to_owned() };
            // The answer never waits for SMTP: when the sender is that far behind, this request's email is
            // dropped (logged), and asking again after a few minutes sends a new one.
            match state.web.confirmations.try_send(confirmation) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    tracing::error!(subscriber_id, "subscribe: the confirmation queue is full; email not sent");
                }
                Err(TrySendError::Closed(_)) => {
                    tracing::error!(subscriber_id, "subscribe: the confirmation sender has stopped");
                    return Err(Refusal::Failed);
                }
            }
        }
        SubscribeOutcome::Nothing(reason) => tracing::info!(list_id, reason = ?reason, "subscribe: no email to send"),
    }
    Ok(())
}

/// Where a confirmation link stands.
enum Standing {
    Pending,
    Lapsed,
    Active,
}

async fn standing(state: &AppState, token: &str) -> Result<(crate::domain::LinkClaims, Standing), Response> {
    let claims = state.verify(token, Purpose::Confirm).ok_or_else(|| state.not_found())?;
    let subscriber = match state.store.link_subscriber(claims.list_id, claims.subscriber_id).await {
        Ok(Some(subscriber)) => subscriber,
        Ok(None) => return Err(state.not_found()),
        Err(e) => return Err(super::internal_error(state, "confirm: cannot look up the subscriber", &e)),
    };
    let now = crate::clock::to_millis(state.web.clock.now());
    let standing = match subscriber.status {
        SubscriptionStatus::Pending if subscriber.expires_at.is_none_or(|at| at > now) => Standing::Pending,
        SubscriptionStatus::Active => Standing::Active,
        _ => Standing::Lapsed,
    };
    Ok((claims, standing))
}

/// `GET /c/TOKEN`: a page with the confirm button. Confirms nothing: link scanners fetch every URL.
pub(crate) async fn show_confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match standing(&state, &token).await {
        Ok((claims, standing)) => confirm_page(&state, claims.list_id, standing, &token),
        Err(response) => response,
    }
}

/// `POST /c/TOKEN`: confirms a pending subscription that has not lapsed and welcomes the subscriber.
pub(crate) async fn confirm(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ip: Option<axum::Extension<ClientIp>>,
    headers: HeaderMap,
) -> Response {
    let (claims, standing) = match standing(&state, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    // A prefetch is never a person's click: it gets the page with the button, as a GET would.
    if !matches!(standing, Standing::Pending) || prefetch(&headers) {
        return confirm_page(&state, claims.list_id, standing, &token);
    }
    let (ip, agent) = (ip.map(|ip| ip.0.0.to_string()), user_agent(&headers));
    let now = state.web.clock.now();
    let (list_id, subscriber_id) = (claims.list_id, claims.subscriber_id);
    match state.store.confirm_subscription(list_id, subscriber_id, ip.as_deref(), agent.as_deref(), now).await {
        Ok(true) => tracing::info!(list_id, subscriber_id, "subscription confirmed"),
        // It lapsed or was confirmed between the lookup and now: show where it stands.
        Ok(false) => return show_confirm(State(state), Path(token)).await,
        Err(e) => return super::internal_error(&state, "confirm: cannot record it", &e),
    }
    confirm_page(&state, list_id, Standing::Active, &token)
}

fn confirm_page(state: &AppState, list_id: i64, standing: Standing, token: &str) -> Response {
    let list = state.list_name(list_id);
    let (status, page) = match standing {
        Standing::Pending => (
            StatusCode::OK,
            Message::new("Confirm your subscription", &[&format!("One click to start receiving {list}.")]).button(
                format!("{CONFIRM_PATH}{token}"),
                "Confirm my subscription",
                false,
            ),
        ),
        Standing::Active => (
            StatusCode::OK,
            Message::new(
                "Welcome!",
                &[&format!("You are subscribed to {list}."), "The next issue will be in your inbox."],
            )
            .link("/archive", "Read past issues"),
        ),
        Standing::Lapsed => (
            StatusCode::GONE,
            Message::new(
                "This link has expired",
                &["Confirmation links are valid for a limited time. Subscribe again and we will send you a new one."],
            )
            .link("/subscribe", "Subscribe again"),
        ),
    };
    state.web.pages.message(status, page, Some(list))
}
