"""The MCP server and the HTTP API (issue 14): the SDK's in-process client against the server
object, a real stdio session, the JSON API and MCP over streamable HTTP against a running server
on loopback, a bounded schemathesis fuzz of the OpenAPI schema, and the security rules."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import codegraph
from codegraph.pipeline import IndexOptions, index
from codegraph.stages import IndexConfig
from conftest import SHOP, write_tree

CLI = [sys.executable, "-m", "codegraph.cli"]
TOOLS = {"search", "definition", "callers", "callees", "impact", "outline", "overview", "status"}
CALLS: dict[str, dict[str, Any]] = {
    "search": {"query": "total price", "limit": 3},
    "definition": {"name": "shop.models.Customer"},
    "callers": {"name": "shop.pricing.total_price", "depth": 2},
    "callees": {"name": "shop.checkout.checkout"},
    "impact": {"name_or_path": "shop/pricing.py", "depth": 2},
    "outline": {"path": "shop/models.py"},
    "overview": {"budget_tokens": 200},
    "status": {},
}
TRAVERSALS = ["../../etc/passwd", "/etc/passwd", "shop/../../../etc/passwd", "/etc/passwd:1",
              "..\\..\\etc\\passwd", "shop/models.py/../../../../etc/hostname"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("serve")
    repo = write_tree(tmp / "repo", SHOP)
    db = str(tmp / "db")
    assert index(repo, db, IndexOptions(IndexConfig(vectors=False)))["state"] == "completed"
    return repo, db


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check_answer(name: str, answer: dict[str, Any]) -> None:
    """Every answer names its snapshot and whether it is fresh; each tool answers its question."""
    assert answer["snapshots"] and all(len(s["snapshot"]) == 32 for s in answer["snapshots"])
    assert isinstance(answer["fresh"], bool)
    if name == "search":
        hit = answer["hits"][0]
        assert hit["path"] == "shop/pricing.py" and hit["symbol"].startswith("shop.pricing")
        assert {"start_line", "end_line", "score", "snippet"} <= set(hit)
        assert answer["truncated"] == {"items_omitted": 0, "chars_cut": 0}
    elif name == "definition":
        d = answer["definitions"][0]
        assert d["path"] == "shop/models.py" and d["kind"] == "class"
        assert d["docstring"] == "A paying customer."
        assert d["source"].startswith("class Customer(Base):") and "has_email" in d["source"]
    elif name == "callers":
        edges = {(e["src"], e["depth"]) for e in answer["edges"]}
        assert ("shop.checkout.checkout", 1) in edges and ("shop.checkout.helper.inner", 2) in edges
        assert all(e["kind"] == "calls" and e["line"] > 0 for e in answer["edges"])
    elif name == "callees":
        assert {"shop.models.Customer", "shop.pricing.total_price"} <= {e["dst"] for e in answer["edges"]}
    elif name == "impact":
        assert {"shop/checkout.py", "shop/__init__.py"} <= {f["path"] for f in answer["files"]}
        assert "shop.checkout.checkout" in {s["qname"] for s in answer["symbols"]}
    elif name == "outline":
        (f,) = answer["files"]
        _, customer = f["symbols"]
        assert customer["name"] == "Customer" and [c["name"] for c in customer["children"]] == [
            "validate", "has_email"]
    elif name == "overview":
        assert answer["files"] and len(json.dumps(answer["files"])) <= 200 * 4
        assert answer["files"][0]["path"] in ("shop/models.py", "shop/pricing.py")
    elif name == "status":
        (r,) = answer["repositories"]
        assert r["disk"] == {"available": True, "changed": 0, "paths": []} and r["updating"] is False


def test_the_sdk_client_in_process_lists_and_calls_every_tool(served: tuple[Path, str]) -> None:
    from mcp import Client

    from codegraph.mcp_server import build_server
    from codegraph.tools import Tools

    _, db = served

    async def session() -> None:
        async with Client(build_server(Tools.open(db))) as client:
            listed = (await client.list_tools()).tools
            assert {t.name for t in listed} == TOOLS
            assert all(t.description and len(t.description) < 200 for t in listed)
            assert listed[0].input_schema["properties"]["limit"]["maximum"] == 200
            for name, args in CALLS.items():
                result = await client.call_tool(name, args)
                assert not result.is_error, result.content
                _check_answer(name, result.structured_content or {})
            # Bad arguments: a tool error with a line of text, and the session goes on.
            for name, args in [("callers", {"name": "x", "depth": 99}), ("search", {"query": 5}),
                               ("search", {"query": "x", "mode": "fuzzy"}),
                               ("definition", {"name": "no_such_symbol"}),
                               ("overview", {"budget_tokens": 1})]:
                result = await client.call_tool(name, args)
                assert result.is_error and "Traceback" not in result.content[0].text
            for path in TRAVERSALS:
                for name, args in [("outline", {"path": path}), ("definition", {"name": path}),
                                   ("impact", {"name_or_path": path}), ("callers", {"name": path})]:
                    result = await client.call_tool(name, args)
                    text = json.dumps(result.structured_content) + result.content[0].text
                    assert result.is_error and "root:" not in text, (name, path, text)
            assert not (await client.call_tool("status", {})).is_error

    asyncio.run(session())


def test_a_stdio_session_initializes_lists_and_calls_each_tool(served: tuple[Path, str]) -> None:
    from mcp import Client, StdioServerParameters

    _, db = served
    params = StdioServerParameters(command=sys.executable, args=["-m", "codegraph.cli", "mcp", "--db", db],
                                   env={**os.environ})

    async def session() -> None:
        async with Client(params, read_timeout_seconds=60) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            for name, args in CALLS.items():
                result = await client.call_tool(name, args)
                assert not result.is_error, result.content
                _check_answer(name, result.structured_content or {})
            assert (await client.call_tool("outline", {"path": "/etc/passwd"})).is_error

    asyncio.run(asyncio.wait_for(session(), 120))


@pytest.fixture(scope="module")
def server(served: tuple[Path, str]) -> Iterator[tuple[str, str]]:
    """`codegraph serve` on loopback with a bearer token: (base URL, token)."""
    _, db = served
    port, token = _free_port(), "s3cret-token"
    proc = subprocess.Popen([*CLI, "serve", "--db", db, "--port", str(port)],
                            env={**os.environ, "CODEGRAPH_TOKEN": token}, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/api/status", timeout=2)
            break
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
    try:
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_the_json_api_answers_every_tool_and_requires_the_token(server: tuple[str, str]) -> None:
    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(base + "/api/status").status_code == 401
    assert httpx.get(base + "/api/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(base + "/mcp").status_code == 401
    for name, args in CALLS.items():
        response = httpx.get(f"{base}/api/{name}", params=args, headers=auth, timeout=30)
        assert response.status_code == 200, response.text
        _check_answer(name, response.json())
    schema = httpx.get(base + "/openapi.json", headers=auth).json()
    assert {p.removeprefix("/api/") for p in schema["paths"]} == TOOLS
    for path in TRAVERSALS:
        response = httpx.get(base + "/api/outline", params={"path": path}, headers=auth)
        assert response.status_code == 400 and "root:" not in response.text
    bad = httpx.get(base + "/api/callers", params={"name": "x", "depth": 9}, headers=auth)
    assert bad.status_code == 422
    big = httpx.post(base + "/mcp", content=b"x" * (2 << 20), headers=auth)
    assert big.status_code == 413


def test_mcp_over_streamable_http_calls_the_same_tools(server: tuple[str, str]) -> None:
    import httpx2  # the SDK's HTTP client
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    base, token = server

    async def session() -> None:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        async with http, Client(streamable_http_client(base + "/mcp", http_client=http)) as client:
            assert {t.name for t in (await client.list_tools()).tools} == TOOLS
            result = await client.call_tool("definition", CALLS["definition"])
            _check_answer("definition", result.structured_content or {})

    asyncio.run(asyncio.wait_for(session(), 60))


def test_a_fuzz_of_the_openapi_schema_finds_no_server_error(server: tuple[str, str]) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    base, token = server
    auth = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_url(base + "/openapi.json", headers=auth)
    statuses: list[int] = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=5, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            response = case.call(base_url=base, headers=auth, timeout=30)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.path, case.query, response.text)

        fuzz()
    assert len(statuses) >= 8 and {200, 422} <= set(statuses) | {422}


def test_serve_refuses_a_non_loopback_address_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CODEGRAPH_TOKEN"}
    proc = subprocess.run([*CLI, "serve", "--db", str(tmp_path), "--host", "0.0.0.0"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "needs a bearer token" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_answers_are_bounded_and_say_what_was_cut(served: tuple[Path, str]) -> None:
    from codegraph.tools import Tools

    _, db = served
    tools = Tools.open(db, max_chars=300)
    answer = tools.definition("shop.models.Customer")
    assert answer["truncated"]["chars_cut"] > 0 and answer["definitions"][0]["source"].endswith("[cut]")
    assert len(json.dumps(answer["definitions"])) < 400
    answer = tools.search("customer", limit=1)
    assert len(answer["hits"]) == 1
    wide = Tools.open(db).callers("shop/pricing.py", limit=1)
    assert len(wide["edges"]) == 1 and wide["truncated"]["items_omitted"] >= 1


def test_overview_ranks_calls_not_possible_overrides(tmp_path: Path) -> None:
    """A method called through `self` from many places reaches every override as a dispatch
    edge; the overrides are not used that much, so they must not outrank what calls them."""
    callers = "".join(f"    def use{i}(self):\n        return self.step()\n\n" for i in range(12))
    overrides = "".join(f"class Impl{i}(Base):\n    def step(self):\n        return {i}\n\n\n"
                        for i in range(6))
    repo = write_tree(tmp_path / "repo", {
        "pkg/__init__.py": "",
        "pkg/base.py": f"class Base:\n    def step(self):\n        return 0\n\n{callers}",
        "pkg/impls.py": f"from pkg.base import Base\n\n\n{overrides}",
    })
    db = str(tmp_path / "db")
    index(str(repo), db, options=IndexOptions(IndexConfig(vectors=False)))
    idx = codegraph.open(db)
    edges, _ = idx.store.snapshot_graph(idx.snapshot.id)
    assert {e.call_kind for e in edges if e.kind == "calls"} >= {"direct", "dispatch"}
    ranks = idx.ranking(idx.snapshot)["symbols"]
    assert ranks["pkg.base.Base.step"] > max(ranks.get(f"pkg.impls.Impl{i}.step", 0.0) for i in range(6))
