//! Slow, idle, stalled and numerous clients over real sockets: each is closed at its configured deadline or
//! cap while other clients are still answered. Deadlines are set small here; the tests assert that a
//! connection was closed or a request answered, never how long it took (the waits below only bound a test that
//! would otherwise hang).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{PHONE, WebApp};
use crate::helpers::TestDatabase;

/// How long a test waits for the server to close a connection or answer before it fails.
const BOUND: Duration = Duration::from_secs(30);

/// A raw connection to the app from `from` (any 127.0.0.0/8 address is this machine).
async fn connect(app: &WebApp, from: &str) -> TcpStream {
    let server: SocketAddr = app.base.trim_start_matches("http://").parse().expect("the app's address");
    let socket = TcpSocket::new_v4().expect("a socket");
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().expect("an address"), 0)).expect("bind the client");
    socket.connect(server).await.expect("connect")
}

/// Reads until the server closes the connection (end of stream or reset); returns what it sent, or `None`
/// when it was still open after [`BOUND`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read).await.ok()?;
    Some(String::from_utf8_lossy(&received).into_owned())
}

/// A connection whose far end closed answers a read with end of stream or an error at once.
async fn is_closed(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(tokio::time::timeout(Duration::from_millis(200), stream.read(&mut byte)).await, Ok(Ok(0) | Err(_)))
}

/// The app with short deadlines: 1 s for a request head, 1 s for a body.
async fn app_with(extra: &[(&str, &str)]) -> WebApp {
    let mut env = vec![("TIDINGS_HTTP__HEADER_TIMEOUT", "1s"), ("TIDINGS_HTTP__BODY_TIMEOUT", "1s")];
    env.extend_from_slice(extra);
    WebApp::start(TestDatabase::sqlite().await, 0, &env).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_its_headers_one_byte_at_a_time_is_closed_at_the_header_deadline() {
    let app = app_with(&[]).await;
    let mut stream = connect(&app, "127.0.0.1").await;
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut closed = false;
    // One byte every 100 ms never completes the head; the server must close the connection anyway.
    for byte in request.iter().cycle().take(BOUND.as_millis() as usize / 100) {
        if stream.write_all(&[*byte]).await.is_err() || is_closed(&mut stream).await {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(closed, "a client trickling its headers was never closed");
    // Others are still answered.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_and_a_kept_alive_one_are_closed_at_the_header_deadline() {
    let app = app_with(&[]).await;
    let mut idle = connect(&app, "127.0.0.1").await;
    assert_eq!(read_until_closed(&mut idle).await.as_deref(), Some(""), "an idle connection stays open");

    let mut kept = connect(&app, "127.0.0.1").await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("send");
    let answered = read_until_closed(&mut kept).await.expect("a kept-alive idle connection stays open");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
    assert!(!answered.to_ascii_lowercase().contains("connection: close"), "the answer kept the connection alive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_post_stalled_mid_body_gets_a_408_page_and_is_closed() {
    let app = app_with(&[("TIDINGS_HTTP__HEADER_TIMEOUT", "1h")]).await;
    let mut stream = connect(&app, "127.0.0.1").await;
    let head = "POST /subscribe HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\nTransfer-Encoding: chunked\r\n\
                Content-Type: application/x-www-form-urlencoded\r\n\r\n6\r\nemail=\r\n";
    stream.write_all(head.as_bytes()).await.expect("send");
    let answer = read_until_closed(&mut stream).await.expect("a stalled body kept the connection open");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("That took too long"), "{answer}");
    assert_eq!(app.query_i64("SELECT COUNT(*) FROM subscribers").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_address_cap_are_closed_while_another_address_is_still_answered() {
    let app =
        app_with(&[("TIDINGS_HTTP__HEADER_TIMEOUT", "1h"), ("TIDINGS_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "5")]).await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut stream = connect(&app, "127.0.0.1").await;
        // A partial head: under a one-hour deadline these stay open as long as the server lets them.
        let _ = stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a").await;
        slow.push(stream);
    }
    let other = reqwest::Client::builder()
        .local_address("127.0.0.2".parse::<IpAddr>().expect("address"))
        .user_agent(PHONE)
        .build()
        .expect("client");
    let answered = other.get(format!("{}/healthz", app.base)).send().await.expect("GET from another address");
    assert_eq!(answered.status(), 200);
    let mut closed = 0;
    for stream in &mut slow {
        if is_closed(stream).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 45, "all but 5 of one address's connections are closed at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_the_total_cap_waits_and_is_answered_when_one_closes() {
    let app = app_with(&[
        ("TIDINGS_HTTP__HEADER_TIMEOUT", "1h"),
        ("TIDINGS_HTTP__MAX_CONNECTIONS", "3"),
        ("TIDINGS_HTTP__MAX_CONNECTIONS_PER_ADDRESS", "0"),
    ])
    .await;
    let mut slow = Vec::new();
    for i in 0..3 {
        let mut stream = connect(&app, &format!("127.0.1.{}", i + 1)).await;
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a").await.expect("send");
        slow.push(stream);
    }
    let mut waiting = connect(&app, "127.0.2.1").await;
    waiting.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.expect("send");
    // While three connections are open, the fourth is not served (a negative check: it can only pass
    // wrongly if the server were slow, never fail because of it).
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut byte)).await;
    assert!(early.is_err(), "a fourth connection was served beyond a cap of 3");
    drop(slow.pop());
    let answer = read_until_closed(&mut waiting).await.expect("answered once a connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
