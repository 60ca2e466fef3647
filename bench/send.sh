#!/usr/bin/env bash
# Benchmark: send the sample issue to N subscribers (default 50,000) with `tidings serve` into Postfix's
# smtp-sink, then push as many messages of the same size with Postfix's smtp-source over the same number of SMTP
# sessions into the same sink. Reports both rates, their ratio, tidings' CPU time per message and its peak RSS.
# Usage: bench/send.sh [SUBSCRIBERS] [SESSIONS]   (needs Debian's postfix for smtp-sink and smtp-source)
set -euo pipefail
cd "$(dirname "$0")/.."
subscribers=${1:-50000}
sessions=${2:-16}
command -v smtp-sink >/dev/null || { echo "bench/send.sh needs smtp-sink: apt-get install postfix" >&2; exit 1; }

cargo build --release --quiet
tidings=$PWD/target/release/tidings
dir=$(mktemp -d /tmp/tidings-send-bench.XXXXXX)
cleanup() { kill "${sink:-}" "${daemon:-}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

port=$(free_port)
smtp-sink -u nobody "127.0.0.1:$port" 1000 &
sink=$!

export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" TIDINGS_LOG__LEVEL=warn
export TIDINGS_TRANSPORT__KIND=smtp TIDINGS_SMTP__HOST=127.0.0.1 TIDINGS_SMTP__PORT=$port TIDINGS_SMTP__TLS=none
export TIDINGS_SMTP__POOL_SIZE=$sessions TIDINGS_DELIVERY__PER_SECOND=0 TIDINGS_DELIVERY__BATCH_SIZE=1000
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS

awk -v n="$subscribers" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.com,Reader %d\n", i, i }' >"$dir/subscribers.csv"
"$tidings" subscriber import "$dir/subscribers.csv" >/dev/null
"$tidings" issue add emails/issues/122.md >/dev/null
"$tidings" issue send 122 >/dev/null

${PERF:-} "$tidings" serve >"$dir/serve.log" 2>&1 &
daemon=$!
while [[ "$("$tidings" issue status 122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" != sent ]]; do
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.5
done
ticks=$(getconf CLK_TCK)
read -r utime stime < <(awk '{print $14, $15}' "/proc/$daemon/stat")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$daemon/status")
kill -TERM "$daemon"; wait "$daemon" || true; daemon=

# The sending rate from the first to the last message accepted, as recorded in the database.
read -r first last sent < <(python3 - "$dir/bench.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
print(*db.execute("SELECT MIN(sent_at), MAX(sent_at), COUNT(*) FROM deliveries WHERE status = 'sent' AND is_test = 0").fetchone())
EOF
)
size=$(python3 -c "import os,sys; print(os.path.getsize(sys.argv[1]))" "$("$tidings" issue preview 122 --out "$dir/preview" | head -n 1)")

start=$(date +%s.%N)
smtp-source -s "$sessions" -m "$sent" -l "$size" -f digest@example.com -t reader@example.com "127.0.0.1:$port"
end=$(date +%s.%N)

python3 - "$sent" "$first" "$last" "$start" "$end" "$utime" "$stime" "$ticks" "$rss_kb" "$sessions" "$size" <<'EOF'
import sys
sent, first, last, start, end, utime, stime, ticks, rss, sessions, size = sys.argv[1:]
sent = int(sent); tidings_secs = (int(last) - int(first)) / 1000 or 0.001
source_secs = float(end) - float(start)
ours, theirs = sent / tidings_secs, sent / source_secs
cpu_us = (int(utime) + int(stime)) / int(ticks) * 1e6 / sent
print(f"\n{sent} messages of the sample issue ({int(size) // 1024} KB of HTML) over {sessions} SMTP sessions into smtp-sink")
print(f"tidings serve:  {ours:8.0f} msg/s  ({tidings_secs:.1f} s from first to last accepted message)")
print(f"smtp-source:    {theirs:8.0f} msg/s  ({source_secs:.1f} s, messages of the same size)")
print(f"ratio:          {ours / theirs:8.2f}")
print(f"tidings CPU:    {cpu_us:8.0f} us per message (user + system, the whole daemon)")
print(f"tidings RSS:    {int(rss) / 1024:8.1f} MB peak")
EOF
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
