#!/usr/bin/env bash
# Create .venv with ruleanalyzer installed (editable), its test extra and the
# dask extra (the fleet tests run a Dask LocalCluster).
# As root, also install the kernel tools the namespace tests drive.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  need=""
  command -v iptables-restore >/dev/null || need="$need iptables"
  command -v nft >/dev/null || need="$need nftables"
  command -v ip >/dev/null || need="$need iproute2"
  command -v ufw >/dev/null || need="$need ufw"
  command -v sysctl >/dev/null || need="$need procps"
  command -v unshare >/dev/null || need="$need util-linux"
  command -v ipset >/dev/null || need="$need ipset"
  if [ -n "$need" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq $need >/dev/null
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dask]'
