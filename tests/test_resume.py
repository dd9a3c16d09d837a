"""A run SIGKILLed at any moment resumes where it stopped and ends identical to an uninterrupted
one (compared with `codegraph export`)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from conftest import SHOP, write_tree

CLI = [sys.executable, "-m", "codegraph.cli"]
STDLIB = Path(sysconfig.get_paths()["stdlib"])


def corpus(root: Path, packages: tuple[str, ...]) -> Path:
    for package in packages:
        shutil.copytree(STDLIB / package, root / package, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def start(src: Path, db: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "index", str(src), "--db", str(db), "--json", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(src: Path, db: Path, *extra: str) -> dict:
    proc = start(src, db, *extra)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return json.loads(out)


def export(db: Path) -> str:
    proc = subprocess.run([*CLI, "export", "--db", str(db)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def kill(proc: subprocess.Popen[str]) -> None:
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its parser processes, mid-write
    proc.communicate()


def embeddings_stored(db: Path) -> int:
    if not (db / "index.sqlite").exists():
        return 0
    with sqlite3.connect(db / "index.sqlite") as conn:
        try:
            (n,) = conn.execute("SELECT count(*) FROM embeddings").fetchone()
        except sqlite3.OperationalError:  # the schema is not there yet
            return 0
    return int(n)


def stage_of_last_job(db: Path) -> str | None:
    if not (db / "index.sqlite").exists():
        return None
    with sqlite3.connect(db / "index.sqlite") as conn:
        row = conn.execute("SELECT current_stage FROM jobs ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else None


def test_twenty_kills_across_the_stages_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    src = corpus(tmp_path / "src", ("json", "http", "email", "urllib", "xml"))
    reference_db = tmp_path / "reference"
    t0 = time.monotonic()
    reference = finish(src, reference_db, "--no-vectors")
    full_time = time.monotonic() - t0
    assert reference["state"] == "completed"

    db = tmp_path / "killed"
    stages_hit = set()
    for i in range(20):
        proc = start(src, db, "--no-vectors")
        time.sleep(full_time * (0.1 + 0.85 * i / 19))  # spread over the whole run
        if proc.poll() is None:
            kill(proc)
            stages_hit.add(stage_of_last_job(db))
        else:
            proc.communicate()
    with sqlite3.connect(db / "index.sqlite") as conn:
        (irs_before,) = conn.execute("SELECT count(*) FROM ir_outputs").fetchone()
        (chunk_sets_before,) = conn.execute("SELECT count(*) FROM chunk_sets").fetchone()
    resumed = finish(src, db, "--no-vectors")
    assert resumed["state"] == "completed"
    assert export(db) == export(reference_db)
    assert {"L1_ir", "L2_chunk"} & stages_hit  # the kills did land inside stages
    # Nothing recorded before a kill is computed again: the last run parsed and chunked exactly
    # what was missing (or, when a run got to the end before its kill, found it all complete).
    stages = {s["name"]: s for s in resumed["stages"]}
    first = {s["name"]: s for s in reference["stages"]}
    if stages:
        assert stages["L1_ir"]["files_parsed"] == first["L1_ir"]["files_parsed"] - irs_before
        assert stages["L2_chunk"]["files_chunked"] == first["L2_chunk"]["files_chunked"] - chunk_sets_before
    else:
        assert resumed["reused"]["stages"] == ["L1_ir", "L3_lexical", "L2_chunk"]


@pytest.mark.slow
def test_kills_during_embedding_resume_without_embedding_a_text_twice(tmp_path: Path) -> None:
    src = corpus(write_tree(tmp_path / "src", SHOP), ("json", "http"))
    reference_db = tmp_path / "reference"
    reference = finish(src, reference_db)
    total = reference["embedded"]
    assert total > 30

    db = tmp_path / "killed"
    recorded = 0
    for i in range(3):
        proc = start(src, db)
        deadline = time.monotonic() + 300
        # Kill only after this run committed at least one more batch of vectors: mid-L4 for sure,
        # however slow the machine is today.
        while embeddings_stored(db) <= recorded:
            assert time.monotonic() < deadline and proc.poll() is None, "L4 never progressed"
            time.sleep(0.05)
        time.sleep(0.3 * i)
        kill(proc)
        recorded = embeddings_stored(db)
    before = embeddings_stored(db)
    resumed = finish(src, db)
    assert 0 < before < total  # the kills landed mid-L4
    assert resumed["embedded"] == total - before  # only what no killed run had recorded
    assert export(db) == export(reference_db)
