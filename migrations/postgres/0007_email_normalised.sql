-- Addresses are compared case-insensitively on the whole address: `GOOD1@BAD.EXAMPLE` and `good1@bad.example`
-- are one subscriber. The address stays as it was given in `email`; `email_normalised` is the form every lookup
-- and every uniqueness check uses (SubscriberEmail::normalised: ASCII letters lowercased; the domain was already
-- stored lowercased). lower() folds exactly ASCII in SQLite; on PostgreSQL translate() does the same whatever
-- the database's collation, so existing rows get the value Tidings computes.
ALTER TABLE subscribers ADD COLUMN email_normalised TEXT;
UPDATE subscribers SET email_normalised = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
-- Subscribers that already differ only by case (imported before this rule) stay separate people, as they were:
-- the oldest keeps the normalised address and each later one gets it with its id appended after a space, which
-- no valid address can end with. `tidings subscriber list` shows them; remove the ones you do not want.
UPDATE subscribers SET email_normalised = email_normalised || ' #' || CAST(id AS TEXT)
WHERE id NOT IN (SELECT MIN(id) FROM subscribers GROUP BY email_normalised);
CREATE UNIQUE INDEX subscribers_by_normalised_email ON subscribers (email_normalised);

-- The per-second rate limit as a smooth schedule (GCRA, store/pace.rs): each relay's theoretical arrival time,
-- in microseconds since the Unix epoch, shared by every daemon on this database.
CREATE TABLE relay_pace (
    relay          TEXT PRIMARY KEY,                -- host:port of the SMTP relay
    tat_micros     BIGINT NOT NULL
);
