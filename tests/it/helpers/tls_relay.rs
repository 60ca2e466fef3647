//! A small SMTP relay that offers STARTTLS with a certificate for 127.0.0.1 from a test CA, then AUTH PLAIN
//! and LOGIN over TLS: what `tidings doctor` must find on a correctly set-up relay. It records every command
//! verb it received (`STARTTLS`, then `EHLO` again over TLS, `AUTH`, ...) so tests can count what the other
//! side saw; it takes no message (MAIL gets 550, and is recorded).
//!
//! tests/it/helpers/smtp_server.rs is the relay without STARTTLS.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub struct TlsRelay {
    pub port: u16,
    dir: tempfile::TempDir,
    commands: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsRelay {
    /// Starts the relay; AUTH succeeds for exactly `user` and `password`.
    pub async fn start(user: &str, password: &str) -> TlsRelay {
        let dir = tempfile::tempdir().expect("temporary folder");
        super::dovecot::make_certificates(dir.path());
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.path().join("server.pem"))
            .expect("server.pem")
            .collect::<Result<_, _>>()
            .expect("certificates");
        let key = PrivateKeyDer::from_pem_file(dir.path().join("server.key")).expect("server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("server certificate");
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let commands = Arc::new(Mutex::new(Vec::new()));
        let plain = STANDARD.encode(format!("\0{user}\0{password}"));
        let log = commands.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, plain, log) = (acceptor.clone(), plain.clone(), log.clone());
                tokio::spawn(async move {
                    let _ = session(tcp, acceptor, &plain, &log).await;
                });
            }
        });
        TlsRelay { port, dir, commands, task }
    }

    /// The test CA's certificate, for `smtp.ca_file`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Every command verb received, in order.
    pub fn commands(&self) -> Vec<String> {
        self.commands.lock().expect("lock").clone()
    }
}

impl Drop for TlsRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn session(tcp: TcpStream, acceptor: TlsAcceptor, plain: &str, log: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut stream = BufReader::new(tcp);
    stream.get_mut().write_all(b"220 relay.test ESMTP\r\n").await?;
    loop {
        let Some(line) = next_line(&mut stream, log).await? else { return Ok(()) };
        let reply: &[u8] = match verb(&line).as_str() {
            "EHLO" => b"250-relay.test\r\n250-8BITMIME\r\n250 STARTTLS\r\n",
            "STARTTLS" => {
                stream.get_mut().write_all(b"220 2.0.0 Ready to start TLS\r\n").await?;
                break;
            }
            "QUIT" => return stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await,
            _ => b"530 5.7.0 Must issue a STARTTLS command first\r\n",
        };
        stream.get_mut().write_all(reply).await?;
    }
    let tls = acceptor.accept(stream.into_inner()).await?;
    let mut stream = BufReader::new(tls);
    loop {
        let Some(line) = next_line(&mut stream, log).await? else { return Ok(()) };
        let reply: &[u8] = match verb(&line).as_str() {
            "EHLO" => b"250-relay.test\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n",
            "AUTH" => {
                let initial = line.split_whitespace().nth(2).map(str::to_owned);
                let response = match initial {
                    Some(response) => response,
                    None => {
                        stream.get_mut().write_all(b"334 \r\n").await?;
                        let Some(response) = next_line(&mut stream, log).await? else { return Ok(()) };
                        response
                    }
                };
                if response.trim() == plain {
                    b"235 2.7.0 Authentication successful\r\n"
                } else {
                    b"535 5.7.8 Authentication credentials invalid\r\n"
                }
            }
            "QUIT" => return stream.get_mut().write_all(b"221 2.0.0 Bye\r\n").await,
            _ => b"550 5.7.1 This test relay takes no mail\r\n",
        };
        stream.get_mut().write_all(reply).await?;
    }
}

/// The next command line, without its CRLF, recorded by its verb (an AUTH response is recorded as `AUTH-DATA`).
async fn next_line<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    log: &Mutex<Vec<String>>,
) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if stream.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let line = line.trim_end().to_owned();
    let recorded = if line.contains(' ') || line.chars().all(|c| c.is_ascii_alphabetic()) {
        verb(&line)
    } else {
        "AUTH-DATA".to_owned()
    };
    log.lock().expect("lock").push(recorded);
    Ok(Some(line))
}

fn verb(line: &str) -> String {
    line.split_whitespace().next().unwrap_or_default().to_ascii_uppercase()
}
