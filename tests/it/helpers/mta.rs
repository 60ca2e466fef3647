//! Real mail transfer agents for the bounce tests: a private Postfix instance on loopback ports (its own
//! configuration, queue and data folders in a temporary folder, started with `master -w` and stopped by its pid)
//! and Debian's Exim binary run with its own configuration file and spool. `scripts/test` installs both (Exim's
//! packages are unpacked into a cache folder, since `exim4-daemon-light` conflicts with `postfix`) and says
//! where Exim is (`EXIM_BIN`). Both need root. Outside CI, when scripts/test could not provide them, it sets
//! `MTA_TEST_SKIP=1` and the tests say loudly that they are skipped; without either, they fail.

// A test binary uses only part of this helper; the rest must not fail the build.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Set by scripts/test outside CI when it could not install the MTAs or is not root.
const SKIP_VAR: &str = "MTA_TEST_SKIP";
/// The Exim binary scripts/test unpacked.
const EXIM_VAR: &str = "EXIM_BIN";
const POSTFIX_MASTER: &str = "/usr/lib/postfix/sbin/master";

/// Whether the MTA tests can run; `false` (after saying so on stderr) when scripts/test said to skip them.
/// Panics when they cannot run and nobody said so: a missing MTA is never silent.
fn available(what: &str, present: bool) -> bool {
    let root = Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if present && root {
        return true;
    }
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {what} test ({SKIP_VAR}=1: scripts/test could not provide it, or this is not root)");
        return false;
    }
    panic!("{what} is not available (installed: {present}, root: {root}): run the tests through scripts/test as root");
}

/// A free loopback port: bound, read, released. Postfix names its ports in its configuration, so the test
/// cannot hand it a bound socket.
pub use super::free_port;

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A private Postfix: an smtpd on `port`, and a transport map that sends each given domain to its own
/// `smtp:[127.0.0.1]:PORT` next hop. Nothing is delivered locally (`mydestination` is empty, no relayhost).
/// Messages that fail are tried once (`maximal_queue_lifetime = 0`), so a 4xx reply turns into a DSN at once.
pub struct Postfix {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Postfix {
    /// Starts an instance; `None` when the test is to be skipped.
    pub fn start(routes: &[(&str, u16)]) -> Option<Postfix> {
        if !available("Postfix", Path::new(POSTFIX_MASTER).exists()) {
            return None;
        }
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        // Postfix's daemons run as the postfix user and must reach the queue.
        run(Command::new("chmod").arg("0755").arg(root));
        let queue = root.join("queue");
        let data = root.join("data");
        run(Command::new("install").args(["-d", "-o", "root", "-m", "0755"]).arg(&queue).arg(queue.join("pid")));
        run(Command::new("install").args(["-d", "-o", "postfix", "-m", "0700"]).arg(&data));
        for name in [
            "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming", "private", "saved",
            "trace",
        ] {
            run(Command::new("install").args(["-d", "-o", "postfix", "-m", "0700"]).arg(queue.join(name)));
        }
        run(Command::new("install")
            .args(["-d", "-o", "postfix", "-g", "postdrop", "-m", "0730"])
            .arg(queue.join("maildrop")));
        run(Command::new("install")
            .args(["-d", "-o", "postfix", "-g", "postdrop", "-m", "0710"])
            .arg(queue.join("public")));
        let transport: Vec<String> =
            routes.iter().map(|(domain, port)| format!("{domain}=smtp:[127.0.0.1]:{port}")).collect();
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             meta_directory = /etc/postfix\n\
             mail_owner = postfix\n\
             setgid_group = postdrop\n\
             myhostname = mta.tidings.test\n\
             mydomain = tidings.test\n\
             inet_interfaces = loopback-only\n\
             inet_protocols = ipv4\n\
             mydestination =\n\
             relayhost =\n\
             relay_domains =\n\
             mynetworks = 127.0.0.0/8\n\
             smtpd_relay_restrictions = permit_mynetworks, reject\n\
             transport_maps = inline:{{ {transport} }}\n\
             maillog_file = {root}/maillog\n\
             maillog_file_prefixes = {root}\n\
             alias_maps =\n\
             alias_database =\n\
             local_recipient_maps =\n\
             smtp_tls_security_level = none\n\
             smtpd_tls_security_level = none\n\
             maximal_queue_lifetime = 0\n\
             bounce_queue_lifetime = 0\n\
             queue_run_delay = 1s\n\
             minimal_backoff_time = 1s\n\
             maximal_backoff_time = 2s\n\
             biff = no\n",
            queue = queue.display(),
            data = data.display(),
            root = root.display(),
            transport = transport.join(", "),
        );
        std::fs::write(root.join("main.cf"), main_cf).expect("write main.cf");
        let services = [
            "pickup unix n - n 60 1 pickup",
            "cleanup unix n - n - 0 cleanup",
            "qmgr unix n - n 300 1 qmgr",
            "rewrite unix - - n - - trivial-rewrite",
            "bounce unix - - n - 0 bounce",
            "defer unix - - n - 0 bounce",
            "trace unix - - n - 0 bounce",
            "verify unix - - n - 1 verify",
            "flush unix n - n 1000? 0 flush",
            "proxymap unix - - n - - proxymap",
            "smtp unix - - n - - smtp",
            "relay unix - - n - - smtp",
            "showq unix n - n - - showq",
            "error unix - - n - - error",
            "retry unix - - n - - error",
            "discard unix - - n - - discard",
            "anvil unix - - n - 1 anvil",
            "scache unix - - n - 1 scache",
            "postlog unix-dgram n - n - 1 postlogd",
        ];
        // A free port can be taken by another test between our look and the master's bind: start again on another.
        for _ in 0..5 {
            let port = free_port();
            let master_cf = format!("127.0.0.1:{port} inet n - n - - smtpd\n{}\n", services.join("\n"));
            std::fs::write(root.join("master.cf"), master_cf).expect("write master.cf");
            // `-w`: wait until the master is up, then return; it runs detached, and `Drop` stops it by its pid.
            let output = Command::new(POSTFIX_MASTER).arg("-c").arg(root).arg("-w").output().expect("run postfix");
            if output.status.success() {
                return Some(Postfix { dir, port });
            }
            let said = format!(
                "{}{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(root.join("maillog")).unwrap_or_default()
            );
            assert!(said.contains("in use"), "the Postfix master did not start: {said}");
        }
        panic!("the Postfix master did not start: its port was taken five times in a row")
    }

    /// Postfix's own log of this instance, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Asks the queue manager to try every deferred message now.
    pub fn flush(&self) {
        let _ = Command::new("postqueue").arg("-c").arg(self.dir.path()).arg("-f").output();
    }

    fn master_pid(&self) -> Option<String> {
        let pid = std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid")).ok()?;
        Some(pid.trim().to_owned()).filter(|p| !p.is_empty())
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // The master stops its children on SIGTERM. Only this instance's master is signalled, by its pid.
        if let Some(pid) = self.master_pid() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            for _ in 0..50 {
                if !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Debian's Exim, run once per message with its own configuration and spool (never as a daemon).
pub struct Exim {
    pub dir: tempfile::TempDir,
    binary: PathBuf,
    bounce_domain: String,
    relay_port: u16,
    command: String,
}

impl Exim {
    /// An Exim that relays `example.com` to the SMTP server on `relay_port` (a receiving server that refuses a
    /// recipient makes Exim write its DSN at once, with the server's reply as its Diagnostic-Code) and delivers
    /// mail for `bounce_domain` through a `pipe` transport to `command` (run with only `environment`, as Exim
    /// runs pipes; the recipient comes from the `Envelope-to:` header Exim adds). `None` when skipped.
    ///
    /// Exim gives up root when it runs with `-C` (its configuration is not in TRUSTED_CONFIG_LIST), so it runs as
    /// Debian-exim, and the pipe does too: whatever `command` writes must be writable by that user.
    pub fn new(bounce_domain: &str, relay_port: u16, command: &str, environment: &[(&str, &str)]) -> Option<Exim> {
        let binary = std::env::var(EXIM_VAR).ok().map(PathBuf::from);
        if !available("Exim", binary.as_ref().is_some_and(|b| b.exists())) {
            return None;
        }
        let binary = binary.expect("checked above");
        let dir = tempfile::tempdir().expect("temporary folder");
        let root = dir.path();
        run(Command::new("chmod").arg("0755").arg(root));
        for name in ["spool", "log"] {
            run(Command::new("install").args(["-d", "-o", "Debian-exim", "-m", "0750"]).arg(root.join(name)));
        }
        let exim =
            Exim { dir, binary, bounce_domain: bounce_domain.to_owned(), relay_port, command: command.to_owned() };
        exim.configure(environment);
        Some(exim)
    }

    /// Writes the configuration, with `environment` for the pipe.
    fn configure(&self, environment: &[(&str, &str)]) {
        let (root, binary, bounce_domain, relay_port, command) =
            (self.dir.path(), &self.binary, &self.bounce_domain, self.relay_port, &self.command);
        let environment: Vec<String> = environment.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let config = format!(
            "exim_path = {binary}\n\
             primary_hostname = exim.tidings.test\n\
             spool_directory = {root}/spool\n\
             log_file_path = {root}/log/%slog\n\
             keep_environment =\n\
             trusted_users = root\n\
             begin routers\n\
             tidings:\n  driver = accept\n  domains = {bounce_domain}\n  transport = tidings_pipe\n\
             remote:\n  driver = manualroute\n  domains = example.com\n  route_list = * 127.0.0.1\n\
             \x20 self = send\n  transport = remote_smtp\n\
             begin transports\n\
             remote_smtp:\n  driver = smtp\n  port = {relay_port}\n  allow_localhost = true\n\
             tidings_pipe:\n  driver = pipe\n  command = {command}\n  environment = <; {environment}\n\
             \x20 envelope_to_add = true\n  return_path_add = true\n  user = Debian-exim\n  temp_errors = 75\n\
             begin retry\n* * F,1h,1h\n",
            binary = binary.display(),
            root = root.display(),
            environment = environment.join(" ; "),
        );
        let path = root.join("exim.conf");
        std::fs::write(&path, config).expect("write exim.conf");
        // It holds the pipe's environment (a database URL): only root and Exim's user read it.
        run(Command::new("chown").arg("root:Debian-exim").arg(&path));
        run(Command::new("chmod").arg("0640").arg(&path));
    }

    /// Changes the pipe's environment (the database URL), as an operator edits the configuration.
    pub fn set_pipe_environment(&self, environment: &[(&str, &str)]) {
        self.configure(environment);
    }

    /// Messages in Exim's queue (`-bpc`).
    pub fn queued(&self) -> usize {
        let count = run(Command::new(&self.binary).arg("-C").arg(self.dir.path().join("exim.conf")).arg("-bpc"));
        count.parse().unwrap_or_else(|_| panic!("exim -bpc said {count}"))
    }

    /// A forced queue run (`-qff`): every queued message is tried now, in the foreground.
    pub fn run_queue(&self) {
        run(Command::new(&self.binary).arg("-C").arg(self.dir.path().join("exim.conf")).arg("-qff"));
    }

    /// Submits `message` from `sender` to `recipient` and delivers it at once (`-odi`): the failure, the
    /// DSN Exim writes about it and that DSN's delivery through the pipe all happen before this returns.
    pub fn submit(&self, sender: &str, recipient: &str, message: &[u8]) {
        use std::io::Write;
        let mut child = Command::new(&self.binary)
            .arg("-C")
            .arg(self.dir.path().join("exim.conf"))
            .args(["-odi", "-f", sender, recipient])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run exim");
        child.stdin.take().expect("stdin").write_all(message).expect("write the message");
        let output = child.wait_with_output().expect("wait for exim");
        let status = output.status;
        assert!(status.success(), "exim exited with {status}: {}", self.log());
    }

    /// Exim's main log, for assertions and failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log/mainlog")).unwrap_or_default()
    }
}
