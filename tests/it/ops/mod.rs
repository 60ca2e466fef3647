//! Running Tidings for real: the binary from an empty folder (as `cargo install` leaves it), under systemd's
//! notify protocol, its completions and manual pages, `config show | check`, and `/readyz`.

mod config_show;
mod docs;
mod install;
mod ready;
mod systemd;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

/// A link signing key for daemons started here.
pub const KEYS: &str = "1:ops-test-signing-key-ops-test-signing-key-0123";

/// The binary in `dir` with only the given variables of its own (every `TIDINGS_*` and systemd variable of the
/// test process removed), stdout piped.
pub fn spawn_tidings(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(args).current_dir(dir).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") || ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"].contains(&key.as_str()) {
            command.env_remove(key);
        }
    }
    command.env("TIDINGS_LOG__LEVEL", "warn");
    command.envs(env.iter().copied());
    command.spawn().expect("start the tidings binary")
}

/// Reads stdout lines until one contains `marker`; returns every line read (the last holds the marker).
pub fn read_until(stdout: &mut BufReader<ChildStdout>, marker: &str) -> Vec<String> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).expect("read stdout");
        assert!(read > 0, "the process closed stdout before printing `{marker}`; it printed:\n{}", lines.join(""));
        let found = line.contains(marker);
        lines.push(line);
        if found {
            return lines;
        }
    }
}

/// The port in the first `http://127.0.0.1:PORT` of `text`.
pub fn port_in(text: &str) -> u16 {
    let start = text.find("http://127.0.0.1:").expect("an address") + "http://127.0.0.1:".len();
    let digits: String = text[start..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a port")
}

/// A plain HTTP/1.0 GET: the status code and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the daemon");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send the request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read the response");
    let code = response.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status line");
    let body = response.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default();
    (code, body)
}

/// Sends SIGTERM and waits: the exit status must be success.
pub fn terminate(mut child: Child) -> String {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
    assert!(status.success());
    let status = child.wait().expect("wait for tidings");
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        err.read_to_string(&mut stderr).expect("read stderr");
    }
    assert!(status.success(), "tidings exited with {status} after SIGTERM; stderr:\n{stderr}");
    stderr
}
