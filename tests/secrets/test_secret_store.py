"""The secret store: an encrypted file with a 0600 key on a machine without a keyring, or the OS keyring."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import anyio
import pytest

from mcpproxy.errors import ConfigError, InvalidArguments
from mcpproxy.secrets.file_store import KEY_FILE, SECRETS_FILE, EncryptedFileBackend
from mcpproxy.secrets.keyring_store import INDEX_ENTRY, SERVICE, KeyringBackend
from mcpproxy.secrets.store import BACKEND_ENV, SecretStore, choose_backend
from tests.secrets.file_keyring import FILE_ENV, JsonFileKeyring
from tests.secrets.support import cli_env, secrets_cli
from tests.support.gateway import mcpproxy_argv
from tests.support.procs import child_env

VALUE = "s3cr3t-value-for-the-store-0123456789"


def file_store(tmp_path: Path) -> SecretStore:
    data = tmp_path / "data"
    return SecretStore(data, backend=EncryptedFileBackend(data))


def test_a_secret_set_is_read_back_listed_and_deleted_by_a_fresh_store(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("B_TOKEN", VALUE)
    store.set("a.key-1", "other")
    again = file_store(tmp_path)
    assert again.get("B_TOKEN") == VALUE
    assert again.list() == ["B_TOKEN", "a.key-1"]
    assert again.delete("B_TOKEN") is True
    assert again.delete("B_TOKEN") is False
    assert file_store(tmp_path).get("B_TOKEN") is None
    assert file_store(tmp_path).list() == ["a.key-1"]


def test_setting_a_secret_again_replaces_its_value(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("TOKEN", "first-value")
    store.set("TOKEN", "second-value")
    assert store.get("TOKEN") == "second-value"
    assert store.list() == ["TOKEN"]


def test_an_empty_store_reads_as_empty_and_creates_no_file(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    assert store.get("ANY") is None
    assert store.list() == []
    assert store.delete("ANY") is False
    assert not (tmp_path / "data" / KEY_FILE).exists()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_the_file_is_encrypted_and_the_key_and_the_file_are_0600_in_a_0700_dir(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("TOKEN", VALUE)
    data = tmp_path / "data"
    assert VALUE.encode() not in (data / SECRETS_FILE).read_bytes()
    assert b"TOKEN" not in (data / SECRETS_FILE).read_bytes()
    assert stat.S_IMODE((data / KEY_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE((data / SECRETS_FILE).stat().st_mode) == 0o600
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert sorted(p.name for p in data.iterdir() if p.name.endswith(".tmp")) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_a_key_other_users_can_read_is_refused_not_used(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("TOKEN", VALUE)
    (tmp_path / "data" / KEY_FILE).chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        file_store(tmp_path).get("TOKEN")
    assert "can be read by other users" in caught.value.message
    assert caught.value.hint is not None and "chmod 600" in caught.value.hint


def test_a_file_that_does_not_decrypt_with_the_key_is_reported_and_left_alone(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("TOKEN", VALUE)
    data = tmp_path / "data"
    before = (data / SECRETS_FILE).read_bytes()
    other = tmp_path / "other"
    file_store(other).set("X", "another-value")
    (data / KEY_FILE).write_bytes((other / "data" / KEY_FILE).read_bytes())
    with pytest.raises(ConfigError) as read_error:
        file_store(tmp_path).get("TOKEN")
    with pytest.raises(ConfigError) as write_error:
        file_store(tmp_path).set("NEW", "value-1234")
    for caught in (read_error, write_error):
        assert "does not decrypt" in caught.value.message
        assert VALUE not in str(caught.value)
    assert (data / SECRETS_FILE).read_bytes() == before


def test_secrets_whose_key_is_gone_are_never_overwritten_with_a_new_key(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.set("TOKEN", VALUE)
    data = tmp_path / "data"
    before = (data / SECRETS_FILE).read_bytes()
    (data / KEY_FILE).unlink()
    with pytest.raises(ConfigError) as caught:
        file_store(tmp_path).set("NEW", "value-1234")
    assert "key" in caught.value.message and "missing" in caught.value.message
    assert (data / SECRETS_FILE).read_bytes() == before
    assert not (data / KEY_FILE).exists()


@pytest.mark.parametrize("name", ["", "has space", "-flag", ".hidden", "a/b", "x" * 129, "${keyring:X}"])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidArguments):
        file_store(tmp_path).set(name, VALUE)
    with pytest.raises(InvalidArguments):
        file_store(tmp_path).get(name)


def test_an_empty_value_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArguments):
        file_store(tmp_path).set("TOKEN", "")


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="flock")
async def test_concurrent_set_commands_in_separate_processes_lose_no_secret(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = child_env({BACKEND_ENV: "file", "HOME": str(tmp_path)})
    count = 8

    async def set_one(i: int) -> None:
        argv = mcpproxy_argv("--data-dir", str(data), "secrets", "set", f"NAME_{i}", "--value", f"value-number-{i}")
        done = await anyio.run_process(argv, env=env, check=False)
        assert done.returncode == 0, done.stderr.decode()

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(set_one, i)
    store = file_store(tmp_path)
    assert store.list() == sorted(f"NAME_{i}" for i in range(count))
    assert [store.get(f"NAME_{i}") for i in range(count)] == [f"value-number-{i}" for i in range(count)]


# -- choosing the backend -------------------------------------------------------------------------


def test_the_file_backend_is_used_when_asked_for(tmp_path: Path) -> None:
    choice = choose_backend(tmp_path, {BACKEND_ENV: "file"})
    assert choice.backend.kind == "file"
    assert choice.reason == f"{BACKEND_ENV}=file"


def test_an_existing_secrets_file_keeps_being_used_whatever_keyring_appears(tmp_path: Path) -> None:
    file_store(tmp_path).set("TOKEN", VALUE)
    choice = choose_backend(tmp_path / "data", {})
    assert choice.backend.kind == "file"
    assert "already holds" in choice.reason


def test_an_unknown_backend_setting_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        choose_backend(tmp_path, {BACKEND_ENV: "vault"})
    assert caught.value.key == BACKEND_ENV


@pytest.mark.anyio
async def test_without_an_os_keyring_the_encrypted_file_is_chosen_and_the_reason_is_printed(tmp_path: Path) -> None:
    env = cli_env(tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    code, out, err = await secrets_cli(tmp_path, env, "list")
    assert code == 0, err
    assert out.splitlines()[0] == (
        f"backend: encrypted file {tmp_path / 'data' / SECRETS_FILE} (no OS keyring is available on this machine)"
    )
    code, _, err = await secrets_cli(tmp_path, env, "set", "TOKEN", "--value", VALUE)
    assert code == 0, err
    assert (tmp_path / "data" / SECRETS_FILE).exists()


@pytest.mark.anyio
async def test_a_working_keyring_is_chosen_and_holds_the_secrets_and_their_index(tmp_path: Path) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = cli_env(tmp_path, PYTHON_KEYRING_BACKEND="tests.secrets.file_keyring.JsonFileKeyring")
    env[FILE_ENV] = str(keyring_file)
    code, out, err = await secrets_cli(tmp_path, env, "set", "TOKEN", "--value", VALUE)
    assert code == 0, err
    assert "OS keyring (test JSON file keyring" in out
    code, out, err = await secrets_cli(tmp_path, env, "list")
    assert code == 0, err
    assert out.splitlines()[0].startswith("backend: OS keyring (test JSON file keyring, service 'mcpproxy')")
    assert "(an OS keyring is available)" in out.splitlines()[0]
    assert not (tmp_path / "data" / SECRETS_FILE).exists()
    assert VALUE in keyring_file.read_text(encoding="utf-8")


@pytest.mark.anyio
async def test_asking_for_the_keyring_where_there_is_none_fails_clearly(tmp_path: Path) -> None:
    env = cli_env(tmp_path, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring", **{BACKEND_ENV: "keyring"})
    code, _, err = await secrets_cli(tmp_path, env, "list")
    assert code == 5
    assert f"{BACKEND_ENV}=keyring but no OS keyring is available" in err


def test_the_keyring_backend_keeps_an_index_of_names_beside_the_entries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FILE_ENV, str(tmp_path / "keyring.json"))
    os_keyring = JsonFileKeyring()  # type: ignore[no-untyped-call]  # keyring's __init__ has no annotations
    store = SecretStore(tmp_path, backend=KeyringBackend(os_keyring))
    store.set("B", "value-of-b")
    store.set("A", "value-of-a")
    store.set("A", "value-of-a2")
    assert store.list() == ["A", "B"]
    assert os_keyring.get_password(SERVICE, "A") == "value-of-a2"
    assert store.delete("A") is True
    assert store.delete("A") is False
    assert store.list() == ["B"]
    assert os_keyring.get_password(SERVICE, INDEX_ENTRY) == '["B"]'
    assert store.backend == "keyring"
