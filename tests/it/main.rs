//! The integration tests: one binary, with modules per capability. Store tests run on SQLite and PostgreSQL.

mod helpers;

mod addresses;
mod backup;
mod bounce_load;
mod bounces;
mod browser;
mod cadence;
mod caniemail;
mod cli_output;
mod config;
mod daemon;
mod deliverability;
mod delivery;
mod doctor;
mod email_clients;
mod email_markup;
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
mod stats_history;
mod subscribers;
mod upgrade;
mod wake;
mod web;
mod webhooks;
