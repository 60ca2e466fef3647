//! Issues on the web: the personal web version (`/v/TOKEN`, the email as its subscriber got it, without the
//! open pixel), the public one of a sent issue (`/issues/N`), the archive of sent issues with their tallies
//! (`/archive`, also `/`), and the page the public version's rating and unsubscribe links lead to (`/links`).
//!
//! The public version is the same email personalised for nobody: no name, its star and unsubscribe links point
//! to `/links`, which explains that those work from the links in one's own email, and the readers' rating so far
//! under the stars. Neither web version offers "View in your browser", and the personal one's footer says where
//! its reader stands with the list now (subscribed, unsubscribed, bounced...), not when the email was sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::AppState;
use super::pages::{Message, html_response};
use crate::domain::Purpose;
use crate::render::{CompiledIssue, Reader, Recipient};

/// Sent issues the archive lists.
const ARCHIVE_SIZE: u32 = 500;

async fn compiled(state: &AppState, issue_id: i64) -> anyhow::Result<CompiledIssue> {
    let stored = state.store.issue_compiled(issue_id).await?;
    Ok(serde_json::from_str(&stored)?)
}

/// `GET /v/TOKEN`: the issue as this subscriber got it, with their own links. Not cached anywhere.
pub(crate) async fn personal(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some(claims) = state.verify(&token, Purpose::View) else { return state.not_found() };
    let Some(issue_id) = claims.issue_id else { return state.not_found() };
    let (list_id, subscriber_id) = (claims.list_id, claims.subscriber_id);
    let found = async {
        let Some(subscriber) = state.store.link_subscriber(list_id, subscriber_id).await? else { return Ok(None) };
        if state.store.link_issue(list_id, subscriber_id, issue_id).await?.is_none() {
            return Ok(None);
        }
        anyhow::Ok(Some((subscriber, compiled(&state, issue_id).await?)))
    };
    let (subscriber, issue) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => return state.not_found(),
        Err(e) => return super::internal_error(&state, "view online: cannot load the issue", &e),
    };
    let links = state.web.links.issue_links(list_id, subscriber_id, issue_id);
    let recipient = Recipient {
        name: &subscriber.name,
        unsubscribe_url: &links.unsubscribe,
        rate_urls: [&links.rate[0], &links.rate[1], &links.rate[2], &links.rate[3], &links.rate[4]],
        pixel_url: None,
        view_url: &links.view,
    };
    html_response(StatusCode::OK, issue.personalise_for(&recipient, Reader::Subscriber(subscriber.status)).html())
}

/// `GET /issues/N`: the public web version of a sent issue of the default list.
pub(crate) async fn public(State(state): State<AppState>, Path(number): Path<String>) -> Response {
    let Ok(number) = number.parse::<u32>() else { return state.not_found() };
    let list_id = state.web.default_list.id;
    let found = async {
        match state.store.issue_by_number(list_id, i64::from(number)).await? {
            Some(issue) if issue.status == "sent" => {
                anyhow::Ok(Some((compiled(&state, issue.id).await?, state.store.tally(issue.id).await?)))
            }
            _ => Ok(None),
        }
    };
    let (issue, tally) = match found.await {
        Ok(Some(found)) => found,
        Ok(None) => return state.not_found(),
        Err(e) => return super::internal_error(&state, "public issue: cannot load it", &e),
    };
    let view = format!("/issues/{number}");
    let rate = "/links#rate";
    let recipient = Recipient {
        name: "",
        unsubscribe_url: "/links#unsubscribe",
        rate_urls: [rate; 5],
        pixel_url: None,
        view_url: &view,
    };
    let tally = tally.to_string();
    let reader = Reader::Public { tally: &tally };
    let mut response = html_response(StatusCode::OK, issue.personalise_for(&recipient, reader).html());
    response.headers_mut().insert(CACHE_CONTROL, "public, max-age=300".parse().expect("a valid header value"));
    response
}

/// `GET /archive` (and `/`): the default list's sent issues, newest first, each with its rating tally.
pub(crate) async fn archive(State(state): State<AppState>) -> Response {
    let entries = match state.store.archive(state.web.default_list.id, ARCHIVE_SIZE).await {
        Ok(entries) => entries,
        Err(e) => return super::internal_error(&state, "archive: cannot read it", &e),
    };
    let issues: Vec<_> = entries
        .iter()
        .map(|entry| {
            context! {
                number => entry.number,
                subject => &entry.subject,
                period => &entry.period,
                tally => entry.tally.to_string(),
            }
        })
        .collect();
    let mut response =
        state.web.pages.render(StatusCode::OK, "archive.html", context! { title => "All issues", issues }, None);
    response.headers_mut().insert(CACHE_CONTROL, "no-cache".parse().expect("a valid header value"));
    response
}

/// `GET /links`: where the public version's stars and unsubscribe link lead.
pub(crate) async fn about_links(State(state): State<AppState>) -> impl IntoResponse {
    let page = Message::new(
        "Use the links in your email",
        &[
            "This is the public web version of an issue. Rating an issue and unsubscribing work from the links in \
             the email you received: each of them is made for you alone, so nobody else can vote or unsubscribe \
             in your name.",
            "Not a subscriber yet? You can sign up below.",
        ],
    )
    .link("/subscribe", "Subscribe")
    .link("/archive", "All issues");
    state.web.pages.message(StatusCode::OK, page, None)
}
