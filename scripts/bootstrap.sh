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

# The lab and the devstack node are the repository's test tools, not part of the edgewatch wheel:
# they run from this checkout. These wrappers give them their command names in .venv/bin.
ROOT="$(pwd)"
wrapper() {  # NAME MODULE
    cat > ".venv/bin/$1" <<EOF
#!/bin/sh
# written by scripts/bootstrap.sh: $1 is python -m $2 from the checkout $ROOT
PYTHONPATH="$ROOT\${PYTHONPATH:+:\$PYTHONPATH}" exec "$ROOT/.venv/bin/python" -m $2 "\$@"
EOF
    chmod 755 ".venv/bin/$1"
}
wrapper edgewatch-lab lab
wrapper edgewatch-devstack devstack.cli

.venv/bin/python -m devstack.cli prepare >/dev/null
echo "bootstrap: ready (.venv, lab servers, Elasticsearch distribution)"
