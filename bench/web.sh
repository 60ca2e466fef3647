#!/usr/bin/env bash
# Benchmark: the open pixel and the rating POST of `tidings serve` on SQLite, driven by wrk (Debian package
# `wrk`) at 64 connections over 2 threads. The sample issue is first sent to N subscribers (default 2,000) with
# the outbox transport; wrk then cycles through the pixel URLs (and, in a second run, the rating URLs) found in
# the messages. Reports requests/s and p99 latency, and checks that no open was lost: the opens in the database
# (after a graceful stop, which writes every queued open) may not be fewer than the 200 responses the server
# counted for the pixel route. (A request cut off as wrk stops can be recorded without its answer being counted,
# so the database may hold a handful more.) Usage: bench/web.sh [SUBSCRIBERS] [SECONDS]
#
# The per-address rate limit is switched off (http.rate_limit_per_minute = 0): wrk sends every request from one
# address, and the limit would answer the rating POSTs with 429 pages. The pixel is exempt from it anyway. For the
# same reason the cap on connections per address is off (wrk's 64 connections all come from 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
subscribers=${1:-2000}
seconds=${2:-20}
command -v wrk >/dev/null || { echo "bench/web.sh needs wrk: apt-get install wrk" >&2; exit 1; }

cargo build --release --quiet
tidings=$PWD/target/release/tidings
dir=$(mktemp -d /tmp/tidings-web-bench.XXXXXX)
cleanup() { kill "${daemon:-}" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT

export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" TIDINGS_LOG__LEVEL=warn
export TIDINGS_TRANSPORT__KIND=outbox TIDINGS_OUTBOX__DIR="$dir/outbox"
export TIDINGS_DELIVERY__PER_SECOND=0 TIDINGS_DELIVERY__BATCH_SIZE=1000
export TIDINGS_HTTP__BIND=127.0.0.1:0 TIDINGS_HTTP__BASE_URL=https://news.example.com
export TIDINGS_HTTP__RATE_LIMIT_PER_MINUTE=0 TIDINGS_HTTP__MAX_CONNECTIONS_PER_ADDRESS=0
TIDINGS_LINKS__SIGNING_KEYS="1:$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
export TIDINGS_LINKS__SIGNING_KEYS

awk -v n="$subscribers" 'BEGIN { print "email,name"; for (i = 1; i <= n; i++) printf "reader%d@example.com,Reader %d\n", i, i }' >"$dir/subscribers.csv"
"$tidings" subscriber import "$dir/subscribers.csv" >/dev/null
"$tidings" issue add emails/issues/122.md >/dev/null
"$tidings" issue send 122 >/dev/null

"$tidings" serve >"$dir/serve.out" 2>"$dir/serve.log" &
daemon=$!
while [[ "$("$tidings" issue status 122 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')" != sent ]]; do
  kill -0 "$daemon" 2>/dev/null || { cat "$dir/serve.log"; exit 1; }
  sleep 0.5
done
port=$(sed -n 's|.*http://127.0.0.1:\([0-9]*\).*|\1|p' "$dir/serve.out" | head -n 1)
base="http://127.0.0.1:$port"

# The pixel and rating paths of every message, as a reader's mail client would find them.
python3 - "$dir/outbox" "$dir/pixels.txt" "$dir/ratings.txt" <<'EOF'
import email, email.policy, pathlib, re, sys
outbox, pixels, ratings = pathlib.Path(sys.argv[1]), [], []
for path in sorted(outbox.rglob("*.eml")):
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    html = message.get_body(("html",)).get_content()
    pixels += re.findall(r'src="https://news\.example\.com(/o/[^"]+\.gif)"', html)
    ratings += re.findall(r'href="https://news\.example\.com(/r/[^"?]+)\?stars=4"', html)
pathlib.Path(sys.argv[2]).write_text("\n".join(pixels) + "\n")
pathlib.Path(sys.argv[3]).write_text("\n".join(ratings) + "\n")
print(f"{len(pixels)} pixel URLs and {len(ratings)} rating URLs from {len(list(outbox.rglob('*.eml')))} messages")
EOF

# Each wrk thread cycles through the paths, starting at a different place.
cat >"$dir/cycle.lua" <<'EOF'
local paths, next_index = {}, 1
local file, method, body = os.getenv("PATHS"), os.getenv("METHOD") or "GET", os.getenv("BODY")
function init(args)
  for line in io.lines(file) do if #line > 0 then paths[#paths + 1] = line end end
  next_index = math.random(#paths)
  if method == "POST" then
    wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  wrk.headers["User-Agent"] = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36"
end
function request()
  next_index = next_index % #paths + 1
  return wrk.format(method, paths[next_index], nil, body)
end
EOF

route_count() {  # the server's count of 200 responses on a route, from /metrics
  curl -s "$base/metrics" | awk -v route="$1" -F' ' 'index($0, "tidings_http_requests_total{route=\"" route "\",status=\"200\"}") == 1 { print $2 }'
}

echo
echo "== open pixel: GET /o/TOKEN.gif, $seconds s, 64 connections"
PATHS="$dir/pixels.txt" wrk -t2 -c64 -d"${seconds}s" --latency -s "$dir/cycle.lua" "$base" | tee "$dir/pixel.txt"
echo
echo "== rating: POST /r/TOKEN stars=4, $seconds s, 64 connections"
PATHS="$dir/ratings.txt" METHOD=POST BODY="stars=4" wrk -t2 -c64 -d"${seconds}s" --latency -s "$dir/cycle.lua" "$base" | tee "$dir/rating.txt"

sleep 1  # wrk stops with requests in flight; let the server answer them before counting
served=$(route_count "/o/{*file}")
votes_served=$(route_count "/r/{token}")
kill -TERM "$daemon"; wait "$daemon" || true; daemon=
python3 - "$dir/bench.db" "$dir/pixel.txt" "$dir/rating.txt" "$served" "$votes_served" <<'EOF'
import re, sqlite3, sys
db_path, pixel_out, rating_out, served, votes_served = sys.argv[1:]
def summary(path):
    text = open(path).read()
    done = int(re.search(r"(\d+) requests in", text).group(1))
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = re.search(r"99%\s+(\S+)", text).group(1)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return done, rate, p99, int(bad.group(1)) if bad else 0, errors.group(1) if errors else "none"
db = sqlite3.connect(db_path)
opens, pairs = db.execute("SELECT COALESCE(SUM(count), 0), COUNT(*) FROM opens").fetchone()
votes, = db.execute("SELECT COUNT(*) FROM votes WHERE flagged = 0").fetchone()
events, = db.execute("SELECT COUNT(*) FROM events WHERE kind = 'rating'").fetchone()
for name, path in (("open pixel", pixel_out), ("rating POST", rating_out)):
    done, rate, p99, bad, errors = summary(path)
    print(f"{name:12} {rate:9.0f} requests/s  p99 {p99:>8}  ({done} completed by wrk, {bad} non-2xx, socket errors: {errors})")
served, votes_served = int(served), int(votes_served)
# A request whose client hangs up as wrk stops may be recorded without its answer being counted, so the
# database may hold a few more than the server's count; fewer would be a lost event.
lost = served - opens
print(f"opens recorded: {opens} (over {pairs} subscribers); pixel responses served (200): {served}; "
      f"{'no open lost' if lost <= 0 else 'LOST: ' + str(lost)}"
      f"{'' if lost >= 0 else f' ({-lost} recorded for requests cut off as wrk stopped)'}")
print(f"rating POSTs served (200): {votes_served}; rating events recorded: {events}; votes that count: {votes}")
sys.exit(0 if lost <= 0 and events >= votes_served else 1)
EOF
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
