"""Reading files beneath a root without ever leaving it.

Every path is resolved here, one component at a time, from a directory descriptor of the root:
each directory is opened with `O_NOFOLLOW | O_DIRECTORY` relative to its parent's descriptor,
and every symlink met on the way is read (`readlink`) and resolved by this code, never by the
kernel. A link's target is followed only while it stays beneath the root: an absolute target
must start with the root's resolved path, and a `..` may not climb above the root — even a
chain that would come back into the root is refused at its first step out. So nothing outside
the root is ever opened, and a link swapped between the scan and a stage's read cannot make
the read follow it outside: the read resolves it again, by the same rule.

The final file is opened with `O_NOFOLLOW | O_NONBLOCK` only once `lstat` says it is a regular
file, and `fstat` on the open descriptor must name the same inode: a FIFO, socket or device is
never opened (no blocking, no side effects), whatever replaced the file in between. Files on
kernel pseudo file systems (procfs, sysfs, …), which claim to be regular files, are refused
after `fstatfs` (Linux).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import stat
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from types import TracebackType

MAX_LINKS = 40  # as the kernel's MAXSYMLINKS: more is a loop
_DIR_CACHE = 64  # open directory descriptors kept between lookups (paths come in sorted order)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

OUTSIDE = "symlink outside the repository"
LINK_TO_DIRECTORY = "symlink to a directory: not followed"
NOT_REGULAR = "not a regular file"


class Refused(OSError):
    """A path this module will not read; `reason` is the per-file reason recorded for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Kernel pseudo file systems: their "regular" files are generated (environ, keys, registers).
_PSEUDO_FS = {
    0x9FA0: "procfs", 0x62656572: "sysfs", 0x64626720: "debugfs", 0x74726163: "tracefs",
    0x73636673: "securityfs", 0x27E0EB: "cgroupfs", 0x63677270: "cgroup2fs", 0xCAFE4A11: "bpffs",
    0x62656570: "configfs", 0xDE5E81E4: "efivarfs", 0x6165676C: "pstorefs", 0x1CD1: "devpts",
}


def _fstatfs_type() -> object:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.fstatfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p]
    fn.restype = ctypes.c_int
    return fn


_fstatfs = _fstatfs_type()
_fs_kind: dict[int, str | None] = {}  # st_dev -> pseudo file system name (None: a real one)


def pseudo_filesystem(fd: int, st: os.stat_result) -> str | None:
    """The name of the kernel pseudo file system the open file `fd` lives on, or None."""
    if st.st_dev in _fs_kind:
        return _fs_kind[st.st_dev]
    kind = None
    if _fstatfs is not None:
        buf = ctypes.create_string_buffer(256)  # struct statfs: f_type is its first field (long)
        if _fstatfs(fd, buf) == 0:  # type: ignore[operator]
            kind = _PSEUDO_FS.get(ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF)
    _fs_kind[st.st_dev] = kind
    return kind


class RootDir:
    """Files beneath `root` (resolved), read without leaving it. Thread-safe; close() when done."""

    def __init__(self, root: Path | str) -> None:
        self.root = os.path.realpath(root)
        self._prefix = self.root.rstrip("/") + "/"
        self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._dirs: OrderedDict[tuple[str, ...], int] = OrderedDict()
        self._lock = threading.Lock()

    def __enter__(self) -> RootDir:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            for fd in self._dirs.values():
                os.close(fd)
            self._dirs.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _dir(self, parts: tuple[str, ...]) -> int:
        """The descriptor of the directory `parts` below the root (no component a link)."""
        if not parts:
            return self._fd
        fd = self._dirs.get(parts)
        if fd is not None:
            self._dirs.move_to_end(parts)
            return fd
        parent = self._dir(parts[:-1])
        fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)  # ELOOP/ENOTDIR: a link or a file
        self._dirs[parts] = fd
        while len(self._dirs) > _DIR_CACHE:
            os.close(self._dirs.popitem(last=False)[1])
        return fd

    def _enter(self, where: list[str], name: str) -> bool:
        """Step into directory `name` (appended to `where`) if it is one, not a link."""
        try:
            self._dir((*where, name))
        except OSError:
            return False  # a link, a file or nothing: the caller looks with lstat
        where.append(name)
        return True

    def _resolve(self, rel: str) -> tuple[int, str, os.stat_result, bool]:
        """(parent directory fd, name, lstat of the final entry, whether a link was followed).
        Raises Refused for a link out of the root, FileNotFoundError when a component (or a
        link's target) does not exist, OSError(ELOOP) for a loop."""
        # The common case first: a regular file in a directory already open (paths come sorted,
        # so most files' directory is). Cache keys are real names: ".", ".." or "" never hit.
        head, _, name = rel.rpartition("/")
        parent = self._dirs.get(tuple(head.split("/"))) if head else self._fd
        if parent is not None and name not in ("", ".", ".."):
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and stat.S_ISREG(st.st_mode):
                return parent, name, st, False
        pending = rel.split("/")[::-1]
        where: list[str] = []
        links = 0
        while pending:
            name = pending.pop()
            if name in ("", "."):
                continue
            if name == "..":
                if not where:
                    raise Refused(OUTSIDE)
                where.pop()
                continue
            parent = self._dir(tuple(where))
            final = not any(p not in ("", ".") for p in pending)
            if not final and self._enter(where, name):
                continue  # a directory (no link): entered without a stat
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                if links:
                    raise BrokenLink(errno.ENOENT, "broken symlink") from None
                raise
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, "symlink loop")
                target = os.readlink(name, dir_fd=parent)
                if target.startswith("/"):
                    if target.rstrip("/") == self.root:
                        target = ""
                    elif target.startswith(self._prefix):
                        target = target[len(self._prefix):]
                    else:
                        raise Refused(OUTSIDE)
                    where = []
                pending.extend(reversed(target.split("/")))
                continue
            if final:
                return parent, name, st, links > 0
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, f"not a directory: {name}")
            where.append(name)
        return self._fd, ".", os.stat(".", dir_fd=self._fd, follow_symlinks=False), links > 0

    def lstat(self, rel: str) -> tuple[os.stat_result, bool]:
        """The stat of the regular file `rel` names inside the root, and whether a symlink led
        to it. Refused: out of the root, a directory behind a link, anything not regular."""
        with self._lock:
            _, _, st, linked = self._resolve(rel)
        _check_regular(st, linked)
        return st, linked

    def read(self, rel: str, max_bytes: int | None = None) -> tuple[bytes, os.stat_result, bool]:
        """(bytes, fstat, whether a symlink led to it) of the regular file `rel` names inside the
        root. With `max_bytes`, a larger file raises FileTooLarge without being read."""
        with self._lock:
            parent, name, st, linked = self._resolve(rel)
            _check_regular(st, linked)
            fd = os.open(name, _FILE_FLAGS, dir_fd=parent)
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(fst.st_mode):
                raise OSError(errno.EAGAIN, f"{rel} changed while it was read")
            kind = pseudo_filesystem(fd, fst)
            if kind is not None:
                raise Refused(f"special file ({kind}): not read")
            if max_bytes is not None and fst.st_size > max_bytes:
                raise FileTooLarge(fst.st_size, max_bytes)
            want = fst.st_size + 1  # one read for the whole file; a short read is its end
            chunks = [os.read(fd, want)]
            while len(chunks[-1]) == want:  # it grew: read on to its end
                want = 1 << 20
                chunks.append(os.read(fd, want))
            return b"".join(chunks), fst, linked
        finally:
            os.close(fd)


class BrokenLink(FileNotFoundError):
    """A symlink on the way names nothing (inside the root)."""


class FileTooLarge(OSError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"too large: {size} bytes > limit {limit}")
        self.reason = str(self)


def _check_regular(st: os.stat_result, linked: bool) -> None:
    if stat.S_ISREG(st.st_mode):
        return
    if stat.S_ISDIR(st.st_mode) and linked:
        raise Refused(LINK_TO_DIRECTORY)
    raise Refused(NOT_REGULAR)


def open_root(root: Path | str) -> RootDir | None:
    """A RootDir of `root`, or None when it cannot be opened (each read then fails on its own)."""
    try:
        return RootDir(root)
    except OSError:
        return None


def read_inside(root: Path | str, rel: str) -> bytes:
    """The bytes of `rel` beneath `root`, by the rules above (one-off: opens the root)."""
    with RootDir(root) as tree:
        return tree.read(rel)[0]


__all__ = ["LINK_TO_DIRECTORY", "NOT_REGULAR", "OUTSIDE", "BrokenLink", "FileTooLarge", "Refused", "RootDir",
           "open_root", "pseudo_filesystem", "read_inside"]
