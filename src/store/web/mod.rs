//! The store side of the public web: what a signed link names, unsubscribes and resubscribes, star votes and
//! their tallies, opens and clicks, form subscriptions with their double opt-in, the archive, and the counts
//! `/metrics` reports.
//!
//! Like the rest of `store`, each function holds its SQLite and PostgreSQL statements side by side. This module
//! never trusts an id on its own: the web verifies a link's signature before it calls anything here, and every
//! lookup also checks that the list, subscriber and issue of a link belong together. Write transactions begin
//! with a write (or `BEGIN IMMEDIATE` on SQLite), so concurrent requests queue on the lock instead of failing
//! with a busy snapshot.

mod links;
mod reports;
mod subscriptions;
mod tracking;
mod votes;

pub use links::{LinkIssue, LinkSubscriber, Resubscribe};
pub use reports::{ArchiveEntry, WebCounts};
pub use subscriptions::{ExpiryOutcome, NoConfirmation, SubscribeOutcome, SubscribeRequest};
pub use tracking::OpenEvent;
pub use votes::{NewVote, Stars, Tally};

use super::Backend;

/// The statement that opens a write transaction: SQLite takes the write lock at once, so a transaction that
/// reads before it writes cannot fail halfway when another writer commits first.
fn begin_write(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres => "BEGIN",
    }
}

/// The table-valued function that unpacks a bound JSON array into rows with a `value` column.
fn json_rows(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "jsonb_each($1) AS j",
        Backend::Postgres => "jsonb_array_elements($1::jsonb) AS j(value)",
    }
}
