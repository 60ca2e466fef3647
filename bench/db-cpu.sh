#!/usr/bin/env bash
# Benchmark: the PostgreSQL server's CPU per message while `tidings serve` sends the sample issue to N
# subscribers (default 50,000) into Postfix's smtp-sink. Starts its own throwaway PostgreSQL (initdb in a temp
# dir, fsync and synchronous_commit on, as in production), measures the CPU of the postmaster and every one of
# its processes (backends, WAL writer, checkpointer, autovacuum; exited ones through the postmaster's children
# times) from the daemon's start to the issue's `sent`, and divides by the messages sent. That covers creating
# the delivery rows, claims, the last check, intents and outcomes: everything the send asks of the database.
# It also reports the send path alone: the CPU from the moment every delivery row exists to the end, per
# message sent in that time.
# Usage: bench/db-cpu.sh [SUBSCRIBERS] [SESSIONS]
#   (needs Debian's postgresql and postfix; run as root, PostgreSQL runs as the postgres user)
#   BENCH_BIN=path runs that binary instead of building a release one.
#   BENCH_SQL=file runs that SQL on the database before the send (to try a schema change without a build).
#   STATEMENTS=1 also loads pg_stat_statements and prints the statements by total time (it costs a little CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
subscribers=${1:-50000}
sessions=${2:-16}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
command -v smtp-sink >/dev/null || { echo "bench/db-cpu.sh needs smtp-sink: apt-get install postfix" >&2; exit 1; }
[[ -x "$pgbin/initdb" ]] || { echo "bench/db-cpu.sh needs PostgreSQL: apt-get install postgresql" >&2; exit 1; }

if [[ -z "${BENCH_BIN:-}" ]]; then cargo build --release --quiet; fi
tidings=${BENCH_BIN:-$PWD/target/release/tidings}
dir=$(mktemp -d /tmp/tidings-db-bench.XXXXXX)
chmod 755 "$dir"
as_pg() { runuser -u postgres -- "$@"; }
cleanup() {
  kill "${sink:-}" "${daemon:-}" 2>/dev/null || true
  [[ -f "$dir/pg/postmaster.pid" ]] && as_pg "$pgbin/pg_ctl" -D "$dir/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

mkdir "$dir/pg" "$dir/sock" && chown postgres "$dir/pg" "$dir/sock"
as_pg "$pgbin/initdb" -D "$dir/pg" --auth=trust -U postgres >/dev/null
pgport=$(free_port)
preload=""
[[ -n "${STATEMENTS:-}" ]] && preload="-c shared_preload_libraries=pg_stat_statements"
as_pg "$pgbin/pg_ctl" -D "$dir/pg" -l "$dir/sock/pg.log" -w start \
  -o "-p $pgport -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on $preload" >/dev/null
psql() { as_pg "$pgbin/psql" -h "$dir/sock" -p "$pgport" -U postgres -XAtq "$@"; }
psql -c "CREATE DATABASE bench"
[[ -n "${STATEMENTS:-}" ]] && psql -d bench -c "CREATE EXTENSION pg_stat_statements"

port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$port" 1000 &
sink=$!

export TIDINGS_DATABASE__URL="postgres://postgres@127.0.0.1:$pgport/bench" TIDINGS_LOG__LEVEL=warn
export TIDINGS_TRANSPORT__KIND=smtp TIDINGS_SMTP__HOST=127.0.0.1 TIDINGS_SMTP__PORT=$port TIDINGS_SMTP__TLS=none
export TIDINGS_SMTP__POOL_SIZE=$sessions TIDINGS_DELIVERY__PER_SECOND=0 TIDINGS_DELIVERY__BATCH_SIZE=1000
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS

awk -v n="$subscribers" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.com,Reader %d\n", i, i }' >"$dir/subscribers.csv"
"$tidings" subscriber import "$dir/subscribers.csv" >/dev/null
"$tidings" issue add emails/issues/122.md >/dev/null
"$tidings" issue send 122 >/dev/null
[[ -n "${BENCH_SQL:-}" ]] && psql -d bench <"$BENCH_SQL"
psql -d bench -c "CHECKPOINT"
[[ -n "${STATEMENTS:-}" ]] && psql -d bench -c "SELECT pg_stat_statements_reset()" >/dev/null

postmaster=$(head -n 1 "$dir/pg/postmaster.pid")
ticks=$(getconf CLK_TCK)
# Clock ticks of user and system time of the postmaster, its live processes, and its reaped ones.
pg_ticks() {
  local total pid
  total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
  for pid in $(cat "/proc/$postmaster/task/$postmaster/children"); do
    total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}

before=$(pg_ticks)
"$tidings" serve >"$dir/serve.log" 2>&1 &
daemon=$!
polls=0
# The daemon creates the delivery rows while it already sends; the moment they are all there splits the run
# into that phase and the send path alone (claims, last check, intents, outcomes).
ready=""
while :; do
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  read -r status built < <(psql -d bench -F ' ' -c "SELECT status, outbox_ready_at IS NOT NULL FROM issues WHERE number = 122")
  polls=$((polls + 1))
  if [[ -z "$ready" && "$built" == t ]]; then
    ready=$(pg_ticks)
    sent_by_ready=$(psql -d bench -c "SELECT COUNT(*) FROM deliveries WHERE status = 'sent'")
  fi
  [[ "$status" == sent ]] && break
  if [[ -z "$ready" ]]; then sleep 0.2; else sleep 1; fi
done
after=$(pg_ticks)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$daemon/stat")
kill -TERM "$daemon"; wait "$daemon" || true; daemon=

read -r sent first last < <(psql -d bench -F ' ' -c \
  "SELECT COUNT(*), MIN(sent_at), MAX(sent_at) FROM deliveries WHERE status = 'sent' AND is_test = false")
python3 - "$sent" "$first" "$last" "$before" "$after" "$utime" "$stime" "$ticks" "$sessions" "$polls" "$ready" "$sent_by_ready" <<'PY'
import sys
sent, first, last, before, after, utime, stime, ticks, sessions, polls, ready, sent_by_ready = map(int, sys.argv[1:])
secs = (last - first) / 1000 or 0.001
db_us = (after - before) / ticks * 1e6 / sent
ours_us = (utime + stime) / ticks * 1e6 / sent
print(f"\n{sent} messages over {sessions} SMTP sessions into smtp-sink, PostgreSQL (fsync, synchronous_commit on)")
print(f"rate:             {sent / secs:8.0f} msg/s  ({secs:.1f} s from the first to the last reply)")
print(f"PostgreSQL CPU:   {db_us:8.0f} us per message  (server processes, user + system, {polls} status polls included)")
path_us = (after - ready) / ticks * 1e6 / max(sent - sent_by_ready, 1)
print(f"  send path alone: {path_us:7.0f} us per message  ({sent - sent_by_ready} messages sent after every delivery row existed:")
print(f"                             claims, last check, intents and outcomes)")
print(f"tidings CPU:      {ours_us:8.0f} us per message  (the whole daemon)")
PY
if [[ -n "${STATEMENTS:-}" ]]; then
  echo "statements by total time (ms, calls, rows):"
  psql -d bench -F ' | ' -c "SELECT round(total_exec_time)::bigint, calls, rows, left(regexp_replace(query, '\s+', ' ', 'g'), 110) \
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12"
  echo "deliveries: updates, of which HOT (no index entry written):"
  psql -d bench -F ' | ' -c "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'deliveries'"
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}')"
