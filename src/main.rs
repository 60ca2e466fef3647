//! The `tidings` binary: parse the command line, load settings, start logging, run one command.

use std::process::ExitCode;

use clap::Parser;
use tidings::cli::Cli;
use tidings::{admin, configuration, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match configuration::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("tidings: configuration error: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tidings: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match runtime.block_on(admin::run(cli.command, settings, &mut stdout)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tidings: {e:#}");
            ExitCode::FAILURE
        }
    }
}
