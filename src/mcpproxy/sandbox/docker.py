"""The docker backend: builds the exact ``docker run`` command line for a server.

Design. The command's runtime decides the image (``npx``/``node`` -> ``node:20``, ``uvx``/``uv``
-> a uv image, ``python`` -> ``python:3.11-slim``); anything else needs an image configured
explicitly. Every value that reaches the command line is validated first against a strict
pattern — image references, the program name, arguments (no control characters), mount
paths (no ``,`` or quotes, which ``--mount`` would parse) — and everything is passed as
a list, never through a shell. Environment *values* are never on the command line: each
variable is passed as ``-e NAME`` and the docker client takes the value from its own
environment (``PreparedCommand.env``), because ``/proc/PID/cmdline`` is world-readable.

The container gets no capabilities, ``no-new-privileges``, a read-only root with a private
``/tmp``, the gateway's uid/gid (so writable binds behave as they do for the other
backends), ``--pids-limit``, ``--memory`` (swap included), ``--ulimit`` for CPU, open files,
file size and core dumps, ``--init`` so signals and orphans are handled, and
``--network none`` or ``host``. ``network=allow`` is refused: a domain allow-list needs the
in-sandbox forwarder, which the stock images cannot run. ``available()`` asks the engine
for its version with a bounded timeout and caches the answer briefly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence

from mcpproxy.sandbox.base import (
    Availability,
    EgressEndpoint,
    PreparedCommand,
    SandboxPolicy,
    SandboxPolicyError,
    SandboxUnavailable,
    explain_exit,
)

RUNTIME_IMAGES: Mapping[str, str] = {
    "npx": "node:20",
    "node": "node:20",
    "npm": "node:20",
    "uvx": "ghcr.io/astral-sh/uv:python3.11-bookworm-slim",
    "uv": "ghcr.io/astral-sh/uv:python3.11-bookworm-slim",
    "python": "python:3.11-slim",
    "python3": "python:3.11-slim",
}

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]{1,5})?"
IMAGE_RE = re.compile(
    rf"^(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?$"
)
PROGRAM_RE = re.compile(r"^[A-Za-z0-9_+][A-Za-z0-9_.+/-]*$")
ARG_RE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")
MOUNT_PATH_RE = re.compile(r"^/[^\x00-\x1f\x7f,\"']*$")
CLIENT_ENV = ("PATH", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY")
PROBE_TIMEOUT = 3.0
PROBE_TTL = 30.0
CONTAINER_TMP = "/tmp"  # noqa: S108 - the container's private tmpfs


def image_for(program: str) -> str | None:
    """The default image for a program name (``npx`` -> ``node:20``), by its basename."""
    return RUNTIME_IMAGES.get(os.path.basename(program))


def validate_image(image: str) -> str:
    """Return ``image`` if it is a plain image reference, else raise ``SandboxPolicyError``."""
    if len(image) > 255 or not IMAGE_RE.fullmatch(image):
        raise SandboxPolicyError(f"invalid docker image reference: {image!r}", key="image")
    return image


class DockerSandbox:
    """Runs commands in a fresh container per start.

    Args:
        docker_path: The docker client; found on ``PATH`` when ``None``.
        image: Image for every command (overrides the runtime mapping).
        images: Extra program -> image mappings.
    """

    name = "docker"

    def __init__(
        self, docker_path: str | None = None, *, image: str | None = None, images: Mapping[str, str] | None = None
    ) -> None:
        self._docker = docker_path
        self._image = validate_image(image) if image is not None else None
        self._images = {k: validate_image(v) for k, v in (images or {}).items()}
        self._probe: tuple[float, Availability] | None = None

    @property
    def docker(self) -> str | None:
        return self._docker or shutil.which("docker")

    def available(self) -> Availability:
        """Whether an engine answers ``docker version`` within a few seconds (cached 30 s)."""
        now = time.monotonic()
        if self._probe is not None and now - self._probe[0] < PROBE_TTL:
            return self._probe[1]
        state = _probe_engine(self.docker)
        self._probe = (now, state)
        return state

    def command_line(self, argv: Sequence[str], env: Mapping[str, str], policy: SandboxPolicy) -> list[str]:
        """The ``docker run`` argv for ``argv`` under ``policy`` (no engine needed).

        Raises:
            SandboxPolicyError: The image, program, an argument, a path or the network mode is not allowed.
        """
        if not argv:
            raise SandboxPolicyError("nothing to run: the command is empty")
        program = argv[0]
        if not PROGRAM_RE.fullmatch(program):
            raise SandboxPolicyError(f"invalid program name for docker: {program!r}", key="command")
        for arg in argv[1:]:
            if not ARG_RE.fullmatch(arg):
                raise SandboxPolicyError(f"argument contains control characters: {arg!r}", key="args")
        image = self._image or self._images.get(os.path.basename(program)) or image_for(program)
        if image is None:
            raise SandboxPolicyError(
                f"no docker image known for {os.path.basename(program)!r}",
                key="image",
                hint=f"configure an image, or use one of: {', '.join(sorted(RUNTIME_IMAGES))}",
            )
        validate_image(image)
        if policy.network == "allow":
            raise SandboxPolicyError(
                "the docker sandbox supports network 'none' or 'host', not a domain allow-list",
                key="network",
                hint="use the bwrap sandbox for allow-listed domains",
            )
        docker = self.docker or "docker"
        out = [docker, "run", "--rm", "-i", "--init", "--network", "host" if policy.network == "host" else "none"]
        out += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only"]
        out += ["--tmpfs", f"{CONTAINER_TMP}:rw,nosuid,nodev,size=256m", "--user", f"{os.getuid()}:{os.getgid()}"]
        out += ["--label", "mcpproxy.sandbox=docker", "--ulimit", "core=0:0"]
        if policy.max_processes is not None:
            out += ["--pids-limit", str(policy.max_processes)]
        if policy.memory_bytes is not None:
            out += ["--memory", str(policy.memory_bytes), "--memory-swap", str(policy.memory_bytes)]
        if policy.cpu_seconds is not None:
            out += ["--ulimit", f"cpu={policy.cpu_seconds}:{policy.cpu_seconds + 1}"]
        if policy.max_open_files is not None:
            out += ["--ulimit", f"nofile={policy.max_open_files}:{policy.max_open_files}"]
        if policy.max_file_bytes is not None:
            out += ["--ulimit", f"fsize={policy.max_file_bytes}:{policy.max_file_bytes}"]
        out += _mounts(policy)
        if policy.working_dir is not None:
            out += ["--workdir", policy.working_dir]
        for key in sorted(self._container_env(env, policy)):
            out += ["-e", key]
        out += [image, *argv]
        return out

    def _container_env(self, env: Mapping[str, str], policy: SandboxPolicy) -> dict[str, str]:
        final = policy.final_env(env)
        # The image's PATH is the right one inside; the host's would point at nothing.
        final.pop("PATH", None)
        final.setdefault("HOME", CONTAINER_TMP)
        return final

    def prepare(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: SandboxPolicy,
        *,
        egress: EgressEndpoint | None = None,
    ) -> PreparedCommand:
        """``docker run ...`` for ``argv``; the client's environment carries the values.

        Raises:
            SandboxUnavailable: No engine answers.
            SandboxPolicyError: See ``command_line``.
        """
        out = self.command_line(argv, env, policy)
        state = self.available()
        if not state.ok:
            raise SandboxUnavailable(f"docker sandbox unavailable: {state.reason}", hint="start a docker engine")
        client_env = {k: os.environ[k] for k in CLIENT_ENV if k in os.environ}
        if "DOCKER_CONFIG" not in client_env:
            client_env["DOCKER_CONFIG"] = os.path.join(os.path.expanduser("~"), ".docker")
        container_env = self._container_env(env, policy)
        return PreparedCommand(
            argv=tuple(out), env={**container_env, **client_env}, cwd=None, backend=self.name, policy=policy
        )

    def explain_exit(self, policy: SandboxPolicy, returncode: int | None, stderr_tail: str) -> str | None:
        if returncode == 125:
            return f"sandbox failed to start: docker could not create the container: {stderr_tail.strip()[-300:]}"
        return explain_exit(policy, returncode, stderr_tail, backend=self.name)


def _mounts(policy: SandboxPolicy) -> list[str]:
    """``--mount`` options, parents first and in a stable order, read-only unless writable."""
    writable = {*policy.writable_paths, *(p for p in (policy.home_dir, policy.tmp_dir) if p is not None)}
    readonly = set(policy.readonly_paths) - writable
    if policy.working_dir is not None and policy.working_dir not in writable:
        readonly.add(policy.working_dir)
    out: list[str] = []
    for path in sorted(writable | readonly, key=lambda p: (p.count("/"), p)):
        if not MOUNT_PATH_RE.fullmatch(path):
            raise SandboxPolicyError(f"path cannot be mounted into a container: {path!r}", key="paths")
        out += ["--mount", f"type=bind,source={path},target={path}" + ("" if path in writable else ",readonly")]
    return out


def _probe_engine(docker: str | None) -> Availability:
    if docker is None:
        return Availability(False, "the docker client is not installed")
    try:
        result = subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            timeout=PROBE_TIMEOUT,
            check=False,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return Availability(False, f"no docker engine answered within {PROBE_TIMEOUT:g} s")
    except OSError as exc:
        return Availability(False, f"the docker client could not run: {exc}")
    version = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0 or not version:
        lines = result.stderr.decode(errors="replace").strip().splitlines()
        return Availability(False, f"no docker engine: {lines[-1] if lines else 'docker version failed'}")
    return Availability(True, f"docker engine {version}")
