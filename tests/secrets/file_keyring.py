"""A real ``keyring`` backend for tests: entries in a JSON file named by ``TEST_KEYRING_FILE``.

Selected with ``PYTHON_KEYRING_BACKEND=tests.secrets.file_keyring.JsonFileKeyring`` (the way
users pick a backend), it lets the keyring path of the secret store run in real processes on a
machine without an OS keyring, and never touches the keyring of the user running the tests.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError

FILE_ENV = "TEST_KEYRING_FILE"
BACKEND = "tests.secrets.file_keyring.JsonFileKeyring"


class JsonFileKeyring(KeyringBackend):
    """Entries ``{service: {username: password}}`` in one JSON file."""

    # Below keyring's own fail.Keyring (0): never chosen by discovery in a process that merely
    # imported this module, only when PYTHON_KEYRING_BACKEND names it.
    priority = -1
    name = "test JSON file keyring"

    @property
    def path(self) -> Path:
        return Path(os.environ[FILE_ENV])

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        data: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data

    def _save(self, data: dict[str, dict[str, str]]) -> None:
        self.path.write_text(json.dumps(data), encoding="utf-8")

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(service, {}).get(username)

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data.setdefault(service, {})[username] = password
        self._save(data)

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if username not in data.get(service, {}):
            raise PasswordDeleteError(username)
        del data[service][username]
        self._save(data)
