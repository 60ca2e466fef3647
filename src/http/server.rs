//! Serving the router over HTTP/1.1 with deadlines and caps, so that no client can hold the server (or the
//! process's file descriptors) for long: hyper's `http1` connection per socket, as `axum::serve` does, but with a
//! timer and the limits it does not expose.
//!
//! - A connection must send a complete request head within `header_timeout` of opening and of each response
//!   (hyper's header read timeout, which also runs while a kept-alive connection is idle); else it is closed.
//!   The body's deadline is `body::read_whole`'s.
//! - At most `max_connections` are open at once: beyond that the next connection is not accepted until one
//!   closes (it waits in the kernel's queue and holds no descriptor). At most `per_address` are open from one
//!   client address (an IPv6 client counts by its /64); one more is accepted and closed at once.
//! - On shutdown the listener closes, idle connections close, requests in progress may finish for
//!   `shutdown_timeout`; then every connection still open is dropped and `serve` returns, so the queues that the
//!   handlers fed can be drained.
//!
//! The cap in all is derived from the open-file limit when not configured ([`connection_cap`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tower::Service;

/// Files kept free for the rest of the process (log output, SQLite's journal files, outbox files, DNS, the
/// confirmation emails' connection), on top of the database pool and the SMTP connections.
pub const RESERVED_FILES: u64 = 64;

/// The limits of [`serve`].
#[derive(Debug, Clone)]
pub struct ServerLimits {
    pub header_timeout: Duration,
    pub max_connections: usize,
    /// Connections per client address; `None`: no cap.
    pub per_address: Option<usize>,
    /// The reverse proxies' addresses (`http.trusted_proxies`) when a client address header is configured:
    /// their connections carry many clients and are not capped per address. Empty: every peer is capped.
    pub proxies: Vec<ipnet::IpNet>,
    pub shutdown_timeout: Duration,
}

/// The most connections open at once: `configured` (0: derived), never more than three quarters of the open
/// files left after `reserved` others, and at least 1. `open_files` is the soft RLIMIT_NOFILE (`None`:
/// unlimited or unknown, which leaves `configured`, or 1,024 when derived).
pub fn connection_cap(configured: u32, open_files: Option<u64>, reserved: u64) -> usize {
    let room = open_files.map(|files| files.saturating_sub(reserved) / 4 * 3);
    let cap = match (configured, room) {
        (0, Some(room)) => room,
        (0, None) => 1_024,
        (configured, Some(room)) => u64::from(configured).min(room),
        (configured, None) => u64::from(configured),
    };
    usize::try_from(cap.max(1)).unwrap_or(usize::MAX)
}

/// The soft limit on open files of this process, or `None` when it is unlimited or cannot be read.
pub fn open_file_limit() -> Option<u64> {
    let (soft, _hard) = rlimit::Resource::NOFILE.get().ok()?;
    (soft != rlimit::INFINITY).then_some(soft)
}

/// Serves `router` on `listener` until `shutdown` is cancelled and then for at most `shutdown_timeout`.
pub async fn serve(listener: TcpListener, router: Router, limits: ServerLimits, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let addresses = Addresses::default();
    let mut connections = JoinSet::new();
    let closing = CancellationToken::new();
    loop {
        let next = async {
            let permit = permits.clone().acquire_owned().await;
            (permit, listener.accept().await)
        };
        let (permit, accepted) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            next = next => next,
        };
        let Ok(permit) = permit else { break };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors or a connection reset before it was accepted: wait a moment, go on.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let exempt = limits.proxies.iter().any(|net| net.contains(&peer.ip()));
        let slot = match limits.per_address.filter(|_| !exempt) {
            Some(cap) => match addresses.take(peer.ip(), cap) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!("too many connections from one address; closed");
                    drop(stream);
                    continue;
                }
            },
            None => None,
        };
        let connection = Connection { stream, peer, _permit: permit, _slot: slot };
        connections.spawn(connection.serve(router.clone(), limits.header_timeout, closing.clone()));
    }
    drop(listener);
    closing.cancel();
    let finished =
        tokio::time::timeout(limits.shutdown_timeout, async { while connections.join_next().await.is_some() {} });
    if finished.await.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "connections still open after http.shutdown_timeout; dropping them"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// One accepted connection with the room it holds.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    _slot: Option<AddressSlot>,
}

impl Connection {
    /// Serves requests until the client closes, a deadline passes, or `closing` asks it to finish.
    async fn serve(self, router: Router, header_timeout: Duration, closing: CancellationToken) {
        let peer = self.peer;
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(request.map(Body::new))
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let connection = builder.serve_connection(TokioIo::new(self.stream), service);
        tokio::pin!(connection);
        let result = tokio::select! {
            result = connection.as_mut() => result,
            () = closing.cancelled() => {
                connection.as_mut().graceful_shutdown();
                connection.as_mut().await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "connection closed");
        }
    }
}

/// Open connections per client address (IPv6 by /64).
#[derive(Clone, Default)]
struct Addresses(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl Addresses {
    /// A slot for one more connection from `ip`, or `None` when it already holds `cap`.
    fn take(&self, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let key = super::guard::limiter_key(ip);
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressSlot { addresses: self.clone(), key })
    }
}

/// One connection's place in [`Addresses`], given back when it closes.
struct AddressSlot {
    addresses: Addresses,
    key: IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.addresses.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_leaves_the_engine_its_files() {
        // The usual limit of 1,024 with 8 database and 4 SMTP connections.
        assert_eq!(connection_cap(0, Some(1_024), 76), 711);
        assert_eq!(connection_cap(100, Some(1_024), 76), 100);
        assert_eq!(connection_cap(5_000, Some(1_024), 76), 711);
        assert_eq!(connection_cap(0, Some(50), 76), 1);
        assert_eq!(connection_cap(0, None, 76), 1_024);
        assert_eq!(connection_cap(20_000, None, 76), 20_000);
    }

    #[test]
    fn an_address_gets_its_cap_of_slots_and_a_closed_one_back() {
        let addresses = Addresses::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let first = addresses.take(ip, 2).expect("first");
        let _second = addresses.take(ip, 2).expect("second");
        assert!(addresses.take(ip, 2).is_none());
        assert!(addresses.take("192.0.2.2".parse().unwrap(), 2).is_some());
        drop(first);
        assert!(addresses.take(ip, 2).is_some());
    }
}
