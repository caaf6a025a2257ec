"""What the local backends (bubblewrap, landlock) share: system paths, limits and the launch spec.

Design. Both local backends expose the same minimal view of the host: the system trees
(``/usr`` and its merged-``/usr`` symlinks), a *curated* list of ``/etc`` entries, and the
interpreter that runs the launcher. ``/etc`` is curated rather than bound whole because the
sandboxed process acts as the gateway's uid (as root, bubblewrap's user namespace maps the
sandbox user onto uid 0), so every root-owned file that is visible is also readable —
``/etc/shadow`` included. The launch spec built here is the non-secret JSON the launcher
takes on its command line; environment values never go into it, only variable names.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mcpproxy.sandbox.base import SandboxPolicy

LAUNCHER_PATH = str(Path(__file__).with_name("_launch.py"))
LAUNCHER_DIR = str(Path(__file__).parent)

SYSTEM_RO = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = (
    "passwd", "group", "nsswitch.conf", "hosts", "host.conf", "resolv.conf", "gai.conf",
    "localtime", "timezone", "ssl", "ca-certificates", "ca-certificates.conf", "pki",
    "crypto-policies", "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "mime.types",
    "os-release", "protocols", "services", "nodejs", "python3", "python3.11", "python3.12",
    "python3.13", "fonts", "locale.alias", "locale.conf", "environment", "debian_version",
)  # fmt: skip
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
CPU_INFO = "/sys/devices/system/cpu"

HTTP_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "npm_config_proxy",
                   "npm_config_https_proxy")  # fmt: skip


def etc_paths() -> list[str]:
    """The ``/etc`` entries a process needs for names, TLS, time zones and the dynamic loader."""
    return [f"/etc/{name}" for name in ETC_ENTRIES]


@functools.cache
def launcher_python() -> str:
    """The real interpreter that runs the launcher (a venv's ``python`` resolved to its base)."""
    return os.path.realpath(sys.executable)


@functools.cache
def launcher_python_roots() -> tuple[str, ...]:
    """Directories the launcher's interpreter needs: its prefix (standard library included)."""
    roots = {os.path.realpath(sys.base_prefix)}
    exe_dir = os.path.dirname(launcher_python())
    if not any(exe_dir == r or exe_dir.startswith(r + os.sep) for r in roots):
        roots.add(exe_dir)
    return tuple(sorted(roots))


def launcher_command(launcher_dir: str, lib_dirs: Sequence[str]) -> list[str]:
    """``python -I -S -B -c <bootstrap>``: the launcher imported as a module, then run.

    Importing (rather than running the file as a script) lets the interpreter use the cached
    bytecode next to it: a script is compiled from source on every start. ``-I -S`` skip
    the environment, user site and ``site`` processing, which the launcher does not need.
    """
    path = [launcher_dir, *lib_dirs]
    code = f"import sys; sys.path[:0] = {path!r}; import _launch; _launch.main(sys.argv[1:])"
    return [launcher_python(), "-I", "-S", "-B", "-c", code]


@functools.cache
def bytecode_for(source: str) -> str | None:
    """The cached bytecode of ``source``, compiled now if missing or stale (``None`` if it cannot be)."""
    import py_compile

    cached = importlib.util.cache_from_source(source)
    # A stale file is as bad as none: the interpreter would compile the source on every start.
    if not os.path.exists(cached) or os.stat(cached).st_mtime < os.stat(source).st_mtime:
        try:
            py_compile.compile(source, cfile=cached, doraise=True)
        except (OSError, py_compile.PyCompileError):
            return None
    return cached


@functools.cache
def pyseccomp_file() -> str | None:
    """Path of the ``pyseccomp`` module, or ``None`` when it or libseccomp is missing."""
    spec = importlib.util.find_spec("pyseccomp")
    if spec is None or spec.origin is None:
        return None
    import ctypes.util

    if ctypes.util.find_library("seccomp") is None:
        return None
    return os.path.realpath(spec.origin)


def rlimits_for(policy: SandboxPolicy) -> dict[str, list[int]]:
    """``RLIMIT_*`` pairs for the launcher. CPU's hard limit is one second above the soft one
    so the process first gets SIGXCPU (explainable), then SIGKILL if it ignores that.

    ``RLIMIT_DATA`` bounds memory rather than ``RLIMIT_AS``: V8 reserves gigabytes of address
    space it never touches, and Node refuses to start under a tight ``RLIMIT_AS``.
    """
    limits: dict[str, list[int]] = {"CORE": [0, 0]}
    if policy.cpu_seconds is not None:
        limits["CPU"] = [policy.cpu_seconds, policy.cpu_seconds + 1]
    if policy.memory_bytes is not None:
        limits["DATA"] = [policy.memory_bytes, policy.memory_bytes]
    if policy.max_open_files is not None:
        limits["NOFILE"] = [policy.max_open_files, policy.max_open_files]
    if policy.max_processes is not None:
        limits["NPROC"] = [policy.max_processes, policy.max_processes]
    if policy.max_file_bytes is not None:
        limits["FSIZE"] = [policy.max_file_bytes, policy.max_file_bytes]
    return limits


def launch_spec(
    policy: SandboxPolicy,
    env: Mapping[str, str],
    *,
    env_set: Mapping[str, str] | None = None,
    landlock: Mapping[str, Any] | None = None,
    seccomp: Mapping[str, Any] | None = None,
    pidns: bool = False,
    pid_max: bool = False,
    forward: Mapping[str, Any] | None = None,
    pythonpath: Sequence[str] = (),
) -> str:
    """The launcher's JSON spec (no environment values except the non-secret ``env_set``)."""
    spec: dict[str, Any] = {
        "v": 1,
        "env_keys": sorted(env),
        "env_set": dict(env_set or {}),
        "rlimits": rlimits_for(policy),
        "max_processes": policy.max_processes,
        "pidns": pidns,
        "pid_max": pid_max,
        "drop_caps": True,
        "landlock": dict(landlock) if landlock is not None else None,
        "seccomp": dict(seccomp) if seccomp is not None else None,
        "forward": dict(forward) if forward is not None else None,
        "pythonpath": list(pythonpath),
        "cwd": policy.working_dir,
    }
    return json.dumps(spec, separators=(",", ":"), sort_keys=True)


def proxy_env(url: str) -> dict[str, str]:
    """The variables that point HTTP clients (curl, Python, npm, uv) at the egress proxy."""
    return dict.fromkeys(HTTP_PROXY_VARS, url)


def under(path: str, roots: Sequence[str]) -> bool:
    """Whether ``path`` is one of ``roots`` or inside one of them."""
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
