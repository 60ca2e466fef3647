//! Shell completions (clap_complete) and manual pages (clap_mangen), both generated from the clap definition in
//! `cli.rs`, so they never drift from `--help`.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell as CompleteShell;

use crate::cli::{Cli, Shell};

/// Writes the completion script for `shell` to `out`.
pub(super) fn completions(shell: Shell, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let shell = match shell {
        Shell::Bash => CompleteShell::Bash,
        Shell::Zsh => CompleteShell::Zsh,
        Shell::Fish => CompleteShell::Fish,
    };
    let mut command = Cli::command();
    // clap_complete panics when its writer fails; a buffer cannot, and a closed stdout (`| head`) then ends
    // the command quietly like any other.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "tidings", &mut script);
    out.write_all(&script)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Writes one manual page per command into `dir` (`tidings.1`, `tidings-issue.1`, `tidings-issue-send.1`, ...)
/// and prints how many.
pub(super) fn man_pages(dir: &Path, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
    let pages = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".1"))
        .count();
    writeln!(out, "wrote {pages} manual pages into {}", dir.display())?;
    Ok(ExitCode::SUCCESS)
}
