//! What guards every request: the per-address rate limits (governor), security headers, `no-store` caching by
//! default, plain error pages for every error a handler did not render itself (413 from the body limit, 405,
//! 429, ...), and the recognition of requests that are not a person's: HEAD and prefetch requests, link
//! scanners and scripts.
//!
//! This file decides nothing about subscriptions or votes; handlers ask [`automated`] and act on the answer.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, RETRY_AFTER, USER_AGENT, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::{AppState, WebSettings};

/// No external source of anything, no scripts at all, inline styles only (pages and emails carry their CSS),
/// images only from here (the pixel) or inline, forms only to here, and never inside a frame.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// How many client addresses the limiters remember before forgetting the idle ones.
const TIDY_ABOVE: usize = 10_000;

/// User agents of link scanners, preview bots and scripts (lowercase substrings). People do not vote with
/// curl; a headless browser is a sandbox detonating links. Browser tests therefore set a phone's user agent.
const SCANNER_AGENTS: &[&str] = &[
    "bingpreview",
    "safelinks",
    "microsoft office",
    "existence discovery",
    "mimecast",
    "proofpoint",
    "urldefense",
    "barracuda",
    "symantec",
    "messagelabs",
    "trend micro",
    "trendmicro",
    "fortiguard",
    "sophos",
    "ironport",
    "headless",
    "phantomjs",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "curl/",
    "wget/",
    "libwww-perl",
    "java/",
    "okhttp",
    "apache-httpclient",
    "node-fetch",
    "axios/",
    "googlebot",
    "bingbot",
    "applebot",
    "yandexbot",
    "duckduckbot",
    "slackbot",
    "twitterbot",
    "discordbot",
    "telegrambot",
    "linkedinbot",
    "facebookexternalhit",
    "whatsapp",
    "crawler",
    "spider",
];

/// Marks a response the web rendered on purpose, which [`finish`] must leave as it is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rendered;

impl IntoResponseParts for Rendered {
    type Error = std::convert::Infallible;

    fn into_response_parts(self, mut parts: ResponseParts) -> Result<ResponseParts, Self::Error> {
        parts.extensions_mut().insert(Rendered);
        Ok(parts)
    }
}

/// The client's address, as [`limit`] worked it out, for consent evidence.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

/// Why a request looks automated, or `None` when it may be a person's. `HEAD` and prefetches never are;
/// nor are known scanners, scripts and requests without a user agent.
pub(crate) fn automated(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    if method == Method::HEAD {
        return Some("HEAD request");
    }
    if prefetch(headers) {
        return Some("prefetch request");
    }
    let agent = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default().to_ascii_lowercase();
    if agent.trim().is_empty() {
        return Some("no user agent");
    }
    SCANNER_AGENTS.iter().any(|scanner| agent.contains(scanner)).then_some("scanner user agent")
}

/// A browser fetching ahead of a click (`Sec-Purpose`/`Purpose: prefetch`, Firefox's `X-Moz: prefetch`).
pub(crate) fn prefetch(headers: &HeaderMap) -> bool {
    ["sec-purpose", "purpose", "x-purpose", "x-moz"].iter().any(|name| {
        headers.get_all(*name).iter().any(|v| v.to_str().is_ok_and(|v| v.to_ascii_lowercase().contains("prefetch")))
    })
}

/// The request's user agent for consent evidence, cut to a sane length.
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    let agent = headers.get(USER_AGENT)?.to_str().ok()?.trim();
    (!agent.is_empty()).then(|| agent.chars().take(512).collect())
}

/// The per-address limiters; `None` where the configured rate is 0.
pub(crate) struct Limits {
    pages: Option<DefaultKeyedRateLimiter<IpAddr>>,
    subscribe: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limits {
    pub fn new(settings: &WebSettings) -> Self {
        let pages = NonZeroU32::new(settings.rate_limit_per_minute).map(|rate| {
            let burst = NonZeroU32::new(settings.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
            DefaultKeyedRateLimiter::keyed(Quota::per_minute(rate).allow_burst(burst))
        });
        let subscribe = NonZeroU32::new(settings.subscribe_per_hour).map(|rate| {
            let burst = NonZeroU32::new(settings.subscribe_per_hour.min(5)).unwrap_or(NonZeroU32::MIN);
            DefaultKeyedRateLimiter::keyed(Quota::per_hour(rate).allow_burst(burst))
        });
        Self { pages, subscribe }
    }

    /// Checks one request from `key` against the page limit and, for a subscribe request, the subscribe limit.
    /// Returns how long to wait when it is over either.
    fn check(&self, key: IpAddr, subscribing: bool) -> Result<(), std::time::Duration> {
        let limiters = [Some(&self.pages), subscribing.then_some(&self.subscribe)];
        for limiter in limiters.into_iter().flatten().flatten() {
            if let Err(not_until) = limiter.check_key(&key) {
                return Err(not_until.wait_time_from(DefaultClock::default().now()));
            }
            if limiter.len() > TIDY_ABOVE {
                limiter.retain_recent();
            }
        }
        Ok(())
    }
}

/// The limited key of an address: IPv6 clients usually hold a whole /64, so they count as one.
fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

/// The client's address: the connection's, or the last entry of the proxy's header when the connection comes
/// from this machine (only a local proxy is trusted to set it).
fn client_ip(request: &Request, header: Option<&HeaderName>) -> Option<IpAddr> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let forwarded = header.filter(|_| peer.is_loopback()).and_then(|name| {
        let value = request.headers().get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
    });
    Some(forwarded.unwrap_or(peer))
}

/// Rate-limits pages and forms per client address. The open pixel, `/healthz`, `/readyz` and `/metrics` are exempt.
pub(crate) async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(ip) = client_ip(&request, state.web.client_ip_header.as_ref()) else {
        return next.run(request).await;
    };
    request.extensions_mut().insert(ClientIp(ip));
    let path = request.uri().path();
    let exempt =
        path.starts_with(crate::domain::OPEN_PATH) || path == "/healthz" || path == "/readyz" || path == "/metrics";
    let subscribing = request.method() == Method::POST && (path == "/subscribe" || path == "/api/subscribe");
    if !exempt && let Err(wait) = state.web.limits.check(limiter_key(ip), subscribing) {
        let seconds = wait.as_secs().max(1).to_string();
        return (StatusCode::TOO_MANY_REQUESTS, [(RETRY_AFTER, seconds)]).into_response();
    }
    next.run(request).await
}

/// Turns every error response a handler did not render into the plain page for its status (JSON under
/// `/api/`), and adds the security headers and `Cache-Control: no-store` (unless a handler chose otherwise).
pub(crate) async fn finish(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let mut response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error()) && response.extensions().get::<Rendered>().is_none() {
        let mut page = if api { super::subscribe::api_error(status) } else { state.web.pages.status_page(status) };
        for name in [ALLOW, RETRY_AFTER] {
            if let Some(value) = response.headers().get(&name) {
                page.headers_mut().insert(name, value.clone());
            }
        }
        response = page;
    }
    let headers = response.headers_mut();
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    const PHONE: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) \
                         Chrome/126.0 Mobile Safari/537.36";

    #[test]
    fn a_browser_post_is_a_person_and_scanners_prefetches_and_heads_are_not() {
        assert_eq!(automated(&Method::POST, &headers(&[("user-agent", PHONE)])), None);
        assert_eq!(automated(&Method::HEAD, &headers(&[("user-agent", PHONE)])), Some("HEAD request"));
        let prefetch = headers(&[("user-agent", PHONE), ("sec-purpose", "prefetch;anonymous-client-ip")]);
        assert_eq!(automated(&Method::POST, &prefetch), Some("prefetch request"));
        assert_eq!(automated(&Method::GET, &headers(&[("x-moz", "prefetch")])), Some("prefetch request"));
        assert_eq!(automated(&Method::POST, &headers(&[])), Some("no user agent"));
        for agent in ["curl/8.5.0", "python-requests/2.31", "Mozilla/5.0 (compatible; BingPreview/1.0b)"] {
            let headers: HeaderMap = [(USER_AGENT, HeaderValue::from_str(agent).unwrap())].into_iter().collect();
            assert_eq!(automated(&Method::POST, &headers), Some("scanner user agent"), "{agent}");
        }
    }

    #[test]
    fn an_ipv6_client_is_limited_by_its_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        assert_eq!(limiter_key(a), limiter_key(b));
        assert_ne!(limiter_key(a), limiter_key("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(limiter_key("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7".parse::<IpAddr>().unwrap());
    }
}
