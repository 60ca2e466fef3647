//! Tidings: a self-hosted newsletter delivery daemon. See ARCHITECTURE.md for the map of this crate.

pub mod admin;
pub mod bounces;
pub mod cli;
pub mod clock;
pub mod configuration;
pub mod domain;
pub mod http;
pub mod mailer;
pub mod ops;
pub mod render;
pub mod reports;
pub mod startup;
pub mod stats;
pub mod store;
pub mod systemd;
pub mod telemetry;
pub mod webhooks;
pub mod worker;
