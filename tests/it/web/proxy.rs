//! Behind a reverse proxy: Debian's nginx, run with `contrib/nginx/tidings.conf` (its ports and certificate
//! substituted) and a self-signed certificate made here with openssl, terminates TLS in front of the
//! application. A request through it is answered; the rate limit sees each client's own address through the
//! proxy (`X-Forwarded-For` from a trusted proxy), and a direct request cannot choose its address with that
//! header.
//!
//! nginx connects to Tidings from 127.0.0.2 (`proxy_bind`), the only trusted proxy here, and each client from
//! its own loopback address, so one machine plays the proxy, the readers and a forger.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types};

use super::WebApp;
use crate::helpers::TestDatabase;
use crate::helpers::free_port;

/// Set by scripts/test outside CI when it could not install nginx: the proxy test then skips, loudly.
const SKIP_VAR: &str = "NGINX_TEST_SKIP";
const NGINX: &str = "/usr/sbin/nginx";
const PROXY: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// nginx in the foreground with the contrib configuration; killed when dropped.
struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(program: &str, args: &[&str]) {
    let output = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
}

/// A self-signed certificate for `localhost` (`cert.pem`, `key.pem` in `dir`); returns it in DER.
fn certificate(dir: &Path) -> Vec<u8> {
    let (cert, key, der) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("cert.der"));
    let (cert, key, der) = (cert.to_str().unwrap(), key.to_str().unwrap(), der.to_str().unwrap());
    run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            // A server's certificate, not a CA's: webpki refuses a CA certificate as the server's own.
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ],
    );
    run("openssl", &["x509", "-in", cert, "-outform", "DER", "-out", der]);
    std::fs::read(der).expect("read the certificate")
}

/// Starts nginx on a free port in front of `upstream`; `None` when nginx is missing outside CI.
async fn start_nginx(upstream: u16) -> Option<(Nginx, Vec<u8>)> {
    if !Path::new(NGINX).exists() {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") && !ci {
            eprintln!("SKIPPED: the reverse-proxy test ({SKIP_VAR}=1: scripts/test could not install nginx)");
            return None;
        }
        panic!("{NGINX} is missing: scripts/test installs Debian's nginx");
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let der = certificate(dir.path());
    let port = free_port();
    let path = |name: &str| dir.path().join(name).display().to_string();
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/nginx/tidings.conf"))
        .expect("read contrib/nginx/tidings.conf");
    let substitutions = [
        ("listen 443 ssl;", format!("listen 127.0.0.1:{port} ssl;")),
        ("server 127.0.0.1:8080;", format!("server 127.0.0.1:{upstream};")),
        ("/etc/letsencrypt/live/news.example.com/fullchain.pem", path("cert.pem")),
        ("/etc/letsencrypt/live/news.example.com/privkey.pem", path("key.pem")),
    ];
    let mut site = example.clone();
    for (from, to) in &substitutions {
        assert!(site.contains(from), "contrib/nginx/tidings.conf no longer has `{from}`");
        site = site.replace(from, to);
    }
    std::fs::write(dir.path().join("tidings.conf"), site).expect("write the site");
    let main = format!(
        "pid {pid};\nerror_log {log} warn;\nevents {{ worker_connections 64; }}\nhttp {{\n  access_log off;\n  \
         client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fastcgi;\n  \
         uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n  proxy_bind {PROXY};\n  include {site};\n}}\n",
        pid = path("nginx.pid"),
        log = path("error.log"),
        tmp = dir.path().display(),
        site = path("tidings.conf"),
    );
    std::fs::write(dir.path().join("nginx.conf"), main).expect("write nginx.conf");
    let child = Command::new(NGINX)
        .args(["-p", &path(""), "-c", &path("nginx.conf"), "-g", "daemon off; user root;"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nginx");
    let nginx = Nginx { child, port, _dir: dir };
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Some((nginx, der));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default();
    panic!("nginx did not start listening on {port}: {log}");
}

/// The status of `GET path` over TLS to `port`, from the loopback address `from`, with extra header lines.
async fn get_over_tls(port: u16, certificate: &[u8], from: Ipv4Addr, path: &str, headers: &str) -> u16 {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki_types::CertificateDer::from(certificate.to_vec())).expect("trust the test certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).expect("bind the client's address");
    let tcp = socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("connect to nginx");
    let name = pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake with nginx");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("send the request");
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    status_of(&response)
}

/// The status of `GET path` straight to the application (plain HTTP), from `from`, with extra header lines.
async fn get_direct(port: u16, from: Ipv4Addr, path: &str, headers: &str) -> u16 {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).expect("bind the client's address");
    let mut tcp = socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("connect to tidings");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.expect("send the request");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("read the response");
    status_of(&response)
}

fn status_of(response: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(response);
    let line = text.lines().next().unwrap_or_default();
    line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("no status line: {text:.200}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_nginx_with_tls_the_rate_limit_sees_each_reader_and_a_direct_request_cannot_forge_its_address() {
    let db = TestDatabase::sqlite().await;
    let limits = [
        ("TIDINGS_HTTP__RATE_LIMIT_PER_MINUTE", "1"),
        ("TIDINGS_HTTP__RATE_LIMIT_BURST", "2"),
        ("TIDINGS_HTTP__CLIENT_IP_HEADER", "X-Forwarded-For"),
        ("TIDINGS_HTTP__TRUSTED_PROXIES", "127.0.0.2"),
    ];
    let mut app = WebApp::start(db, 0, &limits).await;
    let upstream: u16 = app.base.rsplit(':').next().and_then(|p| p.parse().ok()).expect("the app's port");
    let Some((nginx, certificate)) = start_nginx(upstream).await else {
        app.stop().await;
        return;
    };
    let reader = Ipv4Addr::new(127, 0, 0, 3);
    let other_reader = Ipv4Addr::new(127, 0, 0, 4);

    // Through the proxy: answered, and limited per reader, whatever address a reader claims for itself.
    let forged = "X-Forwarded-For: 198.51.100.1\r\n";
    let first: Vec<u16> = [
        get_over_tls(nginx.port, &certificate, reader, "/archive", "").await,
        get_over_tls(nginx.port, &certificate, reader, "/archive", forged).await,
        get_over_tls(nginx.port, &certificate, reader, "/archive", forged).await,
    ]
    .into();
    assert_eq!(first, [200, 200, 429], "the reader's burst of 2 is used up, forged header or not");
    let other = get_over_tls(nginx.port, &certificate, other_reader, "/archive", "").await;
    assert_eq!(other, 200, "another reader behind the same proxy has a limit of its own");

    // Straight to the application from an untrusted address, the header is ignored: three different claimed
    // addresses share the connection's one limit.
    let mut direct = Vec::new();
    for claimed in ["192.0.2.1", "192.0.2.2", "192.0.2.3"] {
        let header = format!("X-Forwarded-For: {claimed}\r\n");
        direct.push(get_direct(upstream, Ipv4Addr::new(127, 0, 0, 5), "/archive", &header).await);
    }
    assert_eq!(direct, [200, 200, 429], "a direct request cannot choose its address");
    drop(nginx);
    app.stop().await;
}
