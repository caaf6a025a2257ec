"""Default policies: what a server's configuration names becomes reachable, nothing else."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from mcpproxy.sandbox.base import SandboxPolicyError
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
    assert str(docs) in policy.writable_paths  # a directory handed to the server
    assert str(inside) in policy.writable_paths  # under the working dir
    assert str(host.work) in policy.writable_paths
    assert str(memory_dir) in policy.writable_paths  # a data file's parent
    assert "/does/not/exist" not in policy.readonly_paths + policy.writable_paths
    assert policy.working_dir == str(host.work)
    assert policy.env["MEMORY_FILE_PATH"] == str(memory_dir / "memory.json")


def test_secrets_home_and_data_dir_are_never_granted(host: FakeHost) -> None:
    notes: list[str] = []
    policy = default_policy_for(
        "node",
        ["server.js", str(host.home), str(host.home / ".ssh"), str(host.data), "/", "/etc", "~/.ssh/id_rsa"],
        {"CONFIG": str(host.config)},
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
    assert policy.working_dir == policy.home_dir  # the configured cwd (the home) was refused
    assert any("home directory itself" in n for n in notes)
    assert any("credential store" in n for n in notes)
    assert any("data directory" in n for n in notes)


@pytest.mark.parametrize(
    ("env", "args", "named"),
    [
        ({"MEMORY_FILE_PATH": "{home}/memory.json"}, [], "MEMORY_FILE_PATH"),
        ({"APP_DB": "{data}/app.db"}, [], "APP_DB"),
        ({}, ["--db-path", "{home}/app.db"], "--db-path"),
    ],
)
def test_a_data_file_in_a_directory_that_is_never_shared_is_refused_at_start(
    host: FakeHost, env: dict[str, str], args: list[str], named: str
) -> None:
    """The server would write next to it (temporary file + rename, journals): the file alone is not enough."""
    fill = {"home": str(host.home), "data": str(host.data)}
    with pytest.raises(SandboxPolicyError, match=f"^{named}=.*cannot be shared with a sandbox") as caught:
        default_policy_for(
            "node",
            ["server.js", *(a.format(**fill) for a in args)],
            {k: v.format(**fill) for k, v in env.items()},
            None,
            host.data,
            home=str(host.home),
        )
    assert caught.value.hint is not None and "directory of its own" in caught.value.hint


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


def test_named_files_are_read_only_unless_a_flag_says_data(host: FakeHost, tmp_path: Path) -> None:
    config, db_dir, out_dir = tmp_path / "settings.json", tmp_path / "db", tmp_path / "out"
    config.write_text("{}")
    db_dir.mkdir()
    out_dir.mkdir()
    policy = default_policy_for(
        "mcp-server-sqlite",
        ["--config", str(config), "--db-path", str(db_dir / "new.db"), f"--output={out_dir / 'report.txt'}"],
        {},
        None,
        host.data,
        home=str(host.home),
    )
    assert str(config) in policy.readonly_paths
    assert str(db_dir) in policy.writable_paths  # sqlite writes its journal next to the database
    assert str(out_dir) in policy.writable_paths


def test_directories_in_system_trees_stay_read_only(host: FakeHost) -> None:
    args = ["server.js", "/usr/share", "/etc/ssl", "--config-file=/etc/hosts", "--output=/usr/share/doc/x.txt"]
    policy = default_policy_for("node", args, {}, None, host.data, home=str(host.home))
    for path in ("/usr/share", "/etc/ssl", "/etc/hosts", "/usr/share/doc"):
        assert path in policy.readonly_paths
        assert path not in policy.writable_paths
