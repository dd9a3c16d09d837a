"""The command line's commands (typer): thin wrappers over `codegraph.pipeline`,
`codegraph.query` and `codegraph.queue`. `codegraph.cli` is the entry point (a plain `search`
is parsed there, without typer).

Every command takes --db and --json. Errors the user can fix print one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from codegraph.cli import _error_line, _guard, _print_json, err, out, run_search
from codegraph.embed import DEFAULT_QUANTISATION, QUANTISATIONS
from codegraph.errors import UserError
from codegraph.query import GRAPH_QUERIES, MODES, open_index

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Index a repository into a code graph and search indexes, then query them.",
    pretty_exceptions_enable=False,
)


DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Store: a directory, a .sqlite file or a postgresql:// URL (default: "
                 "PATH/.codegraph, or CODEGRAPH_DB, or the nearest .codegraph/ above the current "
                 "directory)."),
]
RepoOption = Annotated[
    str | None,
    typer.Option("--repo", help="One repository: its name, path or URL (default: every repository "
                 "in the store)."),
]
# The embedding producer's options: `index` and `worker` take them alike.
ModelOption = Annotated[str | None, typer.Option("--model", help="A sentence-transformers model "
                        "directory to embed with (default: the bundled all-MiniLM-L6-v2).")]
EmbedRuntimeOption = Annotated[str, typer.Option("--embed-runtime", help="auto (onnxruntime where "
                               "it runs, else torch), onnx or torch.")]
QuantizeOption = Annotated[str, typer.Option("--quantize", help="The onnx model's weights: "
                           f"{', '.join(QUANTISATIONS)} (int8: every GEMM, fastest, slightly "
                           "different vectors; int8-*: some of them).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for machines.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")]

T = TypeVar("T")


class _RichProgress:
    """Stage progress bars on stderr, shown from the first stage on (not for early errors)."""

    def __init__(self) -> None:
        # Here, not at the top: a `search` never shows progress, and rich.progress costs it ~0.1 s.
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = (TextColumn("{task.description:<11}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())
        self.progress = Progress(*columns, console=err.real, transient=False)
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
    model: ModelOption = None,
    embed_runtime: EmbedRuntimeOption = "auto",
    quantize: QuantizeOption = DEFAULT_QUANTISATION,
    full: Annotated[bool, typer.Option("--full", help="Rebuild everything instead of updating "
                                       "incrementally from the last indexed snapshot.")] = False,
    rev: Annotated[str | None, typer.Option("--rev", help="Index this commit, branch or tag of the "
                   "git repository PATH (or URL) instead of the files as they are.")] = None,
    cache: Annotated[str | None, typer.Option("--cache", help="Git cache for --rev and URLs "
                     "(default: CODEGRAPH_CACHE or ~/.cache/codegraph).")] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Index the current snapshot of PATH (L1 IR ∥ L3 lexical → L2 chunks → L4 vectors).

    An indexed PATH is updated incrementally: only changed files, and the files that use what
    changed, are recomputed. With --rev (or a git URL for PATH) the commit's tree is indexed from
    a checkout in the git cache, under the repository's identity."""
    import os

    from codegraph.embed import MODEL_NAME
    from codegraph.pipeline import IndexOptions, default_db_for
    from codegraph.pipeline import index as run_index
    from codegraph.source import GitCache, looks_like_url, parse_source
    from codegraph.stages import IndexConfig

    config = IndexConfig(vectors=not no_vectors, workers=workers, model_name=model or MODEL_NAME,
                         embed_runtime=embed_runtime, quantisation=quantize)
    options = IndexOptions(config, list(exclude or []), max_file_bytes)

    def run_at(progress: Any) -> dict[str, Any]:
        if rev is None and not looks_like_url(path):
            return run_index(path, db, options, progress, full=full)
        source = parse_source(path)
        store = db or os.environ.get("CODEGRAPH_DB")
        if store is None:
            if source.is_url:
                raise UserError("a URL needs --db (or CODEGRAPH_DB): where should its index go?")
            store = default_db_for(Path(source.location))
        with GitCache(cache).checkout(source, rev) as checkout:
            return run_index(checkout.path, store, options, progress, full=full,
                             repo=source.identity, commit=checkout.commit)

    def run() -> dict[str, Any]:
        config.stage_keys()  # a bad --model, --embed-runtime or --quantize: one line, before any job
        if as_json:
            return run_at(None)
        progress = _RichProgress()
        try:
            return run_at(progress)
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
    from rich.table import Table

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
    if result["mode"] == "superseded":
        out.print(f"nothing indexed: job {result['superseded_by']}, enqueued later, already indexed "
                  "this repository", highlight=False)
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
    repo: RepoOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Ranked hits: path, lines, enclosing symbol, score and a snippet."""
    run_search(query, mode, limit, repo, db, as_json, debug)


@app.command()
def graph(
    query: Annotated[str, typer.Argument(help=f"One of: {', '.join(GRAPH_QUERIES)}.")],
    name: Annotated[str, typer.Argument(help="A qualified symbol name or a file path.")],
    repo: RepoOption = None,
    db: DbOption = None,
    no_dispatch: Annotated[bool, typer.Option(
        "--no-dispatch", help="callers/callees: leave out the subclass overrides a call on "
        "self/cls may reach (dispatch edges).")] = False,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Answer from the code graph: defs, callers, callees, imports, importers of NAME. Call
    edges show their kind: direct, constructor (a class called) or dispatch (an override)."""

    def run() -> tuple[Any, list[dict[str, Any]]]:
        idx = open_index(db, repo)
        return idx, idx.graph(query, name, dispatch=not no_dispatch)

    idx, rows = _guard(debug, run)
    if as_json:
        _print_json({"query": query, "name": name, "results": rows})
        return
    if not rows:
        out.print("nothing found")
    several = len(idx.snapshots) > 1
    for row in rows:
        where = f"{idx.repo_name(row['repo'])}:" if several else ""
        if query == "defs":
            out.print(f"{where}{row['path']}:{row['start_line']}-{row['end_line']}  {row['kind']:<8} "
                      f"{row['qname']}  {row['signature']}", highlight=False)
        else:
            kind = f"  [{row['call_kind']}]" if row["call_kind"] else ""
            out.print(f"{where}{row['src_path']}:{row['line']}  {row['src']} -> {row['dst']}  "
                      f"({row['dst_path']}){kind}", highlight=False, markup=False)


@app.command()
def export(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="File to write (default stdout).")
    ] = None,
    repo: Annotated[str | None, typer.Option("--repo", help="The repository: its name, path or URL "
                    "(needed when the store holds several).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Write the latest snapshot's whole index canonically (JSON Lines; sorted, no ids or times),
    so that two indexes of the same snapshot compare equal with diff or cmp."""

    def run() -> int:
        idx = open_index(db, repo)
        snapshot = idx.snapshot  # one repository, or a one-line error before any output
        stream = open(output, "w", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
        try:
            count = 0
            if as_json:
                stream.write('{"snapshot": ' + json.dumps(snapshot.manifest_hash) + ', "facts": [')
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


# ----- live queries and servers: definition, outline, impact, overview, status, mcp, serve, watch --

def _tools(db: str | None, repo: str | None = None, live: Any = None) -> Any:
    from codegraph.tools import Tools

    return Tools.open(db, repo, live)


def _print_answer(answer: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        _print_json(answer)
        return
    render(answer)
    for snap in answer.get("snapshots", []):
        if not snap["fresh"]:
            err.print(f"[yellow]not fresh:[/yellow] {snap['repo']}: {'; '.join(snap['stale_because'])}",
                      highlight=False)
    cut = answer.get("truncated") or {}
    if cut.get("items_omitted") or cut.get("chars_cut"):
        err.print(f"(cut: {cut.get('items_omitted', 0)} more items, {cut.get('chars_cut', 0)} characters;"
                  " see --limit)", highlight=False)


@app.command()
def definition(
    name: Annotated[str, typer.Argument(help="A qualified name, a short name or path:line.")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=50)] = 5,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A symbol's source, signature, docstring and location."""
    answer = _guard(debug, lambda: _tools(db).definition(name, limit))

    def render(a: dict[str, Any]) -> None:
        for d in a["definitions"]:
            out.print(f"[bold]{d['path']}:{d['start_line']}-{d['end_line']}[/bold]  {d['kind']} {d['qname']}",
                      highlight=False)
            out.print(d["source"], highlight=False, markup=False)

    _print_answer(answer, as_json, render)


@app.command()
def outline(
    path: Annotated[str, typer.Argument(help="A file path relative to the repository root.")],
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A file's symbols, nested."""
    answer = _guard(debug, lambda: _tools(db).outline(path))

    def show(symbols: list[dict[str, Any]], indent: int) -> None:
        for sym in symbols:
            text = sym["signature"] or sym["name"]
            out.print(f"{'  ' * indent}{sym['start_line']:>5}  {sym['kind']:<8} {text}",
                      highlight=False, markup=False)
            show(sym["children"], indent + 1)

    def render(a: dict[str, Any]) -> None:
        for f in a["files"]:
            out.print(f"[bold]{f['path']}[/bold] ({f['module']})", highlight=False)
            show(f["symbols"], 1)

    _print_answer(answer, as_json, render)


@app.command()
def impact(
    name_or_path: Annotated[str, typer.Argument(help="A symbol (qualified or short) or a file path.")],
    depth: Annotated[int, typer.Option("--depth", min=1, max=5)] = 2,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """What an edit of NAME_OR_PATH can affect: dependent files and symbols, transitively."""
    answer = _guard(debug, lambda: _tools(db).impact(name_or_path, depth, limit))

    def render(a: dict[str, Any]) -> None:
        out.print(f"{a['total_files']} files, {a['total_symbols']} symbols", highlight=False)
        for f in a["files"]:
            out.print(f"  file   {f['path']}  (depth {f['depth']}, {f['via']})", highlight=False)
        for sym in a["symbols"]:
            out.print(f"  symbol {sym['qname']}  {sym['path']}:{sym['line']}  (depth {sym['depth']}, "
                      f"{sym['via']})", highlight=False)

    _print_answer(answer, as_json, render)


@app.command()
def overview(
    budget_tokens: Annotated[int, typer.Option("--budget-tokens", min=50, max=50_000)] = 1000,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """The most central files and symbols (PageRank over the code graph), fitted to a budget."""
    answer = _guard(debug, lambda: _tools(db).overview(budget_tokens))

    def render(a: dict[str, Any]) -> None:
        for f in a["files"]:
            out.print(f"{f['score']:>8.3f}  {f['path']}  {', '.join(f['top_symbols'])}", highlight=False)

    _print_answer(answer, as_json, render)


@app.command()
def status(db: DbOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """Per repository: snapshot, commit, when indexed, files changed on disk since, updates."""
    answer = _guard(debug, lambda: _tools(db).status())

    def render(a: dict[str, Any]) -> None:
        for r in a["repositories"]:
            disk = r.get("disk", {})
            changed = (f"{disk['changed']} files changed on disk since" if disk.get("available")
                       else disk.get("reason", ""))
            out.print(f"[bold]{r['repo']}[/bold]  snapshot {r['snapshot'][:12]} ({r['files']} files, "
                      f"{r['mode']}) indexed {r['indexed_at']}"
                      + (f" at {r['commit'][:12]}" if r.get("commit") else "")
                      + f" · {changed}" + (" · updating" if r["updating"] else "")
                      + (f" · {r['queued']} queued" if r["queued"] else ""), highlight=False)

    _print_answer(answer, as_json, render)


def _start_watch(paths: list[str], db: str | None, vectors: bool | None, workers: int) -> Any:
    """A running watcher whose first updates are done (so there is a snapshot to serve)."""
    from codegraph.watch import Watcher

    watcher = Watcher(paths, db, vectors, workers).start()
    while not watcher.ready.wait(0.5):
        pass
    return watcher


def _serving_db(db: str | None, paths: list[str]) -> str | None:
    import os

    from codegraph.pipeline import default_db_for

    if db or os.environ.get("CODEGRAPH_DB") or not paths:
        return db
    return default_db_for(Path(paths[0]).expanduser().resolve())


WatchPaths = Annotated[list[str] | None, typer.Argument(help="Repositories to keep up to date "
                       "(with --watch).", show_default=False)]
WatchOption = Annotated[bool, typer.Option("--watch", help="Keep the PATHs indexed as files change.")]
VectorsOption = Annotated[bool | None, typer.Option("--vectors/--no-vectors", help="Embed changed "
                          "chunks (default: as the existing index does).")]


@app.command()
def mcp(
    paths: WatchPaths = None,
    watch_: WatchOption = False,
    repo: RepoOption = None,
    vectors: VectorsOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 2,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve the index over MCP on stdio (for an agent: see README). Logs go to stderr."""
    from codegraph.mcp_server import run_stdio

    def run() -> None:
        chosen = _serving_db(db, list(paths or []))
        live = _start_watch(list(paths or ["."]), chosen, vectors, workers) if watch_ else None
        run_stdio(_tools(chosen, repo, live))

    _guard(debug, run)


@app.command()
def serve(
    paths: WatchPaths = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind; anything but loopback needs "
                    "--token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535)] = 8765,
    token: Annotated[str | None, typer.Option("--token", envvar="CODEGRAPH_TOKEN", help="Bearer token "
                     "every request must carry (default: CODEGRAPH_TOKEN).", show_default=False)] = None,
    watch_: WatchOption = False,
    repo: RepoOption = None,
    vectors: VectorsOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 2,
    db: DbOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve the tools over HTTP: MCP (streamable HTTP) at /mcp, a JSON API at /api/<tool>
    (OpenAPI at /openapi.json)."""
    from codegraph.http_api import check_binding
    from codegraph.http_api import serve as run_server

    def run() -> None:
        check_binding(host, token)
        chosen = _serving_db(db, list(paths or []))
        live = _start_watch(list(paths or ["."]), chosen, vectors, workers) if watch_ else None
        run_server(_tools(chosen, repo, live), host, port, token,
                   on_ready=lambda url: _error_line(f"serving {url}/mcp (MCP) and {url}/api (JSON, "
                                                    f"{url}/docs)"))

    _guard(debug, run)


@app.command()
def watch(
    paths: Annotated[list[str] | None, typer.Argument(help="Repositories to keep up to date.")] = None,
    vectors: VectorsOption = None,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 2,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Keep PATHs (default: .) indexed: an incremental update per burst of file changes, until
    Ctrl-C. With --json, one line per update (its result)."""
    from codegraph.watch import Watcher

    def on_update(_: Any, result: dict[str, Any]) -> None:
        if as_json:
            _print_json(result)
            sys.stdout.flush()

    def run() -> None:
        Watcher(list(paths or ["."]), db, vectors, workers, on_update=on_update).run_forever()

    _guard(debug, run)


cache_app = typer.Typer(help="What the store keeps: per-stage outputs, and pruning them.",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")


def _open_store(db: str | None) -> Any:
    from codegraph.query import find_db
    from codegraph.store import open_store

    url = find_db(db)
    if "://" not in url and not Path(url).exists():
        raise UserError(f"no index at {url}")
    return open_store(url, create=False)


@cache_app.command("stats")
def cache_stats(db: DbOption = None, as_json: JsonOption = False, debug: DebugOption = False) -> None:
    """Stored outputs per stage: rows, bytes, and how many no kept snapshot uses."""
    stats = _guard(debug, lambda: _open_store(db).cache_stats())
    if as_json:
        _print_json({"kinds": stats})
        return
    from rich.table import Table

    table = Table(show_header=True)
    for col in ("kind", "rows", "MB", "unused"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    for row in stats:
        table.add_row(row["kind"], str(row["rows"]), f"{row['bytes'] / 1e6:.1f}", str(row["unused"]))
    out.print(table)


@cache_app.command("prune")
def cache_prune(
    keep: Annotated[int, typer.Option("--keep", min=1, help="Newest complete snapshots to keep "
                                      "per repository.")] = 2,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete older snapshots and every stored output the kept ones do not use (never what the
    latest snapshot, or a run in progress, needs)."""
    deleted = _guard(debug, lambda: _open_store(db).prune(keep))
    if as_json:
        _print_json({"keep": keep, "deleted": deleted})
        return
    out.print("deleted: " + ", ".join(f"{n} {kind}" for kind, n in deleted.items()), highlight=False)


# ----- jobs: enqueue, worker, jobs ----------------------------------------------------------

QueueDbOption = Annotated[
    str | None,
    typer.Option("--db", help="Queue and store: a directory, a .sqlite file or postgresql://… "
                 "(default: CODEGRAPH_DB, or the nearest .codegraph/ above the current directory)."),
]


def _job_dict(job: Any, events: list[Any] | None = None) -> dict[str, Any]:
    from dataclasses import asdict

    value = asdict(job)
    value["errors"] = json.loads(job.errors or "[]")
    value["result"] = json.loads(job.result) if job.result else None
    if events is not None:
        value["events"] = [asdict(e) for e in events]
    return value


def _queue_guard(debug: bool, fn: Callable[[], T]) -> T:
    """Queue refusals (illegal transition, unknown job, a conflicting job) are user errors."""
    from codegraph.errors import UserError
    from codegraph.jobs import IllegalTransition
    from codegraph.queue import JobConflict

    def run() -> T:
        try:
            return fn()
        except (IllegalTransition, JobConflict) as exc:
            raise UserError(str(exc)) from exc

    return _guard(debug, run)


def _open_queue(db: str | None) -> Any:
    from codegraph.query import find_db
    from codegraph.queue import open_queue

    return open_queue(find_db(db))


def _get_job(queue: Any, job_id: int) -> Any:
    from codegraph.errors import UserError

    job = queue.get(job_id)
    if job is None:
        raise UserError(f"no job {job_id} in {queue.url}")
    return job


def _when(ts: float | None) -> str:
    import datetime as dt

    return "-" if ts is None else dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def enqueue(
    source: Annotated[str, typer.Argument(help="A git URL (https, ssh, git, file://, user@host:path) "
                      "or a local directory or git repository.")] = ".",
    rev: Annotated[str | None, typer.Option("--rev", help="The commit, branch or tag to index (a git "
                   "repository); default: a URL's default branch, a directory's files as they are "
                   "now.")] = None,
    priority: Annotated[int, typer.Option("--priority", help="Higher runs first.")] = 0,
    max_attempts: Annotated[int, typer.Option("--max-attempts", min=1)] = 3,
    model: Annotated[str | None, typer.Option("--model", help="A sentence-transformers model "
                     "directory, as its workers see it (default: the worker's).")] = None,
    embed_runtime: Annotated[str | None, typer.Option("--embed-runtime", help="auto, onnx or torch "
                             "(default: the worker's).")] = None,
    quantize: Annotated[str | None, typer.Option("--quantize", help=f"{', '.join(QUANTISATIONS)} "
                        "(default: the worker's).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Queue an index run of SOURCE for a worker. Idempotent: a snapshot that already has a queued
    or running job (with the same options) gets that job back. --model, --embed-runtime and
    --quantize are the job's own, over the worker's."""
    import os

    from codegraph.pipeline import default_db_for
    from codegraph.queue import enqueue_path, open_queue, run_options
    from codegraph.source import parse_source

    def run() -> tuple[Any, bool]:
        options = run_options(model, embed_runtime, quantize)  # a bad one: one line, nothing queued
        parsed = parse_source(source)
        url = db or os.environ.get("CODEGRAPH_DB")
        if url is None and parsed.is_url:
            raise UserError("a repository URL has no local store: pass --db or set CODEGRAPH_DB")
        url = url or default_db_for(Path(parsed.location))
        return enqueue_path(open_queue(url), source, rev, priority, max_attempts, options)

    job, created = _queue_guard(debug, run)
    if as_json:
        _print_json({**_job_dict(job), "created": created})
    else:
        out.print(f"job {job.id} {'queued' if created else 'already ' + job.state} "
                  f"({job.repo} @ {(job.snapshot or '')[:16]})", highlight=False)


@app.command()
def worker(
    db: QueueDbOption = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Jobs at once.")] = 1,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once no job is queued.")] = False,
    lease: Annotated[float, typer.Option("--lease", min=0.1, help="Lease seconds; a job whose "
                     "worker stops renewing it is rescued after this.")] = 30.0,
    grace: Annotated[float, typer.Option("--grace", min=0, help="Seconds a running job gets to "
                     "finish after SIGTERM before it is released.")] = 10.0,
    no_vectors: Annotated[bool, typer.Option("--no-vectors", help="Skip L4 (embeddings).")] = False,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Parser processes per job.")] = 2,
    model: ModelOption = None,
    embed_runtime: EmbedRuntimeOption = "auto",
    quantize: QuantizeOption = DEFAULT_QUANTISATION,
    cache: Annotated[str | None, typer.Option("--cache", help="This worker's git cache: a clone per "
                     "repository URL, a checkout per job (default: CODEGRAPH_CACHE, else "
                     "~/.cache/codegraph).")] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.01, hidden=True)] = 1.0,
    backoff: Annotated[float, typer.Option("--backoff", min=0, hidden=True)] = 2.0,
    runner: Annotated[str | None, typer.Option("--runner", hidden=True)] = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Claim queued jobs and run them until SIGTERM (or, with --burst, until none is queued)."""
    from codegraph.jobs import RetryPolicy
    from codegraph.queue.worker import Worker, WorkerConfig, load_runner, pipeline_runner

    def run() -> Any:
        # A bad --model, --embed-runtime or --quantize: one line before the queue is opened.
        chosen = load_runner(runner) if runner else pipeline_runner(
            not no_vectors, workers, cache, model, embed_runtime, quantize)
        queue = _open_queue(db)
        config = WorkerConfig(queue.url, concurrency, burst, lease, grace, poll,
                              RetryPolicy(base=backoff, cap=max(300.0, backoff)))
        return Worker(queue, chosen, config, handle_signals=True).run()

    stats = _queue_guard(debug, run)
    if as_json:
        _print_json({"claimed": stats.claimed, "outcomes": stats.outcomes, "rescued": stats.rescued})
    if stats.abandoned:
        # Their jobs are released and every later write of theirs is fenced off; do not let a
        # pipeline's process pool hold the exit up.
        sys.stdout.flush()
        sys.stderr.flush()
        import os

        os._exit(0)


jobs_app = typer.Typer(help="List, inspect, cancel and retry jobs.", no_args_is_help=False)
app.add_typer(jobs_app, name="jobs")


@jobs_app.callback(invoke_without_command=True)
def jobs_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="queued, running, completed, failed "
                     "or cancelled.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    db: QueueDbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """The newest jobs (all, or in one state)."""
    if ctx.invoked_subcommand is not None:
        return
    from codegraph.errors import UserError
    from codegraph.jobs import JobState

    def run() -> list[Any]:
        if state is not None and state not in {s.value for s in JobState}:
            raise UserError(f"unknown state {state!r}: one of {', '.join(s.value for s in JobState)}")
        return _open_queue(db).list(state, limit)  # type: ignore[no-any-return]

    rows = _queue_guard(debug, run)
    if as_json:
        _print_json({"jobs": [_job_dict(j) for j in rows]})
        return
    if not rows:
        out.print("no jobs")
        return
    from rich.table import Table

    table = Table(show_header=True)
    for col in ("id", "state", "attempt", "stage", "worker", "queued", "repo", "error"):
        table.add_column(col)
    for j in rows:
        table.add_row(str(j.id), j.state, f"{j.attempt}/{j.max_attempts}", j.current_stage or "",
                      j.worker_id or "", _when(j.queued_at), j.repo,
                      f"{j.error_class}: {j.last_error}" if j.last_error else "")
    out.print(table)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    db: QueueDbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """One job and its audit trail (every transition, with attempt and worker)."""

    def run() -> tuple[Any, list[Any]]:
        queue = _open_queue(db)
        job = _get_job(queue, job_id)
        return job, queue.events(job_id)

    job, events = _queue_guard(debug, run)
    if as_json:
        _print_json(_job_dict(job, events))
        return
    out.print(f"[bold]job {job.id}: {job.state}[/bold]" + (" [red](needs an operator)[/red]"
              if job.needs_operator else "") + (" (cancel requested)" if job.cancel_requested else ""))
    for label, value in (("repo", job.repo), ("rev", job.rev), ("snapshot", job.snapshot),
                         ("priority", job.priority), ("attempt", f"{job.attempt}/{job.max_attempts}"),
                         ("worker", job.worker_id), ("stage", job.current_stage),
                         ("lease", f"token {job.lease_token}, expires {_when(job.lease_expires_at)}"),
                         ("queued", _when(job.queued_at)), ("started", _when(job.started_at)),
                         ("finished", _when(job.finished_at)), ("retry at", _when(job.next_retry_at)),
                         ("last error", f"{job.error_class}: {job.last_error}" if job.last_error else None)):
        if value not in (None, "", "-"):
            out.print(f"  {label:<10} {value}", highlight=False, markup=False)
    for attempt in json.loads(job.errors or "[]"):
        out.print(f"  attempt {attempt['attempt']}: {attempt['error_class']}: {attempt['error']}",
                  highlight=False, markup=False)
    out.print("events:")
    for e in events:
        out.print(f"  {_when(e.at)}  {e.from_state or '-':>9} -> {e.to_state:<9} attempt {e.attempt}"
                  f"  {e.worker_id or ''}  {e.detail or ''}", highlight=False, markup=False)


def _operate(db: str | None, job_id: int, operation: str, debug: bool) -> Any:
    """An operator's transition (`cancel`, `retry`) of an existing job; refusals are one line."""

    def run() -> Any:
        queue = _open_queue(db)
        _get_job(queue, job_id)
        return getattr(queue, operation)(job_id)

    return _queue_guard(debug, run)


@jobs_app.command("cancel")
def jobs_cancel(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    db: QueueDbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Cancel a queued job now; a running one stops at its next stage boundary."""
    job = _operate(db, job_id, "cancel", debug)
    if as_json:
        _print_json(_job_dict(job))
    elif job.state == "cancelled":
        out.print(f"job {job.id} cancelled")
    else:
        out.print(f"job {job.id} is {job.state}: asked to stop at its next stage boundary")


@jobs_app.command("retry")
def jobs_retry(
    job_id: Annotated[int, typer.Argument(help="Job id.")],
    db: QueueDbOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Put a failed job back in the queue with fresh attempts (its earlier errors are kept)."""
    job = _operate(db, job_id, "retry", debug)
    if as_json:
        _print_json(_job_dict(job))
    else:
        out.print(f"job {job.id} queued again")


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

