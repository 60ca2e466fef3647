//! The integration tests: one binary, with modules per capability. Store tests run on SQLite and PostgreSQL.

mod helpers;

mod browser;
mod cadence;
mod config;
mod daemon;
mod delivery;
mod import;
mod issues;
mod mailer;
mod migrations;
mod ops;
mod render;
mod smtp_server;
mod stats;
mod subscribers;
mod web;
