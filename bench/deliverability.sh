#!/usr/bin/env bash
# Benchmark: `tidings stats --deliverability` over DELIVERIES deliveries (default 100,000) of ISSUES issues (default
# 10) sent over the last 50 days, to subscribers spread over Gmail, Microsoft, Yahoo, iCloud and other domains,
# with about 1 % hard-bounced, 0.5 % failed, 0.15 % complained about (a stored ARF report each) and 40 % opened.
# The history is generated with SQL (recursive CTEs, the same text for the sqlite3 shell and psql) into a fresh
# database migrated by the binary, then `stats --deliverability` (30 days, JSON) is timed warm, with hyperfine
# when it is installed and with `time` otherwise.
# Usage: bench/deliverability.sh [sqlite|postgres] [DELIVERIES] [ISSUES]
#   sqlite needs the sqlite3 shell; postgres needs psql and PG_TEST_URL (an admin URL: a database is created).
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
deliveries=${2:-100000}
issues=${3:-10}
subscribers=$((deliveries / issues))

# BENCH_BINARY names another binary (a debug build, to try the script out quickly).
tidings=${BENCH_BINARY:-$PWD/target/release/tidings}
[[ -n "${BENCH_BINARY:-}" ]] || cargo build --release --quiet
dir=$(mktemp -d /tmp/tidings-deliverability-bench.XXXXXX)
case "$backend" in
  sqlite)
    command -v sqlite3 >/dev/null || { echo "needs the sqlite3 shell: apt-get install sqlite3" >&2; exit 1; }
    url="sqlite://$dir/bench.db"
    run_sql() { sqlite3 "$dir/bench.db"; }
    # BENCH_KEEP=1 keeps the database for a closer look.
    [[ -n "${BENCH_KEEP:-}" ]] && echo "database: $dir/bench.db" || trap 'rm -rf "$dir"' EXIT ;;
  postgres)
    : "${PG_TEST_URL:?set PG_TEST_URL to a PostgreSQL admin URL}"
    name="tidings_deliverability_bench_$$"
    psql -q "$PG_TEST_URL" -c "CREATE DATABASE $name" >/dev/null
    url="${PG_TEST_URL%/*}/$name"
    run_sql() { psql -q -v ON_ERROR_STOP=1 "$url" >/dev/null; }
    [[ -n "${BENCH_KEEP:-}" ]] && echo "database: $name (kept)" ||
      trap 'rm -rf "$dir"; psql -q "$PG_TEST_URL" -c "DROP DATABASE $name" >/dev/null' EXIT ;;
  *) echo "usage: bench/deliverability.sh [sqlite|postgres] [DELIVERIES] [ISSUES]" >&2; exit 2 ;;
esac
export TIDINGS_DATABASE__URL="$url" TIDINGS_LOG__LEVEL=warn

# Migrations and the configured list, as any command makes them.
"$tidings" issue list >/dev/null
now=$(($(date +%s) * 1000))
day=86400000
start=$(date +%s)
run_sql <<SQL
BEGIN;
CREATE TEMP TABLE n AS WITH RECURSIVE n(i) AS (SELECT CAST(1 AS BIGINT) UNION ALL SELECT i + 1 FROM n WHERE i < $subscribers) SELECT i FROM n;
INSERT INTO subscribers (email, email_normalised, name, created_at, updated_at)
  SELECT 'reader' || i || '@' || CASE i % 10 WHEN 0 THEN 'gmail.com' WHEN 1 THEN 'gmail.com' WHEN 2 THEN 'gmail.com'
           WHEN 3 THEN 'outlook.com' WHEN 4 THEN 'hotmail.com' WHEN 5 THEN 'yahoo.com' WHEN 6 THEN 'icloud.com'
           ELSE 'example' || (i % 500) || '.org' END,
         'reader' || i || '@' || CASE i % 10 WHEN 0 THEN 'gmail.com' WHEN 1 THEN 'gmail.com' WHEN 2 THEN 'gmail.com'
           WHEN 3 THEN 'outlook.com' WHEN 4 THEN 'hotmail.com' WHEN 5 THEN 'yahoo.com' WHEN 6 THEN 'icloud.com'
           ELSE 'example' || (i % 500) || '.org' END,
         'Reader ' || i, 0, 0 FROM n;
-- One issue every five days, the last one yesterday.
INSERT INTO issues (list_id, number, subject, source_path, source_hash, source, compiled, status, started_at,
                    finished_at, outbox_ready_at, created_at, updated_at)
  SELECT (SELECT id FROM lists WHERE slug = 'weekly'), i, 'Issue ' || i, 'emails/issues/' || i || '.md',
         'hash' || i, '', '{}', 'sent', $now - ($issues - i) * 5 * $day - $day,
         $now - ($issues - i) * 5 * $day - $day + 3600000, $now - ($issues - i) * 5 * $day - $day, 0, 0
  FROM n WHERE i <= $issues;
INSERT INTO deliveries (issue_id, subscriber_id, status, message_id, not_before, attempts, first_attempt_at,
                        created_at, updated_at, sent_at)
  SELECT issue_id, subscriber_id,
         CASE WHEN h % 100 = 0 THEN 'bounced' WHEN h % 200 = 1 THEN 'failed' ELSE 'sent' END,
         '<' || issue_id || '.' || subscriber_id || '@bench.example.com>', started_at, 1, started_at,
         started_at, started_at, started_at
  FROM (SELECT i.id AS issue_id, s.id AS subscriber_id, i.started_at, (s.id * 7919 + i.id * 104729) % 1000003 AS h
        FROM issues i CROSS JOIN subscribers s) d;
INSERT INTO bounce_reports (received_at, source, fingerprint, form, kind, matched_by, list_id, issue_id,
                            subscriber_id, delivery_id)
  SELECT sent_at + $day, 'smtp', 'fp' || id, 'feedback', 'complaint', 'trace-header', 1, issue_id, subscriber_id, id
  FROM deliveries WHERE status = 'sent' AND (id * 7) % 667 = 3;
INSERT INTO opens (issue_id, subscriber_id, first_at, last_at, count)
  SELECT issue_id, subscriber_id, sent_at + 600000, sent_at + 600000, 1
  FROM deliveries WHERE status = 'sent' AND (id * 31) % 5 < 2;
COMMIT;
ANALYZE;
SQL
echo "$backend: generated $issues issues, $deliveries deliveries in $(($(date +%s) - start)) s"

"$tidings" stats --deliverability | head -n 12
if command -v hyperfine >/dev/null; then
  hyperfine --warmup 2 --runs "${RUNS:-20}" -N "$tidings stats --deliverability --json" \
    "$tidings stats --deliverability --days 60 --json" "$tidings stats"
else
  for command in "stats --deliverability --json" "stats --deliverability --days 60 --json" "stats"; do
    "$tidings" $command >/dev/null
    for run in 1 2 3 4 5; do
      /usr/bin/time -f "tidings $command: %e s wall, %U s user + %S s system CPU, peak RSS %M KB" "$tidings" $command >/dev/null
    done
  done
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
