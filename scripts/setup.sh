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
  # firewalld is the oracle of the firewalld tests, run only inside private
  # namespaces; it must never start on this host: services are blocked
  # while it installs (policy-rc.d) and its unit is masked where systemd runs.
  fw=""
  command -v firewalld >/dev/null || fw="firewalld"
  if [ -n "$need$fw" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    [ -z "$need" ] || apt-get install -y -qq $need >/dev/null
    if [ -n "$fw" ]; then
      made_policy=""
      if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
      fi
      command -v systemctl >/dev/null && systemctl mask firewalld >/dev/null 2>&1 || true
      apt-get install -y -qq --no-install-recommends firewalld >/dev/null
      [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
    fi
  fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test,dask]'
# Write the bytecode now: with PYTHONDONTWRITEBYTECODE set (as on CI and this
# machine) an editable install never caches it, and every run would compile
# the modules it imports again (~60 ms of a small query's start).
.venv/bin/python -m compileall -q -j 0 ruleanalyzer >/dev/null
