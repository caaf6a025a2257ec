"""References in a server's env, headers, args and url are resolved for a connection, never stored."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from mcpproxy.errors import ConfigError, SecretNotFound
from mcpproxy.secrets.masking import is_known, mask_known
from mcpproxy.secrets.refs import Reference, find_references, substitute
from mcpproxy.secrets.resolve import resolve_spec, spec_references
from mcpproxy.secrets.store import SecretStore
from mcpproxy.settings import ServerSpec
from mcpproxy.upstream.errors import describe
from mcpproxy.upstream.transports import ENV_ALLOWLIST, resolve_references


def unique(prefix: str = "val") -> str:
    """A value no other test (or log line) contains."""
    return f"{prefix}-{secrets.token_hex(12)}"


def spec(**extra: Any) -> ServerSpec:
    return ServerSpec.model_validate({"name": "svc", "command": "svc-server", **extra})


@pytest.fixture
def store(tmp_path: Path) -> SecretStore:
    return SecretStore(tmp_path / "data")


def test_both_sources_are_found_in_order_and_other_dollar_braces_are_plain_text() -> None:
    text = "a ${env:HOME_DIR} b ${keyring:gh.token-1} ${HOME} ${vault:x} ${keyring}"
    assert find_references(text) == [Reference("env", "HOME_DIR"), Reference("keyring", "gh.token-1")]
    assert str(Reference("keyring", "gh.token-1")) == "${keyring:gh.token-1}"


def test_a_doubled_dollar_is_a_literal_reference_text() -> None:
    assert find_references("$${keyring:NAME}") == []
    assert substitute("pre $${keyring:NAME} post", {}) == "pre ${keyring:NAME} post"


@pytest.mark.parametrize("text", ["${keyring:}", "${keyring:has space}", "${env:1ABC}", "${env:A-B}", "${keyring:.x}"])
def test_a_reference_with_an_invalid_name_is_a_config_error_naming_it(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        find_references(text, where="env.X")
    assert text in caught.value.message
    assert "env.X" in caught.value.message


def test_references_in_env_headers_args_and_url_are_replaced_and_the_configured_spec_keeps_them(
    store: SecretStore,
) -> None:
    token, from_env = unique("tok"), unique("env")
    store.set("TOKEN", token)
    configured = ServerSpec.model_validate(
        {
            "name": "remote",
            "url": "http://127.0.0.1:9/mcp?key=${keyring:TOKEN}",
            "headers": {"Authorization": "Bearer ${keyring:TOKEN}", "X-From-Env": "${env:FROM_ENV}"},
        }
    )
    resolved = resolve_spec(configured, store, environ={"FROM_ENV": from_env})
    assert resolved.url == f"http://127.0.0.1:9/mcp?key={token}"
    assert resolved.headers == {"Authorization": f"Bearer {token}", "X-From-Env": from_env}
    assert configured.headers["Authorization"] == "Bearer ${keyring:TOKEN}"
    assert configured.url == "http://127.0.0.1:9/mcp?key=${keyring:TOKEN}"
    assert token not in str(configured.to_config())

    stdio = spec(args=["--token", "${keyring:TOKEN}", "--user=${env:FROM_ENV}"], env={"API_KEY": "${keyring:TOKEN}"})
    resolved_stdio = resolve_spec(stdio, store, environ={"FROM_ENV": from_env})
    assert resolved_stdio.args == ("--token", token, f"--user={from_env}")
    assert resolved_stdio.env == {"API_KEY": token}
    assert spec_references(stdio) == [
        ("env.API_KEY", Reference("keyring", "TOKEN")),
        ("args[1]", Reference("keyring", "TOKEN")),
        ("args[2]", Reference("env", "FROM_ENV")),
    ]


def test_env_references_read_the_environment_at_resolve_time(store: SecretStore) -> None:
    environ = {"ROTATING": unique("first")}
    configured = spec(env={"X": "${env:ROTATING}"})
    first = resolve_spec(configured, store, environ=environ).env["X"]
    environ["ROTATING"] = unique("second")
    assert resolve_spec(configured, store, environ=environ).env["X"] == environ["ROTATING"] != first


def test_a_secret_set_after_a_failed_resolution_is_used_at_the_next_one(store: SecretStore) -> None:
    configured = spec(env={"API_KEY": "${keyring:LATE}"})
    with pytest.raises(SecretNotFound):
        resolve_spec(configured, store)
    value = unique("late")
    store.set("LATE", value)
    assert resolve_spec(configured, store).env["API_KEY"] == value


def test_a_missing_keyring_secret_names_the_reference_where_it_sits_and_how_to_set_it(store: SecretStore) -> None:
    store.set("OTHER", unique("other"))
    with pytest.raises(SecretNotFound) as caught:
        resolve_spec(spec(env={"API_KEY": "${keyring:MISSING_ONE}"}), store)
    err = caught.value
    assert "${keyring:MISSING_ONE}" in err.message
    assert "env.API_KEY" in err.message
    assert "encrypted file" in err.message
    assert err.hint is not None and "mcpproxy secrets set MISSING_ONE" in err.hint
    assert err.key == "mcpServers.svc.env.API_KEY"
    assert err.to_dict()["error"] == "secret_not_found"


def test_a_missing_env_variable_names_it_and_suggests_the_store(store: SecretStore) -> None:
    with pytest.raises(SecretNotFound) as caught:
        resolve_spec(spec(args=["${env:NOT_IN_ENV}"]), store, environ={})
    assert "${env:NOT_IN_ENV} in args[0]" in caught.value.message
    assert caught.value.hint is not None and "${keyring:NOT_IN_ENV}" in caught.value.hint


def test_the_reason_the_upstream_layer_shows_for_a_missing_secret_is_the_errors_own_words(tmp_path: Path) -> None:
    with pytest.raises(SecretNotFound) as caught:
        resolve_references(spec(env={"API_KEY": "${keyring:NOPE}"}), tmp_path / "data")
    reason = describe(caught.value)
    assert reason.startswith("${keyring:NOPE} in env.API_KEY cannot be resolved: no secret named NOPE")
    assert "SecretNotFound" not in reason


def test_the_store_is_opened_only_when_a_keyring_reference_needs_it() -> None:
    def no_store() -> SecretStore:
        raise AssertionError("the store was opened")

    configured = spec(env={"A": "${env:SOME}", "B": "plain"}, args=["$${keyring:LITERAL}"])
    some = unique("some")
    resolved = resolve_spec(configured, no_store, environ={"SOME": some})
    assert resolved.env == {"A": some, "B": "plain"}
    assert resolved.args == ("${keyring:LITERAL}",)


def test_a_spec_without_references_comes_back_as_the_same_object(store: SecretStore) -> None:
    configured = spec(env={"PLAIN": "x"}, args=["${HOME}"])
    assert resolve_spec(configured, store) is configured


def test_resolved_values_are_registered_for_masking_but_public_variables_are_not(store: SecretStore) -> None:
    token, home = unique("tok"), f"/home/{unique('user')}"
    store.set("REG_TOKEN", token)
    configured = spec(env={"K": "${keyring:REG_TOKEN}", "H": "${env:HOME}"})
    resolve_spec(configured, store, environ={"HOME": home}, public_env=ENV_ALLOWLIST)
    assert is_known(token)
    assert not is_known(home)
    assert token not in mask_known(f"connecting with {token} from {home}")
    assert home in mask_known(f"connecting with {token} from {home}")


def test_literal_values_of_secret_named_keys_are_registered_with_the_credential_on_its_own(
    store: SecretStore,
) -> None:
    literal_key, bearer, plain = unique("lit"), unique("bearer"), unique("plain")
    resolve_spec(
        ServerSpec.model_validate(
            {
                "name": "h",
                "url": "http://127.0.0.1:9/mcp",
                "headers": {"X-Api-Key": literal_key, "Authorization": f"Bearer {bearer}", "X-Trace": plain},
            }
        ),
        store,
    )
    assert is_known(literal_key)
    assert is_known(bearer)
    assert not is_known(plain)
