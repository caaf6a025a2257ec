"""The functions a program calls, in each language, over one primitive: ``_mcp(op, payload)``.

Each engine supplies the primitive (an external function of the embedded interpreter, or a
round trip over the worker's pipe) and ``ToolError``; this module supplies the same small API
on top, so every engine behaves the same:

- ``call_tool(name, args)``: the tool's value; raises ``ToolError`` when refused or failed.
- ``call_tools([[name, args], ...])``: the values, the calls run in parallel; raises the first
  error, or with ``return_exceptions=True`` puts ``ToolError`` objects in the list.
- ``search_tools(query, limit=10)``: the tools that fit, best first (name, description,
  input schema, tier, ``function``).
- ``describe_tool(name)``: one tool's full description, schema and generated signature.

In Python these are ordinary (blocking) functions, so a program reads like a script. In
TypeScript they are ``async`` (``await callTool(...)``), with camelCase and snake_case names.
"""

from __future__ import annotations

PYTHON_RUNTIME = '''\
def _tool_error(envelope):
    error = envelope["error"]
    tool = error.get("tool")
    message = error.get("kind", "error") + (" [" + tool + "]" if tool else "") + ": " + error.get("message", "")
    hint = error.get("hint")
    if hint:
        message = message + " (hint: " + hint + ")"
    return ToolError(message)


def call_tool(name, args=None):
    """Call a tool ('server:tool') with a dict of arguments; returns its value.

    Raises ToolError when the gateway refuses the call or the tool fails."""
    reply = _mcp("call", {"name": name, "args": args})
    if not reply["ok"]:
        raise _tool_error(reply)
    return reply["value"]


def call_tools(calls, return_exceptions=False):
    """Call several tools in parallel: calls is a list of [name, args] (or {"name", "args"}).

    Returns their values in order; raises the first ToolError, or with
    return_exceptions=True puts ToolError objects in the list instead."""
    reply = _mcp("calls", {"calls": calls})
    if not reply["ok"]:
        raise _tool_error(reply)
    values = []
    for item in reply["value"]:
        if item["ok"]:
            values.append(item["value"])
        elif return_exceptions:
            values.append(_tool_error(item))
        else:
            raise _tool_error(item)
    return values


def search_tools(query, limit=10):
    """The tools that fit a need, best first: dicts with name, description, input_schema, tier, function."""
    reply = _mcp("search", {"query": query, "limit": limit})
    if not reply["ok"]:
        raise _tool_error(reply)
    return reply["value"]


def describe_tool(name):
    """One tool's full description, input schema and generated signature."""
    reply = _mcp("describe", {"name": name})
    if not reply["ok"]:
        raise _tool_error(reply)
    return reply["value"]
'''

TYPESCRIPT_RUNTIME = """\
class ToolError extends Error {
  kind: string;
  tool?: string;
  hint?: string;
  constructor(error: any) {
    super(`${error?.kind ?? "error"}${error?.tool ? " [" + error.tool + "]" : ""}: ${error?.message ?? ""}`
      + (error?.hint ? ` (hint: ${error.hint})` : ""));
    this.name = "ToolError";
    this.kind = error?.kind ?? "error";
    this.tool = error?.tool;
    this.hint = error?.hint;
  }
}
async function callTool(name: string, args: Record<string, any> = {}): Promise<any> {
  const reply = await __mcp("call", { name, args });
  if (!reply.ok) throw new ToolError(reply.error);
  return reply.value;
}
async function callTools(calls: Array<[string, Record<string, any>?] | { name: string; args?: any }>,
                         options: { returnExceptions?: boolean } = {}): Promise<any[]> {
  const reply = await __mcp("calls", { calls });
  if (!reply.ok) throw new ToolError(reply.error);
  return reply.value.map((item: any) => {
    if (item.ok) return item.value;
    if (options.returnExceptions) return new ToolError(item.error);
    throw new ToolError(item.error);
  });
}
async function searchTools(query: string, limit = 10): Promise<any[]> {
  const reply = await __mcp("search", { query, limit });
  if (!reply.ok) throw new ToolError(reply.error);
  return reply.value;
}
async function describeTool(name: string): Promise<any> {
  const reply = await __mcp("describe", { name });
  if (!reply.ok) throw new ToolError(reply.error);
  return reply.value;
}
const call_tool = callTool, call_tools = callTools, search_tools = searchTools, describe_tool = describeTool;
"""
