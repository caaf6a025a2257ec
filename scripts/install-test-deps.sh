#!/usr/bin/env bash
# Install the real upstream MCP servers that the test suite talks to.
#
#   scripts/install-test-deps.sh            install what is missing or at the wrong version
#   scripts/install-test-deps.sh --force    reinstall everything
#   scripts/install-test-deps.sh --check    install nothing; exit 1 (and say what is missing) if not complete
#
# Everything goes under <repo>/.cache (gitignored), or under $MCPPROXY_TEST_CACHE when set:
#   npm/                  pinned npm servers and the MCP Inspector CLI (node_modules/.bin/...)
#   venvs/pyservers/      a venv of its own for the PyPI servers (they bring their own `mcp`)
# The interpreter for that venv is $MCPPROXY_TEST_PYTHON, else python3 (3.10 or newer).
#
# Idempotent and fast when nothing changed: installed versions are compared with the pins below
# and every step that already matches is skipped.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
CACHE_DIR=${MCPPROXY_TEST_CACHE:-$REPO_ROOT/.cache}
case $CACHE_DIR in
    /*) ;;
    *) CACHE_DIR=$PWD/$CACHE_DIR ;; # the tests resolve a relative one against their own cwd
esac
NPM_PREFIX=$CACHE_DIR/npm
PY_VENV=$CACHE_DIR/venvs/pyservers
PY_STAMP=$PY_VENV/.mcpproxy-installed
PYTHON=${MCPPROXY_TEST_PYTHON:-python3}

# Pins. Changing one makes the next run reinstall that part only.
NPM_PACKAGES=(
    "@modelcontextprotocol/server-everything@2026.8.31"
    "@modelcontextprotocol/server-filesystem@2026.8.31"
    "@modelcontextprotocol/server-memory@2026.8.31"
    "@modelcontextprotocol/inspector@0.15.0"
)
PY_PACKAGES=(
    "mcp-server-time==2026.10.19"
    "mcp-server-git==2026.10.19"
)
# Console scripts the PyPI packages must provide.
PY_BINS=(mcp-server-time mcp-server-git)

MODE=install
case "${1:-}" in
    "") ;;
    --force) MODE=force ;;
    --check) MODE=check ;;
    -h | --help)
        sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-test-deps: unknown argument: $1 (try --help)" >&2
        exit 2
        ;;
esac

log() { printf 'install-test-deps: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

need() { command -v "$1" >/dev/null 2>&1 || die "'$1' is not on PATH ($2)"; }

# --- npm -------------------------------------------------------------------------------------------

# Prints the pinned npm packages that are missing or at another version; prints nothing when all match.
npm_missing() {
    node - "$NPM_PREFIX" "${NPM_PACKAGES[@]}" <<'JS'
const fs = require("fs");
const path = require("path");
const [prefix, ...specs] = process.argv.slice(2);
for (const spec of specs) {
  const at = spec.lastIndexOf("@");
  const name = spec.slice(0, at);
  const want = spec.slice(at + 1);
  let have = null;
  try {
    const manifest = path.join(prefix, "node_modules", name, "package.json");
    have = JSON.parse(fs.readFileSync(manifest, "utf8")).version;
  } catch (err) {
    have = null;
  }
  if (have !== want) console.log(`${spec} (have ${have ?? "nothing"})`);
}
JS
}

install_npm() {
    need node "Node.js 20 or newer is needed for the npm servers"
    need npm "npm is needed to install the npm servers"
    local node_major
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    ((node_major >= 20)) || die "Node.js 20 or newer is needed, found $(node --version)"

    local missing
    missing=$(npm_missing)
    if [[ $MODE != force && -z $missing ]]; then
        log "npm servers: up to date ($NPM_PREFIX)"
        return 0
    fi
    if [[ $MODE == check ]]; then
        log "npm servers missing or outdated:"$'\n'"$missing"
        return 1
    fi
    if [[ -n $missing ]]; then
        log "npm servers to install:"$'\n'"$missing"
    fi
    mkdir -p "$NPM_PREFIX"
    # A package.json of our own keeps npm from walking up to some other project's.
    if [[ ! -f $NPM_PREFIX/package.json ]]; then
        printf '{\n  "name": "mcpproxy-test-servers",\n  "private": true\n}\n' >"$NPM_PREFIX/package.json"
    fi
    log "npm install into $NPM_PREFIX"
    npm install --no-audit --no-fund --save-exact --loglevel=error --prefix "$NPM_PREFIX" "${NPM_PACKAGES[@]}"
    missing=$(npm_missing)
    [[ -z $missing ]] || die "npm install finished but these are still not right:"$'\n'"$missing"
}

# --- PyPI servers in their own venv ----------------------------------------------------------------

py_wanted_stamp() {
    # Interpreter version plus pins: a change of either means the venv is rebuilt.
    printf '%s\n' "$("$PYTHON" -c 'import sys; print(sys.version.split()[0])')" "${PY_PACKAGES[@]}"
}

py_ready() {
    local wanted=$1 bin
    [[ -f $PY_STAMP && -x $PY_VENV/bin/python ]] || return 1
    [[ "$(cat "$PY_STAMP")" == "$wanted" ]] || return 1
    for bin in "${PY_BINS[@]}"; do
        [[ -x $PY_VENV/bin/$bin ]] || return 1
    done
}

# Start mcp-server-time over stdio, send `initialize`, and expect an answer naming the server.
smoke_test_time_server() {
    local init reply
    init='{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"install-test-deps","version":"0"}}}'
    # The server exits when stdin closes after the request has been answered.
    reply=$(printf '%s\n' "$init" | timeout 30 "$PY_VENV/bin/mcp-server-time" 2>/dev/null | head -n 1) || true
    [[ $reply == *'"serverInfo"'* ]] || die "mcp-server-time did not answer initialize over stdio (got: ${reply:-nothing})"
}

install_pyservers() {
    need "$PYTHON" "set MCPPROXY_TEST_PYTHON to a Python 3.10+ interpreter"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
        die "$PYTHON is older than 3.10; set MCPPROXY_TEST_PYTHON"
    local wanted
    wanted=$(py_wanted_stamp)
    if [[ $MODE != force ]] && py_ready "$wanted"; then
        log "PyPI servers: up to date ($PY_VENV)"
        return 0
    fi
    if [[ $MODE == check ]]; then
        log "PyPI servers missing or outdated in $PY_VENV (want: ${PY_PACKAGES[*]})"
        return 1
    fi
    log "creating venv $PY_VENV and installing ${PY_PACKAGES[*]}"
    rm -f "$PY_STAMP"
    mkdir -p "$(dirname "$PY_VENV")"
    "$PYTHON" -m venv --clear "$PY_VENV"
    "$PY_VENV/bin/python" -m pip install -qq --disable-pip-version-check --no-input "${PY_PACKAGES[@]}"
    smoke_test_time_server
    printf '%s\n' "$wanted" >"$PY_STAMP"
}

# ---------------------------------------------------------------------------------------------------

start=$SECONDS
if [[ $MODE == check ]]; then
    # Functions called in an `||` list run without errexit: fine here, they only look.
    status=0
    install_npm || status=1
    install_pyservers || status=1
    if ((status != 0)); then
        log "incomplete: run scripts/install-test-deps.sh"
        exit 1
    fi
else
    # One installer at a time per cache (two checkouts' CI runs, a developer and CI, ...).
    mkdir -p "$CACHE_DIR"
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$CACHE_DIR/.install-lock"
        flock 9
    fi
    install_npm
    install_pyservers
fi
log "done in $((SECONDS - start))s (cache: $CACHE_DIR)"
