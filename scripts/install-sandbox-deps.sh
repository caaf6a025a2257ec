#!/usr/bin/env bash
# Install what the sandbox backends need on this machine.
#
#   scripts/install-sandbox-deps.sh           install what is missing
#   scripts/install-sandbox-deps.sh --check   install nothing; exit 1 (and say what is missing) if incomplete
#
# - bubblewrap (the `bwrap` backend), with apt-get when it is available and bwrap is missing;
# - libseccomp2 (Debian's; used through ctypes by the launcher's seccomp filter);
# - pyseccomp, pinned, into the Python environment that runs mcpproxy ($MCPPROXY_VENV, else
#   <repo>/.venv when it exists, else the python3 on PATH).
# The landlock backend needs no package: it talks to the kernel directly (Linux 5.13+).
# Idempotent: every step that is already satisfied is skipped.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/.." && pwd)
PYSECCOMP_PIN="pyseccomp==0.1.2"
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

log() { printf 'install-sandbox-deps: %s\n' "$*" >&2; }

if [ -n "${MCPPROXY_VENV:-}" ]; then
    PYTHON=$MCPPROXY_VENV/bin/python
elif [ -x "$REPO_ROOT/.venv/bin/python" ]; then
    PYTHON=$REPO_ROOT/.venv/bin/python
else
    PYTHON=$(command -v python3)
fi

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
{ ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libseccomp\.so\.2' || missing+=(libseccomp2)
"$PYTHON" -c 'import pyseccomp' >/dev/null 2>&1 || missing+=(pyseccomp)

if [ ${#missing[@]} -eq 0 ]; then
    log "all present (bwrap $(bwrap --version | cut -d' ' -f2), libseccomp2, pyseccomp)"
    exit 0
fi
if [ "$CHECK" -eq 1 ]; then
    log "missing: ${missing[*]} (run scripts/install-sandbox-deps.sh)"
    exit 1
fi

apt_packages=()
for pkg in "${missing[@]}"; do
    case $pkg in bubblewrap | libseccomp2) apt_packages+=("$pkg") ;; esac
done
if [ ${#apt_packages[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        log "no apt-get here: install ${apt_packages[*]} with this system's package manager"
        exit 1
    fi
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO=sudo
    log "apt-get install ${apt_packages[*]}"
    # The package lists may be stale or absent on a fresh machine; refresh them once.
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
fi
if printf '%s\n' "${missing[@]}" | grep -qx pyseccomp; then
    log "pip install $PYSECCOMP_PIN into $PYTHON"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "$PYSECCOMP_PIN"
fi
log "done"
