-- Unconfirmed subscriptions by when they lapse. The daemon looks for lapsed ones at every step; without this
-- it would read every subscription each time. Partial: only pending rows are in it, so imports of active
-- subscribers do not maintain it.
CREATE INDEX subscriptions_pending ON subscriptions (expires_at) WHERE status = 'pending';
