"""The OS keyring secret backend (macOS Keychain, Windows Credential Locker, Secret Service, KWallet).

Design: each secret is one keyring entry of service ``mcpproxy`` whose user name is the secret's
name. A keyring cannot enumerate its entries, so the sorted list of names is one more entry
(user name ``INDEX_ENTRY``, which no secret name can take since names have no ``:``), updated on
every set and delete. ``usable_keyring`` decides whether there is a keyring at all: the
``keyring`` package answers a headless Linux box with ``fail.Keyring`` (or ``null.Keyring``, or
a chainer with nothing to chain), detected without a round trip; a real backend must then answer
a read of the index, so a locked or unreachable keyring (no D-Bus session) falls back too
instead of failing every later call. Errors of the keyring become ``ConfigError``s that name
the backend, never a value.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from mcpproxy.errors import ConfigError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend as OsKeyring

SERVICE = "mcpproxy"
INDEX_ENTRY = "mcpproxy:index"


def backend_name(keyring: OsKeyring) -> str:
    """A readable name for a keyring backend: ``SecretService Keyring``, ``macOS Keyring``..."""
    name = getattr(keyring, "name", None)
    return str(name) if name else f"{type(keyring).__module__}.{type(keyring).__name__}"


def usable_keyring() -> tuple[OsKeyring | None, str]:
    """The OS keyring if there is a working one, and a sentence saying why (or why not)."""
    try:
        import keyring
        from keyring.backends import chainer, fail, null
        from keyring.errors import KeyringError
    except ImportError:  # pragma: no cover - a declared dependency; kept for trimmed installs
        return None, "the keyring package is not installed"
    try:
        found = keyring.get_keyring()
    except Exception as exc:  # noqa: BLE001 - a broken keyring configuration means: no keyring
        return None, f"the keyring package found no usable backend ({type(exc).__name__})"
    if isinstance(found, fail.Keyring | null.Keyring) or (
        isinstance(found, chainer.ChainerBackend) and not found.backends
    ):
        return None, "no OS keyring is available on this machine"
    try:
        found.get_password(SERVICE, INDEX_ENTRY)
    except (KeyringError, OSError, RuntimeError) as exc:
        return None, f"the OS keyring ({backend_name(found)}) does not answer ({type(exc).__name__})"
    return found, "an OS keyring is available"


class KeyringBackend:
    """Secrets as entries of the OS keyring, service ``mcpproxy``.

    Args:
        keyring: The keyring backend to use (from ``usable_keyring``).
        service: The service name the entries are filed under.
    """

    kind = "keyring"

    def __init__(self, keyring: OsKeyring, *, service: str = SERVICE) -> None:
        self._keyring = keyring
        self.service = service

    @property
    def label(self) -> str:
        return f"OS keyring ({backend_name(self._keyring)}, service {self.service!r})"

    def get(self, name: str) -> str | None:
        with self._errors("read"):
            return self._keyring.get_password(self.service, name)

    def set(self, name: str, value: str) -> None:
        with self._errors("write"):
            self._keyring.set_password(self.service, name, value)
            names = set(self.names())
            if name not in names:
                self._write_index(names | {name})

    def delete(self, name: str) -> bool:
        from keyring.errors import PasswordDeleteError

        with self._errors("write"):
            names = set(self.names())
            try:
                self._keyring.delete_password(self.service, name)
                deleted = True
            except PasswordDeleteError:
                deleted = False
            if name in names:
                self._write_index(names - {name})
            return deleted

    def names(self) -> list[str]:
        with self._errors("read"):
            raw = self._keyring.get_password(self.service, INDEX_ENTRY)
        try:
            names = json.loads(raw) if raw else []
        except ValueError:
            names = []
        return sorted(n for n in names if isinstance(n, str)) if isinstance(names, list) else []

    def _write_index(self, names: Iterable[str]) -> None:
        self._keyring.set_password(self.service, INDEX_ENTRY, json.dumps(sorted(names)))

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Keyring failures as a ``ConfigError`` naming the backend (the type only: messages may echo input)."""
        from keyring.errors import KeyringError

        try:
            yield
        except (KeyringError, OSError, RuntimeError) as exc:
            raise ConfigError(f"cannot {what} the {self.label}: {type(exc).__name__}") from None
