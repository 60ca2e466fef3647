//! A real DNS server for one test: Debian's dnsmasq, in the foreground on a free loopback port, answering only
//! from the records the test gives it (TXT and MX under `.test`, everything else there NXDOMAIN), stopped when
//! the handle is dropped. `tidings doctor` asks it through `doctor.nameserver`.
//!
//! Without `/usr/sbin/dnsmasq`, a test fails unless `DNS_TEST_SKIP=1` (set by scripts/test outside CI when it
//! could not install the package), in which case it skips loudly.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::net::TcpStream;

const DNSMASQ: &str = "/usr/sbin/dnsmasq";
const SKIP_VAR: &str = "DNS_TEST_SKIP";

/// The records a test zone holds.
#[derive(Debug, Default, Clone)]
pub struct Zone {
    /// (name, text): one TXT record each; text longer than 255 bytes is split into strings, as DNS requires.
    pub txt: Vec<(String, String)>,
    /// (name, exchange host).
    pub mx: Vec<(String, String)>,
}

impl Zone {
    pub fn txt(mut self, name: &str, text: &str) -> Self {
        self.txt.push((name.to_owned(), text.to_owned()));
        self
    }

    pub fn mx(mut self, name: &str, host: &str) -> Self {
        self.mx.push((name.to_owned(), host.to_owned()));
        self
    }

    /// The zone without any TXT record at `name`.
    pub fn without_txt(mut self, name: &str, starting: &str) -> Self {
        self.txt.retain(|(n, text)| !(n == name && text.starts_with(starting)));
        self
    }
}

pub struct DnsServer {
    child: Child,
    log: tempfile::NamedTempFile,
    pub port: u16,
}

impl DnsServer {
    /// Starts dnsmasq serving `zone`; `None` (after a loud line) when it is missing and `DNS_TEST_SKIP=1`.
    pub async fn start(zone: &Zone) -> Option<DnsServer> {
        if !super::server_installed(DNSMASQ, SKIP_VAR, "DNS", "dnsmasq-base") {
            return None;
        }
        Some(super::start_on_free_ports("dnsmasq", || Self::start_once(zone)).await)
    }

    /// One start on a fresh free port; `Err` with dnsmasq's log when it did not come up.
    async fn start_once(zone: &Zone) -> Result<DnsServer, String> {
        let log = tempfile::NamedTempFile::new().expect("log file");
        let port = free_port();
        let mut command = Command::new(DNSMASQ);
        command.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--pid-file=",
            "--local=/test/",
            "--log-facility=-",
        ]);
        command.arg(format!("--port={port}"));
        for (name, text) in &zone.txt {
            let chunks: Vec<&str> =
                text.as_bytes().chunks(255).map(|c| std::str::from_utf8(c).expect("ASCII")).collect();
            command.arg(format!("--txt-record={name},{}", chunks.join(",")));
        }
        for (name, host) in &zone.mx {
            command.arg(format!("--mx-host={name},{host},10"));
        }
        let child =
            command.stdout(Stdio::null()).stderr(log.reopen().expect("log file")).spawn().expect("start dnsmasq");
        let mut server = DnsServer { child, log, port };
        server.wait_until_listening().await?;
        Ok(server)
    }

    /// `127.0.0.1:PORT`, for `doctor.nameserver`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn wait_until_listening(&mut self) -> Result<(), String> {
        // dnsmasq gives no sign of readiness but its open ports: up to 30 s in steps of 20 ms (a loaded machine).
        for _ in 0..1_500 {
            if TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("dnsmasq exited ({status}): {}", self.log()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(format!("dnsmasq did not start: {}", self.log()))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port free for both UDP and TCP at this moment.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind UDP");
        let port = udp.local_addr().expect("address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
