//! `[bounces.imap]` checked once at startup: folder names, intervals and the connection (`connect.rs`). Every
//! error names its key; nothing here touches the network.

use std::time::Duration;

use super::connect::Connector;
use crate::configuration::{ConfigError, Settings};

/// `[bounces.imap]`, checked.
#[derive(Debug)]
pub(super) struct ImapConfig {
    pub(super) connector: Connector,
    /// Folder names as configured, with `/` between levels.
    pub(super) mailbox: String,
    pub(super) processed_folder: String,
    /// `None`: messages that are no report stay in `mailbox`.
    pub(super) unparsed_folder: Option<String>,
    pub(super) poll_interval: Duration,
    pub(super) retry_max: Duration,
    pub(super) max_per_poll: usize,
}

impl ImapConfig {
    /// The checked settings; `None` when `host` is empty (IMAP is off).
    pub(super) fn from_settings(settings: &Settings) -> Result<Option<Self>, ConfigError> {
        let imap = &settings.bounces.imap;
        if imap.host.trim().is_empty() {
            return Ok(None);
        }
        let mailbox = folder("mailbox", &imap.mailbox)?;
        let processed_folder = folder("processed_folder", &imap.processed_folder)?;
        let unparsed_folder = folder("unparsed_folder", &imap.unparsed_folder)?;
        for (key, value) in [("mailbox", &mailbox), ("processed_folder", &processed_folder)] {
            if value.is_empty() {
                return Err(ConfigError::new(format!("bounces.imap.{key}: a folder name is needed")));
            }
        }
        if processed_folder == mailbox || unparsed_folder == processed_folder {
            return Err(ConfigError::new(
                "bounces.imap.processed_folder: must differ from bounces.imap.mailbox and bounces.imap.unparsed_folder",
            ));
        }
        if imap.max_per_poll == 0 {
            return Err(ConfigError::new("bounces.imap.max_per_poll: must be at least 1"));
        }
        Ok(Some(Self {
            connector: Connector::from_settings(settings)?,
            unparsed_folder: (!unparsed_folder.is_empty() && unparsed_folder != mailbox).then_some(unparsed_folder),
            mailbox,
            processed_folder,
            poll_interval: positive("poll_interval", imap.poll_interval)?,
            retry_max: positive("retry_max", imap.retry_max)?,
            max_per_poll: imap.max_per_poll as usize,
        }))
    }
}

/// A folder name without surrounding `/`; wildcards and control characters are refused.
fn folder(key: &str, value: &str) -> Result<String, ConfigError> {
    let value = value.trim().trim_matches('/');
    if value.chars().any(|c| c.is_control() || c == '*' || c == '%' || c == '"' || c == '\\') {
        return Err(ConfigError::new(format!("bounces.imap.{key}: `{value}` is not a usable folder name")));
    }
    Ok(value.to_owned())
}

fn positive(key: &str, value: jiff::SignedDuration) -> Result<Duration, ConfigError> {
    Duration::try_from(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| ConfigError::new(format!("bounces.imap.{key}: must be a positive duration")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::configuration::load_layers;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let mut env: HashMap<String, String> = [
            ("TIDINGS_BOUNCES__IMAP__HOST", "imap.example.com"),
            ("TIDINGS_BOUNCES__IMAP__USERNAME", "bounces"),
            ("TIDINGS_BOUNCES__IMAP__PASSWORD", "hunter2hunter2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        load_layers(None, &env).expect("settings load")
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        ImapConfig::from_settings(&settings(pairs)).expect_err("refused").to_string()
    }

    #[test]
    fn an_empty_host_is_off_and_the_defaults_are_usable() {
        assert!(ImapConfig::from_settings(&settings(&[("TIDINGS_BOUNCES__IMAP__HOST", "")])).unwrap().is_none());
        let config = ImapConfig::from_settings(&settings(&[])).unwrap().unwrap();
        assert_eq!((config.mailbox.as_str(), config.processed_folder.as_str()), ("INBOX", "Tidings/Processed"));
        assert_eq!(config.unparsed_folder, None);
        assert_eq!(config.poll_interval, Duration::from_secs(60));
    }

    #[test]
    fn plaintext_to_a_host_that_is_not_loopback_is_refused_by_name() {
        let err = error(&[("TIDINGS_BOUNCES__IMAP__TLS", "none")]);
        assert!(err.contains("bounces.imap.tls") && err.contains("imap.example.com"), "{err}");
        let local = settings(&[("TIDINGS_BOUNCES__IMAP__TLS", "none"), ("TIDINGS_BOUNCES__IMAP__HOST", "127.0.0.1")]);
        assert!(ImapConfig::from_settings(&local).is_ok());
    }

    #[test]
    fn a_missing_password_or_username_is_named_and_the_password_never_shown() {
        let err = error(&[("TIDINGS_BOUNCES__IMAP__PASSWORD", "")]);
        assert!(err.contains("bounces.imap.password") && err.contains("TIDINGS_BOUNCES__IMAP__PASSWORD"), "{err}");
        let err = error(&[("TIDINGS_BOUNCES__IMAP__USERNAME", " ")]);
        assert!(err.contains("bounces.imap.username"), "{err}");
        let config = ImapConfig::from_settings(&settings(&[])).unwrap().unwrap();
        let debug = format!("{config:?} {:?}", settings(&[]));
        assert!(!debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn unusable_folders_and_intervals_are_named() {
        let err = error(&[("TIDINGS_BOUNCES__IMAP__PROCESSED_FOLDER", "INBOX")]);
        assert!(err.contains("bounces.imap.processed_folder"), "{err}");
        let err = error(&[("TIDINGS_BOUNCES__IMAP__UNPARSED_FOLDER", "Bounces/*")]);
        assert!(err.contains("bounces.imap.unparsed_folder"), "{err}");
        let err = error(&[("TIDINGS_BOUNCES__IMAP__POLL_INTERVAL", "0s")]);
        assert!(err.contains("bounces.imap.poll_interval"), "{err}");
        let err = error(&[("TIDINGS_BOUNCES__IMAP__CA_FILE", "/nonexistent/ca.pem")]);
        assert!(err.contains("bounces.imap.ca_file") && err.contains("/nonexistent/ca.pem"), "{err}");
    }
}
