"""Known secret values are masked in logs, errors and config listings; references are shown as written."""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import structlog

from mcpproxy.errors import ConfigError, UpstreamUnavailable
from mcpproxy.filters.secrets import mask
from mcpproxy.observe.logging import MAIN_LOG_NAME, setup_logging
from mcpproxy.secrets.masking import MIN_LENGTH, mask_config, mask_known, mask_known_json, mask_target, register
from mcpproxy.settings import ServerSpec
from mcpproxy.upstream.errors import describe


def unique(prefix: str = "sk-test") -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


def test_a_registered_value_is_masked_wherever_it_appears_in_text() -> None:
    value = unique()
    register(value)
    assert mask_known(f"a {value} b {value}") == f"a {mask(value)} b {mask(value)}"
    assert value not in mask_known(f"prefix{value}suffix")


def test_json_escaped_and_url_encoded_spellings_are_masked_too() -> None:
    value = f'pa"ss/wo rd\\{secrets.token_hex(8)}'
    register(value)
    assert value not in mask_known(value)
    assert json.dumps(value)[1:-1] not in mask_known(json.dumps({"v": value}))
    assert quote(value, safe="") not in mask_known("http://h/?k=" + quote(value, safe=""))


def test_a_value_containing_another_known_value_is_masked_whole() -> None:
    inner = unique("inner")
    outer = f"outer-{inner}-outer"
    register([inner, outer])
    assert mask_known(outer) == mask(outer)


def test_short_values_are_not_registered_so_logs_stay_readable() -> None:
    short = "x" * (MIN_LENGTH - 1)
    register(short)
    assert mask_known(f"value {short}") == f"value {short}"


def test_structures_are_masked_string_by_string_and_keys_are_kept() -> None:
    value = unique()
    register(value)
    masked = mask_known_json({"a": [value, 1, {"b": f"x{value}"}], value: None})
    assert masked == {"a": [mask(value), 1, {"b": f"x{mask(value)}"}], value: None}


def test_error_messages_and_hints_never_carry_a_known_value() -> None:
    value = unique()
    register(value)
    err = UpstreamUnavailable(f"server 'x' is error: HTTP 401 from http://h/?k={value}", hint=f"check {value}")
    assert value not in err.message
    assert value not in str(err)
    assert value not in json.dumps(err.to_dict())


def test_the_upstream_reason_masks_values_of_foreign_errors() -> None:
    value = unique()
    register(value)
    assert value not in describe(FileNotFoundError(2, "No such file", f"/opt/{value}/server"))
    assert describe(ConfigError("${keyring:X} in env.A cannot be resolved", hint="set it")) == (
        "${keyring:X} in env.A cannot be resolved (set it)"
    )


# -- listings --------------------------------------------------------------------------------------


def test_a_listing_masks_literal_values_of_secret_named_env_and_headers_but_shows_references() -> None:
    literal, bearer = unique("lit"), unique("bear")
    config = {
        "url": "http://127.0.0.1:9/mcp",
        "headers": {
            "Authorization": f"Bearer {bearer}",
            "X-Api-Key": literal,
            "X-Ref": "Bearer ${keyring:REMOTE_TOKEN}",
            "Accept": "application/json",
        },
        "env": {"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "DB_PASSWORD": "hunter2", "LOG_LEVEL": "debug"},
    }
    masked = mask_config(config)
    assert masked["headers"] == {
        "Authorization": f"Bearer {mask(bearer)}",
        "X-Api-Key": mask(literal),
        "X-Ref": "Bearer ${keyring:REMOTE_TOKEN}",
        "Accept": "application/json",
    }
    assert masked["env"] == {"GITHUB_TOKEN": "${env:GITHUB_TOKEN}", "DB_PASSWORD": "********", "LOG_LEVEL": "debug"}
    assert config["env"]["DB_PASSWORD"] == "hunter2"  # type: ignore[index]


def test_a_listing_masks_secret_flags_urls_with_credentials_and_detected_tokens_in_args() -> None:
    github = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    known = unique("known")
    register(known)
    args = ["--token", "plainvalue", "--api-key=other-value", "--name", "docs", github, f"--x={known}"]
    args += ["--password", "${keyring:DB}", "--verbose"]
    assert mask_config({"command": "srv", "args": args})["args"] == [
        "--token",
        "********",
        "--api-key=********",
        "--name",
        "docs",
        mask(github),
        f"--x={mask(known)}",
        "--password",
        "${keyring:DB}",
        "--verbose",
    ]


def test_a_listing_masks_the_password_and_secret_query_parameters_of_a_url() -> None:
    url = "https://user:pa55word@example.com/mcp?api_key=abcdef123456&page=2&token=${keyring:T}"
    assert mask_config({"url": url})["url"] == (
        "https://user:********@example.com/mcp?api_key=********&page=2&token=${keyring:T}"
    )


def test_the_target_column_shows_the_command_with_masked_args() -> None:
    known = unique("arg")
    register(known)
    spec = ServerSpec.model_validate({"name": "s", "command": "srv", "args": ["--key", "${keyring:K}", known]})
    assert mask_target(spec) == f"srv --key ${{keyring:K}} {mask(known)}"


# -- logs ------------------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_a_known_value_never_reaches_the_log_file_or_stderr(
    tmp_path: Path, fmt: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    value = unique("logged")
    quoted = f'{unique("q")}"\\'  # needs JSON escaping in the rendered line
    register([value, quoted])
    setup_logging(level="debug", fmt=fmt, log_dir=tmp_path)
    log = logging.getLogger("mcpproxy.test_secret_masking")
    log.info("connecting with %s", value)
    log.warning("quoted %s", quoted)
    try:
        raise RuntimeError(f"failed with {value}")
    except RuntimeError:
        log.exception("upstream failed")
    structlog.get_logger("mcpproxy.test").info("bound", token=value, nested={"list": [value]})
    for handler in logging.getLogger().handlers:
        handler.flush()
    written = (tmp_path / MAIN_LOG_NAME).read_text(encoding="utf-8")
    shown = capsys.readouterr().err
    assert "connecting with" in written and "upstream failed" in written and "bound" in written
    assert "connecting with" in shown
    for text in (written, shown):
        assert value not in text
        assert quoted not in text
        assert json.dumps(quoted)[1:-1] not in text
        assert mask(value) in text
