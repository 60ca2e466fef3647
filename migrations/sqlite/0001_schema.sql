-- The whole Tidings data model. The PostgreSQL migration of the same name holds the same tables, columns and
-- constraints; only the id column types differ.
-- Timestamps are BIGINT milliseconds since the Unix epoch (UTC) on both backends.
-- Rows that hold personal data reference subscribers; erasing a subscriber deletes their row and keeps
-- anonymous history (ON DELETE SET NULL), so stats do not change when someone exercises their GDPR rights.

-- A list is one newsletter; an instance can hold several.
CREATE TABLE lists (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    slug          TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    time_zone     TEXT NOT NULL DEFAULT 'UTC',       -- IANA name: the list's home zone
    weekly_slot   TEXT,                              -- e.g. 'Mon 08:00' in time_zone; NULL: no cadence
    local_time    BOOLEAN NOT NULL DEFAULT false,    -- slots mean that hour in each subscriber's zone
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- A person. The address is unique across lists (domain lowercased, see SubscriberEmail).
-- AUTOINCREMENT: ids are never reused, so a link token for an erased subscriber can never name someone else.
CREATE TABLE subscribers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT NOT NULL UNIQUE,
    name          TEXT NOT NULL DEFAULT '',
    attributes    TEXT NOT NULL DEFAULT '{}',        -- JSON object of extra CSV columns
    time_zone     TEXT,                              -- IANA name, for local-time sends
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

-- A subscriber's standing with one list, with the evidence of consent.
CREATE TABLE subscriptions (
    list_id             BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    subscriber_id       BIGINT NOT NULL REFERENCES subscribers(id) ON DELETE CASCADE,
    status              TEXT NOT NULL
                        CHECK (status IN ('pending', 'active', 'unsubscribed', 'bounced', 'complained')),
    source              TEXT NOT NULL CHECK (source IN ('import', 'form', 'cli')),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    consent_at          BIGINT,                      -- when consent was given (confirmed, imported, added)
    request_ip          TEXT,                        -- the subscribe form's request
    request_user_agent  TEXT,
    confirm_ip          TEXT,                        -- the double opt-in confirmation's request
    confirm_user_agent  TEXT,
    expires_at          BIGINT,                      -- a pending subscription lapses after this
    unsubscribed_at     BIGINT,
    PRIMARY KEY (list_id, subscriber_id)
) WITHOUT ROWID;  -- clustered on the key: one B-tree less to maintain per subscription
CREATE INDEX subscriptions_by_subscriber ON subscriptions (subscriber_id);

-- Addresses that must never be mailed again, kept only as a hash so they survive erasure.
CREATE TABLE suppressions (
    email_hash    TEXT PRIMARY KEY,                  -- SubscriberEmail::suppression_hash
    reason        TEXT NOT NULL CHECK (reason IN ('bounced', 'complained', 'erased', 'manual')),
    detail        TEXT NOT NULL DEFAULT '',          -- e.g. the SMTP reply of a hard bounce
    created_at    BIGINT NOT NULL
);

-- One edition of a list, rendered once when added.
CREATE TABLE issues (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    list_id         BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    number          BIGINT NOT NULL,
    subject         TEXT NOT NULL,
    preheader       TEXT NOT NULL DEFAULT '',
    period          TEXT NOT NULL DEFAULT '',
    source_path     TEXT NOT NULL,
    source_hash     TEXT NOT NULL,                   -- SHA-256 of the source: re-adding it unchanged is a no-op
    source          TEXT NOT NULL,                   -- the Markdown file as added
    compiled        TEXT NOT NULL,                   -- the rendered HTML and text with per-recipient slots
    status          TEXT NOT NULL
                    CHECK (status IN ('draft', 'queued', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')),
    send_at         BIGINT,                          -- when scheduled
    local_time      BOOLEAN NOT NULL DEFAULT false,  -- send_at's hour in each subscriber's zone
    hold_reason     TEXT,                            -- why a paused or late issue waits, shown to admins
    queued_at       BIGINT,
    started_at      BIGINT,                          -- when sending began (its deliveries are being created)
    outbox_cursor   BIGINT NOT NULL DEFAULT 0,       -- delivery rows exist for subscriber ids up to this one
    outbox_ready_at BIGINT,                          -- when every delivery row had been created
    finished_at     BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (list_id, number)
);
CREATE INDEX issues_by_status ON issues (status, send_at);

-- The links of an issue, numbered: click tracking redirects only to these.
CREATE TABLE issue_links (
    issue_id      BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    position      BIGINT NOT NULL,
    url           TEXT NOT NULL,
    PRIMARY KEY (issue_id, position)
);

-- One issue to one subscriber: the unit of sending and of accounting.
-- queued -> sending -> sent | retry_wait | failed | bounced | suppressed | ambiguous; retry_wait -> sending;
-- ambiguous -> sending (sent again: the first attempt may or may not have arrived; ambiguous_at keeps the fact).
-- A claimed delivery is `sending` under a lease, whether or not its SMTP transaction has begun.
CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id          BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    subscriber_id     BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    is_test           BOOLEAN NOT NULL DEFAULT false,  -- a test send: not counted
    test_recipient    TEXT,                            -- the address of a test send (no subscriber)
    status            TEXT NOT NULL CHECK (status IN
                      ('queued', 'sending', 'sent', 'retry_wait', 'failed', 'bounced', 'suppressed', 'ambiguous')),
    message_id        TEXT NOT NULL UNIQUE,            -- fixed at creation, so a retry carries the same Message-ID
    not_before        BIGINT NOT NULL,                 -- earliest send: the schedule, local time or retry backoff
    attempts          BIGINT NOT NULL DEFAULT 0,
    lease_owner       TEXT,                            -- the daemon sending it now
    lease_expires_at  BIGINT,                          -- after this another daemon may reclaim it
    last_code         BIGINT,                          -- SMTP reply code of the last attempt
    last_error        TEXT,                            -- SMTP reply text or network error of the last attempt
    first_attempt_at  BIGINT,                          -- retries stop delivery.max_age after this
    ambiguous_at      BIGINT,                          -- an attempt's outcome was unknown: possibly received twice
    time_zone         TEXT,                            -- the zone that set not_before for a local-time send
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    sent_at           BIGINT
);
CREATE UNIQUE INDEX deliveries_one_per_subscriber ON deliveries (issue_id, subscriber_id) WHERE is_test = false;
CREATE INDEX deliveries_due ON deliveries (status, not_before, id);
CREATE INDEX deliveries_by_issue ON deliveries (issue_id, status);

-- Everything that happened after sending, one row per event, for stats and reports.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    kind           TEXT NOT NULL CHECK (kind IN ('subscribe', 'confirm', 'unsubscribe', 'resubscribe', 'open',
                                                 'click', 'rating', 'bounce', 'complaint', 'erase')),
    list_id        BIGINT REFERENCES lists(id) ON DELETE CASCADE,
    issue_id       BIGINT REFERENCES issues(id) ON DELETE CASCADE,
    subscriber_id  BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    delivery_id    BIGINT REFERENCES deliveries(id) ON DELETE SET NULL,
    flagged        BOOLEAN NOT NULL DEFAULT false,  -- looked automated (scanner, prefetch)
    detail         TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);
CREATE INDEX events_by_issue ON events (issue_id, kind, created_at);

-- Opens per subscriber and issue: the first one and a count (unverified: image prefetching inflates them).
CREATE TABLE opens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id       BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    subscriber_id  BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    first_at       BIGINT NOT NULL,
    last_at        BIGINT NOT NULL,
    count          BIGINT NOT NULL DEFAULT 1,
    UNIQUE (issue_id, subscriber_id)
);

-- Clicks per subscriber, issue and link.
CREATE TABLE clicks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id       BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    subscriber_id  BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    position       BIGINT NOT NULL,                 -- issue_links.position
    first_at       BIGINT NOT NULL,
    last_at        BIGINT NOT NULL,
    count          BIGINT NOT NULL DEFAULT 1,
    UNIQUE (issue_id, subscriber_id, position)
);

-- Star ratings: one genuine vote per subscriber and issue (a new vote replaces it), and apart from it the
-- latest vote that looked automated, kept for inspection but left out of every tally.
CREATE TABLE votes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    issue_id       BIGINT NOT NULL REFERENCES issues(id) ON DELETE CASCADE,
    subscriber_id  BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    stars          BIGINT NOT NULL CHECK (stars BETWEEN 1 AND 5),
    flagged        BOOLEAN NOT NULL DEFAULT false,
    flag_reason    TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL,
    UNIQUE (issue_id, subscriber_id, flagged)
);

-- Messages submitted per relay and time window: the rate limit shared by every daemon, kept across restarts.
CREATE TABLE relay_usage (
    relay          TEXT NOT NULL,                   -- host:port of the SMTP relay
    period         TEXT NOT NULL CHECK (period IN ('second', 'hour', 'day')),
    window_start   BIGINT NOT NULL,
    used           BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (relay, period, window_start)
);

-- A relay's circuit: open while it refuses or throttles us, so every daemon backs off together.
CREATE TABLE relay_circuits (
    relay          TEXT PRIMARY KEY,
    open_until     BIGINT NOT NULL,
    failures       BIGINT NOT NULL DEFAULT 0,
    reason         TEXT NOT NULL DEFAULT '',
    updated_at     BIGINT NOT NULL
);

-- The weekly slots of each list and what became of them.
CREATE TABLE issue_slots (
    list_id         BIGINT NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
    slot_at         BIGINT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'skipped', 'missed', 'waiting')),
    issue_id        BIGINT REFERENCES issues(id) ON DELETE SET NULL,
    notice_sent_at  BIGINT,                         -- when the admin was told the queue is empty
    detail          TEXT NOT NULL DEFAULT '',
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (list_id, slot_at)
);

-- Running daemons, for leases and for `issue status` to say who is sending.
CREATE TABLE daemons (
    id             TEXT PRIMARY KEY,
    hostname       TEXT NOT NULL,
    pid            BIGINT NOT NULL,
    started_at     BIGINT NOT NULL,
    heartbeat_at   BIGINT NOT NULL
);
