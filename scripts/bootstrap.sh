#!/usr/bin/env bash
# Installs everything edgewatch needs on a fresh machine, idempotently: the lab's DNS servers
# (Debian packages), a virtualenv with edgewatch and its test extras, and the Elasticsearch
# distribution the devstack node runs (fetched by Maven into its local repository, reused later).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x lab/install.sh ] || [ -f lab/install.sh ]; then
    bash lab/install.sh
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/python -m devstack.node prepare >/dev/null
echo "bootstrap: ready (.venv, lab servers, Elasticsearch distribution)"
