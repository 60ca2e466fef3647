//! `tidings serve` under systemd's notify protocol, with a unix datagram socket of the test's own as
//! NOTIFY_SOCKET: READY=1 once the port answers, WATCHDOG=1 after engine steps, STOPPING=1 on SIGTERM.

use std::io::BufReader;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use super::{KEYS, http_get, port_in, read_until, spawn_tidings, terminate};

/// Waits for the next datagram (the timeout only bounds a broken run; nothing waits on time otherwise).
fn next_message(socket: &UnixDatagram) -> String {
    let mut buffer = [0u8; 4096];
    let length = socket.recv(&mut buffer).expect("a notification from tidings within 60 s");
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[test]
fn serve_tells_systemd_it_is_ready_once_its_port_answers_pings_the_watchdog_and_says_when_it_stops() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    socket.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let socket_name = socket_path.to_str().expect("UTF-8 path");
    let env = [
        ("TIDINGS_HTTP__BIND", "127.0.0.1:0"),
        ("TIDINGS_LINKS__SIGNING_KEYS", KEYS),
        ("NOTIFY_SOCKET", socket_name),
        // 200 ms: the engine must step (and ping) at least every 100 ms, idle or not.
        ("WATCHDOG_USEC", "200000"),
    ];
    let mut serve = spawn_tidings(&["serve"], &env, dir.path());

    let ready = next_message(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "the first notification is READY=1: {ready}");
    // At READY=1 the store is open and migrated and the listener bound: the port answers at once.
    let port = port_in(&ready);
    let (code, body) = http_get(port, "/readyz");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"pending\":0"), "{body}");
    let mut stdout = BufReader::new(serve.stdout.take().expect("stdout"));
    let printed = read_until(&mut stdout, "tidings serves").concat();
    assert_eq!(port_in(&printed), port);

    let mut pings = 0;
    while pings < 3 {
        let message = next_message(&socket);
        assert!(!message.contains("READY=1"), "READY=1 is sent once: {message}");
        pings += usize::from(message.lines().any(|l| l == "WATCHDOG=1"));
    }

    let stopping = std::thread::spawn(move || {
        loop {
            let message = next_message(&socket);
            if message.lines().any(|l| l == "STOPPING=1") {
                return message;
            }
        }
    });
    terminate(serve);
    let message = stopping.join().expect("the listener thread");
    assert!(message.contains("STOPPING=1"));
}
