//! The IMAP poller's place in each mailbox: the highest UID it has handled under the mailbox's UIDVALIDITY.
//! Only the poller (`bounces::imap`) writes it, after the message at that UID was stored and moved (or left
//! in place as unparsed).

use anyhow::Context;
use jiff::Timestamp;

use super::{Store, on_pool};
use crate::clock::to_millis;

/// Where the poller stands in one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapCursor {
    pub uid_validity: u32,
    /// The highest UID handled; 0: none yet.
    pub last_uid: u32,
}

impl Store {
    /// The cursor of `mailbox` on `account` (`host:port/username`); `None` before the first message.
    pub async fn imap_cursor(&self, account: &str, mailbox: &str) -> anyhow::Result<Option<ImapCursor>> {
        let sql = "SELECT uid_validity, last_uid FROM imap_cursors WHERE account = $1 AND mailbox = $2";
        let row: Option<(i64, i64)> =
            on_pool!(self, pool => sqlx::query_as(sql).bind(account).bind(mailbox).fetch_optional(pool).await)
                .context("cannot read the IMAP cursor")?;
        Ok(row.map(|(validity, uid)| ImapCursor {
            uid_validity: u32::try_from(validity).unwrap_or(0),
            last_uid: u32::try_from(uid).unwrap_or(0),
        }))
    }

    /// Moves the cursor of `mailbox` to `cursor`.
    pub async fn set_imap_cursor(
        &self,
        account: &str,
        mailbox: &str,
        cursor: ImapCursor,
        now: Timestamp,
    ) -> anyhow::Result<()> {
        let sql = "INSERT INTO imap_cursors (account, mailbox, uid_validity, last_uid, updated_at) \
                   VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, mailbox) DO UPDATE SET \
                   uid_validity = excluded.uid_validity, last_uid = excluded.last_uid, updated_at = excluded.updated_at";
        on_pool!(self, pool => sqlx::query(sql)
            .bind(account)
            .bind(mailbox)
            .bind(i64::from(cursor.uid_validity))
            .bind(i64::from(cursor.last_uid))
            .bind(to_millis(now))
            .execute(pool)
            .await
            .map(|_| ()))
        .context("cannot move the IMAP cursor")?;
        Ok(())
    }
}
