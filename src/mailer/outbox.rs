//! The outbox transport: each message becomes one `.eml` file in a folder, byte for byte what SMTP would send,
//! so a new user sees real mail without a server.
//!
//! This file owns the folder's layout: flat, one file per Message-ID (`<dir>/<message id>.eml`, characters
//! outside a safe set percent-encoded), written atomically (a temporary file, flushed to disk, then linked into
//! place), never overwritten. A second write of the same Message-ID is a no-op that reports success: the
//! Message-ID is fixed per delivery, so a second write is the same delivery sent again (say, after a crash
//! between writing and recording), and keeping the first copy is what a relay that deduplicates would do.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{BuiltMessage, Gate, SendOutcome, delivery_part};
use crate::domain::sha256_hex;

/// The longest file name we build; longer Message-IDs are named by their digest instead.
const MAX_NAME: usize = 200;

/// Distinguishes the temporary files of concurrent writers in one process; the process id tells processes apart.
static TEMPORARY: AtomicU64 = AtomicU64::new(0);

/// The outbox folder could not be prepared.
#[derive(Debug, thiserror::Error)]
#[error("outbox.dir: cannot use {}: {source}", path.display())]
pub struct OutboxError {
    path: PathBuf,
    source: io::Error,
}

/// Writes messages into one folder. Many senders may share a folder: names never collide.
#[derive(Debug, Clone)]
pub struct OutboxSender {
    dir: PathBuf,
}

impl OutboxSender {
    /// Creates the folder when it is missing.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, OutboxError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| OutboxError { path: dir.clone(), source })?;
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file a message with this Message-ID is written to.
    pub fn path_for(&self, message_id: &str) -> PathBuf {
        self.dir.join(file_name(message_id))
    }

    /// Writes the message; file system work happens on a blocking thread.
    pub async fn send(&mut self, message: &BuiltMessage) -> SendOutcome {
        self.send_gated(message, &mut Gate::open()).await
    }

    /// Writes the message once `gate` opens (a file is the outbox's final dot).
    pub async fn send_gated(&mut self, message: &BuiltMessage, gate: &mut Gate<'_>) -> SendOutcome {
        if let Err(reason) = gate.pass().await {
            return SendOutcome::Transient { code: None, reply: format!("withheld before writing: {reason}") };
        }
        let path = self.path_for(&message.message_id);
        let bytes = message.bytes.clone();
        let span = tracing::debug_span!("outbox_write", message = delivery_part(&message.message_id));
        let written = tokio::task::spawn_blocking(move || write_new(&path, &bytes).map(|created| (path, created)));
        let outcome = match written.await {
            Ok(Ok((path, true))) => SendOutcome::Accepted { reply: format!("250 written to {}", path.display()) },
            Ok(Ok((path, false))) => {
                SendOutcome::Accepted { reply: format!("250 already in the outbox as {}", path.display()) }
            }
            Ok(Err(e)) if e.kind() == io::ErrorKind::StorageFull => {
                SendOutcome::Unavailable { reason: format!("the outbox {} is full: {e}", self.dir.display()) }
            }
            Ok(Err(e)) => {
                SendOutcome::Fatal { reason: format!("cannot write to the outbox {}: {e}", self.dir.display()) }
            }
            Err(e) => SendOutcome::Transient { code: None, reply: format!("the outbox writer stopped: {e}") },
        };
        span.in_scope(|| tracing::debug!(outcome = %outcome, "message handed over"));
        outcome
    }
}

/// Writes `bytes` to `path` unless it exists; `Ok(false)` when it did. The content reaches the disk before the
/// name appears, so a crash leaves either no file or the whole file (plus, at worst, a hidden temporary one).
fn write_new(path: &Path, bytes: &[u8]) -> io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if path.exists() {
        return Ok(false);
    }
    let temporary =
        dir.join(format!(".tmp.{}.{}.{name}", std::process::id(), TEMPORARY.fetch_add(1, Ordering::Relaxed)));
    let result = (|| {
        let mut file = File::create_new(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        // A hard link, unlike a rename, fails when the name exists: two writers of one Message-ID cannot both win.
        match fs::hard_link(&temporary, path) {
            Ok(()) => {
                File::open(dir)?.sync_all()?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    })();
    // The temporary name is ours alone; if removing it fails, a hidden file is all that is left behind.
    let _ = fs::remove_file(&temporary);
    result
}

/// A file name from a Message-ID: the brackets dropped, letters, digits and `.-_@+` kept, every other byte
/// written as `%XX` (so two Message-IDs never share a name), a leading dot escaped (no hidden files).
fn file_name(message_id: &str) -> String {
    let id = message_id.trim().trim_start_matches('<').trim_end_matches('>');
    let mut name = String::with_capacity(id.len() + 4);
    for (index, byte) in id.bytes().enumerate() {
        let safe =
            byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'@' | b'+') || (byte == b'.' && index > 0);
        if safe {
            name.push(char::from(byte));
        } else {
            let _ = write!(name, "%{byte:02X}");
        }
    }
    if name.is_empty() || name.len() > MAX_NAME {
        name = format!("sha256-{}", sha256_hex(&[message_id.as_bytes()]));
    }
    name.push_str(".eml");
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(file_name("<122.4711.k3j2@example.com>"), "122.4711.k3j2@example.com.eml");
        assert_eq!(file_name("<a/b@x>"), "a%2Fb@x.eml");
        assert_eq!(file_name("<a%2Fb@x>"), "a%252Fb@x.eml");
        assert_eq!(file_name("<../../etc/passwd@x>"), "%2E.%2F..%2Fetc%2Fpasswd@x.eml");
        assert_eq!(file_name("<>"), format!("sha256-{}.eml", sha256_hex(&[b"<>"])));
        let long = format!("<{}@x>", "a".repeat(300));
        assert!(file_name(&long).starts_with("sha256-"));
    }

    #[test]
    fn a_second_write_of_the_same_name_keeps_the_first_copy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.eml");
        assert!(write_new(&path, b"first").unwrap());
        assert!(!write_new(&path, b"second").unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"first");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["m.eml"], "no temporary file is left behind");
    }
}
