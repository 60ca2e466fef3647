-- Reports that come back after the relay said 250: delivery status notifications (RFC 3464), complaints (ARF,
-- RFC 5965), auto-replies and provider events, through the listener, `bounce ingest`, IMAP or a webhook.
-- Each is stored once (by its fingerprint) and applied in the same transaction, so a sender that retries after
-- a lost reply changes nothing twice.
CREATE TABLE bounce_reports (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at    BIGINT NOT NULL,
    source         TEXT NOT NULL,                   -- smtp, lmtp, ingest, imap, webhook
    fingerprint    TEXT NOT NULL UNIQUE,            -- SHA-256 of the raw message (or the provider's event id)
    form           TEXT NOT NULL,                   -- dsn, feedback, auto-reply, plain-bounce, unrecognised
    kind           TEXT NOT NULL,                   -- hard, soft, policy, complaint, auto-reply, delayed, delivered,
                                                    -- unclassified
    matched_by     TEXT,                            -- return-path, trace-header, message-id; NULL: unmatched
    list_id        BIGINT REFERENCES lists(id) ON DELETE SET NULL,
    issue_id       BIGINT REFERENCES issues(id) ON DELETE SET NULL,
    subscriber_id  BIGINT REFERENCES subscribers(id) ON DELETE SET NULL,
    delivery_id    BIGINT REFERENCES deliveries(id) ON DELETE SET NULL,
    is_test        BOOLEAN NOT NULL DEFAULT false,  -- about a test send or a confirmation email: not counted
    status_code    TEXT NOT NULL DEFAULT '',        -- the enhanced status, e.g. 5.1.1
    reason         TEXT NOT NULL DEFAULT '',        -- why it was classified so, with the diagnostic
    effect         TEXT NOT NULL DEFAULT '',        -- what it changed, e.g. "suppressed", "nothing"
    subject        TEXT NOT NULL DEFAULT '',
    raw            TEXT NOT NULL DEFAULT '',        -- the message as received, capped, other people's addresses removed
    raw_bytes      BIGINT NOT NULL DEFAULT 0        -- its size as received
);
CREATE INDEX bounce_reports_by_issue ON bounce_reports (issue_id, kind);
CREATE INDEX bounce_reports_by_received ON bounce_reports (received_at);
CREATE INDEX bounce_reports_by_subscriber ON bounce_reports (subscriber_id);

-- The soft-bounce score of an address: +1 per soft bounce, 0 again after [bounces] soft_window without one.
ALTER TABLE subscribers ADD COLUMN bounce_score DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN bounce_score_at BIGINT;

-- When a report changed a delivery after it was sent (a later bounce): stats tell these from the relay's.
ALTER TABLE deliveries ADD COLUMN reported_at BIGINT;

-- Every change an admin made to the suppression list, with the reason: a removal is never silent.
CREATE TABLE suppression_changes (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email_hash     TEXT NOT NULL,
    action         TEXT NOT NULL CHECK (action IN ('add', 'remove')),
    reason         TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
