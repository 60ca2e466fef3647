//! Tracking: the open pixel (`/o/TOKEN.gif`) and click redirects (`/l/TOKEN/N`).
//!
//! The pixel always answers with a 1x1 GIF that no cache keeps, whatever follows `/o/` (a forged token, bytes
//! that are not UTF-8 such as `%FF`, more slashes, nothing at all), so a broken image never shows. The token is
//! read from the raw path, never percent-decoded (a token has no byte that needs it); a valid token's open goes to the batching [`super::OpenRecorder`] (when `tracking.opens` is on) and
//! the response does not wait for the database. Opens are unverified: mail clients and their proxies prefetch
//! images.
//!
//! A click link redirects (303) only to link number N of the token's own issue, as stored when the issue was
//! added, and only to an http(s) URL: never an open redirect. Anything else is the 404 page. The link number is
//! not part of the signed token; it can only choose among that issue's links.

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, EXPIRES, LOCATION, PRAGMA};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::guard::{Rendered, automated};
use crate::clock::to_millis;
use crate::domain::{LinkBuilder, LinkClaims, OPEN_PATH, Purpose};
use crate::store::OpenEvent;

/// Tracked links: `/l/TOKEN/N` redirects to link N of the token's issue.
pub const CLICK_PATH: &str = "/l/";

/// A transparent 1x1 GIF (43 bytes).
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// The tracked URL of link `position` (from 1, the plain-text part's `[N]`) of an issue, for one subscriber.
pub fn click_url(links: &LinkBuilder, list_id: i64, subscriber_id: i64, issue_id: i64, position: u32) -> String {
    let claims = LinkClaims { purpose: Purpose::Click, list_id, subscriber_id, issue_id: Some(issue_id) };
    format!("{}{CLICK_PATH}{}/{position}", links.base(), links.keys().sign(&claims))
}

/// `GET /o/TOKEN.gif` (and anything else under `/o/`): the pixel, always; records an open for a valid token.
pub(crate) async fn pixel(State(state): State<AppState>, uri: Uri, method: Method) -> Response {
    if state.web.settings.track_opens && method == Method::GET {
        let file = uri.path().strip_prefix(OPEN_PATH).unwrap_or_default();
        let claims = file.strip_suffix(".gif").and_then(|token| state.verify(token, Purpose::Open));
        if let Some(LinkClaims { subscriber_id, issue_id: Some(issue_id), .. }) = claims {
            let at = to_millis(state.web.clock.now());
            state.web.opens.record(OpenEvent { issue_id, subscriber_id, at }).await;
        }
    }
    let headers = [
        (CONTENT_TYPE, "image/gif"),
        (CACHE_CONTROL, "no-store, no-cache, must-revalidate, private"),
        (PRAGMA, "no-cache"),
        (EXPIRES, "0"),
    ];
    (StatusCode::OK, Rendered, headers, PIXEL).into_response()
}

/// `GET /l/TOKEN/N`: a 303 to link N of the token's issue, counting the click unless the request looks
/// automated (scanners follow every link).
pub(crate) async fn click(
    State(state): State<AppState>,
    Path((token, position)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let Some(claims) = state.verify(&token, Purpose::Click) else { return state.not_found() };
    let (Some(issue_id), Ok(position)) = (claims.issue_id, position.parse::<u32>()) else {
        return state.not_found();
    };
    let url = match state.store.issue_link(issue_id, i64::from(position)).await {
        Ok(Some(url)) if url.starts_with("https://") || url.starts_with("http://") => url,
        Ok(_) => return state.not_found(),
        Err(e) => return super::internal_error(&state, "click: cannot look up the link", &e),
    };
    if state.web.settings.track_clicks && automated(&method, &headers).is_none() {
        let now = state.web.clock.now();
        if let Err(e) = state.store.record_click(issue_id, claims.subscriber_id, i64::from(position), now).await {
            tracing::warn!(error = format!("{e:#}"), issue_id, "cannot record a click; redirecting anyway");
        }
    }
    (StatusCode::SEE_OTHER, Rendered, [(LOCATION, header_safe(&url))]).into_response()
}

/// The URL with every byte a header may not hold (non-ASCII, spaces, controls) percent-encoded, as a browser
/// would send it.
fn header_safe(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for byte in url.bytes() {
        if byte.is_ascii_graphic() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pixel_is_a_one_by_one_gif() {
        assert_eq!(&PIXEL[..6], b"GIF89a");
        assert_eq!((PIXEL[6], PIXEL[8]), (1, 1));
        assert_eq!(PIXEL.last(), Some(&0x3b));
    }

    #[test]
    fn redirect_targets_are_made_header_safe() {
        assert_eq!(header_safe("https://a.example/ä b"), "https://a.example/%C3%A4%20b");
        assert_eq!(header_safe("https://a.example/?q=1&r=2#x"), "https://a.example/?q=1&r=2#x");
    }
}
