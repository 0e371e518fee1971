#!/usr/bin/env bash
# The test command: bootstrap, lint, then the whole suite against a real Elasticsearch node
# (started by the test harness unless ES_URL points at a cluster) and the real lab servers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/pytest -ra "$@"
