#!/usr/bin/env bash
# Benchmark: send the sample issue to N subscribers (default 50,000) with `tidings serve` into Postfix's
# smtp-sink, then push as many messages of the same size with Postfix's smtp-source over the same number of SMTP
# sessions into the same sink; repeat as pairs run back to back (tidings, smtp-source, tidings, ...), five pairs
# by default. Tidings' time is from the first to the last relay reply it recorded (`sent_at` is the moment of
# each reply). Reports each pair's rates and ratio, the median and range of the ratios, tidings' CPU time per
# message and its peak RSS.
# Usage: bench/send.sh [SUBSCRIBERS] [SESSIONS] [PAIRS]   (needs Debian's postfix for smtp-sink and smtp-source)
#   BENCH_BIN=path runs that binary instead of building a release one.
set -euo pipefail
cd "$(dirname "$0")/.."
subscribers=${1:-50000}
sessions=${2:-16}
pairs=${3:-5}
command -v smtp-sink >/dev/null || { echo "bench/send.sh needs smtp-sink: apt-get install postfix" >&2; exit 1; }

if [[ -z "${BENCH_BIN:-}" ]]; then cargo build --release --quiet; fi
tidings=${BENCH_BIN:-$PWD/target/release/tidings}
dir=$(mktemp -d /tmp/tidings-send-bench.XXXXXX)
cleanup() { kill "${sink:-}" "${daemon:-}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$port" 1000 &
sink=$!

export TIDINGS_LOG__LEVEL=warn
export TIDINGS_TRANSPORT__KIND=smtp TIDINGS_SMTP__HOST=127.0.0.1 TIDINGS_SMTP__PORT=$port TIDINGS_SMTP__TLS=none
export TIDINGS_SMTP__POOL_SIZE=$sessions TIDINGS_DELIVERY__PER_SECOND=0 TIDINGS_DELIVERY__BATCH_SIZE=1000
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS
awk -v n="$subscribers" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.com,Reader %d\n", i, i }' >"$dir/subscribers.csv"
ticks=$(getconf CLK_TCK)

# One send on a fresh database; prints: sent first_reply_ms last_reply_ms cpu_ticks peak_rss_kb.
run_tidings() {
  local db="$dir/bench-$1.db" utime stime rss
  export TIDINGS_DATABASE__URL="sqlite://$db"
  "$tidings" subscriber import "$dir/subscribers.csv" >/dev/null
  "$tidings" issue add emails/issues/122.md >/dev/null
  "$tidings" issue send 122 >/dev/null
  ${PERF:-} "$tidings" serve >"$dir/serve.log" 2>&1 &
  daemon=$!
  while [[ "$("$tidings" issue status 122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" != sent ]]; do
    kill -0 "$daemon" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.5
  done
  read -r utime stime < <(awk '{print $14, $15}' "/proc/$daemon/stat")
  rss=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
  kill -TERM "$daemon"; wait "$daemon" || true; daemon=
  python3 - "$db" "$((utime + stime))" "$rss" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sent, first, last = db.execute("SELECT COUNT(*), MIN(sent_at), MAX(sent_at) FROM deliveries WHERE status = 'sent' AND is_test = 0").fetchone()
print(sent, first, last, sys.argv[2], sys.argv[3])
PY
  rm -f "$db" "$db-wal" "$db-shm"
}

size=""
results=()
for pair in $(seq 1 "$pairs"); do
  read -r sent first last cpu rss < <(run_tidings "$pair")
  if [[ -z "$size" ]]; then
    export TIDINGS_DATABASE__URL="sqlite://$dir/size.db"
    "$tidings" issue add emails/issues/122.md >/dev/null
    size=$(python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]))" "$("$tidings" issue preview 122 --out "$dir/preview" | head -n 1)")
  fi
  start=$(date +%s.%N)
  smtp-source -s "$sessions" -m "$sent" -l "$size" -f digest@example.com -t reader@example.com "127.0.0.1:$port"
  end=$(date +%s.%N)
  results+=("$sent $first $last $cpu $rss $start $end")
  echo "pair $pair done" >&2
done

printf '%s\n' "${results[@]}" >"$dir/results"
python3 - "$ticks" "$sessions" "$size" "$dir/results" <<'PY'
import statistics, sys
ticks, sessions, size = map(int, sys.argv[1:4])
ratios, cpus, rsss = [], [], []
print()
for n, line in enumerate(open(sys.argv[4]), 1):
    sent, first, last, cpu, rss, start, end = line.split()
    sent = int(sent)
    ours = sent / ((int(last) - int(first)) / 1000 or 0.001)
    theirs = sent / (float(end) - float(start))
    ratios.append(ours / theirs); cpus.append(int(cpu) / ticks * 1e6 / sent); rsss.append(int(rss) / 1024)
    print(f"pair {n}: tidings {ours:6.0f} msg/s, smtp-source {theirs:6.0f} msg/s, ratio {ours / theirs:.2f}, "
          f"tidings CPU {cpus[-1]:.0f} us/msg, peak RSS {rsss[-1]:.1f} MB")
print(f"\n{sent} messages of the sample issue ({size // 1024} KB) over {sessions} SMTP sessions into smtp-sink, {len(ratios)} pairs")
print(f"ratio tidings / smtp-source: median {statistics.median(ratios):.2f}, range {min(ratios):.2f} to {max(ratios):.2f}")
print(f"tidings CPU: median {statistics.median(cpus):.0f} us per message; peak RSS at most {max(rsss):.1f} MB")
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
