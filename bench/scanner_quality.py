"""Quality and speed of the tool-poisoning scanner on labelled public data.

Usage::

    python bench/scanner_quality.py DATASET_DIR [--show-misses] [--show-fp] [--synthetic N]

DATASET_DIR holds the tool-poisoning-dev files (see the dataset README): Cisco remote tools
(malicious/benign), MSB attack variants and their benign originals, fuzzd attacks and clean
tools, and Docker MCP registry tools (presumed benign).

"Flagged" means one thing throughout: the verdict under the default ``ScanPolicy`` is not
``allow`` (risk above ``warn_above``, 20). Recall is the flagged share of malicious tools; the
false-positive rate is the flagged share of benign tools. The share that would be quarantined
(risk above 50) is printed next to it.

How each set is scanned, to mirror what the gateway knows:

* Cisco and Docker: each file as one batch, tools grouped by their ``server`` field, so tools
  are also checked against the other servers of the same file.
* MSB: the benign originals form the catalog of known tools under their real server names;
  each attack variant is scanned as a tool of a separate, untrusted server against that
  catalog. Six variants are byte-identical to their originals (the attack lies only in which
  server serves them); they are listed apart and not counted.
* fuzzd: each file as one batch of one server.

Throughput is measured on all dataset tools and on a synthetic file of N (default 10,000)
tools written as JSONL and loaded through ``load_tools_file``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcpproxy.policy.scanner import (
    DEFAULT_POLICY,
    Catalog,
    Severity,
    ToolReport,
    Verdict,
    load_tools_file,
    scan_tool,
    scan_tools,
)

UNTRUSTED = "msb-untrusted-server"


@dataclass
class Outcome:
    """Reports of one labelled set."""

    name: str
    malicious: bool
    reports: list[ToolReport]

    @property
    def flagged(self) -> int:
        return sum(r.verdict is not Verdict.ALLOW for r in self.reports)

    @property
    def quarantined(self) -> int:
        return sum(r.verdict is Verdict.QUARANTINE for r in self.reports)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _pairs(records: Iterable[Mapping[str, Any]]) -> list[tuple[str | None, Mapping[str, Any]]]:
    return [(r.get("server"), r) for r in records]


def run_sets(root: Path) -> tuple[list[Outcome], list[ToolReport]]:
    """Scan every set; returns the outcomes and the MSB identical-text variants apart."""
    out: list[Outcome] = []
    cisco = _jsonl(root / "cisco-remote-tools.jsonl")
    reports = scan_tools(_pairs(cisco))
    for label in ("malicious", "benign"):
        chosen = [r for r, c in zip(reports, cisco, strict=True) if c["label"] == label]
        out.append(Outcome(f"cisco {label}", label == "malicious", chosen))

    msb = _jsonl(root / "msb-attack-tools.jsonl")
    originals = [r for r in msb if r["label"] == "benign"]
    known = Catalog()
    for r in originals:
        known.add(r["server"], r["name"], r["description"])
    benign_reports = [scan_tool(r, server=r["server"], others=known) for r in originals]
    out.append(Outcome("msb benign originals", False, benign_reports))
    attacks = [r for r in msb if r["label"] == "malicious"]
    out.append(Outcome("msb attack variants", True, [scan_tool(r, server=UNTRUSTED, others=known) for r in attacks]))
    same_text = [r for r in msb if r["label"] not in ("benign", "malicious")]
    identical = [scan_tool(r, server=UNTRUSTED, others=known) for r in same_text]

    for fname, is_attack in (("fuzzd-attack-tools.json", True), ("fuzzd-clean-tools.json", False)):
        tools = json.loads((root / fname).read_text(encoding="utf-8"))
        name = "fuzzd attacks" if is_attack else "fuzzd clean"
        out.append(Outcome(name, is_attack, scan_tools(tools, server="fuzzd")))

    docker = _jsonl(root / "docker-registry-benign-tools.jsonl")
    out.append(Outcome("docker registry", False, scan_tools(_pairs(docker))))
    return out, identical


def ablations(root: Path) -> list[tuple[str, int, int]]:
    """Recall with a signal taken away: what the name tokens and the catalog contribute."""
    cisco = [r for r in _jsonl(root / "cisco-remote-tools.jsonl") if r["label"] == "malicious"]
    anonymous = [(r["server"], {**r, "name": f"tool_{i}"}) for i, r in enumerate(cisco)]
    no_names = scan_tools(anonymous)
    attacks = [r for r in _jsonl(root / "msb-attack-tools.jsonl") if r["label"] == "malicious"]
    no_catalog = [scan_tool(r, server=UNTRUSTED) for r in attacks]
    return [
        ("cisco malicious, tool names hidden", sum(r.verdict is not Verdict.ALLOW for r in no_names), len(cisco)),
        ("msb attack variants, no catalog", sum(r.verdict is not Verdict.ALLOW for r in no_catalog), len(attacks)),
    ]


def msb_breakdown(root: Path, outcome: Outcome) -> Counter[tuple[str, bool]]:
    """Flagged / missed counts of MSB attack variants per attack type."""
    attacks = [r for r in _jsonl(root / "msb-attack-tools.jsonl") if r["label"] == "malicious"]
    return Counter(
        (a["attack_type"], r.verdict is not Verdict.ALLOW)
        for a, r in zip(attacks, outcome.reports, strict=True)
    )


def print_quality(outcomes: Sequence[Outcome], identical: Sequence[ToolReport]) -> None:
    warn, quarantine = DEFAULT_POLICY.warn_above, DEFAULT_POLICY.quarantine_above
    print(f"flagged = verdict != allow (risk > {warn}); quarantined = risk > {quarantine}\n")
    print(f"{'set':<24}{'tools':>7}{'flagged':>9}{'metric':>22}{'quarantined':>13}")
    for o in outcomes:
        n = len(o.reports)
        rate = 100.0 * o.flagged / n if n else 0.0
        metric = f"recall {rate:5.1f}%" if o.malicious else f"false pos. {rate:5.1f}%"
        print(f"{o.name:<24}{n:>7}{o.flagged:>9}{metric:>22}{o.quarantined:>13}")
    flagged = sum(r.verdict is not Verdict.ALLOW for r in identical)
    print(f"(msb identical-text variants, not counted: {flagged}/{len(identical)} flagged)")


def print_rule_hits(outcomes: Sequence[Outcome]) -> None:
    columns = [o.name for o in outcomes]
    counts: dict[str, Counter[str]] = {}
    for o in outcomes:
        for r in o.reports:
            for rule in {f.rule for f in r.findings if f.severity is not Severity.INFO}:
                counts.setdefault(rule, Counter())[o.name] += 1
    print("\nTools with at least one finding of the rule (info excluded):")
    print(f"{'rule':<34}" + "".join(f"{c[:11]:>12}" for c in columns))
    for rule in sorted(counts):
        print(f"{rule:<34}" + "".join(f"{counts[rule][c]:>12}" for c in columns))


def print_details(outcomes: Sequence[Outcome], *, misses: bool, fps: bool) -> None:
    for o in outcomes:
        chosen = [r for r in o.reports if (r.verdict is Verdict.ALLOW) == o.malicious]
        if (o.malicious and misses) or (not o.malicious and fps):
            print(f"\n== {o.name}: {'missed' if o.malicious else 'flagged'} ({len(chosen)})")
            for r in chosen:
                print(f"  {r.server}:{r.name} risk={r.risk}")
                for f in r.findings:
                    print(f"      {f.severity.value:<8} {f.rule:<30} {f.location}: {f.evidence}")


def synthetic_file(pool: Sequence[Mapping[str, Any]], n: int, directory: Path) -> Path:
    """N tools cycled from the pool, renamed to be unique, spread over 100 servers, as JSONL."""
    path = directory / "synthetic-tools.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            base = pool[i % len(pool)]
            tool = {k: base[k] for k in ("name", "description", "inputSchema") if k in base}
            tool["name"] = f"{base.get('name', 'tool')}_t{i}"
            fh.write(json.dumps({"server": f"synthetic-{i % 100}", **tool}) + "\n")
    return path


def print_speed(root: Path, n: int) -> None:
    """Wall-clock and CPU throughput (CPU time is the honest figure on a shared machine)."""
    pool: list[dict[str, Any]] = []
    for fname in ("cisco-remote-tools.jsonl", "msb-attack-tools.jsonl", "docker-registry-benign-tools.jsonl"):
        pool.extend(_jsonl(root / fname))
    for fname in ("fuzzd-attack-tools.json", "fuzzd-clean-tools.json"):
        pool.extend(json.loads((root / fname).read_text(encoding="utf-8")))
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(3):
        scan_tools([(None, t) for t in pool], cross_check=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n_scanned = 3 * len(pool)
    print(f"\nThroughput, {len(pool)} dataset tools x3, no cross-server checks:")
    print(f"  {n_scanned / wall:,.0f} tools/s wall, {n_scanned / cpu:,.0f} tools/s CPU")
    with tempfile.TemporaryDirectory() as tmp:
        path = synthetic_file(pool, n, Path(tmp))
        wall, cpu = time.perf_counter(), time.process_time()
        loaded = load_tools_file(path)
        reports = scan_tools(loaded)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"Synthetic file of {len(reports):,} tools over 100 servers, load + scan with cross-server checks:")
    count = len(reports)
    print(f"  {wall:.2f} s wall ({count / wall:,.0f} tools/s), {cpu:.2f} s CPU ({count / cpu:,.0f} tools/s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("dataset", type=Path, help="the tool-poisoning-dev directory")
    parser.add_argument("--show-misses", action="store_true", help="list malicious tools not flagged")
    parser.add_argument("--show-fp", action="store_true", help="list benign tools flagged")
    parser.add_argument("--synthetic", type=int, default=10_000, help="size of the synthetic speed run")
    args = parser.parse_args(argv)
    if not (args.dataset / "cisco-remote-tools.jsonl").is_file():
        print(f"{args.dataset}: not a tool-poisoning-dev directory", file=sys.stderr)
        return 2
    outcomes, identical = run_sets(args.dataset)
    print_quality(outcomes, identical)
    msb = next(o for o in outcomes if o.name == "msb attack variants")
    breakdown = msb_breakdown(args.dataset, msb)
    print("\nMSB attack variants by type (flagged/total):")
    for kind in sorted({k for k, _ in breakdown}):
        hit, miss = breakdown[(kind, True)], breakdown[(kind, False)]
        print(f"  {kind:<48}{hit:>3}/{hit + miss}")
    print("\nAblations (recall):")
    for label, flagged, total in ablations(args.dataset):
        print(f"  {label:<48}{flagged:>3}/{total} = {100.0 * flagged / total:.1f}%")
    print_rule_hits(outcomes)
    print_details(outcomes, misses=args.show_misses, fps=args.show_fp)
    print_speed(args.dataset, args.synthetic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
