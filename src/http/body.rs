//! Reading request bodies whole, within a deadline and a size limit, before any handler runs.
//!
//! A body that is larger than `http.max_body_bytes` is still read and thrown away, up to [`DRAIN_LIMIT`],
//! before the 413 page is sent: a client still sending when the server answers and closes would otherwise see
//! its connection reset instead of the page. A client that announced a larger body and waits for
//! `100 Continue` gets the 413 at once and sends nothing. A body that does not arrive whole within
//! `http.body_timeout` (a slow or stalled client) gets the 408 page. After either the connection is closed.
//!
//! Handlers then get the body from memory; it is never more than `max_body_bytes`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONNECTION, CONTENT_LENGTH, EXPECT};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::AppState;

/// The most bytes of an oversized body read (and thrown away) before the 413 is sent.
pub(crate) const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

/// Why a body was not read.
#[derive(Debug, PartialEq, Eq)]
enum Unread {
    /// Larger than the limit.
    TooLarge,
    /// The client broke off or sent malformed chunks.
    Broken,
}

/// Reads the request's body into memory before the rest of the stack sees the request.
pub(crate) async fn read_whole(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.body_limit(request.uri().path()) as u64;
    let (parts, body) = request.into_parts();
    let announced = (parts.headers.get(CONTENT_LENGTH))
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let waits_to_send =
        parts.headers.get(EXPECT).is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if announced > limit && (waits_to_send || announced > DRAIN_LIMIT) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let read = tokio::time::timeout(state.web.settings.body_timeout, collect(body, limit)).await;
    match read {
        Ok(Ok(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(Err(Unread::TooLarge)) => closing(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Err(Unread::Broken)) => closing(StatusCode::BAD_REQUEST),
        Err(_elapsed) => {
            tracing::debug!("a request body did not arrive within http.body_timeout");
            closing(StatusCode::REQUEST_TIMEOUT)
        }
    }
}

/// The body, or why not: past `limit` it is read on and dropped, up to [`DRAIN_LIMIT`].
async fn collect(body: Body, limit: u64) -> Result<Vec<u8>, Unread> {
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut read = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| Unread::Broken)?;
        read = read.saturating_add(chunk.len() as u64);
        if read <= limit {
            kept.extend_from_slice(&chunk);
        } else if read > DRAIN_LIMIT {
            return Err(Unread::TooLarge);
        }
    }
    if read > limit { Err(Unread::TooLarge) } else { Ok(kept) }
}

/// An error status (turned into its page by `guard::finish`) after which the connection closes.
fn closing(status: StatusCode) -> Response {
    (status, [(CONNECTION, HeaderValue::from_static("close"))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_kept_up_to_the_limit_and_read_on_past_it() {
        assert_eq!(collect(Body::from("stars=5"), 16).await, Ok(b"stars=5".to_vec()));
        assert_eq!(collect(Body::from(vec![b'x'; 17]), 16).await, Err(Unread::TooLarge));
        let huge = vec![b'x'; DRAIN_LIMIT as usize + 1];
        assert_eq!(collect(Body::from(huge), 16).await, Err(Unread::TooLarge));
        assert_eq!(collect(Body::empty(), 16).await, Ok(Vec::new()));
    }
}
