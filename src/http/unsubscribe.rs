//! Unsubscribe links (`/u/TOKEN`): the GET shows one button, the POST unsubscribes and shows the way back (a
//! resubscribe button posting to `/u/TOKEN/resubscribe`).
//!
//! RFC 8058 one-click: mail providers POST `List-Unsubscribe=One-Click` (urlencoded or multipart) to the
//! `List-Unsubscribe` URL. Any POST here unsubscribes and answers 200 with the page, never a redirect, and
//! repeating it changes nothing more. The body is only read to note in the event which way it came.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::pages::Message;
use crate::domain::{Purpose, SubscriptionStatus, UNSUBSCRIBE_PATH};
use crate::store::{LinkSubscriber, Resubscribe};

/// The link's subscriber, or the response to give instead (the 404 page, or a 500 after a database error).
async fn subscriber_of(state: &AppState, token: &str) -> Result<(crate::domain::LinkClaims, LinkSubscriber), Response> {
    let claims = state.verify(token, Purpose::Unsubscribe).ok_or_else(|| state.not_found())?;
    match state.store.link_subscriber(claims.list_id, claims.subscriber_id).await {
        Ok(Some(subscriber)) => Ok((claims, subscriber)),
        Ok(None) => Err(state.not_found()),
        Err(e) => Err(super::internal_error(state, "unsubscribe: cannot look up the subscriber", &e)),
    }
}

/// `GET /u/TOKEN`: what the subscriber can do from here. Changes nothing.
pub(crate) async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let (claims, subscriber) = match subscriber_of(&state, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let list = state.list_name(claims.list_id);
    let page = match subscriber.status {
        SubscriptionStatus::Active | SubscriptionStatus::Pending => Message::new(
            "Unsubscribe?",
            &[&format!("Do you want to stop receiving {list}?"), "One click and we will not email you again."],
        )
        .button(format!("{UNSUBSCRIBE_PATH}{token}"), "Unsubscribe", false),
        SubscriptionStatus::Unsubscribed => unsubscribed(list, &token),
        SubscriptionStatus::Bounced | SubscriptionStatus::Complained => not_receiving(list),
    };
    state.web.pages.message(StatusCode::OK, page, Some(list))
}

/// `POST /u/TOKEN`: unsubscribes (the page's button, or RFC 8058 one-click) and answers 200.
pub(crate) async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>, body: Bytes) -> Response {
    let (claims, subscriber) = match subscriber_of(&state, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let how = if one_click(&body) { "one-click" } else { "page" };
    let now = state.web.clock.now();
    let (list_id, subscriber_id) = (claims.list_id, claims.subscriber_id);
    match state.store.unsubscribe_by_link(list_id, subscriber_id, claims.issue_id, how, now).await {
        Ok(changed) => tracing::info!(list_id, subscriber_id, how, changed, "unsubscribe"),
        Err(e) => return super::internal_error(&state, "unsubscribe: cannot record it", &e),
    }
    let list = state.list_name(list_id);
    let page = match subscriber.status {
        SubscriptionStatus::Bounced | SubscriptionStatus::Complained => not_receiving(list),
        _ => unsubscribed(list, &token),
    };
    state.web.pages.message(StatusCode::OK, page, Some(list))
}

/// `POST /u/TOKEN/resubscribe`: the way back after an unsubscribe.
pub(crate) async fn resubscribe(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(claims) = state.verify(&token, Purpose::Unsubscribe) else { return state.not_found() };
    let (list_id, subscriber_id) = (claims.list_id, claims.subscriber_id);
    let now = state.web.clock.now();
    let outcome = match state.store.resubscribe_by_link(list_id, subscriber_id, claims.issue_id, now).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return state.not_found(),
        Err(e) => return super::internal_error(&state, "resubscribe: cannot record it", &e),
    };
    tracing::info!(list_id, subscriber_id, outcome = ?outcome, "resubscribe");
    let list = state.list_name(list_id);
    let page = match outcome {
        Resubscribe::Done | Resubscribe::Unchanged(SubscriptionStatus::Active) => {
            Message::new("Welcome back", &[&format!("You are subscribed to {list} again.")])
                .link("/archive", "Read past issues")
        }
        Resubscribe::Unchanged(SubscriptionStatus::Pending) => Message::new(
            "Almost there",
            &["Your subscription is waiting for you to confirm it: open the link in the confirmation email."],
        ),
        Resubscribe::Unchanged(_) | Resubscribe::Suppressed => not_receiving(list),
    };
    state.web.pages.message(StatusCode::OK, page, Some(list))
}

fn unsubscribed(list: &str, token: &str) -> Message {
    Message::new(
        "You are unsubscribed",
        &[&format!("You will not receive {list} any more."), "Clicked by mistake? You can come back right away."],
    )
    .button(format!("{UNSUBSCRIBE_PATH}{token}/resubscribe"), "Resubscribe", true)
}

fn not_receiving(list: &str) -> Message {
    Message::new(
        "You are not on the list",
        &[&format!(
            "This address does not receive {list}: mail to it could not be delivered, or it was reported as unwanted."
        )],
    )
}

/// Whether the body is RFC 8058's `List-Unsubscribe=One-Click`, urlencoded or as a multipart field.
fn one_click(body: &[u8]) -> bool {
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle));
    contains(b"List-Unsubscribe=One-Click") || (contains(b"name=\"List-Unsubscribe\"") && contains(b"One-Click"))
}

#[cfg(test)]
mod tests {
    use super::one_click;

    #[test]
    fn one_click_is_recognised_in_both_form_encodings() {
        assert!(one_click(b"List-Unsubscribe=One-Click"));
        let multipart =
            b"--b\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--b--\r\n";
        assert!(one_click(multipart));
        assert!(!one_click(b""));
        assert!(!one_click(b"stars=5"));
    }
}
