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
run path fixtures/topologies/docker-ufw/topology.yaml --from laptop --to db-host --dport 5432 --ecn off
run path fixtures/topologies/aws-three-tier/topology.yaml --from web --to app --dport 8080 --ecn off
run audit fixtures/rulesets/
exit 0
