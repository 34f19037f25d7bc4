#!/usr/bin/env bash
# Set up and run the whole test suite (kernel tests run as root, skip otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
