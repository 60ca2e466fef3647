//! `[webhooks.ses]`: Amazon SES notifications delivered by Amazon SNS (checked and used by `webhooks::sns`).

use serde::Deserialize;

/// `[webhooks.ses]`: Amazon SES notifications delivered by Amazon SNS over HTTPS. `enabled = false`: off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SesSettings {
    pub enabled: bool,
    /// Hosts the SNS signing certificate (and a SubscribeURL) may be fetched from; `*` is one label.
    pub cert_hosts: Vec<String>,
    /// A PEM file of certificates trusted besides the Mozilla roots for those fetches; empty: none.
    pub extra_roots_file: String,
    /// The SNS topics accepted; empty: any topic whose messages verify.
    pub topic_arns: Vec<String>,
    /// How far a message's signed `Timestamp` may be from now before it is refused as stale (a replay).
    pub tolerance: jiff::SignedDuration,
}
