#!/usr/bin/env bash
# Benchmark: import generated subscribers from CSV into a fresh SQLite database with the release binary and
# report rows per second and peak resident memory. Usage: bench/import.sh [ROWS] (default 1,000,000).
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-1000000}

cargo build --release --quiet
dir=$(mktemp -d /tmp/tidings-bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT

# Realistic rows: an address, a name, a time zone and one attribute, with a quoted field now and then.
awk -v n="$rows" 'BEGIN {
  print "email,name,tz,city";
  split("com org net", tld, " "); split("Europe/Berlin Asia/Shanghai America/New_York", tz, " ");
  for (i = 1; i <= n; i++) {
    city = (i % 10 == 0) ? "\"Paris, France\"" : "Lyon";
    printf "subscriber%d@example.%s,Subscriber Number %d,%s,%s\n", i, tld[i % 3 + 1], i, tz[i % 3 + 1], city;
  }
}' >"$dir/subscribers.csv"
size=$(du -h "$dir/subscribers.csv" | cut -f1)

export TIDINGS_DATABASE__URL="sqlite://$dir/bench.db" TIDINGS_LOG__LEVEL=warn
/usr/bin/time -f '%e %M' -o "$dir/time" target/release/tidings subscriber import "$dir/subscribers.csv" >"$dir/out" 2>"$dir/err" || {
  cat "$dir/out" "$dir/err"; exit 1; }
read -r seconds max_kb <"$dir/time"
cat "$dir/out"
# Importing the same file again: every row is looked up and nothing changes.
/usr/bin/time -f '%e %M' -o "$dir/time2" target/release/tidings subscriber import "$dir/subscribers.csv" >"$dir/out2" 2>&1
read -r seconds2 max_kb2 <"$dir/time2"
cat "$dir/out2"

awk -v rows="$rows" -v s="$seconds" -v kb="$max_kb" -v s2="$seconds2" -v kb2="$max_kb2" -v size="$size" 'BEGIN {
  printf "\nimport of %d rows (%s CSV) into SQLite: %.2f s, %.0f rows/s, peak RSS %.1f MB\n", rows, size, s, rows / s, kb / 1024;
  printf "re-import of the same file (no changes):   %.2f s, %.0f rows/s, peak RSS %.1f MB\n", s2, rows / s2, kb2 / 1024;
}'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
