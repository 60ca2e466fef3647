//! `[webhooks]`: the relays' signed event webhooks (Postmark, SendGrid, Mailgun), each off until configured.
//! The secrets (Postmark's basic-auth password, Mailgun's signing key) are resolved like every other secret:
//! from the environment or a 0600 file, never shown in `Debug` or `config show`.

use jiff::SignedDuration;
use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, Settings, secret};

/// `[webhooks]` and one table per provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// The largest webhook request body, in bytes (SendGrid posts events in batches); 413 past it.
    pub max_body_bytes: usize,
    pub postmark: PostmarkSettings,
    pub sendgrid: SendgridSettings,
    pub mailgun: MailgunSettings,
    pub ses: super::SesSettings,
}

/// `[webhooks.postmark]`: HTTP basic auth on the bounce and spam-complaint webhooks. Empty `username`: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmarkSettings {
    pub username: String,
    /// Set through `TIDINGS_WEBHOOKS__POSTMARK__PASSWORD`; resolved with `password_file`.
    #[serde(default)]
    pub password: Option<SecretString>,
    pub password_file: String,
}

/// `[webhooks.sendgrid]`: the Event Webhook's ECDSA verification key. Empty `public_key`: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendgridSettings {
    /// Base64 DER SubjectPublicKeyInfo, as SendGrid shows it under Mail Settings (not a secret).
    pub public_key: String,
    /// How far the signed timestamp may be from now before a request is refused as stale.
    pub tolerance: SignedDuration,
}

/// `[webhooks.mailgun]`: the HTTP webhook signing key. No key set: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailgunSettings {
    /// Set through `TIDINGS_WEBHOOKS__MAILGUN__SIGNING_KEY`; resolved with `signing_key_file`.
    #[serde(default)]
    pub signing_key: Option<SecretString>,
    pub signing_key_file: String,
    /// How far the signed timestamp may be from now; a token is remembered this long and refused if seen again.
    pub tolerance: SignedDuration,
}

impl Settings {
    /// Postmark's basic-auth username and password, when `[webhooks.postmark] username` is set. A username
    /// without a password is an error naming how to set it.
    pub fn postmark_credentials(&self) -> Result<Option<(String, SecretString)>, ConfigError> {
        let postmark = &self.webhooks.postmark;
        let password =
            secret::resolve("webhooks.postmark.password", postmark.password.as_ref(), &postmark.password_file)?;
        match (postmark.username.trim(), password) {
            ("", None) => Ok(None),
            ("", Some(_)) => Err(ConfigError::new(
                "webhooks.postmark.username: a password is set but no username; set both to turn the webhook on",
            )),
            (_, None) => Err(ConfigError::new(
                "webhooks.postmark.password: the username is set but no password; set \
                 TIDINGS_WEBHOOKS__POSTMARK__PASSWORD or name a 0600 file in webhooks.postmark.password_file",
            )),
            (username, Some(password)) => Ok(Some((username.to_owned(), password))),
        }
    }

    /// Mailgun's webhook signing key, when set.
    pub fn mailgun_signing_key(&self) -> Result<Option<SecretString>, ConfigError> {
        let mailgun = &self.webhooks.mailgun;
        secret::resolve("webhooks.mailgun.signing_key", mailgun.signing_key.as_ref(), &mailgun.signing_key_file)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::super::load_layers;

    fn settings(pairs: &[(&str, &str)]) -> super::Settings {
        let vars: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load_layers(None, &vars).expect("settings")
    }

    #[test]
    fn each_webhook_is_off_until_configured_and_half_a_login_is_an_error_naming_the_key() {
        let none = settings(&[]);
        assert!(none.postmark_credentials().unwrap().is_none());
        assert!(none.mailgun_signing_key().unwrap().is_none());
        let half = settings(&[("TIDINGS_WEBHOOKS__POSTMARK__USERNAME", "hooks")]);
        let error = half.postmark_credentials().unwrap_err().to_string();
        assert!(error.contains("webhooks.postmark.password"), "{error}");
        let set = settings(&[
            ("TIDINGS_WEBHOOKS__POSTMARK__USERNAME", "hooks"),
            ("TIDINGS_WEBHOOKS__POSTMARK__PASSWORD", "pm-secret-value"),
            ("TIDINGS_WEBHOOKS__MAILGUN__SIGNING_KEY", "mg-secret-value"),
        ]);
        assert_eq!(set.postmark_credentials().unwrap().map(|(user, _)| user).as_deref(), Some("hooks"));
        assert!(set.mailgun_signing_key().unwrap().is_some());
        let shown = format!("{set:?}");
        assert!(!shown.contains("pm-secret-value") && !shown.contains("mg-secret-value"), "{shown}");
    }
}
