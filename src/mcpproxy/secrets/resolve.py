"""Resolving a server's secret references, right before it is connected.

Design: ``resolve_spec`` returns a copy of a ``ServerSpec`` whose ``env`` values, ``headers``
values, ``args`` and ``url`` have their ``${env:NAME}`` / ``${keyring:NAME}`` references
replaced (names and keys are never resolved). The upstream layer calls it for every connection
attempt and hands the copy to the transport only: the spec the gateway keeps, writes to the
config file and shows in listings holds the references, so no resolved value is ever persisted,
and a secret set or rotated with ``mcpproxy secrets set`` is used at the next connection.
``${env:NAME}`` reads mcpproxy's own environment at that moment; ``${keyring:NAME}`` reads the
``SecretStore`` (opened only when a keyring reference is present, each name read once). A
reference without a value raises ``SecretNotFound`` naming the reference and where it sits
(``env.API_KEY``), never a value; the upstream layer turns it into the server's error state.
Every resolved value is registered for masking, except values of variables every stdio server
gets anyway (``public_env``: ``HOME``, ``PATH``, ...), which are not secrets and would mask
every path in the logs; literal values of env variables and headers whose name says they are
secret are registered too (with the credential after ``Bearer``/``Basic``/``token`` on its own).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping

from mcpproxy.errors import SecretNotFound
from mcpproxy.filters.secrets import is_secret_key
from mcpproxy.secrets import masking
from mcpproxy.secrets.refs import Reference, find_references, has_references, substitute
from mcpproxy.secrets.store import SecretStore
from mcpproxy.settings import ServerSpec

_CREDENTIAL = re.compile(r"(?i:bearer|basic|token|bot)\s+(?P<value>\S.*)", re.DOTALL)


class _Resolver:
    def __init__(
        self,
        server: str,
        store: SecretStore | Callable[[], SecretStore],
        environ: Mapping[str, str],
        public_env: Collection[str],
    ) -> None:
        self.server = server
        self._store = store
        self._environ = environ
        self._public_env = frozenset(public_env)
        self._values: dict[Reference, str] = {}
        self.secrets: list[str] = []

    def store(self) -> SecretStore:
        if not isinstance(self._store, SecretStore):
            self._store = self._store()
        return self._store

    def text(self, text: str, where: str) -> str:
        if "${" not in text:
            return text
        for ref in find_references(text, where=where):
            if ref not in self._values:
                self._values[ref] = self._lookup(ref, where)
        return substitute(text, self._values, where=where)

    def _lookup(self, ref: Reference, where: str) -> str:
        key = f"mcpServers.{self.server}.{where}"
        if ref.source == "env":
            value = self._environ.get(ref.name)
            if value is None:
                raise SecretNotFound(
                    f"{ref} in {where} cannot be resolved: mcpproxy's environment has no variable {ref.name}",
                    key=key,
                    hint=f"set {ref.name} where mcpproxy starts, or store it with `mcpproxy secrets set {ref.name}` "
                    f"and write ${{keyring:{ref.name}}}",
                )
            if ref.name not in self._public_env:
                self.secrets.append(value)
            return value
        store = self.store()
        found = store.get(ref.name)
        if found is None:
            raise SecretNotFound(
                f"{ref} in {where} cannot be resolved: no secret named {ref.name} in the {store.backend_label}",
                key=key,
                hint=f"store it with `mcpproxy secrets set {ref.name}`; the server retries by itself "
                f"(or `mcpproxy upstream restart {self.server}`)",
            )
        self.secrets.append(found)
        return found

    def literal(self, key: str, value: str) -> None:
        """Register the literal value of a secret-named env variable or header."""
        if value and is_secret_key(key) and not has_references(value):
            self.secrets.append(value)
            credential = _CREDENTIAL.fullmatch(value)
            if credential:
                self.secrets.append(credential["value"])


def resolve_spec(
    spec: ServerSpec,
    store: SecretStore | Callable[[], SecretStore],
    *,
    environ: Mapping[str, str] | None = None,
    public_env: Collection[str] = (),
) -> ServerSpec:
    """``spec`` with every reference in its env, headers, args and url replaced by its value.

    Args:
        spec: The server entry as configured (it is not modified).
        store: The secret store, or a function opening it (called only for a keyring reference).
        environ: Where ``${env:NAME}`` is read; ``os.environ`` by default.
        public_env: Variables whose values are not secret (not registered for masking).

    Returns:
        A copy to hand to the transport (the same object when nothing needed resolving); never
        store it.

    Raises:
        SecretNotFound: A reference has no value; the message names it and where it sits.
        ConfigError: A reference is malformed, or the secret store cannot be read.
    """
    resolver = _Resolver(spec.name, store, os.environ if environ is None else environ, public_env)
    env = {k: resolver.text(v, f"env.{k}") for k, v in spec.env.items()}
    headers = {k: resolver.text(v, f"headers.{k}") for k, v in spec.headers.items()}
    args = tuple(resolver.text(a, f"args[{i}]") for i, a in enumerate(spec.args))
    url = resolver.text(spec.url, "url") if spec.url is not None else None
    for key, value in (*spec.env.items(), *spec.headers.items()):
        resolver.literal(key, value)
    masking.register(resolver.secrets)
    if (env, headers, args, url) == (spec.env, spec.headers, spec.args, spec.url):
        return spec
    return spec.model_copy(update={"env": env, "headers": headers, "args": args, "url": url})


def spec_references(spec: ServerSpec) -> list[tuple[str, Reference]]:
    """Where each reference of ``spec`` sits (``env.API_KEY``, ``headers.Authorization``, ``args[2]``, ``url``)."""
    found: list[tuple[str, Reference]] = []
    places = [
        *((f"env.{k}", v) for k, v in spec.env.items()),
        *((f"headers.{k}", v) for k, v in spec.headers.items()),
        *((f"args[{i}]", a) for i, a in enumerate(spec.args)),
        *([("url", spec.url)] if spec.url is not None else []),
    ]
    for where, text in places:
        found += [(where, ref) for ref in find_references(text, where=where)]
    return found
