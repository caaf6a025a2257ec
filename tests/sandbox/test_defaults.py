"""Default policies: what a server's configuration names becomes reachable, nothing else."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from mcpproxy.sandbox.defaults import default_policy_for, server_key
from tests.sandbox.support import FakeHost


def test_paths_in_args_and_env_become_reachable(host: FakeHost, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    inside = host.work / "src"
    inside.mkdir()
    memory_dir = tmp_path / "memory"
    memory_dir.mkdir()
    policy = default_policy_for(
        "node",
        ["server.js", str(docs), f"--root={inside}", "./src", "/does/not/exist"],
        {"MEMORY_FILE_PATH": str(memory_dir / "memory.json"), "CONFIG_DIR": str(docs)},
        str(host.work),
        host.data,
        name="srv",
        home=str(host.home),
    )
    assert str(docs) in policy.readonly_paths
    assert str(inside) in policy.writable_paths  # under the working dir
    assert str(host.work) in policy.writable_paths
    assert str(memory_dir) in policy.writable_paths  # a data file's parent
    assert "/does/not/exist" not in policy.readonly_paths + policy.writable_paths
    assert policy.working_dir == str(host.work)
    assert policy.env["MEMORY_FILE_PATH"] == str(memory_dir / "memory.json")


def test_secrets_home_and_data_dir_are_never_granted(host: FakeHost) -> None:
    notes: list[str] = []
    (host.home / "memory.json").write_text("{}")
    policy = default_policy_for(
        "node",
        ["server.js", str(host.home), str(host.home / ".ssh"), str(host.data), "/", "/etc", "~/.ssh/id_rsa"],
        {"MEMORY_FILE_PATH": str(host.home / "memory.json"), "DB_PATH_FILE": str(host.config)},
        str(host.home),
        host.data,
        name="greedy",
        home=str(host.home),
        notes=notes,
    )
    granted = policy.readonly_paths + policy.writable_paths
    for forbidden in (host.home, host.home / ".ssh", host.ssh_key, host.data, host.config, Path("/"), Path("/etc")):
        assert str(forbidden) not in granted
    assert all(not p.startswith(str(host.data)) or p.startswith(str(host.data / "sandbox" / "greedy")) for p in granted)
    # The home directory is refused as a whole, but the data file named in the env is allowed alone.
    assert str(host.home / "memory.json") in policy.writable_paths
    assert policy.working_dir == policy.home_dir  # the configured cwd (the home) was refused
    assert any("home directory itself" in n for n in notes)
    assert any("credential store" in n for n in notes)
    assert any("data directory" in n for n in notes)


def test_private_home_tmp_and_caches(host: FakeHost) -> None:
    policy = default_policy_for("npx", ["-y", "@scope/server"], {}, None, host.data, home=str(host.home))
    key = server_key("npx", ["-y", "@scope/server"])
    private = host.data / "sandbox" / key
    assert policy.home_dir == str(private / "home")
    assert policy.tmp_dir == str(private / "tmp")
    assert policy.env["npm_config_cache"] == str(private / "cache" / "npm")
    assert policy.env["UV_CACHE_DIR"] == str(private / "cache" / "uv")
    assert str(private / "cache") in policy.writable_paths
    for d in (private / "home", private / "tmp", private / "cache" / "npm"):
        assert d.is_dir()
        assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert policy.network == "allow"
    assert policy.allowed_domains == ("registry.npmjs.org",)


def test_network_defaults_by_runtime(host: FakeHost) -> None:
    def net(command: str, **kw: object) -> tuple[str, tuple[str, ...]]:
        p = default_policy_for(command, [], {}, None, host.data, home=str(host.home), **kw)  # type: ignore[arg-type]
        return p.network, p.allowed_domains

    assert net("node") == ("none", ())
    assert net("python3") == ("none", ())
    assert net("uvx") == ("allow", ("pypi.org", "files.pythonhosted.org"))
    assert net("uvx", allowed_domains=["api.example.com"]) == (
        "allow",
        ("api.example.com", "pypi.org", "files.pythonhosted.org"),
    )
    assert net("npx", network="host") == ("host", ())


def test_runtimes_outside_usr_are_bound_read_only(host: FakeHost, tmp_path: Path) -> None:
    prefix = tmp_path / "nodejs"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib" / "node_modules").mkdir(parents=True)
    node = prefix / "bin" / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    policy = default_policy_for("node", [], {"PATH": str(prefix / "bin")}, None, host.data, home=str(host.home))
    assert str(prefix) in policy.readonly_paths
    assert policy.env["PATH"].split(":")[0] == str(prefix / "bin")

    venv_policy = default_policy_for(sys.executable, [], {}, None, host.data, home=str(host.home))
    assert os.path.realpath(sys.base_prefix) in venv_policy.readonly_paths
    if sys.prefix != sys.base_prefix:
        assert sys.prefix in venv_policy.readonly_paths


def test_node_script_gets_its_node_modules_tree(host: FakeHost, tmp_path: Path) -> None:
    script = tmp_path / "lib" / "node_modules" / "@scope" / "server" / "dist" / "index.js"
    script.parent.mkdir(parents=True)
    script.write_text("")
    policy = default_policy_for("node", [str(script), "--flag"], {}, None, host.data, home=str(host.home))
    assert str(tmp_path / "lib" / "node_modules") in policy.readonly_paths
