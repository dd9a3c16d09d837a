"""This process's SQLite connections (codegraph.store.connections): checkpoints off the
committing thread, connections closed when their thread or store is gone."""

from __future__ import annotations

import gc
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from codegraph.queue.sqlite import SqliteJobQueue
from codegraph.store import connections
from codegraph.store.base import LexicalDoc, LexicalUnit
from codegraph.store.sqlite import SqliteStore


def _big_docs(n: int) -> list[LexicalDoc]:
    # ~2 MB of distinct words: past SQLite's own 1,000-page checkpoint threshold.
    words = [" ".join(f"w{i}x{j}" for j in range(30_000)) for i in range(n)]
    return [LexicalDoc(f"h{i}", [LexicalUnit(0, "", 1, 1, "", w, "")]) for i, w in enumerate(words)]


def _wait_until(predicate, seconds: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_a_commit_leaves_the_wal_to_the_checkpointer_which_copies_it(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "index.sqlite")
    conn = store._conn()
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)
    db_file = tmp_path / "index.sqlite"
    before = db_file.stat().st_size
    store.put_lexical("k", _big_docs(3))
    # Copied into the database file in the background, not by the commit.
    assert _wait_until(lambda: db_file.stat().st_size > before + 1_000_000)
    store.settle()
    with sqlite3.connect(db_file) as other:  # everything committed is readable, of course
        assert other.execute("SELECT count(*) FROM lexical_docs").fetchone() == (3,)


def test_without_the_checkpointer_the_commit_alone_copies_nothing(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The control for the test above: the growth comes from the checkpointer, not the commit."""
    monkeypatch.setattr(connections.WalCheckpointer, "wrote", lambda self: None)
    store = SqliteStore(tmp_path / "index.sqlite")
    db_file = tmp_path / "index.sqlite"
    before = db_file.stat().st_size
    store.put_lexical("k", _big_docs(3))
    time.sleep(0.5)
    assert db_file.stat().st_size < before + 500_000
    assert os.path.getsize(str(db_file) + "-wal") > 1_000_000


def test_the_queue_shares_the_stores_checkpointer(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "index.sqlite")
    queue = SqliteJobQueue(tmp_path / "index.sqlite")
    assert queue._checkpointer is store._checkpointer
    assert queue._conn().execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)


def test_a_file_deleted_under_the_checkpointer_is_not_created_again(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "db" / "index.sqlite")
    store.put_lexical("k", _big_docs(1))
    store.close()
    store.settle()
    shutil.rmtree(tmp_path / "db")
    (tmp_path / "db").mkdir()
    store._checkpointer.wrote()
    time.sleep(connections.MIN_INTERVAL + 0.3)
    store.settle()
    assert list((tmp_path / "db").iterdir()) == []


def test_an_idle_checkpointer_thread_ends(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "IDLE_EXIT", 0.5)
    store = SqliteStore(tmp_path / "index.sqlite")
    store.put_lexical("k", _big_docs(1))
    ckpt = store._checkpointer
    assert _wait_until(lambda: ckpt._pinned is not None, 5.0)  # it checkpointed, on its own connection
    assert _wait_until(lambda: ckpt._thread is None, 5.0)
    assert ckpt._pinned is None  # and closed that connection when it went idle
    store.put_lexical("k", _big_docs(1)[:0])  # a later commit starts it again
    assert ckpt._thread is not None


def _closed(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("SELECT 1")
    except sqlite3.ProgrammingError:
        return True
    return False


def test_a_threads_connection_closes_when_the_thread_ends_not_when_gc_runs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "index.sqlite")
    opened: list[sqlite3.Connection] = []
    gc.disable()  # a connection is in a reference cycle: only its holder can close it on time
    try:
        worker = threading.Thread(target=lambda s: opened.append(s._conn()), args=(store,))
        worker.start()
        worker.join()
        assert opened and _closed(opened[0])
        main = store._conn()
        assert not _closed(main)
        del store
        assert _closed(main)
    finally:
        gc.enable()


def test_the_queues_connections_close_with_it(tmp_path: Path) -> None:
    queue = SqliteJobQueue(tmp_path / "index.sqlite")
    conn = queue._conn()
    gc.disable()
    try:
        del queue
        assert _closed(conn)
    finally:
        gc.enable()


def test_a_large_wal_is_truncated_when_the_run_settles_and_a_small_one_left(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite never shrinks a WAL file by itself: one past TRUNCATE_WAL_BYTES at the end of a
    run (`settle`) is copied whole and cut to nothing; one under it is left to the checkpointer,
    so a small update pays for no truncation."""
    store = SqliteStore(tmp_path / "index.sqlite")
    wal = tmp_path / "index.sqlite-wal"
    store.put_lexical("k", _big_docs(3))
    store.settle()
    assert wal.stat().st_size > 1_000_000  # under the default limit: kept
    monkeypatch.setattr(connections, "TRUNCATE_WAL_BYTES", 1_000_000)
    store.put_lexical("k2", _big_docs(2))
    store.settle()
    assert wal.stat().st_size == 0
    with sqlite3.connect(tmp_path / "index.sqlite") as other:  # nothing lost by the truncation
        assert other.execute("SELECT count(*) FROM lexical_docs").fetchone() == (5,)


def test_a_reader_in_another_connection_does_not_hold_the_truncation_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connections, "TRUNCATE_WAL_BYTES", 1_000_000)
    store = SqliteStore(tmp_path / "index.sqlite")
    store.put_lexical("k", _big_docs(1))
    reader = sqlite3.connect(tmp_path / "index.sqlite", isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM lexical_docs").fetchone()  # holds a read snapshot
    store.put_lexical("k2", _big_docs(2))
    started = time.monotonic()
    store.settle()
    assert time.monotonic() - started < 5  # a short wait, not the 60 s busy timeout
    reader.execute("COMMIT")
    reader.close()
