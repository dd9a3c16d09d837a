"""The configuration files TS/JS resolution reads: `tsconfig*.json` / `jsconfig*.json`
(`extends`, `compilerOptions.baseUrl`, `compilerOptions.paths`) and `package.json` (`name`,
`exports`, `types`, `main`, ...). Their L1 output is the relevant part of their content, as
canonical JSON (`FileIR.config`), so that a change to anything else in them changes no fact."""

from __future__ import annotations

import json
from typing import Any

from codegraph.model import FileIR

_COMPILER_OPTIONS = ("baseUrl", "paths")
_PACKAGE_FIELDS = ("name", "exports", "types", "typings", "module", "main")


def strip_jsonc(source: str) -> str:
    """JSON with comments and trailing commas (what tsconfig files allow) to plain JSON."""
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out.append(source[i : j + 1])
            i = j + 1
        elif source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
        elif source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif ch in "}]":
            k = len(out) - 1
            while k >= 0 and out[k].isspace():
                k -= 1
            if k >= 0 and out[k] == ",":
                del out[k]
            out.append(ch)
            i += 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def relevant(data: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {k: data[k] for k in _PACKAGE_FIELDS if k in data}
    if isinstance(data.get("extends"), str | list):
        kept["extends"] = data["extends"]
    options = data.get("compilerOptions")
    if isinstance(options, dict):
        chosen = {k: options[k] for k in _COMPILER_OPTIONS if k in options}
        if chosen:
            kept["compilerOptions"] = chosen
    return kept


def extract(source: str) -> FileIR:
    try:
        data = json.loads(strip_jsonc(source))
    except (ValueError, RecursionError):
        return FileIR([], [], [], None, 1, config="{}")
    if not isinstance(data, dict):
        return FileIR([], [], [], None, 1, config="{}")
    return FileIR([], [], [], None, 0, config=json.dumps(relevant(data), sort_keys=True))


def parsed(ir: FileIR) -> dict[str, Any]:
    try:
        data = json.loads(ir.config or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
