-- Weekly cadence.
-- When each list's cadence (slot, zone, local time) was last set: slots before it are not the daemon's to fill.
ALTER TABLE lists ADD COLUMN cadence_since BIGINT;
-- A local-time issue's wall-clock date and time ('2026-12-07T08:00:00'): each subscriber's delivery waits for it
-- in their own zone. NULL: the issue goes out at send_at for everyone.
ALTER TABLE issues ADD COLUMN local_at TEXT;
