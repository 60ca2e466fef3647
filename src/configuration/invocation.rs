//! How a person runs this binary, for the commands Tidings prints as hints: `tidings` when that name on `PATH`
//! is this very binary, else its path (relative to the working directory when it is below it, as
//! `target/release/tidings` after `cargo build --release`). Reading `PATH` is why this lives in `configuration`.

use std::path::{Path, PathBuf};

/// The command to type to run this binary again from the working directory.
pub fn invocation() -> String {
    let Ok(exe) = std::env::current_exe().and_then(|exe| exe.canonicalize()) else {
        return "tidings".to_owned();
    };
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).map(|dir| dir.join("tidings")).collect::<Vec<PathBuf>>())
        .unwrap_or_default()
        .into_iter()
        .find(|candidate| candidate.is_file());
    if on_path.and_then(|found| found.canonicalize().ok()).is_some_and(|found| found == exe) {
        return "tidings".to_owned();
    }
    let cwd = std::env::current_dir().and_then(|dir| dir.canonicalize()).unwrap_or_default();
    match exe.strip_prefix(&cwd) {
        Ok(relative) if relative != Path::new("") => relative.display().to_string(),
        _ => exe.display().to_string(),
    }
}
