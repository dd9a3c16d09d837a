"""Serving the standard library's index live (issue 14, point 6).

1. Per-tool latency (p50/p95) in a warm MCP server: the SDK's in-process client calling every
   tool on an index of the stdlib (no vectors: lexical search), after one warm-up call each.
2. Save -> searchable under `watch`: a one-file edit (a new unique identifier in one module),
   and a branch switch that changes 100 files — the time from the save (or the end of
   `git checkout`) until a search finds the new text, with the watcher's own defaults.

    .venv/bin/python bench/bench_serve.py [--calls 20] [--rounds 3]

Prints every number it measured. The machine may be shared: compare numbers of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

CALLS: dict[str, dict[str, Any]] = {
    "search": {"query": "parse http header", "limit": 10},
    "definition": {"name": "json.decoder.JSONDecoder.decode"},
    "callers": {"name": "posixpath.join", "depth": 1},
    "callees": {"name": "json.dumps", "depth": 2},
    "impact": {"name_or_path": "json/scanner.py", "depth": 2},
    "outline": {"path": "argparse.py"},
    "overview": {"budget_tokens": 1000},
    "status": {},
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=b", "-c", "user.email=b@b", *args],
                   check=True, capture_output=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def tool_latencies(tools: Any, calls: int) -> dict[str, list[float]]:
    from mcp import Client

    from codegraph.mcp_server import build_server

    out: dict[str, list[float]] = {}
    async with Client(build_server(tools)) as client:
        for name, args in CALLS.items():
            first = await client.call_tool(name, args)  # warm-up: caches, pages, the ranking
            assert not first.is_error, (name, first.content)
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                result = await client.call_tool(name, args)
                times.append((time.perf_counter() - t0) * 1000)
                assert not result.is_error
            out[name] = times
    return out


def wait_searchable(tools: Any, word: str, path: str, present: bool = True, timeout: float = 60.0) -> float:
    """Seconds until a search for `word` ranks `path` (the only file holding it) in its top 3."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        hits = tools.search(word, mode="lexical", limit=3)["hits"]
        if any(h["path"] == path for h in hits) == present:
            return time.perf_counter() - t0
        time.sleep(0.02)
    raise TimeoutError(word)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", help="Keep the stdlib copy and its index here (reused next time).")
    args = parser.parse_args()

    from codegraph.pipeline import IndexOptions, index
    from codegraph.stages import IndexConfig
    from codegraph.tools import Tools
    from codegraph.watch import Watcher

    stdlib = Path(sysconfig.get_paths()["stdlib"])
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-serve-"))
    repo = work / "lib"
    if not (repo / ".git").exists():
        shutil.rmtree(repo, ignore_errors=True)
        shutil.copytree(stdlib, repo, ignore=shutil.ignore_patterns("site-packages", "__pycache__", "*.pyc"))
        git(repo, "init", "-q")
        git(repo, "add", "-A")
        git(repo, "commit", "-qm", "stdlib")
        git(repo, "branch", "-q", "-M", "master")
    db = str(work / "db")
    t0 = time.perf_counter()
    result = index(repo, db, IndexOptions(IndexConfig(vectors=False)))
    print(f"{result['files_indexed']} files of {stdlib} indexed in {time.perf_counter() - t0:.1f} s "
          f"(no vectors); store {db}")

    tools = Tools.open(db)
    latencies = asyncio.run(tool_latencies(tools, args.calls))
    print(f"\nper tool, warm MCP server (in-process client), {args.calls} calls each:")
    print(f"{'tool':<11} {'p50 ms':>8} {'p95 ms':>8}")
    for name, times in latencies.items():
        print(f"{name:<11} {statistics.median(times):>8.1f} {pct(times, 0.95):>8.1f}")

    # A 100-file branch: each of 100 modules gains a function with the branch's own identifier.
    victims = sorted(p for p in repo.glob("*.py"))[:100]
    has_branch = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", "feature"],
                                capture_output=True).returncode == 0
    if not has_branch:
        git(repo, "checkout", "-qb", "feature")
        for i, path in enumerate(victims):
            with path.open("a", encoding="utf-8") as f:
                f.write(f"\n\ndef branch_marker_{i}_quokka():\n    return {i}\n")
        git(repo, "commit", "-qam", "100 files")
        git(repo, "checkout", "-q", "master")

    watcher = Watcher([str(repo)], db, vectors=False,
                      log=lambda line: print(f"{time.strftime('%X')} {line}", file=sys.stderr)).start()
    assert watcher.ready.wait(120)
    live = Tools.open(db, live=watcher)
    edit_times, switch_times = [], []
    target = repo / "json" / "encoder.py"
    original = target.read_text()
    for r in range(args.rounds):
        word = "qzxvk" + "abcdefghij"[r % 10] * 3 + "wombat"  # one token, new in every round
        time.sleep(0.5)
        target.write_text(original + f"\n\ndef {word}():\n    return {r}\n")
        edit_times.append(wait_searchable(live, word, "json/encoder.py"))
    target.write_text(original)
    for _ in range(args.rounds):
        time.sleep(0.5)
        git(repo, "checkout", "-q", "feature")
        last, first = victims[-1].relative_to(repo).as_posix(), victims[0].relative_to(repo).as_posix()
        switch_times.append(wait_searchable(live, "branch_marker_99_quokka", last))
        assert wait_searchable(live, "branch_marker_0_quokka", first) < 5
        time.sleep(0.5)
        git(repo, "checkout", "-q", "master")
        wait_searchable(live, "branch_marker_99_quokka", last, present=False)
    watcher.stop()
    print("\nsave -> searchable under watch (seconds; each round one edit, then one switch):")
    print(f"one-file edit       : {', '.join(f'{t:.2f}' for t in edit_times)}  "
          f"(median {statistics.median(edit_times):.2f})")
    print(f"100-file checkout   : {', '.join(f'{t:.2f}' for t in switch_times)}  "
          f"(median {statistics.median(switch_times):.2f}; from the end of `git checkout`)")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
