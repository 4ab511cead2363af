#!/usr/bin/env bash
# Handoff benchmark (docs/benchmarks.md, "Handoff"): a local 2-node cluster
# with 2 partitions, one per node. Fills node-1's partition to SIZE_MB, then
# drains node-1 while a writer appends through node-2 to streams of both
# partitions, and reports the time until the partition moved, the write
# pause the handoff measured (seal to commit) and the writer's latencies.
#
#   bench/handoff.sh [DIR]     (SIZE_MB=1024, ANNAL_PORT_BASE=9000, ANNAL_BIN)
set -euo pipefail

dir=${1:-/tmp/annal-handoff-bench}
size_mb=${SIZE_MB:-1024}
annal=${ANNAL_BIN:-build/release/cli/annal}
export ANNAL_PORT_BASE=${ANNAL_PORT_BASE:-9000}
export ANNAL_BIN=$annal
base=$ANNAL_PORT_BASE
admin="127.0.0.1:$((base + 201))"

deploy/local-cluster.sh stop "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
ANNAL_PARTITIONS=2 deploy/local-cluster.sh 2 "$dir" >/dev/null
trap 'deploy/local-cluster.sh stop "$dir" >/dev/null 2>&1 || true' EXIT

json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
for _ in $(seq 1 300); do
  n=$("$annal" cluster status --json --admin "$admin" 2>/dev/null | json 'sum(x["up"] for x in d["nodes"])' || echo 0)
  [ "$n" = 2 ] && break
  sleep 0.1
done
moving=$("$annal" cluster status --json --admin "$admin" |
  json '[p["partition"] for p in d["partitions"] if p["replicas"]==["node-1"]][0]')

# Fill: 1 MB appends (100 events of 10 kB) through node-1, until node-1's
# partition holds SIZE_MB (the other partition gets about as much).
end_of() {
  "$annal" stats --json --server "127.0.0.1:$((base + 101))" |
    json "[p['endLsn'] for p in d['partitions'] if p['partition']==$moving][0]"
}
start_fill=$(date +%s.%N)
while [ "$(end_of)" -lt $((size_mb * 1024 * 1024)) ]; do
  "$annal" bench --target "127.0.0.1:$((base + 101))" --connections 4 --batch 100 --size 10000 \
    --streams 64 --duration 5 >/dev/null
done
echo "filled partition $moving to $(( $(end_of) / 1024 / 1024 )) MiB in $(python3 -c "import time;print(round(time.time()-$start_fill,1))") s"

# The writer: one connection, one event at a time, through node-2.
"$annal" bench --target "127.0.0.1:$((base + 102))" --connections 1 --inflight 1 --size 100 \
  --streams 64 --duration 40 --json > "$dir/writer.json" &
writer=$!
sleep 5
started=$(date +%s.%N)
"$annal" node drain node-1 --admin "$admin" >/dev/null
for _ in $(seq 1 6000); do
  pinned=$("$annal" cluster status --json --admin "127.0.0.1:$((base + 202))" |
    json 'sum(p["pinned"] for p in d["partitions"])' 2>/dev/null || echo 1)
  [ "$pinned" = 0 ] && break
  sleep 0.05
done
moved=$(python3 -c "import time;print(round(time.time()-$started,2))")
wait "$writer"
echo "moved $size_mb MiB partition in $moved s (drain to map settled, as polled)"
grep -h "handoff: partition" "$dir"/node-2.log | sed 's/^.*handoff: /node-2: /'
python3 - "$dir/writer.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print("writer (1 x 1, 100 B events, through node-2, 40 s): %d events, p50 %.2f ms, p99 %.2f ms, "
      "max %.1f ms, errors %d" % (r["events"], r["p50Ms"], r["p99Ms"], r["maxMs"], r["errors"]))
PY
