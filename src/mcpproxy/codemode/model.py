"""What one execution is asked to do, the limits it runs under, and what it returns.

An :class:`ExecutionRequest` is the parsed arguments of ``code_execution``; :class:`Limits`
are the request's wishes clamped to the operator's settings; an :class:`ExecutionResult` is
the answer: ``ok``, the program's ``value`` (JSON), its ``stdout`` and ``stderr``, the
``error`` (type, message, line), one line per tool call and the duration. ``to_call_result``
turns it into an MCP tool result: structured content for programs, a readable text block for
people, ``isError`` when not ok. :class:`Output` collects a program's output under the output
limit and hands each complete line to a listener (progress notifications).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types

from mcpproxy.errors import InvalidArguments
from mcpproxy.routing.catalog import Tier
from mcpproxy.settings import Settings

LANGUAGES: tuple[str, ...] = ("python", "python-full", "typescript")
"""Every language ``code_execution`` knows (the settings choose which are offered)."""

LANGUAGE_ALIASES = {"py": "python", "ts": "typescript", "javascript": "typescript", "js": "typescript"}

MAX_CODE_CHARS = 200_000
"""Longest program accepted."""

MAX_INPUT_BYTES = 4 * 1024 * 1024
"""Largest ``input`` (as JSON) accepted."""

VALUE_PREVIEW_CHARS = 4000
"""Characters of the value and of each output stream shown in the text block."""


def enabled_languages(settings: Settings) -> tuple[str, ...]:
    """The languages the settings offer, in the canonical order."""
    wanted = {item.strip() for item in settings.code_languages.split(",") if item.strip()}
    return tuple(lang for lang in LANGUAGES if lang in wanted)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one execution may use.

    Attributes:
        timeout_s: Wall time, tool calls included.
        max_tool_calls: Tool calls the program may make.
        max_output_bytes: Bytes of stdout and stderr together (UTF-8).
        memory_bytes: Memory of the program.
        cpu_seconds: CPU time of a worker process.
    """

    timeout_s: float
    max_tool_calls: int
    max_output_bytes: int
    memory_bytes: int
    cpu_seconds: int

    @classmethod
    def from_settings(
        cls, settings: Settings, *, timeout_ms: int | None = None, max_tool_calls: int | None = None
    ) -> Limits:
        """The request's wishes, clamped to what the settings allow."""
        wall_ms = settings.code_timeout_ms if timeout_ms is None else timeout_ms
        wall_ms = max(1, min(wall_ms, settings.code_max_timeout_ms))
        cap = settings.code_max_tool_calls
        calls = cap if max_tool_calls is None else min(max_tool_calls, cap)
        return cls(
            timeout_s=wall_ms / 1000.0,
            max_tool_calls=max(0, calls),
            max_output_bytes=settings.code_max_output_bytes,
            memory_bytes=settings.code_memory_mb * 1024 * 1024,
            cpu_seconds=settings.code_cpu_seconds,
        )


def _optional_int(args: Mapping[str, Any], key: str, lo: int) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise InvalidArguments(f"'{key}' must be an integer of at least {lo}")
    return value


@dataclass(frozen=True, slots=True)
class ExecutionRequest:
    """The arguments of one ``code_execution`` call.

    Attributes:
        code: The program.
        language: ``python``, ``python-full`` or ``typescript``.
        input: A JSON value the program reads as ``input``.
        timeout_ms: Wall time asked for (``None``: the default).
        allowed_tools: Tool names (``server:tool``) and ``server:*`` patterns the program may
            call, on top of what the caller may call (``None``: everything the caller may call).
        max_tool_calls: Tool calls asked for at most (``None``: the setting).
        tier: The highest tier the program's calls may use.
    """

    code: str
    language: str = "python"
    input: Any = None
    timeout_ms: int | None = None
    allowed_tools: tuple[str, ...] | None = None
    max_tool_calls: int | None = None
    tier: Tier = Tier.DESTRUCTIVE

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> ExecutionRequest:
        """Parse and check the tool's arguments.

        Raises:
            InvalidArguments: A missing or malformed argument, with what to send instead.
        """
        code = args.get("code")
        if not isinstance(code, str) or not code.strip():
            raise InvalidArguments("'code' is required: the program to run, as a string")
        if len(code) > MAX_CODE_CHARS:
            raise InvalidArguments(f"'code' is longer than {MAX_CODE_CHARS} characters")
        language = args.get("language") or "python"
        if not isinstance(language, str):
            raise InvalidArguments("'language' must be a string")
        language = LANGUAGE_ALIASES.get(language.lower(), language.lower())
        if language not in LANGUAGES:
            raise InvalidArguments(f"unknown language {language!r}", hint=f"use one of: {', '.join(LANGUAGES)}")
        data = args.get("input")
        try:
            size = len(json.dumps(data, ensure_ascii=False, allow_nan=False).encode())
        except (TypeError, ValueError):
            raise InvalidArguments("'input' must be a JSON value") from None
        if size > MAX_INPUT_BYTES:
            raise InvalidArguments(f"'input' is larger than {MAX_INPUT_BYTES} bytes as JSON")
        allowed = args.get("allowed_tools")
        if allowed is not None and (not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed)):
            raise InvalidArguments("'allowed_tools' must be a list of names ('server:tool') or 'server:*' patterns")
        tier_name = args.get("tier") or "destructive"
        try:
            tier = Tier[str(tier_name).upper()]
        except KeyError:
            raise InvalidArguments("'tier' is read, write or destructive") from None
        return cls(
            code=code,
            language=language,
            input=data,
            timeout_ms=_optional_int(args, "timeout_ms", 1),
            allowed_tools=tuple(allowed) if allowed is not None else None,
            max_tool_calls=_optional_int(args, "max_tool_calls", 0),
            tier=tier,
        )


@dataclass(slots=True)
class ExecError:
    """Why a program did not finish well.

    Attributes:
        type: The exception's type (``ToolError``, ``TimeoutError``, ``MemoryError``,
            ``OutputLimitExceeded``, ``SyntaxError``...).
        message: What happened.
        line: The line of the program it happened on, when known.
    """

    type: str
    message: str
    line: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message, "line": self.line}

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line is not None else ""
        return f"{self.type}: {self.message}{where}"


@dataclass(slots=True)
class ToolCallLog:
    """One tool call a program made.

    Attributes:
        name: The tool as the program named it.
        duration_ms: Time in the gateway, upstream included.
        ok: Whether it returned a result that is not an error.
        error: The error's kind when not ok.
    """

    name: str
    duration_ms: float
    ok: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "duration_ms": round(self.duration_ms, 3), "ok": self.ok}
        if self.error is not None:
            out["error"] = self.error
        return out


class Output:
    """A program's stdout and stderr, kept up to ``max_bytes`` together.

    Args:
        max_bytes: Bytes kept at most; ``write`` returns ``False`` once they are exceeded.
        on_line: Called with ``(stream, line)`` for each complete line (live progress).
    """

    def __init__(self, max_bytes: int, on_line: Callable[[str, str], None] | None = None) -> None:
        self.max_bytes = max_bytes
        self.on_line = on_line
        self._parts: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._pending: dict[str, str] = {"stdout": "", "stderr": ""}
        self.size = 0
        self.exceeded = False

    def write(self, stream: str, text: str) -> bool:
        """Keep ``text``; ``False`` when the limit is passed (the rest is dropped)."""
        if stream not in self._parts:
            stream = "stderr"
        if self.exceeded or not text:
            return not self.exceeded
        data = text.encode("utf-8", errors="replace")
        room = self.max_bytes - self.size
        if len(data) > room:
            text = data[: max(0, room)].decode("utf-8", errors="ignore")
            self.exceeded = True
        self.size += len(text.encode("utf-8", errors="replace"))
        self._parts[stream].append(text)
        if self.on_line is not None:
            pending = self._pending[stream] + text
            *lines, rest = pending.split("\n")
            self._pending[stream] = rest[-4096:]
            for line in lines:
                self.on_line(stream, line)
        return not self.exceeded

    def flush_lines(self) -> None:
        """Hand the last, unterminated lines to the listener."""
        for stream, rest in self._pending.items():
            if rest and self.on_line is not None:
                self.on_line(stream, rest)
            self._pending[stream] = ""

    @property
    def stdout(self) -> str:
        return "".join(self._parts["stdout"])

    @property
    def stderr(self) -> str:
        return "".join(self._parts["stderr"])


def json_safe(value: Any, *, depth: int = 0) -> Any:
    """``value`` as JSON data: tuples and sets become lists, other objects their ``repr``."""
    if depth > 200:
        return "…"
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v, depth=depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return repr(value)


def _preview(text: str) -> str:
    if len(text) <= VALUE_PREVIEW_CHARS:
        return text
    return text[:VALUE_PREVIEW_CHARS] + f"\n… ({len(text) - VALUE_PREVIEW_CHARS} more characters in structured content)"


@dataclass(slots=True)
class ExecutionResult:
    """The answer of one execution (see the module docstring)."""

    execution_id: str
    language: str
    ok: bool
    value: Any = None
    stdout: str = ""
    stderr: str = ""
    error: ExecError | None = None
    tool_calls: list[ToolCallLog] = field(default_factory=list)
    duration_ms: float = 0.0
    output_truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "value": self.value,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "error": self.error.to_dict() if self.error is not None else None,
            "tool_calls": [c.to_dict() for c in self.tool_calls],
            "duration_ms": round(self.duration_ms, 3),
            "execution_id": self.execution_id,
            "language": self.language,
            "output_truncated": self.output_truncated,
        }

    def text(self) -> str:
        """The result as a person (or a model) reads it."""
        calls = len(self.tool_calls)
        head = "ok" if self.ok else "error"
        lines = [f"{head} ({self.language}, {self.duration_ms:.1f} ms, {calls} tool call{'s' if calls != 1 else ''})"]
        if self.error is not None:
            lines.append(f"error: {self.error}")
        if self.ok or self.value is not None:
            lines.append("value: " + _preview(json.dumps(self.value, ensure_ascii=False, indent=1)))
        if self.stdout:
            lines.append("stdout:\n" + _preview(self.stdout.rstrip("\n")))
        if self.stderr:
            lines.append("stderr:\n" + _preview(self.stderr.rstrip("\n")))
        if self.output_truncated:
            lines.append("(output truncated at the output limit)")
        failed = [c for c in self.tool_calls if not c.ok]
        if failed:
            lines.append("failed tool calls: " + ", ".join(f"{c.name} ({c.error})" for c in failed[:10]))
        return "\n".join(lines)

    def to_call_result(self) -> types.CallToolResult:
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=self.text())],
            structured_content=self.to_dict(),
            is_error=not self.ok,
        )


def error_line(lines: Sequence[int | None]) -> int | None:
    """The last known line of a traceback."""
    for line in reversed(lines):
        if line is not None:
            return line
    return None
