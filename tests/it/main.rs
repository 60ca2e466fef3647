//! The integration tests: one binary, with modules per capability. Store tests run on SQLite and PostgreSQL.

mod helpers;

mod config;
mod import;
mod migrations;
mod smtp_server;
mod subscribers;
