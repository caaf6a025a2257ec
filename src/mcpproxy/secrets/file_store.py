"""The encrypted file secret backend, for machines without an OS keyring (headless servers).

Design: all secrets sit in one file, ``<data_dir>/secrets.enc``: a Fernet token (AES-128-CBC
with HMAC-SHA256, from ``cryptography``) of the JSON object ``{"version": 1, "secrets": {NAME:
VALUE}}``. The key is ``<data_dir>/secrets.key``, created on the first ``set`` with mode 0600
(``O_EXCL``, so two processes never write two keys) in a data dir of mode 0700; a key file other
users can read is refused rather than used, like ssh does with private keys. This protects the
secrets from backups, synced folders and stray ``cat``s of the config, not from a process running
as the same user (which can read the key too); that is what an OS keyring adds. Writes are
atomic and durable: a temporary file in the same directory (mode 0600), ``fsync``, ``os.replace``,
``fsync`` of the directory. A read-modify-write holds an exclusive ``flock`` on
``<data_dir>/secrets.lock`` so that concurrent ``mcpproxy secrets set`` runs lose no update;
readers need no lock because a replace is atomic. A file that does not decrypt with the key is
reported, never overwritten, and so is a ``secrets.enc`` whose key has gone missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from mcpproxy.errors import ConfigError
from mcpproxy.store.files import atomic_write, fsync_directory

SECRETS_FILE = "secrets.enc"
KEY_FILE = "secrets.key"
LOCK_FILE = "secrets.lock"
FILE_MODE = 0o600
DIR_MODE = 0o700
FORMAT_VERSION = 1

if sys.platform != "win32":
    import fcntl


class EncryptedFileBackend:
    """Secrets in ``secrets.enc``, encrypted with the key in ``secrets.key`` (both in ``data_dir``).

    Args:
        data_dir: The gateway's data directory.
    """

    kind = "file"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / SECRETS_FILE
        self.key_path = data_dir / KEY_FILE
        self._lock_path = data_dir / LOCK_FILE

    @property
    def label(self) -> str:
        return f"encrypted file {self.path}"

    # -- the backend API -------------------------------------------------------------------------

    def get(self, name: str) -> str | None:
        return self._read().get(name)

    def set(self, name: str, value: str) -> None:
        with self._locked():
            secrets = self._read(create_key=True)
            secrets[name] = value
            self._write(secrets)

    def delete(self, name: str) -> bool:
        with self._locked():
            secrets = self._read()
            if name not in secrets:
                return False
            del secrets[name]
            self._write(secrets)
            return True

    def names(self) -> list[str]:
        return sorted(self._read())

    # -- the files -------------------------------------------------------------------------------

    def _fernet(self, *, create: bool) -> Fernet | None:
        key = self._read_key()
        if key is None:
            if not create:
                return None
            key = self._create_key()
        try:
            return Fernet(key)
        except ValueError:
            raise ConfigError(f"the secrets key {self.key_path} is not a valid key") from None

    def _read_key(self) -> bytes | None:
        try:
            fd = os.open(self.key_path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read the secrets key {self.key_path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            if os.name == "posix" and mode & 0o077:
                raise ConfigError(
                    f"the secrets key {self.key_path} can be read by other users (mode {mode:o})",
                    hint=f"run `chmod 600 {self.key_path}`",
                )
            return handle.read().strip()

    def _create_key(self) -> bytes:
        if self.path.exists():
            raise ConfigError(
                f"{self.path} exists but its key {self.key_path} is missing; its secrets cannot be read",
                hint=f"restore {self.key_path}, or move {self.path} away to start an empty store",
            )
        key = Fernet.generate_key()
        self._ensure_dir()
        try:
            fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:  # another process made it a moment ago: use that one
            existing = self._read_key()
            if existing is None:
                raise ConfigError(f"the secrets key {self.key_path} vanished while it was created") from None
            return existing
        except OSError as exc:
            raise ConfigError(f"cannot create the secrets key {self.key_path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        fsync_directory(self.data_dir)
        return key

    def _read(self, *, create_key: bool = False) -> dict[str, str]:
        try:
            token = self.path.read_bytes()
        except FileNotFoundError:
            if create_key:
                self._fernet(create=True)
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        fernet = self._fernet(create=False)
        if fernet is None:
            raise ConfigError(
                f"{self.path} exists but its key {self.key_path} is missing; its secrets cannot be read",
                hint=f"restore {self.key_path}, or move {self.path} away to start an empty store",
            )
        try:
            document: Any = json.loads(fernet.decrypt(token))
        except InvalidToken:
            raise ConfigError(
                f"{self.path} does not decrypt with the key in {self.key_path} (was the key replaced?)",
                hint="restore the key the file was written with; the file is left as it is",
            ) from None
        except ValueError:
            raise ConfigError(f"{self.path} decrypts but does not hold secrets; it is left as it is") from None
        secrets = document.get("secrets") if isinstance(document, dict) else None
        if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
            raise ConfigError(f"{self.path} decrypts but does not hold secrets; it is left as it is")
        return {str(k): v for k, v in secrets.items()}

    def _write(self, secrets: dict[str, str]) -> None:
        fernet = self._fernet(create=True)
        assert fernet is not None
        token = fernet.encrypt(json.dumps({"version": FORMAT_VERSION, "secrets": secrets}).encode("utf-8"))
        self._ensure_dir()
        try:
            atomic_write(self.path, token, FILE_MODE)
        except OSError as exc:
            raise ConfigError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def _ensure_dir(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        except OSError as exc:
            raise ConfigError(f"cannot create the data dir {self.data_dir}: {exc.strerror or exc}") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if sys.platform == "win32":  # no flock there; single writers are the norm
            yield
            return
        self._ensure_dir()
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

