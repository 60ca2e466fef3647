//! The command line: `tidings [--config FILE] COMMAND`. Parsing only; `admin` carries the commands out.
//!
//! Exit status: 0 on success, 1 on a failure the user can fix (with a one-line reason), 2 on bad usage
//! (clap's own exit code for parse errors).

use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand};

/// Words a newcomer types for a command that has another name here. clap's own suggestion goes by spelling
/// (`start` -> `stats`); these go by meaning.
const MEANT: [(&str, &str); 5] =
    [("start", "serve"), ("run", "serve"), ("daemon", "serve"), ("server", "serve"), ("up", "serve")];

const EXAMPLES: &str = "\
Examples:
  tidings subscriber import emails/samples/subscribers.csv
  tidings subscriber list --status active
  TIDINGS_DATABASE__URL=postgres://tidings@db/tidings tidings migrate

Configuration: config/default.toml documents every key; --config FILE (or TIDINGS_CONFIG) layers a file over \
it, and TIDINGS_SECTION__KEY environment variables override both; `tidings config show` prints the result.";

/// Tidings: a self-hosted newsletter delivery daemon.
#[derive(Debug, Parser)]
#[command(name = "tidings", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (default: $TIDINGS_CONFIG, else none).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments, exiting with clap's message (status 2) on bad usage.
    pub fn parse_args() -> Self {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        Self::try_parse_from(&args).unwrap_or_else(|error| suggest(error, &args).exit())
    }
}

/// The error for an unknown top-level command that means one of ours (see [`MEANT`]) suggests that command.
fn suggest(error: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    if error.kind() != ErrorKind::InvalidSubcommand {
        return error;
    }
    // Only the first word after the global options names a top-level command.
    let mut words = args.iter().skip(1).map(|arg| arg.to_string_lossy());
    let first = loop {
        match words.next() {
            Some(word) if word == "--config" => _ = words.next(),
            Some(word) if word.starts_with('-') => {}
            other => break other,
        }
    };
    let Some((typed, meant)) = first.and_then(|word| MEANT.iter().find(|(typo, _)| *typo == word)) else {
        return error;
    };
    let mut better = clap::Error::new(ErrorKind::InvalidSubcommand).with_cmd(&Cli::command());
    better.insert(ContextKind::InvalidSubcommand, ContextValue::String((*typed).to_owned()));
    better.insert(ContextKind::SuggestedSubcommand, ContextValue::String((*meant).to_owned()));
    if let Some(usage) = error.get(ContextKind::Usage) {
        better.insert(ContextKind::Usage, usage.clone());
    }
    better
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply the database migrations that are not applied yet (every command also does this at start).
    #[command(after_help = "Example:\n  tidings migrate --dry-run\n  tidings migrate")]
    Migrate {
        /// Only list the migrations that would be applied; apply nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// Copy the SQLite database, consistently, while daemons run and send (PostgreSQL: use pg_dump), and
    /// print how to restore the copy. Deliveries not settled in the copy are marked, so that after a restore
    /// `issue status` lists them as possibly received twice. Never overwrites a file.
    #[command(after_help = "Example:\n  tidings backup --out /var/backups/tidings-$(date +%F).db")]
    Backup {
        /// The file to write; it must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },

    /// Add, import, list, show, remove, export and erase subscribers.
    #[command(subcommand)]
    Subscriber(SubscriberCommand),

    /// Add issues from Markdown files, preview, test-send, schedule, send, pause and watch them.
    #[command(subcommand)]
    Issue(IssueCommand),

    /// Run the daemon: the HTTP endpoints behind every link, the scheduler and the senders. SIGTERM or Ctrl-C
    /// finishes the messages being sent, records them, and exits.
    #[command(
        after_help = "Example:\n  tidings serve\n\nIt needs a link signing key, e.g. TIDINGS_LINKS__SIGNING_KEYS=\"1:$(openssl rand -base64 32)\"."
    )]
    Serve,

    /// The weekly slots of each list with a cadence: past slots and what became of them (sent, waiting,
    /// missed, skipped), and the coming slots with the queued issue that will fill each.
    #[command(after_help = "Example:\n  tidings queue --weeks 8\n  tidings queue --list weekly --json")]
    Queue {
        /// How many coming slots to show (and at most as many past ones).
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=520))]
        weeks: u32,
        /// Only this list (default: every list with a weekly slot).
        #[arg(long)]
        list: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// The whole journey on the built-in defaults: import the sample subscribers, add and send the sample issue
    /// into ./outbox, and keep serving the links in that mail until Ctrl-C. Safe to run again.
    #[command(after_help = "Example:\n  tidings demo")]
    Demo,

    /// What happened to each sent issue: delivered, failed, bounced, ambiguous, unsubscribed via the issue,
    /// unique opens (unverified) and the rating. With N, one issue in depth: delivery states, retries, bounce
    /// reasons, opens over the first 72 hours and the star histogram. Test sends and flagged votes never count.
    /// With --deliverability, per list over the last days: the complaint and hard-bounce rates against the
    /// providers' thresholds, and the split by the recipients' mailbox provider.
    #[command(
        after_help = "Example:\n  tidings stats\n  tidings stats 122 --json\n  tidings stats --deliverability --days 30"
    )]
    Stats {
        /// One issue's number, for the figures in depth.
        number: Option<u32>,
        /// Deliverability instead: complaint and hard-bounce rates with a verdict, and the split by mailbox
        /// provider (Gmail, Microsoft, Yahoo/AOL, iCloud, others); every list unless --list.
        #[arg(long, conflicts_with = "number")]
        deliverability: bool,
        /// With --deliverability: count the messages first tried in this many days up to now.
        #[arg(long, default_value_t = 30, requires = "deliverability", value_parser = clap::value_parser!(u32).range(1..=3650))]
        days: u32,
        /// The list (default: `default_list`; with --deliverability, every list).
        #[arg(long)]
        list: Option<String>,
        /// Print JSON, for scripts.
        #[arg(long)]
        json: bool,
    },

    /// Bounces and complaints that came back after sending: list, show, and take one in from standard input.
    #[command(subcommand)]
    Bounce(BounceCommand),

    /// The suppression list: addresses that are never mailed again.
    #[command(subcommand)]
    Suppression(SuppressionCommand),

    /// Write one issue's report as a self-contained HTML page (charts as inline SVG, no script, no external
    /// asset): key figures and rates, this issue against the previous ones (medians and trend lines), the list,
    /// deliveries and opens over time, the star distribution, clicks per link, unsubscribes and bounces. With
    /// `--last N` instead of an issue number, the same page for the list over its last N issues.
    #[command(after_help = "Example:\n  tidings report 122 --out report-122.html\n  \
                            tidings report --list weekly --last 12 --out weekly.html")]
    Report {
        /// The issue number (or `--last N` for the list's last issues).
        #[arg(required_unless_present = "last", conflicts_with = "last")]
        number: Option<u32>,
        /// The list's last N issues, from 1 to 52, instead of one issue.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=52))]
        last: Option<u32>,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
        /// The list (default: `default_list`).
        #[arg(long)]
        list: Option<String>,
    },

    /// Check what Gmail, Yahoo and Outlook.com check before they take bulk mail: SPF, DKIM and DMARC in DNS
    /// and their alignment with From, the relay (reachable, STARTTLS, AUTH; no message is sent) and the
    /// settings behind one-click unsubscribe and the footer. Each check says ok, warning or failure, and how to
    /// fix it. Exit status 1 when a check failed; warnings do not fail.
    #[command(
        after_help = "Example:\n  tidings doctor\n  tidings doctor --json | jq '.checks[] | select(.status != \"ok\")'"
    )]
    Doctor {
        /// Print JSON: `ok`, `failures`, `warnings` and `checks` (each with `id`, `group`, `status`, `message`,
        /// `fix`).
        #[arg(long)]
        json: bool,
    },

    #[command(flatten)]
    Ops(OpsCommand),
}

/// Commands about Tidings itself rather than its data: they open no database, and `main` runs them before the
/// settings are loaded, so a broken configuration can still be shown and checked.
#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Show the effective configuration (`show`) or check it (`check`) without opening the database.
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Print a shell completion script for bash, zsh or fish.
    #[command(after_help = "Example:\n  tidings completions bash > /usr/share/bash-completion/completions/tidings\n  \
                            tidings completions zsh > /usr/local/share/zsh/site-functions/_tidings\n  \
                            tidings completions fish > ~/.config/fish/completions/tidings.fish")]
    Completions {
        /// The shell.
        shell: Shell,
    },

    /// Write the manual pages, one per command (tidings.1, tidings-issue-send.1, ...), into a folder.
    #[command(after_help = "Example:\n  tidings man --out /usr/local/share/man/man1")]
    Man {
        /// The folder to write the pages to (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

/// The shells `tidings completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting's effective value and the layer it came from (default, file PATH, environment
    /// VARIABLE). Secrets are shown as [REDACTED], and so is a password inside a URL.
    #[command(
        after_help = "Example:\n  tidings --config /etc/tidings/tidings.toml config show\n  tidings config show --json"
    )]
    Show {
        /// Print JSON: one object per setting with `key`, `value`, `layer` and `origin`.
        #[arg(long)]
        json: bool,
    },

    /// Check the configuration file and the environment as `serve` would (keys, types, lists, time zones,
    /// addresses, secret files and their modes, the DKIM key) without opening the database. Exit status 1
    /// with the key and its layer when something is wrong.
    #[command(after_help = "Example:\n  tidings --config /etc/tidings/tidings.toml config check")]
    Check,
}

#[derive(Debug, Subcommand)]
pub enum BounceCommand {
    /// What came back after sending, newest first: bounces, complaints, auto-replies, delayed and delivered
    /// notices, each with what it changed.
    #[command(after_help = "Example:\n  tidings bounce list --issue 122 --kind hard\n  tidings bounce list --json")]
    List {
        /// Only reports about this issue.
        #[arg(long, value_name = "NUMBER")]
        issue: Option<u32>,
        /// Only this kind: hard, soft, policy, complaint, auto-reply, delayed, delivered or unclassified.
        #[arg(long)]
        kind: Option<String>,
        /// The list of --issue (default: `default_list`).
        #[arg(long)]
        list: Option<String>,
        /// How many reports to show at most.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// One stored report: how it was classified, what it changed, and its text as received (capped in size,
    /// other people's addresses removed).
    #[command(after_help = "Example:\n  tidings bounce show 17")]
    Show {
        /// The report's id, from `bounce list`.
        id: i64,
    },

    /// Take one report (a DSN, a complaint, any mail sent to the bounce address) from standard input, for an
    /// MTA's pipe transport or procmail. Exit status as sysexits: 0 stored, 75 (EX_TEMPFAIL) when the
    /// database is unavailable so the MTA keeps the message and retries, 65 (EX_DATAERR) when it is too big,
    /// 78 (EX_CONFIG) when [bounces] is not configured.
    #[command(
        after_help = "Example:\n  tidings bounce ingest --recipient 'bounces+0k2f...@news.example.com' < report.eml\n\nIn Postfix's \
                      master.cf:\n  tidings unix - n n - - pipe\n    flags=Rq user=tidings argv=/usr/local/bin/tidings \
                      bounce ingest --recipient ${original_recipient}"
    )]
    Ingest {
        /// The envelope recipient (the signed return path it was sent to); default: the message's
        /// Delivered-To, X-Original-To or To header.
        #[arg(long, value_name = "ADDR")]
        recipient: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// Addresses that are never mailed, newest first: hard bounces, complaints, erasures and manual entries.
    /// Only a hash of each address is kept; the address is shown while a subscriber still has it.
    #[command(after_help = "Example:\n  tidings suppression list --json")]
    List {
        /// How many entries to show at most.
        #[arg(long, default_value_t = 200)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Never mail this address again (every list).
    #[command(after_help = "Example:\n  tidings suppression add someone@example.com --reason \"asked by phone\"")]
    Add {
        /// The address to suppress.
        email: String,
        /// Why, kept with the entry.
        #[arg(long, default_value = "added by an admin")]
        reason: String,
    },
    /// Take an address off the suppression list; the removal is recorded with its reason. Its subscriptions
    /// stay as they are: a bounced or complained person subscribes again to receive mail.
    #[command(
        after_help = "Example:\n  tidings suppression remove someone@example.com --reason \"mailbox fixed, confirmed by email\""
    )]
    Remove {
        /// The address to take off the list.
        email: String,
        /// Why it may be mailed again (required).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IssueCommand {
    /// Check, render and store an issue file as a draft. Adding an unchanged file again changes nothing; a
    /// changed draft is rendered again; an issue that has been scheduled or sent is never changed.
    #[command(after_help = "Example:\n  tidings issue add emails/issues/122.md")]
    Add {
        /// The issue's Markdown file with TOML front matter (see emails/issues/122.md).
        file: PathBuf,
        /// The list (default: the file's `list`, else `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// List a list's issues, newest first.
    #[command(after_help = "Example:\n  tidings issue list --json")]
    List {
        /// The list (default: `default_list`).
        #[arg(long)]
        list: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Show one issue: subject, status, size, links.
    #[command(after_help = "Example:\n  tidings issue show 122")]
    Show {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Write the issue as HTML and text, personalised for a sample subscriber, and print the files' paths.
    #[command(after_help = "Example:\n  tidings issue preview 122 --out /tmp/preview")]
    Preview {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
        /// The folder to write N.html and N.txt to (created when missing).
        #[arg(long, value_name = "DIR", default_value = "preview")]
        out: PathBuf,
    },

    /// Send the issue to one address now, marked as a test ("[TEST]" subject); it is not counted in stats.
    #[command(name = "test-send", after_help = "Example:\n  tidings issue test-send 122 --to editor@example.com")]
    TestSend {
        /// The issue number.
        number: u32,
        /// Where to send it.
        #[arg(long, value_name = "ADDR")]
        to: String,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Schedule the issue: the daemon starts sending it at that time.
    #[command(after_help = "Example:\n  tidings issue schedule 122 --at \"2026-12-07 08:00\" --tz Europe/Berlin")]
    Schedule {
        /// The issue number.
        number: u32,
        /// Local date and time, "YYYY-MM-DD HH:MM".
        #[arg(long, value_name = "WHEN")]
        at: String,
        /// The time zone of --at (default: the list's).
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
        /// --at is each subscriber's own local time (their stored zone, else the list's): the send spans about
        /// a day, starting when the first zone on Earth reaches that time.
        #[arg(long)]
        local_time: bool,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Put a draft in the weekly queue: the daemon sends queued issues in number order, one at each of the
    /// list's weekly slots (see `tidings queue`).
    #[command(after_help = "Example:\n  tidings issue queue 123")]
    Queue {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list`).
        #[arg(long)]
        list: Option<String>,
    },

    /// Take a queued issue out of the queue (it becomes a draft again).
    #[command(after_help = "Example:\n  tidings issue unqueue 123")]
    Unqueue {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list`).
        #[arg(long)]
        list: Option<String>,
    },

    /// Start sending the issue now: every subscriber active at this moment gets it.
    #[command(after_help = "Example:\n  tidings issue send 122")]
    Send {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Pause a scheduled or sending issue (messages already handed to the relay still arrive).
    #[command(after_help = "Example:\n  tidings issue pause 122")]
    Pause {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Resume a paused issue (also one held for being found too late).
    #[command(after_help = "Example:\n  tidings issue resume 122")]
    Resume {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Cancel an issue that has not finished: what was sent stays sent, the rest never goes out.
    #[command(after_help = "Example:\n  tidings issue cancel 122")]
    Cancel {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// Show how sending goes: sent, queued, retrying, failed, bounced, ambiguous; rate and time left.
    #[command(after_help = "Example:\n  tidings issue status 122 --follow")]
    Status {
        /// The issue number.
        number: u32,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
        /// Keep watching until the issue is no longer sending (a progress bar on a terminal).
        #[arg(long)]
        follow: bool,
        /// Print JSON (once).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// Add one subscriber to a list.
    #[command(after_help = "Example:\n  tidings subscriber add ana@example.com --name \"Ana Lima\" --tz Europe/Lisbon")]
    Add {
        /// The email address.
        email: String,
        /// The subscriber's name, used in greetings.
        #[arg(long)]
        name: Option<String>,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
        /// Add as pending: the subscriber must confirm before receiving issues.
        #[arg(long)]
        pending: bool,
        /// The subscriber's IANA time zone, for sends at local time.
        #[arg(long, value_name = "ZONE")]
        tz: Option<String>,
    },

    /// Import subscribers from a CSV file with a header row (`email`, optional `name` and `tz`, other columns
    /// kept as attributes). Bad rows are reported by line and skipped; the exit status is 1 when any row was
    /// refused. Importing the same file again changes nothing.
    #[command(after_help = "Example:\n  tidings subscriber import emails/samples/subscribers.csv --list weekly")]
    Import {
        /// The CSV file (UTF-8), or `-` for standard input.
        file: PathBuf,
        /// The list (default: `default_list` from the configuration).
        #[arg(long)]
        list: Option<String>,
    },

    /// List subscriptions, one line each, with counts per status at the end.
    #[command(after_help = "Example:\n  tidings subscriber list --status unsubscribed --list weekly --json")]
    List {
        /// Only this status: pending, active, unsubscribed, bounced or complained.
        #[arg(long)]
        status: Option<String>,
        /// Only this list.
        #[arg(long)]
        list: Option<String>,
        /// At most this many lines.
        #[arg(long)]
        limit: Option<u64>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },

    /// Show a subscriber with every subscription and its consent evidence.
    #[command(after_help = "Example:\n  tidings subscriber show ana@example.com")]
    Show {
        /// The subscriber's email address (compared case-insensitively).
        email: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },

    /// Remove a subscriber (from one list with --list). They may be added again later; see `erase` for GDPR.
    #[command(after_help = "Example:\n  tidings subscriber remove ana@example.com")]
    Remove {
        /// The subscriber's email address (compared case-insensitively).
        email: String,
        /// Remove only the subscription to this list.
        #[arg(long)]
        list: Option<String>,
    },

    /// Export subscriptions as CSV (the same columns `import` reads, so an export can be imported again).
    #[command(after_help = "Example:\n  tidings subscriber export --out subscribers.csv --status active")]
    Export {
        /// Write to this file instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Only this list.
        #[arg(long)]
        list: Option<String>,
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
    },

    /// Erase a subscriber for good (GDPR): delete their personal data and keep only a hash of the address on
    /// the suppression list, so they are never mailed again.
    #[command(after_help = "Example:\n  tidings subscriber erase ana@example.com")]
    Erase {
        /// The subscriber's email address (compared case-insensitively).
        email: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of `command` and of its subcommands, as `path: argument`, that has no help text.
    fn undocumented(command: &clap::Command, path: &str, found: &mut Vec<String>) {
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if arg.get_help().is_none_or(|help| help.to_string().trim().is_empty()) {
                found.push(format!("{path}: {id}"));
            }
        }
        for sub in command.get_subcommands() {
            undocumented(sub, &format!("{path} {}", sub.get_name()), found);
        }
    }

    #[test]
    fn the_top_level_help_wraps_only_where_the_terminal_ends() {
        let sentence = "Configuration: config/default.toml documents every key; --config FILE (or TIDINGS_CONFIG) \
                        layers a file over it, and TIDINGS_SECTION__KEY environment variables override both; `tidings \
                        config show` prints the result.";
        let wide = Cli::command().term_width(1_000).render_long_help().to_string();
        assert!(wide.lines().any(|line| line == sentence), "{wide}");
        let narrow = Cli::command().term_width(80).render_long_help().to_string();
        let paragraph: Vec<&str> = narrow.lines().skip_while(|line| !line.starts_with("Configuration:")).collect();
        let (last, wrapped) = paragraph.split_last().expect("the paragraph");
        assert!(wrapped.iter().all(|line| line.len() > 60), "a line broken by hand: {paragraph:#?}");
        assert!(last.ends_with("prints the result."), "{paragraph:#?}");
    }

    #[test]
    fn every_argument_of_every_command_has_a_description() {
        let mut found = Vec::new();
        undocumented(&Cli::command(), "tidings", &mut found);
        assert!(found.is_empty(), "arguments without help: {found:?}");
    }

    #[test]
    fn start_suggests_serve_and_other_typos_keep_clap_s_suggestion() {
        let args = |words: &[&str]| words.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        for words in [&["tidings", "start"][..], &["tidings", "--config", "x.toml", "start"]] {
            let error = Cli::try_parse_from(args(words)).unwrap_err();
            let rendered = suggest(error, &args(words)).render().to_string();
            assert!(rendered.contains("unrecognized subcommand 'start'"), "{rendered}");
            assert!(rendered.contains("similar subcommand exists: 'serve'"), "{rendered}");
        }
        let words = ["tidings", "issue", "start"];
        let error = Cli::try_parse_from(args(&words)).unwrap_err();
        assert!(!suggest(error, &args(&words)).render().to_string().contains("'serve'"));
        let words = ["tidings", "stat"];
        let error = Cli::try_parse_from(args(&words)).unwrap_err();
        assert!(suggest(error, &args(&words)).render().to_string().contains("'stats'"));
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example_in_its_help() {
        let mut cli = Cli::command();
        for command in cli.get_subcommands_mut() {
            let leaves: Vec<_> = if command.has_subcommands() {
                command.get_subcommands_mut().map(|c| c.render_long_help().to_string()).collect()
            } else {
                vec![command.render_long_help().to_string()]
            };
            for help in leaves {
                assert!(help.contains("Example:\n  tidings "), "{help}");
            }
        }
    }
}
