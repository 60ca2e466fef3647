//! The integration tests: one binary, with modules per capability. Store tests run on SQLite and PostgreSQL.

mod helpers;

mod addresses;
mod backup;
mod bounce_load;
mod bounces;
mod browser;
mod cadence;
mod cli_output;
mod config;
mod daemon;
mod delivery;
mod imap;
mod import;
mod issues;
mod mailer;
mod migrations;
mod mta;
mod ops;
mod render;
mod reports;
mod sending_faults;
mod smtp_server;
mod sns;
mod stats;
mod subscribers;
mod upgrade;
mod wake;
mod web;
