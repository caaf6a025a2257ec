#!/usr/bin/env bash
# Install mcpproxy into a virtual environment and start the gateway on its embedded defaults
# (SQLite in ~/.mcpproxy, MCP at http://127.0.0.1:8080/mcp). Extra arguments go to `mcpproxy serve`.
#
#   scripts/serve.sh                      install (if needed) and serve
#   scripts/serve.sh --listen 127.0.0.1:9090
#
# The venv is <repo>/.venv unless MCPPROXY_VENV is set.
set -euo pipefail
REPO_ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${MCPPROXY_VENV:-$REPO_ROOT/.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import mcpproxy" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$REPO_ROOT"
fi
exec "$VENV/bin/mcpproxy" serve "$@"
