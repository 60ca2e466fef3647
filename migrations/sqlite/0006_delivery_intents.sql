-- A delivery's intent: set, durably, just before its message's final dot is written; cleared when the attempt's
-- outcome is recorded. After a crash a claimed delivery with an intent may have reached the relay (ambiguous);
-- one without went nowhere (back to the queue). Not indexed: setting it is a cheap in-place update.
ALTER TABLE deliveries ADD COLUMN in_flight_at BIGINT;
-- Deliveries claimed by a daemon from before intents may have been handed over already: count them in flight.
UPDATE deliveries SET in_flight_at = updated_at WHERE status = 'sending';
