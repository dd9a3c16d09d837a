"""The command line as a user runs it: real processes, real exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CLI = [sys.executable, "-m", "codegraph.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CODEGRAPH_DB"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_index_search_and_graph_from_the_command_line(shop_repo: Path, store_url: str) -> None:
    db = store_url
    proc = cli("index", str(shop_repo), "--db", db, "--no-vectors", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)  # exactly one JSON object
    for key in ("job_id", "state", "snapshot", "files_total", "files_failed", "symbols", "edges",
                "chunks", "embedded", "stages", "duration_ms"):
        assert key in result
    assert result["state"] == "completed" and result["embedded"] == 0
    assert {"name", "status", "duration_ms"} <= set(result["stages"][0])

    proc = cli("search", "customer email", "--db", db, "--json", "--limit", "2")
    assert proc.returncode == 0, proc.stderr
    hits = json.loads(proc.stdout)["hits"]
    assert len(hits) == 2 and hits[0]["path"] == "shop/models.py"
    assert set(hits[0]) == {"path", "start_line", "end_line", "symbol", "score", "snippet", "repo",
                            "language"}
    assert hits[0]["repo"] == str(shop_repo.resolve())  # a local repository is known by its path

    proc = cli("graph", "callers", "shop.models.Base.validate", "--db", db, "--json")
    assert {r["src"] for r in json.loads(proc.stdout)["results"]} == {
        "shop.models.Base.save", "shop.models.Customer.validate"}

    human = cli("index", str(shop_repo), "--db", db, "--no-vectors", "--full")
    assert human.returncode == 0 and "5 of 5 files indexed" in human.stdout
    assert "L1_ir" in human.stderr  # progress bars go to stderr

    text = cli("search", "total_price", "--db", db, cwd=shop_repo)
    assert "shop/pricing.py" in text.stdout


def test_commands_find_the_nearest_store_above_the_working_directory(shop_repo: Path) -> None:
    assert cli("index", str(shop_repo), "--no-vectors", "--json").returncode == 0
    proc = cli("graph", "defs", "total_price", "--json", cwd=shop_repo / "shop")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["qname"] == "shop.pricing.total_price"


def _one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    assert "no such directory" in _one_line_error(cli("index", str(tmp_path / "missing")))
    garbage = tmp_path / "x.sqlite"
    garbage.write_bytes(b"garbage" * 1000)
    assert "not a usable codegraph store" in _one_line_error(
        cli("index", str(tmp_path), "--db", str(garbage), "--no-vectors"))
    assert "unsupported --db URL" in _one_line_error(
        cli("index", str(tmp_path), "--db", "mysql://x/y", "--no-vectors"))
    assert "no index" in _one_line_error(cli("search", "x", cwd=tmp_path))
    assert "no index at" in _one_line_error(cli("graph", "defs", "x", "--db", str(tmp_path / "nothing")))


def test_bad_command_lines_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (("index", "--workers", "0"), ("search",), ("frobnicate",), ("search", "x", "--limit", "z")):
        proc = cli(*args)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr


PLAIN_SEARCHES = (
    ("search", "customer email"),
    ("search", "q", "--json"),
    ("search", "--mode", "vector", "the query", "--limit", "3", "--db", "/x/y", "--repo", "r", "--json",
     "--debug"),
    ("search", "q", "--mode=lexical", "--limit=12", "--db=some dir"),
    ("search", "", "--limit", "1"),
)
NOT_PLAIN = (
    ("search",), ("search", "--help"), ("search", "a", "b"), ("search", "q", "--limit", "0"),
    ("search", "q", "--limit", "z"), ("search", "q", "--limit", "07"), ("search", "q", "--json", "--json"),
    ("search", "--", "-q"), ("search", "-q"), ("search", "q", "--mode"), ("search", "q", "--mode", "--json"),
    ("search", "q", "--frob"), ("search", "q", "--json=1"), ("search", "q", "--db="),
    ("graph", "defs", "x"), (),
)


def test_a_plain_search_command_line_reads_as_typer_reads_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """`codegraph.cli` parses a plain `search` itself (no typer, no pydantic): to the same
    arguments typer gives the command; anything else is left to typer."""
    from typer.main import get_command
    from typer.testing import CliRunner

    from codegraph import cli as entry
    from codegraph import commands

    declared = {name for p in get_command(commands.app).commands["search"].params  # type: ignore[attr-defined]
                for name in p.opts if name.startswith("--")}
    assert declared == set(entry._SEARCH_VALUES) | set(entry._SEARCH_FLAGS)
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(commands, "run_search", lambda *args: calls.append(args))
    for argv in PLAIN_SEARCHES:
        result = CliRunner().invoke(commands.app, list(argv))
        assert result.exit_code == 0, (argv, result.output)
        assert entry.plain_search(list(argv)) == dict(zip(
            ("query", "mode", "limit", "repo", "db", "as_json", "debug"), calls.pop(), strict=True)), argv
    for argv in NOT_PLAIN:
        assert entry.plain_search(list(argv)) is None, argv


def test_a_search_imports_neither_typer_nor_the_language_plugins(shop_repo: Path, tmp_path: Path) -> None:
    db = str(tmp_path / "db")
    assert cli("index", str(shop_repo), "--db", db, "--no-vectors", "--json").returncode == 0
    probe = ("import json, sys\nfrom codegraph import cli\n"
             f"sys.argv = ['codegraph', 'search', 'customer email', '--db', {db!r}, '--json']\n"
             "cli.main()\n"
             "print(json.dumps(sorted(m for m in ('typer', 'pydantic', 'click', 'codegraph.languages',"
             " 'codegraph.commands') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    answer, modules = proc.stdout.splitlines()
    assert json.loads(answer)["hits"][0]["path"] == "shop/models.py"
    assert json.loads(answer)["hits"][0]["language"] == "python"
    assert json.loads(modules) == []


def test_the_language_table_of_queries_names_what_the_plugins_say() -> None:
    from codegraph.languages import language_for
    from codegraph.names import language_name

    for path in ("a.py", "pkg/m.pyi", "x/tsconfig.json", "tsconfig.base.json", "a/package.json", "b.json",
                 "go.mod", "x/go.mod", "a.go", "q.tsx", "m.mjs", "x.d.ts", "a.cjs", "README", "a.txt", ".py",
                 "a.PY", "dir.py/file"):
        lang = language_for(path)
        assert language_name(path) == (lang.name if lang is not None else None), path
