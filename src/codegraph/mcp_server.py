"""The MCP server: the tools of `codegraph.tools` over the Model Context Protocol (the official
SDK, 2.x). `codegraph mcp` runs it on stdio; `codegraph serve` mounts its streamable HTTP app.

Thin on purpose: each tool is a typed signature (the SDK derives its input schema from it) that
calls `Tools` in a worker thread, bounded in time. A bad argument is a tool error with one line
of text — from pydantic's validation of the schema, or a `UserError` from the query layer —
and nothing else can escape as a traceback. On stdio, stdout is the protocol: everything else
(the SDK's logging included) goes to stderr.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import anyio
from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from codegraph.errors import CodegraphError
from codegraph.tools import TOOL_DESCRIPTIONS, Tools

DEFAULT_TIMEOUT = 30.0

Name = Annotated[str, Field(min_length=1, max_length=1000, description="Qualified name, short name "
                            "or path:line (or a file path).")]
Depth = Annotated[int, Field(ge=1, le=5, description="Levels to follow (1-5).")]


def build_server(tools: Tools, timeout: float = DEFAULT_TIMEOUT) -> MCPServer:
    server: MCPServer = MCPServer(
        "codegraph",
        instructions="Code search and code-graph queries over an index that codegraph keeps up to "
                     "date. Every answer says which snapshot it came from and whether it is fresh.",
        log_level="WARNING",
    )

    async def call(method: str, **kwargs: Any) -> dict[str, Any]:
        fn = functools.partial(getattr(tools, method), **kwargs)
        try:
            with anyio.fail_after(timeout):
                result: dict[str, Any] = await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
                return result
        except TimeoutError:
            raise ToolError(f"{method} took longer than {timeout:g} s: narrow the query") from None
        except CodegraphError as exc:
            raise ToolError(" ".join(str(exc).split())) from None
        except Exception as exc:  # a bug: one line for the model, never a traceback
            raise ToolError(f"internal error in {method}: {type(exc).__name__}: {exc}") from None

    async def search(
        query: Annotated[str, Field(min_length=1, max_length=2000, description="What to look for.")],
        mode: Literal["lexical", "vector", "hybrid"] | None = None,
        limit: Annotated[int, Field(ge=1, le=200)] = 10,
        repo: Annotated[str | None, Field(max_length=1000, description="One repository: name, "
                                          "path or URL.")] = None,
        path_glob: Annotated[str | None, Field(max_length=500, description="Only paths matching "
                                               "this glob, e.g. src/**/*.py.")] = None,
    ) -> dict[str, Any]:
        return await call("search", query=query, mode=mode, limit=limit, repo=repo, path_glob=path_glob)

    async def definition(name: Name, limit: Annotated[int, Field(ge=1, le=50)] = 5) -> dict[str, Any]:
        return await call("definition", name=name, limit=limit)

    async def callers(name: Name, depth: Depth = 1,
                      limit: Annotated[int, Field(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return await call("callers", name=name, depth=depth, limit=limit)

    async def callees(name: Name, depth: Depth = 1,
                      limit: Annotated[int, Field(ge=1, le=1000)] = 50) -> dict[str, Any]:
        return await call("callees", name=name, depth=depth, limit=limit)

    async def impact(name_or_path: Name, depth: Depth = 2,
                     limit: Annotated[int, Field(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return await call("impact", name_or_path=name_or_path, depth=depth, limit=limit)

    async def outline(path: Annotated[str, Field(min_length=1, max_length=1000, description="A file "
                                                 "path relative to the repository root.")]) -> dict[str, Any]:
        return await call("outline", path=path)

    async def overview(budget_tokens: Annotated[int, Field(ge=50, le=50_000)] = 1000) -> dict[str, Any]:
        return await call("overview", budget_tokens=budget_tokens)

    async def status() -> dict[str, Any]:
        return await call("status")

    for fn in (search, definition, callers, callees, impact, outline, overview, status):
        server.add_tool(fn, name=fn.__name__, description=TOOL_DESCRIPTIONS[fn.__name__])
    return server


def run_stdio(tools: Tools) -> None:
    build_server(tools).run("stdio")
