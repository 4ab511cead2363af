#!/bin/bash
# Back-to-back runs of batches of 100 against one `annal dev`, with the bytes
# each node thread wrote per run (/proc/<pid>/task/*/io, wchar): checkpoints
# (annal-checkpt), node log (annal-sync), partition segments (caf.multiplexer),
# zero-fill (annal-logprep). docs/benchmarks.md, "Delta checkpoints".
#
# usage: bench/sustained_batches.sh [RUNS] [SECONDS]   (env ANNAL: the binary)
set -euo pipefail
RUNS=${1:-3}; DUR=${2:-20}
ANNAL=${ANNAL:-build/release/cli/annal}
D=$(mktemp -d /tmp/annal-sustained.XXXX)
"$ANNAL" dev --data "$D/data" --http 127.0.0.1:17070 --listen 127.0.0.1:17071 > "$D/node.log" 2>&1 &
NP=$!
trap 'kill $NP 2>/dev/null; wait $NP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do curl -sf 127.0.0.1:17070/health > /dev/null && break; sleep 0.1; done
written() {
  for t in /proc/$NP/task/*; do echo "$(cat "$t/comm") $(awk '/^wchar/{print $2}' "$t/io")"; done |
    awk '{a[$1]+=$2} END{for (k in a) if (a[k] > 0) printf "%s=%d ", k, a[k] / 1e6}'
}
for r in $(seq "$RUNS"); do
  before=$(written)
  "$ANNAL" bench --target 127.0.0.1:17071 --connections 16 --inflight 1 --batch 100 \
    --duration "$DUR" | tail -1
  echo "  MB written before run $r: $before"
  echo "  MB written after run $r:  $(written)"
done
