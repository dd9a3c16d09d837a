"""The command line: thin wrappers over `codegraph.pipeline` and `codegraph.query`.

Every command takes --db and --json. Errors the user can fix print one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from codegraph.errors import CodegraphError
from codegraph.query import GRAPH_QUERIES, MODES, open_index

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Index a repository into a code graph and search indexes, then query them.",
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console(soft_wrap=True)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Store: a directory, a .sqlite file or a postgresql:// URL (default: "
                 "PATH/.codegraph, or CODEGRAPH_DB, or the nearest .codegraph/ above the current "
                 "directory)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]

T = TypeVar("T")


def _guard(debug: bool, fn: Callable[[], T]) -> T:
    """User errors: one line, exit 2. Anything else: one line, exit 1 (traceback with --debug)."""
    try:
        return fn()
    except CodegraphError as exc:
        _error_line(f"error: {exc}")
        raise typer.Exit(2) from None
    except BrokenPipeError:  # `codegraph export | head`: the reader has all it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None
    except KeyboardInterrupt:
        _error_line("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:
        if debug:
            raise
        _error_line(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)")
        raise typer.Exit(1) from None


def _error_line(message: str) -> None:
    """One line, never wrapped: scripts grep these."""
    sys.stderr.write(" ".join(message.split()) + "\n")


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=None, sort_keys=False) + "\n")


class _RichProgress:
    """Stage progress bars on stderr, shown from the first stage on (not for early errors)."""

    def __init__(self) -> None:
        columns = (TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        self.progress = Progress(*columns, console=err, transient=False)
        self.tasks: dict[str, Any] = {}
        self.started = False

    def start(self, stage: str, total: int) -> None:
        if not self.started:
            self.progress.start()
            self.started = True
        if stage in self.tasks:
            self.progress.update(self.tasks[stage], total=total or None)
        else:
            self.tasks[stage] = self.progress.add_task(stage, total=total or None)

    def advance(self, stage: str, n: int = 1) -> None:
        task = self.tasks.get(stage)
        if task is not None:
            self.progress.advance(task, n)


@app.command()
def index(
    path: Annotated[str, typer.Argument(help="Repository or directory to index.")] = ".",
    db: DbOption = None,
    no_vectors: Annotated[bool, typer.Option("--no-vectors", help="Skip L4 (embeddings).")] = False,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Gitignore-style pattern to leave out.")
    ] = None,
    max_file_bytes: Annotated[
        int, typer.Option("--max-file-bytes", min=1, help="Larger files are skipped.")
    ] = 2 * 1024 * 1024,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Parser processes.")] = 2,
    full: Annotated[bool, typer.Option("--full", help="Rebuild everything instead of updating "
                                       "incrementally from the last indexed snapshot.")] = False,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Index the current snapshot of PATH (L1 IR ∥ L3 lexical → L2 chunks → L4 vectors).

    An indexed PATH is updated incrementally: only changed files, and the files that use what
    changed, are recomputed."""
    from codegraph.pipeline import IndexOptions
    from codegraph.pipeline import index as run_index
    from codegraph.stages import IndexConfig

    options = IndexOptions(
        IndexConfig(vectors=not no_vectors, workers=workers), list(exclude or []), max_file_bytes
    )

    def run() -> dict[str, Any]:
        if as_json:
            return run_index(path, db, options, full=full)
        progress = _RichProgress()
        try:
            return run_index(path, db, options, progress, full=full)
        finally:
            if progress.started:
                progress.progress.stop()

    result = _guard(debug, run)
    if as_json:
        _print_json(result)
    else:
        _print_summary(result)
    if result["state"] != "completed":
        raise typer.Exit(1)


def _print_summary(result: dict[str, Any]) -> None:
    title = f"job {result['job_id']}: {result['state']} ({result['mode']})"
    table = Table(title=title, show_header=True)
    for col in ("stage", "status", "seconds"):
        table.add_column(col)
    for stage in result["stages"]:
        table.add_row(stage["name"], stage["status"], f"{stage['duration_ms'] / 1000:.2f}")
    out.print(table)
    out.print(
        f"{result['files_indexed']} of {result['files_total']} files indexed "
        f"({len(result['files_failed'])} failed, {len(result['files_skipped'])} skipped) · "
        f"{result['symbols']} symbols · {result['edges']} edges · {result['chunks']} chunks · "
        f"{result['embedded']} texts embedded · {result['duration_ms'] / 1000:.1f} s",
        highlight=False,
    )
    if result["mode"] == "incremental":
        changed = result["changed_files"]
        speedup = f" · {result['speedup']}x faster than the last full build" if result.get("speedup") else ""
        out.print(
            f"changed: {len(changed['added'])} added, {len(changed['modified'])} modified, "
            f"{len(changed['deleted'])} deleted · {len(result['affected_files'])} files re-resolved"
            f"{speedup}", highlight=False,
        )
    for failure in result["files_failed"][:10]:
        out.print(f"  [yellow]failed[/yellow] {failure['path']}: {failure['reason']}", highlight=False)
    if len(result["files_failed"]) > 10:
        out.print(f"  … and {len(result['files_failed']) - 10} more (see --json)")
    if result.get("error"):
        out.print(f"[red]error:[/red] {result['error']}", highlight=False)
    out.print(f"store: {result['db']}", highlight=False)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    mode: Annotated[
        str | None, typer.Option("--mode", help=f"One of {', '.join(MODES)} (default: hybrid "
                                 "when the index has vectors, else lexical).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many hits.")] = 10,
    repo: Annotated[str | None, typer.Option("--repo", help="Restrict to one repository root.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Ranked hits: path, lines, enclosing symbol, score and a snippet."""

    def run() -> tuple[str, list[Any]]:
        idx = open_index(db, repo)
        chosen = mode or ("hybrid" if idx.has_vectors else "lexical")
        return chosen, idx.search(query, chosen, limit)

    chosen, hits = _guard(debug, run)
    if as_json:
        _print_json({"query": query, "mode": chosen, "hits": [h.as_dict() for h in hits]})
        return
    if not hits:
        out.print("no hits")
    for rank, hit in enumerate(hits, 1):
        out.print(f"[bold]{rank}. {hit.path}:{hit.start_line}-{hit.end_line}[/bold]  "
                  f"{hit.symbol}  [dim]score {hit.score}[/dim]", highlight=False)
        for line in hit.snippet.splitlines():
            out.print(f"    {line}", highlight=False, markup=False)


@app.command()
def graph(
    query: Annotated[str, typer.Argument(help=f"One of: {', '.join(GRAPH_QUERIES)}.")],
    name: Annotated[str, typer.Argument(help="A qualified symbol name or a file path.")],
    repo: Annotated[str | None, typer.Option("--repo", help="Restrict to one repository root.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Answer from the code graph: defs, callers, callees, imports, importers of NAME."""
    rows = _guard(debug, lambda: open_index(db, repo).graph(query, name))
    if as_json:
        _print_json({"query": query, "name": name, "results": rows})
        return
    if not rows:
        out.print("nothing found")
    for row in rows:
        if query == "defs":
            out.print(f"{row['path']}:{row['start_line']}-{row['end_line']}  {row['kind']:<8} "
                      f"{row['qname']}  {row['signature']}", highlight=False)
        else:
            out.print(f"{row['src_path']}:{row['line']}  {row['src']} -> {row['dst']}  "
                      f"({row['dst_path']})", highlight=False)


@app.command()
def export(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="Restrict to one repository root.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write the latest snapshot's whole index canonically (JSON Lines; sorted, no ids or times),
    so that two indexes of the same snapshot compare equal with diff or cmp."""

    def run() -> int:
        idx = open_index(db, repo)
        stream = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            count = 0
            if as_json:
                stream.write('{"snapshot": ' + json.dumps(idx.snapshot.manifest_hash) + ', "facts": [')
            for row in idx.export():
                line = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
                if as_json:
                    stream.write(("," if count else "") + "\n" + line)
                else:
                    stream.write(line + "\n")
                count += 1
            if as_json:
                stream.write("\n]}\n")
            return count
        finally:
            if output:
                stream.close()

    _guard(debug, run)


db_app = typer.Typer(no_args_is_help=True, help="Manage the store itself.")
app.add_typer(db_app, name="db")


@db_app.command("migrate")
def db_migrate(
    db: Annotated[
        str | None,
        typer.Option("--db", help="Store to create or upgrade: postgresql://… or a SQLite path "
                     "(default: CODEGRAPH_DB)."),
    ] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Create the store's schema or apply its pending migrations (safe to run concurrently)."""
    import os

    from codegraph.errors import UserError
    from codegraph.store import migrate_store

    def run() -> dict[str, Any]:
        url = db or os.environ.get("CODEGRAPH_DB")
        if not url:
            raise UserError("no store given: pass --db or set CODEGRAPH_DB")
        return migrate_store(url)

    result = _guard(debug, run)
    if as_json:
        _print_json(result)
        return
    applied = ", ".join(str(v) for v in result["applied"])
    what = f"applied {applied}" if applied else "already up to date"
    out.print(f"{result['db']}: schema version {result['version']} ({what})", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
