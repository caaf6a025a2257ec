"""Stores opened in this process use the encrypted file: a test never reaches the user's keyring.

Tests of the keyring path run ``mcpproxy`` processes with a keyring of their own (``file_keyring``).
"""

from __future__ import annotations

import pytest

from mcpproxy.secrets.store import BACKEND_ENV


@pytest.fixture(autouse=True)
def _file_secret_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BACKEND_ENV, "file")
