"""Default sandbox policies that let real stdio servers work and keep everything else out.

Design. ``default_policy_for`` reads what a server's configuration already says about the
files it needs — absolute (or ``~/``) paths in its arguments and environment values, and
its working directory — and makes exactly those reachable. A named *directory* is writable
(it was handed to the server to work in: the filesystem server's roots, the git server's
repository), except inside system trees (``/usr``, ``/etc``, ``/opt``...); so is everything
under the working directory, and the parent directory of a data file named by an environment
variable (``MEMORY_FILE_PATH``, ``*_DB``...) or a flag (``--db-path``, ``--output``...); other
named files are read-only, and so is the code a runtime runs. The runtime is made to work
without the user's home: the interpreter (node, a Python venv and its base interpreter,
uv's managed Pythons) is bound read-only; ``HOME``, ``TMPDIR`` and the package caches
(npm, uv) point at a private per-server directory under ``<data_dir>/sandbox/<key>/``.

Some paths are never granted, whatever the configuration says: ``/``, the home directory
itself, system roots such as ``/etc``, ``/run`` or ``/tmp`` as a whole, the gateway's data
directory (its config, database and other servers' private directories) and the usual
credential stores (``~/.ssh``, ``~/.aws``, ...) — nor any directory that *contains* one of
them. A refused path is reported in ``notes`` rather than silently widened.

The network default is ``none``; package runners (``npx``, ``uvx``) get ``allow`` with just
their registry, because they download the server on first start.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from mcpproxy.sandbox.base import NetworkMode, SandboxPolicy, SandboxPolicyError

NODE_RUNNERS = frozenset({"npx", "npm", "node", "pnpm", "pnpx", "yarn", "corepack"})
PYTHON_RUNNERS = frozenset({"uvx", "uv", "pip", "pipx"})
SCRIPT_RUNNERS = frozenset({"node", "deno", "bun"})
NPM_REGISTRY = ("registry.npmjs.org",)
PYPI = ("pypi.org", "files.pythonhosted.org")
SECRET_HOME_ENTRIES = (
    ".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", ".config/gcloud", ".config/gh", ".netrc",
    ".npmrc", ".pypirc", ".git-credentials", ".password-store", ".mozilla", ".config/google-chrome",
    ".local/share/keyrings", ".mcpproxy",
)  # fmt: skip
# Never granted whole (they are refused, not used as temporary directories).
SYSTEM_ROOTS = (
    "/", "/etc", "/run", "/var", "/var/run", "/tmp", "/var/tmp", "/proc", "/sys", "/dev",  # noqa: S108
    "/home", "/root", "/usr", "/boot", "/srv", "/mnt", "/media",
)  # fmt: skip
DATA_FILE_ENV_RE = re.compile(r"(_FILE|_FILE_PATH|_DB|_DB_PATH|_DATABASE|_STORE|_STORAGE)$")
DATA_FLAG_RE = re.compile(r"(db|database|sqlite|store|storage|data-file|db-path|file|output|out)$")
"""A command-line flag whose value is a file the server writes (``--db-path``, ``--output``...)."""
# Directories a server may read but never write, even when its configuration names them.
SYSTEM_TREES = ("/usr", "/etc", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt", "/var/lib",
                "/var/cache", "/proc", "/sys", "/dev", "/run", "/snap", "/nix")  # fmt: skip
DEFAULT_MEMORY = 2 * 1024 * 1024 * 1024
DEFAULT_MAX_PROCESSES = 256
DEFAULT_MAX_OPEN_FILES = 4096
SAFE_PATH = ("/usr/local/bin", "/usr/bin", "/bin")


def _real(path: str) -> str:
    return os.path.realpath(path)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


class _Guard:
    """Decides which paths may never be granted."""

    def __init__(self, home: str, data_dir: str) -> None:
        self.home = _real(home)
        self.data_dir = _real(data_dir)
        self.secrets = [_real(os.path.join(self.home, entry)) for entry in SECRET_HOME_ENTRIES]

    def refusal(self, path: str) -> str | None:
        if path in SYSTEM_ROOTS or path == self.home:
            return "a system root or the home directory itself"
        if _inside(path, self.data_dir) or _inside(self.data_dir, path):
            return "the gateway's data directory (or a directory containing it)"
        for secret in self.secrets:
            if _inside(path, secret) or _inside(secret, path):
                return f"a credential store ({secret}) or a directory containing it"
        return None


def _path_values(value: str, cwd: str | None, home: str) -> list[str]:
    parts = [value]
    if value.startswith("-") and "=" in value:
        parts.append(value.split("=", 1)[1])
    out: list[str] = []
    for part in parts:
        if part.startswith("~/"):
            out.append(os.path.join(home, part[2:]))
        elif part.startswith("/"):
            out.append(part)
        elif cwd is not None and part.startswith(("./", "../")):
            out.append(os.path.join(cwd, part))
    return [os.path.normpath(p) for p in out if "\x00" not in p]


def _runtime_roots(program: str, env: Mapping[str, str]) -> list[str]:
    """Read-only directories the program's runtime needs when it lives outside ``/usr``."""
    path = env.get("PATH") or os.environ.get("PATH", "")
    found = shutil.which(program, path=path) if not os.path.isabs(program) else program
    roots: list[str] = []
    if found is None:
        return roots
    base = os.path.basename(program)
    candidates = [found]
    if base in NODE_RUNNERS:
        node = shutil.which("node", path=path)
        if node is not None:
            candidates.append(node)
    for candidate in candidates:
        real = _real(candidate)
        # <prefix>/bin/<exe>: the prefix holds node's lib/node_modules or Python's lib/.
        roots.append(os.path.dirname(os.path.dirname(real)))
        venv = os.path.dirname(os.path.dirname(os.path.abspath(candidate)))
        cfg = os.path.join(venv, "pyvenv.cfg")
        if os.path.isfile(cfg):
            roots.append(venv)
            home_line = next((ln for ln in Path(cfg).read_text().splitlines() if ln.startswith("home")), None)
            if home_line is not None:
                roots.append(os.path.dirname(_real(home_line.split("=", 1)[1].strip())))
    if base in PYTHON_RUNNERS or base.startswith("python"):
        uv_pythons = env.get("UV_PYTHON_INSTALL_DIR") or os.path.join(Path.home(), ".local/share/uv/python")
        if os.path.isdir(uv_pythons):
            roots.append(_real(uv_pythons))
    return [r for r in dict.fromkeys(roots) if r and not _inside(r, "/usr")]


def _first_positional(args: Sequence[str]) -> int:
    return next((i for i, a in enumerate(args) if not a.startswith("-")), -1)


def _code_root(script: str) -> str:
    """What a script needs besides itself: its package's ``node_modules`` tree, or its directory."""
    parts = Path(script).parts
    if "node_modules" in parts:
        return str(Path(*parts[: parts.index("node_modules") + 1]))
    return os.path.dirname(script) if os.path.isfile(script) else script


def server_key(command: str, args: Sequence[str]) -> str:
    """A stable directory name for a server without a name: a hash of its command line."""
    digest = hashlib.sha256("\x00".join([command, *args]).encode()).hexdigest()[:16]
    return f"cmd-{digest}"


def default_policy_for(
    command: str,
    args: Sequence[str],
    env: Mapping[str, str],
    working_dir: str | None,
    data_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    network: NetworkMode | None = None,
    allowed_domains: Sequence[str] = (),
    home: str | None = None,
    notes: list[str] | None = None,
) -> SandboxPolicy:
    """The default policy for a stdio server; creates its private directories.

    Args:
        command: The configured program (``npx``, ``uvx``, ``node``, a path...).
        args: Its arguments.
        env: The variables configured for the server (kept, explicitly, in the policy).
        working_dir: Its configured working directory, if any.
        data_dir: The gateway's data directory (hidden; private dirs are made under it).
        name: Server name, used for its private directory (else a hash of the command line).
        network: Network mode; by default ``none``, or ``allow`` to the registry for runners.
        allowed_domains: Extra domains for ``allow``.
        home: The host home directory to protect (default: the current user's).
        notes: Receives a sentence for every configured path that was refused.

    Returns:
        A policy for ``SandboxPolicy``-aware backends.

    Raises:
        SandboxPolicyError: A data file (``MEMORY_FILE_PATH``, ``--db-path``...) lies in a directory
            that is never shared (the home directory itself, one holding the data directory...):
            the server could not write next to it.
    """
    home_dir = _real(home or str(Path.home()))
    data = _real(os.fspath(data_dir))
    guard = _Guard(home_dir, data)
    key = name or server_key(command, args)
    private = os.path.join(data, "sandbox", key)
    dirs = {d: os.path.join(private, d) for d in ("home", "tmp", "cache")}
    for sub in ("home", "tmp", "cache/npm", "cache/uv"):
        os.makedirs(os.path.join(private, sub), mode=0o700, exist_ok=True)
    writable: list[str] = [dirs["cache"]]
    readonly: list[str] = []

    def refuse(path: str, why: str) -> None:
        if notes is not None:
            notes.append(f"not exposed to the sandbox: {path} ({why})")

    cwd = _real(working_dir) if working_dir else None
    if cwd is not None:
        why = guard.refusal(cwd)
        if why is not None or not os.path.isdir(cwd):
            refuse(cwd, why or "not a directory")
            cwd = None
        else:
            writable.append(cwd)

    def grant(path: str, *, data_file: bool, exact: str | None = None, code: bool = False, source: str = "") -> None:
        real = _real(path)
        target = real
        if data_file and not os.path.isdir(real):
            target = os.path.dirname(real)
            exact = real if os.path.exists(real) else None
        if not os.path.exists(target):
            return
        why = guard.refusal(target)
        if why is not None and data_file:
            # A server writes next to its data file (temporary file + rename, journals): the file
            # alone is not enough, and a write elsewhere would vanish or fail. Say so at start.
            raise SandboxPolicyError(
                f"{source}={path}: the server writes in {target}, which cannot be shared with a sandbox ({why})",
                key=source,
                hint="keep the file in a directory of its own (e.g. ~/.local/share/NAME/), or set isolation: none",
            )
        if why is not None and exact is not None and guard.refusal(_real(exact)) is None:
            # The directory around it is off limits, but the file itself is not.
            target, why = _real(exact), None
        if why is not None:
            refuse(target, why)
            return
        system = any(_inside(target, t) for t in SYSTEM_TREES)
        handed_over = os.path.isdir(target) and not code
        if not system and (data_file or handed_over or (cwd is not None and _inside(target, cwd))):
            writable.append(target)
        else:
            readonly.append(target)

    script_runner = os.path.basename(command) in SCRIPT_RUNNERS or os.path.basename(command).startswith("python")
    for index, arg in enumerate(args):
        flag = arg.split("=", 1)[0] if arg.startswith("-") and "=" in arg else args[index - 1] if index else ""
        is_data = flag.startswith("-") and DATA_FLAG_RE.search(flag.lower()) is not None and "conf" not in flag
        for path in _path_values(arg, cwd, home_dir):
            if script_runner and index == _first_positional(args) and os.path.exists(path):
                grant(_code_root(path), data_file=False, exact=path, code=True)
            elif os.path.exists(path) or (is_data and os.path.isdir(os.path.dirname(path))):
                grant(path, data_file=is_data, source=flag)
    for var, value in env.items():
        for path in _path_values(value, cwd, home_dir):
            is_data = DATA_FILE_ENV_RE.search(var.upper()) is not None
            if os.path.exists(path) or (is_data and os.path.isdir(os.path.dirname(path))):
                grant(path, data_file=is_data, source=var)
    for root in _runtime_roots(command, env):
        why = guard.refusal(root)
        if why is None:
            readonly.append(root)
        else:
            refuse(root, why)

    base = os.path.basename(command)
    if network is None:
        network = "allow" if base in NODE_RUNNERS - {"node"} or base in PYTHON_RUNNERS else "none"
    domains = list(allowed_domains)
    if network == "allow":
        domains += NPM_REGISTRY if base in NODE_RUNNERS else PYPI if base in PYTHON_RUNNERS else ()
    # The directory the command was found in, not its symlink's target (npx -> npm/bin/npx-cli.js,
    # where a shell script also called npx would win the lookup).
    path_dirs = [os.path.dirname(os.path.abspath(p)) for p in (shutil.which(command, path=env.get("PATH")),) if p]
    search_path = ":".join(dict.fromkeys([*(r + "/bin" for r in readonly if os.path.isdir(r + "/bin")), *path_dirs,
                                          *SAFE_PATH]))  # fmt: skip
    explicit = {
        "PATH": search_path,
        "npm_config_cache": os.path.join(dirs["cache"], "npm"),
        "npm_config_update_notifier": "false",
        "UV_CACHE_DIR": os.path.join(dirs["cache"], "uv"),
        "PYTHONDONTWRITEBYTECODE": "1",
        # /etc is curated: git must not insist on the host's system config (Landlock says EACCES).
        "GIT_CONFIG_NOSYSTEM": "1",
        **env,
    }
    return SandboxPolicy(
        network=network,
        allowed_domains=tuple(dict.fromkeys(domains)),
        writable_paths=tuple(dict.fromkeys(writable)),
        readonly_paths=tuple(p for p in dict.fromkeys(readonly) if p not in writable),
        memory_bytes=DEFAULT_MEMORY,
        max_processes=DEFAULT_MAX_PROCESSES,
        max_open_files=DEFAULT_MAX_OPEN_FILES,
        env=explicit,
        working_dir=cwd or dirs["home"],
        home_dir=dirs["home"],
        tmp_dir=dirs["tmp"],
    )
