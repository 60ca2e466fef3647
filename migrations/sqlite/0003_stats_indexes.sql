-- Indexes for `tidings stats`: the overview counts deliveries per issue and status from deliveries_by_issue
-- alone and takes away test sends and counts ambiguous deliveries through these two small partial indexes, so
-- it never reads the deliveries table itself (a million rows).
CREATE INDEX deliveries_tests ON deliveries (issue_id, status) WHERE is_test = true;
CREATE INDEX deliveries_ambiguous ON deliveries (issue_id) WHERE ambiguous_at IS NOT NULL AND is_test = false;
