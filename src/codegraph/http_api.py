"""`codegraph serve`: one HTTP server with the MCP tools over streamable HTTP (`/mcp`) and the
same tools as a plain JSON API (`/api/<tool>`, OpenAPI schema at `/openapi.json`) — both thin
over `codegraph.tools`.

Security: it binds 127.0.0.1 unless told otherwise, and bound elsewhere it refuses to start
without a bearer token, which every request must then carry (`Authorization: Bearer …`). A
request body over `max_body` bytes is refused (413) before it is read whole, a tool call is
bounded in time (408), and answers are bounded in size by `Tools`.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import anyio
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse

from codegraph.errors import CodegraphError, UserError
from codegraph.tools import TOOL_DESCRIPTIONS, Tools

DEFAULT_PORT = 8765
MAX_BODY = 1 << 20
Scope = dict[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
                Awaitable[None]]


NameQ = Annotated[str, Query(min_length=1, max_length=1000,
                             description="Qualified name, short name or path:line (or a file path).")]
DepthQ = Annotated[int, Query(ge=1, le=5, description="Levels to follow (1-5).")]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_binding(host: str, token: str | None) -> None:
    if not is_loopback(host) and not token:
        raise UserError(f"serving on {host} (not loopback) needs a bearer token: pass --token or set "
                        "CODEGRAPH_TOKEN")


class Guard:
    """ASGI middleware: the bearer token (when one is set) and the request body's size."""

    def __init__(self, app: ASGI, token: str | None, max_body: int) -> None:
        self.app, self.token, self.max_body = app, token, max_body

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None:
            given = headers.get("authorization", "")
            expected = f"Bearer {self.token}"
            if not hmac.compare_digest(given.encode(), expected.encode()):
                await _reply(send, 401, {"error": "missing or wrong bearer token"},
                             [(b"www-authenticate", b"Bearer")])
                return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413, {"error": f"request body over {self.max_body} bytes"})
            return
        seen = 0

        async def bounded_receive() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, bounded_receive, send)
        except _TooLarge:
            await _reply(send, 413, {"error": f"request body over {self.max_body} bytes"})


class _TooLarge(Exception):
    pass


async def _reply(send: Any, status: int, body: dict[str, Any],
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    import json

    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


def build_app(tools: Tools, host: str = "127.0.0.1", token: str | None = None, timeout: float = 30.0,
              max_body: int = MAX_BODY) -> Any:
    """The ASGI application: FastAPI routes under /api, the MCP endpoint at /mcp."""
    from mcp.server.transport_security import TransportSecuritySettings

    from codegraph.mcp_server import build_server

    check_binding(host, token)
    mcp = build_server(tools, timeout)
    security = None if is_loopback(host) else TransportSecuritySettings(enable_dns_rebinding_protection=False)
    mcp_app = mcp.streamable_http_app(streamable_http_path="/mcp", host=host, transport_security=security)

    app = FastAPI(title="codegraph", version="1", lifespan=lambda _: mcp.session_manager.run(),
                  description="Code search and code-graph queries over a codegraph index. Every answer "
                              "names the snapshot it came from and whether it is fresh.")

    async def call(method: str, **kwargs: Any) -> Any:
        fn = functools.partial(getattr(tools, method), **kwargs)
        try:
            with anyio.fail_after(timeout):
                return await anyio.to_thread.run_sync(fn, abandon_on_cancel=True)
        except TimeoutError:
            return JSONResponse({"error": f"{method} took longer than {timeout:g} s"}, status_code=408)
        except CodegraphError as exc:
            return JSONResponse({"error": " ".join(str(exc).split())}, status_code=400)

    @app.get("/api/search", description=TOOL_DESCRIPTIONS["search"])
    async def search(query: Annotated[str, Query(min_length=1, max_length=2000)],
                     mode: Literal["lexical", "vector", "hybrid"] | None = None,
                     limit: Annotated[int, Query(ge=1, le=200)] = 10,
                     repo: Annotated[str | None, Query(max_length=1000)] = None,
                     path_glob: Annotated[str | None, Query(max_length=500)] = None) -> Any:
        return await call("search", query=query, mode=mode, limit=limit, repo=repo, path_glob=path_glob)

    @app.get("/api/definition", description=TOOL_DESCRIPTIONS["definition"])
    async def definition(name: NameQ,
                         limit: Annotated[int, Query(ge=1, le=50)] = 5) -> Any:
        return await call("definition", name=name, limit=limit)

    @app.get("/api/callers", description=TOOL_DESCRIPTIONS["callers"])
    async def callers(name: NameQ, depth: DepthQ = 1,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        return await call("callers", name=name, depth=depth, limit=limit)

    @app.get("/api/callees", description=TOOL_DESCRIPTIONS["callees"])
    async def callees(name: NameQ, depth: DepthQ = 1,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> Any:
        return await call("callees", name=name, depth=depth, limit=limit)

    @app.get("/api/impact", description=TOOL_DESCRIPTIONS["impact"])
    async def impact(name_or_path: NameQ, depth: DepthQ = 2,
                     limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
        return await call("impact", name_or_path=name_or_path, depth=depth, limit=limit)

    @app.get("/api/outline", description=TOOL_DESCRIPTIONS["outline"])
    async def outline(path: Annotated[str, Query(min_length=1, max_length=1000)]) -> Any:
        return await call("outline", path=path)

    @app.get("/api/overview", description=TOOL_DESCRIPTIONS["overview"])
    async def overview(budget_tokens: Annotated[int, Query(ge=50, le=50_000)] = 1000) -> Any:
        return await call("overview", budget_tokens=budget_tokens)

    @app.get("/api/status", description=TOOL_DESCRIPTIONS["status"])
    async def status() -> Any:
        return await call("status")

    app.mount("/", mcp_app)  # after the API's routes: /mcp, the streamable HTTP endpoint
    return Guard(app, token, max_body)


def serve(tools: Tools, host: str = "127.0.0.1", port: int = DEFAULT_PORT, token: str | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    import uvicorn

    app = build_app(tools, host, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", limit_concurrency=64,
                            timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024)
    server = uvicorn.Server(config)
    if on_ready is not None:
        where = f"[{host}]" if ":" in host else host
        on_ready(f"http://{where}:{port}")
    server.run()
