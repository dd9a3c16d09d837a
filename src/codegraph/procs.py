"""No process outlives its owner.

The *owner* is the process that runs an index (`codegraph index`, a `codegraph worker`, any
future server or watch process): whatever it starts for a run must end when it dies, by any
signal, SIGKILL included — and so never write anything after it. Three kinds of children:

- **The forkserver** (multiprocessing starts it once per owner, from whichever thread first
  needs a pool: a DAG stage's, a worker's job thread). The parent-death signal is relative to
  the *thread* that forked, so it would kill the forkserver when that stage ends. Instead the
  forkserver preloads `codegraph._forkserver_guard`, which watches the owner's pid
  (`watch_owner`); the pid comes in `CODEGRAPH_OWNER_PID`, set when the pool is created.
- **Pool workers** (forked by the forkserver's one thread, which lives as long as it does):
  the pool's initializer watches the owner's pid and also sets `PR_SET_PDEATHSIG` (SIGKILL) —
  safe here, as the forking thread is the forkserver's main one — so they end with the owner
  or with the forkserver, whichever goes first.
- **Subprocesses** (git): `run()` starts them through util-linux's `setpriv --pdeathsig KILL`,
  which sets `PR_SET_PDEATHSIG` and execs the command (same pid, so the signal stays relative
  to the thread that started it, which is right: `run` waits for the child on that thread, so
  the thread outlives the child unless the whole owner dies). Not a `preexec_fn`: Python code
  between fork and exec in a process with threads (a worker's heartbeat, the owner watch, the
  WAL checkpointer) can block forever on a lock another thread held at the fork — seen here
  as a forked worker copy, one thread, in a futex wait, holding the store's files open. Where
  `setpriv` is missing the child gets no death signal (git ends on its own); a child whose
  owner dies in the instant before `setpriv` arms the signal is not caught either.

`watch_owner` is a daemon thread blocked on `poll()` of a pidfd of the owner (Linux ≥ 5.3): it
wakes the moment the owner is gone — no polling interval, and no dependence on which thread
forked — and ends the process with `os._exit` (no atexit handlers, no buffered writes, no
connection closing that could still commit). Elsewhere it checks the owner every 0.2 s.
SIGTERM and Ctrl-C are untouched: the owner shuts its pool down as before.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import multiprocessing
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

OWNER_ENV = "CODEGRAPH_OWNER_PID"
ORPHAN_EXIT = 75  # the exit status of a child whose owner died
_PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    fn.restype = ctypes.c_int
    return fn  # type: ignore[no-any-return]


_PRCTL = _prctl()  # resolved once: a child between fork and exec only calls it


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    """Ask the kernel to send `sig` when the thread that forked this process ends (Linux)."""
    return _PRCTL is not None and _PRCTL(_PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0


_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def run(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """`subprocess.run`, the child killed if this process dies first (see module doc). A
    program that is not found raises FileNotFoundError, as `subprocess.run` does."""
    argv = list(cmd)
    if _SETPRIV is None:
        return subprocess.run(argv, **kwargs)
    env = kwargs.get("env")
    search = (env if env is not None else os.environ).get("PATH", os.defpath)
    program = argv[0] if os.sep in argv[0] else shutil.which(argv[0], path=search)
    if program is None or not os.access(program, os.X_OK):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), argv[0])
    # setpriv looks the program up in the same PATH (execvp): the child's argv stays as given.
    return subprocess.run([_SETPRIV, "--pdeathsig", "KILL", "--", *argv], **kwargs)


def watch_owner(owner: int) -> None:
    """End this process (`os._exit`) as soon as process `owner` is gone."""
    threading.Thread(target=_watch, args=(owner,), name="owner-watch", daemon=True).start()


def _watch(owner: int) -> None:
    try:
        fd = os.pidfd_open(owner)
    except ProcessLookupError:
        os._exit(ORPHAN_EXIT)
    except (AttributeError, OSError):
        while _alive(owner):
            time.sleep(0.2)
        os._exit(ORPHAN_EXIT)
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not poller.poll():
        pass
    os._exit(ORPHAN_EXIT)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pool_worker_init(owner: int) -> None:
    watch_owner(owner)
    set_parent_death_signal()  # forked by the forkserver's only thread: with it, too


def process_pool(workers: int, preload: Sequence[str] = ()) -> ProcessPoolExecutor:
    """A forkserver process pool none of whose processes outlives this one (see module doc).
    forkserver: children start from a clean single-threaded process, never from a fork of this
    one while another thread holds a lock."""
    owner = os.getpid()
    os.environ[OWNER_ENV] = str(owner)  # read by the forkserver's guard when it starts
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["codegraph._forkserver_guard", *preload])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_pool_worker_init,
                               initargs=(owner,))


def guard_forkserver() -> None:
    """In the forkserver (its preload): watch the owner that started it."""
    with contextlib.suppress(ValueError):
        owner = int(os.environ.get(OWNER_ENV, "0"))
        if owner > 0:
            if os.getppid() != owner:  # started by the owner, which is gone already
                os._exit(ORPHAN_EXIT)
            watch_owner(owner)


__all__ = ["ORPHAN_EXIT", "OWNER_ENV", "process_pool", "run", "set_parent_death_signal",
           "watch_owner"]
