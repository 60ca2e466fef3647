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
    ALLOW, CACHE_CONTROL, CONNECTION, CONTENT_SECURITY_POLICY, REFERRER_POLICY, RETRY_AFTER, USER_AGENT,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, IntoResponseParts, Response, ResponseParts};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use ipnet::IpNet;

use super::{AppState, WebSettings};

/// No external source of anything, no scripts at all, inline styles only (pages and emails carry their CSS),
/// images only from here (the pixel) or inline, forms only to here, and never inside a frame.
const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
/// How many client addresses the limiters remember before forgetting the idle ones.
const TIDY_ABOVE: usize = 10_000;

/// User agents of link scanners, preview bots, command-line clients and HTTP libraries (lowercase substrings).
/// People do not vote with curl or a script; a headless browser is a sandbox detonating links. Browser tests
/// therefore set a phone's user agent. No entry may match a browser's user agent (a test checks common ones).
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
    // Command-line HTTP clients and HTTP libraries: as automated as scanners.
    "curl/",
    "libcurl",
    "wget/",
    "httpie/",
    "xh/",
    "python-requests",
    "python-urllib",
    "python-httpx",
    "python/",
    "aiohttp",
    "httplib2",
    "scrapy",
    "go-http-client",
    "go-resty",
    "libwww-perl",
    "lwp::",
    "java/",
    "java-http-client",
    "okhttp",
    "apache-httpclient",
    "jakarta commons-httpclient",
    "node-fetch",
    "axios/",
    "undici",
    "got (",
    "deno/",
    "bun/",
    "ruby",
    "faraday",
    "rest-client",
    "guzzlehttp",
    "php/",
    "reqwest",
    "hyper/",
    "powershell",
    "winhttp",
    "postmanruntime",
    "insomnia",
    "dart:io",
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
pub(crate) fn limiter_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
    }
}

/// The client's address: the connection's, or the last entry of the proxy's header when the connection comes
/// from a trusted proxy (anyone else could put any address there).
fn client_ip(request: &Request, header: Option<&HeaderName>, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>()?.0.ip();
    let peer = match peer {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(peer, IpAddr::V4),
        IpAddr::V4(_) => peer,
    };
    let from_proxy = trusted.iter().any(|net| net.contains(&peer));
    let forwarded = header.filter(|_| from_proxy).and_then(|name| {
        let value = request.headers().get_all(name).iter().next_back()?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
    });
    Some(forwarded.unwrap_or(peer))
}

/// `http.trusted_proxies` as networks: an address alone is a network of one.
pub(crate) fn trusted_proxies(entries: &[String]) -> anyhow::Result<Vec<IpNet>> {
    entries
        .iter()
        .map(|entry| {
            let entry = entry.trim();
            entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                anyhow::anyhow!("http.trusted_proxies: `{entry}` is not an address or a network like 10.0.0.0/8")
            })
        })
        .collect()
}

/// Rate-limits pages and forms per client address. The open pixel, `/healthz`, `/readyz`, `/metrics` and the
/// relays' webhooks (which post from a few addresses and authenticate every request) are exempt.
pub(crate) async fn limit(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let Some(ip) = client_ip(&request, state.web.client_ip_header.as_ref(), &state.web.trusted_proxies) else {
        return next.run(request).await;
    };
    request.extensions_mut().insert(ClientIp(ip));
    let path = request.uri().path();
    let exempt = path.starts_with(crate::domain::OPEN_PATH)
        || path.starts_with(crate::webhooks::WEBHOOK_PREFIX)
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics";
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
        for name in [ALLOW, RETRY_AFTER, CONNECTION] {
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

    #[test]
    fn trusted_proxies_are_addresses_or_networks_and_anything_else_is_refused_by_name() {
        let nets = trusted_proxies(&["127.0.0.1".into(), "10.0.0.0/8".into(), " ::1 ".into()]).expect("valid");
        let contains = |ip: &str| nets.iter().any(|net| net.contains(&ip.parse::<IpAddr>().expect("ip")));
        assert!(contains("127.0.0.1") && contains("10.1.2.3") && contains("::1"));
        assert!(!contains("127.0.0.2") && !contains("11.0.0.1"));
        let error = trusted_proxies(&["proxy.example.com".into()]).expect_err("a name is not an address");
        assert!(error.to_string().contains("`proxy.example.com`"), "{error}");
    }

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
        for agent in
            ["curl/8.5.0", "python-requests/2.31", "Mozilla/5.0 (compatible; BingPreview/1.0b)", "HTTPie/3.2.2"]
        {
            let headers: HeaderMap = [(USER_AGENT, HeaderValue::from_str(agent).unwrap())].into_iter().collect();
            assert_eq!(automated(&Method::POST, &headers), Some("scanner user agent"), "{agent}");
        }
    }

    #[test]
    fn no_browser_looks_automated() {
        let browsers = [
            PHONE,
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 \
             Safari/605.1.15",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) \
             Version/17.5 Mobile/15E148 Safari/604.1",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 \
             Safari/537.36 Edg/126.0.0.0",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 \
             OPR/111.0.0.0",
            "Mozilla/5.0 (Linux; Android 14; SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 \
             Chrome/121.0.0.0 Mobile Safari/537.36",
        ];
        for agent in browsers {
            let headers: HeaderMap = [(USER_AGENT, HeaderValue::from_str(agent).unwrap())].into_iter().collect();
            assert_eq!(automated(&Method::POST, &headers), None, "{agent}");
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
