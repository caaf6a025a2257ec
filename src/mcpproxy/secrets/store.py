"""The secret store: ``SecretStore(data_dir)`` with ``get``, ``set``, ``delete`` and ``list``.

Design: one small API over two backends, chosen once per store on first use and kept with the
reason, which ``mcpproxy secrets list`` prints. ``MCPPROXY_SECRETS_BACKEND`` (``keyring`` or
``file``) forces a choice; ``auto`` (the default) keeps an existing ``secrets.enc`` in use (so
secrets never seem to vanish when a keyring appears later), else takes the OS keyring when the
``keyring`` package finds a working one, else the encrypted file in the data dir (a headless
machine). The keyring probe runs once per process. Names are checked here (``SECRET_NAME``),
values are never logged and never put in an error: failures name the store and the secret.
Reading a missing secret is ``None``, not an error: callers say what is missing and where.
"""

from __future__ import annotations

import builtins
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from mcpproxy.errors import ConfigError, InvalidArguments
from mcpproxy.secrets.refs import SECRET_NAME

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend as OsKeyring

BACKEND_ENV = "MCPPROXY_SECRETS_BACKEND"
"""``auto`` (default), ``keyring`` or ``file``."""

BackendKind = Literal["keyring", "file"]
_CHOICES = ("auto", "keyring", "file")


class SecretBackend(Protocol):
    """Where the values live; ``SecretStore`` checks names before calling it."""

    kind: str

    @property
    def label(self) -> str:
        """What the store is, for messages: ``encrypted file PATH``, ``OS keyring (...)``."""
        ...

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> bool: ...

    def names(self) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class BackendChoice:
    """The backend a store uses and why.

    Attributes:
        backend: The backend.
        reason: Why it was chosen, for ``mcpproxy secrets list``.
    """

    backend: SecretBackend
    reason: str


@functools.cache
def _os_keyring() -> tuple[OsKeyring | None, str]:
    from mcpproxy.secrets.keyring_store import usable_keyring

    return usable_keyring()


def choose_backend(data_dir: Path, environ: Mapping[str, str] | None = None) -> BackendChoice:
    """Pick the backend for ``data_dir`` (see the module docstring).

    Raises:
        ConfigError: ``MCPPROXY_SECRETS_BACKEND`` is invalid, or says ``keyring`` and there is none.
    """
    from mcpproxy.secrets.file_store import EncryptedFileBackend
    from mcpproxy.secrets.keyring_store import KeyringBackend

    environ = os.environ if environ is None else environ
    wanted = environ.get(BACKEND_ENV, "").strip().lower() or "auto"
    if wanted not in _CHOICES:
        raise ConfigError(
            f"{BACKEND_ENV}={wanted!r} is not a secret backend", key=BACKEND_ENV, hint="use auto, keyring or file"
        )
    file_backend = EncryptedFileBackend(data_dir)
    if wanted == "file":
        return BackendChoice(file_backend, f"{BACKEND_ENV}=file")
    if wanted == "auto" and file_backend.path.exists():
        return BackendChoice(file_backend, f"{file_backend.path.name} already holds this data dir's secrets")
    keyring, why = _os_keyring()
    if keyring is not None:
        return BackendChoice(KeyringBackend(keyring), f"{BACKEND_ENV}=keyring" if wanted == "keyring" else why)
    if wanted == "keyring":
        raise ConfigError(f"{BACKEND_ENV}=keyring but {why}", key=BACKEND_ENV, hint="use auto or file")
    return BackendChoice(file_backend, why)


class SecretStore:
    """The secrets of one gateway, in the OS keyring or an encrypted file in ``data_dir``.

    Args:
        data_dir: The gateway's data directory (the file backend lives there).
        backend: A backend to use instead of choosing one (tests, embedding).

    Opening a store is free; the backend is chosen on first use.
    """

    def __init__(self, data_dir: Path, *, backend: SecretBackend | None = None) -> None:
        self.data_dir = data_dir
        self._choice = BackendChoice(backend, "given") if backend is not None else None

    @property
    def choice(self) -> BackendChoice:
        if self._choice is None:
            self._choice = choose_backend(self.data_dir)
        return self._choice

    @property
    def backend(self) -> str:
        """``keyring`` or ``file``."""
        return self.choice.backend.kind

    @property
    def backend_label(self) -> str:
        """What the store is: ``encrypted file PATH`` or ``OS keyring (NAME, service 'mcpproxy')``."""
        return self.choice.backend.label

    @property
    def reason(self) -> str:
        """Why this backend is used."""
        return self.choice.reason

    def get(self, name: str) -> str | None:
        """The value of secret ``name``, or ``None`` when it is not set.

        Raises:
            InvalidArguments: ``name`` is not a valid secret name.
            ConfigError: The store cannot be read.
        """
        return self.choice.backend.get(_checked(name))

    def set(self, name: str, value: str) -> None:
        """Store ``value`` as secret ``name``, replacing any previous value.

        Raises:
            InvalidArguments: ``name`` is not a valid secret name, or ``value`` is empty.
            ConfigError: The store cannot be written.
        """
        _checked(name)
        if not value:
            raise InvalidArguments(f"the value of secret {name} is empty")
        self.choice.backend.set(name, value)

    def delete(self, name: str) -> bool:
        """Remove secret ``name``; ``False`` when there was none."""
        return self.choice.backend.delete(_checked(name))

    def list(self) -> builtins.list[str]:
        """The names of the stored secrets, sorted."""
        return self.choice.backend.names()


def _checked(name: str) -> str:
    if not SECRET_NAME.fullmatch(name):
        raise InvalidArguments(
            f"invalid secret name {name!r}",
            hint="use letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')",
        )
    return name
