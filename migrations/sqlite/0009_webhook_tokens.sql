-- The tokens of signed webhook requests already taken (Mailgun's `signature.token`), as SHA-256 hashes, each
-- kept until its request's timestamp is older than the tolerance: a request whose token is here is a replay
-- and is refused; after `expires_at` the timestamp check refuses it anyway, and the row is deleted.
CREATE TABLE webhook_tokens (
    provider    TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (provider, token_hash)
);
CREATE INDEX webhook_tokens_by_expiry ON webhook_tokens (expires_at);
