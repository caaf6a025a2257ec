"""Typed functions generated from tool schemas: ``tools.<server>.<tool>(...)`` in each language.

Design. Descriptions and schemas come from upstream servers, so they are data, never code:
every piece of text that lands in generated source is a JSON string literal (valid in
Python and TypeScript alike) or, for TypeScript doc comments, text with ``*/`` broken, and
every identifier is rebuilt from ``[A-Za-z0-9_]`` only. Nothing a server writes can end a
literal, open a statement or change what a function calls: each generated function calls
``call_tool`` with its tool's exact name and the arguments it was given, and the gateway's
pipeline checks that call like any other.

Only the servers a program mentions (``tools.memory``, ``tools["memory"]``) get functions,
so a program pays for what it uses; a program that uses ``tools`` as a whole (``dir(tools)``)
gets every server it may use.

In Python a tool ``memory:create_entities`` with a required ``entities`` becomes::

    tools.memory.create_entities(entities, *, <optional>=None, **extra)

with the description and the parameters as its docstring (``help()`` shows it in
``python-full``); optional arguments left ``None`` are not sent, and arguments whose names are
not identifiers go through ``**extra``. In TypeScript it is
``tools.memory.create_entities(args: {entities: ...}): Promise<any>`` with a JSDoc comment.
"""

from __future__ import annotations

import json
import keyword
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mcpproxy.routing.catalog import ToolEntry

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TS_RESERVED = frozenset({
    "break", "case", "catch", "class", "const", "continue", "debugger", "default", "delete", "do", "else", "enum",
    "export", "extends", "false", "finally", "for", "function", "if", "import", "in", "instanceof", "new", "null",
    "return", "super", "switch", "this", "throw", "true", "try", "typeof", "var", "void", "while", "with", "yield",
    "let", "static", "implements", "interface", "package", "private", "protected", "public", "await",
})  # fmt: skip
_PY_RESERVED = frozenset({"self", "extra", "call_tool", "tools", "input"})
DESCRIPTION_CHARS = 2000
"""Characters of a tool's description kept in its docstring."""


def ident(name: str) -> str:
    """A Python and TypeScript identifier for ``name`` (``my-server.v2`` -> ``my_server_v2``)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name) or "_"
    if out[0].isdigit():
        out = "_" + out
    if keyword.iskeyword(out) or out in _TS_RESERVED:
        out += "_"
    return out


def _param_ident(name: str) -> str | None:
    """``name`` when it can be a Python parameter as it is, else ``None`` (it goes through ``**extra``)."""
    if not _IDENT_RE.match(name) or keyword.iskeyword(name) or name in _PY_RESERVED or name.startswith("_"):
        return None
    return name


@dataclass(slots=True)
class Function:
    """One tool as a generated function."""

    ident: str
    key: str
    description: str
    schema: dict[str, Any]

    @property
    def properties(self) -> dict[str, Any]:
        props = self.schema.get("properties")
        return props if isinstance(props, dict) else {}

    @property
    def required(self) -> list[str]:
        req = self.schema.get("required")
        return [r for r in req if isinstance(r, str) and r in self.properties] if isinstance(req, list) else []


@dataclass(slots=True)
class Namespace:
    """The functions of one server."""

    server: str
    ident: str
    functions: list[Function] = field(default_factory=list)


def namespaces(entries: Iterable[ToolEntry]) -> dict[str, Namespace]:
    """Servers by identifier, each with its tools as functions (names made unique)."""
    out: dict[str, Namespace] = {}
    by_server: dict[str, Namespace] = {}
    for entry in entries:
        ns = by_server.get(entry.server)
        if ns is None:
            name = ident(entry.server)
            while name in out:
                name += "_"
            ns = by_server[entry.server] = out[name] = Namespace(entry.server, name)
        fname = ident(entry.name)
        taken = {f.ident for f in ns.functions}
        while fname in taken:
            fname += "_"
        description = (entry.tool.description or "").strip()[:DESCRIPTION_CHARS]
        ns.functions.append(Function(fname, entry.key, description, entry.input_schema))
    return out


_MENTION_RE = re.compile(r"\btools\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['\"]([^'\"]+)['\"]\s*\])")
_WHOLE_RE = re.compile(r"\btools\b(?!\s*[.\[])")


def mentioned(code: str, spaces: Mapping[str, Namespace]) -> list[Namespace]:
    """The namespaces ``code`` uses (all of them when it uses ``tools`` as a whole)."""
    if _WHOLE_RE.search(code):
        return list(spaces.values())
    names: set[str] = set()
    for match in _MENTION_RE.finditer(code):
        names.add(match.group(1) or ident(match.group(2)))
    return [spaces[n] for n in spaces if n in names]


def path_of(entry: ToolEntry, spaces: Mapping[str, Namespace]) -> str | None:
    """``tools.<server>.<tool>`` for ``entry``, when it has a function."""
    for ns in spaces.values():
        if ns.server == entry.server:
            for fn in ns.functions:
                if fn.key == entry.key:
                    return f"tools.{ns.ident}.{fn.ident}"
    return None


# -- types --------------------------------------------------------------------------------


def _schema_type(schema: Any) -> str | None:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def py_type(schema: Any) -> str:
    """A Python annotation for a JSON schema (for reading, not enforced)."""
    kind = _schema_type(schema)
    if kind == "string":
        return "str"
    if kind == "integer":
        return "int"
    if kind == "number":
        return "float"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        inner = py_type(schema.get("items")) if isinstance(schema, dict) else "Any"
        return f"list[{inner}]" if inner != "Any" else "list"
    if kind == "object":
        return "dict"
    return "Any"


def ts_type(schema: Any, depth: int = 0) -> str:
    """A TypeScript type for a JSON schema (for reading; Deno does not check it)."""
    if not isinstance(schema, dict):
        return "any"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum and all(isinstance(v, str | int | float | bool) for v in enum):
        return " | ".join(json.dumps(v) for v in enum[:20])
    kind = _schema_type(schema)
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        return f"Array<{ts_type(schema.get('items'), depth + 1)}>"
    if kind == "object":
        props = schema.get("properties")
        if depth >= 3 or not isinstance(props, dict) or not props:
            return "Record<string, any>"
        listed = schema.get("required")
        required = listed if isinstance(listed, list) else []
        fields = []
        for name, sub in props.items():
            key = name if _IDENT_RE.match(name) else json.dumps(name)
            fields.append(f"{key}{'' if name in required else '?'}: {ts_type(sub, depth + 1)}")
        return "{ " + "; ".join(fields) + " }"
    return "any"


def _describe_param(name: str, schema: Any, required: bool) -> str:
    desc = schema.get("description") if isinstance(schema, dict) else None
    text = f"{name} ({py_type(schema)}{'' if required else ', optional'})"
    return f"{text}: {desc.strip()}" if isinstance(desc, str) and desc.strip() else text


def docstring(fn: Function) -> str:
    """The function's documentation: the tool's name and description, then its parameters."""
    lines = [f"Tool {fn.key}." + (f" {fn.description}" if fn.description else "")]
    if fn.properties:
        lines += ["", "Args:"]
        lines += [
            "    " + _describe_param(name, sub, name in fn.required)[:500]
            for name, sub in fn.properties.items()
        ]
    return "\n".join(lines)


# -- Python -------------------------------------------------------------------------------


def py_signature(fn: Function) -> str:
    """``name(a: int, *, b: str | None = None, **extra)``."""
    required = [n for n in fn.required if _param_ident(n)]
    optional = [n for n in fn.properties if n not in fn.required and _param_ident(n)]
    parts = [f"{n}: {py_type(fn.properties[n])}" for n in required]
    if optional:
        parts.append("*")
        parts += [f"{n}: {py_type(fn.properties[n])} | None = None" for n in optional]
    parts.append("**extra")
    return f"{fn.ident}({', '.join(parts)})"


def _py_function(fn: Function) -> list[str]:
    required = [n for n in fn.required if _param_ident(n)]
    optional = [n for n in fn.properties if n not in fn.required and _param_ident(n)]
    params = ["self", *required]
    if optional:
        params.append("*")
        params += [f"{n}=None" for n in optional]
    params.append("**extra")
    named = ", ".join(f"{json.dumps(n)}: {n}" for n in [*required, *optional])
    return [
        f"    def {fn.ident}({', '.join(params)}):",
        f"        {json.dumps(docstring(fn), ensure_ascii=False)}",
        f"        return _call_typed({json.dumps(fn.key)}, {{{named}}}, extra)",
    ]


PY_HELPER = '''\
def _call_typed(name, named, extra):
    args = {}
    for key, value in named.items():
        if value is not None:
            args[key] = value
    for key, value in extra.items():
        args[key] = value
    return call_tool(name, args)
'''


def python_prelude(spaces: Iterable[Namespace]) -> str:
    """Python source defining ``tools`` with a class per server (classes without inheritance,
    which the embedded interpreter supports too)."""
    out = [PY_HELPER]
    members = []
    for ns in spaces:
        cls = f"_Tools_{ns.ident}"
        out.append(f"class {cls}:")
        out.append(f"    {json.dumps(f'Tools of server {ns.server}.')}")
        for fn in ns.functions:
            out += _py_function(fn)
        if not ns.functions:
            out.append("    pass")
        members.append(f"    {ns.ident} = {cls}()")
    out.append("class _Tools:")
    out.append('    "The tools this program may call, by server: tools.<server>.<tool>(...)."')
    out += members or ["    pass"]
    out.append("tools = _Tools()")
    return "\n".join(out) + "\n"


# -- TypeScript -----------------------------------------------------------------------------


def _jsdoc(text: str) -> str:
    body = text.replace("*/", "*\\/")
    return "/**\n" + "\n".join(f" * {line}" for line in body.splitlines()) + "\n */"


def ts_signature(fn: Function) -> str:
    return f"{fn.ident}(args: {ts_type(fn.schema)}): Promise<any>"


def typescript_prelude(spaces: Iterable[Namespace]) -> str:
    """TypeScript source defining ``tools`` as nested objects of functions."""
    out = ["const tools = {"]
    for ns in spaces:
        out.append(f"  {ns.ident}: {{")
        for fn in ns.functions:
            doc = _jsdoc(docstring(fn))
            out += ["    " + line for line in doc.splitlines()]
            arg_type = ts_type(fn.schema)
            out.append(
                f"    {fn.ident}: (args: {arg_type} = {{}} as any): Promise<any> => "
                f"callTool({json.dumps(fn.key)}, args),"
            )
        out.append("  },")
    out.append("};")
    return "\n".join(out) + "\n"
