"""This process's SQLite connections: how they are opened, when they close, who checkpoints.

**Opening.** Every connection (index store and job queue, one per thread) is in WAL mode with
`synchronous=NORMAL` (a commit is durable against a killed process; the WAL is synced at
checkpoints) and waits up to 60 s for the write lock.

**Closing.** A `sqlite3.Connection` is in a reference cycle with its own statement cache, so
dropping it frees nothing until the cyclic garbage collector runs, at some later moment, in
whatever is running then; and the last connection to a file to close copies the WAL into the
database. A run's connections piling up that way cost a later run a 70–220 ms pause (profiled).
So each thread's connection is held by a `store.base.Owned`, which closes it when the thread
(or the store or queue) is gone, by reference counting, at a known point.

**Checkpoints.** SQLite's automatic checkpoint runs inside whichever COMMIT finds the WAL past
1,000 pages: that commit then copies every page of the WAL into the database file and syncs it
before returning. In a small update that was the single largest wait (~40 ms of ~400 on the
stdlib, profiled). Here every connection turns the automatic checkpoint off and pokes this
process's checkpointer for the file after it commits; the checkpointer runs PASSIVE checkpoints
(they never block readers or writers) at most every MIN_INTERVAL seconds, while the stages go
on. An index run waits for a checkpoint in progress before it returns (`wait_idle`), so its
cost is still part of the run's measured time, only no longer on the stages' critical path.
The checkpointer keeps a connection of its own open, so the connections of a run closing are
never the file's last: the last one would copy the whole rest of the WAL into the database and
sync it, inside the run (17–47 ms of a small update, profiled). What a run leaves in the WAL is
copied by the next run's first checkpoint, or when the checkpointer has been idle for
IDLE_EXIT seconds (it then closes its connection), or when the process exits. A WAL file grown
past TRUNCATE_WAL_BYTES (a large build) is copied whole and truncated at the run's end. A crash during a
checkpoint is safe (SQLite's own guarantee): the WAL is copied again later.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from codegraph.errors import StoreError

MIN_INTERVAL = 0.25  # seconds between checkpoints: a few syncs per second at most
# A WAL file past this size at the end of a run is checkpointed whole and truncated. While a
# run's stages write and read at once, a PASSIVE checkpoint never finds the WAL free to start
# over, so it only grows (968 MB beside a 484 MB database after a stdlib build, measured), and
# SQLite never shrinks the file by itself: without this the store would keep it until the next
# write. Small updates stay far below it and pay nothing.
TRUNCATE_WAL_BYTES = 64 << 20
TRUNCATE_WAIT_MS = 250
IDLE_EXIT = 5.0  # a checkpointer thread with nothing to do for this long ends (a test opens many files)


class WalCheckpointer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._poked = threading.Event()
        self._idle = threading.Condition(self._lock)
        self._busy = False
        self._thread: threading.Thread | None = None
        self._last = 0.0
        self._pinned: tuple[tuple[int, int], sqlite3.Connection] | None = None

    def wrote(self) -> None:
        """A connection committed: checkpoint soon."""
        with self._lock:
            self._poked.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {self.path.name}",
                                                daemon=True)
                self._thread.start()

    def wait_idle(self) -> None:
        """Return once no checkpoint is in progress (one that is only due is left for later, as
        SQLite leaves a WAL below its threshold)."""
        with self._idle:
            while self._busy:
                self._idle.wait()

    def truncate_if_large(self, limit: int = -1) -> None:
        """At the end of a run: a WAL file larger than `limit` (default TRUNCATE_WAL_BYTES) is
        copied into the database and truncated (TRUNCATE waits for readers and writers to
        finish; busy past the timeout, it is left for later)."""
        limit = TRUNCATE_WAL_BYTES if limit < 0 else limit
        try:
            size = os.stat(f"{self.path}-wal").st_size
        except OSError:
            return
        if size <= limit:
            return
        with self._checkpointing():
            conn = self._pinned_connection()
            if conn is not None:
                with contextlib.suppress(sqlite3.Error):
                    # Another process reading (a `serve`) must not hold the run up: a short wait.
                    conn.execute(f"PRAGMA busy_timeout={TRUNCATE_WAIT_MS}")
                    try:
                        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                    finally:
                        conn.execute("PRAGMA busy_timeout=60000")

    @contextlib.contextmanager
    def _checkpointing(self) -> Iterator[None]:
        """A checkpoint in progress: `wait_idle` waits for it; the next one is due MIN_INTERVAL
        after it ends."""
        with self._lock:
            self._busy = True
        try:
            yield
        finally:
            self._last = time.monotonic()
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    def _run(self) -> None:
        while True:
            if not self._poked.wait(IDLE_EXIT):
                with self._lock:
                    if self._poked.is_set():
                        continue
                    self._thread = None
                    pinned, self._pinned = self._pinned, None
                # Idle: the file's other connections may be gone too, and this one should not
                # hold the file open for the life of the process (closing it last checkpoints).
                if pinned is not None:
                    with contextlib.suppress(sqlite3.Error):
                        pinned[1].close()
                return
            delay = self._last + MIN_INTERVAL - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._poked.clear()
            with self._checkpointing():
                self._checkpoint()

    def _checkpoint(self) -> None:
        conn = self._pinned_connection()
        if conn is None:
            return  # the file is gone: nothing to copy
        with contextlib.suppress(sqlite3.Error):  # busy: the next commit pokes again
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _pinned_connection(self) -> sqlite3.Connection | None:
        """The checkpointer's own connection, kept open from one run to the next: the file's
        connections closing at the end of a run are then never its last, and the last one to
        close would copy the whole WAL into the database right there, inside the run. Opened
        again when the file at `path` was replaced (a deleted index, a restored copy)."""
        try:
            identity = _identity(self.path)
        except OSError:
            identity = None
        if self._pinned is not None and identity != self._pinned[0]:
            with contextlib.suppress(sqlite3.Error):
                self._pinned[1].close()
            self._pinned = None
        if self._pinned is None and identity is not None:
            try:
                # mode=rw: a file that is gone is not created again (empty) by a checkpoint.
                conn = sqlite3.connect(f"{self.path.as_uri()}?mode=rw", uri=True, timeout=60,
                                       isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA wal_autocheckpoint=0")
                if _identity(self.path) == identity:
                    self._pinned = (identity, conn)
                else:  # replaced while opening: next time
                    conn.close()
            except (sqlite3.Error, OSError):
                return None
        return self._pinned[1] if self._pinned is not None else None


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


_CHECKPOINTERS: dict[Path, WalCheckpointer] = {}
_REGISTRY_LOCK = threading.Lock()


def _forget_in_child() -> None:
    # A forked child has none of the parent's threads, and must not use its connections.
    _CHECKPOINTERS.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def checkpointer_for(path: Path) -> WalCheckpointer:
    """The one checkpointer of this process for the database file at `path`."""
    key = path.resolve()
    with _REGISTRY_LOCK:
        found = _CHECKPOINTERS.get(key)
        if found is None:
            found = _CHECKPOINTERS[key] = WalCheckpointer(key)
        return found


def connect(path: Path, *pragmas: str) -> sqlite3.Connection:
    """A new connection to the database at `path`, set up as every connection of this process
    is (see the module doc), plus `pragmas` ("cache_size=-65536", ...). `check_same_thread` is
    off only so that its `Owned` may close it from whichever thread drops it last; it is used by
    one thread."""
    try:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot open {path}: {exc}") from exc
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=60000",
                   "wal_autocheckpoint=0", *pragmas):
        conn.execute(f"PRAGMA {pragma}")
    return conn
