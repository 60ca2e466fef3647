//! The `tidings` binary: parse the command line, load settings, start logging, run one command.

use std::process::ExitCode;

use tidings::cli::{Cli, Command};
use tidings::{admin, configuration, ops, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse_args();
    let mut stdout = std::io::stdout().lock();
    // Commands about Tidings itself run before the settings are loaded: they show or check them.
    if let Command::Ops(command) = cli.command {
        return match ops::run(command, cli.config.as_deref(), &mut stdout) {
            Ok(code) => code,
            Err(e) if closed_output(&e) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tidings: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
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
    match runtime.block_on(admin::run(cli.command, settings, &mut stdout)) {
        Ok(code) => code,
        // A reader that stopped reading (`tidings issue preview 122 | head -n 1`) ends the command quietly, as
        // it does other Unix tools.
        Err(e) if closed_output(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tidings: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether `error` comes from writing to a pipe whose reader has gone (EPIPE).
fn closed_output(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
