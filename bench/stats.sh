#!/usr/bin/env bash
# Benchmark: `tidings stats` over a list with ISSUES sent issues and DELIVERIES deliveries in all (defaults 100 and
# 1,000,000), with realistic events: about 1 % bounced, 0.2 % failed, 2 % retried, 0.05 % ambiguous, 40 % opened,
# 3 % rated (a tenth of those flagged), 0.2 % unsubscribed through the issue, and a test send per issue.
# The history is generated with SQL (recursive CTEs in the sqlite3 shell) into a fresh SQLite database migrated by
# the release binary; then `tidings stats`, `tidings stats N` and `tidings report N` are timed, warm, with
# hyperfine when it is installed (Debian: hyperfine) and with `time` otherwise.
# Usage: bench/stats.sh [ISSUES] [DELIVERIES]   (needs the sqlite3 shell: apt-get install sqlite3)
set -euo pipefail
cd "$(dirname "$0")/.."
issues=${1:-100}
deliveries=${2:-1000000}
subscribers=$((deliveries / issues))
command -v sqlite3 >/dev/null || { echo "bench/stats.sh needs the sqlite3 shell: apt-get install sqlite3" >&2; exit 1; }

# BENCH_BINARY names another binary (a debug build, to try the script out quickly).
tidings=${BENCH_BINARY:-$PWD/target/release/tidings}
[[ -n "${BENCH_BINARY:-}" ]] || cargo build --release --quiet
dir=$(mktemp -d /tmp/tidings-stats-bench.XXXXXX)
# BENCH_KEEP=1 keeps the database for a closer look.
[[ -n "${BENCH_KEEP:-}" ]] && echo "database: $dir/bench.db" || trap 'rm -rf "$dir"' EXIT
export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" TIDINGS_LOG__LEVEL=warn

# Migrations and the configured list, as any command makes them.
"$tidings" issue list >/dev/null
start=$(date +%s)
sqlite3 "$dir/bench.db" <<SQL
PRAGMA synchronous = OFF;
PRAGMA cache_size = -200000;
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $subscribers) SELECT i FROM n;
INSERT INTO subscribers (email, email_normalised, name, created_at, updated_at)
  SELECT 'reader' || i || '@example.com', 'reader' || i || '@example.com', 'Reader ' || i, 0, 0 FROM n;
INSERT INTO subscriptions (list_id, subscriber_id, status, source, created_at, updated_at, consent_at)
  SELECT (SELECT id FROM lists WHERE slug = 'weekly'), id, 'active', 'import', 0, 0, 0 FROM subscribers;
-- One issue a week from Monday 2025-01-06 08:00 UTC; each took about an hour to send.
INSERT INTO issues (list_id, number, subject, source_path, source_hash, source, compiled, status, started_at,
                    finished_at, outbox_ready_at, created_at, updated_at)
  SELECT (SELECT id FROM lists WHERE slug = 'weekly'), i, 'So, what''s up in China? Issue ' || i,
         'emails/issues/' || i || '.md', 'hash' || i, '', '{}', 'sent',
         1736150400000 + (i - 1) * 604800000, 1736150400000 + (i - 1) * 604800000 + 3600000,
         1736150400000 + (i - 1) * 604800000, 0, 0
  FROM n WHERE i <= $issues;
-- Every subscriber gets every issue: h decides each delivery's fate.
INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, attempts, last_code, last_error,
                        first_attempt_at, ambiguous_at, created_at, updated_at, sent_at)
  SELECT issue_id, subscriber_id,
         CASE WHEN h % 100 = 0 THEN 'bounced' WHEN h % 500 = 1 THEN 'failed' ELSE 'sent' END,
         '<' || issue_id || '.' || subscriber_id || '@bench.example.com>', started_at,
         CASE WHEN h % 50 = 2 OR h % 2000 = 3 THEN 2 ELSE 1 END,
         CASE WHEN h % 100 = 0 THEN 550 WHEN h % 500 = 1 THEN 554 ELSE 250 END,
         CASE WHEN h % 100 = 0 THEN (CASE WHEN h % 300 = 0 THEN '550 5.2.1: 550 5.2.1 mailbox disabled'
                                          ELSE '550 5.1.1: 550 5.1.1 <recipient>: no such user' END)
              WHEN h % 500 = 1 THEN '554 5.6.0 message content rejected' END,
         started_at, CASE WHEN h % 2000 = 3 THEN started_at + 60000 END, started_at, started_at,
         CASE WHEN h % 100 <> 0 AND h % 500 <> 1 THEN started_at + (subscriber_id * 3600000) / $subscribers END
  FROM (SELECT i.id AS issue_id, s.id AS subscriber_id, i.started_at,
               (s.id * 7919 + i.id * 104729) % 1000003 AS h
        FROM issues i CROSS JOIN subscribers s);
-- The editor's test send of each issue, never counted.
INSERT INTO deliveries (issue_id, is_test, test_recipient, status, message_id, not_before, attempts, created_at,
                        updated_at, sent_at)
  SELECT id, true, 'editor@example.com', 'sent', '<test.' || id || '@bench.example.com>', started_at, 1,
         started_at, started_at, started_at FROM issues;
INSERT INTO events (kind, list_id, issue_id, subscriber_id, delivery_id, detail, created_at)
  SELECT 'bounce', 1, issue_id, subscriber_id, id, last_error, updated_at FROM deliveries WHERE status = 'bounced';
-- Opens: 40 % of delivered messages, most in the first day, some up to three days later.
INSERT INTO opens (issue_id, subscriber_id, first_at, last_at, count)
  SELECT issue_id, subscriber_id, sent_at + (id * 7919) % 259200000 / ((id % 4) + 1),
         sent_at + (id * 7919) % 259200000, 1 + id % 3
  FROM deliveries WHERE status = 'sent' AND is_test = false AND (id * 31) % 5 < 2;
-- Votes: 3 % of delivered messages, mostly 4 and 5 stars; a tenth look automated.
INSERT INTO votes (issue_id, subscriber_id, stars, flagged, flag_reason, created_at, updated_at)
  SELECT issue_id, subscriber_id, CASE id % 10 WHEN 0 THEN 1 WHEN 1 THEN 2 WHEN 2 THEN 3 WHEN 3 THEN 3
                                               WHEN 4 THEN 4 WHEN 5 THEN 4 WHEN 6 THEN 4 ELSE 5 END,
         (id % 37) = 0, CASE WHEN id % 37 = 0 THEN 'scanner user agent' END, sent_at + 600000, sent_at + 600000
  FROM deliveries WHERE status = 'sent' AND is_test = false AND (id * 17) % 33 = 0;
INSERT INTO events (kind, list_id, issue_id, subscriber_id, flagged, detail, created_at)
  SELECT 'rating', 1, issue_id, subscriber_id, flagged, stars || ' stars', created_at FROM votes;
INSERT INTO events (kind, list_id, issue_id, subscriber_id, delivery_id, detail, created_at)
  SELECT 'unsubscribe', 1, issue_id, subscriber_id, id, 'one-click', sent_at + (id * 7919) % 172800000
  FROM deliveries WHERE status = 'sent' AND is_test = false AND (id * 13) % 500 = 7;
COMMIT;
SQL
echo "generated $issues issues, $(sqlite3 "$dir/bench.db" 'SELECT COUNT(*) FROM deliveries WHERE is_test = 0') deliveries," \
  "$(sqlite3 "$dir/bench.db" 'SELECT COUNT(*) FROM opens') opens, $(sqlite3 "$dir/bench.db" 'SELECT COUNT(*) FROM votes') votes," \
  "$(sqlite3 "$dir/bench.db" 'SELECT COUNT(*) FROM events') events in $(($(date +%s) - start)) s ($(du -h "$dir/bench.db" | cut -f1))"

"$tidings" stats | sed -n '1,3p;$p'
middle=$((issues / 2))
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs "${RUNS:-20}" -N "$tidings stats" "$tidings stats $middle --json" \
    "$tidings report $middle --out $dir/report.html"
else
  for command in "stats" "stats $middle --json" "report $middle --out $dir/report.html"; do
    "$tidings" $command >/dev/null
    /usr/bin/time -f "tidings $command: %e s, peak RSS %M KB" "$tidings" $command >/dev/null
  done
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
