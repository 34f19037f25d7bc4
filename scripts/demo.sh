#!/usr/bin/env bash
# Set up and run the analyzer on the bundled example rulesets.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ra=.venv/bin/ruleanalyzer
run() { echo; echo "\$ ruleanalyzer $*"; "$ra" "$@"; echo "(exit $?)"; }
run connect fixtures/rulesets/webserver.rules --client 198.51.100.7 --server 192.0.2.10 --dport 443 --ecn off
run connect fixtures/rulesets/broken-handshake.rules --client 198.51.100.7 --server 192.0.2.10 --dport 443 --ecn both
run connect fixtures/rulesets/ecn-trap.nft --client 198.51.100.7 --server 192.0.2.10 --dport 443 --ecn on
run query fixtures/rulesets/docker-host.rules --src 198.51.100.7 --dst 192.0.2.10 --dport 5432 --flags SYN --state new --iif eth0 --oif docker0
run query fixtures/rulesets/router.rules --hook forward --src 10.0.0.5 --dst 198.51.100.99 --dport 443 --iif lan0 --oif wan0
if "$ra" audit --help >/dev/null 2>&1; then run audit fixtures/rulesets/; fi
exit 0
