-- A delivery's intent: set, durably, just before its message's final dot is written; cleared when the attempt's
-- outcome is recorded. After a crash a claimed delivery with an intent may have reached the relay (ambiguous);
-- one without went nowhere (back to the queue). Not indexed: setting it is a HOT update (no index touched).
ALTER TABLE deliveries ADD COLUMN in_flight_at BIGINT;
-- Deliveries claimed by a daemon from before intents may have been handed over already: count them in flight.
UPDATE deliveries SET in_flight_at = updated_at WHERE status = 'sending';
-- Room on each page for the new version of a row, so that updates touching no indexed column (the intent, a
-- lease) stay on the page and write no index entry (HOT updates). Applies to pages written from now on.
ALTER TABLE deliveries SET (fillfactor = 80);
-- Nothing looks a delivery up by its Message-ID, and each is unique by construction (issue and subscriber,
-- themselves unique, or 64 random bits for a test send): its unique index only cost every claim and every
-- outcome one more index entry. (SQLite keeps it: dropping a column's UNIQUE there means rebuilding the table.)
ALTER TABLE deliveries DROP CONSTRAINT deliveries_message_id_key;
