-- PostgreSQL's deliveries_due becomes a partial index of the deliveries still to settle, to save an index entry
-- per outcome there. SQLite keeps its full index: its planner proves a partial index usable only from terms it
-- can match to the index's condition, and a claim that fell back to a full scan would cost far more than the
-- entry saved.
SELECT 1;
