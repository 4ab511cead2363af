#!/usr/bin/env bash
# Query benchmark (docs/benchmarks.md, "Queries"): one `annal dev` node
# filled with EVENTS (10 M) JSON events of about 100 bytes in batches of
# 100, then each query run back to back on one connection for SECONDS;
# `annal bench --op query` reports events scanned per second.
#
#   bench/query.sh [DIR]   (EVENTS=10000000, SECONDS_PER_QUERY=20, PORT_BASE=9300,
#                           ANNAL_BIN; REUSE=1 keeps DIR's data from an earlier run)
set -euo pipefail

dir=${1:-/tmp/annal-query-bench}
events=${EVENTS:-10000000}
seconds=${SECONDS_PER_QUERY:-20}
annal=${ANNAL_BIN:-build/release/cli/annal}
base=${PORT_BASE:-9300}
server="127.0.0.1:$((base + 1))"

[ -n "${REUSE:-}" ] || rm -rf "$dir"
mkdir -p "$dir"
"$annal" dev --data "$dir/data" --http "127.0.0.1:$base" --listen "$server" \
  --log-level warn >"$dir/node.log" 2>&1 &
node=$!
trap 'kill $node 2>/dev/null || true; wait $node 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
  "$annal" stats --server "$server" >/dev/null 2>&1 && break
  sleep 0.1
done

count() {
  "$annal" query --json --server "$server" --timeout-ms 600000 'from $all | count()' |
    python3 -c 'import json,sys; print(int(json.load(sys.stdin)["rows"][0][0]))'
}
start_fill=$(date +%s.%N)
while [ "$(count)" -lt "$events" ]; do
  "$annal" bench --target "$server" --op append --json-data --size 100 --batch 100 \
    --connections 8 --inflight 4 --streams 10000 --duration 5 >/dev/null
done
fill_s=$(python3 -c "import time; print(round(time.time() - $start_fill, 1))")
echo "filled: $(count) events in ${fill_s} s; data dir $(du -sh "$dir/data" | cut -f1)"

run() {
  echo "query: $1"
  "$annal" bench --target "$server" --op query --query "$1" --connections 1 --inflight 1 \
    --duration "$seconds" --json
}
run "from \$all where type = 'OrderPlaced' | count()"
run "from \$all | sum(data.amount) by data.region"
run "from \$all where type = 'OrderPlaced' and data.amount > 900 | count(), avg(data.amount) by data.region"
