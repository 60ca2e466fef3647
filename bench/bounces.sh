#!/usr/bin/env bash
# Benchmark: how many bounces per second the report listener of `tidings serve` takes into SQLite.
#
# It sends the sample issue to RUNS x PER_RUN subscribers through the outbox transport (each .eml carries its
# signed trace token), starts `tidings serve` with the listener, and for each run delivers PER_RUN distinct DSNs
# (hard bounces, each about another subscriber) over CONNECTIONS concurrent SMTP sessions with
# bench/bounce_flood.py. Each run's rate is measured from the first connect to the last 250 (every 250 comes
# after the report's commit); it prints each run, the median and the range, then checks the database: every
# report stored and applied once.
# Usage: bench/bounces.sh [PER_RUN] [CONNECTIONS] [RUNS]   (PROFILE=dev: the debug build; NO_BUILD=1: as built)
set -euo pipefail
cd "$(dirname "$0")/.."
per_run=${1:-5000}
connections=${2:-8}
runs=${3:-5}
profile=${PROFILE:-release}

if [[ -z ${NO_BUILD:-} ]]; then
  if [[ $profile == release ]]; then cargo build --release --quiet; else cargo build --quiet; fi
fi
tidings=$PWD/target/$([[ $profile == release ]] && echo release || echo debug)/tidings
dir=$(mktemp -d /tmp/tidings-bounce-bench.XXXXXX)
cleanup() { kill "${daemon:-}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

total=$((per_run * runs))
port=$(free_port)
export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" TIDINGS_LOG__LEVEL=warn
export TIDINGS_TRANSPORT__KIND=outbox TIDINGS_OUTBOX__DIR="$dir/outbox"
export TIDINGS_DELIVERY__PER_SECOND=0 TIDINGS_DELIVERY__BATCH_SIZE=1000
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
export TIDINGS_BOUNCES__ADDRESS=bounces@bounces.example.com TIDINGS_BOUNCES__LISTEN="127.0.0.1:$port"
export TIDINGS_BOUNCES__MAX_CONNECTIONS_PER_CLIENT=$((connections + 8)) TIDINGS_BOUNCES__PER_CLIENT_PER_MINUTE=100000000
# A bounce rate of 100% would pause a sending issue; this one is sent before the reports arrive.
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS

awk -v n="$total" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.com,Reader %d\n", i, i }' >"$dir/subscribers.csv"
"$tidings" subscriber import "$dir/subscribers.csv" >/dev/null
"$tidings" issue add emails/issues/122.md >/dev/null
"$tidings" issue send 122 >/dev/null
${PERF:-} "$tidings" serve >"$dir/serve.log" 2>&1 &
daemon=$!
echo "sending issue 122 to $total subscribers into the outbox..." >&2
while [[ "$("$tidings" issue status 122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" != sent ]]; do
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.5
done
# The listener is up as soon as serve is: wait until it greets.
until python3 -c "import socket,sys; s=socket.create_connection(('127.0.0.1', $port)); sys.exit(0 if s.recv(3)==b'220' else 1)" 2>/dev/null; do sleep 0.2; done

mapfile -t files < <(find "$dir/outbox" -name '*.eml' | sort)
((${#files[@]} == total)) || { echo "expected $total outbox messages, found ${#files[@]}" >&2; exit 1; }
results=()
for ((run = 0; run < runs; run++)); do
  read -r count seconds rate failed < <(python3 bench/bounce_flood.py "$port" "$connections" bounces.example.com \
    "${files[@]:$((run * per_run)):$per_run}")
  echo "run $((run + 1)): $count bounces in $seconds s over $connections connections: $rate bounces/s ($failed without 250)"
  results+=("$rate")
done
read -r cpu_user cpu_system < <(awk '{print $14, $15}' "/proc/$daemon/stat")
kill -TERM "$daemon"; wait "$daemon" || true; daemon=

python3 - "$dir/bench.db" "$total" "$connections" "$profile" "${results[@]}" <<'PY'
import sqlite3, statistics, sys
db, total, connections, profile, rates = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], [int(r) for r in sys.argv[5:]]
con = sqlite3.connect(db)
stored, = con.execute("SELECT COUNT(*) FROM bounce_reports WHERE kind = 'hard' AND subscriber_id IS NOT NULL").fetchone()
bounced, = con.execute("SELECT COUNT(*) FROM subscriptions WHERE status = 'bounced'").fetchone()
events, = con.execute("SELECT COUNT(*) FROM events WHERE kind = 'bounce'").fetchone()
print(f"\nlistener ({profile} build, SQLite, {connections} connections): median {statistics.median(rates):.0f} bounces/s, "
      f"range {min(rates)} to {max(rates)} over {len(rates)} runs")
print(f"stored and matched: {stored} of {total}; subscribers bounced: {bounced}; bounce events: {events}")
if not (stored == bounced == events == total):
    sys.exit("some reports were not stored and applied exactly once")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
