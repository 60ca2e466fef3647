//! A real Dovecot IMAP server (Debian's `dovecot-imapd`) for one test: its own configuration, maildir, user
//! file and (with TLS) certificates in a temporary folder, listening on free loopback ports, stopped when the
//! handle is dropped. Tests talk to it over IMAP with async-imap, as any mail client would.
//!
//! Without `/usr/sbin/dovecot`, a test fails unless `DOVECOT_TEST_SKIP=1` (set by scripts/test outside CI when
//! it could not install the package), in which case it skips loudly.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::TryStreamExt;
use tokio::net::TcpStream;

use super::free_port;

const DOVECOT: &str = "/usr/sbin/dovecot";
const SKIP_VAR: &str = "DOVECOT_TEST_SKIP";
pub const USER: &str = "bounces";
pub const PASSWORD: &str = "imap-test-password-0123";

/// How the test server is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct DovecotOptions {
    /// Also listen with TLS from the first byte, with a certificate signed by a test CA.
    pub tls: bool,
    /// Announce no MOVE capability, so clients copy, flag and expunge instead.
    pub without_move: bool,
}

pub struct Dovecot {
    child: Child,
    dir: tempfile::TempDir,
    /// The plaintext IMAP port.
    pub port: u16,
    /// The TLS port, with [`DovecotOptions::tls`].
    pub tls_port: Option<u16>,
}

pub type Session = async_imap::Session<TcpStream>;

impl Dovecot {
    /// Starts the server; `None` (after a loud line) when Dovecot is missing and `DOVECOT_TEST_SKIP=1`.
    pub async fn start(options: DovecotOptions) -> Option<Dovecot> {
        if !super::server_installed(DOVECOT, SKIP_VAR, "IMAP", "dovecot-imapd") {
            return None;
        }
        Some(super::start_on_free_ports("dovecot", || Self::start_once(options)).await)
    }

    /// One start on fresh free ports; `Err` with Dovecot's log when it did not come up.
    async fn start_once(options: DovecotOptions) -> Result<Dovecot, String> {
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        // Dovecot refuses to deliver mail as root: the mail belongs to `nobody` when the tests run as root.
        let (uid, gid) = mail_ids();
        let port = free_port();
        let tls_port = options.tls.then(free_port);
        for sub in ["run", "state", "mail", "home"] {
            std::fs::create_dir_all(root.join(sub)).expect("folder");
        }
        std::fs::write(
            root.join("users"),
            format!("{USER}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{}::\n", root.join("home").display()),
        )
        .expect("user file");
        let mut config = config_text(root, port, tls_port, options, uid);
        if options.tls {
            make_certificates(root);
            let _ =
                write!(config, "ssl = yes\nssl_cert = <{0}/server.pem\nssl_key = <{0}/server.key\n", root.display());
        } else {
            config.push_str("ssl = no\n");
        }
        std::fs::write(root.join("dovecot.conf"), config).expect("config");
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", &format!("{uid}:{gid}"), &root.join("mail").display().to_string()])
                .arg(root.join("home"))
                .status()
                .expect("chown");
            assert!(status.success());
            std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        }
        let child = Command::new(DOVECOT)
            .args(["-F", "-c"])
            .arg(root.join("dovecot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start dovecot");
        let mut server = Dovecot { child, dir, port, tls_port };
        server.wait_until_listening().await?;
        Ok(server)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    async fn wait_until_listening(&mut self) -> Result<(), String> {
        // Dovecot gives no sign of readiness but its open ports: up to 60 s in steps of 50 ms (a loaded machine).
        for port in std::iter::once(self.port).chain(self.tls_port) {
            let mut attempts = 0;
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                attempts += 1;
                if attempts >= 1_200 || self.child.try_wait().is_ok_and(|status| status.is_some()) {
                    return Err(self.log());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// Dovecot's own log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// A logged-in session over the plaintext port.
    pub async fn session(&self) -> Session {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting").expect("a greeting");
        client.login(USER, PASSWORD).await.map_err(|(e, _)| e).expect("log in to dovecot")
    }

    /// Puts `message` in `folder` (created when missing), as a mail server's delivery would.
    pub async fn append(&self, folder: &str, message: &[u8]) {
        let mut session = self.session().await;
        let _ = session.create(folder).await;
        session.append(folder, None, None, message).await.expect("APPEND");
        session.logout().await.expect("LOGOUT");
    }

    /// Every folder with the number of messages in it, and how many are flagged \Deleted in all.
    pub async fn census(&self) -> (BTreeMap<String, u32>, usize) {
        let mut session = self.session().await;
        let names: Vec<String> = session
            .list(Some(""), Some("*"))
            .await
            .expect("LIST")
            .try_collect::<Vec<_>>()
            .await
            .expect("LIST")
            .iter()
            // A parent folder that exists only as a level of the hierarchy holds no messages.
            .filter(|n| !n.attributes().contains(&async_imap::types::NameAttribute::NoSelect))
            .map(|n| n.name().to_owned())
            .collect();
        let mut counts = BTreeMap::new();
        let mut deleted = 0;
        for name in names {
            let mailbox = session.select(&name).await.expect("SELECT");
            if mailbox.exists > 0 {
                let fetched = session.fetch("1:*", "FLAGS").await.expect("FETCH").try_collect::<Vec<_>>().await;
                deleted += fetched
                    .expect("FETCH")
                    .iter()
                    .filter(|f| f.flags().any(|flag| flag == async_imap::types::Flag::Deleted))
                    .count();
            }
            counts.insert(name, mailbox.exists);
        }
        session.logout().await.expect("LOGOUT");
        (counts, deleted)
    }

    /// The Subject headers of the messages in `folder`, sorted.
    pub async fn subjects(&self, folder: &str) -> Vec<String> {
        let mut session = self.session().await;
        let mailbox = session.select(folder).await.expect("SELECT");
        let mut subjects = Vec::new();
        if mailbox.exists > 0 {
            let fetched: Vec<_> =
                session.fetch("1:*", "BODY.PEEK[HEADER]").await.expect("FETCH").try_collect().await.expect("FETCH");
            for message in &fetched {
                let text = String::from_utf8_lossy(message.header().unwrap_or_default()).into_owned();
                let subject = text.lines().find_map(|line| line.strip_prefix("Subject:")).unwrap_or_default();
                subjects.push(subject.trim().to_owned());
            }
        }
        session.logout().await.expect("LOGOUT");
        subjects.sort();
        subjects
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_text(root: &Path, port: u16, tls_port: Option<u16>, options: DovecotOptions, uid: u32) -> String {
    let root = root.display();
    let (internal, login) = if running_as_root() {
        ("dovecot".to_owned(), "dovenull".to_owned())
    } else {
        let me = std::env::var("USER").unwrap_or_else(|_| "nobody".to_owned());
        (me.clone(), me)
    };
    let mut text = format!(
        "protocols = imap\nlisten = 127.0.0.1\nbase_dir = {root}/run\nstate_dir = {root}/state\n\
         log_path = {root}/dovecot.log\ninfo_log_path = {root}/dovecot.log\n\
         default_internal_user = {internal}\ndefault_login_user = {login}\n\
         first_valid_uid = {uid}\nlast_valid_uid = 0\n\
         disable_plaintext_auth = no\nauth_mechanisms = plain login\n\
         mail_location = maildir:{root}/mail/%u\n\
         passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {root}/users\n}}\n\
         userdb {{\n  driver = passwd-file\n  args = username_format=%u {root}/users\n}}\n\
         service anvil {{\n  chroot =\n}}\n\
         service imap-login {{\n  chroot =\n  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}\n\
         inet_listener imaps {{\n    address = 127.0.0.1\n    port = {tls}\n{ssl}  }}\n}}\n",
        tls = tls_port.unwrap_or(0),
        ssl = if tls_port.is_some() { "    ssl = yes\n" } else { "" },
    );
    if options.without_move {
        text.push_str("imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE UIDPLUS\n");
    }
    text
}

/// A test CA and a certificate for 127.0.0.1 signed by it (rustls does not take a self-signed leaf as a root).
pub fn make_certificates(root: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(root).output().expect("openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Tidings test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(root.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n")
        .expect("extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

fn running_as_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The uid and gid the mail belongs to: `nobody` as root, else the current user.
fn mail_ids() -> (u32, u32) {
    let id = |flag: &str, user: Option<&str>| -> u32 {
        let mut command = Command::new("id");
        command.arg(flag);
        if let Some(user) = user {
            command.arg(user);
        }
        let out = command.output().expect("id");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number")
    };
    if running_as_root() {
        (id("-u", Some("nobody")), id("-g", Some("nobody")))
    } else {
        (id("-u", None), id("-g", None))
    }
}
