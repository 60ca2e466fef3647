//! Commands about Tidings itself rather than its data: `config show | check`, `completions` and `man`.
//!
//! None of them opens the database or needs the async runtime, and `main` runs them before the settings are
//! loaded, so a broken configuration can still be shown and checked and completions always work.

mod config;
mod docs;

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::cli::{ConfigCommand, OpsCommand};

/// Runs one of these commands; `config_file` is `--config` (else `TIDINGS_CONFIG` is used, as everywhere).
pub fn run(command: OpsCommand, config_file: Option<&Path>, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    match command {
        OpsCommand::Config(ConfigCommand::Show { json }) => config::show(config_file, json, out),
        OpsCommand::Config(ConfigCommand::Check) => config::check(config_file, out),
        OpsCommand::Completions { shell } => docs::completions(shell, out),
        OpsCommand::Man { out: dir } => docs::man_pages(&dir, out),
    }
}
