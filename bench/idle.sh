#!/usr/bin/env bash
# Benchmark: a daemon that sleeps. Measures (1) the CPU an idle `tidings serve` uses (user + system, from
# /proc/PID/stat) over SECONDS, scaled to 10 minutes, and (2) the delay from running `tidings issue send` to the
# first message arriving at an SMTP server (a small asyncio sink in this script, which notes the moment the
# first message's final dot arrives), over ROUNDS sends.
# Usage: [IDLE_BENCH_BIN=path] bench/idle.sh sqlite|postgres [SECONDS] [ROUNDS]
#   postgres needs PG_BENCH_URL, a URL of a role that may create databases (e.g. ".../postgres"); the script
#   creates and drops its own database there.
set -euo pipefail
cd "$(dirname "$0")/.."
backend=${1:-sqlite}
seconds=${2:-180}
rounds=${3:-10}

# IDLE_BENCH_BIN: an already built binary (default: a release build of this checkout).
if [[ -n "${IDLE_BENCH_BIN:-}" ]]; then
  tidings=$IDLE_BENCH_BIN
else
  cargo build --release --quiet
  tidings=$PWD/target/release/tidings
fi
dir=$(mktemp -d /tmp/tidings-idle-bench.XXXXXX)
db_name=""
cleanup() {
  kill "${sink:-}" "${daemon:-}" 2>/dev/null || true
  if [[ -n "$db_name" ]]; then psql -q "$PG_BENCH_URL" -c "DROP DATABASE IF EXISTS $db_name" >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

case "$backend" in
  sqlite) export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" ;;
  postgres)
    [[ -n "${PG_BENCH_URL:-}" ]] || { echo "set PG_BENCH_URL for the postgres variant" >&2; exit 1; }
    db_name="tidings_idle_bench_$$"
    psql -q "$PG_BENCH_URL" -c "CREATE DATABASE $db_name" >/dev/null
    export TIDINGS_DATABASE__URL="${PG_BENCH_URL%/*}/$db_name" ;;
  *) echo "usage: bench/idle.sh sqlite|postgres [SECONDS] [ROUNDS]" >&2; exit 2 ;;
esac

# The SMTP sink: accepts everything and writes the time of each message's final dot to arrivals.log.
port=$(free_port)
python3 - "$port" "$dir/arrivals.log" <<'EOF' &
import asyncio, sys, time
port, log = int(sys.argv[1]), open(sys.argv[2], "a", buffering=1)
async def session(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    data = False
    while line := await reader.readline():
        if data:
            if line == b".\r\n":
                log.write(f"{time.time():.6f}\n")
                data = False
                writer.write(b"250 2.0.0 queued\r\n")
            continue
        verb = line[:4].upper()
        if verb in (b"EHLO", b"HELO"):
            writer.write(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
        elif verb == b"DATA":
            data = True
            writer.write(b"354 go ahead\r\n")
        elif verb == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 ok\r\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(session, "127.0.0.1", port)
    async with server:
        await server.serve_forever()
asyncio.run(main())
EOF
sink=$!

export TIDINGS_LOG__LEVEL=warn TIDINGS_TRANSPORT__KIND=smtp TIDINGS_SMTP__HOST=127.0.0.1 TIDINGS_SMTP__PORT=$port
export TIDINGS_SMTP__TLS=none TIDINGS_SMTP__POOL_SIZE=1 TIDINGS_DELIVERY__PER_SECOND=0
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS

"$tidings" subscriber add reader@example.com >/dev/null
for ((i = 1; i <= rounds; i++)); do
  sed "s/^number = 122$/number = $((1000 + i))/" emails/issues/122.md >"$dir/issue-$i.md"
  "$tidings" issue add "$dir/issue-$i.md" >/dev/null
done

"$tidings" serve >"$dir/serve.log" 2>&1 &
daemon=$!
sleep 5 # let it start and settle: the measurement is of the idle daemon, not its start
ticks=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$daemon/stat"; }
before=$(cpu)
sleep "$seconds"
after=$(cpu)
kill -0 "$daemon" || { cat "$dir/serve.log"; exit 1; }

# When `issue send` committed the start of issue N (issues.started_at, milliseconds, the command's clock).
started_at() {
  local sql="SELECT started_at FROM issues WHERE number = $1"
  case "$backend" in
    sqlite) python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$dir/bench.db" "$sql" ;;
    postgres) psql -tA "$TIDINGS_DATABASE__URL" -c "$sql" ;;
  esac
}
delays=()
after_exit=()
for ((i = 1; i <= rounds; i++)); do
  count=$(wc -l <"$dir/arrivals.log")
  start=$(python3 -c 'import time; print(f"{time.time():.6f}")')
  "$tidings" issue send $((1000 + i)) >/dev/null
  for _ in $(seq 1 600); do
    [[ $(wc -l <"$dir/arrivals.log") -gt $count ]] && break
    sleep 0.01
  done
  arrived=$(sed -n "$((count + 1))p" "$dir/arrivals.log")
  [[ -n "$arrived" ]] || { echo "round $i: no message within 6 s" >&2; cat "$dir/serve.log"; exit 1; }
  delays+=("$(python3 -c "print(round(($arrived - $start) * 1000, 1))")")
  committed=$(started_at $((1000 + i)))
  after_exit+=("$(python3 -c "print(round($arrived * 1000 - $committed, 1))")")
  sleep 2 # idle again before the next round
done
kill -TERM "$daemon"; wait "$daemon" || true; daemon=

python3 - "$backend" "$seconds" "$before" "$after" "$ticks" "${delays[*]}" "${after_exit[*]}" <<'EOF'
import statistics, sys
backend, seconds, before, after, ticks, delays, after_exit = sys.argv[1:]
cpu = (int(after) - int(before)) / int(ticks)
delays = sorted(float(d) for d in delays.split())
after_exit = sorted(float(d) for d in after_exit.split())
print(f"\n{backend}: idle daemon used {cpu:.2f} s of CPU over {seconds} s"
      f" = {cpu * 600 / int(seconds):.2f} s per 10 minutes ({100 * cpu / int(seconds):.3f} % of one core)")
print(f"issue send -> first message at the SMTP server, {len(delays)} sends: median {statistics.median(delays):.1f} ms,"
      f" min {delays[0]:.1f} ms, max {delays[-1]:.1f} ms (from starting the command, which opens the database)")
print(f"the same from the command's commit (issues.started_at): median {statistics.median(after_exit):.1f} ms,"
      f" min {after_exit[0]:.1f} ms, max {after_exit[-1]:.1f} ms")
EOF
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
