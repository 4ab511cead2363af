#!/usr/bin/env bash
# Starts a local Annal cluster on loopback: one etcd and N nodes, each with
# its own data directory, in the background.
#
#   deploy/local-cluster.sh N [DIR]   start (default N=3, DIR=./local-cluster)
#   deploy/local-cluster.sh stop [DIR]
#
# Ports: etcd client 23790 (peer 23800); node i (1..N) binary 7100+i,
# HTTP 7200+i. Override the base with ANNAL_PORT_BASE (default 7000) and the
# binary with ANNAL_BIN (default build/release/cli/annal) and the partition
# count with ANNAL_PARTITIONS (default 64).
set -euo pipefail

cmd=${1:-3}
dir=${2:-./local-cluster}
base=${ANNAL_PORT_BASE:-7000}
annal=${ANNAL_BIN:-build/release/cli/annal}
partitions=${ANNAL_PARTITIONS:-64}
etcd_client=$((base + 16790))
etcd_peer=$((base + 16800))

stop_all() {
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$dir/pids"
    rm -f "$dir/pids"
    echo "local-cluster: stopped (data kept in $dir)"
  else
    echo "local-cluster: nothing running in $dir"
  fi
}

if [ "$cmd" = "stop" ]; then
  stop_all
  exit 0
fi

n=$cmd
if ! [[ "$n" =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ]; then
  echo "usage: $0 N [DIR] | stop [DIR]" >&2
  exit 2
fi
if [ ! -x "$annal" ]; then
  echo "local-cluster: $annal not found; run 'make build' first" >&2
  exit 1
fi
command -v etcd >/dev/null || { echo "local-cluster: etcd not found; run scripts/install-deps.sh" >&2; exit 1; }
if [ -f "$dir/pids" ]; then
  echo "local-cluster: already running in $dir; '$0 stop $dir' first" >&2
  exit 1
fi

mkdir -p "$dir"
: > "$dir/pids"
etcd --name local --data-dir "$dir/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_client" \
  --advertise-client-urls "http://127.0.0.1:$etcd_client" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "local=http://127.0.0.1:$etcd_peer" > "$dir/etcd.log" 2>&1 &
echo $! >> "$dir/pids"

for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$etcd_client/health" >/dev/null 2>&1 && break
  sleep 0.1
done

for i in $(seq 1 "$n"); do
  "$annal" start --node-id "node-$i" --data "$dir/node-$i" \
    --listen "127.0.0.1:$((base + 100 + i))" --http "127.0.0.1:$((base + 200 + i))" \
    --etcd "http://127.0.0.1:$etcd_client" --bootstrap-expect "$n" --partitions "$partitions" \
    > "$dir/node-$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done

echo "local-cluster: etcd http://127.0.0.1:$etcd_client, $n nodes (logs and data in $dir)"
for i in $(seq 1 "$n"); do
  echo "  node-$i: binary 127.0.0.1:$((base + 100 + i))  http http://127.0.0.1:$((base + 200 + i))"
done
echo "status: $annal cluster status --admin 127.0.0.1:$((base + 201))"
echo "stop:   $0 stop $dir"
