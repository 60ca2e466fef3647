-- Data written with the first release's schema (migration 0001 only), for the upgrade test (tests/it/upgrade.rs).
-- The same SQL runs on SQLite and PostgreSQL. The test applies migrations one by one up to each seed file's
-- number, runs the file, then migrates to the current schema and checks every row written here is intact.
-- A later migration that changes existing tables adds a seed file named after it (e.g. 0008_name.sql) with
-- rows that use its new columns.

INSERT INTO lists (id, slug, name, time_zone, weekly_slot, local_time, created_at, updated_at)
VALUES (1, 'weekly', 'Weekly', 'Europe/London', 'Mon 08:00', false, 1764000000000, 1764000000000);

INSERT INTO subscribers (id, email, name, attributes, time_zone, created_at, updated_at) VALUES
  (1, 'ada@example.com', 'Ada Lovelace', '{"company":"Analytical"}', 'Europe/London', 1764000000000, 1764000000000),
  (2, 'grace@example.org', 'Grace Hopper', '{}', NULL, 1764000001000, 1764000001000),
  (3, 'linus@example.net', '', '{}', 'America/New_York', 1764000002000, 1764000002000);

INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at, request_ip,
                           request_user_agent, confirm_ip, confirm_user_agent, expires_at, unsubscribed_at) VALUES
  (1, 1, 'active', 'import', 1764000000000, 1764000000000, 1764000000000, NULL, NULL, NULL, NULL, NULL, NULL),
  (1, 2, 'unsubscribed', 'form', 1764000001000, 1764100000000, 1764000005000, '192.0.2.1', 'Firefox',
   '192.0.2.1', 'Firefox', NULL, 1764100000000),
  (1, 3, 'pending', 'form', 1764000002000, 1764000002000, NULL, '198.51.100.7', 'curl', NULL, NULL,
   1764600000000, NULL);

INSERT INTO suppressions (email_hash, reason, detail, created_at)
VALUES ('9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08', 'bounced', '550 5.1.1 no such user',
        1764050000000);

INSERT INTO issues (id, list_id, number, subject, preheader, period, source_path, source_hash, source, compiled,
                    status, send_at, local_time, hold_reason, queued_at, started_at, outbox_cursor, outbox_ready_at,
                    finished_at, created_at, updated_at) VALUES
  (1, 1, 121, 'Issue 121', 'The week in brief', '1-7 December', 'emails/issues/121.md', 'abc123',
   '+++\nnumber = 121\n+++\n## Item\nText', '{"segments":[]}', 'sent', 1764050000000, false, NULL, NULL,
   1764050000000, 3, 1764050001000, 1764060000000, 1764040000000, 1764060000000),
  (2, 1, 122, 'Issue 122', '', '', 'emails/issues/122.md', 'def456', '+++\nnumber = 122\n+++\n', '{}', 'draft',
   NULL, false, NULL, NULL, NULL, 0, NULL, NULL, 1764070000000, 1764070000000);

INSERT INTO issue_links (issue_id, position, url) VALUES (1, 1, 'https://example.com/a');

INSERT INTO deliveries (id, issue_id, subscriber_id, is_test, test_recipient, status, message_id, not_before,
                        attempts, lease_owner, lease_expires_at, last_code, last_error, first_attempt_at,
                        ambiguous_at, time_zone, created_at, updated_at, sent_at) VALUES
  (1, 1, 1, false, NULL, 'sent', '<121.1.abc@example.com>', 1764050000000, 1, NULL, NULL, 250, NULL,
   1764050002000, NULL, NULL, 1764050000000, 1764050002000, 1764050002000),
  (2, 1, 2, false, NULL, 'bounced', '<121.2.abc@example.com>', 1764050000000, 1, NULL, NULL, 550,
   '5.1.1 no such user', 1764050002000, NULL, NULL, 1764050000000, 1764050003000, NULL),
  (3, 1, 3, false, NULL, 'sent', '<121.3.abc@example.com>', 1764050000000, 2, NULL, NULL, 250, NULL,
   1764050002000, 1764050004000, NULL, 1764050000000, 1764050009000, 1764050009000),
  (4, 1, NULL, true, 'editor@example.com', 'sent', '<121.test.abc@example.com>', 1764049000000, 1, NULL, NULL,
   250, NULL, 1764049000000, NULL, NULL, 1764049000000, 1764049000000, 1764049000000);

INSERT INTO events (id, kind, list_id, issue_id, subscriber_id, delivery_id, flagged, detail, created_at) VALUES
  (1, 'bounce', 1, 1, 2, 2, false, '550 5.1.1', 1764050003000),
  (2, 'unsubscribe', 1, 1, 2, 2, false, 'one-click', 1764100000000),
  (3, 'rating', 1, 1, 1, 1, false, '5', 1764060000000);

INSERT INTO opens (id, issue_id, subscriber_id, first_at, last_at, count)
VALUES (1, 1, 1, 1764050100000, 1764060000000, 3);

INSERT INTO clicks (id, issue_id, subscriber_id, position, first_at, last_at, count)
VALUES (1, 1, 1, 1, 1764050200000, 1764050200000, 1);

INSERT INTO votes (id, issue_id, subscriber_id, stars, flagged, flag_reason, created_at, updated_at) VALUES
  (1, 1, 1, 5, false, NULL, 1764060000000, 1764060000000),
  (2, 1, 3, 1, true, 'prefetch', 1764050005000, 1764050005000),
  (3, 1, 3, 4, false, NULL, 1764070000000, 1764070000000);

INSERT INTO relay_circuits (relay, open_until, failures, reason, updated_at)
VALUES ('mail.example.com:587', 1764050000000, 2, '421 try later', 1764049000000);

INSERT INTO issue_slots (list_id, slot_at, status, issue_id, notice_sent_at, detail, updated_at)
VALUES (1, 1764576000000, 'sent', 1, NULL, '', 1764576000000);
