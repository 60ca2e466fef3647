//! `tidings completions bash|zsh|fish` and `tidings man --out DIR`, checked against the clap definition: every
//! command is completed, and every command has its manual page.

use clap::CommandFactory;
use tidings::cli::Cli;

use crate::helpers::tidings_with_env;

/// Every command as the words that run it: `["issue", "send"]`, ...
fn command_paths(command: &clap::Command, prefix: &[String], into: &mut Vec<Vec<String>>) {
    for sub in command.get_subcommands() {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        into.push(path.clone());
        command_paths(sub, &path, into);
    }
}

fn all_commands() -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    command_paths(&Cli::command(), &[], &mut paths);
    paths
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let commands = all_commands();
    assert!(commands.iter().any(|c| c == &["issue", "send"]) && commands.iter().any(|c| c == &["config", "show"]));
    for shell in ["bash", "zsh", "fish"] {
        let output = tidings_with_env(&["completions", shell], &[], dir.path());
        assert_eq!(output.code, Some(0), "{shell}: {}", output.stderr);
        for command in &commands {
            let name = command.last().expect("a name");
            assert!(output.stdout.contains(name.as_str()), "{shell} completions lack `{}`", command.join(" "));
        }
    }
    let refused = tidings_with_env(&["completions", "powershell"], &[], dir.path());
    assert_eq!(refused.code, Some(2));
}

#[test]
fn a_manual_page_is_written_for_every_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("man1");
    let output = tidings_with_env(&["man", "--out", out.to_str().expect("UTF-8")], &[], dir.path());
    assert_eq!(output.code, Some(0), "{}", output.stderr);
    let main = std::fs::read_to_string(out.join("tidings.1")).expect("tidings.1");
    assert!(main.contains(".TH tidings 1"), "{main}");
    for command in all_commands() {
        let file = out.join(format!("tidings-{}.1", command.join("-")));
        let page = std::fs::read_to_string(&file).unwrap_or_else(|_| panic!("{} is missing", file.display()));
        assert!(page.contains(".SH NAME") && page.contains(&command.join("-")), "{}", file.display());
    }
    let pages = std::fs::read_dir(&out).expect("the folder").count();
    assert_eq!(pages, all_commands().len() + 1);
}
