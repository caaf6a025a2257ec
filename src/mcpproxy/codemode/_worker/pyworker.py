"""The ``python-full`` worker: CPython inside the OS sandbox, one program, then exit.

Runs with ``python -I -S -B pyworker.py CONFIG_JSON`` (standard library only; no site
packages). Before it reads any program it:

1. keeps its real stdout for protocol frames and points file descriptor 1 at stderr, so a
   program writing to the raw descriptor cannot forge frames on the protocol stream;
2. loads a seccomp filter (``pyseccomp``, bound read-only by the gateway) that makes
   ``execve``, ``fork``/``vfork``/``clone`` of processes and ``socket`` fail with EPERM:
   a program can start threads but no process, and open no socket of any family;
3. forgets the modules used for that (``ctypes``, ``pyseccomp``) and installs an audit hook
   and an import guard that refuse, with a clear message, what the filter refuses anyway
   (processes, sockets) and the modules that only serve to poke at memory or processes.

Then it answers ``ready``, reads one ``job`` frame, runs the program and reports ``done``.
The OS sandbox around it is the boundary; steps 2 and 3 are defence in depth and clear
errors. The program's globals hold ``input``, the runtime (``call_tool``...) and ``tools``.
Its value is that of its last expression statement, else of a global named ``result``.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import os
import sys
import threading
import traceback
from typing import Any

PROGRAM = "program.py"
FORBIDDEN_MODULES = frozenset({
    "ctypes", "_ctypes", "subprocess", "_posixsubprocess", "multiprocessing", "_multiprocessing", "pty",
    "pyseccomp",
})
FORBIDDEN_EVENTS = {
    "os.system": "starting processes is not allowed in code execution",
    "os.exec": "starting processes is not allowed in code execution",
    "os.posix_spawn": "starting processes is not allowed in code execution",
    "os.spawn": "starting processes is not allowed in code execution",
    "os.fork": "starting processes is not allowed in code execution",
    "os.forkpty": "starting processes is not allowed in code execution",
    "subprocess.Popen": "starting processes is not allowed in code execution",
    "socket.__new__": "there is no network in code execution",
    "ctypes.dlopen": "ctypes is not available in code execution",
}
CLONE_THREAD = 0x00010000

_proto = os.fdopen(os.dup(1), "wb", buffering=0)
os.dup2(2, 1)
_stdin = sys.stdin.buffer
_lock = threading.Lock()


def _send(frame: dict[str, Any]) -> None:
    text = json.dumps(frame, ensure_ascii=False, default=repr, separators=(",", ":")) + "\n"
    data = text.encode("utf-8", "replace")
    with _lock:
        view = memoryview(data)
        while view:
            written = _proto.write(view) or 0
            view = view[written:]


def _receive() -> dict[str, Any]:
    line = _stdin.readline()
    if not line:
        os._exit(0)
    frame = json.loads(line)
    return frame if isinstance(frame, dict) else {}


def _seccomp(module_dir: str) -> None:
    sys.path.insert(0, module_dir)
    try:
        import errno

        import pyseccomp as sc  # type: ignore[import-untyped]

        eperm = sc.ERRNO(errno.EPERM)
        filt = sc.SyscallFilter(sc.ALLOW)
        for name in ("execve", "execveat", "fork", "vfork", "socket", "socketpair"):
            filt.add_rule(eperm, name)
        filt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
        filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        filt.load()
    finally:
        sys.path.remove(module_dir)
        for name in list(sys.modules):
            if name.split(".")[0] in FORBIDDEN_MODULES:
                del sys.modules[name]


class _Guard:
    """A meta-path finder that refuses the forbidden modules by name."""

    @staticmethod
    def find_spec(name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in FORBIDDEN_MODULES:
            raise ImportError(f"module '{name}' is not available in code execution")
        return None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    message = FORBIDDEN_EVENTS.get(event)
    if message is not None:
        raise PermissionError(message)
    if event == "import" and args and isinstance(args[0], str) and args[0].split(".")[0] in FORBIDDEN_MODULES:
        raise ImportError(f"module '{args[0]}' is not available in code execution")


class _Stream(io.TextIOBase):
    """``sys.stdout`` / ``sys.stderr`` of the program: lines become ``out`` frames."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._buffer: list[str] = []
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._buffer.append(text)
        self._size += len(text)
        if "\n" in text or self._size > 8192:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            data, self._buffer, self._size = "".join(self._buffer), [], 0
            _send({"t": "out", "s": self._name, "d": data})


class ToolError(RuntimeError):
    """A tool call the gateway refused, or a tool that failed.

    Attributes:
        kind: The error's kind (``policy_denied``, ``tool_error``, ``tool_call_limit``...).
        tool: The tool, when known.
        hint: What to do about it, when known.
    """

    def __init__(self, message: str, kind: str = "error", tool: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.tool = tool
        self.hint = hint


def _tool_error(envelope: dict[str, Any]) -> ToolError:
    error = envelope.get("error") or {}
    tool = error.get("tool")
    message = f"{error.get('kind', 'error')}{' [' + tool + ']' if tool else ''}: {error.get('message', '')}"
    if error.get("hint"):
        message += f" (hint: {error['hint']})"
    return ToolError(message, error.get("kind", "error"), tool, error.get("hint"))


class _Bridge:
    def __init__(self, capability: str) -> None:
        self._capability = capability
        self._next = 0
        self._call_lock = threading.Lock()

    def __call__(self, op: str, payload: Any) -> Any:
        sys.stdout.flush()
        sys.stderr.flush()
        with self._call_lock:
            self._next += 1
            ident = self._next
            _send({"t": "req", "id": ident, "cap": self._capability, "op": op, "a": payload})
            while True:
                frame = _receive()
                if frame.get("t") == "res" and frame.get("id") == ident:
                    return frame.get("r")


def _line_of(exc: BaseException) -> int | None:
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == PROGRAM:
            line = frame.lineno
    if line is None and isinstance(exc, SyntaxError) and exc.filename == PROGRAM:
        line = exc.lineno
    return line


def _jsonable(value: Any, depth: int = 0) -> Any:
    if depth > 200:
        return "…"
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else repr(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _run(job: dict[str, Any]) -> Any:
    scope: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "input": job.get("input")}
    scope["_mcp"] = _Bridge(str(job.get("cap")))
    scope["ToolError"] = ToolError
    exec(compile(job.get("runtime", ""), "<runtime>", "exec"), scope)  # noqa: S102 - running code is the job
    scope["_tool_error"] = _tool_error
    exec(compile(job.get("prelude", ""), "<tools>", "exec"), scope)  # noqa: S102
    tree = ast.parse(job["code"], PROGRAM)
    last: ast.Expression | None = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    exec(compile(tree, PROGRAM, "exec"), scope)  # noqa: S102
    if last is not None:
        return eval(compile(last, PROGRAM, "eval"), scope)  # noqa: S307
    return scope.get("result")


def main() -> None:
    config = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if config.get("seccomp_dir"):
        _seccomp(config["seccomp_dir"])
    elif config.get("seccomp_required"):
        _send({"t": "fatal", "message": "the seccomp filter is required but pyseccomp is missing"})
        os._exit(3)
    sys.meta_path.insert(0, _Guard())
    sys.addaudithook(_audit)
    sys.stdout = _Stream("stdout")
    sys.stderr = _Stream("stderr")
    _send({"t": "ready"})
    job = _receive()
    try:
        value = _run(job)
        sys.stdout.flush()
        sys.stderr.flush()
        frame = {"t": "done", "ok": True, "value": _jsonable(value)}
    except BaseException as exc:  # noqa: BLE001 - everything the program raises is its result
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001, S110 - the output stream may be what failed
            pass
        message = str(exc) if not isinstance(exc, SyntaxError) else (exc.msg or str(exc))
        frame = {"t": "done", "ok": False, "error": {"type": type(exc).__name__, "message": message,
                                                       "line": _line_of(exc)}}
    _send(frame)
    os._exit(0)


if __name__ == "__main__":
    main()
