"""The whole standard library, without vectors: every file is indexed or reported."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

import codegraph
from codegraph.pipeline import IndexOptions
from codegraph.stages import IndexConfig

pytestmark = pytest.mark.slow


def test_every_stdlib_file_is_indexed_or_reported(tmp_path: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    options = IndexOptions(IndexConfig(vectors=False), excludes=["site-packages/"])
    result = codegraph.index(str(stdlib), str(tmp_path / "db"), options=options)
    assert result["state"] == "completed"

    idx = codegraph.open(str(tmp_path / "db"))
    indexed = {f.path for f in idx.store.snapshot_files(idx.snapshot.id)}
    reported = {f["path"] for f in result["files_failed"] + result["files_skipped"]}
    on_disk = {
        str(p.relative_to(stdlib)) for p in stdlib.rglob("*")
        if (p.is_file() or p.is_symlink()) and "site-packages" not in p.parts
        and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }
    assert on_disk - indexed - reported == set()
    assert result["files_total"] == len(on_disk)
    assert len([p for p in indexed if p.endswith(".py")]) > 1700
    # the stdlib's deliberately broken files are reported, not fatal
    assert "test/tokenizedata/badsyntax_pep3120.py" in reported
    assert result["symbols"] > 50_000 and result["edges"] > 100_000
    assert idx.graph("defs", "json.decoder.JSONDecoder")
    hits = idx.search("JSONDecoder raw_decode", mode="lexical", limit=5)
    assert any(h.path == "json/decoder.py" for h in hits)
