//! Logging to stderr with `tracing`, at the level and in the format `[log]` asks for.
//!
//! Spans carry ids (issue, delivery, subscriber), never an email address, a token or a secret.

use tracing_subscriber::EnvFilter;

use crate::configuration::{LogFormat, LogSettings};

/// Installs the global subscriber. An invalid level is reported and the default (`info`) is used instead.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|e| {
        eprintln!("tidings: log.level `{}` is not a valid filter ({e}); using `info`", settings.level);
        EnvFilter::new("info")
    });
    // The IMAP client crate traces every command it sends, LOGIN and its password included: never shown.
    let filter = match "async_imap=off".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    // Colours only on a terminal: a log file or a journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi);
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
