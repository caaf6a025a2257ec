"""Loading settings: file, environment, flags, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mcpproxy.config.fields import SETTING_FIELDS
from mcpproxy.config.jsonfile import key_lines
from mcpproxy.config.loader import config_path_for, load_config, load_settings, resolve_paths
from mcpproxy.errors import ConfigError
from mcpproxy.settings import CONFIG_FILE_NAME, Settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mcp_config.json"
    path.write_text(text, encoding="utf-8")
    return path


def load_error(path: Path, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={}, **kwargs)  # type: ignore[arg-type]
    return info.value


def test_a_missing_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "absent.json", env={}) == Settings()


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "  \n"), env={}) == Settings()


def test_no_path_means_defaults_plus_overrides() -> None:
    assert load_settings(None, env={}, overrides={"tools_limit": 3}).tools_limit == 3


def test_a_valid_file_is_read_with_its_servers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        json.dumps(
            {
                "listen": "127.0.0.1:9000",
                "mcpServers": {
                    "time": {"command": "uvx", "args": ["mcp-server-time"]},
                    "docs": {"url": "https://example.com/mcp"},
                },
            }
        ),
    )
    settings = load_settings(path, env={})
    assert settings.port == 9000
    assert settings.servers["time"].args == ("mcp-server-time",)
    assert settings.servers["docs"].transport == "http"


def test_a_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, '{\n  "listen": "127.0.0.1:1",\n  "tools_limit": 5,\n}\n'))
    assert error.line == 4
    assert "line 4, column 1" in error.message


def test_a_wrong_type_nested_in_a_server_names_key_path_and_line(tmp_path: Path) -> None:
    text = """{
  "listen": "127.0.0.1:8080",
  "mcpServers": {
    "other": {"command": "x", "description": "a } brace and a \\" quote"},
    "time": {
      "command": "uvx",
      "args": "mcp-server-time"
    }
  }
}
"""
    error = load_error(write(tmp_path, text))
    assert error.message == "config error at mcpServers.time.args (line 7): Input should be a valid list"
    assert (error.key, error.line) == ("mcpServers.time.args", 7)


def test_a_wrong_array_item_names_its_index_and_line(tmp_path: Path) -> None:
    text = '{"mcpServers": {\n "t": {"command": "x",\n  "args": [\n   "ok",\n   5\n  ]}}}'
    error = load_error(write(tmp_path, text))
    assert error.key == "mcpServers.t.args[1]"
    assert error.line == 5


def test_an_unknown_top_level_key_is_named_with_a_suggestion(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, '{\n  "listen": "127.0.0.1:8080",\n  "tool_limit": 4\n}'))
    assert error.message == "config error at tool_limit (line 3): unknown key"
    assert error.hint == "did you mean 'tools_limit'?"


def test_a_server_with_neither_command_nor_url_is_named(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, '{\n "mcpServers": {\n\n  "broken": {"args": []}\n }\n}'))
    assert error.key == "mcpServers.broken"
    assert error.line == 4
    assert "needs either 'command'" in error.message


def test_a_server_given_under_servers_is_located_there(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, '{"servers": {\n "s": {\n  "url": "ftp://nope"}}}'))
    assert (error.key, error.line) == ("servers.s", 2)


def test_several_errors_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    error = load_error(write(tmp_path, '{\n"listen": "nope",\n"tools_limit": "x",\n"log_level": "loud"\n}'))
    assert error.message.startswith("config error at listen (line 2): listen must be HOST:PORT")
    assert error.message.endswith("(and 2 more errors)")
    assert [item["key"] for item in error.data["errors"]] == ["listen", "tools_limit", "log_level"]


def test_a_top_level_value_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    assert load_error(write(tmp_path, "[1, 2]")).line == 1


def test_every_global_setting_has_an_environment_variable_and_a_description() -> None:
    envs = {row.env for row in SETTING_FIELDS}
    assert {
        "MCPPROXY_LISTEN",
        "MCPPROXY_DATA_DIR",
        "MCPPROXY_TOOLS_LIMIT",
        "MCPPROXY_TOOL_RESPONSE_LIMIT",
        "MCPPROXY_CALL_TIMEOUT",
        "MCPPROXY_CONNECT_TIMEOUT",
        "MCPPROXY_LOG_LEVEL",
        "MCPPROXY_LOG_FORMAT",
    } <= envs
    assert all(row.description for row in SETTING_FIELDS)
    assert {row.name for row in SETTING_FIELDS} == set(Settings.model_fields) - {"servers"}


def test_flags_beat_environment_which_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"tools_limit": 5, "call_timeout": 9, "log_level": "debug"}')
    env = {"MCPPROXY_TOOLS_LIMIT": "7", "MCPPROXY_CALL_TIMEOUT": "2.5", "MCPPROXY_LOG_FORMAT": ""}
    loaded = load_config(path, env=env, overrides={"tools_limit": 11, "listen": None})
    assert loaded.settings.tools_limit == 11
    assert loaded.settings.call_timeout == 2.5
    assert loaded.settings.log_level == "debug"
    assert loaded.sources["tools_limit"] == "cli"
    assert loaded.sources["call_timeout"] == "env"
    assert loaded.sources["log_level"] == "file"
    assert loaded.sources["listen"] == "default"
    assert loaded.sources["log_format"] == "default"


def test_a_bad_environment_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"MCPPROXY_TOOLS_LIMIT": "many"})
    assert info.value.message.startswith("config error at tools_limit (from MCPPROXY_TOOLS_LIMIT='many'):")
    assert info.value.line is None


def test_an_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'colour'"):
        load_settings(None, env={}, overrides={"colour": "red"})


def test_the_loaded_content_is_kept_for_change_detection(tmp_path: Path) -> None:
    path = write(tmp_path, '{"tools_limit": 5}')
    assert load_config(path, env={}).content == b'{"tools_limit": 5}'


def test_the_key_locator_is_not_fooled_by_strings_with_braces_and_escapes() -> None:
    text = '{"a": "}{\\"[", "b": {"c": [1, {"d": "x"}]},\n "e\\"": {}}'
    lines = key_lines(text)
    assert lines[("b", "c", 1, "d")] == 1
    assert lines[('e"',)] == 2


def test_paths_come_from_flags_then_environment_then_the_default(tmp_path: Path) -> None:
    env = {"MCPPROXY_DATA_DIR": str(tmp_path / "env-data"), "MCPPROXY_CONFIG": str(tmp_path / "env.json")}
    assert resolve_paths(None, None, env) == (tmp_path / "env.json", tmp_path / "env-data")
    assert resolve_paths(str(tmp_path / "flag.json"), str(tmp_path / "flag-data"), env) == (
        tmp_path / "flag.json",
        tmp_path / "flag-data",
    )
    config, data = resolve_paths(None, str(tmp_path / "d"), {})
    assert config == config_path_for(data) == tmp_path / "d" / CONFIG_FILE_NAME
    assert resolve_paths(None, None, {})[1] == Path.home() / ".mcpproxy"


@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e999"])
def test_a_file_holding_a_non_finite_timeout_fails_to_load_naming_the_key(tmp_path: Path, number: str) -> None:
    # Python's JSON parser reads Infinity and NaN (and 1e999 as infinity); the settings must refuse them.
    top = load_error(write(tmp_path, f'{{\n  "listen": "127.0.0.1:8080",\n  "call_timeout": {number}\n}}\n'))
    assert top.message == "config error at call_timeout (line 3): Input should be a finite number"
    assert (top.key, top.line) == ("call_timeout", 3)
    text = f'{{"mcpServers": {{\n  "inf1": {{"command": "x",\n    "connect_timeout": {number}}}}}}}\n'
    server = load_error(write(tmp_path, text))
    assert server.message == "config error at mcpServers.inf1.connect_timeout (line 3): Input should be a finite number"
    assert (server.key, server.line) == ("mcpServers.inf1.connect_timeout", 3)


def test_a_non_finite_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, env={"MCPPROXY_BACKOFF_MAX": "inf"})
    assert info.value.message == (
        "config error at backoff_max (from MCPPROXY_BACKOFF_MAX='inf'): Input should be a finite number"
    )
