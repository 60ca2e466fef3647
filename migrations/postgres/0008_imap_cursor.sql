-- How far the IMAP poller of [bounces.imap] has read each mailbox: the highest UID it has handled (stored and
-- moved, or left in place as unparsed) under the mailbox's UIDVALIDITY. A message at or below it is never
-- taken again, so a message left in place is not applied twice; a new UIDVALIDITY starts again from 0, and the
-- reports' fingerprints then keep anything already applied from being applied again.
CREATE TABLE imap_cursors (
    account       TEXT NOT NULL,        -- host:port/username of the mailbox's server
    mailbox       TEXT NOT NULL,
    uid_validity  BIGINT NOT NULL,
    last_uid      BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (account, mailbox)
);
