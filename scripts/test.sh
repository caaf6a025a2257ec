#!/usr/bin/env bash
# Install everything the test suite needs, then run the linter, the type checker and the tests.
#
#   scripts/test.sh                 everything
#   scripts/test.sh tests/upstream  pytest arguments narrow the test run (lint and types still run)
#
# Installs: a venv with mcpproxy and its test extras (<repo>/.venv, or MCPPROXY_VENV), Debian
# packages the tests use (bubblewrap, when apt-get is available and they are missing), and the
# real upstream MCP servers (npm and PyPI, pinned) under <repo>/.cache.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_ROOT"
VENV=${MCPPROXY_VENV:-$REPO_ROOT/.venv}
PYTHON=${PYTHON:-python3}
log() { printf 'test.sh: %s\n' "$*" >&2; }

# 1. Python environment.
if [ ! -x "$VENV/bin/python" ]; then
    log "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test,embeddings]"

# 2. System packages (Debian: bubblewrap, libseccomp) and sandbox Python packages, only when missing.
MCPPROXY_VENV="$VENV" bash scripts/install-sandbox-deps.sh

# 3. Real upstream servers.
bash scripts/install-test-deps.sh

# 3b. The MCP conformance suite and the Node 22 it runs on (cached under <repo>/.cache/conformance).
bash scripts/install-conformance.sh

export PATH="$VENV/bin:$PATH"

# 4. Lint and types.
log "ruff"
ruff check src tests bench
log "mypy --strict"
mypy

# 5. Tests. pytest exits 5 when it collected nothing: that is a failure here.
log "pytest"
set +e
pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    log "pytest found no tests"
    exit 1
fi
exit "$rc"
