//! Shared test helpers: fresh databases on both backends, the `tidings` binary, and the SMTP test server.

pub mod browser;
pub mod dns;
pub mod dovecot;
pub mod mta;
pub mod report_client;
pub mod smtp_server;
pub mod tls_relay;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tidings::clock::Clock;
use tidings::domain::{ListSlug, ListSpec, SubscriberEmail, SubscriberName};
use tidings::store::{Backend, ImportBatch, ImportRow, Store, StoreOptions};

/// The admin URL of the PostgreSQL server the tests may create databases on (set by scripts/test).
const PG_URL_VAR: &str = "PG_TEST_URL";
/// Set by scripts/test outside CI when it could not start PostgreSQL: PostgreSQL tests then skip, loudly.
const PG_SKIP_VAR: &str = "PG_TEST_SKIP";

/// Generates one test per backend from one body: `mod name { fn sqlite(); fn postgres() }`, so the output
/// shows `name::sqlite` and `name::postgres`. The body sees a fresh `TestDatabase` as `$db`.
#[macro_export]
macro_rules! both_backends {
    ($(async fn $name:ident($db:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $db = $crate::helpers::TestDatabase::new(tidings::store::Backend::Sqlite).await;
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some($db) = $crate::helpers::TestDatabase::postgres().await else { return };
                    $body
                }
            }
        )*
    };
}

/// A fresh, migrated database: a SQLite file in a temporary folder, or a new database on the PostgreSQL server.
pub struct TestDatabase {
    pub store: Store,
    pub url: String,
    pub backend: Backend,
    /// The list `weekly`, created like the default configuration does.
    pub list_id: i64,
    pub clock: Clock,
    /// A folder that lives as long as the database, for files a test writes.
    pub dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::sqlite().await,
            Backend::Postgres => Self::postgres().await.expect("PostgreSQL is not configured for tests"),
        }
    }

    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}", dir.path().join("tidings.db").display());
        Self::open(url, Backend::Sqlite, dir).await
    }

    /// A new database on the test server; `None` (after saying so on stderr) when scripts/test could not
    /// start PostgreSQL outside CI. Without either variable this fails: a missing server is never silent.
    pub async fn postgres() -> Option<Self> {
        let (url, dir) = Self::empty(Backend::Postgres).await?;
        Some(Self::open(url, Backend::Postgres, dir).await)
    }

    /// The URL of a new, empty database (no migration applied) with a folder that lives as long as it; `None`
    /// when PostgreSQL is skipped (see [`TestDatabase::postgres`]).
    pub async fn empty(backend: Backend) -> Option<(String, tempfile::TempDir)> {
        let dir = tempfile::tempdir().expect("temporary folder");
        if backend == Backend::Sqlite {
            return Some((format!("sqlite://{}", dir.path().join("tidings.db").display()), dir));
        }
        let Ok(admin_url) = std::env::var(PG_URL_VAR) else {
            if std::env::var(PG_SKIP_VAR).is_ok_and(|v| v == "1") {
                eprintln!("SKIPPED: PostgreSQL variant ({PG_SKIP_VAR}=1: scripts/test could not start PostgreSQL)");
                return None;
            }
            panic!("{PG_URL_VAR} is not set: run the tests through scripts/test, which starts PostgreSQL");
        };
        let name = format!("tidings_test_{:016x}", rand::random::<u64>());
        let admin = Store::connect(&options(&admin_url)).await.expect("connect to the PostgreSQL test server");
        let Store::Postgres(pool) = &admin else { panic!("{PG_URL_VAR} is not a postgres:// URL") };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(pool)
            .await
            .expect("create database");
        admin.close().await;
        let (base, _) = admin_url.rsplit_once('/').expect("the URL names a database");
        Some((format!("{base}/{name}"), dir))
    }

    async fn open(url: String, backend: Backend, dir: tempfile::TempDir) -> Self {
        let store = Store::open(&options(&url)).await.expect("open and migrate the test database");
        let clock = Clock::manual("2026-12-07T08:00:00Z".parse().expect("timestamp"));
        let weekly = ListSpec {
            slug: ListSlug::parse("weekly").expect("slug"),
            name: "Weekly".to_owned(),
            time_zone: "Europe/London".to_owned(),
            weekly: None,
            local_time: false,
        };
        store.sync_lists(&[weekly], clock.now()).await.expect("create the list");
        let list_id = store.list_by_slug("weekly").await.expect("query").expect("the list exists").id;
        Self { store, url, backend, list_id, clock, dir }
    }

    /// Runs the `tidings` binary against this database.
    pub fn tidings(&self, args: &[&str]) -> CommandOutput {
        tidings_with_env(args, &[("TIDINGS_DATABASE__URL", &self.url)], self.dir.path())
    }

    /// Runs the `tidings` binary against this database with extra `TIDINGS_*` variables.
    pub fn tidings_env(&self, args: &[&str], env: &[(&str, &str)]) -> CommandOutput {
        let mut all = vec![("TIDINGS_DATABASE__URL", self.url.as_str())];
        all.extend(env.iter().filter(|(key, _)| *key != "TIDINGS_DATABASE__URL"));
        tidings_with_env(args, &all, self.dir.path())
    }

    /// Imports active subscribers the way `subscriber import` does, in batches of 2,000: address, name and
    /// time zone of each, subscribed at `now`.
    pub async fn import(
        &self,
        people: impl IntoIterator<Item = (String, String, Option<String>)>,
        now: jiff::Timestamp,
    ) {
        let rows: Vec<ImportRow> = people
            .into_iter()
            .enumerate()
            .map(|(i, (email, name, time_zone))| ImportRow {
                line: i as u64 + 2,
                email: SubscriberEmail::parse(&email).expect("address"),
                name: SubscriberName::parse(&name).expect("name"),
                attributes: "{}".to_owned(),
                time_zone,
                standing: Default::default(),
            })
            .collect();
        let session = self.store.begin_import(self.list_id).await.expect("begin import");
        for chunk in rows.chunks(2_000) {
            self.store.import_batch(&session, &ImportBatch::new(chunk.to_vec()), now).await.expect("import");
        }
    }

    /// Writes `content` to a file in the test's folder and returns its path.
    pub fn write_file(&self, name: &str, content: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write test file");
        path
    }
}

pub fn options(url: &str) -> StoreOptions {
    StoreOptions { url: url.to_owned(), max_connections: 4, busy_timeout: Duration::from_secs(5) }
}

/// What a run of the binary printed, and how it ended.
pub struct CommandOutput {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `tidings` binary in `dir` with only the given `TIDINGS_*` variables (others are removed).
pub fn tidings_with_env(args: &[&str], env: &[(&str, &str)], dir: &Path) -> CommandOutput {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tidings"));
    command.args(args).current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("TIDINGS_") {
            command.env_remove(key);
        }
    }
    command.env("TIDINGS_LOG__LEVEL", "warn");
    for (key, value) in env {
        command.env(key, value);
    }
    let Output { status, stdout, stderr } = command.output().expect("run the tidings binary");
    CommandOutput {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// The link signing keys every engine test uses.
pub const TEST_KEYS: &str = "1:test-signing-key-test-signing-key-0123456789";

/// A delivery engine that sends the sample issue 122 (added through the binary, as an editor would) to the SMTP
/// test server on `smtp_port`, with no rate limit and two connections; `extra` settings are laid over those.
/// Returns the settings, the engine and the issue's id; the caller imports the subscribers and starts the issue.
pub async fn sample_issue_engine(
    db: &TestDatabase,
    smtp_port: u16,
    extra: &[(&str, &str)],
) -> (tidings::configuration::Settings, tidings::worker::DeliveryContext, i64) {
    const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/emails/issues/122.md");
    let port = smtp_port.to_string();
    let mut env = smtp_test_env(db, &port);
    env.extend([
        ("TIDINGS_SMTP__POOL_SIZE", "2"),
        ("TIDINGS_LINKS__SIGNING_KEYS", TEST_KEYS),
        ("TIDINGS_HTTP__BASE_URL", "https://news.example.com"),
    ]);
    env.extend_from_slice(extra);
    let settings = settings_of(&env);
    let added = db.tidings_env(&["issue", "add", SAMPLE], &env);
    assert_eq!(added.code, Some(0), "{}", added.stderr);
    let issue_id = db.store.issue_by_number(db.list_id, 122).await.expect("query").expect("issue").id;
    let links = settings.link_builder().expect("links");
    let engine = tidings::startup::delivery_context(&settings, db.store.clone(), db.clock.clone(), links)
        .expect("delivery context");
    (settings, engine, issue_id)
}

/// The sender's branding the sample issue is compiled with in the rendering tests.
pub fn sample_branding() -> tidings::render::Branding {
    tidings::render::Branding {
        list_name: "So, what's up in China?".to_owned(),
        organization: "Example Insights Ltd".to_owned(),
        postal_address: "1 Example Road, 200000 Shanghai, China".to_owned(),
        sender_email: "digest@example.com".to_owned(),
    }
}

/// The settings that send through the SMTP test server on `port` (plaintext, no rate limit) into `db`; callers
/// add their pool size, keys and the rest.
pub fn smtp_test_env<'a>(db: &'a TestDatabase, port: &'a str) -> Vec<(&'static str, &'a str)> {
    vec![
        ("TIDINGS_DATABASE__URL", db.url.as_str()),
        ("TIDINGS_TRANSPORT__KIND", "smtp"),
        ("TIDINGS_SMTP__HOST", "127.0.0.1"),
        ("TIDINGS_SMTP__PORT", port),
        ("TIDINGS_SMTP__TLS", "none"),
        ("TIDINGS_DELIVERY__PER_SECOND", "0"),
    ]
}

/// The settings of `env` laid over the defaults, as `tidings` would load them from the environment.
pub fn settings_of(env: &[(&str, &str)]) -> tidings::configuration::Settings {
    let vars: std::collections::HashMap<String, String> =
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    tidings::configuration::load_layers(None, &vars).expect("settings")
}

/// Runs a command in-process with `clock` (a manual one, in tests of time); asserts it succeeds and returns what
/// it printed.
pub async fn admin_output(
    command: tidings::cli::Command,
    settings: tidings::configuration::Settings,
    clock: Clock,
) -> String {
    let mut out = Vec::new();
    let code = tidings::admin::run_with_clock(command, settings, clock, &mut out).await.expect("the command succeeds");
    assert_eq!(code, std::process::ExitCode::SUCCESS);
    String::from_utf8(out).expect("UTF-8")
}

/// Whether a server's binary is installed. When it is missing, `skip_var=1` skips the test after a loud line
/// (returns `false`); otherwise the test fails and says which package brings it.
pub fn server_installed(binary: &str, skip_var: &str, test: &str, package: &str) -> bool {
    if Path::new(binary).exists() {
        return true;
    }
    if std::env::var(skip_var).is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {test} test ({binary} is missing, {skip_var}=1)");
        return false;
    }
    panic!("{binary} is missing: install {package} (scripts/test does), or set {skip_var}=1");
}

/// Starts a server with `start_once` (fresh free ports each time; `Err` with its log when it did not come up),
/// again when another test took a port between our look and its bind, at most five times.
pub async fn start_on_free_ports<T, F: std::future::Future<Output = Result<T, String>>>(
    name: &str,
    mut start_once: impl FnMut() -> F,
) -> T {
    let mut taken = String::new();
    for _ in 0..5 {
        match start_once().await {
            Ok(server) => return server,
            Err(log) if log.contains("Address already in use") => taken = log,
            Err(log) => panic!("{name} did not start: {log}"),
        }
    }
    panic!("{name} did not start: its ports were taken five times in a row: {taken}");
}

/// A loopback TCP port free at this moment. Another test may take it before it is bound: a server started on it
/// must start again on another when its bind fails (see `start_on_free_ports`, `mta.rs`).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
