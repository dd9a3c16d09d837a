"""The command line's entry point (`codegraph`, `python -m codegraph.cli`) and what every
command shares: one-line errors, JSON output, the rich consoles.

The commands are typer's (`codegraph.commands`). Typer imports pydantic and builds a pydantic
adapter for every parameter of every command before it runs one (~0.25 s idle: more than a
vector search itself), so the command run most, `search`, is parsed here first when its command
line is plain — the query and search's own options, each once, with values typer would take as
they are — and then neither typer nor pydantic is imported. Anything else (`--help`, an unknown
or repeated option, `--`, a value typer might reject or convert) goes to typer, which answers
exactly as it always did.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from codegraph.errors import CodegraphError

T = TypeVar("T")


class _Console:
    """A rich Console made when first used: a `--json` command never imports rich (~45 ms of
    a CLI search's start-up)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Any = None

    @property
    def real(self) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


err = _Console(stderr=True)
out = _Console(soft_wrap=True)


def _guard(debug: bool, fn: Callable[[], T]) -> T:
    """User errors: one line, exit 2. Anything else: one line, exit 1 (traceback with --debug).
    `SystemExit`, which typer passes through as it does its own `Exit`."""
    try:
        return fn()
    except CodegraphError as exc:
        _error_line(f"error: {exc}")
        raise SystemExit(2) from None
    except BrokenPipeError:  # `codegraph export | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(0) from None
    except KeyboardInterrupt:
        _error_line("interrupted")
        raise SystemExit(130) from None
    except Exception as exc:
        if debug:
            raise
        _error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")
        raise SystemExit(1) from None


def _error_line(message: str) -> None:
    """One line, never wrapped: scripts grep these."""
    sys.stderr.write(" ".join(message.split()) + "\n")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=None, sort_keys=False) + "\n")


def run_search(query: str, mode: str | None, limit: int, repo: str | None, db: str | None,
               as_json: bool, debug: bool) -> None:
    """`codegraph search`, whichever parser read its command line."""
    from codegraph.query import open_index

    def run() -> tuple[Any, str, list[Any]]:
        idx = open_index(db, repo, ann_threshold=None, hold_lexical=False,  # one query: no holding
                         hold_chunks=False)
        chosen = mode or ("hybrid" if idx.has_vectors else "lexical")
        return idx, chosen, idx.search(query, chosen, limit)

    idx, chosen, hits = _guard(debug, run)
    warnings = idx.warnings
    if as_json:
        _print_json({"query": query, "mode": chosen, "hits": [h.as_dict() for h in hits],
                     "warnings": warnings})
        return
    for warning in warnings:  # damaged stored rows the search left out
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    if not hits:
        out.print("no hits")
    several = len(idx.snapshots) > 1
    for rank, hit in enumerate(hits, 1):
        where = f"{idx.repo_name(hit.repo)}:" if several else ""
        out.print(f"[bold]{rank}. {where}{hit.path}:{hit.start_line}-{hit.end_line}[/bold]  "
                  f"{hit.symbol}  [dim]score {hit.score}[/dim]", highlight=False)
        for line in hit.snippet.splitlines():
            out.print(f"    {line}", highlight=False, markup=False)


# `search`'s options as `codegraph.commands.search` declares them (tests/test_cli.py checks).
_SEARCH_VALUES = {"--mode": "mode", "--limit": "limit", "--repo": "repo", "--db": "db"}
_SEARCH_FLAGS = {"--json": "as_json", "--debug": "debug"}


def plain_search(args: list[str]) -> dict[str, Any] | None:
    """`run_search`'s arguments from a plain `search` command line, else None (typer's turn)."""
    if not args or args[0] != "search" or any(k.startswith("_CODEGRAPH") for k in os.environ):
        return None  # (a `_CODEGRAPH_COMPLETE` shell-completion request is typer's)
    found: dict[str, Any] = {}
    positional = []
    rest = iter(args[1:])
    for token in rest:
        if not token.startswith("-"):
            positional.append(token)
            continue
        name, eq, value = token.partition("=")
        if name in _SEARCH_FLAGS and not eq:
            key, value = _SEARCH_FLAGS[name], True
        elif name in _SEARCH_VALUES:
            if not eq:
                value = next(rest, None)
            if not value or value.startswith("-"):  # missing, empty, or what click may read otherwise
                return None
            key = _SEARCH_VALUES[name]
        else:
            return None  # --help, --, an unknown option
        if key in found:
            return None
        found[key] = value
    limit = found.get("limit", "10")
    if len(positional) != 1 or not (limit.isascii() and limit.isdigit()) or int(limit) < 1 \
            or limit != str(int(limit)):
        return None
    return {"query": positional[0], "mode": found.get("mode"), "limit": int(limit),
            "repo": found.get("repo"), "db": found.get("db"),
            "as_json": found.get("as_json", False), "debug": found.get("debug", False)}


def main() -> None:
    search = plain_search(sys.argv[1:])
    if search is not None:
        run_search(**search)
        return
    from codegraph.commands import app

    app()


def __getattr__(name: str) -> Any:
    """`codegraph.cli.app`, the typer application, as before the commands moved out."""
    if name == "app":
        from codegraph.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
