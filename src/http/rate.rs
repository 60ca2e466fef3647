//! Rating links (`/r/TOKEN?stars=N`): the GET shows the issue and the five stars with N chosen, the POST
//! records the vote and shows the thank-you page with the tally.
//!
//! A vote that looks automated is kept but flagged, and left out of every tally: a POST from a known scanner
//! or script (see `guard::automated`), a prefetch, or one sent less than [`MIN_DELAY`] after the message was
//! delivered (no person reads, taps and submits that fast). A prefetch of the rating page leaves a flagged
//! vote as evidence of the scanner, once per link: the same link prefetched again writes nothing. A HEAD or a
//! plain GET records nothing: a HEAD is a scanner's (a scanner fetching 20 links of 1,000 messages would
//! otherwise write 20,000 rows), and a GET may be a person about to submit, or a scanner, and we cannot tell.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use jiff::SignedDuration;
use minijinja::context;
use serde::Deserialize;

use super::AppState;
use super::guard::{automated, prefetch};
use super::pages::Message;
use crate::clock::to_millis;
use crate::domain::{LinkClaims, Purpose, RATE_PATH};
use crate::store::{LinkIssue, NewVote, Stars};

/// A vote sooner than this after its message was delivered is a scanner's, not a reader's.
const MIN_DELAY: SignedDuration = SignedDuration::from_secs(10);

/// `?stars=N`, or the form's `stars` field.
#[derive(Debug, Deserialize)]
pub(crate) struct StarsField {
    stars: Option<String>,
}

/// The link's claims and issue, or the response to give instead.
async fn issue_of(state: &AppState, token: &str) -> Result<(LinkClaims, i64, LinkIssue), Response> {
    let claims = state.verify(token, Purpose::Rate).ok_or_else(|| state.not_found())?;
    let issue_id = claims.issue_id.ok_or_else(|| state.not_found())?;
    let (list_id, subscriber_id) = (claims.list_id, claims.subscriber_id);
    // Both must exist: a link of an erased subscriber is answered like a forged one.
    let found = async {
        let subscriber = state.store.link_subscriber(list_id, subscriber_id).await?;
        let issue = state.store.link_issue(list_id, subscriber_id, issue_id).await?;
        anyhow::Ok(subscriber.and(issue))
    };
    match found.await {
        Ok(Some(issue)) => Ok((claims, issue_id, issue)),
        Ok(None) => Err(state.not_found()),
        Err(e) => Err(super::internal_error(state, "rating: cannot look up the link", &e)),
    }
}

/// `GET` (and `HEAD`) `/r/TOKEN?stars=N`: the rating form with N chosen.
pub(crate) async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
    query: Result<Query<StarsField>, QueryRejection>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let (claims, issue_id, issue) = match issue_of(&state, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Some(stars) = query.ok().and_then(|Query(field)| field.stars).as_deref().and_then(Stars::parse) else {
        return bad_stars(&state, &token, claims.list_id);
    };
    if method != Method::HEAD && prefetch(&headers) {
        let flag = Some("prefetch request");
        let vote = NewVote { list_id: claims.list_id, issue_id, subscriber_id: claims.subscriber_id, stars, flag };
        if let Err(e) = state.store.record_flagged_once(&vote, state.web.clock.now()).await {
            return super::internal_error(&state, "rating: cannot record a flagged vote", &e);
        }
    }
    let context = context! {
        title => format!("Rate issue {}", issue.number),
        issue => context! { number => issue.number, subject => &issue.subject, period => &issue.period },
        stars => stars.get(),
        action => format!("{RATE_PATH}{token}"),
    };
    let list = state.list_name(claims.list_id);
    state.web.pages.render(StatusCode::OK, "rate.html", context, Some(list))
}

/// `POST /r/TOKEN` with `stars=N`: records the vote (flagged when it looks automated) and thanks the reader.
pub(crate) async fn vote(
    State(state): State<AppState>,
    Path(token): Path<String>,
    query: Result<Query<StarsField>, QueryRejection>,
    headers: HeaderMap,
    form: Result<Form<StarsField>, FormRejection>,
) -> Response {
    let (claims, issue_id, issue) = match issue_of(&state, &token).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let form = match form {
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => return rejection.into_response(),
        form => form.ok(),
    };
    let field = form.and_then(|Form(field)| field.stars).or_else(|| query.ok().and_then(|Query(q)| q.stars));
    let Some(stars) = field.as_deref().and_then(Stars::parse) else {
        return bad_stars(&state, &token, claims.list_id);
    };
    let now = state.web.clock.now();
    let too_soon = issue.sent_at.is_some_and(|sent| to_millis(now) - sent < MIN_DELAY.as_millis() as i64);
    let flag = automated(&Method::POST, &headers).or(too_soon.then_some("too soon after delivery"));
    let subscriber_id = claims.subscriber_id;
    let vote = NewVote { list_id: claims.list_id, issue_id, subscriber_id, stars, flag };
    let tally = async {
        state.store.record_vote(&vote, now).await?;
        state.store.tally(issue_id).await
    };
    let tally = match tally.await {
        Ok(tally) => tally,
        Err(e) => return super::internal_error(&state, "rating: cannot record the vote", &e),
    };
    tracing::info!(issue_id, subscriber_id, stars = stars.get(), flagged = flag, "vote");
    let shown: String = (1..=5).map(|n| if n <= stars.get() { '★' } else { '☆' }).collect();
    let context = context! {
        title => "Thank you",
        number => issue.number,
        stars => stars.get(),
        shown,
        tally => tally.to_string(),
        again => format!("{RATE_PATH}{token}?stars={}", stars.get()),
    };
    let list = state.list_name(claims.list_id);
    state.web.pages.render(StatusCode::OK, "rated.html", context, Some(list))
}

/// The 400 page for a rating that is not 1 to 5 stars, with the five valid links.
fn bad_stars(state: &AppState, token: &str, list_id: i64) -> Response {
    let mut page = Message::new("Pick from 1 to 5 stars", &["That rating is not one of 1 to 5 stars. Choose one:"]);
    for n in 1..=5 {
        let noun = if n == 1 { "star" } else { "stars" };
        page = page.link(format!("{RATE_PATH}{token}?stars={n}"), format!("{n} {noun}"));
    }
    state.web.pages.message(StatusCode::BAD_REQUEST, page, Some(state.list_name(list_id)))
}
