-- The queue's index holds only the deliveries still to settle (queued, being sent, waiting to retry, ambiguous):
-- what claims, the next due time and the reclaim of abandoned leases read. A delivery that settles (sent,
-- failed, bounced, suppressed) leaves it instead of adding one more entry, so each outcome writes one index entry
-- fewer and the index stays the size of the queue, not of every delivery ever made. Queries name the status as
-- a literal so that the planner can use the partial index; counts of settled deliveries use
-- deliveries_by_issue. (SQLite keeps its full index: see its file of the same name.)
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (status, not_before, id)
    WHERE status IN ('queued', 'sending', 'retry_wait', 'ambiguous');
