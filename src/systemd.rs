//! Talking to the service manager (systemd's `Type=notify` protocol): READY=1 once `serve` can work, WATCHDOG=1
//! after each completed engine step, STOPPING=1 when shutdown begins.
//!
//! Through the `sd-notify` crate, which reads the protocol's own variables (`NOTIFY_SOCKET`, `WATCHDOG_USEC`,
//! `WATCHDOG_PID`) as libsystemd does: they belong to the service manager, not to the configuration. Outside
//! systemd they are unset and every call here does nothing. A failed notification is logged, never fatal.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells the service manager that `serve` is ready: the store is open, migrations are applied and the HTTP
/// listener is bound (on `port`, also given as the status line).
pub fn ready(port: u16) {
    let status = format!("serving http://127.0.0.1:{port}");
    send(&[NotifyState::Ready, NotifyState::Status(&status)]);
}

/// Tells the service manager that shutdown has begun (messages on the wire are being finished).
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping: finishing the messages being sent")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager");
    }
}

/// The watchdog systemd keeps when the unit has `WatchdogSec=`: it restarts the service unless it hears
/// WATCHDOG=1 within that time. The engine pings after each step it completes, so a stuck engine is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watchdog {
    timeout: Duration,
}

impl Watchdog {
    /// The watchdog the service manager asked for, if any.
    pub fn from_service_manager() -> Option<Watchdog> {
        sd_notify::watchdog_enabled().filter(|timeout| !timeout.is_zero()).map(|timeout| Watchdog { timeout })
    }

    /// How long the engine may wait between steps: half the timeout, as sd_watchdog_enabled(3) advises.
    pub fn interval(&self) -> Duration {
        self.timeout / 2
    }

    /// Reports a completed step.
    pub fn ping(&self) {
        send(&[NotifyState::Watchdog]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_pings_at_half_the_watchdog_timeout() {
        let watchdog = Watchdog { timeout: Duration::from_secs(30) };
        assert_eq!(watchdog.interval(), Duration::from_secs(15));
    }
}
