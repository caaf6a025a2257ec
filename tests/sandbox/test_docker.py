"""The docker backend's exact command lines; running them needs an engine, absent here."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from mcpproxy.sandbox.base import SandboxPolicy, SandboxPolicyError, SandboxUnavailable
from mcpproxy.sandbox.docker import DockerSandbox, image_for, validate_image
from tests.sandbox.support import run_prepared

DOCKER = "/usr/bin/docker"


def build(argv: list[str], policy: SandboxPolicy, image: str | None = None) -> list[str]:
    return DockerSandbox(DOCKER, image=image).command_line(argv, {"LANG": "C.UTF-8", "SECRET": "x"}, policy)


def test_runtime_image_mapping() -> None:
    assert image_for("npx") == "node:20"
    assert image_for("/usr/local/bin/uvx") == "ghcr.io/astral-sh/uv:python3.11-bookworm-slim"
    assert image_for("python3") == "python:3.11-slim"
    assert image_for("ruby") is None


def test_exact_command_line_for_npx_with_network_none(tmp_path: Path) -> None:
    work, home = tmp_path / "work", tmp_path / "home"
    policy = SandboxPolicy(
        writable_paths=(str(work),),
        readonly_paths=("/opt/data",),
        memory_bytes=512 * 1024 * 1024,
        cpu_seconds=30,
        max_processes=64,
        max_open_files=1024,
        env={"API_KEY": "sk-secret"},
        working_dir=str(work),
        home_dir=str(home),
    )
    argv = build(["npx", "-y", "@modelcontextprotocol/server-filesystem", str(work)], policy)
    uid, gid = os.getuid(), os.getgid()
    assert argv == [
        DOCKER, "run", "--rm", "-i", "--init", "--network", "none",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
        "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m", "--user", f"{uid}:{gid}",
        "--label", "mcpproxy.sandbox=docker", "--ulimit", "core=0:0",
        "--pids-limit", "64", "--memory", "536870912", "--memory-swap", "536870912",
        "--ulimit", "cpu=30:31", "--ulimit", "nofile=1024:1024",
        "--mount", "type=bind,source=/opt/data,target=/opt/data,readonly",
        "--mount", f"type=bind,source={home},target={home}",
        "--mount", f"type=bind,source={work},target={work}",
        "--workdir", str(work),
        "-e", "API_KEY", "-e", "HOME", "-e", "LANG",
        "node:20", "npx", "-y", "@modelcontextprotocol/server-filesystem", str(work),
    ]  # fmt: skip
    assert not any("sk-secret" in a for a in argv)  # values travel in the client's environment


def test_command_line_variants() -> None:
    host = build(["uvx", "mcp-server-time"], SandboxPolicy(network="host", memory_bytes=None, max_processes=None))
    assert host[host.index("--network") + 1] == "host"
    assert "--pids-limit" not in host and "--memory" not in host
    assert host[-3:] == ["ghcr.io/astral-sh/uv:python3.11-bookworm-slim", "uvx", "mcp-server-time"]
    custom = build(["ruby", "server.rb"], SandboxPolicy(), image="registry.example.com:5000/team/ruby:3.3")
    assert custom[-3:] == ["registry.example.com:5000/team/ruby:3.3", "ruby", "server.rb"]
    mapped = DockerSandbox(DOCKER, images={"ruby": "ruby:3.3-slim"}).command_line(["ruby"], {}, SandboxPolicy())
    assert mapped[-2:] == ["ruby:3.3-slim", "ruby"]


@pytest.mark.parametrize(
    "image",
    ["node:20", "python:3.11-slim", "ghcr.io/astral-sh/uv:0.5", "localhost:5000/a/b:c", "node@sha256:" + "a" * 64],
)
def test_valid_images(image: str) -> None:
    assert validate_image(image) == image


@pytest.mark.parametrize(
    "image", ["--privileged", "Node:20", "node:20 --rm", "node;rm -rf /", "node:", "", "a" * 300, "node:20\n"]
)
def test_invalid_images_are_refused(image: str) -> None:
    with pytest.raises(SandboxPolicyError, match="invalid docker image"):
        validate_image(image)


def test_refusals() -> None:
    with pytest.raises(SandboxPolicyError, match="no docker image known"):
        build(["ruby"], SandboxPolicy())
    with pytest.raises(SandboxPolicyError, match="invalid program"):
        build(["--privileged"], SandboxPolicy())
    with pytest.raises(SandboxPolicyError, match="control characters"):
        build(["node", "a\nb"], SandboxPolicy())
    with pytest.raises(SandboxPolicyError, match="cannot be mounted"):
        build(["node"], SandboxPolicy(readonly_paths=("/a,readonly=false,source=/etc",)))
    with pytest.raises(SandboxPolicyError, match="not a domain allow-list"):
        build(["node"], SandboxPolicy(network="allow", allowed_domains=("a.example",)))
    with pytest.raises(SandboxPolicyError, match="empty"):
        build([], SandboxPolicy())


def test_available_answers_quickly_without_an_engine() -> None:
    state = DockerSandbox().available()
    if state.ok:
        pytest.skip(f"a docker engine answers here ({state.reason}); this test covers its absence")
    assert state.reason
    with pytest.raises(SandboxUnavailable, match="docker sandbox unavailable"):
        DockerSandbox().prepare(["node", "-e", "1"], {}, SandboxPolicy())


@pytest.mark.anyio
async def test_container_runs_python_under_limits() -> None:
    """Needs a docker engine (and the python:3.11-slim image); none can be installed on this machine."""
    sandbox = DockerSandbox()
    state = sandbox.available()
    if not state.ok or shutil.which("docker") is None:
        pytest.skip(f"needs a docker engine: {state.reason}")
    prepared = sandbox.prepare(["python3", "-c", "print('inside')"], {}, SandboxPolicy(max_processes=16))
    result = await run_prepared(prepared)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "inside"
    assert sys.platform == "linux"
