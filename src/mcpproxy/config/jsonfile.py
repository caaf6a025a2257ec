"""JSON config documents that remember where each key is.

Pydantic reports a validation error by location (``("mcpServers", "time", "args")``) and
``json`` forgets positions, so a user would have to hunt for the key. :func:`key_lines`
walks the JSON text once and maps every key path to the line its key (or array element)
starts on, which :mod:`mcpproxy.config.validation` uses to name the line of a bad key.
The walker skips strings escape by escape, so braces, quotes and backslashes inside
strings cannot confuse it. It only runs on text ``json.loads`` accepted.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from mcpproxy.errors import ConfigError

KeyPath = tuple[str | int, ...]

# Keys that settings.py accepts under another spelling; an error reported under the
# canonical name is located at whichever spelling the file used.
_KEY_SPELLINGS: Mapping[str, tuple[str, ...]] = {
    "mcpServers": ("servers",),
    "working_dir": ("cwd",),
    "enabled": ("disabled",),
    "transport": ("type",),
}
_WS = " \t\r\n"


@dataclass(frozen=True)
class JsonDocument:
    """A parsed JSON object together with its text.

    Attributes:
        data: The parsed top-level object.
        text: The decoded text ("" for a missing or empty file).
        content: The raw bytes as read (used for change detection).
        path: Where it was read from, if a file.
    """

    data: dict[str, Any]
    text: str = ""
    content: bytes = b""
    path: Path | None = None

    @cached_property
    def _lines(self) -> dict[KeyPath, int]:
        return key_lines(self.text) if self.text else {}

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """Line of the key at ``loc``, or of its nearest enclosing key that is in the text."""
        lines = self._lines
        loc = tuple(loc)
        while loc:
            for candidate in _spellings(loc):
                if candidate in lines:
                    return lines[candidate]
            loc = loc[:-1]
        return lines.get(())


def _spellings(loc: KeyPath) -> Iterator[KeyPath]:
    yield loc
    last = loc[-1]
    if isinstance(last, str):
        for alt in _KEY_SPELLINGS.get(last, ()):
            yield (*loc[:-1], alt)


def parse_json_object(content: bytes, *, path: Path | None = None) -> JsonDocument:
    """Parse ``content`` as a JSON object; empty content is an empty object.

    Raises:
        ConfigError: Not UTF-8, a syntax error (with line and column), or not an object.
    """
    where = f" in {path}" if path else ""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise ConfigError(f"config error (line {line}): the file is not UTF-8 text", line=line) from exc
    if not text.strip():
        return JsonDocument(data={}, text="", content=content, path=path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"config error (line {exc.lineno}, column {exc.colno}): invalid JSON: {exc.msg}",
            line=exc.lineno,
            hint=f"fix the JSON syntax{where}",
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError("config error (line 1): the config must be a JSON object ({...})", line=1, hint=f"fix{where}")
    return JsonDocument(data=data, text=text, content=content, path=path)


def read_json_file(path: Path) -> JsonDocument | None:
    """Read and parse a JSON object file; ``None`` when the file does not exist.

    Raises:
        ConfigError: The file cannot be read or is not a JSON object.
    """
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    return parse_json_object(content, path=path)


def key_lines(text: str) -> dict[KeyPath, int]:
    """Map every key path of a JSON text to the 1-based line where it starts.

    Object members are located at their key, array elements at their first character; the
    root is ``()``. For duplicate keys the last one wins, as in ``json.loads``.
    """
    newlines = [i for i, ch in enumerate(text) if ch == "\n"]
    out: dict[KeyPath, int] = {}

    def line(pos: int) -> int:
        return bisect.bisect_left(newlines, pos) + 1

    def string(pos: int) -> tuple[str, int]:
        end = pos + 1
        while text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        decoded: str = json.loads(text[pos : end + 1])
        return decoded, end + 1

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in _WS:
            pos += 1
        return pos

    def value(pos: int, path: KeyPath) -> int:
        pos = skip(pos)
        char = text[pos]
        if char == "{":
            pos = skip(pos + 1)
            if text[pos] == "}":
                return pos + 1
            while True:
                key_start = skip(pos)
                key, pos = string(key_start)
                out[(*path, key)] = line(key_start)
                pos = skip(pos) + 1  # the ':'
                pos = skip(value(pos, (*path, key)))
                if text[pos] == "}":
                    return pos + 1
                pos += 1  # the ','
        if char == "[":
            pos = skip(pos + 1)
            if text[pos] == "]":
                return pos + 1
            index = 0
            while True:
                pos = skip(pos)
                out[(*path, index)] = line(pos)
                pos = skip(value(pos, (*path, index)))
                if text[pos] == "]":
                    return pos + 1
                pos += 1
                index += 1
        if char == '"':
            return string(pos)[1]
        match = re.compile(r"[^,\]}\s]+").match(text, pos)
        return match.end() if match else pos + 1

    text_start = skip(0)
    if text_start < len(text):
        out[()] = line(text_start)
        with contextlib.suppress(IndexError, ValueError):  # invalid JSON: keep what was found
            value(text_start, ())
    return out
