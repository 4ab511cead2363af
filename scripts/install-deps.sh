#!/usr/bin/env bash
# Installs the Debian packages Annal needs, only those missing.
# Idempotent and non-interactive; run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkgconf git
  capnproto libcapnp-dev
  libcaf-dev
  libasio-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libisal-dev libxxhash-dev libjemalloc-dev
  nlohmann-json3-dev libsimdjson-dev
  libcli11-dev
  librestinio-dev libhttp-parser-dev
  etcd-server libcurl4-openssl-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
# --no-install-recommends: libasio-dev recommends ~200 MB of Boost we never use.
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
