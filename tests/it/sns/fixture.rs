//! What the SNS tests stand in for AWS with: a CA made in the test, a local HTTPS server on loopback (its
//! certificate for `localhost` and 127.0.0.1, issued by that CA) that serves the signing certificate and answers
//! subscription confirmations, counting every request by path; an RSA signing key (made by `openssl genrsa`)
//! with its certificate; and a signer that builds SNS messages the way AWS documents it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tidings::configuration::SesSettings;
use tidings::webhooks::sns::{SnsConfig, SnsVerifier};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A body bigger than any certificate the verifier accepts.
const OVERSIZE_BYTES: usize = 64 * 1024;

/// The local stand-in for AWS.
pub struct Fixture {
    pub port: u16,
    /// The test CA's certificate, as a PEM file: the configured extra trust root.
    pub ca_file: PathBuf,
    pub signer: SnsSigner,
    requests: Arc<Mutex<HashMap<String, usize>>>,
    _dir: tempfile::TempDir,
}

/// Signs SNS messages with one RSA key.
pub struct SnsSigner {
    key: rsa::RsaPrivateKey,
    /// The same key as a PEM file, for `openssl dgst -sign`.
    key_file: PathBuf,
}

impl Fixture {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "Tidings test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_cert.pem()).expect("write the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().expect("server key");
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).expect("server params");
        let server_cert = server_params.signed_by(&server_key, &issuer).expect("server certificate");

        let (rsa_pem, other_pem) = rsa_keys();
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(rsa_pem).expect("openssl writes PKCS#8");
        let signing_cert = certificate_for(rsa_pem, "sns.amazonaws.com", &issuer);
        let other_cert = certificate_for(other_pem, "sns.amazonaws.com", &issuer);
        let ec_cert = certificate_for(&KeyPair::generate().expect("EC key").serialize_pem(), "ec", &issuer);

        let bodies: HashMap<&'static str, Bytes> = HashMap::from([
            ("/cert.pem", Bytes::from(signing_cert)),
            ("/other-key.pem", Bytes::from(other_cert)),
            ("/ec.pem", Bytes::from(ec_cert)),
            ("/big.pem", Bytes::from(vec![b'A'; OVERSIZE_BYTES])),
            // Served in chunks, without a Content-Length: the limit must hold while the body streams.
            ("/big-chunked.pem", Bytes::from(vec![b'A'; OVERSIZE_BYTES])),
            ("/confirm", Bytes::from_static(b"<ConfirmSubscriptionResponse/>")),
        ]);
        let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocols")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(server_cert.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .expect("server TLS");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("address").port();
        let requests = Arc::new(Mutex::new(HashMap::new()));
        tokio::spawn(serve(listener, TlsAcceptor::from(Arc::new(tls)), Arc::new(bodies), Arc::clone(&requests)));
        let key_file = dir.path().join("signing-key.pem");
        std::fs::write(&key_file, rsa_pem).expect("write the signing key");
        Self { port, ca_file, signer: SnsSigner { key, key_file }, requests, _dir: dir }
    }

    /// A verifier allowing certificates from `localhost` and trusting the test CA.
    pub fn verifier(&self, topic_arns: &[&str]) -> SnsVerifier {
        self.verifier_trusting(Some(&self.ca_file), topic_arns)
    }

    /// A verifier like [`Fixture::verifier`] that gives up on a fetch after `timeout`.
    pub fn verifier_with_timeout(&self, timeout: Duration) -> SnsVerifier {
        let mut config = SnsConfig::from_settings(&self.settings(Some(&self.ca_file), &[])).expect("settings");
        config.timeout = timeout;
        SnsVerifier::new(config).expect("verifier")
    }

    pub fn verifier_trusting(&self, ca_file: Option<&PathBuf>, topic_arns: &[&str]) -> SnsVerifier {
        SnsVerifier::new(SnsConfig::from_settings(&self.settings(ca_file, topic_arns)).expect("settings"))
            .expect("verifier")
    }

    fn settings(&self, ca_file: Option<&PathBuf>, topic_arns: &[&str]) -> SesSettings {
        SesSettings {
            enabled: true,
            cert_hosts: vec!["localhost".to_owned()],
            extra_roots_file: ca_file.map(|p| p.display().to_string()).unwrap_or_default(),
            topic_arns: topic_arns.iter().map(|t| t.to_string()).collect(),
            tolerance: jiff::SignedDuration::from_hours(1),
        }
    }

    /// `https://localhost:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// How many requests the server has answered for `path` (without its query).
    pub fn requests(&self, path: &str) -> usize {
        self.requests.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn all_requests(&self) -> usize {
        self.requests.lock().unwrap().values().sum()
    }
}

impl SnsSigner {
    /// An SNS Notification carrying `message`, signed with SignatureVersion `version` ("1" or "2").
    pub fn notification(&self, version: &str, cert_url: &str, message: &str) -> serde_json::Value {
        self.notification_at(version, cert_url, message, "2026-11-30T12:00:05.000Z")
    }

    /// Like [`SnsSigner::notification`], signed as sent at `timestamp` (ISO 8601).
    pub fn notification_at(&self, version: &str, cert_url: &str, message: &str, timestamp: &str) -> serde_json::Value {
        let mut body = json!({
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": TOPIC,
            "Message": message,
            "Timestamp": timestamp,
            "SignatureVersion": version,
            "SigningCertURL": cert_url,
            "UnsubscribeURL": "https://localhost/?Action=Unsubscribe",
        });
        self.sign(&mut body);
        body
    }

    /// An SNS SubscriptionConfirmation whose SubscribeURL is `subscribe_url`, signed with version 2.
    pub fn subscription(&self, cert_url: &str, subscribe_url: &str) -> serde_json::Value {
        self.confirmation("SubscriptionConfirmation", cert_url, subscribe_url)
    }

    /// A SubscriptionConfirmation or UnsubscribeConfirmation, signed with version 2.
    pub fn confirmation(&self, kind: &str, cert_url: &str, subscribe_url: &str) -> serde_json::Value {
        let mut body = json!({
            "Type": kind,
            "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
            "Token": "2336412f37fb687f5d51e6e2425dacbba9e4f7a2",
            "TopicArn": TOPIC,
            "Message": "You have chosen to subscribe to the topic. To confirm, visit the SubscribeURL.",
            "SubscribeURL": subscribe_url,
            "Timestamp": "2026-11-30T12:00:00.000Z",
            "SignatureVersion": "2",
            "SigningCertURL": cert_url,
        });
        self.sign(&mut body);
        body
    }

    /// Sets `Signature` over the canonical string AWS documents for the body's Type.
    pub fn sign(&self, body: &mut serde_json::Value) {
        let signed = string_to_sign(body);
        let signature = match body["SignatureVersion"].as_str() {
            Some("1") => SigningKey::<sha1::Sha1>::new(self.key.clone()).sign(signed.as_bytes()).to_vec(),
            _ => SigningKey::<rsa::sha2::Sha256>::new(self.key.clone()).sign(signed.as_bytes()).to_vec(),
        };
        body["Signature"] = json!(STANDARD.encode(signature));
    }

    /// Like [`SnsSigner::sign`], but the signature is made by OpenSSL (`openssl dgst -sha1|-sha256 -sign`), an
    /// implementation independent of the one that verifies.
    pub fn sign_with_openssl(&self, body: &mut serde_json::Value) {
        let digest = if body["SignatureVersion"] == "1" { "-sha1" } else { "-sha256" };
        let key = self.key_file.display().to_string();
        let mut child = Command::new("openssl")
            .args(["dgst", digest, "-sign", &key])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run openssl");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, string_to_sign(body).as_bytes()).expect("write to openssl");
        drop(stdin);
        let output = child.wait_with_output().expect("openssl output");
        assert!(output.status.success(), "openssl dgst failed");
        body["Signature"] = json!(STANDARD.encode(output.stdout));
    }
}

pub const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ses-feedback";

/// "Name\nvalue\n" for each signed field present, in the order AWS lists them for the message's Type.
fn string_to_sign(body: &serde_json::Value) -> String {
    let fields: &[&str] = if body["Type"] == "Notification" {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    let mut out = String::new();
    for name in fields {
        if let Some(value) = body[name].as_str() {
            out.push_str(&format!("{name}\n{value}\n"));
        }
    }
    out
}

/// A PEM certificate for the key in `key_pem`, issued by the test CA.
fn certificate_for(key_pem: &str, name: &str, issuer: &Issuer<'_, KeyPair>) -> String {
    let key = KeyPair::from_pem(key_pem).expect("a key rcgen reads");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.signed_by(&key, issuer).expect("certificate").pem()
}

/// Two RSA-2048 keys in PEM, made once for all the tests of this binary (making one takes a while).
fn rsa_keys() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| (openssl(&["genrsa", "2048"]), openssl(&["genrsa", "2048"])))
}

/// A server on loopback that accepts connections and never says a word; its port.
pub async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    port
}

fn openssl(args: &[&str]) -> String {
    let output = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(output.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("PEM is text")
}

async fn serve(
    listener: TcpListener,
    tls: TlsAcceptor,
    bodies: Arc<HashMap<&'static str, Bytes>>,
    requests: Arc<Mutex<HashMap<String, usize>>>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (tls, bodies, requests) = (tls.clone(), Arc::clone(&bodies), Arc::clone(&requests));
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(stream).await else { return };
            let service = service_fn(move |request: Request<Incoming>| {
                let path = request.uri().path().to_owned();
                *requests.lock().unwrap().entry(path.clone()).or_default() += 1;
                let response = match bodies.get(path.as_str()) {
                    Some(body) if path.contains("chunked") => {
                        let chunks: Vec<Result<Frame<Bytes>, Infallible>> =
                            body.chunks(4096).map(|c| Ok(Frame::data(Bytes::copy_from_slice(c)))).collect();
                        Response::new(StreamBody::new(futures_util::stream::iter(chunks)).boxed())
                    }
                    Some(body) => Response::new(Full::new(body.clone()).boxed()),
                    None => {
                        let mut response = Response::new(Full::new(Bytes::new()).boxed());
                        *response.status_mut() = StatusCode::NOT_FOUND;
                        response
                    }
                };
                // `/stall` completes TLS and takes the request, then never answers.
                let stall = path == "/stall";
                async move {
                    if stall {
                        std::future::pending::<()>().await;
                    }
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
