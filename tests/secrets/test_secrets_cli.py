"""``mcpproxy secrets set|get|list|delete`` run as processes: values only ever shown masked, unless revealed."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from mcpproxy.cli.common import EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from mcpproxy.filters.secrets import mask
from mcpproxy.secrets.store import BACKEND_ENV
from tests.secrets.support import cli_env
from tests.support.gateway import mcpproxy_argv

pytestmark = pytest.mark.anyio

VALUE = "cli-secret-value-9f8e7d6c5b4a"


async def run(tmp_path: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    env = cli_env(tmp_path, **{BACKEND_ENV: "file"})
    argv = mcpproxy_argv("--data-dir", str(tmp_path / "data"), "secrets", *args)
    done = await anyio.run_process(argv, env=env, check=False, input=stdin.encode() if stdin is not None else b"")
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_set_reads_the_value_from_standard_input_and_never_prints_it(tmp_path: Path) -> None:
    code, out, err = await run(tmp_path, "set", "API_TOKEN", stdin=VALUE + "\n")
    assert code == EXIT_OK, err
    assert out.startswith("stored API_TOKEN in the encrypted file ")
    assert "${keyring:API_TOKEN}" in err
    assert VALUE not in out + err
    code, out, _ = await run(tmp_path, "get", "API_TOKEN", "--reveal")
    assert (code, out) == (EXIT_OK, VALUE + "\n")  # the newline that ended the input is not part of it


async def test_get_shows_the_value_masked_unless_revealed(tmp_path: Path) -> None:
    await run(tmp_path, "set", "API_TOKEN", "--value", VALUE)
    code, out, _ = await run(tmp_path, "get", "API_TOKEN")
    assert (code, out) == (EXIT_OK, mask(VALUE) + "\n")
    assert VALUE not in out


async def test_list_shows_the_backend_the_names_and_masked_values_only(tmp_path: Path) -> None:
    await run(tmp_path, "set", "API_TOKEN", "--value", VALUE)
    await run(tmp_path, "set", "SHORT", "--value", "hunter22")
    code, out, err = await run(tmp_path, "list")
    assert code == EXIT_OK, err
    lines = out.splitlines()
    assert lines[0].startswith(f"backend: encrypted file {tmp_path / 'data' / 'secrets.enc'} ({BACKEND_ENV}=file)")
    assert lines[1:] == [f"API_TOKEN  {mask(VALUE)}", "SHORT      ********"]
    assert VALUE not in out and "hunter22" not in out
    code, out, _ = await run(tmp_path, "list", "--json")
    body = json.loads(out)
    assert body["backend"] == "file"
    assert body["secrets"] == [{"name": "API_TOKEN", "value": mask(VALUE)}, {"name": "SHORT", "value": "********"}]


async def test_an_empty_store_lists_a_hint(tmp_path: Path) -> None:
    code, out, _ = await run(tmp_path, "list")
    assert code == EXIT_OK
    assert "no secrets stored" in out


async def test_delete_removes_a_secret_and_unknown_names_exit_not_found(tmp_path: Path) -> None:
    await run(tmp_path, "set", "API_TOKEN", "--value", VALUE)
    assert (await run(tmp_path, "delete", "API_TOKEN"))[:2] == (EXIT_OK, "deleted API_TOKEN\n")
    for args in (("delete", "API_TOKEN"), ("get", "API_TOKEN")):
        code, _, err = await run(tmp_path, *args)
        assert code == EXIT_NOT_FOUND
        assert "no secret named API_TOKEN" in err


async def test_an_empty_value_is_a_usage_error_and_a_bad_name_invalid_input(tmp_path: Path) -> None:
    code, _, err = await run(tmp_path, "set", "API_TOKEN", stdin="\n")
    assert code == EXIT_USAGE
    assert "empty" in err
    code, _, err = await run(tmp_path, "set", "bad name", "--value", VALUE)
    assert code == EXIT_INVALID
    assert "invalid secret name" in err


async def test_the_command_describes_its_subcommands(tmp_path: Path) -> None:
    done = await anyio.run_process(mcpproxy_argv("secrets", "--help"), env=cli_env(tmp_path), check=False)
    assert done.returncode == EXIT_OK
    listed = {line.split()[0] for line in done.stdout.decode().split("Commands:")[1].splitlines() if line.strip()}
    assert listed == {"set", "get", "list", "delete"}
